/* Unit tests for translators/eventstream: the vectors of wire-formats §4.6 (ES-1…ES-5,
 * ES-B1…ES-B3) decoded exactly, the same messages whatever the split, the negative cases of §4.6
 * (corrupted CRCs, impossible lengths, oversized frames, malformed header blocks, truncation),
 * and random input that must never crash the decoder. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "translators/eventstream.h"
#include "tests/unit/tap.h"

/* ---- helpers -------------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull; /* never 0: xorshift would stay at 0 */

static void rng_seed(uint64_t seed)
{
    rng_state = seed ? seed : 0x9e3779b97f4a7c15ull;
}

static uint64_t rng(void) /* xorshift64*: reproducible on every libc */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static size_t rng_below(size_t n)
{
    return n ? (size_t)(rng() % n) : 0;
}

/* unhex decodes a hex string (whitespace ignored) into out; returns the byte count. */
static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (; *s; s++) {
        int v;
        if (*s >= '0' && *s <= '9')
            v = *s - '0';
        else if (*s >= 'a' && *s <= 'f')
            v = *s - 'a' + 10;
        else if (*s >= 'A' && *s <= 'F')
            v = *s - 'A' + 10;
        else
            continue;
        if (hi < 0) {
            hi = v;
            continue;
        }
        if (n >= cap)
            abort();
        out[n++] = (uint8_t)(hi << 4 | v);
        hi = -1;
    }
    if (hi >= 0)
        abort();
    return n;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* build_msg frames headers and payload with correct CRCs (es_crc32 is checked against the
 * published vectors first); returns the length written to out. */
static size_t build_msg(uint8_t *out, const uint8_t *h, size_t hl, const uint8_t *p, size_t pl)
{
    size_t total = 16 + hl + pl;
    put32(out, (uint32_t)total);
    put32(out + 4, (uint32_t)hl);
    put32(out + 8, es_crc32(0, out, 8));
    if (hl)
        memcpy(out + 12, h, hl);
    if (pl)
        memcpy(out + 12 + hl, p, pl);
    put32(out + total - 4, es_crc32(0, out, total - 4));
    return total;
}

/* A record of decoded messages: per header "name=type:hexvalue;", then "|hexpayload\n". */
static void add_hex(struct buf *b, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        char two[2] = {digits[p[i] >> 4], digits[p[i] & 15]};
        if (buf_add(b, two, 2))
            abort();
    }
}

static int rec_header(void *ctx, const char *name, size_t name_len, int type, const uint8_t *value,
                      size_t value_len)
{
    struct buf *b = ctx;
    if (buf_add(b, name, name_len) || buf_printf(b, "=%d:", type))
        return OAI_ENOMEM;
    add_hex(b, value, value_len);
    return buf_add(b, ";", 1);
}

struct rec {
    struct buf out;
    int count;
    int fail_at;            /* return -7 from this message on (1-based), 0 = never */
    const uint8_t *lo, *hi; /* if set: the input buffer, to see whether decoding was in place */
    int in_place;           /* messages whose payload and headers pointed into [lo, hi) */
    int bad_walk;
};

static void rec_init(struct rec *r)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->out, 1 << 24);
}

static int on_msg(void *ctx, const struct es_message *m)
{
    struct rec *r = ctx;
    r->count++;
    if (r->fail_at && r->count >= r->fail_at)
        return -7;
    if (r->lo && m->headers >= r->lo && m->payload + m->payload_len <= r->hi)
        r->in_place++;
    if (es_header_walk(m, rec_header, &r->out))
        r->bad_walk++;
    if (buf_add(&r->out, "|", 1))
        return OAI_ENOMEM;
    add_hex(&r->out, m->payload, m->payload_len);
    return buf_add(&r->out, "\n", 1);
}

/* feed_cuts decodes s[0..n) in pieces ending at the cut points (ascending, <= n). */
static int feed_cuts(struct es_decoder *d, const uint8_t *s, size_t n, const size_t *cuts,
                     size_t ncuts, struct rec *r)
{
    size_t at = 0;
    int rc = 0;
    for (size_t i = 0; i <= ncuts && !rc; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        rc = es_feed(d, s + at, end - at, on_msg, r);
        at = end;
    }
    return rc;
}

/* feed_random decodes s[0..n) in random pieces of 0..maxpiece bytes. */
static int feed_random(struct es_decoder *d, const uint8_t *s, size_t n, size_t maxpiece,
                       struct rec *r)
{
    size_t at = 0;
    int rc = 0;
    while (at < n && !rc) {
        size_t k = rng_below(maxpiece + 1);
        if (k > n - at)
            k = n - at;
        rc = es_feed(d, s + at, k, r ? on_msg : NULL, r);
        at += k;
    }
    return rc;
}

/* ---- the vectors of wire-formats §4.6 ------------------------------------------------------- */

struct hdr_want {
    const char *name;
    int type;
    const char *value;
    size_t value_len;
};

#define V(s) s, sizeof(s) - 1

struct vector {
    const char *name;
    const char *hex;
    size_t total, headers_len;
    uint32_t prelude_crc, message_crc;
    const char *payload;
    struct hdr_want h[12];
    size_t nh;
};

