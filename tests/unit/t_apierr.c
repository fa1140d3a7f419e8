/* Unit tests for translators/apierr: the seed-compatible error completions (ERROR_STYLE=
 * completion) in every shape, as single objects and as SSE event sequences. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "translators/apierr.h"
#include "tests/unit/tap.h"

/* at follows a dotted path ("choices.0.message.content"; numbers index arrays); NULL if absent. */
static json_object *at(json_object *o, const char *path)
{
    char key[64];
    while (o && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof key)
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        path += path[n] ? n + 1 : n;
        if (json_object_is_type(o, json_type_array)) {
            o = json_object_array_get_idx(o, (size_t)atoi(key));
        } else if (!json_object_object_get_ex(o, key, &o)) {
            return NULL;
        }
    }
    return o;
}

static const char *str_at(json_object *o, const char *path)
{
    json_object *v = at(o, path);
    return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* is_null_at: the member exists and is JSON null. */
static int is_null_at(json_object *o, const char *path)
{
    const char *dot = strrchr(path, '.');
    char parent[128];
    snprintf(parent, sizeof parent, "%.*s", dot ? (int)(dot - path) : 0, path);
    json_object *p = dot ? at(o, parent) : o, *v = NULL;
    return p && json_object_object_get_ex(p, dot ? dot + 1 : path, &v) && v == NULL;
}

static long long int_at(json_object *o, const char *path)
{
    json_object *v = at(o, path);
    return json_object_is_type(v, json_type_int) ? (long long)json_object_get_int64(v) : -999;
}

/* reparse serialises obj (the wire form) and parses it back strictly; a new reference. */
static json_object *reparse(json_object *obj)
{
    size_t len = 0;
    const char *txt = obj ? util_json_plain(obj, &len) : NULL;
    json_object *back = NULL;
    if (!txt || util_parse_json(txt, len, &back))
        return NULL;
    return back;
}

/* The text every shape must carry. */
static void want_text(char *out, size_t n, const char *title, const char *msg, const char *code)
{
    snprintf(out, n, "### **%s**\n\n%s\n\n----\n\n*%s*\n\n<!-- oai-proxy-error -->", title, msg,
             code);
}

static void test_title(void)
{
    static const struct {
        int http;
        const char *want;
    } cases[] = {
        {400, "Proxy error (HTTP 400 Bad Request)"},
        {401, "Proxy error (HTTP 401 Unauthorized)"},
        {402, "Proxy error (HTTP 402 Payment Required)"},
        {403, "Proxy error (HTTP 403 Forbidden)"},
        {404, "Proxy error (HTTP 404 Not Found)"},
        {405, "Proxy error (HTTP 405 Method Not Allowed)"},
        {413, "Proxy error (HTTP 413 Payload Too Large)"},
        {429, "Proxy error (HTTP 429 Too Many Requests)"},
        {500, "Proxy error (HTTP 500 Internal Server Error)"},
        {502, "Proxy error (HTTP 502 Bad Gateway)"},
        {503, "Proxy error (HTTP 503 Service Unavailable)"},
        {504, "Proxy error (HTTP 504 Gateway Timeout)"},
        {418, "Proxy error (HTTP 418 Error)"},
        {0, "Proxy error (HTTP 0 Error)"},
    };
    char t[96], name[32];
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        apierr_completion_title(cases[i].http, t, sizeof t);
        snprintf(name, sizeof name, "title for HTTP %d", cases[i].http);
        is_str(t, cases[i].want, name);
    }
    char tiny[12];
    apierr_completion_title(429, tiny, sizeof tiny);
    is_str(tiny, "Proxy error", "the title is truncated to the buffer");
}

