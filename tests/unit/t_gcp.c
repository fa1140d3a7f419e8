/*
 * t_gcp.c - Google service accounts: GCP_CREDENTIALS / GCP_CREDENTIALS_FILE parsing and the
 * per-process key cache, the RS256 JWT (test vector JWT-1 of wire-formats.md §3.4 byte for
 * byte, and a key made at test time whose signature verifies), and access tokens from a mock
 * token endpoint on 127.0.0.1 (cache, single flight across processes, refresh, errors).
 *
 * JWT-1 reads $OAI_SHARED/reference/vectors/google-auth-test-privatekey.pem (OAI_SHARED
 * defaults to $OAI_SRCDIR/../shared); without it that check is skipped.
 */
#include "auth/gcp.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "state/state.h"
#include "tests/unit/tap.h"
#include "upstream/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GRANT "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="

#define JWT1                                                                                       \
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IjEifQ."                                          \
    "eyJpc3MiOiJzZXJ2aWNlLWFjY291bnRAZXhhbXBsZS5jb20iLCJzY29wZSI6Imh0dHBzOi8vd3d3Lmdvb2dsZWFwaXMu" \
    "Y29tL2F1dGgvY2xvdWQtcGxhdGZvcm0iLCJhdWQiOiJodHRwczovL29hdXRoMi5nb29nbGVhcGlzLmNvbS90b2tlbiIs" \
    "ImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwfQ."                                              \
    "fFQDuTlGliMscp2ikzMlMlV_8lVniSYwGA6EXc9d_3rqIAjOCKVGwxcupIBtIyIwrheNnVr7reIi-qtUuugYxWGXNmXR" \
    "9lWWhmHXBLu6PdoqwnRdIdhV4BivV4ov3cPva0HcflYfnBpPwgQYU8fb2lVL4fOT_Z-mcG3uDZwiAFFeZbI9QsA3phUl" \
    "L0PZzfXSwcx3A4jSfa6ww1mJOTiIfzQbQFQwLPaAGLtdGcl8CPw-paQL7nGMVDXgd6iZTateTDcboY1nc-Z6Wl7ibz0h" \
    "NVfeXnfTrMgWICGDI3OROWbVGOt4EVF73-62CFBEio-qqlyQoBn5zo2yhaab0P-lcw"

static char tmpdir[64];

static void msleep(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void join_path(char *out, size_t n, const char *leaf)
{
    snprintf(out, n, "%s/%s", tmpdir, leaf);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* tap_skip reports a skipped check in TAP. */
static void tap_skip(const char *name, const char *why)
{
    tap_n++;
    printf("ok %d - %s # SKIP %s\n", tap_n, name, why);
}

/* ---- capturing stderr (log lines) ---------------------------------------------------------- */

static int capture_begin(const char *file)
{
    fflush(stderr);
    int saved = dup(2);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    return saved;
}

static const char *capture_end(int saved, const char *file)
{
    static char text[8192];
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    text[0] = '\0';
    FILE *f = fopen(file, "r");
    if (f != NULL) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    return text;
}

/* ---- keys and strings ---------------------------------------------------------------------- */

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *s = malloc(65536);
    size_t n = fread(s, 1, 65535, f);
    fclose(f);
    s[n] = '\0';
    return s;
}

static void write_all(const char *path, const char *s)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(s, f);
        fclose(f);
    }
}

/* pem_of writes pkey as PKCS#8 ("PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY") PEM. */
static char *pem_of(EVP_PKEY *pkey, int pkcs1)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (pkcs1)
        PEM_write_bio_PrivateKey_traditional(bio, pkey, NULL, NULL, 0, NULL, NULL);
    else
        PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);
    char *s = strndup(p, (size_t)n);
    BIO_free(bio);
    return s;
}

/* replace returns a new copy of s with every `from` replaced by `to`. */
static char *replace(const char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), n = 0;
    for (const char *p = strstr(s, from); p; p = strstr(p + fl, from))
        n++;
    char *out = malloc(strlen(s) + n * (tl > fl ? tl - fl : 0) + 1), *o = out;
    for (const char *p = s;;) {
        const char *q = strstr(p, from);
        if (!q) {
            strcpy(o, p);
            break;
        }
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, to, tl);
        o += tl;
        p = q + fl;
    }
    return out;
}

/* body_of returns the base64 body of a PEM without armour or newlines. */
static char *body_of(const char *pem)
{
    char *out = malloc(strlen(pem) + 1), *o = out;
    const char *p = strchr(pem, '\n') + 1;
    const char *e = strstr(p, "-----END");
    for (; p < e; p++)
        if (*p != '\n')
            *o++ = *p;
    *o = '\0';
    return out;
}

static char *concat(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);
    snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

/* has_no: hay does not contain needle. */
static void has_no(const char *hay, const char *needle, const char *name)
{
    ok(hay && strstr(hay, needle) == NULL, name);
}

/* b64url_decode decodes base64url without padding into a new NUL-terminated buffer. */
static unsigned char *b64url_decode(const char *s, size_t n, size_t *out_len)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char *out = malloc(n * 3 / 4 + 3);
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        const char *c = strchr(alpha, s[i]);
        if (!c || !s[i]) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)(c - alpha);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* jwt_verify checks a JWT's RS256 signature with pkey; on success the decoded header and claims
 * are returned in hdr/claims (caller frees). */
static int jwt_verify(EVP_PKEY *pkey, const char *jwt, char **hdr, char **claims)
{
    const char *d1 = strchr(jwt, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d2 || strchr(d2 + 1, '.'))
        return 0;
    size_t sl = 0, hl = 0, cl = 0;
    unsigned char *sig = b64url_decode(d2 + 1, strlen(d2 + 1), &sl);
    unsigned char *h = b64url_decode(jwt, (size_t)(d1 - jwt), &hl);
    unsigned char *c = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &cl);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int good = sig && h && c && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
               EVP_DigestVerify(md, sig, sl, (const unsigned char *)jwt, (size_t)(d2 - jwt)) == 1;
    EVP_MD_CTX_free(md);
    free(sig);
    if (good && hdr && claims) {
        *hdr = (char *)h;
        *claims = (char *)c;
    } else {
        free(h);
        free(c);
    }
    return good;
}

