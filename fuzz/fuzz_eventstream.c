/*
 * fuzz_eventstream.c - the AWS event-stream decoder (translators/eventstream.h) and the Bedrock
 * stream unwrapper on top of it (translators/bedrock.h bedrock_stream_*).
 *
 * Input: one flags byte, a split schedule (fuzz_splits_read), then the response bytes, fed in
 * those pieces (each piece in its own allocation, so that a read past it is caught). Flags:
 * 1 recompute both CRCs of every frame before feeding (so that the fuzzer reaches the header
 * and payload code; without it bad CRCs and lengths are the fuzzer's own), 2 decode through
 * bedrock_stream_feed as the gateway does (base64 chunk events, exception frames) instead of
 * es_feed with a callback that walks every header, 4 a 64-byte frame ceiling instead of
 * ES_MAX_FRAME (es_feed only).
 */
#include "fuzz/fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "translators/bedrock.h"
#include "translators/eventstream.h"

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* fix_crcs rewrites the prelude CRC and, when the frame fits, the message CRC of each frame. */
static void fix_crcs(uint8_t *b, size_t n)
{
    size_t at = 0;
    while (n - at >= 12) {
        uint32_t total = be32(b + at);
        put_be32(b + at + 8, es_crc32(0, b + at, 8));
        if (total < 16 || total > n - at)
            break;
        put_be32(b + at + total - 4, es_crc32(0, b + at, total - 4));
        at += total;
    }
}

static volatile unsigned long keep; /* so that the reads below are not optimised away */

struct seen {
    unsigned long sum; /* touches every byte handed out, so that ASan checks them */
};

static int on_header(void *ctx, const char *name, size_t name_len, int type, const uint8_t *value,
                     size_t value_len)
{
    struct seen *s = ctx;
    for (size_t i = 0; i < name_len; i++)
        s->sum += (unsigned char)name[i];
    for (size_t i = 0; i < value_len; i++)
        s->sum += value[i];
    s->sum += (unsigned)type;
    return 0;
}

static int on_message(void *ctx, const struct es_message *m)
{
    struct seen *s = ctx;
    static const char *const names[] = {":event-type", ":message-type", ":content-type",
                                        ":exception-type", "content-type"};
    if (es_header_walk(m, on_header, s) != 0)
        abort(); /* a delivered message has a valid header block */
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t len = 0;
        const char *v = es_header_string(m, names[i], &len);
        for (size_t k = 0; v && k < len; k++)
            s->sum += (unsigned char)v[k];
    }
    for (size_t i = 0; i < m->payload_len; i++)
        s->sum += m->payload[i];
    return 0;
}

static int on_event(void *ctx, const char *name, const char *data, size_t len)
{
    struct seen *s = ctx;
    s->sum += strlen(name ? name : "");
    for (size_t i = 0; i < len; i++)
        s->sum += (unsigned char)data[i];
    return 0;
}

static int on_error(void *ctx, int http, const char *code, const char *message)
{
    struct seen *s = ctx;
    if (!code || !message)
        abort();
    s->sum += (unsigned)http + strlen(code) + strlen(message);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_splits sp;
    struct seen seen = {0};
    uint8_t *copy = NULL;
    fuzz_quiet();
    if (size == 0)
        return 0;
    unsigned flags = data[0];
    data++;
    size--;
    fuzz_splits_read(&sp, &data, &size);
    copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    if (flags & 1)
        fix_crcs(copy, size);

    struct es_decoder d;
    struct bedrock_stream bs;
    if (flags & 2)
        bedrock_stream_init(&bs, on_event, on_error, &seen);
    else
        es_init(&d, flags & 4 ? 64 : ES_MAX_FRAME);
    int rc = 0;
    size_t at = 0;
    while (at < size && rc == 0) {
        size_t piece = fuzz_splits_next(&sp, size - at);
        char *p = malloc(piece);
        if (!p)
            break;
        memcpy(p, copy + at, piece);
        rc = flags & 2 ? bedrock_stream_feed(&bs, p, piece)
                       : es_feed(&d, p, piece, on_message, &seen);
        free(p);
        at += piece;
    }
    if (flags & 2) {
        bedrock_stream_free(&bs);
    } else {
        /* after an error the decoder stays dead and holds nothing */
        if (rc != 0 && (es_feed(&d, "", 0, on_message, &seen) != rc || es_pending(&d) != 0))
            abort();
        es_free(&d);
    }
    free(copy);
    keep = seen.sum;
    return 0;
}
