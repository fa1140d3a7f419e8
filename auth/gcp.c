/*
 * gcp.c - Google service accounts (see gcp.h and reference/wire-formats.md §3.3-§3.6).
 *
 * Credentials. GCP_CREDENTIALS entries are projectId:clientEmail:region:privateKey, split on
 * the first three ':' only; the key is normalised (literal "\n", real newlines, CR, quotes and
 * spaces removed; PKCS#8 "PRIVATE KEY", PKCS#1 "RSA PRIVATE KEY" or a bare base64 body) into
 * PEM text with real newlines. GCP_CREDENTIALS_FILE entries are service-account JSON paths,
 * each optionally ":region". Every key is decoded once at parse time so that a bad one is a
 * configuration error, but only its PEM text is kept; it is decoded again when a JWT is signed.
 * Parsed sets live in a small process-wide table keyed by the two setting values.
 *
 * Tokens. The access token of a key is shared by every process through the state store:
 *   kv    "gcp:token:<h>"   = "<expires_at_ms> <token>", expiring with the token
 *   lease "gcp:refresh:<h>" held by the one process/thread that asks the token endpoint
 *   kv    "gcp:tokerr:<h>"  = "<failed_at_ms> <code>", so that those who waited for a failed
 *                             refresh get its error instead of each asking again in turn
 * where h is 32 hex digits of SHA-256(client_email "\n" token_uri). A cached token is used
 * while more than GCP_REFRESH_MARGIN_S remain; past that one caller refreshes while the others
 * keep using the old token as long as it has MIN_LEFT_MS left. Nothing here logs a token, an
 * assertion or key material; keys are named by their log_hash.
 */
#include "auth/gcp.h"

#include "auth/keycache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#define KEY_FILE_MAX    (64 * 1024) /* a service-account JSON file is ~2.3 KiB */
#define PEM_BODY_MAX    (16 * 1024) /* base64 of an RSA private key; 4096-bit is ~3.2 KiB */
#define NAME_MAX_LEN    128         /* project id, region, key id */
#define EMAIL_MAX_LEN   256
#define URI_MAX_LEN     1024
#define JWT_LIFETIME_S  3600
#define JWT_MAX         (32 * 1024)
#define TOKEN_BODY_MAX  (64 * 1024) /* token endpoint response */
#define TOKEN_MAX       4000        /* longest access token accepted (callers keep 4 KiB) */
#define EXPIRES_IN_MAX  86400       /* longest token lifetime believed */
#define LEASE_TTL_MS    30000
#define WAIT_MS         10000 /* how long a caller waits for another's refresh */
#define POLL_MS         50
#define FETCH_TIMEOUT_S 10 /* token request ceiling, well inside LEASE_TTL_MS */
#define ERR_TTL_MS      10000
#define MIN_LEFT_MS     10000 /* a token with less left is never handed out from the cache */
#define MARGIN_MS       ((int64_t)GCP_REFRESH_MARGIN_S * 1000)

#define GRANT_PREFIX "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="

/* ---- small helpers ------------------------------------------------------------------------ */

