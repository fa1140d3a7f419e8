/* The whole request pipeline (fcgi/app) driven through the in-memory io backend: every route,
 * status and error shape, the body limit, per-request settings and disconnects. */
#include <stdlib.h>
#include <unistd.h>

#include "common/err.h"
#include "fcgi/app.h"
#include "tests/unit/tap.h"

static struct app app;

struct out {
    int status;
    char *text; /* whole CGI output */
    const char *body;
};

/* Runs one request; params are "NAME=value" strings (REQUEST_URI etc.). */
static struct out run(const char *method, const char *uri, const char *body, char **extra)
{
    static char m[64], u[4200];
    char *params[32];
    int n = 0;
    snprintf(m, sizeof m, "REQUEST_METHOD=%s", method);
    snprintf(u, sizeof u, "REQUEST_URI=%s", uri);
    /* extra first: like FCGX_GetParam, io_mem returns the first of duplicate names */
    for (char **e = extra; e && *e && n < 26; e++)
        params[n++] = *e;
    params[n++] = m;
    params[n++] = u;
    params[n++] = "SCRIPT_NAME=";
    params[n++] = "HTTP_HOST=gw.example";
    params[n++] = "REMOTE_ADDR=192.0.2.7";
    params[n] = NULL;
    struct io_mem io;
    io_mem_init(&io, params, body, body ? strlen(body) : 0);
    app_handle(&app, &io.base);
    struct out o = {0, NULL, ""};
    o.text = buf_take(&io.out, NULL);
    if (o.text) {
        o.status = atoi(o.text + 8);
        char *sep = strstr(o.text, "\r\n\r\n");
        o.body = sep ? sep + 4 : "";
    } else {
        o.text = strdup("");
    }
    io_mem_free(&io);
    return o;
}

static void expect(const char *method, const char *uri, const char *body, char **extra, int status,
                   const char *needle, const char *name)
{
    struct out o = run(method, uri, body, extra);
    if (!tap_ok(o.status == status && strstr(o.text, needle), name, __FILE__, __LINE__))
        printf("#   %s %s: want %d containing '%s'\n#   got:\n%s\n", method, uri, status, needle,
               o.text);
    free(o.text);
}

static const char hi[] =
    "{\"model\":\"claude-x\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}";
static const char hi_stream[] = "{\"model\":\"claude-x\",\"stream\":true,\"stream_options\":"
                                "{\"include_usage\":true},\"messages\":[{\"role\":\"user\","
                                "\"content\":\"Hi\"}]}";
static const char real[] = "{\"model\":\"claude-x\",\"messages\":[{\"role\":\"user\","
                           "\"content\":\"Write a poem\"}]}";

static void test_routes(void)
{
    expect("GET", "/healthz", NULL, NULL, 200, "\r\n\r\nok\n", "healthz");
    expect("GET", "/status", NULL, NULL, 200, "\"gcp\":\"http://gw.example/proxy/gcp/claude\"",
           "status has absolute endpoints");
    expect("GET", "/status", NULL, NULL, 200, "\"universal\":\"http://gw.example/v1\"",
           "universal endpoint ends in /v1");
    expect("GET", "/", NULL, NULL, 200, "application/json", "info page is JSON for */*");
    char *html[] = {"HTTP_ACCEPT=text/html,application/xhtml+xml,*/*;q=0.8", NULL};
    expect("GET", "/", NULL, html, 200, "<h1>oai-fcgi</h1>", "info page is HTML for browsers");
    expect("GET", "/status", NULL, html, 200, "application/json", "/status is always JSON");
    char *https[] = {"HTTPS=on", NULL};
    expect("GET", "/status", NULL, https, 200, "https://gw.example/proxy/aws/claude",
           "scheme from HTTPS");
    expect("GET", "/metrics", NULL, NULL, 200, "oai_fcgi_prompters_now", "metrics");
    expect("GET", "/proxy/gcp/claude/v1/models", NULL, NULL, 200, "{\"object\":\"list\"",
           "models list");
    expect("GET", "/proxy/azure/openai//models", NULL, NULL, 200, "\"data\":[]",
           "doubled slash, no /v1");
    expect("GET", "/nope", NULL, NULL, 404, "\"code\":\"not_found\"", "unknown route 404");
    expect("POST", "/proxy/azure/openai/v1/messages", "{}", NULL, 404, "\"not_found_error\"",
           "an unknown /messages route speaks Anthropic");
    expect("GET", "/v1/chat/completions", NULL, NULL, 405, "Allow: POST, OPTIONS",
           "wrong method 405 with Allow");
    expect("POST", "/status", "{}", NULL, 405, "\"method_not_allowed\"", "POST to a GET route");
    char *preflight[] = {"HTTP_ACCESS_CONTROL_REQUEST_HEADERS=x-api-key, content-type", NULL};
    expect("OPTIONS", "/v1/messages", NULL, preflight, 204,
           "Access-Control-Allow-Headers: x-api-key, content-type", "preflight echoes headers");
    expect("OPTIONS", "/anything", NULL, NULL, 204,
           "Access-Control-Allow-Methods: GET, POST, OPTIONS", "preflight anywhere");
    expect("GET", "/nope", NULL, NULL, 404, "Access-Control-Allow-Origin: *", "CORS on errors");
    expect("GET", "/a%00b", NULL, NULL, 400, "cannot be decoded", "undecodable path");
}