static const struct vector vectors[] = {
    {"ES-1 empty_message",
     "00000010 00000000 05c248eb 7d98c8ff",
     16,
     0,
     0x05c248eb,
     0x7d98c8ff,
     "",
     {{0}},
     0},
    {"ES-2 payload_no_headers",
     "0000001d 00000000 fd528c5a 7b27666f6f273a27626172277d c3653936",
     29,
     0,
     0xfd528c5a,
     0xc3653936,
     "{'foo':'bar'}",
     {{0}},
     0},
    {"ES-3 payload_one_str_header",
     "0000003d 00000020 07fd8396"
     "0c 636f6e74656e742d74797065 07 0010 6170706c69636174696f6e2f6a736f6e"
     "7b27666f6f273a27626172277d 8d9c08b1",
     61,
     32,
     0x07fd8396,
     0x8d9c08b1,
     "{'foo':'bar'}",
     {{"content-type", 7, V("application/json")}},
     1},
    {"ES-4 int32_header",
     "0000002d 00000010 41c424b8 0a 6576656e742d74797065 04 0000a00c 7b27666f6f273a27626172277d "
     "36f480a0",
     45,
     16,
     0x41c424b8,
     0x36f480a0,
     "{'foo':'bar'}",
     {{"event-type", 4, V("\x00\x00\xa0\x0c")}},
     1},
    {"ES-5 all_headers",
     "000000cc000000af0fae64ca0a6576656e742d74797065040000a00c0c636f6e74656e742d74797065070010617"
     "0706c69636174696f6e2f6a736f6e0a626f6f6c2066616c73650109626f6f6c207472756500046279746502cf"
     "08627974652062756606001449276d2061206c6974746c6520746561706f74210974696d657374616d70080000"
     "000000845fed05696e74313603002a05696e7436340500000000028757b20475756964090102030405060708090"
     "a0b0c0d0e0f107b27666f6f273a27626172277daba5f10c",
     204,
     175,
     0x0fae64ca,
     0xaba5f10c,
     "{'foo':'bar'}",
     {{"event-type", 4, V("\x00\x00\xa0\x0c")},
      {"content-type", 7, V("application/json")},
      {"bool false", 1, V("")},
      {"bool true", 0, V("")},
      {"byte", 2, V("\xcf")},
      {"byte buf", 6, V("I'm a little teapot!")},
      {"timestamp", 8, V("\x00\x00\x00\x00\x00\x84\x5f\xed")},
      {"int16", 3, V("\x00\x2a")},
      {"int64", 5, V("\x00\x00\x00\x00\x02\x87\x57\xb2")},
      {"uuid", 9, V("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10")}},
     10},
    {"ES-B1 chunk",
     "000000e20000004bd638d3ce0b3a6576656e742d747970650700056368756e6b0d3a636f6e74656e742d747970"
     "650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b2262"
     "79746573223a2265794a306558426c496a6f695932397564475675644639696247396a6131396b5a5778305953"
     "4973496d6c755a475634496a6f774c434a6b5a5778305953493665794a306558426c496a6f69644756346446396b"
     "5a57783059534973496e526c654851694f694a4961534a3966513d3d222c2270223a2261626364227d528ecb0b",
     226,
     75,
     0xd638d3ce,
     0x528ecb0b,
     "{\"bytes\":\"eyJ0eXBlIjoiY29udGVudF9ibG9ja19kZWx0YSIsImluZGV4IjowLCJkZWx0YSI6eyJ0eXBlIjoidGV"
     "4dF9kZWx0YSIsInRleHQiOiJIaSJ9fQ==\",\"p\":\"abcd\"}",
     {{":event-type", 7, V("chunk")},
      {":content-type", 7, V("application/json")},
      {":message-type", 7, V("event")}},
     3},
    {"ES-B2 throttling exception",
     "000000b2000000613590d5d30f3a657863657074696f6e2d747970650700137468726f74746c696e6745786365"
     "7074696f6e0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d657373616"
     "7652d74797065070009657863657074696f6e7b226d657373616765223a22546f6f206d616e7920726571756573"
     "74732c20706c656173652077616974206265666f726520747279696e6720616761696e2e227de8ffb26a",
     178,
     97,
     0x3590d5d3,
     0xe8ffb26a,
     "{\"message\":\"Too many requests, please wait before trying again.\"}",
     {{":exception-type", 7, V("throttlingException")},
      {":content-type", 7, V("application/json")},
      {":message-type", 7, V("exception")}},
     3},
    {"ES-B3 contentBlockDelta",
     "000000a300000057a7aafe780b3a6576656e742d74797065070011636f6e74656e74426c6f636b44656c74610d3a"
     "636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d7479706507"
     "00056576656e747b22636f6e74656e74426c6f636b496e646578223a302c2264656c7461223a7b2274657874223a"
     "224869227d2c2270223a226162636465666768227d0bca37be",
     163,
     87,
     0xa7aafe78,
     0x0bca37be,
     "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hi\"},\"p\":\"abcdefgh\"}",
     {{":event-type", 7, V("contentBlockDelta")},
      {":content-type", 7, V("application/json")},
      {":message-type", 7, V("event")}},
     3},
};

#define NVEC (sizeof vectors / sizeof vectors[0])

static uint8_t vec_bytes[NVEC][256];
static size_t vec_len[NVEC];
static struct buf vec_want[NVEC]; /* each vector's expected record, from the document */
static uint8_t all[2048];         /* every vector, concatenated */
static size_t all_len;
static struct buf all_want;

static void want_record(struct buf *b, const struct vector *v)
{
    for (size_t i = 0; i < v->nh; i++)
        if (rec_header(b, v->h[i].name, strlen(v->h[i].name), v->h[i].type,
                       (const uint8_t *)v->h[i].value, v->h[i].value_len))
            abort();
    if (buf_add(b, "|", 1))
        abort();
    add_hex(b, (const uint8_t *)v->payload, strlen(v->payload));
    if (buf_add(b, "\n", 1))
        abort();
}

static void load_vectors(void)
{
    buf_init(&all_want, 1 << 20);
    all_len = 0;
    for (size_t i = 0; i < NVEC; i++) {
        vec_len[i] = unhex(vectors[i].hex, vec_bytes[i], sizeof vec_bytes[i]);
        buf_init(&vec_want[i], 1 << 20);
        want_record(&vec_want[i], &vectors[i]);
        want_record(&all_want, &vectors[i]);
        memcpy(all + all_len, vec_bytes[i], vec_len[i]);
        all_len += vec_len[i];
    }
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_crc32(void)
{
    static uint8_t big[100000], pattern[1024];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7 + 3);
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (uint8_t)i;
    is_int(es_crc32(0, "123456789", 9), 0xCBF43926u, "crc32(\"123456789\") is zlib's check value");
    is_int(es_crc32(0, "", 0), 0, "crc32 of nothing is 0");
    is_int(es_crc32(0, "The quick brown fox jumps over the lazy dog", 43), 0x414FA339u,
           "crc32 of the fox sentence");
    is_int(es_crc32(0, pattern, sizeof pattern), 0xb70b4c26u, "crc32 over every byte value");
    is_int(es_crc32(0, big, sizeof big), 0xf730caa8u, "crc32 of 100000 bytes (zlib value)");
    is_int(es_crc32(es_crc32(0, big, 33333), big + 33333, sizeof big - 33333), 0xf730caa8u,
           "crc32 chains like zlib's");
}