/* seterr formats a configuration error into err (which may be NULL). */
__attribute__((format(printf, 3, 4))) static void seterr(char *err, size_t errlen, const char *fmt,
                                                         ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* trim narrows [*s, *s + *n) past whitespace and one level of surrounding quotes. */
static void trim(const char **s, size_t *n)
{
    for (int pass = 0; pass < 2; pass++) {
        while (*n && is_space(**s)) {
            (*s)++;
            (*n)--;
        }
        while (*n && is_space((*s)[*n - 1]))
            (*n)--;
        if (pass == 0 && *n >= 2 &&
            ((**s == '"' && (*s)[*n - 1] == '"') || (**s == '\'' && (*s)[*n - 1] == '\''))) {
            (*s)++;
            *n -= 2;
        }
    }
}

/* name_ok: a project id, region or similar URL path segment: [A-Za-z0-9._-]{1,128}. */
static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > NAME_MAX_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* printable_ok: 1..max visible ASCII characters (no space, no control bytes). */
static int printable_ok(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

static int email_ok(const char *s, size_t n)
{
    return printable_ok(s, n, EMAIL_MAX_LEN) && memchr(s, '@', n) != NULL;
}

static int uri_ok(const char *s, size_t n)
{
    return printable_ok(s, n, URI_MAX_LEN) &&
           ((n > 8 && strncmp(s, "https://", 8) == 0) || (n > 7 && strncmp(s, "http://", 7) == 0));
}

/* free_secret wipes and frees a NUL-terminated string that held key material. */
static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static void msleep(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- private keys ------------------------------------------------------------------------- */

/* no_passphrase keeps OpenSSL from prompting on a terminal for an encrypted key. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* decode_pem decodes PEM text into an RSA private key (caller frees), or NULL. */
static EVP_PKEY *decode_pem(const char *pem)
{
    EVP_PKEY *pkey = NULL;
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (bio)
        pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (pkey && !EVP_PKEY_is_a(pkey, "RSA")) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    BIO_free(bio);
    ERR_clear_error(); /* leave no stale errors for the next OpenSSL user of this thread */
    return pkey;
}

static int b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/' || c == '=';
}

/* ignorable: whitespace, a literal two-character "\n" or "\r", or a quote. Returns how many
 * bytes at s[0..n) to skip, 0 if s[0] is significant. */
static size_t ignorable(const char *s, size_t n)
{
    if (is_space(s[0]) || s[0] == '"' || s[0] == '\'')
        return 1;
    if (s[0] == '\\' && n >= 2 && (s[1] == 'n' || s[1] == 'r'))
        return 2;
    return 0;
}

/* only_ignorable: s[0..n) holds nothing but ignorable bytes. */
static int only_ignorable(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t k = ignorable(s + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

/* armour writes "-----BEGIN label-----\n", body in 64-column lines, "-----END label-----\n"
 * into a new string, or returns NULL (out of memory). */
static char *armour(const char *label, const char *body, size_t n)
{
    size_t cap = 2 * (strlen(label) + 20) + n + n / 64 + 2;
    char *pem = malloc(cap);
    if (!pem)
        return NULL;
    size_t o = (size_t)snprintf(pem, cap, "-----BEGIN %s-----\n", label);
    for (size_t i = 0; i < n; i += 64) {
        size_t k = n - i < 64 ? n - i : 64;
        memcpy(pem + o, body + i, k);
        o += k;
        pem[o++] = '\n';
    }
    snprintf(pem + o, cap - o, "-----END %s-----\n", label);
    return pem;
}

/* normalise_pem turns a private key as configured into PEM text with real newlines (*out,
 * malloc'd) and checks that it decodes to an RSA private key. Returns NULL on success, else a
 * static reason fit for a log line (never any key material); "" means out of memory. */
static const char *normalise_pem(const char *s, size_t n, char **out)
{
    static const char begin[] = "-----BEGIN ", dashes[] = "-----", end[] = "-----END ";
    const char *why = NULL, *label = NULL;
    char *body = NULL;
    size_t bn = 0;
    *out = NULL;

    trim(&s, &n);
    const char *b = memmem(s, n, begin, sizeof begin - 1);
    const char *p = s, *q = s + n; /* the base64 body lies in [p, q) */
    if (b) {
        const char *l = b + sizeof begin - 1;
        const char *le = memmem(l, (size_t)(s + n - l), dashes, sizeof dashes - 1);
        if (!le) {
            why = "has a malformed BEGIN line";
            goto done;
        }
        size_t ln = (size_t)(le - l);
        if (ln == 11 && memcmp(l, "PRIVATE KEY", 11) == 0) {
            label = "PRIVATE KEY";
        } else if (ln == 15 && memcmp(l, "RSA PRIVATE KEY", 15) == 0) {
            label = "RSA PRIVATE KEY";
        } else {
            why = "is not a PKCS#8 or PKCS#1 RSA private key PEM";
            goto done;
        }
        p = le + sizeof dashes - 1;
        const char *e = memmem(p, (size_t)(s + n - p), end, sizeof end - 1);
        if (!e) {
            why = "has no END line";
            goto done;
        }
        q = e;
        const char *el = e + sizeof end - 1;
        size_t rest = (size_t)(s + n - el);
        size_t lablen = strlen(label);
        if (rest < lablen + 5 || memcmp(el, label, lablen) != 0 ||
            memcmp(el + lablen, dashes, 5) != 0) {
            why = "has an END line that does not match its BEGIN line";
            goto done;
        }
        const char *after = el + lablen + 5;
        if (!only_ignorable(s, (size_t)(b - s)) ||
            !only_ignorable(after, (size_t)(s + n - after))) {
            why = "has text around the PEM block";
            goto done;
        }
    }
    if ((size_t)(q - p) > 2 * PEM_BODY_MAX) {
        why = "is too long";
        goto done;
    }
    body = malloc((size_t)(q - p) + 1);
    if (!body) {
        why = "";
        goto done;
    }
    while (p < q) {
        size_t k = ignorable(p, (size_t)(q - p));
        if (k) {
            p += k;
            continue;
        }
        if (!b64_char(*p)) {
            why = b ? "has a body that is not base64 (an encrypted key?)"
                    : "is neither PEM nor a base64 body";
            goto done;
        }
        body[bn++] = *p++;
    }
    if (bn == 0) {
        why = "is empty";
        goto done;
    }
    if (bn > PEM_BODY_MAX) {
        why = "is too long";
        goto done;
    }
    /* A bare body is PKCS#8 DER as in the seed; PKCS#1 is tried too. */
    const char *const labels[] = {label ? label : "PRIVATE KEY", label ? NULL : "RSA PRIVATE KEY"};
    for (int i = 0; i < 2 && labels[i]; i++) {
        char *pem = armour(labels[i], body, bn);
        if (!pem) {
            why = "";
            goto done;
        }
        EVP_PKEY *pkey = decode_pem(pem);
        if (pkey) {
            EVP_PKEY_free(pkey);
            *out = pem;
            goto done;
        }
        free_secret(pem);
    }
    why = "does not decode to an RSA private key";
done:
    if (body) {
        OPENSSL_cleanse(body, bn);
        free(body);
    }
    return why;
}

/* ---- parsing the settings ----------------------------------------------------------------- */

static void key_free(struct gcp_key *k)
{
    free(k->project);
    free(k->email);
    free(k->region);
    free(k->token_uri);
    free(k->key_id);
    free_secret(k->pem);
    memset(k, 0, sizeof *k);
}

static void keys_free(struct gcp_keys *ks)
{
    if (!ks)
        return;
    for (int i = 0; i < ks->n; i++)
        key_free(&ks->v[i]);
    free(ks->v);
    free(ks);
}

/* key_set fills k from the given fields (copied; pem is taken over). Returns 0 or OAI_ENOMEM,
 * in which case k is left empty and pem freed. */
static int key_set(struct gcp_key *k, const char *project, size_t pn, const char *email, size_t en,
                   const char *region, size_t rn, const char *token_uri, const char *key_id,
                   char *pem)
{
    k->project = strndup(project, pn);
    k->email = strndup(email, en);
    k->region = strndup(region, rn);
    k->token_uri = strdup(token_uri);
    k->key_id = strdup(key_id);
    k->pem = pem;
    if (!k->project || !k->email || !k->region || !k->token_uri || !k->key_id) {
        key_free(k);
        return OAI_ENOMEM;
    }
    log_hash(k->email, strlen(k->email), k->hash);
    return 0;
}

/* count_entries is an upper bound of the entries of a comma list. */
static int count_entries(const char *s)
{
    int n = 1;
    for (; *s; s++)
        n += *s == ',';
    return n;
}

/* parse_credential parses one GCP_CREDENTIALS entry (number i) into k. */
static int parse_credential(const char *s, size_t n, int i, struct gcp_key *k, char *err,
                            size_t errlen)
{
    const char *c1 = memchr(s, ':', n);
    const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(s + n - c1 - 1)) : NULL;
    const char *c3 = c2 ? memchr(c2 + 1, ':', (size_t)(s + n - c2 - 1)) : NULL;
    if (!c3) {
        seterr(err, errlen,
               "GCP_CREDENTIALS entry %d: expected projectId:clientEmail:region:privateKey", i);
        return OAI_ECONFIG;
    }
    const char *pr = s, *em = c1 + 1, *rg = c2 + 1;
    size_t prn = (size_t)(c1 - s), emn = (size_t)(c2 - em), rgn = (size_t)(c3 - rg);
    trim(&pr, &prn);
    trim(&em, &emn);
    trim(&rg, &rgn);
    const char *what = !name_ok(pr, prn)    ? "the project id is empty or not [A-Za-z0-9._-]"
                       : !email_ok(em, emn) ? "the client email is not an email address"
                       : !name_ok(rg, rgn)  ? "the region is empty or not [A-Za-z0-9._-]"
                                            : NULL;
    if (what) {
        seterr(err, errlen, "GCP_CREDENTIALS entry %d: %s", i, what);
        return OAI_ECONFIG;
    }
    char *pem = NULL;
    const char *why = normalise_pem(c3 + 1, (size_t)(s + n - c3 - 1), &pem);
    if (why) {
        seterr(err, errlen, "GCP_CREDENTIALS entry %d: the private key %s", i,
               *why ? why : "could not be decoded (out of memory)");
        return *why ? OAI_ECONFIG : OAI_ENOMEM;
    }
    if (key_set(k, pr, prn, em, emn, rg, rgn, GCP_TOKEN_URI, "", pem)) {
        seterr(err, errlen, "GCP_CREDENTIALS entry %d: out of memory", i);
        return OAI_ENOMEM;
    }
    return 0;
}

/* read_file reads a whole regular file of at most KEY_FILE_MAX bytes into a new NUL-terminated
 * string. Returns NULL on success, else a static reason. */
static const char *read_file(const char *path, char **out, size_t *len)
{
    const char *why = NULL;
    char *data = NULL;
    size_t n = 0;
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        why = errno == ENOENT ? "the file does not exist" : "the file cannot be opened";
        goto done;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        why = "the path is not a regular file";
        goto done;
    }
    if (sb.st_size > KEY_FILE_MAX) {
        why = "the file is larger than 64 KiB";
        goto done;
    }
    data = malloc(KEY_FILE_MAX + 1);
    if (!data) {
        why = "out of memory";
        goto done;
    }
    for (;;) {
        ssize_t r = read(fd, data + n, KEY_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            why = "the file cannot be read";
            goto done;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > KEY_FILE_MAX) {
            why = "the file is larger than 64 KiB";
            goto done;
        }
    }
    data[n] = '\0';
    *out = data;
    *len = n;
    data = NULL;
done:
    if (data) {
        OPENSSL_cleanse(data, n);
        free(data);
    }
    if (fd >= 0)
        close(fd);
    return why;
}

/* json_str borrows member name of obj if it is a string, else NULL. */
static const char *json_str(json_object *obj, const char *name, size_t *len)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(obj, name, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    if (len)
        *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

/* parse_file parses one GCP_CREDENTIALS_FILE entry (number i) into k. */
static int parse_file(const char *s, size_t n, int i, struct gcp_key *k, char *err, size_t errlen)
{
    int rc = OAI_ECONFIG;
    const char *why = NULL;
    char *entry = strndup(s, n), *data = NULL;
    size_t len = 0;
    json_object *j = NULL;
    const char *region = GCP_DEFAULT_REGION;
    size_t rn = strlen(region);
    if (!entry) {
        rc = OAI_ENOMEM;
        why = "out of memory";
        goto done;
    }
    /* "path:region" (split at the last ':'), unless the whole entry names a readable file. */
    char *colon = strrchr(entry, ':');
    if (colon && access(entry, R_OK) != 0) {
        *colon = '\0';
        region = colon + 1;
        rn = strlen(region);
        trim(&region, &rn);
        if (!name_ok(region, rn)) {
            why = "the region is empty or not [A-Za-z0-9._-]";
            goto done;
        }
    }
    why = read_file(entry, &data, &len);
    if (why)
        goto done;
    if (util_parse_json(data, len, &j) != 0 || !json_object_is_type(j, json_type_object)) {
        why = "the file is not a JSON object";
        goto done;
    }
    const char *type = json_str(j, "type", NULL);
    if (!type || strcmp(type, "service_account") != 0) {
        why = "the file is not a service-account key (\"type\" is not \"service_account\")";
        goto done;
    }
    size_t pn = 0, en = 0, kn = 0, idn = 0, un = 0;
    const char *project = json_str(j, "project_id", &pn);
    const char *email = json_str(j, "client_email", &en);
    const char *key = json_str(j, "private_key", &kn);
    const char *key_id = json_str(j, "private_key_id", &idn);
    const char *uri = json_str(j, "token_uri", &un);
    if (!project || !name_ok(project, pn)) {
        why = "\"project_id\" is missing or not [A-Za-z0-9._-]";
    } else if (!email || !email_ok(email, en)) {
        why = "\"client_email\" is missing or not an email address";
    } else if (!key) {
        why = "\"private_key\" is missing";
    } else if (key_id && idn && !printable_ok(key_id, idn, NAME_MAX_LEN)) {
        why = "\"private_key_id\" is not printable ASCII";
    } else if (uri && !uri_ok(uri, un)) {
        why = "\"token_uri\" is not an http(s) URL";
    }
    if (why)
        goto done;
    char *pem = NULL;
    const char *kwhy = normalise_pem(key, kn, &pem);
    if (kwhy) {
        if (!*kwhy) {
            rc = OAI_ENOMEM;
            why = "out of memory";
        } else {
            seterr(err, errlen, "GCP_CREDENTIALS_FILE entry %d: \"private_key\" %s", i, kwhy);
        }
        goto done;
    }
    if (key_set(k, project, pn, email, en, region, rn, uri ? uri : GCP_TOKEN_URI,
                key_id ? key_id : "", pem)) {
        rc = OAI_ENOMEM;
        why = "out of memory";
        goto done;
    }
    rc = 0;
done:
    if (why)
        seterr(err, errlen, "GCP_CREDENTIALS_FILE entry %d: %s", i, why);
    json_object_put(j);
    if (data) {
        OPENSSL_cleanse(data, len);
        free(data);
    }
    free(entry);
    return rc;
}

/* parse_list parses every entry of one comma list (empty entries are skipped) with parse_one,
 * appending to ks->v. */
static int parse_list(const char *list, struct gcp_keys *ks,
                      int (*parse_one)(const char *, size_t, int, struct gcp_key *, char *, size_t),
                      char *err, size_t errlen)
{
    const char *e;
    size_t en;
    for (int i = 1; util_list_next(&list, &e, &en); i++) {
        if (en) {
            int rc = parse_one(e, en, i, &ks->v[ks->n], err, errlen);
            if (rc)
                return rc;
            ks->n++;
        }
    }
    return 0;
}

/* Parses both settings into one key set (a new value for the keycache). */
static void *parse_value(const char *c, const char *f, char *err, size_t errlen)
{
    struct gcp_keys *ks = calloc(1, sizeof *ks);
    if (ks)
        ks->v = calloc((size_t)(count_entries(c) + count_entries(f)) + 1, sizeof *ks->v);
    if (!ks || !ks->v) {
        seterr(err, errlen, "GCP_CREDENTIALS: out of memory");
        keys_free(ks);
        return NULL;
    }
    if (parse_list(c, ks, parse_credential, err, errlen) != 0 ||
        parse_list(f, ks, parse_file, err, errlen) != 0) {
        keys_free(ks);
        return NULL;
    }
    return ks;
}

static void free_value(void *v)
{
    keys_free(v);
}

static struct keycache keys_cache =
    KEYCACHE_INIT("GCP_CREDENTIALS/GCP_CREDENTIALS_FILE", parse_value, free_value);

/* gcp_keys_get: see gcp.h. NULL and "" are the same (no keys): both give a set with n == 0.
 * Failed parses are not cached; the parse runs under the cache's mutex, so concurrent first
 * calls parse once. */
const struct gcp_keys *gcp_keys_get(const char *credentials, const char *files, char *err,
                                    size_t errlen)
{
    seterr(err, errlen, "%s", "");
    return keycache_get(&keys_cache, credentials, files, err, errlen);
}

/* gcp_keys_cleanup: see gcp.h. Pointers returned earlier become invalid. */
void gcp_keys_cleanup(void)
{
    keycache_clear(&keys_cache);
}

/* ---- the JWT ------------------------------------------------------------------------------ */

/* b64url_add appends base64url of p[0..n) without padding to out. */
static int b64url_add(struct buf *out, const unsigned char *p, size_t n)
{
    if (n > JWT_MAX)
        return OAI_ELIMIT;
    size_t cap = 4 * ((n + 2) / 3) + 1;
    unsigned char *tmp = malloc(cap);
    if (!tmp)
        return OAI_ENOMEM;
    int len = EVP_EncodeBlock(tmp, p, (int)n);
    while (len > 0 && tmp[len - 1] == '=')
        len--;
    for (int i = 0; i < len; i++) {
        if (tmp[i] == '+')
            tmp[i] = '-';
        else if (tmp[i] == '/')
            tmp[i] = '_';
    }
    int rc = buf_add(out, tmp, (size_t)len);
    free(tmp);
    return rc;
}

/* add_str / add_int add a member to a json-c object (which keeps insertion order). */
static int add_str(json_object *o, const char *name, const char *v)
{
    json_object *s = json_object_new_string(v);
    if (!s || json_object_object_add(o, name, s) != 0) {
        json_object_put(s);
        return OAI_ENOMEM;
    }
    return 0;
}

static int add_int(json_object *o, const char *name, int64_t v)
{
    json_object *s = json_object_new_int64(v);
    if (!s || json_object_object_add(o, name, s) != 0) {
        json_object_put(s);
        return OAI_ENOMEM;
    }
    return 0;
}

/* add_json_b64 appends base64url of obj's plain serialisation. */
static int add_json_b64(struct buf *out, json_object *obj)
{
    size_t n = 0;
    const char *s = util_json_plain(obj, &n);
    if (!s)
        return OAI_ENOMEM;
    return b64url_add(out, (const unsigned char *)s, n);
}

/* gcp_jwt: see gcp.h. The assertion is appended to out (empty it first for just the JWT); on
 * failure out is left as it was. */
int gcp_jwt(const struct gcp_key *k, int64_t iat, struct buf *out)
{
    int rc = 0;
    size_t start = out->len;
    json_object *hdr = NULL, *claims = NULL;
    EVP_PKEY *pkey = NULL;
    EVP_MD_CTX *md = NULL;
    unsigned char *sig = NULL;
    size_t siglen = 0;

    pkey = k->pem ? decode_pem(k->pem) : NULL;
    if (!pkey) {
        log_warn("gcp key %s: the private key does not decode to an RSA key", k->hash);
        rc = OAI_EBADREQ;
        goto done;
    }
    hdr = json_object_new_object();
    claims = json_object_new_object();
    if (!hdr || !claims) {
        rc = OAI_ENOMEM;
        goto done;
    }
    rc = add_str(hdr, "alg", "RS256");
    if (!rc)
        rc = add_str(hdr, "typ", "JWT");
    if (!rc && k->key_id && *k->key_id)
        rc = add_str(hdr, "kid", k->key_id);
    if (!rc)
        rc = add_str(claims, "iss", k->email);
    if (!rc)
        rc = add_str(claims, "scope", GCP_SCOPE);
    if (!rc)
        rc = add_str(claims, "aud", k->token_uri);
    if (!rc)
        rc = add_int(claims, "iat", iat);
    if (!rc)
        rc = add_int(claims, "exp", iat + JWT_LIFETIME_S);
    if (!rc)
        rc = add_json_b64(out, hdr);
    if (!rc)
        rc = buf_add(out, ".", 1);
    if (!rc)
        rc = add_json_b64(out, claims);
    if (rc)
        goto done;

    int size = EVP_PKEY_get_size(pkey);
    md = EVP_MD_CTX_new();
    sig = size > 0 ? malloc((size_t)size) : NULL;
    if (!md || !sig) {
        rc = OAI_ENOMEM;
        goto done;
    }
    siglen = (size_t)size;
    if (EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, pkey, NULL) != 1 ||
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)out->data + start,
                       out->len - start) != 1) {
        ERR_clear_error();
        log_warn("gcp key %s: the private key cannot sign with RS256", k->hash);
        rc = OAI_EBADREQ;
        goto done;
    }
    rc = buf_add(out, ".", 1);
    if (!rc)
        rc = b64url_add(out, sig, siglen);
done:
    if (rc && out->data) {
        OPENSSL_cleanse(out->data + start, out->len - start);
        out->len = start;
        out->data[start] = '\0';
    }
    json_object_put(hdr);
    json_object_put(claims);
    EVP_MD_CTX_free(md);
    free(sig);
    EVP_PKEY_free(pkey);
    return rc;
}