static void test_openai(void)
{
    const char *title = "Proxy error (HTTP 429 Too Many Requests)";
    char text[512];
    want_text(text, sizeof text, title, "Slow down.", "rate_limit_exceeded");
    int64_t now = util_now_ms() / 1000;
    json_object *c = apierr_completion(API_OPENAI, 429, "rate_limit_exceeded", "Slow down.",
                                       "0123abcd", "gpt-4o");
    json_object *o = reparse(c);
    ok(o != NULL, "OpenAI completion serialises and parses back");
    is_str(str_at(o, "id"), "error-0123abcd", "id error-<id>");
    is_str(str_at(o, "object"), "chat.completion", "object");
    ok(int_at(o, "created") >= now && int_at(o, "created") <= now + 2, "created is now (s)");
    is_str(str_at(o, "model"), "gpt-4o", "model echoed");
    is_int(json_object_array_length(at(o, "choices")), 1, "one choice");
    is_int(int_at(o, "choices.0.index"), 0, "choice index 0");
    is_str(str_at(o, "choices.0.message.role"), "assistant", "role assistant");
    is_str(str_at(o, "choices.0.message.content"), text, "content is the markdown text");
    has_str(str_at(o, "choices.0.message.content"), "<!-- oai-proxy-error -->", "marker present");
    is_str(str_at(o, "choices.0.finish_reason"), title, "finish_reason is the title");
    ok(is_null_at(o, "choices.0.logprobs"), "logprobs null");
    is_int(int_at(o, "usage.prompt_tokens"), 0, "prompt_tokens 0");
    is_int(int_at(o, "usage.completion_tokens"), 0, "completion_tokens 0");
    is_int(int_at(o, "usage.total_tokens"), 0, "total_tokens 0");
    json_object_put(o);
    json_object_put(c);

    c = apierr_completion(API_OPENAI, 502, NULL, "upstream down", "ff", NULL);
    o = reparse(c);
    is_str(str_at(o, "model"), "unknown", "NULL model -> unknown");
    has_str(str_at(o, "choices.0.message.content"), "\n\n*server_error*\n\n",
            "NULL code derived from the status");
    json_object_put(o);
    json_object_put(c);
}

static void test_anthropic(void)
{
    const char *title = "Proxy error (HTTP 401 Unauthorized)";
    char text[512];
    want_text(text, sizeof text, title, "Bad key.", "invalid_api_key");
    json_object *c = apierr_completion(API_ANTHROPIC, 401, "invalid_api_key", "Bad key.", "beef",
                                       "claude-sonnet-4");
    json_object *o = reparse(c);
    ok(o != NULL, "Anthropic message serialises and parses back");
    is_str(str_at(o, "id"), "msg_error_beef", "id msg_error_<id>");
    is_str(str_at(o, "type"), "message", "type message");
    is_str(str_at(o, "role"), "assistant", "role assistant");
    is_str(str_at(o, "model"), "claude-sonnet-4", "model echoed");
    is_int(json_object_array_length(at(o, "content")), 1, "one content block");
    is_str(str_at(o, "content.0.type"), "text", "a text block");
    is_str(str_at(o, "content.0.text"), text, "text is the markdown text");
    has_str(str_at(o, "content.0.text"), "<!-- oai-proxy-error -->", "marker present");
    is_str(str_at(o, "stop_reason"), "end_turn", "stop_reason end_turn");
    ok(is_null_at(o, "stop_sequence"), "stop_sequence null");
    is_int(int_at(o, "usage.input_tokens"), 0, "input_tokens 0");
    is_int(int_at(o, "usage.output_tokens"), 0, "output_tokens 0");
    json_object_put(o);
    json_object_put(c);

    c = apierr_completion(API_ANTHROPIC, 503, NULL, "busy", "1", "");
    o = reparse(c);
    is_str(str_at(o, "model"), "unknown", "empty model -> unknown");
    has_str(str_at(o, "content.0.text"), "*overloaded_error*", "NULL code derived (Anthropic)");
    json_object_put(o);
    json_object_put(c);
}

/* A recorder for emitted events; fail_at (1-based call number) returns fail_rc there. */
struct rec {
    int n, fail_at, fail_rc;
    char names[8][32];
    json_object *data[8];
    char raw[8][16];
};

static int record(void *ctx, const char *name, const char *data, size_t len)
{
    struct rec *r = ctx;
    if (r->n >= 8)
        return -1;
    int i = r->n++;
    snprintf(r->names[i], sizeof r->names[i], "%s", name ? name : "(none)");
    snprintf(r->raw[i], sizeof r->raw[i], "%.*s", (int)len, data);
    if (util_parse_json(data, len, &r->data[i]) != 0)
        r->data[i] = NULL;
    return r->n == r->fail_at ? r->fail_rc : 0;
}

static void rec_free(struct rec *r)
{
    for (int i = 0; i < r->n; i++)
        json_object_put(r->data[i]);
}