/* key_hash repeats gcp.c's state key derivation: 32 hex digits of
 * SHA-256(client_email "\n" token_uri). */
static void token_key(const char *email, const char *uri, char *out, size_t n)
{
    char in[1024];
    unsigned char md[32];
    snprintf(in, sizeof in, "%s\n%s", email, uri);
    util_sha256(in, strlen(in), md);
    int o = snprintf(out, n, "gcp:token:");
    for (int i = 0; i < 16; i++)
        o += snprintf(out + o, n - (size_t)o, "%02x", md[i]);
}

/* ---- parsing ------------------------------------------------------------------------------- */

static EVP_PKEY *rsa_key, *rsa_other;
static char *pkcs8, *pkcs1;

static void test_parse_credentials(void)
{
    char err[512];
    const struct gcp_keys *ks = gcp_keys_get(NULL, NULL, err, sizeof err);
    ok(ks && ks->n == 0, "no settings: an empty set");
    ks = gcp_keys_get("", " , ", err, sizeof err);
    ok(ks && ks->n == 0, "empty settings: an empty set");

    /* the seed's format: PEM with literal \n */
    char *lit8 = replace(pkcs8, "\n", "\\n");
    char *cred = concat("proj-1:sa1@proj-1.iam.gserviceaccount.com:us-east5:", lit8, "");
    ks = gcp_keys_get(cred, NULL, err, sizeof err);
    ok(ks && ks->n == 1, "seed format PKCS#8 with literal \\n: one key");
    if (ks && ks->n == 1) {
        const struct gcp_key *k = &ks->v[0];
        char h[13];
        log_hash(k->email, strlen(k->email), h);
        is_str(k->project, "proj-1", "project");
        is_str(k->email, "sa1@proj-1.iam.gserviceaccount.com", "client email");
        is_str(k->region, "us-east5", "region");
        is_str(k->token_uri, GCP_TOKEN_URI, "token_uri defaults to Google's");
        is_str(k->key_id, "", "key_id is empty");
        is_str(k->pem, pkcs8, "PEM normalised to real newlines (identical to the original)");
        is_str(k->hash, h, "hash is log_hash of the email");
    }
    ok(gcp_keys_get(cred, NULL, err, sizeof err) == ks, "same settings: same pointer");
    char *copy = strdup(cred);
    ok(gcp_keys_get(copy, NULL, err, sizeof err) == ks, "equal strings elsewhere: same pointer");
    free(copy);
    ok(gcp_keys_get(cred, "", err, sizeof err) == ks, "NULL and empty files are the same");
    free(cred);

    /* PKCS#1 with literal \n */
    char *lit1 = replace(pkcs1, "\n", "\\n");
    cred = concat("proj-2:sa2@proj-2.iam.gserviceaccount.com:europe-west1:", lit1, "");
    ks = gcp_keys_get(cred, NULL, err, sizeof err);
    ok(ks && ks->n == 1 && strcmp(ks->v[0].pem, pkcs1) == 0,
       "seed format PKCS#1 (BEGIN RSA PRIVATE KEY): normalised");
    free(cred);

    /* bare base64 bodies: PKCS#8 as the seed decodes it, PKCS#1 as a fallback */
    char *b8 = body_of(pkcs8), *b1 = body_of(pkcs1);
    cred = concat("proj-3:sa3@proj-3.iam.gserviceaccount.com:us-east5:", b8, "");
    ks = gcp_keys_get(cred, NULL, err, sizeof err);
    ok(ks && ks->n == 1 && strcmp(ks->v[0].pem, pkcs8) == 0, "bare PKCS#8 body: armoured");
    free(cred);
    cred = concat("proj-3:sa3@proj-3.iam.gserviceaccount.com:us-east5:", b1, "");
    ks = gcp_keys_get(cred, NULL, err, sizeof err);
    ok(ks && ks->n == 1 && strcmp(ks->v[0].pem, pkcs1) == 0, "bare PKCS#1 body: armoured");
    free(cred);

    /* messy: quotes, CRLF, literal \r\n, spaces, END right after the body (the seed's example) */
    char *crlf = replace(pkcs8, "\n", "\\r\\n");
    char *q = concat("\"", crlf, "\"");
    cred = concat(" proj-4 : sa4@proj-4.iam.gserviceaccount.com : us-east5 : ", q, "  ");
    ks = gcp_keys_get(cred, NULL, err, sizeof err);
    ok(ks && ks->n == 1 && strcmp(ks->v[0].pem, pkcs8) == 0 &&
           strcmp(ks->v[0].project, "proj-4") == 0,
       "quoted key with literal \\r\\n, spaces around fields");
    free(cred);
    free(q);
    free(crlf);
    char *real = replace(pkcs8, "\n", "\r\n");
    char *glued = replace(real, "\r\n-----END", "-----END");
    cred = concat("proj-5:sa5@proj-5.iam.gserviceaccount.com:us-east5:", glued, "");
    ks = gcp_keys_get(cred, NULL, err, sizeof err);
    ok(ks && ks->n == 1 && strcmp(ks->v[0].pem, pkcs8) == 0,
       "real CRLF newlines, END glued to the body");
    free(cred);
    free(glued);
    free(real);

    /* several entries, spaces around commas, a trailing comma, a ':' inside the key part */
    char list[16384];
    snprintf(list, sizeof list,
             "p-a:a@p-a.iam.gserviceaccount.com:us-east5:%s , "
             "p-b:b@p-b.iam.gserviceaccount.com:europe-west4:%s,"
             "p-c:c@p-c.iam.gserviceaccount.com:global:%s,",
             lit8, lit1, b8);
    ks = gcp_keys_get(list, NULL, err, sizeof err);
    ok(ks && ks->n == 3, "three comma-separated entries");
    if (ks && ks->n == 3) {
        is_str(ks->v[0].email, "a@p-a.iam.gserviceaccount.com", "entry 1 email");
        is_str(ks->v[1].region, "europe-west4", "entry 2 region");
        is_str(ks->v[2].project, "p-c", "entry 3 project");
        is_str(ks->v[1].pem, pkcs1, "entry 2 PEM");
    }
    free(lit8);
    free(lit1);
    free(b1);

    /* bad entries: NULL, a message naming the variable and entry, no key material */
    struct {
        const char *prefix, *key, *want, *name;
    } bad[] = {
        {"p:e@x.com:us-east5", "", "expected projectId:clientEmail:region:privateKey",
         "three fields"},
        {"p:e@x.com:us/east5:", b8, "region", "bad region"},
        {"p:not-an-email:us-east5:", b8, "email", "bad email"},
        {"p:e@x.com:us-east5:",
         "-----BEGIN PRIVATE KEY-----\\nMIIBVQ==\\n-----END PRIVATE KEY-----",
         "does not decode to an RSA private key", "truncated key"},
        {"p:e@x.com:us-east5:",
         "-----BEGIN ENCRYPTED PRIVATE KEY-----\\nMIIB\\n"
         "-----END ENCRYPTED PRIVATE KEY-----",
         "not a PKCS#8 or PKCS#1", "encrypted key"},
        {"p:e@x.com:us-east5:", "-----BEGIN PRIVATE KEY-----\\nMIIB", "no END line", "no END"},
        {"p:e@x.com:us-east5:", "not base64!", "neither PEM nor a base64 body", "garbage key"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char name[160];
        char *entry = concat(bad[i].prefix, bad[i].key, "");
        char *two = concat("ok-p:ok@ok-p.iam.gserviceaccount.com:us-east5:", b8, ",");
        char *both = concat(two, entry, "");
        snprintf(err, sizeof err, "unset");
        const struct gcp_keys *r = gcp_keys_get(both, NULL, err, sizeof err);
        snprintf(name, sizeof name, "bad GCP_CREDENTIALS (%s): NULL", bad[i].name);
        ok(r == NULL, name);
        snprintf(name, sizeof name, "bad GCP_CREDENTIALS (%s): names variable and entry 2",
                 bad[i].name);
        has_str(err, "GCP_CREDENTIALS entry 2: ", name);
        snprintf(name, sizeof name, "bad GCP_CREDENTIALS (%s): says why", bad[i].name);
        has_str(err, bad[i].want, name);
        snprintf(name, sizeof name, "bad GCP_CREDENTIALS (%s): no key material", bad[i].name);
        ok(!strstr(err, "MII") && !strstr(err, "BEGIN") && !strstr(err, "@"), name);
        free(entry);
        free(two);
        free(both);
    }

    /* an EC key is a PKCS#8 private key, but not RSA */
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    char *ecpem = pem_of(ec, 0);
    char *eclit = replace(ecpem, "\n", "\\n");
    cred = concat("p:e@x.com:us-east5:", eclit, "");
    ok(gcp_keys_get(cred, NULL, err, sizeof err) == NULL, "EC key: NULL");
    has_str(err, "GCP_CREDENTIALS entry 1: the private key does not decode to an RSA",
            "EC key: why");
    free(cred);
    free(eclit);
    free(ecpem);
    EVP_PKEY_free(ec);

    /* a corrupted RSA body: the message must not echo any of it */
    char *corrupt = strdup(b8);
    memcpy(corrupt + 40, "AAAAAAAAAAAAAAAAAAAAAAAA", 24);
    cred = concat("p:e@x.com:us-east5:", corrupt, "");
    ok(gcp_keys_get(cred, NULL, err, sizeof err) == NULL, "corrupted body: NULL");
    char chunk[21];
    snprintf(chunk, sizeof chunk, "%s", corrupt + 8);
    has_no(err, chunk, "corrupted body: message holds none of the body");
    free(cred);
    free(corrupt);
    free(b8);
}

static void test_parse_files(void)
{
    char err[512], p1[256], p2[256], p3[256], list[2048];
    join_path(p1, sizeof p1, "sa1.json");
    join_path(p2, sizeof p2, "sa2.json");
    join_path(p3, sizeof p3, "odd:name.json");

    json_object *j = json_object_new_object();
    json_object_object_add(j, "type", json_object_new_string("service_account"));
    json_object_object_add(j, "project_id", json_object_new_string("file-proj"));
    json_object_object_add(j, "private_key_id", json_object_new_string("abc123"));
    json_object_object_add(j, "private_key", json_object_new_string(pkcs8));
    json_object_object_add(j, "client_email",
                           json_object_new_string("f1@file-proj.iam.gserviceaccount.com"));
    json_object_object_add(j, "token_uri", json_object_new_string("http://127.0.0.1:9/token"));
    write_all(p1, json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY));
    json_object_object_del(j, "token_uri");
    json_object_object_del(j, "private_key_id");
    json_object_object_add(j, "private_key", json_object_new_string(pkcs1));
    json_object_object_add(j, "client_email",
                           json_object_new_string("f2@file-proj.iam.gserviceaccount.com"));
    write_all(p2, json_object_to_json_string(j));
    write_all(p3, json_object_to_json_string(j));

    snprintf(list, sizeof list, "%s:europe-west1, %s", p1, p2);
    const struct gcp_keys *ks = gcp_keys_get(NULL, list, err, sizeof err);
    ok(ks && ks->n == 2, "two key files");
    if (ks && ks->n == 2) {
        is_str(ks->v[0].project, "file-proj", "file 1 project_id");
        is_str(ks->v[0].email, "f1@file-proj.iam.gserviceaccount.com", "file 1 client_email");
        is_str(ks->v[0].region, "europe-west1", "file 1 :region");
        is_str(ks->v[0].key_id, "abc123", "file 1 private_key_id");
        is_str(ks->v[0].token_uri, "http://127.0.0.1:9/token", "file 1 token_uri");
        is_str(ks->v[0].pem, pkcs8, "file 1 PEM");
        is_str(ks->v[1].region, GCP_DEFAULT_REGION, "file 2 region defaults");
        is_str(ks->v[1].key_id, "", "file 2 without private_key_id");
        is_str(ks->v[1].token_uri, GCP_TOKEN_URI, "file 2 token_uri defaults");
        is_str(ks->v[1].pem, pkcs1, "file 2 PKCS#1 PEM");
    }
    ok(gcp_keys_get(NULL, list, err, sizeof err) == ks, "files: same pointer again");

    ks = gcp_keys_get(NULL, p3, err, sizeof err);
    ok(ks && ks->n == 1 && strcmp(ks->v[0].region, GCP_DEFAULT_REGION) == 0,
       "a readable file whose name holds ':' is used as is");
    snprintf(list, sizeof list, "%s:asia-east1", p3);
    ks = gcp_keys_get(NULL, list, err, sizeof err);
    ok(ks && ks->n == 1 && strcmp(ks->v[0].region, "asia-east1") == 0,
       "...and with :region it splits at the last ':'");

    /* both variables: GCP_CREDENTIALS entries first */
    char *b8 = body_of(pkcs8);
    char *cred = concat("c-proj:c@c-proj.iam.gserviceaccount.com:us-east5:", b8, "");
    ks = gcp_keys_get(cred, p1, err, sizeof err);
    ok(ks && ks->n == 2 && strcmp(ks->v[0].project, "c-proj") == 0 &&
           strcmp(ks->v[1].project, "file-proj") == 0,
       "both variables: credentials then files");
    free(cred);
    free(b8);

    /* bad files */
    char bad_type[256], no_key[256], bad_json[256], bad_pem[256], missing[256];
    join_path(bad_type, sizeof bad_type, "user.json");
    join_path(no_key, sizeof no_key, "nokey.json");
    join_path(bad_json, sizeof bad_json, "bad.json");
    join_path(bad_pem, sizeof bad_pem, "badpem.json");
    join_path(missing, sizeof missing, "missing.json");
    json_object_object_add(j, "type", json_object_new_string("authorized_user"));
    write_all(bad_type, json_object_to_json_string(j));
    json_object_object_add(j, "type", json_object_new_string("service_account"));
    json_object_object_add(j, "private_key",
                           json_object_new_string("-----BEGIN PRIVATE KEY-----\nMIIBVQ==\n"
                                                  "-----END PRIVATE KEY-----\n"));
    write_all(bad_pem, json_object_to_json_string(j));
    json_object_object_del(j, "private_key");
    write_all(no_key, json_object_to_json_string(j));
    write_all(bad_json, "{\"type\": \"service_account\", ");
    json_object_put(j);

    struct {
        const char *path, *suffix, *want, *name;
    } bad[] = {
        {missing, "", "does not exist", "missing file"},
        {bad_type, "", "not a service-account key", "type authorized_user"},
        {no_key, "", "\"private_key\" is missing", "no private_key"},
        {bad_json, "", "not a JSON object", "truncated JSON"},
        {bad_pem, "", "does not decode to an RSA private key", "bad private_key"},
        {p1, ":bad/region", "region", "bad region"},
        {tmpdir, "", "not a regular file", "a directory"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char name[160];
        snprintf(list, sizeof list, "%s,%s%s", p2, bad[i].path, bad[i].suffix);
        snprintf(err, sizeof err, "unset");
        snprintf(name, sizeof name, "bad GCP_CREDENTIALS_FILE (%s): NULL", bad[i].name);
        ok(gcp_keys_get(NULL, list, err, sizeof err) == NULL, name);
        snprintf(name, sizeof name, "bad GCP_CREDENTIALS_FILE (%s): names variable, entry 2",
                 bad[i].name);
        has_str(err, "GCP_CREDENTIALS_FILE entry 2: ", name);
        snprintf(name, sizeof name, "bad GCP_CREDENTIALS_FILE (%s): says why", bad[i].name);
        has_str(err, bad[i].want, name);
        snprintf(name, sizeof name, "bad GCP_CREDENTIALS_FILE (%s): no path, no key material",
                 bad[i].name);
        ok(!strstr(err, tmpdir) && !strstr(err, "MII") && !strstr(err, "BEGIN"), name);
    }
}

/* ---- the JWT ------------------------------------------------------------------------------- */

static struct gcp_key mkkey(char *email, char *uri, char *key_id, char *pem)
{
    struct gcp_key k = {.project = "proj",
                        .email = email,
                        .region = "us-east5",
                        .token_uri = uri,
                        .key_id = key_id,
                        .pem = pem};
    log_hash(email, strlen(email), k.hash);
    return k;
}

static void test_jwt_vector(void)
{
    char path[1024];
    const char *shared = getenv("OAI_SHARED"), *src = getenv("OAI_SRCDIR");
    if (shared && *shared)
        snprintf(path, sizeof path, "%s/reference/vectors/google-auth-test-privatekey.pem", shared);
    else if (src && *src)
        snprintf(path, sizeof path,
                 "%s/../shared/reference/vectors/google-auth-test-privatekey.pem", src);
    else
        path[0] = '\0';
    char *pem = path[0] ? read_all(path) : NULL;
    if (!pem) {
        tap_skip("JWT-1 byte for byte", "test key not found (set OAI_SHARED or OAI_SRCDIR)");
        tap_skip("JWT-1 via GCP_CREDENTIALS with literal \\n", "test key not found");
        tap_skip("JWT-1 via a bare PKCS#1 body", "test key not found");
        return;
    }
    struct gcp_key k = mkkey("service-account@example.com", GCP_TOKEN_URI, "1", pem);
    struct buf b;
    buf_init(&b, 8192);
    is_int(gcp_jwt(&k, 1700000000, &b), 0, "JWT-1: rc 0");
    is_str(b.data, JWT1, "JWT-1 byte for byte");
    is_int(b.len, 624, "JWT-1 is 624 bytes");

    /* the same key through the seed's format, and as a bare body */
    char err[256];
    char *lit = replace(pem, "\n", "\\n");
    char *cred = concat("example:service-account@example.com:us-east5:", lit, "");
    const struct gcp_keys *ks = gcp_keys_get(cred, NULL, err, sizeof err);
    if (ks && ks->n == 1) {
        struct gcp_key k2 = ks->v[0];
        k2.key_id = "1";
        buf_reset(&b);
        ok(gcp_jwt(&k2, 1700000000, &b) == 0 && strcmp(b.data, JWT1) == 0,
           "JWT-1 via GCP_CREDENTIALS with literal \\n");
    } else {
        ok(0, "JWT-1 via GCP_CREDENTIALS with literal \\n");
    }
    free(cred);
    char *body = body_of(pem);
    cred = concat("example:service-account@example.com:us-east5:", body, "");
    ks = gcp_keys_get(cred, NULL, err, sizeof err);
    if (ks && ks->n == 1) {
        struct gcp_key k2 = ks->v[0];
        k2.key_id = "1";
        buf_reset(&b);
        ok(gcp_jwt(&k2, 1700000000, &b) == 0 && strcmp(b.data, JWT1) == 0,
           "JWT-1 via a bare PKCS#1 body");
    } else {
        ok(0, "JWT-1 via a bare PKCS#1 body");
    }
    free(cred);
    free(body);
    free(lit);
    buf_free(&b);
    free(pem);
}

static void test_jwt_generated(void)
{
    struct gcp_key k =
        mkkey("gen@proj.iam.gserviceaccount.com", "http://127.0.0.1:1/token", "", pkcs8);
    struct buf b;
    char *hdr = NULL, *claims = NULL;
    buf_init(&b, 8192);
    is_int(gcp_jwt(&k, 1712345678, &b), 0, "generated key: rc 0");
    ok(b.data && !strpbrk(b.data, "=+/"), "base64url without padding");
    ok(jwt_verify(rsa_key, b.data, &hdr, &claims), "signature verifies with the public key");
    is_str(hdr, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", "header without kid");
    is_str(claims,
           "{\"iss\":\"gen@proj.iam.gserviceaccount.com\",\"scope\":"
           "\"https://www.googleapis.com/auth/cloud-platform\",\"aud\":"
           "\"http://127.0.0.1:1/token\",\"iat\":1712345678,\"exp\":1712349278}",
           "claims iss, scope, aud, iat, exp = iat + 3600");
    ok(!jwt_verify(rsa_other, b.data, NULL, NULL), "another key does not verify it");
    free(hdr);
    free(claims);
    hdr = claims = NULL;

    k.key_id = "kid-7";
    k.pem = pkcs1;
    buf_reset(&b);
    is_int(gcp_jwt(&k, 1712345678, &b), 0, "PKCS#1 PEM with key id: rc 0");
    ok(jwt_verify(rsa_key, b.data, &hdr, &claims), "PKCS#1: signature verifies");
    is_str(hdr, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"kid-7\"}", "header with kid");
    free(hdr);
    free(claims);

    k.pem = "-----BEGIN PRIVATE KEY-----\nMIIBVQ==\n-----END PRIVATE KEY-----\n";
    buf_reset(&b);
    int rc = buf_adds(&b, "keep");
    is_int(rc, 0, "buf_adds");
    int saved = capture_begin("/dev/null");
    rc = gcp_jwt(&k, 1712345678, &b);
    capture_end(saved, "/dev/null");
    is_int(rc, OAI_EBADREQ, "unusable key: OAI_EBADREQ");
    is_str(b.data, "keep", "unusable key: out left as it was");
    buf_free(&b);
}

/* ---- a mock token endpoint ----------------------------------------------------------------- */

enum mode { M_OK, M_OK_STRING, M_INVALID, M_500, M_429, M_GARBAGE, M_RETRYABLE_400 };

static struct mock {
    int fd, port;
    pthread_t th;
    pthread_mutex_t mu;
    int calls, bad_requests, seq;
    enum mode mode;
    int delay_ms;
    int stop;
    char url[64];
} mock = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int mock_calls(void)
{
    pthread_mutex_lock(&mock.mu);
    int n = mock.calls;
    pthread_mutex_unlock(&mock.mu);
    return n;
}

static void mock_set(enum mode m, int delay_ms)
{
    pthread_mutex_lock(&mock.mu);
    mock.mode = m;
    mock.delay_ms = delay_ms;
    pthread_mutex_unlock(&mock.mu);
}

/* check_request: a well-formed token request signed by rsa_key for this endpoint. */
static const char *check_request(const char *head, const char *body)
{
    if (strncmp(head, "POST /token HTTP/1.1\r\n", 22) != 0)
        return "not POST /token";
    if (!strcasestr(head, "\r\nContent-Type: application/x-www-form-urlencoded\r\n"))
        return "wrong content type";
    if (strncmp(body, GRANT, strlen(GRANT)) != 0)
        return "wrong grant_type";
    char *hdr = NULL, *claims = NULL;
    const char *why = NULL;
    if (!jwt_verify(rsa_key, body + strlen(GRANT), &hdr, &claims))
        return "bad signature";
    json_object *c = json_tokener_parse(claims);
    json_object *aud = NULL;
    if (!c || !json_object_object_get_ex(c, "aud", &aud) ||
        strcmp(json_object_get_string(aud), mock.url) != 0)
        why = "wrong aud";
    json_object_put(c);
    free(hdr);
    free(claims);
    return why;
}

static void answer(int fd, int status, const char *body)
{
    char out[1024];
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     status, strlen(body), body);
    ssize_t w = write(fd, out, (size_t)n);
    (void)w;
}

static void serve_one(int fd)
{
    char req[16384];
    size_t n = 0;
    char *eoh = NULL;
    long clen = -1;
    for (;;) {
        ssize_t r = read(fd, req + n, sizeof req - 1 - n);
        if (r <= 0)
            return;
        n += (size_t)r;
        req[n] = '\0';
        if (!eoh) {
            eoh = strstr(req, "\r\n\r\n");
            const char *cl = strcasestr(req, "\r\nContent-Length:");
            clen = cl ? strtol(cl + 17, NULL, 10) : 0;
        }
        if (eoh && (long)(n - (size_t)(eoh + 4 - req)) >= clen)
            break;
        if (n == sizeof req - 1)
            return;
    }
    *eoh = '\0';
    const char *why = check_request(req, eoh + 4);
    pthread_mutex_lock(&mock.mu);
    mock.calls++;
    int seq = ++mock.seq;
    enum mode m = mock.mode;
    int delay = mock.delay_ms;
    if (why)
        mock.bad_requests++;
    pthread_mutex_unlock(&mock.mu);
    if (delay)
        msleep(delay);
    char body[512];
    if (why) {
        snprintf(body, sizeof body,
                 "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT: %s\"}", why);
        answer(fd, 400, body);
        return;
    }
    switch (m) {
    case M_OK:
        snprintf(body, sizeof body,
                 "{\"access_token\":\"ya29.tok-%d\",\"expires_in\":3599,\"token_type\":\"Bearer\"}",
                 seq);
        answer(fd, 200, body);
        break;
    case M_OK_STRING:
        snprintf(body, sizeof body,
                 "{\"access_token\":\"ya29.str-%d\",\"expires_in\":\"3599\",\"token_type\":"
                 "\"Bearer\"}",
                 seq);
        answer(fd, 200, body);
        break;
    case M_INVALID:
        answer(fd, 400,
               "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT "
               "Signature.\"}");
        break;
    case M_500:
        answer(fd, 500, "{\"error\":\"internal_failure\"}");
        break;
    case M_429:
        answer(fd, 429, "{\"error\":\"rate_limited\"}");
        break;
    case M_GARBAGE:
        answer(fd, 200, "{\"token_type\":\"Bearer\"}");
        break;
    case M_RETRYABLE_400:
        answer(fd, 400, "{\"error\":\"temporarily_unavailable\"}");
        break;
    }
}

static void *mock_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&mock.mu);
        int stop = mock.stop;
        pthread_mutex_unlock(&mock.mu);
        if (stop)
            break;
        struct pollfd p = {.fd = mock.fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(mock.fd, NULL, NULL);
        if (c < 0)
            continue;
        serve_one(c);
        close(c);
    }
    return NULL;
}