/* ---- access tokens ------------------------------------------------------------------------ */

struct names {
    char token[64], lease[64], err[64];
};

/* make_names derives the state keys of k's token from SHA-256(email "\n" token_uri). */
static int make_names(const struct gcp_key *k, struct names *nm)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[32];
    char h[33];
    size_t el = strlen(k->email), ul = strlen(k->token_uri);
    char *tmp = malloc(el + ul + 2);
    if (!tmp)
        return OAI_ENOMEM;
    memcpy(tmp, k->email, el);
    tmp[el] = '\n';
    memcpy(tmp + el + 1, k->token_uri, ul + 1);
    util_sha256(tmp, el + ul + 1, md);
    free(tmp);
    for (int i = 0; i < 16; i++) {
        h[2 * i] = hex[md[i] >> 4];
        h[2 * i + 1] = hex[md[i] & 15];
    }
    h[32] = '\0';
    snprintf(nm->token, sizeof nm->token, "gcp:token:%s", h);
    snprintf(nm->lease, sizeof nm->lease, "gcp:refresh:%s", h);
    snprintf(nm->err, sizeof nm->err, "gcp:tokerr:%s", h);
    return 0;
}

/* parse_cached parses "<expires_at_ms> <token>"; it borrows the token from v, or NULL if v is
 * NULL or malformed. */