static void test_openai_stream(void)
{
    const char *title = "Proxy error (HTTP 500 Internal Server Error)";
    char text[512];
    want_text(text, sizeof text, title, "oops", "internal_error");
    struct rec r = {0};
    int rc = apierr_completion_events(API_OPENAI, 500, "internal_error", "oops", "abc", "gpt-x",
                                      record, &r);
    is_int(rc, 0, "OpenAI stream: 0");
    is_int(r.n, 2, "two events: the chunk and [DONE]");
    is_str(r.names[0], "(none)", "the chunk is unnamed");
    ok(r.data[0] != NULL, "the chunk parses");
    is_str(str_at(r.data[0], "id"), "chatcmpl-abc", "chunk id chatcmpl-<id>");
    is_str(str_at(r.data[0], "object"), "chat.completion.chunk", "chunk object");
    ok(int_at(r.data[0], "created") > 0, "chunk created");
    is_str(str_at(r.data[0], "model"), "gpt-x", "chunk model");
    is_int(int_at(r.data[0], "choices.0.index"), 0, "chunk choice index");
    is_str(str_at(r.data[0], "choices.0.delta.role"), "assistant", "delta role");
    is_str(str_at(r.data[0], "choices.0.delta.content"), text, "delta content is the text");
    is_str(str_at(r.data[0], "choices.0.finish_reason"), title, "chunk finish_reason the title");
    is_str(r.names[1], "(none)", "[DONE] is unnamed");
    is_str(r.raw[1], "[DONE]", "[DONE] last");
    rec_free(&r);

    struct rec f1 = {.fail_at = 1, .fail_rc = OAI_EGONE};
    rc = apierr_completion_events(API_OPENAI, 500, NULL, "x", "a", NULL, record, &f1);
    is_int(rc, OAI_EGONE, "an emit error is returned");
    is_int(f1.n, 1, "and no [DONE] follows it");
    rec_free(&f1);
    struct rec f2 = {.fail_at = 2, .fail_rc = 7};
    rc = apierr_completion_events(API_OPENAI, 500, NULL, "x", "a", NULL, record, &f2);
    is_int(rc, 7, "a positive emit result from [DONE] is returned too");
    rec_free(&f2);
}

static void test_anthropic_stream(void)
{
    static const char *const names[] = {"message_start",       "content_block_start",
                                        "content_block_delta", "content_block_stop",
                                        "message_delta",       "message_stop"};
    const char *title = "Proxy error (HTTP 404 Not Found)";
    char text[512];
    want_text(text, sizeof text, title, "no such model", "model_not_found");
    struct rec r = {0};
    int rc = apierr_completion_events(API_ANTHROPIC, 404, "model_not_found", "no such model", "42",
                                      "claude-x", record, &r);
    is_int(rc, 0, "Anthropic stream: 0");
    is_int(r.n, 6, "six events");
    for (int i = 0; i < 6 && i < r.n; i++) {
        char name[64];
        snprintf(name, sizeof name, "event %d is %s", i + 1, names[i]);
        is_str(r.names[i], names[i], name);
        is_str(str_at(r.data[i], "type"), names[i], "  its data parses with that type");
    }
    json_object *start = r.data[0];
    is_str(str_at(start, "message.id"), "msg_error_42", "message_start id");
    is_str(str_at(start, "message.type"), "message", "message_start message type");
    is_str(str_at(start, "message.role"), "assistant", "message_start role");
    is_str(str_at(start, "message.model"), "claude-x", "message_start model");
    ok(json_object_is_type(at(start, "message.content"), json_type_array) &&
           json_object_array_length(at(start, "message.content")) == 0,
       "message_start content empty");
    ok(is_null_at(start, "message.stop_reason"), "message_start stop_reason null");
    is_int(int_at(start, "message.usage.input_tokens"), 0, "message_start input_tokens 0");
    is_int(int_at(start, "message.usage.output_tokens"), 0, "message_start output_tokens 0");
    is_int(int_at(r.data[1], "index"), 0, "content_block_start index 0");
    is_str(str_at(r.data[1], "content_block.type"), "text", "content_block_start text block");
    is_str(str_at(r.data[1], "content_block.text"), "", "content_block_start empty text");
    is_int(int_at(r.data[2], "index"), 0, "content_block_delta index 0");
    is_str(str_at(r.data[2], "delta.type"), "text_delta", "text_delta");
    is_str(str_at(r.data[2], "delta.text"), text, "the delta carries the text");
    is_int(int_at(r.data[3], "index"), 0, "content_block_stop index 0");
    is_str(str_at(r.data[4], "delta.stop_reason"), "end_turn", "message_delta end_turn");
    is_int(int_at(r.data[4], "usage.output_tokens"), 0, "message_delta output_tokens 0");
    rec_free(&r);

    for (int stop = 1; stop <= 6; stop++) {
        struct rec f = {.fail_at = stop, .fail_rc = OAI_EGONE};
        rc = apierr_completion_events(API_ANTHROPIC, 404, NULL, "m", "1", NULL, record, &f);
        char name[64];
        snprintf(name, sizeof name, "an emit error at event %d stops the sequence there", stop);
        ok(rc == OAI_EGONE && f.n == stop, name);
        rec_free(&f);
    }
}