static void test_vector_fields(void)
{
    for (size_t i = 0; i < NVEC; i++) {
        const struct vector *v = &vectors[i];
        const uint8_t *b = vec_bytes[i];
        char name[128];
        snprintf(name, sizeof name, "%s: %zu bytes, the prelude and message CRCs reproduce",
                 v->name, v->total);
        ok(vec_len[i] == v->total && be32(b) == v->total && be32(b + 4) == v->headers_len &&
               be32(b + 8) == v->prelude_crc && es_crc32(0, b, 8) == v->prelude_crc &&
               be32(b + v->total - 4) == v->message_crc &&
               es_crc32(0, b, v->total - 4) == v->message_crc,
           name);
    }
}

static void test_vectors_whole(void)
{
    for (size_t i = 0; i < NVEC; i++) {
        const struct vector *v = &vectors[i];
        struct es_decoder d;
        struct rec r;
        char name[160];
        rec_init(&r);
        r.lo = vec_bytes[i];
        r.hi = vec_bytes[i] + vec_len[i];
        es_init(&d, 0);
        int rc = es_feed(&d, vec_bytes[i], vec_len[i], on_msg, &r);
        snprintf(name, sizeof name, "%s: one message, headers and payload as documented", v->name);
        is_int(rc, 0, name);
        is_int(r.count, 1, name);
        is_int(r.bad_walk, 0, name);
        is_str(r.out.data, vec_want[i].data, name);
        snprintf(name, sizeof name, "%s: decoded in place, nothing buffered", v->name);
        ok(r.in_place == 1 && es_pending(&d) == 0 && d.pending.data == NULL, name);
        es_free(&d);
        buf_free(&r.out);
    }
}

/* Checks of single messages through es_header_string and the typed values of ES-5. */
struct es5_walk {
    int n, bad;
};

static int es5_header(void *ctx, const char *name, size_t name_len, int type, const uint8_t *value,
                      size_t value_len)
{
    struct es5_walk *w = ctx;
    static const uint8_t uuid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    int good = 0;
#define NAMED(s) (name_len == sizeof(s) - 1 && memcmp(name, s, name_len) == 0)
    switch (w->n) {
    case 0:
        good = NAMED("event-type") && type == 4 && value_len == 4 && (int32_t)be32(value) == 40972;
        break;
    case 1:
        good = NAMED("content-type") && type == 7 && value_len == 16 &&
               memcmp(value, "application/json", 16) == 0;
        break;
    case 2:
        good = NAMED("bool false") && type == 1 && value_len == 0;
        break;
    case 3:
        good = NAMED("bool true") && type == 0 && value_len == 0;
        break;
    case 4:
        good = NAMED("byte") && type == 2 && value_len == 1 && (int8_t)value[0] == -49;
        break;
    case 5:
        good = NAMED("byte buf") && type == 6 && value_len == 20 &&
               memcmp(value, "I'm a little teapot!", 20) == 0;
        break;
    case 6:
        good = NAMED("timestamp") && type == 8 && value_len == 8 && be64(value) == 8675309;
        break;
    case 7:
        good = NAMED("int16") && type == 3 && value_len == 2 &&
               (int16_t)(value[0] << 8 | value[1]) == 42;
        break;
    case 8:
        good = NAMED("int64") && type == 5 && value_len == 8 && (int64_t)be64(value) == 42424242;
        break;
    case 9:
        good = NAMED("uuid") && type == 9 && value_len == 16 && memcmp(value, uuid, 16) == 0;
        break;
    }
#undef NAMED
    if (!good) {
        printf("#   ES-5 header %d (%.*s, type %d) is not as documented\n", w->n, (int)name_len,
               name, type);
        w->bad++;
    }
    w->n++;
    return 0;
}

struct one {
    int count;
    uint8_t headers[512], payload[512];
    struct es_message m;
};

static int keep_one(void *ctx, const struct es_message *m)
{
    struct one *o = ctx;
    o->count++;
    if (m->headers_len > sizeof o->headers || m->payload_len > sizeof o->payload)
        return OAI_ELIMIT;
    memcpy(o->headers, m->headers, m->headers_len);
    memcpy(o->payload, m->payload, m->payload_len);
    o->m.headers = o->headers;
    o->m.headers_len = m->headers_len;
    o->m.payload = o->payload;
    o->m.payload_len = m->payload_len;
    return 0;
}

static int decode_one(size_t i, struct one *o)
{
    struct es_decoder d;
    memset(o, 0, sizeof *o);
    es_init(&d, 0);
    int rc = es_feed(&d, vec_bytes[i], vec_len[i], keep_one, o);
    es_free(&d);
    return rc;
}

static int stop_walk(void *ctx, const char *name, size_t name_len, int type, const uint8_t *value,
                     size_t value_len)
{
    int *n = ctx;
    return ++*n == 2 ? -9 : 0;
}