static const char *parse_cached(const char *v, int64_t *expires)
{
    if (!v || v[0] < '0' || v[0] > '9')
        return NULL;
    char *end = NULL;
    errno = 0;
    long long e = strtoll(v, &end, 10);
    if (errno || *end != ' ' || e <= 0)
        return NULL;
    const char *t = end + 1;
    if (!printable_ok(t, strlen(t), TOKEN_MAX))
        return NULL;
    *expires = e;
    return t;
}

/* pick decides whether the cached value v may be handed out while refreshing: a token with more
 * than the refresh margin left may, and so may one that is merely unexpired if it is not the
 * token the caller started from (another refresher's result, even if the token endpoint grants
 * short lifetimes); a refresh caller never gets back the token it is replacing. */
static const char *pick(const char *v, const char *seen, int refresh, int64_t now)
{
    int64_t exp = 0;
    const char *t = parse_cached(v, &exp);
    if (!t)
        return NULL;
    int same = seen && strcmp(t, seen) == 0;
    if (same && refresh)
        return NULL;
    if (exp - now > MARGIN_MS || (!same && exp - now > MIN_LEFT_MS))
        return t;
    return NULL;
}

static int copy_token(const char *t, char *token, size_t n)
{
    size_t len = strlen(t);
    if (len >= n)
        return OAI_ELIMIT;
    memcpy(token, t, len + 1);
    return 0;
}

