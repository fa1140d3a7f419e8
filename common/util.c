#include "common/util.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"

int64_t util_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void util_random_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    size_t need = (n + 1) / 2;
    if (need > sizeof raw)
        need = sizeof raw;
    size_t got = 0;
    while (got < need) {
        ssize_t r = getrandom(raw + got, need - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            abort(); /* no entropy source: nothing sensible to continue with */
        got += (size_t)r;
    }
    for (size_t i = 0; i < n && i / 2 < need; i++)
        out[i] = hex[(i % 2) ? (raw[i / 2] & 15) : (raw[i / 2] >> 4)];
    out[n] = '\0';
}

static int blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int util_list_next(const char **cursor, const char **item, size_t *len)
{
    const char *p = *cursor;
    if (!p)
        return 0;
    const char *end = p + strcspn(p, ","), *b = end;
    while (p < b && blank(*p))
        p++;
    while (b > p && blank(b[-1]))
        b--;
    *item = p;
    *len = (size_t)(b - p);
    *cursor = *end ? end + 1 : NULL;
    return 1;
}

int util_list_has(const char *list, const char *s, size_t n)
{
    const char *e;
    size_t len;
    while (util_list_next(&list, &e, &len))
        if (len == n && memcmp(e, s, n) == 0)
            return 1;
    return 0;
}

int util_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int util_parse_long(const char *s, long long min, long long max, long long *out)
{
    if (!s || !*s)
        return OAI_EBADREQ;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno || *end != '\0' || v < min || v > max || (*s != '-' && (*s < '0' || *s > '9')))
        return OAI_EBADREQ;
    *out = v;
    return 0;
}

/* The length of the well-formed sequence at p[0..n), or 0 if it is ill-formed; *bad gets the
 * length of its maximal subpart then (the bytes one U+FFFD stands for). */
static size_t utf8_seq(const unsigned char *p, size_t n, size_t *bad)
{
    unsigned c = p[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF; /* range of the second byte */
    *bad = 1;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else
        return 0;
    for (size_t i = 1; i < need; i++) {
        if (i >= n)
            return 0;
        unsigned b = p[i];
        if (i == 1 ? b < lo || b > hi : b < 0x80 || b > 0xBF)
            return 0;
        *bad = i + 1;
    }
    return need;
}

size_t util_utf8_prefix(const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t i = 0, bad;
    while (i < n) {
        if (u[i] < 0x80) { /* ASCII runs: the common case */
            i++;
            continue;
        }
        size_t k = utf8_seq(u + i, n - i, &bad);
        if (!k)
            break;
        i += k;
    }
    return i;
}

int util_utf8_repair(const char *p, size_t n, struct buf *out)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t i = 0, bad;
    while (i < n) {
        size_t ok = util_utf8_prefix(p + i, n - i);
        int rc = buf_add(out, p + i, ok);
        if (rc)
            return rc;
        i += ok;
        if (i == n)
            break;
        utf8_seq(u + i, n - i, &bad);
        if ((rc = buf_add(out, "\xEF\xBF\xBD", 3)) != 0)
            return rc;
        i += bad;
    }
    return 0;
}

int util_parse_json(const char *p, size_t n, json_object **out)
{
    *out = NULL;
    if (n > INT32_MAX)
        return OAI_EBADJSON;
    json_tokener *tok = json_tokener_new_ex(LIMIT_JSON_DEPTH);
    if (!tok)
        return OAI_ENOMEM;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *obj = json_tokener_parse_ex(tok, p, (int)n);
    int rc = 0;
    if (!obj || json_tokener_get_error(tok) != json_tokener_success) {
        rc = OAI_EBADJSON;
        goto done;
    }
    for (size_t i = json_tokener_get_parse_end(tok); i < n; i++) {
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r') {
            rc = OAI_EBADJSON;
            goto done;
        }
    }
    *out = obj;
    obj = NULL;
done:
    json_object_put(obj);
    json_tokener_free(tok);
    return rc;
}

const char *util_json_plain(json_object *obj, size_t *len)
{
    return json_object_to_json_string_length(
        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
}

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void util_init(void)
{
    OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL);
    pthread_once(&sha256_once, sha256_fetch);
}

void util_thread_done(void)
{
    OPENSSL_thread_stop();
}

void util_sha256(const void *data, size_t len, unsigned char out[32])
{
    pthread_once(&sha256_once, sha256_fetch);
    if (!sha256_md || !EVP_Digest(data, len, out, NULL, sha256_md, NULL))
        abort(); /* SHA-256 missing from libcrypto: nothing sensible to continue with */
}

int util_ct_equal(const char *a, const char *b)
{
    /* Compare digests so that neither the length nor the content leaks through timing. */
    unsigned char da[32], db[32];
    util_sha256(a, strlen(a), da);
    util_sha256(b, strlen(b), db);
    return CRYPTO_memcmp(da, db, sizeof da) == 0;
}

void util_pretty_tokens(int64_t n, char *out, size_t len)
{
    if (n < 1000)
        snprintf(out, len, "%lld", (long long)n);
    else if (n < 1000000)
        snprintf(out, len, "%.1fk", (double)n / 1e3);
    else if (n < 1000000000)
        snprintf(out, len, "%.2fm", (double)n / 1e6);
    else
        snprintf(out, len, "%.3fb", (double)n / 1e9);
}

const char *util_http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 529:
        return "Overloaded";
    default:
        return NULL;
    }
}