static void test_headers(void)
{
    struct one o;
    struct es5_walk w = {0, 0};
    size_t len = 99;
    const char *s;

    is_int(decode_one(4, &o), 0, "ES-5 decodes");
    is_int(es_header_walk(&o.m, es5_header, &w), 0, "ES-5: the walk succeeds");
    is_int(w.n, 10, "ES-5: ten headers");
    is_int(w.bad, 0, "ES-5: every header type with its documented value");
    s = es_header_string(&o.m, "content-type", &len);
    ok(s && len == 16 && memcmp(s, "application/json", 16) == 0,
       "ES-5: es_header_string finds the string header");
    s = es_header_string(&o.m, "event-type", &len);
    ok(s == NULL && len == 0, "ES-5: es_header_string refuses an int32 header");
    ok(es_header_string(&o.m, "byte buf", NULL) == NULL,
       "ES-5: es_header_string refuses a byte-array header");
    ok(es_header_string(&o.m, "Content-Type", &len) == NULL, "header names are case-sensitive");
    ok(es_header_string(&o.m, "content", &len) == NULL, "a name prefix does not match");
    ok(es_header_string(&o.m, "", &len) == NULL, "the empty name matches nothing");
    int n = 0;
    is_int(es_header_walk(&o.m, stop_walk, &n), -9, "a negative return stops the walk");
    is_int(n, 2, "... after the header that returned it");

    is_int(decode_one(5, &o), 0, "ES-B1 decodes");
    s = es_header_string(&o.m, ":event-type", &len);
    ok(s && len == 5 && memcmp(s, "chunk", 5) == 0, "ES-B1: :event-type is chunk");
    s = es_header_string(&o.m, ":message-type", &len);
    ok(s && len == 5 && memcmp(s, "event", 5) == 0, "ES-B1: :message-type is event");
    ok(es_header_string(&o.m, ":exception-type", &len) == NULL && len == 0,
       "ES-B1: no :exception-type");

    is_int(decode_one(6, &o), 0, "ES-B2 decodes");
    s = es_header_string(&o.m, ":message-type", &len);
    ok(s && len == 9 && memcmp(s, "exception", 9) == 0, "ES-B2: :message-type is exception");
    s = es_header_string(&o.m, ":exception-type", &len);
    ok(s && len == 19 && memcmp(s, "throttlingException", 19) == 0,
       "ES-B2: :exception-type is throttlingException");
    ok(o.m.payload_len == 65 && memcmp(o.m.payload, "{\"message\":\"Too many", 20) == 0,
       "ES-B2: the payload is the exception JSON");

    is_int(decode_one(7, &o), 0, "ES-B3 decodes");
    s = es_header_string(&o.m, ":event-type", &len);
    ok(s && len == 17 && memcmp(s, "contentBlockDelta", 17) == 0,
       "ES-B3: :event-type is contentBlockDelta");

    is_int(decode_one(0, &o), 0, "ES-1 decodes");
    ok(o.count == 1 && o.m.headers_len == 0 && o.m.payload_len == 0,
       "ES-1: no headers, empty payload");
    ok(es_header_string(&o.m, ":event-type", &len) == NULL, "ES-1: no headers to find");
    n = 0;
    is_int(es_header_walk(&o.m, stop_walk, &n), 0, "ES-1: an empty header block walks");
    is_int(n, 0, "ES-1: ... without a call");
}

static void test_every_split(void)
{
    for (size_t i = 0; i < NVEC; i++) {
        size_t len = vec_len[i], failures = 0;
        char name[160];
        for (size_t k = 0; k <= len; k++) {
            struct es_decoder d;
            struct rec r;
            rec_init(&r);
            es_init(&d, 0);
            int rc = es_feed(&d, vec_bytes[i], k, on_msg, &r);
            int mid_ok =
                rc == 0 && es_pending(&d) == (k < len ? k : 0) && r.count == (k == len ? 1 : 0);
            rc = rc ? rc : es_feed(&d, vec_bytes[i] + k, len - k, on_msg, &r);
            if (!mid_ok || rc || r.count != 1 || es_pending(&d) ||
                strcmp(r.out.data, vec_want[i].data) != 0) {
                if (failures++ < 3)
                    printf("#   %s split at %zu: rc %d, count %d\n", vectors[i].name, k, rc,
                           r.count);
            }
            es_free(&d);
            buf_free(&r.out);
        }
        snprintf(name, sizeof name, "%s: split at every offset (two feeds), same message",
                 vectors[i].name);
        is_int(failures, 0, name);

        /* byte by byte */
        struct es_decoder d;
        struct rec r;
        int rc = 0, pend_ok = 1;
        rec_init(&r);
        es_init(&d, 0);
        for (size_t k = 0; k < len && !rc; k++) {
            rc = es_feed(&d, vec_bytes[i] + k, 1, on_msg, &r);
            if (k + 1 < len && (es_pending(&d) != k + 1 || r.count != 0))
                pend_ok = 0;
        }
        snprintf(name, sizeof name, "%s: byte by byte, same message", vectors[i].name);
        ok(rc == 0 && pend_ok && r.count == 1 && es_pending(&d) == 0 &&
               strcmp(r.out.data, vec_want[i].data) == 0,
           name);
        es_free(&d);
        buf_free(&r.out);
    }
}

