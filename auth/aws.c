#include "auth/aws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/keycache.h"
#include "common/log.h"
#include "common/util.h"

#define ENTRY_MAX 4096

static void keys_free(struct aws_keys *k)
{
    for (int i = 0; i < k->n; i++) {
        struct aws_key *e = &k->v[i];
        if (e->secret_key)
            memset(e->secret_key, 0, strlen(e->secret_key));
        free(e->access_key);
        free(e->secret_key);
        free(e->region);
        free(e->session_token);
    }
    free(k->v);
    k->v = NULL;
    k->n = 0;
}

static int region_ok(const char *r)
{
    if (!*r)
        return 0;
    for (; *r; r++)
        if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-'))
            return 0;
    return 1;
}

/* Splits one trimmed entry "a:b:c[:d]" into k; 0 or -1. */
static int parse_entry(const char *e, size_t len, struct aws_key *k)
{
    char buf[ENTRY_MAX];
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, e, len);
    buf[len] = '\0';
    char *f[4] = {NULL, NULL, NULL, NULL};
    int n = 0;
    char *p = buf;
    while (n < 4) {
        f[n++] = p;
        char *c = strchr(p, ':');
        if (!c)
            break;
        if (n == 4)
            break; /* the session token may itself contain ':' */
        *c = '\0';
        p = c + 1;
    }
    int ok = (n == 3 || n == 4) && *f[0] && *f[1] && region_ok(f[2]) && (n == 3 || *f[3]);
    if (ok) {
        k->access_key = strdup(f[0]);
        k->secret_key = strdup(f[1]);
        k->region = strdup(f[2]);
        k->session_token = strdup(n == 4 ? f[3] : "");
        ok = k->access_key && k->secret_key && k->region && k->session_token;
        if (ok)
            log_hash(k->access_key, strlen(k->access_key), k->hash);
    }
    memset(buf, 0, sizeof buf);
    return ok ? 0 : -1;
}

static int parse(const char *src, struct aws_keys *out, char *err, size_t errlen)
{
    int cap = 1;
    for (const char *p = src; *p; p++)
        cap += *p == ',';
    out->v = calloc((size_t)cap, sizeof *out->v);
    out->n = 0;
    if (!out->v) {
        snprintf(err, errlen, "AWS_CREDENTIALS: out of memory");
        return -1;
    }
    const char *e;
    size_t len;
    for (int idx = 1; util_list_next(&src, &e, &len); idx++) {
        if (len) {
            if (parse_entry(e, len, &out->v[out->n])) {
                out->n++; /* so that keys_free releases what was copied */
                snprintf(err, errlen,
                         "AWS_CREDENTIALS entry %d must be "
                         "accessKeyId:secretAccessKey:region[:sessionToken]",
                         idx);
                return -1;
            }
            out->n++;
        }
    }
    return 0;
}

static void *parse_value(const char *src, const char *unused, char *err, size_t errlen)
{
    (void)unused;
    struct aws_keys *k = calloc(1, sizeof *k);
    if (!k) {
        snprintf(err, errlen, "AWS_CREDENTIALS: out of memory");
        return NULL;
    }
    if (parse(src, k, err, errlen)) {
        keys_free(k);
        free(k);
        return NULL;
    }
    return k;
}

static void free_value(void *v)
{
    keys_free(v);
    free(v);
}

static struct keycache cache = KEYCACHE_INIT("AWS_CREDENTIALS", parse_value, free_value);

const struct aws_keys *aws_keys_get(const char *credentials, char *err, size_t errlen)
{
    static const struct aws_keys none = {NULL, 0};
    if (!credentials || !*credentials)
        return &none;
    return keycache_get(&cache, credentials, NULL, err, errlen);
}

void aws_keys_cleanup(void)
{
    keycache_clear(&cache);
}
