#include "auth/azure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/keycache.h"
#include "common/log.h"
#include "common/util.h"

#define ENTRY_MAX 1024

static void deployments_free(struct azure_deployments *d)
{
    for (int i = 0; i < d->n; i++) {
        if (d->v[i].api_key)
            memset(d->v[i].api_key, 0, strlen(d->v[i].api_key));
        free(d->v[i].resource);
        free(d->v[i].deployment);
        free(d->v[i].api_key);
    }
    free(d->v);
    d->v = NULL;
    d->n = 0;
}

/* Resource and deployment names go into a host name and a URL path: letters, digits, '-', '_',
 * '.'. */
static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

static int parse_entry(const char *e, size_t len, struct azure_deployment *d)
{
    const char *c1 = memchr(e, ':', len);
    const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - e)) : NULL;
    if (!c1 || !c2 || !name_ok(e, (size_t)(c1 - e)) || !name_ok(c1 + 1, (size_t)(c2 - c1 - 1)) ||
        c2 + 1 >= e + len)
        return -1;
    d->resource = strndup(e, (size_t)(c1 - e));
    d->deployment = strndup(c1 + 1, (size_t)(c2 - c1 - 1));
    d->api_key = strndup(c2 + 1, len - (size_t)(c2 + 1 - e));
    if (!d->resource || !d->deployment || !d->api_key)
        return -1;
    char id[300];
    snprintf(id, sizeof id, "%s/%s", d->resource, d->deployment);
    log_hash(id, strlen(id), d->hash);
    return 0;
}

static int parse(const char *src, struct azure_deployments *out, char *err, size_t errlen)
{
    int cap = 1;
    for (const char *p = src; *p; p++)
        cap += *p == ',';
    out->v = calloc((size_t)cap, sizeof *out->v);
    if (!out->v)
        return -1;
    const char *e;
    size_t len;
    for (int idx = 1; util_list_next(&src, &e, &len); idx++) {
        if (len) {
            int rc = len < ENTRY_MAX ? parse_entry(e, len, &out->v[out->n]) : -1;
            out->n++;
            if (rc) {
                snprintf(err, errlen,
                         "AZURE_CREDENTIALS entry %d must be resourceName:deploymentId:apiKey",
                         idx);
                return -1;
            }
        }
    }
    return 0;
}

static void *parse_value(const char *src, const char *unused, char *err, size_t errlen)
{
    (void)unused;
    struct azure_deployments *k = calloc(1, sizeof *k);
    if (!k) {
        snprintf(err, errlen, "AZURE_CREDENTIALS: out of memory");
        return NULL;
    }
    if (parse(src, k, err, errlen)) {
        deployments_free(k);
        free(k);
        return NULL;
    }
    return k;
}

static void free_value(void *v)
{
    deployments_free(v);
    free(v);
}

static struct keycache cache = KEYCACHE_INIT("AZURE_CREDENTIALS", parse_value, free_value);

const struct azure_deployments *azure_deployments_get(const char *credentials, char *err,
                                                      size_t errlen)
{
    static const struct azure_deployments none = {NULL, 0};
    if (!credentials || !*credentials)
        return &none;
    return keycache_get(&cache, credentials, NULL, err, errlen);
}

void azure_deployments_cleanup(void)
{
    keycache_clear(&cache);
}
