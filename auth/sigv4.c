/*
 * sigv4.c - AWS Signature Version 4, header form (see sigv4.h and reference/wire-formats.md §5).
 *
 * Canonical request, in the order of §5.1:
 *   method      upper-case letters as given.
 *   URI         the wire path normalised as botocore's remove_dot_segments does (empty and "."
 *               segments dropped, ".." pops one segment, a trailing "/" kept when something is
 *               left, "" or NULL is "/"), then every byte outside A-Za-z0-9-_.~ and "/" written
 *               as %XX (upper-case hex). The path is taken as sent, so "%3A" becomes "%253A".
 *   query       the raw query split on "&" (empty pieces ignored), each piece split at its
 *               first "="; names and values are percent-decoded (they are on the wire already
 *               encoded, and AWS recomputes from the decoded parameters) and encoded again with
 *               the unreserved rule, so raw bytes and their %XX forms canonicalise alike; sorted
 *               by encoded name, then encoded value; "name=" for empty values.
 *   headers     host, x-amz-date, x-amz-security-token (when a token is set) and rq->headers;
 *               names lower-cased, values trimmed with inner runs of spaces/tabs collapsed to
 *               one space, sorted by name (stable, so repeated names keep their given order)
 *               and repeated names joined with ",".
 *   payload     lower-case hex SHA-256 of the body.
 * Nothing here logs; secrets, derived keys and signatures never leave this file except as the
 * Authorization value, and the key material on the stack is cleansed before returning.
 */
#include "auth/sigv4.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"

#define ALGORITHM    "AWS4-HMAC-SHA256"
#define SCOPE_END    "aws4_request"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define CANON_MAX    (64 * 1024) /* canonical request */
#define STS_MAX      512         /* string to sign: 4 short lines */
#define SIGNED_MAX   1024        /* the SignedHeaders list */
#define QUERY_MAX    8192        /* raw query string */
#define SECRET_MAX   256         /* AWS secret keys are 40 characters */
#define LABEL_MAX    128         /* access key id, region, service */
#define METHOD_MAX   16
#define HNAME_MAX    128 /* one header name */
#define HEADERS_ALL  (SIGV4_MAX_HEADERS + 3)
#define AMZ_DATE_LEN 16
#define DATE_LEN     8
#define TOKEN_PREFIX "X-Amz-Security-Token: "
#define DATE_PREFIX  "X-Amz-Date: "
#define AUTHZ_PREFIX "Authorization: "

/* ---- small helpers ------------------------------------------------------------------------ */

static EVP_MD *sha256_md;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* hmac writes HMAC-SHA256(key, data) to out; 0 or OAI_EINTERNAL. */
static int hmac(const void *key, size_t key_len, const void *data, size_t len,
                unsigned char out[32])
{
    unsigned int out_len = 0;
    pthread_once(&md_once, md_fetch);
    if (!sha256_md || key_len > (size_t)INT32_MAX)
        return OAI_EINTERNAL;
    if (!HMAC(sha256_md, key, (int)key_len, data, len, out, &out_len) || out_len != 32)
        return OAI_EINTERNAL;
    return 0;
}

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* add_byte_encoded appends c, or %XX when c is not unreserved (keep_slash: "/" stays). */
static int add_byte_encoded(struct buf *b, unsigned char c, int keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    if (unreserved(c) || (keep_slash && c == '/'))
        return buf_add(b, &c, 1);
    char esc[3] = {'%', digits[c >> 4], digits[c & 15]};
    return buf_add(b, esc, sizeof esc);
}

/* label_ok: a credential-scope part or access key id (non-empty, [A-Za-z0-9._-], bounded). */
static int label_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++) {
        if (n >= LABEL_MAX || !(unreserved(*p) && *p != '~'))
            return 0;
    }
    return 1;
}

/* amz_date_ok: exactly YYYYMMDDTHHMMSSZ. */
static int amz_date_ok(const char *s)
{
    if (!s || strlen(s) != AMZ_DATE_LEN || s[8] != 'T' || s[15] != 'Z')
        return 0;
    for (int i = 0; i < 15; i++) {
        if (i != 8 && (s[i] < '0' || s[i] > '9'))
            return 0;
    }
    return 1;
}

/* printable_ok: a session token or host value is printable ASCII without spaces. */
static int printable_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f)
            return 0;
    }
    return 1;
}

static int has_token(const struct sigv4_key *key)
{
    return key->session_token && key->session_token[0];
}