/* state_rc maps a state store failure to OAI_ESTATE (OAI_ENOMEM stays). */
static int state_rc(int rc)
{
    return rc == OAI_ENOMEM ? rc : OAI_ESTATE;
}

/* sanitize copies at most n - 1 printable ASCII bytes of s into out for a log line. */
static void sanitize(const char *s, char *out, size_t n)
{
    size_t o = 0;
    for (; s && *s && o + 1 < n; s++)
        out[o++] = (*s >= 0x20 && *s < 0x7f && *s != '"') ? *s : '?';
    out[o] = '\0';
}

/* parse_grant reads a 200 answer: access_token, expires_in (number or numeric string),
 * token_type (Bearer, if present). Returns NULL or a static reason. */
static const char *parse_grant(const struct xfer *x, char *tok, int64_t *expires_in)
{
    const char *why = NULL;
    json_object *j = NULL, *v = NULL;
    if (util_parse_json(x->body_out.data ? x->body_out.data : "", x->body_out.len, &j) != 0 ||
        !json_object_is_type(j, json_type_object)) {
        why = "the body is not a JSON object";
        goto done;
    }
    size_t tn = 0;
    const char *t = json_str(j, "access_token", &tn);
    if (!t || !printable_ok(t, tn, TOKEN_MAX)) {
        why = "no usable \"access_token\"";
        goto done;
    }
    long long e = 0;
    if (!json_object_object_get_ex(j, "expires_in", &v)) {
        why = "no \"expires_in\"";
        goto done;
    }
    if (json_object_is_type(v, json_type_int)) {
        e = (long long)json_object_get_int64(v);
    } else if (json_object_is_type(v, json_type_double)) {
        double d = json_object_get_double(v);
        e = d >= 1 && d <= EXPIRES_IN_MAX ? (long long)d : 0;
    } else if (!json_object_is_type(v, json_type_string) ||
               util_parse_long(json_object_get_string(v), 1, EXPIRES_IN_MAX, &e) != 0) {
        e = 0;
    }
    if (e < 1 || e > EXPIRES_IN_MAX) {
        why = "\"expires_in\" is not a number of seconds in [1, 86400]";
        goto done;
    }
    const char *type = json_str(j, "token_type", NULL);
    if (json_object_object_get_ex(j, "token_type", NULL) &&
        (!type || strcasecmp(type, "Bearer") != 0)) {
        why = "\"token_type\" is not Bearer";
        goto done;
    }
    memcpy(tok, t, tn + 1);
    *expires_in = e;
done:
    json_object_put(j);
    return why;
}

