#include "translators/eventstream.h"

#include <string.h>

#include "common/err.h"
#include "common/log.h"

/*
 * Layout of one message (wire-formats §4.5), all integers big-endian:
 *   total_length(4) headers_length(4) prelude_crc(4) headers payload message_crc(4)
 *
 * Decoding works in place on the caller's bytes whenever a whole message is contiguous in one
 * feed; only a message split across feeds is copied into d->pending. Invariant: once pending
 * holds PRELUDE bytes or more, its prelude has been checked (CRC and lengths), so its
 * total_length is trusted and bounded by max_frame.
 */
#define PRELUDE  12
#define OVERHEAD 16
#define KEEP_CAP (64 * 1024) /* a pending buffer grown past this is released after use */

/* IEEE 802.3 CRC-32, reflected polynomial 0xEDB88320 (zlib's table). */
static const uint32_t crc_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu, 0xe963a535u,
    0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u, 0x09b64c2bu, 0x7eb17cbdu,
    0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u, 0xf3b97148u, 0x84be41deu, 0x1adad47du,
    0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u, 0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu,
    0x14015c4fu, 0x63066cd9u, 0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u,
    0xa2677172u, 0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u, 0x26d930acu,
    0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u, 0xcfba9599u, 0xb8bda50fu,
    0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u, 0x2f6f7c87u, 0x58684c11u, 0xc1611dabu,
    0xb6662d3du, 0x76dc4190u, 0x01db7106u, 0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu,
    0x9fbfe4a5u, 0xe8b8d433u, 0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu,
    0x086d3d2du, 0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u, 0x8bbeb8eau,
    0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u, 0x4db26158u, 0x3ab551ceu,
    0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u, 0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au,
    0x346ed9fcu, 0xad678846u, 0xda60b8d0u, 0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u,
    0x5005713cu, 0x270241aau, 0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u,
    0xce61e49fu, 0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au, 0xead54739u,
    0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u, 0x0d6d6a3eu, 0x7a6a5aa8u,
    0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u, 0xf00f9344u, 0x8708a3d2u, 0x1e01f268u,
    0x6906c2feu, 0xf762575du, 0x806567cbu, 0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u,
    0x10da7a5au, 0x67dd4accu, 0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u,
    0xa1d1937eu, 0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u, 0x316e8eefu,
    0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u, 0xcc0c7795u, 0xbb0b4703u,
    0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u, 0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u,
    0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du, 0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au,
    0x9c0906a9u, 0xeb0e363fu, 0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu,
    0x0cb61b38u, 0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u, 0x88085ae6u,
    0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u, 0x616bffd3u, 0x166ccf45u,
    0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u, 0xa7672661u, 0xd06016f7u, 0x4969474du,
    0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu, 0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u,
    0x47b2cf7fu, 0x30b5ffe9u, 0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u,
    0xcdd70693u, 0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

/* es_crc32 updates an IEEE CRC-32 with n bytes at p; start with crc 0, chain calls to continue
 * (es_crc32(es_crc32(0, a, na), b, nb) == CRC of a then b), exactly like zlib's crc32(). */