static void test_generation(void)
{
    expect("POST", "/proxy/gcp/claude/v1/chat/completions", hi, NULL, 200, "\"content\":\"Hello!\"",
           "test message, non-stream");
    expect("POST", "/proxy/aws/claude/chat/completions", hi_stream, NULL, 200, "data: [DONE]\n\n",
           "test message stream ends with [DONE]");
    expect("POST", "/proxy/aws/claude/chat/completions", hi_stream, NULL, 200,
           "\"choices\":[],\"usage\"", "include_usage adds the usage chunk");
    expect("POST", "/proxy/azure/openai/v1/chat/completions", hi, NULL, 200, "Hello!",
           "azure test message");
    expect("POST", "/v1/messages",
           "{\"model\":\"m\",\"max_tokens\":5,\"stream\":true,\"messages\":[{\"role\":\"user\","
           "\"content\":\"Hi\"}]}",
           NULL, 200, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
           "anthropic test stream");
    expect("POST", "/proxy/gcp/claude/v1/chat/completions", real, NULL, 503, "\"code\":\"no_keys\"",
           "a real request has no key yet: 503");
    expect("POST", "/proxy/gcp/claude/v1/messages", real, NULL, 503, "\"overloaded_error\"",
           "503 in Anthropic shape on /messages");
    expect("POST", "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
           NULL, 400, "\"param\":\"model\"", "model is required for a real request");
    expect("POST", "/v1/chat/completions", "{oops", NULL, 400, "\"code\":\"invalid_json\"",
           "malformed JSON");
    expect("POST", "/v1/messages", "{oops", NULL, 400,
           "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\"",
           "malformed JSON in Anthropic shape");
    expect("POST", "/v1/chat/completions", "[1,2]", NULL, 400, "must be a JSON object",
           "JSON that is not an object");
    expect("POST", "/v1/chat/completions", "{\"model\":\"m\",\"messages\":\"Hi\"}", NULL, 400,
           "\"param\":\"messages\"", "messages not an array");
    expect("POST", "/v1/chat/completions", "{\"model\":\"m\",\"stream\":\"yes\",\"messages\":[]}",
           NULL, 400, "\"param\":\"stream\"", "stream not a boolean");
    expect("POST", "/v1/chat/completions", "{\"model\":7,\"messages\":[]}", NULL, 400,
           "\"param\":\"model\"", "model not a string");
    expect("POST", "/v1/chat/completions", "{\"model\":\"\xff\",\"messages\":[]}", NULL, 400,
           "invalid_json", "invalid UTF-8");
    expect("POST", "/v1/chat/completions", "", NULL, 400, "invalid_json", "empty body");
}

