/* Unit tests for translators/testmsg: detection rules of the seed and every reply shape. */
#include "common/util.h"
#include "translators/testmsg.h"
#include "tests/unit/tap.h"

static int detect(const char *json)
{
    json_object *o = NULL;
    if (util_parse_json(json, strlen(json), &o))
        return -1;
    int r = testmsg_detect(o);
    json_object_put(o);
    return r;
}

static void test_detect(void)
{
    is_int(detect("{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}"), 1, "exact Hi");
    is_int(detect("{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                  "\"content\":\"Hi\"}],\"x\":1}"),
           1, "extra fields do not matter");
    is_int(detect("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"), 0, "case matters");
    is_int(detect("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                  "\"text\":\"Hi\"}]}]}"),
           0, "array content is not the test");
    is_int(detect("{\"messages\":[{\"role\":\"system\",\"content\":\"Hi\"}]}"), 0, "role user");
    is_int(detect("{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":"
                  "\"assistant\",\"content\":\"Hello\"}]}"),
           0, "a prefill makes it a real request");
    is_int(detect("{\"messages\":[]}"), 0, "empty messages");
    is_int(detect("{\"messages\":\"Hi\"}"), 0, "messages not an array");
    is_int(detect("{\"prompt\":\"  Human: Hi\\n\\nAssistant: \"}"), 1, "legacy prompt, trimmed");
    is_int(detect("{\"prompt\":\"Hi\\n\\nmore\"}"), 1, "prompt starting Hi + blank line");
    is_int(detect("{\"prompt\":\"Hi there\"}"), 0, "other prompts");
    is_int(detect("[1]"), 0, "not an object");
}

struct rec {
    char names[16][32];
    char data[16][600];
    int n;
};

static int record(void *ctx, const char *name, const char *data, size_t len)
{
    struct rec *r = ctx;
    if (r->n >= 16 || len >= sizeof r->data[0])
        return -1;
    snprintf(r->names[r->n], sizeof r->names[0], "%s", name ? name : "");
    memcpy(r->data[r->n], data, len);
    r->data[r->n][len] = '\0';
    r->n++;
    return 0;
}

static json_object *parse(const char *s)
{
    json_object *o = NULL;
    if (util_parse_json(s, strlen(s), &o))
        return NULL;
    return o;
}

static const char *path(json_object *o, const char *a, int idx, const char *b, const char *c)
{
    json_object *v = o;
    if (!json_object_object_get_ex(v, a, &v))
        return NULL;
    if (idx >= 0)
        v = json_object_array_get_idx(v, (size_t)idx);
    if (b && !json_object_object_get_ex(v, b, &v))
        return NULL;
    if (c && !json_object_object_get_ex(v, c, &v))
        return NULL;
    return v ? json_object_get_string(v) : "null";
}

static void test_reply(void)
{
    json_object *o = testmsg_reply("claude-x", 1700000000);
    is_str(path(o, "choices", 0, "message", "content"), "Hello!", "OpenAI message content");
    is_str(path(o, "choices", 0, "message", "role"), "assistant", "OpenAI role");
    is_str(path(o, "choices", 0, "finish_reason", NULL), "stop", "finish_reason stop");
    is_str(path(o, "content", 0, "text", NULL), "Hello!", "Anthropic content block");
    is_str(path(o, "completion", -1, NULL, NULL), "Hello!", "legacy completion");
    is_str(path(o, "stop_reason", -1, NULL, NULL), "end_turn", "Anthropic stop_reason");
    is_str(path(o, "model", -1, NULL, NULL), "claude-x", "echoes the model");
    is_str(path(o, "created", -1, NULL, NULL), "1700000000", "created in seconds");
    is_str(path(o, "id", -1, NULL, NULL), "test-message", "seed id");
    is_str(path(o, "usage", -1, "total_tokens", NULL), "0", "zero usage");
    ok(path(o, "proxy_note", -1, NULL, NULL) != NULL, "explains itself");
    json_object_put(o);
}

static void test_openai_stream(void)
{
    struct rec r = {.n = 0};
    is_int(testmsg_stream_openai("m", "chatcmpl-1", 42, 1, record, &r), 0, "stream ok");
    is_int(r.n, 5, "role, content, finish, usage, [DONE]");
    json_object *c0 = parse(r.data[0]), *c1 = parse(r.data[1]), *c2 = parse(r.data[2]),
                *c3 = parse(r.data[3]);
    is_str(path(c0, "choices", 0, "delta", "role"), "assistant", "first chunk carries the role");
    is_str(path(c1, "choices", 0, "delta", "content"), "Hello!", "content chunk");
    is_str(path(c2, "choices", 0, "finish_reason", NULL), "stop", "finish chunk");
    is_int((long long)json_object_array_length(json_object_object_get(c3, "choices")), 0,
           "usage chunk has no choices");
    is_str(path(c3, "usage", -1, "total_tokens", NULL), "0", "usage chunk carries usage");
    is_str(path(c0, "id", -1, NULL, NULL), "chatcmpl-1", "shared id");
    is_str(path(c2, "id", -1, NULL, NULL), "chatcmpl-1", "same id on the last chunk");
    is_str(path(c2, "created", -1, NULL, NULL), "42", "shared created");
    is_str(path(c1, "object", -1, NULL, NULL), "chat.completion.chunk", "object");
    is_str(r.data[4], "[DONE]", "ends with [DONE]");
    is_str(r.names[0], "", "data-only events");
    json_object_put(c0);
    json_object_put(c1);
    json_object_put(c2);
    json_object_put(c3);
    struct rec r2 = {.n = 0};
    testmsg_stream_openai("m", "chatcmpl-1", 42, 0, record, &r2);
    is_int(r2.n, 4, "no usage chunk unless asked for");
}

static void test_anthropic_stream(void)
{
    struct rec r = {.n = 0};
    is_int(testmsg_stream_anthropic("m", "msg_1", record, &r), 0, "stream ok");
    static const char *const want[] = {"message_start",       "content_block_start",
                                       "content_block_delta", "content_block_stop",
                                       "message_delta",       "message_stop"};
    is_int(r.n, 6, "six events");
    for (unsigned i = 0; i < sizeof want / sizeof want[0] && (int)i < r.n; i++) {
        const char *w = want[i];
        is_str(r.names[i], w, w);
        json_object *o = parse(r.data[i]);
        is_str(path(o, "type", -1, NULL, NULL), w, "data type matches the event name");
        json_object_put(o);
    }
    json_object *d = parse(r.data[2]);
    is_str(path(d, "delta", -1, "text", NULL), "Hello!", "text_delta Hello!");
    json_object_put(d);
    json_object *s = parse(r.data[0]);
    is_str(path(s, "message", -1, "id", NULL), "msg_1", "message id");
    json_object_put(s);
    struct rec full = {.n = 16};
    ok(testmsg_stream_anthropic("m", "msg_1", record, &full) != 0,
       "an emitter failure (client gone) stops the stream");
}

int main(void)
{
    tap_start();
    test_detect();
    test_reply();
    test_openai_stream();
    test_anthropic_stream();
    return tap_done();
}