uint32_t es_crc32(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *s = p;
    crc = ~crc;
    while (n--)
        crc = crc_table[(crc ^ *s++) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

struct header {
    const char *name;
    size_t name_len;
    int type;
    const uint8_t *value;
    size_t value_len;
};

/* next_header reads the header at *off of the block b[0..len): 1 and advances *off, 0 at the end
 * of the block, -1 if the header is malformed (empty name, unknown type, or any length running
 * past the block). */
static int next_header(const uint8_t *b, size_t len, size_t *off, struct header *h)
{
    size_t at = *off;
    if (at >= len)
        return 0;
    size_t name_len = b[at];
    if (name_len == 0 || len - at < 1 + name_len + 1)
        return -1;
    h->name = (const char *)b + at + 1;
    h->name_len = name_len;
    at += 1 + name_len;
    h->type = b[at++];
    size_t value_len;
    switch (h->type) {
    case 0: /* bool true */
    case 1: /* bool false */
        value_len = 0;
        break;
    case 2: /* int8 */
        value_len = 1;
        break;
    case 3: /* int16 */
        value_len = 2;
        break;
    case 4: /* int32 */
        value_len = 4;
        break;
    case 5: /* int64 */
    case 8: /* timestamp */
        value_len = 8;
        break;
    case 9: /* uuid */
        value_len = 16;
        break;
    case 6: /* byte array */
    case 7: /* string */
        if (len - at < 2)
            return -1;
        value_len = (size_t)b[at] << 8 | b[at + 1];
        at += 2;
        break;
    default:
        return -1;
    }
    if (len - at < value_len)
        return -1;
    h->value = b + at;
    h->value_len = value_len;
    *off = at + value_len;
    return 1;
}

static int headers_valid(const uint8_t *b, size_t len)
{
    size_t off = 0;
    struct header h;
    int rc;
    do {
        rc = next_header(b, len, &off, &h);
    } while (rc > 0);
    return rc == 0;
}

/* check_prelude validates the first PRELUDE bytes of a message and returns its total_length in
 * *total: prelude CRC first, then total_length within [16, max_frame], then headers_length
 * within the room total_length leaves. */
static int check_prelude(const uint8_t *p, size_t max_frame, size_t *total)
{
    uint32_t tl = be32(p), hl = be32(p + 4);
    if (es_crc32(0, p, 8) != be32(p + 8)) {
        log_warn("event-stream: prelude checksum mismatch");
        return OAI_EBADFRAME;
    }
    if (tl < OVERHEAD) {
        log_warn("event-stream: total_length %lu is below the 16-byte minimum", (unsigned long)tl);
        return OAI_EBADFRAME;
    }
    if (tl > max_frame) {
        log_warn("event-stream: a %lu-byte frame is over the %zu-byte ceiling", (unsigned long)tl,
                 max_frame);
        return OAI_EBADFRAME;
    }
    if (hl > tl - OVERHEAD) {
        log_warn("event-stream: headers_length %lu does not fit a %lu-byte frame",
                 (unsigned long)hl, (unsigned long)tl);
        return OAI_EBADFRAME;
    }
    *total = tl;
    return 0;
}

/* deliver checks the message CRC and the header block of the complete message msg[0..total)
 * (prelude already checked) and hands it to fn. */
static int deliver(const uint8_t *msg, size_t total, es_fn fn, void *ctx)
{
    size_t hl = be32(msg + 4);
    if (es_crc32(0, msg, total - 4) != be32(msg + total - 4)) {
        log_warn("event-stream: message checksum mismatch");
        return OAI_EBADFRAME;
    }
    struct es_message m = {
        .headers = msg + PRELUDE,
        .headers_len = hl,
        .payload = msg + PRELUDE + hl,
        .payload_len = total - OVERHEAD - hl,
    };
    if (!headers_valid(m.headers, m.headers_len)) {
        log_warn("event-stream: malformed header block");
        return OAI_EBADFRAME;
    }
    int rc = fn ? fn(ctx, &m) : 0;
    return rc < 0 ? rc : 0;
}

static int append(struct buf *b, const uint8_t **p, size_t *n, size_t want)
{
    size_t take = want < *n ? want : *n;
    int rc = buf_add(b, *p, take);
    if (rc)
        return rc;
    *p += take;
    *n -= take;
    return 0;
}

/* resume moves bytes from *p into the pending message: its prelude first (checked the moment it
 * is complete), then the rest of the message, which is delivered once whole. */
static int resume(struct es_decoder *d, const uint8_t **p, size_t *n, es_fn fn, void *ctx)
{
    struct buf *b = &d->pending;
    size_t total;
    int rc;
    if (b->len < PRELUDE) {
        rc = append(b, p, n, PRELUDE - b->len);
        if (rc || b->len < PRELUDE)
            return rc;
        rc = check_prelude((const uint8_t *)b->data, d->max_frame, &total);
        if (rc)
            return rc;
    }
    total = be32((const uint8_t *)b->data);
    rc = append(b, p, n, total - b->len);
    if (rc || b->len < total)
        return rc;
    rc = deliver((const uint8_t *)b->data, total, fn, ctx);
    if (b->cap > KEEP_CAP)
        buf_free(b);
    else
        buf_reset(b);
    return rc;
}

/* es_init prepares a decoder on caller-owned storage. max_frame bounds one whole message
 * (prelude, headers, payload and CRCs): 0 selects ES_MAX_FRAME, values below the 16-byte minimum
 * message are raised to 16. Nothing is allocated until a message arrives split across feeds. */
void es_init(struct es_decoder *d, size_t max_frame)
{
    if (max_frame == 0)
        max_frame = ES_MAX_FRAME;
    if (max_frame < OVERHEAD)
        max_frame = OVERHEAD;
    d->max_frame = max_frame;
    buf_init(&d->pending, max_frame);
    d->failed = 0;
}

/* es_free releases the pending bytes; the decoder is left empty and may be fed again or
 * initialised again. */
void es_free(struct es_decoder *d)
{
    buf_free(&d->pending);
    d->failed = 0;
}

/* es_feed decodes n more bytes of the stream, calling fn (may be NULL to only validate) once per
 * complete valid message, in order; several messages in one feed are each delivered, and the
 * bytes of a trailing incomplete message are kept (at most max_frame). Whole messages are decoded
 * in place: the es_message pointers then point into bytes. Returns 0, fn's negative code (the
 * rest of this feed is dropped), OAI_EBADFRAME (bad prelude or message CRC, total_length < 16 or
 * over max_frame, headers_length past the frame, malformed header block) or OAI_ENOMEM. A
 * frame's prelude is judged as soon as its 12 bytes are in, so an oversized frame is refused
 * before any more of it is buffered. After an error the decoder is dead: every later feed returns
 * that same code. */
int es_feed(struct es_decoder *d, const void *bytes, size_t n, es_fn fn, void *ctx)
{
    const uint8_t *p = bytes;
    size_t total;
    int rc = d->failed;
    if (rc)
        return rc;
    while (n > 0) {
        if (d->pending.len > 0) {
            rc = resume(d, &p, &n, fn, ctx);
            if (rc)
                goto done;
            continue;
        }
        if (n < PRELUDE) {
            rc = buf_add(&d->pending, p, n);
            goto done;
        }
        rc = check_prelude(p, d->max_frame, &total);
        if (rc)
            goto done;
        if (n < total) {
            rc = buf_add(&d->pending, p, n);
            goto done;
        }
        rc = deliver(p, total, fn, ctx);
        if (rc)
            goto done;
        p += total;
        n -= total;
    }
done:
    if (rc) {
        d->failed = rc;
        buf_free(&d->pending);
    }
    return rc;
}

/* es_pending returns how many bytes of an incomplete message are held; non-zero once the body
 * has ended means the stream was truncated mid-message. 0 after an error. */
size_t es_pending(const struct es_decoder *d)
{
    return d->pending.len;
}

/* es_header_string returns the value of the first header called name (exact, case-sensitive)
 * if it is a string (type 7): a borrowed pointer into m's header block, NOT NUL-terminated, its
 * length in *len (if len is not NULL). NULL (and *len = 0) if there is no such header, if the
 * first header of that name has another type, or if the header block is malformed. */
const char *es_header_string(const struct es_message *m, const char *name, size_t *len)
{
    const char *v = NULL;
    size_t vlen = 0, nlen = strlen(name), off = 0;
    struct header h;
    if (!headers_valid(m->headers, m->headers_len))
        goto done;
    while (next_header(m->headers, m->headers_len, &off, &h) > 0) {
        if (h.name_len != nlen || memcmp(h.name, name, nlen) != 0)
            continue;
        if (h.type == 7) {
            v = (const char *)h.value;
            vlen = h.value_len;
        }
        break;
    }
done:
    if (len)
        *len = vlen;
    return v;
}

/* es_header_walk checks m's whole header block first, then calls fn once per header in order
 * with the name (not NUL-terminated), the type (0..9), and the value bytes: for types 6 and 7
 * the bytes after the 2-byte length, for 0 and 1 an empty value, otherwise the fixed-size
 * big-endian integer or UUID. Returns 0, OAI_EBADFRAME for a malformed block (fn is then never
 * called), or the first negative value fn returns (which stops the walk). */
int es_header_walk(const struct es_message *m,
                   int (*fn)(void *ctx, const char *name, size_t name_len, int type,
                             const uint8_t *value, size_t value_len),
                   void *ctx)
{
    size_t off = 0;
    struct header h;
    if (!headers_valid(m->headers, m->headers_len))
        return OAI_EBADFRAME;
    while (next_header(m->headers, m->headers_len, &off, &h) > 0) {
        int rc = fn(ctx, h.name, h.name_len, h.type, h.value, h.value_len);
        if (rc < 0)
            return rc;
    }
    return 0;
}