/* check_key validates everything of key the canonical request and the scope use. */
static int check_key(const struct sigv4_key *key)
{
    if (!key || !label_ok(key->access_key) || !label_ok(key->region) || !label_ok(key->service))
        return OAI_EBADREQ;
    if (!key->secret_key || !key->secret_key[0])
        return OAI_EBADREQ;
    if (strlen(key->secret_key) > SECRET_MAX)
        return OAI_ELIMIT;
    if (has_token(key) && !printable_ok(key->session_token))
        return OAI_EBADREQ;
    return 0;
}

/* ---- canonical URI ------------------------------------------------------------------------ */

/* canon_uri appends the canonical URI of path (see the top of the file). */
static int canon_uri(const char *path, struct buf *out)
{
    struct buf norm;
    int rc = 0;
    buf_init(&norm, LIMIT_PATH);

    if (!path || !*path) {
        rc = buf_adds(out, "/");
        goto done;
    }
    size_t n = strlen(path);
    if (n > LIMIT_PATH) {
        rc = OAI_ELIMIT;
        goto done;
    }
    if (path[0] != '/') {
        rc = OAI_EBADREQ;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c < 0x20 || c == 0x7f || c == '?' || c == '#') {
            rc = OAI_EBADREQ;
            goto done;
        }
    }

    const char *p = path;
    const char *end = path + n;
    while (p < end) {
        const char *seg = p;
        while (p < end && *p != '/')
            p++;
        size_t len = (size_t)(p - seg);
        if (p < end)
            p++; /* the '/' */
        if (len == 0 || (len == 1 && seg[0] == '.'))
            continue;
        if (len == 2 && seg[0] == '.' && seg[1] == '.') {
            while (norm.len > 0 && norm.data[norm.len - 1] != '/')
                norm.len--;
            if (norm.len > 0)
                norm.len--; /* the '/' before the popped segment */
            if (norm.data)
                norm.data[norm.len] = '\0';
            continue;
        }
        rc = buf_add(&norm, "/", 1);
        if (!rc)
            rc = buf_add(&norm, seg, len);
        if (rc)
            goto done;
    }
    if (norm.len == 0) {
        rc = buf_adds(out, "/");
        goto done;
    }
    if (path[n - 1] == '/') {
        rc = buf_add(&norm, "/", 1);
        if (rc)
            goto done;
    }
    for (size_t i = 0; i < norm.len && !rc; i++)
        rc = add_byte_encoded(out, (unsigned char)norm.data[i], 1);

done:
    buf_free(&norm);
    return rc;
}

/* ---- canonical query ---------------------------------------------------------------------- */

struct qpair {
    const char *name;
    const char *value;
};

static int qpair_cmp(const void *a, const void *b)
{
    const struct qpair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* add_reencoded appends p[0..n) percent-decoded and encoded again, then a NUL (so the scratch
 * buffer holds C strings). A '%' not followed by two hex digits is OAI_EBADREQ. */
static int add_reencoded(struct buf *b, const char *p, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '%') {
            if (n - i < 3)
                return OAI_EBADREQ;
            int hi = util_hexval((unsigned char)p[i + 1]);
            int lo = util_hexval((unsigned char)p[i + 2]);
            if (hi < 0 || lo < 0)
                return OAI_EBADREQ;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        rc = add_byte_encoded(b, c, 0);
    }
    if (!rc)
        rc = buf_add(b, "", 1);
    return rc;
}

/* canon_query appends the canonical query string of the raw query q (NULL or "" → nothing). */
static int canon_query(const char *q, struct buf *out)
{
    struct buf scratch;
    struct qpair *pairs = NULL;
    size_t *offs = NULL;
    size_t npairs = 0;
    int rc = 0;
    buf_init(&scratch, 4 * QUERY_MAX + 16); /* 3 per byte + 2 NULs per pair */

    if (!q || !*q)
        goto done;
    size_t n = strlen(q);
    if (n > QUERY_MAX) {
        rc = OAI_ELIMIT;
        goto done;
    }
    size_t max_pairs = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)q[i];
        if (c < 0x20 || c == 0x7f || c == '#') {
            rc = OAI_EBADREQ;
            goto done;
        }
        if (c == '&')
            max_pairs++;
    }
    pairs = calloc(max_pairs, sizeof *pairs);
    offs = calloc(2 * max_pairs, sizeof *offs);
    if (!pairs || !offs) {
        rc = OAI_ENOMEM;
        goto done;
    }

    const char *p = q;
    const char *end = q + n;
    while (p < end) {
        const char *piece = p;
        while (p < end && *p != '&')
            p++;
        size_t len = (size_t)(p - piece);
        if (p < end)
            p++;
        if (len == 0)
            continue;
        const char *eq = memchr(piece, '=', len);
        size_t name_len = eq ? (size_t)(eq - piece) : len;
        offs[2 * npairs] = scratch.len;
        rc = add_reencoded(&scratch, piece, name_len);
        if (rc)
            goto done;
        offs[2 * npairs + 1] = scratch.len;
        if (eq)
            rc = add_reencoded(&scratch, eq + 1, len - name_len - 1);
        else
            rc = add_reencoded(&scratch, "", 0);
        if (rc)
            goto done;
        npairs++;
    }
    /* the scratch buffer no longer moves: turn offsets into pointers */
    for (size_t i = 0; i < npairs; i++) {
        pairs[i].name = scratch.data + offs[2 * i];
        pairs[i].value = scratch.data + offs[2 * i + 1];
    }
    qsort(pairs, npairs, sizeof *pairs, qpair_cmp);
    for (size_t i = 0; i < npairs && !rc; i++) {
        rc = buf_printf(out, "%s%s=%s", i ? "&" : "", pairs[i].name, pairs[i].value);
    }