static void test_limits_and_settings(void)
{
    char *small[] = {"MAX_BODY_BYTES=1024", NULL};
    char big[2100];
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, hi, sizeof hi - 1);
    expect("POST", "/v1/chat/completions", big, small, 413, "\"code\":\"request_too_large\"",
           "body over MAX_BODY_BYTES (a per-request param) gets 413");
    expect("POST", "/v1/messages", big, small, 413, "\"request_too_large\"",
           "413 in Anthropic shape");
    char *title[] = {"SERVER_TITLE=Param Title", "HTTP_ACCEPT=text/html", NULL};
    expect("GET", "/", NULL, title, 200, "<title>Param Title</title>", "title from a param");
    char *evil[] = {"HTTP_SERVER_TITLE=Evil", "HTTP_ACCEPT=text/html", NULL};
    expect("GET", "/", NULL, evil, 200, "<title>oai-fcgi</title>", "HTTP_* names are ignored");
    char *bad[] = {"HEARTBEAT_S=never", NULL};
    expect("GET", "/status", NULL, bad, 500, "\"code\":\"config_error\"",
           "a bad per-request setting gives 500");
    char *route[] = {"PROXY_ENDPOINT_ROUTE=/api", NULL};
    expect("GET", "/api/gcp/claude/v1/models", NULL, route, 200, "\"object\":\"list\"",
           "PROXY_ENDPOINT_ROUTE moves the provider routes");
    char *route_pi[] = {"PROXY_ENDPOINT_ROUTE=/api", "PATH_INFO=/proxy/gcp/claude/v1/models", NULL};
    expect("GET", "/proxy/gcp/claude/v1/models", NULL, route_pi, 404, "not_found",
           "... and the old prefix is gone");
    char *admin[] = {"ADMIN_KEY=s3cret", NULL};
    expect("GET", "/metrics", NULL, admin, 401, "invalid_api_key", "metrics need the admin key");
    char *admin_ok[] = {"ADMIN_KEY=s3cret", "HTTP_AUTHORIZATION=Bearer s3cret", NULL};
    expect("GET", "/metrics", NULL, admin_ok, 200, "oai_fcgi_uptime_seconds", "... and accept it");
    char *admin_bad[] = {"ADMIN_KEY=s3cret", "HTTP_AUTHORIZATION=Bearer s3cre", NULL};
    expect("GET", "/metrics", NULL, admin_bad, 401, "invalid_api_key", "... and refuse others");
}

static void test_prompters(void)
{
    char *a[] = {"REMOTE_ADDR=198.51.100.1", NULL};
    char *b[] = {"REMOTE_ADDR=198.51.100.2", NULL};
    struct out o = run("POST", "/v1/chat/completions", hi, a);
    free(o.text);
    o = run("POST", "/v1/chat/completions", hi, a);
    free(o.text);
    o = run("POST", "/v1/chat/completions", hi, b);
    free(o.text);
    o = run("GET", "/status", NULL, NULL);
    /* 192.0.2.7 from the earlier tests, plus the two above */
    has_str(o.text, "\"proomptersNow\":3", "distinct prompters counted once each");
    free(o.text);
    char *xff[] = {"TRUSTED_PROXIES=1", "HTTP_X_FORWARDED_FOR=203.0.113.9, 10.0.0.1", NULL};
    o = run("POST", "/v1/chat/completions", hi, xff);
    free(o.text);
    o = run("GET", "/status", NULL, NULL);
    has_str(o.text, "\"proomptersNow\":4", "TRUSTED_PROXIES takes the client from X-Forwarded-For");
    free(o.text);
}

static void test_disconnect(void)
{
    char *params[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/v1/chat/completions",
                      "REMOTE_ADDR=192.0.2.7", NULL};
    struct io_mem io;
    io_mem_init(&io, params, hi_stream, strlen(hi_stream));
    io.fail_after = 400; /* gone after the headers and part of the first event */
    app_handle(&app, &io.base);
    ok(io.gone, "the client went away mid-stream");
    ok(io.out.len <= 400, "nothing was written after the disconnect");
    ok(!strstr(io.out.data, "[DONE]"), "the stream stopped");
    io_mem_free(&io);
    is_int(atomic_load(&app.in_flight), 0, "no request left in flight");
}

static void report(void *ctx, const char *line)
{
    (void)ctx;
    printf("# config: %s\n", line);
}

int main(void)
{
    tap_start();
    char dir[] = "/tmp/oai-t-app-XXXXXX", path[64];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/state.db", dir);
    setenv("STATE_PATH", path, 1);
    is_int(app_init(&app, 0, report, NULL), 0, "app starts on a clean environment");
    test_routes();
    test_generation();
    test_limits_and_settings();
    test_prompters();
    test_disconnect();
    app_free(&app);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    return tap_done();
}