/* refused handles a 400/401/403 answer: OAI_EAUTHUP, or OAI_EUPSTREAM for the error codes
 * Google documents as retryable. */
static int refused(const struct gcp_key *k, const struct xfer *x)
{
    static const char *const retryable[] = {"internal_failure", "server_error",
                                            "temporarily_unavailable"};
    char code[64] = "", desc[200] = "";
    json_object *j = NULL;
    if (util_parse_json(x->body_out.data ? x->body_out.data : "", x->body_out.len, &j) == 0 &&
        json_object_is_type(j, json_type_object)) {
        sanitize(json_str(j, "error", NULL), code, sizeof code);
        sanitize(json_str(j, "error_description", NULL), desc, sizeof desc);
    }
    json_object_put(j);
    int rc = OAI_EAUTHUP;
    for (size_t i = 0; i < sizeof retryable / sizeof *retryable; i++)
        if (strcmp(code, retryable[i]) == 0)
            rc = OAI_EUPSTREAM;
    log_warn("gcp key %s: the token endpoint refused the assertion: HTTP %ld, error \"%s\"%s%s",
             k->hash, x->status, code[0] ? code : "(none)", desc[0] ? ": " : "", desc);
    return rc;
}

/* fetch asks k's token endpoint for a new access token: tok (TOKEN_MAX + 1 bytes) and its
 * absolute expiry in ms. */