done:
    free(pairs);
    free(offs);
    buf_free(&scratch);
    return rc;
}

/* ---- canonical headers -------------------------------------------------------------------- */

struct hdr {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
    int order;
};

static int hdr_cmp(const void *a, const void *b)
{
    const struct hdr *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    for (size_t i = 0; i < n; i++) {
        unsigned char cx = lower((unsigned char)x->name[i]);
        unsigned char cy = lower((unsigned char)y->name[i]);
        if (cx != cy)
            return cx < cy ? -1 : 1;
    }
    if (x->name_len != y->name_len)
        return x->name_len < y->name_len ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int same_name(const struct hdr *x, const struct hdr *y)
{
    if (x->name_len != y->name_len)
        return 0;
    for (size_t i = 0; i < x->name_len; i++) {
        if (lower((unsigned char)x->name[i]) != lower((unsigned char)y->name[i]))
            return 0;
    }
    return 1;
}

static int tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* name_is: the header name n[0..len) equals the lower-case literal lit, ignoring case. */
static int name_is(const char *n, size_t len, const char *lit)
{
    if (strlen(lit) != len)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (lower((unsigned char)n[i]) != (unsigned char)lit[i])
            return 0;
    }
    return 1;
}

/* parse_header splits "Name: value" into h; refuses names that are not tokens, values with
 * CR, LF or other control characters (tab allowed), and the headers this module adds itself. */
static int parse_header(const char *line, int order, struct hdr *h)
{
    const char *colon = strchr(line, ':');
    if (!colon || colon == line)
        return OAI_EBADREQ;
    size_t name_len = (size_t)(colon - line);
    if (name_len > HNAME_MAX)
        return OAI_EBADREQ;
    for (size_t i = 0; i < name_len; i++) {
        if (!tchar((unsigned char)line[i]))
            return OAI_EBADREQ;
    }
    for (const unsigned char *p = (const unsigned char *)colon + 1; *p; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return OAI_EBADREQ;
    }
    if (name_is(line, name_len, "host") || name_is(line, name_len, "x-amz-date") ||
        name_is(line, name_len, "x-amz-security-token") || name_is(line, name_len, "authorization"))
        return OAI_EBADREQ;
    h->name = line;
    h->name_len = name_len;
    h->value = colon + 1;
    h->value_len = strlen(colon + 1);
    h->order = order;
    return 0;
}

/* add_trimmed appends v[0..n) without leading/trailing spaces or tabs and with every inner
 * run of them written as one space. */
static int add_trimmed(struct buf *b, const char *v, size_t n)
{
    int rc = 0;
    int pending = 0, started = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (v[i] == ' ' || v[i] == '\t') {
            pending = started;
            continue;
        }
        if (pending)
            rc = buf_add(b, " ", 1);
        if (!rc)
            rc = buf_add(b, &v[i], 1);
        pending = 0;
        started = 1;
    }
    return rc;
}

static int add_lower(struct buf *b, const char *s, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = lower((unsigned char)s[i]);
        rc = buf_add(b, &c, 1);
    }
    return rc;
}

/* canon_headers appends the canonical header block (each "name:value\n") to out and the
 * SignedHeaders list to signed_hdrs. */