static void test_stream(void)
{
    struct es_decoder d;
    struct rec r;
    int rc;

    /* the whole stream in one feed: every message in order, all in place */
    rec_init(&r);
    r.lo = all;
    r.hi = all + all_len;
    es_init(&d, 0);
    rc = es_feed(&d, all, all_len, on_msg, &r);
    is_int(rc, 0, "all vectors in one feed");
    is_int(r.count, (int)NVEC, "... each message delivered");
    is_str(r.out.data, all_want.data, "... in order, as documented");
    ok(r.in_place == (int)NVEC && d.pending.data == NULL, "... decoded in place, no copy");
    es_free(&d);
    buf_free(&r.out);

    /* no callback: validation only */
    rng_seed(1);
    es_init(&d, 0);
    rc = feed_random(&d, all, all_len, 50, NULL);
    ok(rc == 0 && es_pending(&d) == 0, "a NULL callback only validates");
    es_free(&d);

    /* byte by byte */
    rec_init(&r);
    es_init(&d, 0);
    rc = 0;
    for (size_t k = 0; k < all_len && !rc; k++)
        rc = es_feed(&d, all + k, 1, on_msg, &r);
    ok(rc == 0 && r.count == (int)NVEC && strcmp(r.out.data, all_want.data) == 0 &&
           es_pending(&d) == 0,
       "all vectors byte by byte");
    es_free(&d);
    buf_free(&r.out);

    /* random splits: 0-byte feeds included, pieces spanning several messages too */
    int failures = 0;
    static const size_t maxpiece[] = {3, 17, 64, 250, 700};
    rng_seed(20240601);
    for (int it = 0; it < 1000; it++) {
        rec_init(&r);
        es_init(&d, it % 2 ? 0 : 256); /* 256: every vector fits exactly under a tight ceiling */
        rc = feed_random(&d, all, all_len, maxpiece[it % 5], &r);
        if (rc || r.count != (int)NVEC || es_pending(&d) ||
            strcmp(r.out.data, all_want.data) != 0) {
            if (failures++ < 3)
                printf("#   iteration %d: rc %d count %d\n", it, rc, r.count);
        }
        es_free(&d);
        buf_free(&r.out);
    }
    is_int(failures, 0, "all vectors in 1000 random splits (seeded): same messages in order");

    /* cut points chosen anywhere, sorted */
    failures = 0;
    for (int it = 0; it < 500; it++) {
        size_t cuts[12];
        size_t nc = 1 + rng_below(12);
        for (size_t j = 0; j < nc; j++)
            cuts[j] = rng_below(all_len + 1);
        for (size_t a = 1; a < nc; a++)
            for (size_t b = a; b > 0 && cuts[b - 1] > cuts[b]; b--) {
                size_t t = cuts[b];
                cuts[b] = cuts[b - 1];
                cuts[b - 1] = t;
            }
        rec_init(&r);
        es_init(&d, 0);
        rc = feed_cuts(&d, all, all_len, cuts, nc, &r);
        if (rc || r.count != (int)NVEC || strcmp(r.out.data, all_want.data) != 0)
            failures++;
        es_free(&d);
        buf_free(&r.out);
    }
    is_int(failures, 0, "all vectors at 500 random sets of cut points");

    /* a feed that ends one message, holds whole ones and starts another */
    size_t cuts[2] = {vec_len[0] + 5, all_len - 7};
    rec_init(&r);
    r.lo = all;
    r.hi = all + all_len;
    es_init(&d, 0);
    rc = es_feed(&d, all, cuts[0], on_msg, &r);
    ok(rc == 0 && r.count == 1 && es_pending(&d) == 5, "first feed: ES-1, 5 bytes of ES-2 kept");
    rc = es_feed(&d, all + cuts[0], cuts[1] - cuts[0], on_msg, &r);
    ok(rc == 0 && r.count == (int)NVEC - 1 && es_pending(&d) == vec_len[NVEC - 1] - 7,
       "second feed: finishes ES-2, decodes the whole ones, keeps the start of ES-B3");
    is_int(r.in_place, (int)NVEC - 2,
           "... ES-1 and the whole messages in between decoded in place");
    rc = es_feed(&d, all + cuts[1], all_len - cuts[1], on_msg, &r);
    ok(rc == 0 && r.count == (int)NVEC && es_pending(&d) == 0 &&
           strcmp(r.out.data, all_want.data) == 0,
       "third feed: ES-B3 completes; same messages");
    es_free(&d);
    buf_free(&r.out);
}

/* expect_bad feeds msg in one piece and byte by byte: OAI_EBADFRAME, no message, and then a dead
 * decoder; at_byte (1-based) is how many bytes must be in when the error is seen. */
static void expect_bad(const char *what, const uint8_t *msg, size_t len, size_t max_frame,
                       size_t at_byte)
{
    struct es_decoder d;
    struct rec r;
    char name[200];
    rec_init(&r);
    es_init(&d, max_frame);
    int rc = es_feed(&d, msg, len, on_msg, &r);
    snprintf(name, sizeof name, "%s: OAI_EBADFRAME, nothing delivered", what);
    ok(rc == OAI_EBADFRAME && r.count == 0, name);
    es_free(&d);

    es_init(&d, max_frame);
    rc = 0;
    size_t k = 0;
    while (k < len && !rc)
        rc = es_feed(&d, msg + k++, 1, on_msg, &r);
    snprintf(name, sizeof name, "%s: byte by byte, refused at byte %zu", what, at_byte);
    ok(rc == OAI_EBADFRAME && k == at_byte && r.count == 0 && es_pending(&d) == 0, name);
    rc = es_feed(&d, vec_bytes[0], vec_len[0], on_msg, &r);
    snprintf(name, sizeof name, "%s: later feeds fail too", what);
    ok(rc == OAI_EBADFRAME && r.count == 0 && d.failed, name);
    is_int(es_feed(&d, NULL, 0, on_msg, &r), OAI_EBADFRAME, name);
    es_free(&d);
    buf_free(&r.out);
}