static void test_awkward_text(void)
{
    /* quotes, backslashes, newlines, a tab, a slash, </script>, 2-, 3- and 4-byte UTF-8 */
    const char *msg = "say \"hi\" \\ back\nline 2\r\n\ttab / </script> caf\xc3\xa9 "
                      "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \"end\"";
    char text[1024];
    want_text(text, sizeof text, "Proxy error (HTTP 400 Bad Request)", msg, "bad \"code\"");
    json_object *c = apierr_completion(API_OPENAI, 400, "bad \"code\"", msg, "1", "m\"odel");
    json_object *o = reparse(c);
    is_str(str_at(o, "choices.0.message.content"), text, "OpenAI: awkward text round-trips");
    is_str(str_at(o, "model"), "m\"odel", "an awkward model round-trips");
    json_object_put(o);
    json_object_put(c);
    c = apierr_completion(API_ANTHROPIC, 400, "bad \"code\"", msg, "1", NULL);
    o = reparse(c);
    is_str(str_at(o, "content.0.text"), text, "Anthropic: awkward text round-trips");
    json_object_put(o);
    json_object_put(c);
    struct rec r = {0};
    is_int(apierr_completion_events(API_ANTHROPIC, 400, "bad \"code\"", msg, "1", NULL, record, &r),
           0, "stream with awkward text");
    is_str(str_at(r.data[2], "delta.text"), text, "stream: awkward text round-trips");
    rec_free(&r);
    struct rec r2 = {0};
    is_int(apierr_completion_events(API_OPENAI, 400, "bad \"code\"", msg, "1", NULL, record, &r2),
           0, "OpenAI stream with awkward text");
    is_str(str_at(r2.data[0], "choices.0.delta.content"), text,
           "OpenAI stream: awkward text round-trips");
    rec_free(&r2);

    /* a huge message is cut, never inside a UTF-8 sequence: "x" then "é" (c3 a9) pairs put a
     * lead byte at offset 16383, so a plain 16 KiB cut would leave it without its tail */
    size_t big = 20001;
    char *huge = malloc(big + 1);
    huge[0] = 'x';
    for (size_t i = 1; i + 1 < big; i += 2) {
        huge[i] = '\xc3';
        huge[i + 1] = '\xa9';
    }
    huge[big] = '\0';
    c = apierr_completion(API_OPENAI, 500, "c", huge, "1", NULL);
    o = reparse(c);
    const char *t = str_at(o, "choices.0.message.content");
    ok(o != NULL && t, "a huge message still gives valid UTF-8 JSON");
    ok(t && strlen(t) < 16 * 1024 + 200, "and is cut near 16 KiB");
    has_str(t, "\xc3\xa9\n\n----", "cut after a whole character");
    has_str(t, "<!-- oai-proxy-error -->", "and keeps the marker");
    json_object_put(o);
    json_object_put(c);
    free(huge);

    c = apierr_completion(API_OPENAI, 500, "c", NULL, NULL, NULL);
    o = reparse(c);
    is_str(str_at(o, "id"), "error-", "NULL id and message are tolerated");
    json_object_put(o);
    json_object_put(c);
}

int main(void)
{
    tap_start();
    test_title();
    test_openai();
    test_anthropic();
    test_openai_stream();
    test_anthropic_stream();
    test_awkward_text();
    return tap_done();
}