static int canon_headers(const struct sigv4_key *key, const struct sigv4_request *rq,
                         const char *amz_date, struct buf *out, struct buf *signed_hdrs)
{
    struct hdr h[HEADERS_ALL];
    size_t n = 0;
    int rc = 0;

    if (!rq->host || !*rq->host || !printable_ok(rq->host))
        return OAI_EBADREQ;
    h[n++] = (struct hdr){"host", 4, rq->host, strlen(rq->host), 0};
    h[n++] = (struct hdr){"x-amz-date", 10, amz_date, strlen(amz_date), 1};
    if (has_token(key)) {
        h[n] = (struct hdr){"x-amz-security-token", 20, key->session_token,
                            strlen(key->session_token), 2};
        n++;
    }
    for (int i = 0; i < SIGV4_MAX_HEADERS && rq->headers[i]; i++) {
        rc = parse_header(rq->headers[i], 3 + i, &h[n]);
        if (rc)
            return rc;
        n++;
    }
    qsort(h, n, sizeof h[0], hdr_cmp);

    for (size_t i = 0; i < n && !rc; i++) {
        int first = (i == 0 || !same_name(&h[i - 1], &h[i]));
        if (first) {
            if (i > 0)
                rc = buf_add(out, "\n", 1);
            if (!rc && signed_hdrs->len > 0)
                rc = buf_add(signed_hdrs, ";", 1);
            if (!rc)
                rc = add_lower(signed_hdrs, h[i].name, h[i].name_len);
            if (!rc)
                rc = add_lower(out, h[i].name, h[i].name_len);
            if (!rc)
                rc = buf_add(out, ":", 1);
        } else {
            rc = buf_add(out, ",", 1);
        }
        if (!rc)
            rc = add_trimmed(out, h[i].value, h[i].value_len);
    }
    if (!rc)
        rc = buf_add(out, "\n", 1);
    return rc;
}

/* ---- the request and the signature ------------------------------------------------------- */

/* build_canonical writes the canonical request to canon and the SignedHeaders list to
 * signed_hdrs (both empty buffers owned by the caller). */
static int build_canonical(const struct sigv4_key *key, const struct sigv4_request *rq,
                           const char *amz_date, struct buf *canon, struct buf *signed_hdrs)
{
    unsigned char digest[32];
    char hex[65];
    int rc = check_key(key);
    if (rc)
        return rc;
    if (!rq || !amz_date_ok(amz_date) || (!rq->body && rq->body_len))
        return OAI_EBADREQ;
    if (!rq->method || !*rq->method || strlen(rq->method) > METHOD_MAX)
        return OAI_EBADREQ;
    for (const char *m = rq->method; *m; m++) {
        if (*m < 'A' || *m > 'Z')
            return OAI_EBADREQ;
    }

    rc = buf_printf(canon, "%s\n", rq->method);
    if (!rc)
        rc = canon_uri(rq->path, canon);
    if (!rc)
        rc = buf_add(canon, "\n", 1);
    if (!rc)
        rc = canon_query(rq->query, canon);
    if (!rc)
        rc = buf_add(canon, "\n", 1);
    if (!rc)
        rc = canon_headers(key, rq, amz_date, canon, signed_hdrs);
    if (rc)
        return rc;
    if (rq->body_len) {
        util_sha256(rq->body, rq->body_len, digest);
        to_hex(digest, sizeof digest, hex);
    } else {
        memcpy(hex, EMPTY_SHA256, sizeof hex);
    }
    return buf_printf(canon, "\n%s\n%s", signed_hdrs->data, hex);
}

/* build_sts writes the string to sign for the canonical request canon to sts. */
static int build_sts(const struct sigv4_key *key, const char *amz_date, const struct buf *canon,
                     struct buf *sts)
{
    unsigned char digest[32];
    char hex[65];
    util_sha256(canon->data, canon->len, digest);
    to_hex(digest, sizeof digest, hex);
    return buf_printf(sts, ALGORITHM "\n%s\n%.8s/%s/%s/" SCOPE_END "\n%s", amz_date, amz_date,
                      key->region, key->service, hex);
}

/* signing_key derives kSigning (§5.4) for date8/region/service into out. */
static int signing_key(const struct sigv4_key *key, const char *date8, unsigned char out[32])
{
    char secret[4 + SECRET_MAX + 1];
    unsigned char k[32];
    size_t n = strlen(key->secret_key);
    int rc = 0;

    if (n > SECRET_MAX)
        return OAI_ELIMIT;
    memcpy(secret, "AWS4", 4);
    memcpy(secret + 4, key->secret_key, n);
    rc = hmac(secret, 4 + n, date8, DATE_LEN, k);
    if (!rc)
        rc = hmac(k, sizeof k, key->region, strlen(key->region), k);
    if (!rc)
        rc = hmac(k, sizeof k, key->service, strlen(key->service), k);
    if (!rc)
        rc = hmac(k, sizeof k, SCOPE_END, strlen(SCOPE_END), out);
    OPENSSL_cleanse(secret, sizeof secret);
    OPENSSL_cleanse(k, sizeof k);
    return rc;
}