static void test_negative(void)
{
    uint8_t m[512];
    size_t n;

    /* §4.6: flip a byte in the length → prelude checksum mismatch, seen at byte 12 */
    memcpy(m, vec_bytes[1], vec_len[1]);
    m[3] ^= 0x01;
    expect_bad("ES-2 with total_length flipped", m, vec_len[1], 0, 12);
    memcpy(m, vec_bytes[2], vec_len[2]);
    m[6] ^= 0x80;
    expect_bad("ES-3 with headers_length flipped", m, vec_len[2], 0, 12);
    memcpy(m, vec_bytes[5], vec_len[5]);
    m[9] ^= 0x10;
    expect_bad("ES-B1 with the prelude CRC flipped", m, vec_len[5], 0, 12);

    /* flip a byte in headers or payload → message checksum mismatch, seen when complete */
    memcpy(m, vec_bytes[2], vec_len[2]);
    m[14] ^= 0x20;
    expect_bad("ES-3 with a header byte flipped", m, vec_len[2], 0, vec_len[2]);
    memcpy(m, vec_bytes[1], vec_len[1]);
    m[20] ^= 0x01;
    expect_bad("ES-2 with a payload byte flipped", m, vec_len[1], 0, vec_len[1]);
    memcpy(m, vec_bytes[6], vec_len[6]);
    m[vec_len[6] - 1] ^= 0xff;
    expect_bad("ES-B2 with the message CRC flipped", m, vec_len[6], 0, vec_len[6]);

    /* total_length < 16 and headers_length past the frame, with valid prelude CRCs */
    static const uint32_t small[] = {0, 1, 12, 15};
    for (size_t i = 0; i < 4; i++) {
        char what[64];
        memset(m, 0, 32);
        put32(m, small[i]);
        put32(m + 8, es_crc32(0, m, 8));
        snprintf(what, sizeof what, "total_length %u", small[i]);
        expect_bad(what, m, 32, 0, 12);
    }
    n = build_msg(m, NULL, 0, (const uint8_t *)"abcd", 4); /* total 20: room for 4 */
    put32(m + 4, 5);
    put32(m + 8, es_crc32(0, m, 8));
    expect_bad("headers_length 5 in a 20-byte frame", m, n, 0, 12);
    put32(m + 4, 0xffffffffu);
    put32(m + 8, es_crc32(0, m, 8));
    expect_bad("headers_length 0xffffffff", m, n, 0, 12);
    put32(m, 0xffffffffu);
    put32(m + 8, es_crc32(0, m, 8));
    expect_bad("total_length 0xffffffff", m, n, 0, 12);

    /* headers_length == total_length - 16 is the boundary: allowed (empty payload) */
    {
        static const uint8_t h[] = "\x01x\x07\x00\x02ok";
        struct es_decoder d;
        struct one o;
        memset(&o, 0, sizeof o);
        n = build_msg(m, h, sizeof h - 1, NULL, 0);
        es_init(&d, 0);
        is_int(es_feed(&d, m, n, keep_one, &o), 0, "headers filling the frame: accepted");
        ok(o.count == 1 && o.m.payload_len == 0 && o.m.headers_len == 7,
           "... empty payload, whole header block");
        es_free(&d);
    }

    /* oversized frame with a small max_frame: refused at the prelude, nothing more buffered */
    expect_bad("ES-B1 (226 bytes) under max_frame 64", vec_bytes[5], vec_len[5], 64, 12);
    expect_bad("ES-B1 (226 bytes) under max_frame 225", vec_bytes[5], vec_len[5], 225, 12);
    {
        struct es_decoder d;
        struct rec r;
        rec_init(&r);
        es_init(&d, 226);
        int rc = feed_random(&d, vec_bytes[5], vec_len[5], 9, &r);
        ok(rc == 0 && r.count == 1, "ES-B1 under max_frame 226 (exactly its size): accepted");
        es_free(&d);
        es_init(&d, 1); /* raised to the 16-byte minimum */
        rc = es_feed(&d, vec_bytes[0], 8, on_msg, &r);
        rc = rc ? rc : es_feed(&d, vec_bytes[0] + 8, 8, on_msg, &r);
        ok(rc == 0 && r.count == 2, "max_frame below 16 still takes a 16-byte message");
        es_free(&d);
        /* a big frame announced in a big feed: refused without copying any of it */
        static uint8_t big[4096];
        n = build_msg(big, NULL, 0, big + 2048, 1024);
        es_init(&d, 1000);
        rc = es_feed(&d, big, 600, on_msg, &r);
        ok(n == 1040 && rc == OAI_EBADFRAME && d.pending.data == NULL && es_pending(&d) == 0,
           "an oversized frame is refused before any of it is buffered");
        es_free(&d);
        buf_free(&r.out);
    }

    /* malformed header blocks with valid CRCs */
    static const struct {
        const char *what;
        const char *h;
        size_t hl;
    } bad[] = {
        {"a header with an empty name", V("\x00\x07\x00\x00")},
        {"an unknown header type 10", V("\x01x\x0a")},
        {"header type 255", V("\x01x\xff\x00")},
        {"a name running past the block", V("\x05xy")},
        {"a header without its type byte", V("\x01x")},
        {"a string length running past the block", V("\x01x\x07\x00\x05"
                                                     "abcd")},
        {"a string without its length", V("\x01x\x07\x00")},
        {"an int32 cut short", V("\x01x\x04\x00\x00")},
        {"a uuid cut short", V("\x01x\x09"
                               "0123456789abcde")},
        {"a good header then garbage", V("\x01x\x00\x00")},
        {"a good header then a byte-array past the block", V("\x01x\x01\x01y\x06\x00\x01")},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char what[120];
        n = build_msg(m, (const uint8_t *)bad[i].h, bad[i].hl, (const uint8_t *)"{}", 2);
        snprintf(what, sizeof what, "valid CRCs, %s", bad[i].what);
        expect_bad(what, m, n, 0, n);
        struct es_message em = {(const uint8_t *)bad[i].h, bad[i].hl, NULL, 0};
        int calls = 0;
        snprintf(what, sizeof what, "es_header_walk refuses %s before any call", bad[i].what);
        ok(es_header_walk(&em, stop_walk, &calls) == OAI_EBADFRAME && calls == 0, what);
        size_t len = 5;
        snprintf(what, sizeof what, "es_header_string finds nothing in %s", bad[i].what);
        ok(es_header_string(&em, "x", &len) == NULL && len == 0, what);
    }

    /* the messages before a bad one are delivered; the bad one and later ones are not */
    {
        struct es_decoder d;
        struct rec r;
        memcpy(m, all, all_len > sizeof m ? sizeof m : all_len);
        size_t cut = vec_len[0] + vec_len[1] + vec_len[2];
        m[cut - 3] ^= 0x04; /* ES-3's message CRC */
        rec_init(&r);
        es_init(&d, 0);
        int rc = es_feed(&d, m, cut + 20, on_msg, &r);
        ok(rc == OAI_EBADFRAME && r.count == 2, "ES-1, ES-2 delivered, then corrupted ES-3 fails");
        is_int(es_pending(&d), 0, "... and nothing is kept");
        es_free(&d);
        buf_free(&r.out);
    }

    /* truncated input: es_pending tells */
    {
        struct es_decoder d;
        struct rec r;
        rec_init(&r);
        es_init(&d, 0);
        int rc = es_feed(&d, vec_bytes[5], vec_len[5] - 5, on_msg, &r);
        ok(rc == 0 && r.count == 0 && es_pending(&d) == vec_len[5] - 5,
           "ES-B1 cut 5 bytes short: no message, es_pending > 0 at the end");
        es_free(&d);
        es_init(&d, 0);
        rc = es_feed(&d, all, vec_len[0] + vec_len[1] + 5, on_msg, &r);
        ok(rc == 0 && r.count == 2 && es_pending(&d) == 5,
           "a stream ending in a prelude fragment: es_pending is 5");
        es_free(&d);
        ok(es_pending(&d) == 0 && d.pending.data == NULL, "es_free leaves nothing behind");
        buf_free(&r.out);
    }

    /* fn's negative code stops decoding and is passed back; the decoder stays failed */
    {
        struct es_decoder d;
        struct rec r;
        rec_init(&r);
        r.fail_at = 3;
        es_init(&d, 0);
        int rc = es_feed(&d, all, all_len, on_msg, &r);
        ok(rc == -7 && r.count == 3, "a callback's -7 stops decoding at that message");
        rc = es_feed(&d, all, vec_len[0], on_msg, &r);
        ok(rc == -7 && r.count == 3, "... and later feeds fail the same way");
        es_free(&d);
        buf_free(&r.out);
        rec_init(&r);
        r.fail_at = 2;
        es_init(&d, 0);
        rc = feed_random(&d, all, all_len, 5, &r);
        ok(rc == -7 && r.count == 2, "... also when the message was assembled from pieces");
        es_free(&d);
        buf_free(&r.out);
    }
}

