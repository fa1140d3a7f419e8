/*
 * fuzz_claude_stream.c - the Claude SSE -> OpenAI chunk stream translator
 * (translators/sseparse.h, translators/anthropic.h anthropic_stream_*), as upstream/proxy.c runs
 * it for a streamed /chat/completions on Vertex.
 *
 * Input: one flags byte, a split schedule (fuzz_splits_read), then the upstream SSE bytes, fed
 * to sseparse in those pieces; every event goes to anthropic_stream_event and the stream is
 * ended with anthropic_stream_end. Flags: 1 legacy functions, 2 a json_schema tool, 4 and 8 two
 * sets of local stop strings, 16 choice index 1, 32 a 512-byte event ceiling instead of the
 * gateway's 8 MiB, 64 stop feeding at the first final status (as the gateway does) instead of
 * feeding the events after it too. The sink checks that each chunk is one line of valid JSON
 * (it becomes "data: <json>\n\n") and discards it.
 */
#include "fuzz/fuzz.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "translators/anthropic.h"
#include "translators/sseparse.h"

#define GATEWAY_MAX_EVENT (8L * 1024 * 1024) /* upstream/provider_gcp.c MAX_UPSTREAM_EVENT */
#define SMALL_MAX_EVENT   512

struct run {
    struct anthropic_stream *s;
    int gateway; /* stop at the first final status */
    int over;    /* a final status was seen */
};

static int sink(void *ctx, const char *json, size_t len)
{
    json_object *o = NULL;
    (void)ctx;
    if (len == 0 || strlen(json) != len || memchr(json, '\n', len) || memchr(json, '\r', len))
        abort(); /* would break the client's SSE framing */
    if (util_parse_json(json, len, &o) != 0)
        abort(); /* the client would receive a chunk it cannot parse */
    json_object_put(o);
    return 0;
}

static int on_event(void *ctx, const char *name, const char *data, size_t len)
{
    struct run *r = ctx;
    if (r->over && r->gateway)
        return 0;
    int rc = anthropic_stream_event(r->s, name, data, len);
    if (rc != 0)
        r->over = 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_splits sp;
    struct sseparse p;
    struct run r = {NULL, 0, 0};
    json_object *stops = NULL;
    fuzz_quiet();
    if (size == 0)
        return 0;
    unsigned flags = data[0];
    data++;
    size--;
    fuzz_splits_read(&sp, &data, &size);

    struct anthropic_opts o = {
        .model = "gpt-4o",
        .id = "chatcmpl-fuzz",
        .created = 1700000000,
        .choice = flags & 16 ? 1 : 0,
        .legacy_functions = flags & 1 ? 1 : 0,
        .schema_tool = flags & 2 ? "person" : "",
        .local_stops = NULL,
    };
    if (flags & 12) {
        stops = json_object_new_array();
        if (flags & 4)
            json_object_array_add(stops, json_object_new_string("\n\n"));
        if (flags & 8) {
            json_object_array_add(stops, json_object_new_string("\t"));
            json_object_array_add(stops, json_object_new_string(" \n \n"));
        }
        o.local_stops = stops;
    }
    r.gateway = flags & 64 ? 1 : 0;
    r.s = anthropic_stream_new(&o, sink, NULL);
    if (!r.s)
        goto done;
    sseparse_init(&p, flags & 32 ? SMALL_MAX_EVENT : GATEWAY_MAX_EVENT);
    fuzz_sse_feed(&p, &sp, data, size, on_event, &r);
    anthropic_stream_end(r.s);
    struct anthropic_usage u;
    anthropic_stream_usage(r.s, &u);
    json_object_put(anthropic_usage_json(&u));
    sseparse_free(&p);
    anthropic_stream_free(r.s);
done:
    json_object_put(stops);
    return 0;
}