static int fetch(const struct gcp_key *k, const struct transport_opts *t, char *tok,
                 int64_t *expires_ms)
{
    int rc = 0;
    struct buf body;
    struct xfer x;
    struct xfer *xp = &x;
    struct transport_opts o = {0};
    buf_init(&body, JWT_MAX + sizeof GRANT_PREFIX);
    xfer_init(&x);

    if (t)
        o = *t;
    if (o.timeout_s <= 0 || o.timeout_s > FETCH_TIMEOUT_S)
        o.timeout_s = FETCH_TIMEOUT_S;
    if (o.idle_timeout_s <= 0 || o.idle_timeout_s > FETCH_TIMEOUT_S)
        o.idle_timeout_s = FETCH_TIMEOUT_S;
    rc = buf_adds(&body, GRANT_PREFIX);
    if (!rc)
        rc = gcp_jwt(k, state_now_ms() / 1000, &body);
    if (rc) {
        if (rc == OAI_EBADREQ)
            rc = OAI_EAUTHUP; /* an unusable key is a credential the gateway cannot use */
        goto done;
    }
    x.method = "POST";
    x.url = k->token_uri;
    x.headers[0] = "Content-Type: application/x-www-form-urlencoded";
    x.headers[1] = "Accept: application/json";
    x.body = body.data;
    x.body_len = body.len;
    x.on_data = NULL;
    x.max_body = TOKEN_BODY_MAX;
    int trc = transport_run(&xp, 1, &o, NULL, NULL);
    if (trc != 0 || x.result != 0) {
        log_warn("gcp key %s: the token request failed: %s", k->hash,
                 x.error[0] ? x.error : err_name(trc ? trc : x.result));
        rc = trc == OAI_ENOMEM ? trc : OAI_EUPSTREAM;
        goto done;
    }
    if (x.status == 400 || x.status == 401 || x.status == 403) {
        rc = refused(k, &x);
        goto done;
    }
    if (x.status != 200) {
        log_warn("gcp key %s: the token endpoint answered HTTP %ld", k->hash, x.status);
        rc = OAI_EUPSTREAM;
        goto done;
    }
    int64_t expires_in = 0;
    const char *why = parse_grant(&x, tok, &expires_in);
    if (why) {
        log_warn("gcp key %s: the token endpoint's answer is unusable: %s", k->hash, why);
        rc = OAI_EUPSTREAM;
        goto done;
    }
    *expires_ms = state_now_ms() + expires_in * 1000;
    log_info("gcp key %s: new access token, valid for %lld s", k->hash, (long long)expires_in);
done:
    if (body.data)
        OPENSSL_cleanse(body.data, body.len);
    if (x.body_out.data)
        OPENSSL_cleanse(x.body_out.data, x.body_out.len);
    buf_free(&body);
    xfer_free(&x);
    return rc;
}

/* failed_since reads the error a refresher recorded at or after since_ms; 0 if none. */
static int failed_since(struct state *st, const struct names *nm, int64_t since_ms)
{
    char *v = NULL;
    int rc = 0;
    if (state_kv_get(st, nm->err, &v, NULL) != 0 || !v)
        goto done;
    long long at = 0;
    int code = 0;
    if (sscanf(v, "%lld %d", &at, &code) == 2 && at >= since_ms &&
        (code == OAI_EAUTHUP || code == OAI_EUPSTREAM || code == OAI_ENOMEM))
        rc = code;
done:
    free(v);
    return rc;
}

/* refresh_held runs while holding the lease: re-check the cache (another caller may have just
 * refreshed, or just failed: its error is ours), else fetch and store. */
static int refresh_held(const struct gcp_key *k, struct state *st, const struct transport_opts *t,
                        const struct names *nm, const char *seen, int refresh, const char *stale,
                        int64_t since, char *token, size_t n)
{
    int rc = 0;
    char *v = NULL, *val = NULL;
    char *tok = malloc(TOKEN_MAX + 1);
    if (!tok)
        return OAI_ENOMEM;
    tok[0] = '\0';
    rc = state_kv_get(st, nm->token, &v, NULL);
    if (rc) {
        rc = state_rc(rc);
        goto done;
    }
    const char *cached = pick(v, seen, refresh, state_now_ms());
    if (cached) {
        rc = copy_token(cached, token, n);
        goto done;
    }
    int64_t expires_ms = 0;
    rc = failed_since(st, nm, since);
    if (!rc) {
        rc = fetch(k, t, tok, &expires_ms);
        if (rc) {
            char e[48];
            snprintf(e, sizeof e, "%lld %d", (long long)state_now_ms(), rc);
            if (state_kv_set(st, nm->err, e, strlen(e), ERR_TTL_MS) != 0)
                log_warn("gcp key %s: could not record the failed refresh", k->hash);
        }
    }
    if (rc) {
        if (rc == OAI_EUPSTREAM && stale) {
            log_warn("gcp key %s: using the current token until it can be refreshed", k->hash);
            rc = copy_token(stale, token, n);
        }
        goto done;
    }
    size_t vl = strlen(tok) + 24;
    val = malloc(vl);
    if (!val) {
        rc = OAI_ENOMEM;
        goto done;
    }
    snprintf(val, vl, "%lld %s", (long long)expires_ms, tok);
    int64_t ttl = expires_ms - state_now_ms();
    if (ttl < 1)
        ttl = 1;
    if (state_kv_set(st, nm->token, val, strlen(val), ttl) != 0)
        log_warn("gcp key %s: could not store the new token; it is used uncached", k->hash);
    rc = copy_token(tok, token, n);
done:
    free_secret(v);
    free_secret(val);
    free_secret(tok);
    return rc;
}

