/*
 * fuzz_azure_stream.c - the Azure OpenAI stream normaliser (translators/azure.h), as
 * upstream/provider_azure.c runs it: upstream SSE through sseparse, each event's data to
 * azure_stream_chunk until the body ends or a chunk is not JSON, then our own usage chunk when
 * Azure sent none.
 *
 * Input: a split schedule (fuzz_splits_read), then the upstream SSE bytes fed in those pieces.
 */
#include "fuzz/fuzz.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "translators/azure.h"
#include "translators/sseparse.h"

#define GATEWAY_MAX_EVENT (8L * 1024 * 1024) /* upstream/provider_azure.c MAX_EVENT */

static const char client_request[] =
    "{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[{\"role\":\"system\",\"content\":"
    "\"Be brief.\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}]}]}";

static int on_event(void *ctx, const char *name, const char *data, size_t len)
{
    struct azure_stream *st = ctx;
    (void)name;
    int rc = azure_stream_chunk(st, data, len);
    if (rc != 0 && rc != 1 && rc != 2 && rc != OAI_EBADJSON)
        abort(); /* outside the contract */
    if (strnlen(st->id, sizeof st->id) == sizeof st->id ||
        strnlen(st->model, sizeof st->model) == sizeof st->model)
        abort();
    /* after [DONE] (2) the gateway forwards nothing more but still feeds the body through
     * azure_stream_chunk, as here; an error stops the transfer */
    return rc < 0 ? rc : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_splits sp;
    struct sseparse p;
    struct azure_stream st;
    json_object *client = NULL;
    fuzz_quiet();
    fuzz_splits_read(&sp, &data, &size);
    memset(&st, 0, sizeof st);
    sseparse_init(&p, GATEWAY_MAX_EVENT);
    fuzz_sse_feed(&p, &sp, data, size, on_event, &st);
    sseparse_free(&p);
    if (!st.usage_seen &&
        util_parse_json(client_request, sizeof client_request - 1, &client) == 0) {
        json_object *u = azure_usage_chunk(&st, client);
        size_t len;
        if (!u || !util_json_plain(u, &len))
            abort();
        json_object_put(u);
        json_object_put(client);
    }
    return 0;
}