/* Every single-bit corruption of the concatenated stream is caught (CRC-32 detects every
 * single-bit error), at the message that holds it, with every earlier message delivered. */
static void test_every_bitflip(void)
{
    static uint8_t m[sizeof all];
    size_t starts[NVEC + 1], failures = 0;
    log_set_level(LOG_ERROR); /* hundreds of refused frames: keep the log quiet */
    starts[0] = 0;
    for (size_t i = 0; i < NVEC; i++)
        starts[i + 1] = starts[i] + vec_len[i];
    rng_seed(7);
    for (size_t pos = 0; pos < all_len; pos++) {
        int idx = 0;
        while (starts[idx + 1] <= pos)
            idx++;
        memcpy(m, all, all_len);
        m[pos] ^= (uint8_t)(1u << (pos % 8));
        struct es_decoder d;
        struct rec r;
        rec_init(&r);
        es_init(&d, 0);
        int rc = pos % 2 ? es_feed(&d, m, all_len, on_msg, &r)
                         : feed_random(&d, m, all_len, 1 + pos % 40, &r);
        if (rc != OAI_EBADFRAME || r.count != idx ||
            strncmp(r.out.data ? r.out.data : "", all_want.data, r.out.len) != 0) {
            if (failures++ < 3)
                printf("#   bit flip at %zu: rc %d, count %d (want %d)\n", pos, rc, r.count, idx);
        }
        es_free(&d);
        buf_free(&r.out);
    }
    is_int(failures, 0, "every single-bit flip in the stream is refused at its message");
    log_set_level(LOG_WARN);
}

/* An independent reader of header blocks, to judge random ones. */
static int ref_headers_valid(const uint8_t *b, size_t n)
{
    static const int fixed[10] = {0, 0, 1, 2, 4, 8, -1, -1, 8, 16};
    size_t i = 0;
    while (i < n) {
        size_t nl = b[i++];
        if (nl == 0 || i + nl + 1 > n)
            return 0;
        i += nl;
        int t = b[i++];
        if (t > 9)
            return 0;
        size_t vl;
        if (fixed[t] >= 0) {
            vl = (size_t)fixed[t];
        } else {
            if (i + 2 > n)
                return 0;
            vl = (size_t)b[i] << 8 | b[i + 1];
            i += 2;
        }
        if (i + vl > n)
            return 0;
        i += vl;
    }
    return 1;
}

/* random_header_block writes 0..6 well-formed headers of random types; returns the length. */
static size_t random_header_block(uint8_t *h, size_t cap)
{
    static const int fixed[10] = {0, 0, 1, 2, 4, 8, -1, -1, 8, 16};
    size_t n = 0, count = rng_below(7);
    for (size_t k = 0; k < count; k++) {
        size_t nl = 1 + rng_below(20);
        int t = (int)rng_below(10);
        size_t vl = fixed[t] >= 0 ? (size_t)fixed[t] : rng_below(40);
        if (n + 1 + nl + 1 + 2 + vl > cap)
            break;
        h[n++] = (uint8_t)nl;
        for (size_t j = 0; j < nl; j++)
            h[n++] = (uint8_t)('a' + rng_below(26));
        h[n++] = (uint8_t)t;
        if (fixed[t] < 0) {
            h[n++] = (uint8_t)(vl >> 8);
            h[n++] = (uint8_t)vl;
        }
        for (size_t j = 0; j < vl; j++)
            h[n++] = (uint8_t)rng();
    }
    return n;
}

