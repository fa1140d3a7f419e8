/* Unit tests for fcgi/response, fcgi/sse and translators/apierr: exact bytes on the wire,
 * heartbeats on a fake clock, and disconnects reported at once. */
#include "common/err.h"
#include "common/util.h"
#include "fcgi/response.h"
#include "fcgi/sse.h"
#include "translators/apierr.h"
#include "tests/unit/tap.h"

static void test_plain(void)
{
    struct io_mem m;
    struct response r;
    io_mem_init(&m, NULL, NULL, 0);
    resp_init(&r, &m.base);
    is_int(resp_header(&r, "X-Test", "1"), 0, "queue a header");
    is_int(resp_header(&r, "X-Bad", "a\r\nInjected: 1"), OAI_EBADREQ, "CRLF in a value refused");
    is_int(resp_send(&r, 404, "application/json", "{}", 2), 0, "send");
    is_str(m.out.data,
           "Status: 404 Not Found\r\nAccess-Control-Allow-Origin: *\r\n"
           "Content-Type: application/json\r\nContent-Length: 2\r\nX-Test: 1\r\n\r\n{}",
           "CGI-form status, CORS, type, length, queued header, body");
    ok(m.flushes >= 1, "flushed");
    resp_free(&r);
    io_mem_free(&m);
}

static int64_t clock_ms;

static void test_sse(void)
{
    struct io_mem m;
    struct response r;
    struct sse s;
    io_mem_init(&m, NULL, NULL, 0);
    resp_init(&r, &m.base);
    clock_ms = 1000;
    is_int(sse_begin(&s, &r, 15, clock_ms), 0, "begin");
    has_str(m.out.data, "Status: 200 OK\r\n", "200");
    has_str(m.out.data, "Content-Type: text/event-stream", "event-stream type");
    has_str(m.out.data, "Cache-Control: no-cache\r\n", "no-cache");
    has_str(m.out.data, "X-Accel-Buffering: no\r\n", "nginx buffering off");
    ok(!strstr(m.out.data, "Content-Length"), "no length on a stream");
    int flushes = m.flushes;
    buf_reset(&m.out);
    is_int(sse_event(&s, "ping", "a\nb", 3, clock_ms), 0, "event with a multi-line payload");
    is_str(m.out.data, "event: ping\ndata: a\ndata: b\n\n", "one data line per line");
    ok(m.flushes > flushes, "each event is flushed");

    buf_reset(&m.out);
    is_int(sse_heartbeat(&s, clock_ms + 14999), 0, "no heartbeat before HEARTBEAT_S");
    is_int(sse_heartbeat_in(&s, clock_ms + 14000), 1000, "time to the next heartbeat");
    is_int(sse_heartbeat(&s, clock_ms + 15000), 1, "heartbeat when due");
    is_str(m.out.data, ": keep-alive\n\n", "heartbeat is an SSE comment");
    is_int(sse_heartbeat(&s, clock_ms + 15001), 0, "the heartbeat resets the timer");
    buf_reset(&m.out);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "a", json_object_new_string("x/y"));
    is_int(sse_json(&s, NULL, o, clock_ms), 0, "json event");
    is_str(m.out.data, "data: {\"a\":\"x/y\"}\n\n", "plain JSON, no spaces or escaped slashes");
    json_object_put(o);

    m.fail_after = m.out.len + 3; /* the client leaves during the next write */
    is_int(sse_event(&s, NULL, "[DONE]", 6, clock_ms), OAI_EGONE, "disconnect reported");
    ok(r.gone, "the response knows the client is gone");
    is_int(sse_heartbeat(&s, clock_ms + 99999), OAI_EGONE, "later calls fail at once");
    resp_free(&r);
    io_mem_free(&m);
}

static void test_apierr(void)
{
    json_object *e = apierr_body(API_OPENAI, 400, "invalid_json", "bad", "messages");
    is_str(util_json_plain(e, NULL),
           "{\"error\":{\"message\":\"bad\",\"type\":\"invalid_request_error\",\"param\":"
           "\"messages\",\"code\":\"invalid_json\"}}",
           "OpenAI error shape");
    json_object_put(e);
    e = apierr_body(API_OPENAI, 503, NULL, "x", NULL);
    is_str(util_json_plain(e, NULL),
           "{\"error\":{\"message\":\"x\",\"type\":\"server_error\",\"param\":null,\"code\":null}}",
           "OpenAI 5xx is a server_error, null param and code");
    json_object_put(e);
    static const struct {
        int http;
        const char *type;
    } an[] = {{400, "invalid_request_error"},
              {401, "authentication_error"},
              {403, "permission_error"},
              {404, "not_found_error"},
              {413, "request_too_large"},
              {429, "rate_limit_error"},
              {500, "api_error"},
              {503, "overloaded_error"}};
    for (unsigned i = 0; i < sizeof an / sizeof an[0]; i++) {
        e = apierr_body(API_ANTHROPIC, an[i].http, NULL, "m", NULL);
        char want[160];
        snprintf(want, sizeof want,
                 "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"m\"}}", an[i].type);
        is_str(util_json_plain(e, NULL), want, an[i].type);
        json_object_put(e);
    }
}

int main(void)
{
    tap_start();
    test_plain();
    test_sse();
    test_apierr();
    return tap_done();
}
