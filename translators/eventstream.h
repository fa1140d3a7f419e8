/*
 * eventstream.h - incremental decoder for AWS event-stream framing
 * (application/vnd.amazon.eventstream; reference/wire-formats.md §4.5, §4.6).
 *
 * Bytes may arrive split at any offset. A message is delivered once all total_length bytes are
 * in, after both CRC32s (prelude and message) check out. Frames larger than the decoder's
 * ceiling, inconsistent lengths and bad CRCs are errors (OAI_EBADFRAME), never unbounded
 * buffering.
 */
#ifndef OAI_EVENTSTREAM_H
#define OAI_EVENTSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define ES_MAX_FRAME (25L * 1024 * 1024) /* default ceiling: Bedrock bodies are <= 25,000,000 */

struct es_message {
    const uint8_t *headers; /* raw header block */
    size_t headers_len;
    const uint8_t *payload;
    size_t payload_len;
};

/* Called once per complete, valid message; pointers are valid only during the call. A negative
 * return stops decoding and is passed back by es_feed. */
typedef int (*es_fn)(void *ctx, const struct es_message *m);

struct es_decoder {
    struct buf pending; /* bytes of the message being assembled */
    size_t max_frame;
    int failed;         /* after an error every feed fails the same way */
};

void es_init(struct es_decoder *d, size_t max_frame);
void es_free(struct es_decoder *d);
/* es_feed decodes n more bytes: 0, fn's negative code, or OAI_EBADFRAME. */
int es_feed(struct es_decoder *d, const void *bytes, size_t n, es_fn fn, void *ctx);
/* es_pending is the number of bytes of an incomplete message held (non-zero at the end of the
 * body means the stream was truncated). */
size_t es_pending(const struct es_decoder *d);

/* es_header_string finds a string header (type 7) by name; borrowed pointer, length in *len;
 * NULL if absent or of another type. */
const char *es_header_string(const struct es_message *m, const char *name, size_t *len);
/* es_header_walk calls fn for each header (name, type, value bytes, value length); returns 0 or
 * OAI_EBADFRAME for a malformed header block (also checked before a message is delivered). */
int es_header_walk(const struct es_message *m,
                   int (*fn)(void *ctx, const char *name, size_t name_len, int type,
                             const uint8_t *value, size_t value_len),
                   void *ctx);

/* es_crc32 is the IEEE CRC-32 (zlib's crc32 with initial 0). */
uint32_t es_crc32(uint32_t crc, const void *p, size_t n);

#endif