/* The state store does not answer (a Redis outage): a token for this process alone, kept here
 * until it nears expiry, so that requests are still served; the shared cache takes over again
 * when the store is back. */
#define LOCAL_TOKENS 16

static int token_without_store(const struct gcp_key *k, const struct transport_opts *t, char *token,
                               size_t n)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static struct {
        char hash[sizeof k->hash];
        char tok[TOKEN_MAX + 1];
        int64_t exp;
    } local[LOCAL_TOKENS];
    int64_t now = state_now_ms();
    int slot = 0, rc;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < LOCAL_TOKENS; i++) {
        if (strcmp(local[i].hash, k->hash) == 0) {
            slot = i;
            break;
        }
        if (local[i].exp < local[slot].exp)
            slot = i; /* else the entry closest to expiry makes room */
    }
    if (strcmp(local[slot].hash, k->hash) == 0 && local[slot].exp - now > MARGIN_MS) {
        rc = copy_token(local[slot].tok, token, n);
        pthread_mutex_unlock(&mu);
        return rc;
    }
    pthread_mutex_unlock(&mu);
    char tok[TOKEN_MAX + 1];
    int64_t exp = 0;
    rc = fetch(k, t, tok, &exp);
    if (rc == 0) {
        pthread_mutex_lock(&mu);
        snprintf(local[slot].hash, sizeof local[slot].hash, "%s", k->hash);
        memcpy(local[slot].tok, tok, sizeof tok);
        local[slot].exp = exp;
        pthread_mutex_unlock(&mu);
        rc = copy_token(tok, token, n);
    }
    memset(tok, 0, sizeof tok);
    return rc;
}

/* gcp_token: see gcp.h. Besides the codes listed there it returns OAI_ELIMIT when the token
 * does not fit token[n], and OAI_ENOMEM. If refreshing fails with OAI_EUPSTREAM while the old
 * token still has MIN_LEFT_MS left (and refresh is 0), the old token is returned. */
int gcp_token(const struct gcp_key *k, struct state *st, const struct transport_opts *t,
              int refresh, char *token, size_t n)
{
    int rc = 0, held = 0;
    char *v = NULL, *seen = NULL;
    const char *stale = NULL;
    char owner[96], rnd[17];
    struct names nm;

    if (n)
        token[0] = '\0';
    rc = make_names(k, &nm);
    if (rc)
        goto done;
    rc = state_kv_get(st, nm.token, &v, NULL);
    if (rc == OAI_ENOMEM)
        goto done;
    if (rc) {
        log_warn("gcp key %s: the state store is unavailable; using a token of this process",
                 k->hash);
        rc = token_without_store(k, t, token, n);
        goto done;
    }
    int64_t now = state_now_ms(), exp = 0;
    const char *cur = parse_cached(v, &exp);
    if (cur && !refresh && exp - now > MARGIN_MS) {
        rc = copy_token(cur, token, n);
        goto done;
    }
    if (cur) {
        seen = strdup(cur);
        if (!seen) {
            rc = OAI_ENOMEM;
            goto done;
        }
        if (!refresh && exp - now > MIN_LEFT_MS)
            stale = seen;
    }
    if (refresh) {
        rc = state_kv_del(st, nm.token);
        if (rc) {
            rc = state_rc(rc);
            goto done;
        }
    }

    util_random_hex(rnd, 16);
    snprintf(owner, sizeof owner, "%ld-%ld-%s", (long)getpid(), (long)gettid(), rnd);
    int64_t since = state_now_ms(), deadline = util_mono_ms() + WAIT_MS;
    for (;;) {
        rc = state_lease_acquire(st, nm.lease, owner, LEASE_TTL_MS, &held);
        if (rc) {
            rc = state_rc(rc);
            goto done;
        }
        if (held)
            break;
        if (stale) { /* another caller is refreshing; the current token still works */
            rc = copy_token(stale, token, n);
            goto done;
        }
        if (util_mono_ms() >= deadline) {
            log_warn("gcp key %s: gave up waiting %d ms for another caller's token refresh",
                     k->hash, WAIT_MS);
            rc = OAI_EUPSTREAM;
            goto done;
        }
        msleep(POLL_MS);
        free_secret(v);
        v = NULL;
        rc = state_kv_get(st, nm.token, &v, NULL);
        if (rc) {
            rc = state_rc(rc);
            goto done;
        }
        const char *got = pick(v, seen, refresh, state_now_ms());
        if (got) {
            rc = copy_token(got, token, n);
            goto done;
        }
        rc = failed_since(st, &nm, since);
        if (rc)
            goto done;
    }
    rc = refresh_held(k, st, t, &nm, seen, refresh, stale, since, token, n);
    if (state_lease_release(st, nm.lease, owner) != 0)
        log_warn("gcp key %s: could not release the refresh lease (it expires by itself)", k->hash);
done:
    free_secret(v);
    free_secret(seen);
    return rc;
}