int sigv4_canonical_request(const struct sigv4_key *key, const struct sigv4_request *rq,
                            const char *amz_date, struct buf *out)
{
    struct buf canon, signed_hdrs;
    buf_init(&canon, CANON_MAX);
    buf_init(&signed_hdrs, SIGNED_MAX);
    int rc = build_canonical(key, rq, amz_date, &canon, &signed_hdrs);
    if (!rc)
        rc = buf_add(out, canon.data, canon.len);
    buf_free(&canon);
    buf_free(&signed_hdrs);
    return rc;
}

int sigv4_string_to_sign(const struct sigv4_key *key, const struct sigv4_request *rq,
                         const char *amz_date, struct buf *out)
{
    struct buf canon, signed_hdrs, sts;
    buf_init(&canon, CANON_MAX);
    buf_init(&signed_hdrs, SIGNED_MAX);
    buf_init(&sts, STS_MAX);
    int rc = build_canonical(key, rq, amz_date, &canon, &signed_hdrs);
    if (!rc)
        rc = build_sts(key, amz_date, &canon, &sts);
    if (!rc)
        rc = buf_add(out, sts.data, sts.len);
    buf_free(&canon);
    buf_free(&signed_hdrs);
    buf_free(&sts);
    return rc;
}

/* format_amz_date writes now (Unix seconds, UTC) as YYYYMMDDTHHMMSSZ. */
static int format_amz_date(int64_t now, char out[AMZ_DATE_LEN + 1])
{
    struct tm tm;
    time_t t = (time_t)now;
    if ((int64_t)t != now || !gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 ||
        tm.tm_year + 1900 > 9999)
        return OAI_EBADREQ;
    int n = snprintf(out, AMZ_DATE_LEN + 1, "%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return n == AMZ_DATE_LEN ? 0 : OAI_EBADREQ;
}

int sigv4_sign(const struct sigv4_key *key, const struct sigv4_request *rq, int64_t now,
               struct sigv4_result *out)
{
    struct buf canon, signed_hdrs, sts;
    unsigned char ksign[32], sig[32];
    char sig_hex[65];
    char amz_date[AMZ_DATE_LEN + 1];
    int rc = 0, n = 0;

    buf_init(&canon, CANON_MAX);
    buf_init(&signed_hdrs, SIGNED_MAX);
    buf_init(&sts, STS_MAX);
    memset(out, 0, sizeof *out);

    rc = format_amz_date(now, amz_date);
    if (!rc)
        rc = build_canonical(key, rq, amz_date, &canon, &signed_hdrs);
    if (!rc)
        rc = build_sts(key, amz_date, &canon, &sts);
    if (!rc)
        rc = signing_key(key, amz_date, ksign);
    if (!rc)
        rc = hmac(ksign, sizeof ksign, sts.data, sts.len, sig);
    if (rc)
        goto done;
    to_hex(sig, sizeof sig, sig_hex);

    memcpy(out->amz_date, amz_date, sizeof out->amz_date);
    n = snprintf(out->date_header, sizeof out->date_header, DATE_PREFIX "%s", amz_date);
    if (n < 0 || (size_t)n >= sizeof out->date_header) {
        rc = OAI_ELIMIT;
        goto done;
    }
    n = snprintf(out->authorization, sizeof out->authorization,
                 AUTHZ_PREFIX ALGORITHM " Credential=%s/%.8s/%s/%s/" SCOPE_END
                                        ", SignedHeaders=%s, Signature=%s",
                 key->access_key, amz_date, key->region, key->service, signed_hdrs.data, sig_hex);
    if (n < 0 || (size_t)n >= sizeof out->authorization) {
        rc = OAI_ELIMIT;
        goto done;
    }
    if (has_token(key)) {
        n = snprintf(out->token_header, sizeof out->token_header, TOKEN_PREFIX "%s",
                     key->session_token);
        if (n < 0 || (size_t)n >= sizeof out->token_header) {
            rc = OAI_ELIMIT;
            goto done;
        }
    }

done:
    if (rc)
        OPENSSL_cleanse(out, sizeof *out);
    OPENSSL_cleanse(ksign, sizeof ksign);
    OPENSSL_cleanse(sig, sizeof sig);
    OPENSSL_cleanse(sig_hex, sizeof sig_hex);
    buf_free(&canon);
    buf_free(&signed_hdrs);
    buf_free(&sts);
    return rc;
}