static void test_random(void)
{
    static uint8_t junk[8192], h[600], p[600], stream[16384], copy[16384];
    int crashes_would_show = 1, mismatches = 0, roundtrip_bad = 0;
    struct es_decoder d;
    struct rec r;

    log_set_level(LOG_ERROR); /* thousands of refused frames: keep the log quiet */
    rng_seed(12345);

    /* random bytes, random splits, several ceilings: an error or nothing, never a crash */
    for (int it = 0; it < 2000; it++) {
        size_t n = rng_below(sizeof junk);
        for (size_t j = 0; j < n; j++)
            junk[j] = (uint8_t)rng();
        if (it % 3 == 0 && n >= 12) { /* a plausible prelude with a valid CRC */
            put32(junk, (uint32_t)(16 + rng_below(n)));
            put32(junk + 4, (uint32_t)rng_below(64));
            put32(junk + 8, es_crc32(0, junk, 8));
        }
        rec_init(&r);
        es_init(&d, it % 4 == 0 ? 64 : it % 4 == 1 ? 1024 : 0);
        int rc = feed_random(&d, junk, n, 1 + rng_below(300), &r);
        if (rc != 0 && rc != OAI_EBADFRAME)
            crashes_would_show = 0;
        if (rc == 0 && es_pending(&d) > n)
            crashes_would_show = 0;
        es_free(&d);
        buf_free(&r.out);
    }
    ok(crashes_would_show, "2000 random inputs: only 0 or OAI_EBADFRAME, pending bounded");

    /* frames with valid CRCs and random header blocks: delivered exactly when the block is
     * well-formed by an independent reader */
    for (int it = 0; it < 3000; it++) {
        size_t hl = rng_below(80), pl = rng_below(100);
        for (size_t j = 0; j < hl; j++)
            h[j] = (uint8_t)(it % 2 ? rng() : rng_below(12)); /* small bytes: some are valid */
        for (size_t j = 0; j < pl; j++)
            p[j] = (uint8_t)rng();
        size_t n = build_msg(stream, h, hl, p, pl);
        rec_init(&r);
        es_init(&d, 0);
        int rc = feed_random(&d, stream, n, 1 + rng_below(40), &r);
        int want_ok = ref_headers_valid(h, hl);
        if ((want_ok && (rc != 0 || r.count != 1 || r.bad_walk)) ||
            (!want_ok && (rc != OAI_EBADFRAME || r.count != 0)))
            mismatches++;
        es_free(&d);
        buf_free(&r.out);
    }
    is_int(mismatches, 0, "3000 random header blocks with valid CRCs: judged like the reference");

    /* random well-formed messages in one stream: each round-trips through the decoder */
    for (int it = 0; it < 300; it++) {
        size_t n = 0, count = 1 + rng_below(20);
        struct buf want;
        buf_init(&want, 1 << 20);
        for (size_t k = 0; k < count; k++) {
            size_t hl = random_header_block(h, sizeof h), pl = rng_below(500);
            for (size_t j = 0; j < pl; j++)
                p[j] = (uint8_t)rng();
            if (n + 16 + hl + pl > sizeof stream)
                break;
            n += build_msg(stream + n, h, hl, p, pl);
            struct es_message em = {h, hl, p, pl};
            if (es_header_walk(&em, rec_header, &want) || buf_add(&want, "|", 1))
                abort();
            add_hex(&want, p, pl);
            if (buf_add(&want, "\n", 1))
                abort();
        }
        memcpy(copy, stream, n);
        rec_init(&r);
        es_init(&d, 0);
        int rc = feed_random(&d, copy, n, 1 + rng_below(700), &r);
        if (rc || es_pending(&d) || r.bad_walk || strcmp(r.out.data, want.data) != 0)
            roundtrip_bad++;
        es_free(&d);
        buf_free(&r.out);
        buf_free(&want);
    }
    is_int(roundtrip_bad, 0, "300 random streams of well-formed messages decode exactly");
    log_set_level(LOG_WARN);
}

/* A frame far larger than one feed: assembled from many pieces, within the ceiling, and the
 * big pending buffer is given back afterwards. */
struct big_seen {
    int count;
    size_t payload_len;
    uint32_t payload_crc;
    int chunk;
};

static int on_big(void *ctx, const struct es_message *m)
{
    struct big_seen *b = ctx;
    size_t len = 0;
    const char *s = es_header_string(m, ":event-type", &len);
    b->count++;
    b->payload_len = m->payload_len;
    b->payload_crc = es_crc32(0, m->payload, m->payload_len);
    b->chunk = s && len == 5 && memcmp(s, "chunk", 5) == 0;
    return 0;
}

static void test_large(void)
{
    size_t pl = 3 * 1024 * 1024;
    uint8_t *msg = malloc(pl + 64), *payload = malloc(pl);
    static const uint8_t h[] = "\x0b:event-type\x07\x00\x05"
                               "chunk";
    struct es_decoder d;
    struct big_seen seen = {0, 0, 0, 0};
    if (!msg || !payload)
        abort();
    for (size_t i = 0; i < pl; i++)
        payload[i] = (uint8_t)(i * 31 + 7);
    size_t n = build_msg(msg, h, sizeof h - 1, payload, pl);

    es_init(&d, 0);
    size_t at = 0;
    int rc = 0;
    rng_seed(99);
    while (at < n && !rc) {
        size_t k = 1 + rng_below(16384);
        if (k > n - at)
            k = n - at;
        rc = es_feed(&d, msg + at, k, on_big, &seen);
        at += k;
    }
    ok(rc == 0 && seen.count == 1 && es_pending(&d) == 0, "a 3 MiB frame in pieces of <= 16 KiB");
    ok(seen.payload_len == pl && seen.payload_crc == es_crc32(0, payload, pl) && seen.chunk,
       "... its headers and payload delivered whole");
    ok(d.pending.data == NULL, "... and the big pending buffer was released");
    es_free(&d);

    es_init(&d, n);
    rc = es_feed(&d, msg, n, on_big, &seen);
    ok(rc == 0 && seen.count == 2, "the same frame in one feed under max_frame == its size");
    es_free(&d);
    es_init(&d, n - 1);
    rc = es_feed(&d, msg, n, on_big, &seen);
    ok(rc == OAI_EBADFRAME && seen.count == 2, "... and refused one byte over max_frame");
    es_free(&d);
    free(msg);
    free(payload);
}

int main(void)
{
    tap_start();
    load_vectors();
    test_crc32();
    test_vector_fields();
    test_vectors_whole();
    test_headers();
    test_every_split();
    test_stream();
    test_negative();
    test_every_bitflip();
    test_random();
    test_large();
    for (size_t i = 0; i < NVEC; i++)
        buf_free(&vec_want[i]);
    buf_free(&all_want);
    return tap_done();
}