static int mock_start(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    mock.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (mock.fd < 0 || bind(mock.fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(mock.fd, 64) != 0 || getsockname(mock.fd, (struct sockaddr *)&a, &al) != 0)
        return -1;
    mock.port = ntohs(a.sin_port);
    snprintf(mock.url, sizeof mock.url, "http://127.0.0.1:%d/token", mock.port);
    return pthread_create(&mock.th, NULL, mock_main, NULL);
}

static void mock_stop(void)
{
    pthread_mutex_lock(&mock.mu);
    mock.stop = 1;
    pthread_mutex_unlock(&mock.mu);
    pthread_join(mock.th, NULL);
    close(mock.fd);
}

/* ---- access tokens ------------------------------------------------------------------------- */

static const struct transport_opts topts = {NULL, NULL, NULL, 5, 5};

/* cached_expiry reads the cached entry of email; returns its expiry and token in tok. */
static int64_t cached_expiry(struct state *st, const char *email, char *tok, size_t n)
{
    char key[64];
    char *v = NULL;
    long long exp = 0;
    token_key(email, mock.url, key, sizeof key);
    tok[0] = '\0';
    if (state_kv_get(st, key, &v, NULL) == 0 && v) {
        int used = 0;
        if (sscanf(v, "%lld %n", &exp, &used) >= 1)
            snprintf(tok, n, "%s", v + used);
    }
    free(v);
    return exp;
}

static void put_cached(struct state *st, const char *email, int64_t expires_ms, const char *tok)
{
    char key[64], v[256];
    token_key(email, mock.url, key, sizeof key);
    snprintf(v, sizeof v, "%lld %s", (long long)expires_ms, tok);
    int rc = state_kv_set(st, key, v, strlen(v), 3600000);
    is_int(rc, 0, "test seeds the token cache");
}

struct other {
    struct state *st;
    char lease[96], key[96], value[128];
    int delay_ms;
    int set_error; /* store an error record "<now> <set_error>" instead of value */
};

/* other_main plays another process's refresher: after a delay it stores a token (or an error)
 * and gives up the lease it holds as "other". */
static void *other_main(void *arg)
{
    struct other *o = arg;
    msleep(o->delay_ms);
    if (o->set_error)
        snprintf(o->value, sizeof o->value, "%lld %d", (long long)state_now_ms(), o->set_error);
    int rc = state_kv_set(o->st, o->key, o->value, strlen(o->value), 60000);
    rc |= state_lease_release(o->st, o->lease, "other");
    return (void *)(intptr_t)rc;
}

static void test_tokens(struct state *st)
{
    char tok[4096], cached[4096];
    int64_t t0;
    struct gcp_key k = mkkey("tok1@proj.iam.gserviceaccount.com", mock.url, "k1", pkcs8);

    mock_set(M_OK, 0);
    int base = mock_calls();
    is_int(gcp_token(&k, st, &topts, 0, tok, sizeof tok), 0, "first call: rc 0");
    is_str(tok, "ya29.tok-1", "first call: the endpoint's token");
    is_int(mock_calls() - base, 1, "first call: one request");
    int64_t exp = cached_expiry(st, k.email, cached, sizeof cached);
    is_str(cached, "ya29.tok-1", "the token is in the state store");
    t0 = state_now_ms();
    ok(exp > t0 + 3590000 && exp <= t0 + 3599000, "cached expiry = now + expires_in");

    is_int(gcp_token(&k, st, &topts, 0, tok, sizeof tok), 0, "second call: rc 0");
    is_str(tok, "ya29.tok-1", "second call: the cached token");
    is_int(mock_calls() - base, 1, "second call: no request");

    is_int(gcp_token(&k, st, &topts, 1, tok, sizeof tok), 0, "refresh=1: rc 0");
    is_str(tok, "ya29.tok-2", "refresh=1: a new token");
    is_int(mock_calls() - base, 2, "refresh=1: one more request");
    cached_expiry(st, k.email, cached, sizeof cached);
    is_str(cached, "ya29.tok-2", "refresh=1: the new token is cached");

    char small[8];
    is_int(gcp_token(&k, st, &topts, 0, small, sizeof small), OAI_ELIMIT,
           "a token that does not fit: OAI_ELIMIT");

    /* a token cached by another process is used as is */
    put_cached(st, k.email, state_now_ms() + 3000000, "ya29.foreign");
    is_int(gcp_token(&k, st, &topts, 0, tok, sizeof tok), 0, "foreign cached token: rc 0");
    is_str(tok, "ya29.foreign", "foreign cached token is used");
    is_int(mock_calls() - base, 2, "foreign cached token: no request");

    /* expiring within the margin: refreshed */
    put_cached(st, k.email, state_now_ms() + 100000, "ya29.soon");
    is_int(gcp_token(&k, st, &topts, 0, tok, sizeof tok), 0, "expiring soon: rc 0");
    is_str(tok, "ya29.tok-3", "expiring soon: refreshed");
    is_int(mock_calls() - base, 3, "expiring soon: one request");

    /* expiring soon while another caller refreshes: the current token is still used */
    char lease[96];
    int held = 0;
    token_key(k.email, mock.url, cached, sizeof cached);
    snprintf(lease, sizeof lease, "gcp:refresh:%.40s", cached + strlen("gcp:token:"));
    put_cached(st, k.email, state_now_ms() + 100000, "ya29.stale");
    is_int(state_lease_acquire(st, lease, "other", 5000, &held), 0, "other takes the lease");
    is_int(gcp_token(&k, st, &topts, 0, tok, sizeof tok), 0, "stale while refreshing: rc 0");
    is_str(tok, "ya29.stale", "stale while another refreshes: the current token");
    is_int(mock_calls() - base, 3, "stale while another refreshes: no request");

    /* no usable token while another refreshes: wait for its result */
    struct other o = {.st = st, .delay_ms = 300};
    pthread_t th;
    snprintf(o.lease, sizeof o.lease, "%s", lease);
    token_key(k.email, mock.url, o.key, sizeof o.key);
    snprintf(o.value, sizeof o.value, "%lld ya29.from-other", (long long)state_now_ms() + 3600000);
    int rc = state_kv_del(st, o.key);
    is_int(rc, 0, "cache emptied");
    pthread_create(&th, NULL, other_main, &o);
    t0 = util_mono_ms();
    is_int(gcp_token(&k, st, &topts, 0, tok, sizeof tok), 0, "waiting for another: rc 0");
    is_str(tok, "ya29.from-other", "waiting for another: its token");
    ok(util_mono_ms() - t0 >= 250, "waiting for another: waited");
    is_int(mock_calls() - base, 3, "waiting for another: no request");
    void *trc = NULL;
    pthread_join(th, &trc);
    is_int((intptr_t)trc, 0, "other refresher ran");

    /* the refresher fails: its waiters get its error */
    struct gcp_key ke = mkkey("tokerr@proj.iam.gserviceaccount.com", mock.url, "", pkcs8);
    char ekey[96];
    token_key(ke.email, mock.url, ekey, sizeof ekey);
    snprintf(o.lease, sizeof o.lease, "gcp:refresh:%.40s", ekey + strlen("gcp:token:"));
    snprintf(o.key, sizeof o.key, "gcp:tokerr:%.40s", ekey + strlen("gcp:token:"));
    is_int(state_lease_acquire(st, o.lease, "other", 5000, &held), 0, "other takes the lease");
    o.set_error = OAI_EAUTHUP;
    pthread_create(&th, NULL, other_main, &o);
    is_int(gcp_token(&ke, st, &topts, 0, tok, sizeof tok), OAI_EAUTHUP,
           "another's refresh failed: its error");
    is_int(mock_calls() - base, 3, "another's refresh failed: no request");
    pthread_join(th, NULL);

    /* the refresher vanished: its lease expires and the waiter refreshes */
    is_int(state_kv_del(st, o.key), 0, "error record removed");
    is_int(state_lease_acquire(st, o.lease, "ghost", 300, &held), 0, "a ghost takes the lease");
    t0 = util_mono_ms();
    is_int(gcp_token(&ke, st, &topts, 0, tok, sizeof tok), 0, "vanished refresher: rc 0");
    ok(util_mono_ms() - t0 >= 250, "vanished refresher: waited for the lease to expire");
    is_str(tok, "ya29.tok-4", "vanished refresher: fetched it ourselves");
    is_int(mock_calls() - base, 4, "vanished refresher: one request");

    /* expires_in as a string */
    struct gcp_key ks = mkkey("tokstr@proj.iam.gserviceaccount.com", mock.url, "", pkcs8);
    mock_set(M_OK_STRING, 0);
    is_int(gcp_token(&ks, st, &topts, 0, tok, sizeof tok), 0, "expires_in as a string: rc 0");
    is_str(tok, "ya29.str-5", "expires_in as a string: token");
    exp = cached_expiry(st, ks.email, cached, sizeof cached);
    t0 = state_now_ms();
    ok(exp > t0 + 3590000 && exp <= t0 + 3599000, "expires_in as a string: expiry");

    /* errors */
    struct {
        enum mode m;
        int want;
        const char *name;
    } errs[] = {
        {M_INVALID, OAI_EAUTHUP, "invalid_grant: OAI_EAUTHUP"},
        {M_500, OAI_EUPSTREAM, "500: OAI_EUPSTREAM"},
        {M_429, OAI_EUPSTREAM, "429: OAI_EUPSTREAM"},
        {M_GARBAGE, OAI_EUPSTREAM, "200 without access_token: OAI_EUPSTREAM"},
        {M_RETRYABLE_400, OAI_EUPSTREAM, "400 temporarily_unavailable: OAI_EUPSTREAM"},
    };
    char logfile[256];
    join_path(logfile, sizeof logfile, "stderr.log");
    for (size_t i = 0; i < sizeof errs / sizeof *errs; i++) {
        char email[64], name[160];
        snprintf(email, sizeof email, "err%zu@proj.iam.gserviceaccount.com", i);
        struct gcp_key kb = mkkey(email, mock.url, "", pkcs8);
        mock_set(errs[i].m, 0);
        int before = mock_calls();
        int saved = capture_begin(logfile);
        rc = gcp_token(&kb, st, &topts, 0, tok, sizeof tok);
        const char *logged = capture_end(saved, logfile);
        is_int(rc, errs[i].want, errs[i].name);
        snprintf(name, sizeof name, "%s: one request", errs[i].name);
        is_int(mock_calls() - before, 1, name);
        snprintf(name, sizeof name, "%s: log names the key hash", errs[i].name);
        has_str(logged, kb.hash, name);
        snprintf(name, sizeof name, "%s: log holds no assertion or token", errs[i].name);
        ok(!strstr(logged, "eyJ") && !strstr(logged, "ya29") && !strstr(logged, "MII"), name);
        cached_expiry(st, kb.email, cached, sizeof cached);
        snprintf(name, sizeof name, "%s: nothing cached", errs[i].name);
        is_str(cached, "", name);
        if (errs[i].m == M_INVALID)
            has_str(logged, "invalid_grant", "invalid_grant: log gives the error code");
    }

    /* the assertion signed by a key the endpoint does not know: invalid_grant */
    char *other_pem = pem_of(rsa_other, 0);
    struct gcp_key kw = mkkey("wrongkey@proj.iam.gserviceaccount.com", mock.url, "", other_pem);
    mock_set(M_OK, 0);
    int saved = capture_begin(logfile);
    rc = gcp_token(&kw, st, &topts, 0, tok, sizeof tok);
    const char *logged = capture_end(saved, logfile);
    is_int(rc, OAI_EAUTHUP, "wrong private key: OAI_EAUTHUP");
    has_str(logged, "Invalid JWT", "wrong private key: log gives the description");
    free(other_pem);

    /* the endpoint is down but the current token has time left: it is used */
    struct gcp_key kd = mkkey("down@proj.iam.gserviceaccount.com", mock.url, "", pkcs8);
    put_cached(st, kd.email, state_now_ms() + 100000, "ya29.still-good");
    mock_set(M_500, 0);
    saved = capture_begin(logfile);
    rc = gcp_token(&kd, st, &topts, 0, tok, sizeof tok);
    capture_end(saved, logfile);
    is_int(rc, 0, "endpoint down, token still valid: rc 0");
    is_str(tok, "ya29.still-good", "endpoint down, token still valid: the current token");
    saved = capture_begin(logfile);
    rc = gcp_token(&kd, st, &topts, 1, tok, sizeof tok);
    capture_end(saved, logfile);
    is_int(rc, OAI_EUPSTREAM, "endpoint down, refresh=1: OAI_EUPSTREAM");

    /* unreachable endpoint */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    bind(s, (struct sockaddr *)&a, sizeof a);
    getsockname(s, (struct sockaddr *)&a, &al);
    char dead[64];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d/token", ntohs(a.sin_port));
    close(s); /* nothing listens there now */
    struct gcp_key ku = mkkey("unreach@proj.iam.gserviceaccount.com", dead, "", pkcs8);
    saved = capture_begin(logfile);
    rc = gcp_token(&ku, st, &topts, 0, tok, sizeof tok);
    capture_end(saved, logfile);
    is_int(rc, OAI_EUPSTREAM, "unreachable endpoint: OAI_EUPSTREAM");

    pthread_mutex_lock(&mock.mu);
    int bad_requests = mock.bad_requests;
    pthread_mutex_unlock(&mock.mu);
    is_int(bad_requests, 1, "every other token request was well formed and verified");
}

#define CHILDREN 4

/* test_processes: CHILDREN processes sharing one state file and no cached token fetch once. */
static void test_processes(const char *state_file)
{
    int fds[2];
    if (pipe(fds) != 0) {
        ok(0, "pipe");
        return;
    }
    struct gcp_key k = mkkey("procs@proj.iam.gserviceaccount.com", mock.url, "", pkcs8);
    mock_set(M_OK, 300);
    int before = mock_calls();
    fflush(stdout);
    fflush(stderr);
    pid_t pids[CHILDREN];
    for (int i = 0; i < CHILDREN; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            close(fds[0]);
            struct state *st = NULL;
            char tok[4096], line[4200];
            int rc = state_open(&st, state_file);
            if (rc == 0)
                rc = gcp_token(&k, st, &topts, 0, tok, sizeof tok);
            int n = snprintf(line, sizeof line, "%d %s\n", rc, rc ? "-" : tok);
            ssize_t w = write(fds[1], line, (size_t)n);
            (void)w;
            state_close(st);
            _exit(0);
        }
    }
    close(fds[1]);
    int all_exited = 1;
    for (int i = 0; i < CHILDREN; i++) {
        int status = 0;
        if (pids[i] < 0 || waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0)
            all_exited = 0;
    }
    ok(all_exited, "every child exited cleanly");
    char out[8192];
    size_t n = 0;
    while (n < sizeof out - 1) {
        ssize_t r = read(fds[0], out + n, sizeof out - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    out[n] = '\0';
    close(fds[0]);
    int lines = 0, same = 1;
    char first[4200] = "";
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        if (!lines)
            snprintf(first, sizeof first, "%s", line);
        else if (strcmp(first, line) != 0)
            same = 0;
        lines++;
    }
    is_int(lines, CHILDREN, "every child reported");
    ok(strncmp(first, "0 ya29.tok-", 11) == 0, "children got a token");
    ok(same, "every child got the same token");
    is_int(mock_calls() - before, 1, "one token request between the processes (single flight)");
    mock_set(M_OK, 0);
}

int main(void)
{
    char path[256];
    struct state *st = NULL;
    tap_start();
    util_init();
    transport_global_init();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/t_gcp.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        ok(0, "mkdtemp");
        return tap_done();
    }
    rsa_key = EVP_RSA_gen(2048);
    rsa_other = EVP_RSA_gen(2048);
    ok(rsa_key && rsa_other, "RSA keys generated");
    pkcs8 = pem_of(rsa_key, 0);
    pkcs1 = pem_of(rsa_key, 1);
    ok(strncmp(pkcs8, "-----BEGIN PRIVATE KEY-----\n", 28) == 0, "PKCS#8 PEM written");
    ok(strncmp(pkcs1, "-----BEGIN RSA PRIVATE KEY-----\n", 32) == 0, "PKCS#1 PEM written");

    test_parse_credentials();
    test_parse_files();
    test_jwt_vector();
    test_jwt_generated();

    join_path(path, sizeof path, "state.db");
    is_int(state_open(&st, path), 0, "state store opened");
    is_int(mock_start(), 0, "mock token endpoint started");
    if (st && mock.port) {
        test_tokens(st);
        test_processes(path);
        mock_stop();
    }
    state_close(st);

    gcp_keys_cleanup();
    free(pkcs8);
    free(pkcs1);
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(rsa_other);
    ok(nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0, "temp dir removed");
    return tap_done();
}
