/* provider_azure.c - Azure OpenAI deployments behind the provider table (OpenAI pass-through). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/azure.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "translators/azure.h"
#include "upstream/provider.h"

#define MODEL_TTL_MS (24LL * 3600 * 1000) /* a learned deployment model is re-learned daily */
#define MAX_EVENT    (8L * 1024 * 1024)

struct az_state {
    const struct azure_deployment *d;
    char key[600]; /* "api-key: ..." */
};

static int az_count(const struct config *cfg, char *err, size_t n)
{
    const struct azure_deployments *d = azure_deployments_get(cfg->azure_credentials, err, n);
    return d ? d->n : -1;
}

static const char *az_key_hash(const struct config *cfg, int i)
{
    char err[256];
    const struct azure_deployments *k =
        azure_deployments_get(cfg->azure_credentials, err, sizeof err);
    return k && i >= 0 && i < k->n ? k->v[i].hash : "";
}

static void model_key(const struct azure_deployment *d, char *out, size_t n)
{
    snprintf(out, n, "azure:model:%s", d->hash);
}

/* The model a deployment serves, as learned (state) or "" when unknown. */
static void learned(struct state *st, const struct azure_deployment *d, char *out, size_t n)
{
    char key[64], *v = NULL;
    model_key(d, key, sizeof key);
    out[0] = '\0';
    if (state_kv_get(st, key, &v, NULL) == 0 && v)
        snprintf(out, n, "%s", v);
    free(v);
}

static int url_of(const struct config *cfg, const struct azure_deployment *d, char *out, size_t n)
{
    int len = snprintf(out, n,
                       "https://%s.openai.azure.com/openai/deployments/%s/chat/completions"
                       "?api-version=%s",
                       d->resource, d->deployment, cfg->azure_api_version);
    return len < 0 || (size_t)len >= n ? OAI_ELIMIT : 0;
}

/* Asks each deployment whose model is unknown (max_tokens 1) and remembers the model. */
static void probe(const struct config *cfg, struct state *st, const struct transport_opts *t,
                  const struct azure_deployments *ds)
{
    static const char body[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
                               "\"max_tokens\":1}";
    struct xfer xs[16], *xp[16];
    char urls[16][512], keys[16][600];
    const struct azure_deployment *who[16];
    int n = 0;
    for (int i = 0; i < ds->n && n < 16; i++) {
        char m[128];
        learned(st, &ds->v[i], m, sizeof m);
        if (m[0] || url_of(cfg, &ds->v[i], urls[n], sizeof urls[n]))
            continue;
        xfer_init(&xs[n]);
        snprintf(keys[n], sizeof keys[n], "api-key: %s", ds->v[i].api_key);
        xs[n].method = "POST";
        xs[n].url = urls[n];
        xs[n].headers[0] = keys[n];
        xs[n].headers[1] = "Content-Type: application/json";
        xs[n].body = body;
        xs[n].body_len = sizeof body - 1;
        xs[n].max_body = 256 * 1024;
        xp[n] = &xs[n];
        who[n++] = &ds->v[i];
    }
    if (n)
        transport_run(xp, n, t, NULL, NULL);
    for (int i = 0; i < n; i++) {
        json_object *o = NULL, *m;
        if (xs[i].status == 200 &&
            util_parse_json(xs[i].body_out.data ? xs[i].body_out.data : "", xs[i].body_out.len,
                            &o) == 0 &&
            json_object_object_get_ex(o, "model", &m) && json_object_get_string_len(m)) {
            char key[64];
            const char *model = json_object_get_string(m);
            model_key(who[i], key, sizeof key);
            if (state_kv_set(st, key, model, strlen(model), MODEL_TTL_MS) == 0)
                log_info("azure deployment %s serves %s", who[i]->hash, model);
        } else {
            log_warn("azure deployment %s: probe answered HTTP %ld", who[i]->hash, xs[i].status);
        }
        json_object_put(o);
        memset(keys[i], 0, sizeof keys[i]);
        xfer_free(&xs[i]);
    }
}

/* The deployment that names model best (by name, then model, then undated model), or -1. */
static int find(struct state *st, const struct azure_deployments *ds, const char *model)
{
    int best = -1, level = 0;
    for (int i = 0; i < ds->n; i++) {
        char m[128];
        learned(st, &ds->v[i], m, sizeof m);
        int l = azure_model_matches(model, ds->v[i].deployment, m);
        if (l > level) {
            level = l;
            best = i;
        }
    }
    return best;
}

static int az_resolve(const struct config *cfg, struct state *st, const struct transport_opts *t,
                      const char *model, struct catalog_resolved *out)
{
    char err[256];
    const struct azure_deployments *ds =
        azure_deployments_get(cfg->azure_credentials, err, sizeof err);
    memset(out, 0, sizeof *out);
    if (!ds || !ds->n)
        return -1;
    int i = find(st, ds, model);
    if (i < 0) {
        probe(cfg, st, t, ds); /* learn what the deployments serve, then look again */
        i = find(st, ds, model);
    }
    if (i < 0)
        return -1;
    char m[128];
    learned(st, &ds->v[i], m, sizeof m);
    snprintf(out->upstream_id, sizeof out->upstream_id, "%d", i);
    azure_family(m[0] ? m : model, out->family, sizeof out->family);
    out->native = 1;
    return 0;
}

/* A deployment serving the same learned model as the one resolve chose can stand in for it. */
static int az_serves(const struct config *cfg, struct state *st, const struct catalog_resolved *m,
                     int i)
{
    char err[256], a[128], b[128];
    const struct azure_deployments *ds =
        azure_deployments_get(cfg->azure_credentials, err, sizeof err);
    int best = atoi(m->upstream_id);
    if (!ds || i < 0 || i >= ds->n || best < 0 || best >= ds->n)
        return 0;
    if (i == best)
        return 1;
    learned(st, &ds->v[i], a, sizeof a);
    learned(st, &ds->v[best], b, sizeof b);
    return a[0] && strcmp(a, b) == 0;
}

static int az_prepare(void **state, const struct config *cfg, int64_t pick,
                      const struct catalog_resolved *m, json_object *body, int stream,
                      json_object *betas, struct upstream_target *t, char *err, size_t n)
{
    (void)stream, (void)betas;
    const struct azure_deployments *ds = azure_deployments_get(cfg->azure_credentials, err, n);
    int i = pick >= 0 && ds && pick < ds->n ? (int)pick : atoi(m->upstream_id);
    if (!ds || i < 0 || i >= ds->n)
        return OAI_ENOKEYS;
    struct az_state *s = calloc(1, sizeof *s);
    if (!s)
        return OAI_ENOMEM;
    *state = s;
    s->d = &ds->v[i];
    snprintf(t->key_hash, sizeof t->key_hash, "%s", s->d->hash);
    snprintf(t->model_id, sizeof t->model_id, "%s", s->d->deployment);
    azure_prepare(body, cfg->azure_api_version);
    if (url_of(cfg, s->d, t->url, sizeof t->url)) {
        snprintf(err, n, "the Azure URL is too long");
        return OAI_EBADREQ;
    }
    return 0;
}

static int az_auth(void *state, const struct config *cfg, struct state *st,
                   const struct transport_opts *topts, const char *body, size_t len, int refresh,
                   struct upstream_target *t)
{
    (void)cfg, (void)st, (void)topts, (void)body, (void)len, (void)refresh;
    struct az_state *s = state;
    snprintf(s->key, sizeof s->key, "api-key: %s", s->d->api_key);
    t->headers[0] = s->key;
    t->headers[1] = "Content-Type: application/json";
    t->headers[2] = NULL;
    return 0;
}

static void az_release(void *state)
{
    struct az_state *s = state;
    if (s)
        memset(s->key, 0, sizeof s->key);
    free(s);
}

struct az_dec {
    struct sseparse sp;
    struct azure_stream st;
    sseparse_fn on_event;
    void *ctx;
};

static int az_event(void *ctx, const char *name, const char *data, size_t len)
{
    (void)name;
    struct az_dec *d = ctx;
    int rc = azure_stream_chunk(&d->st, data, len);
    if (rc == 1)
        return d->on_event(d->ctx, NULL, data, len);
    if (rc == 2)
        return d->on_event(d->ctx, "done", "", 0);
    return rc; /* 0: dropped; or OAI_EBADJSON */
}

static void *az_stream_new(sseparse_fn on_event, provider_error_fn on_error, void *ctx)
{
    (void)on_error;
    struct az_dec *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    sseparse_init(&d->sp, MAX_EVENT);
    d->on_event = on_event;
    d->ctx = ctx;
    return d;
}

static int az_stream_feed(void *dec, const char *p, size_t n)
{
    struct az_dec *d = dec;
    return sseparse_feed(&d->sp, p, n, az_event, d);
}

static void az_stream_free(void *dec)
{
    struct az_dec *d = dec;
    if (d)
        sseparse_free(&d->sp);
    free(d);
}

static json_object *az_usage_estimate(void *dec, json_object *client_body)
{
    struct az_dec *d = dec;
    return d->st.usage_seen ? NULL : azure_usage_chunk(&d->st, client_body);
}

static int az_map_error(long status, const char *error_type, const char *body, size_t len,
                        const char **code)
{
    (void)error_type;
    return azure_error(status, body, len, code);
}

const struct provider provider_azure = {
    .name = "azure",
    .catalog = CATALOG_VERTEX, /* unused: resolve replaces the catalogue */
    .owned_by = "azure-openai",
    .refresh_on_401 = 0,
    .openai_native = 1,
    .resolve = az_resolve,
    .keys = az_count,
    .key_hash = az_key_hash,
    .serves = az_serves,
    .check_max_tokens = 1,
    .prepare = az_prepare,
    .auth = az_auth,
    .release = az_release,
    .stream_new = az_stream_new,
    .stream_feed = az_stream_feed,
    .stream_free = az_stream_free,
    .usage_estimate = az_usage_estimate,
    .map_error = az_map_error,
};

void provider_azure_models(const struct config *cfg, struct state *st, json_object *data)
{
    char err[256];
    const struct azure_deployments *ds =
        azure_deployments_get(cfg->azure_credentials, err, sizeof err);
    for (int i = 0; ds && i < ds->n; i++) {
        char m[128];
        learned(st, &ds->v[i], m, sizeof m);
        const char *id = m[0] ? m : ds->v[i].deployment;
        int dup = 0;
        for (size_t k = 0; k < json_object_array_length(data) && !dup; k++) {
            json_object *e = json_object_array_get_idx(data, k), *v;
            dup = json_object_object_get_ex(e, "id", &v) &&
                  strcmp(json_object_get_string(v), id) == 0;
        }
        if (dup)
            continue;
        json_object *e = json_object_new_object();
        json_object_object_add(e, "id", json_object_new_string(id));
        json_object_object_add(e, "object", json_object_new_string("model"));
        json_object_object_add(e, "created", json_object_new_int64(0));
        json_object_object_add(e, "owned_by", json_object_new_string("azure-openai"));
        json_object_array_add(data, e);
    }
}

void provider_azure_status(const struct config *cfg, struct state *st, json_object *info)
{
    char err[256];
    const struct azure_deployments *ds =
        azure_deployments_get(cfg->azure_credentials, err, sizeof err);
    int unknown = 0;
    for (int i = 0; ds && i < ds->n; i++) {
        char m[128], fam[64], counter[96], pretty[48];
        learned(st, &ds->v[i], m, sizeof m);
        if (!m[0]) {
            unknown++;
            continue;
        }
        azure_family(m, fam, sizeof fam);
        json_object *b, *v;
        if (json_object_object_get_ex(info, fam, &b)) {
            if (json_object_object_get_ex(b, "activeKeys", &v))
                json_object_object_add(b, "activeKeys",
                                       json_object_new_int(json_object_get_int(v) + 1));
            continue;
        }
        int64_t tokens = 0;
        snprintf(counter, sizeof counter, STATE_TOKENS ":%s", fam);
        if (state_counter_get(st, counter, &tokens))
            tokens = 0;
        snprintf(pretty, sizeof pretty, "%lld tokens", (long long)tokens);
        b = json_object_new_object();
        json_object_object_add(b, "usage", json_object_new_string(pretty));
        json_object_object_add(b, "activeKeys", json_object_new_int(1));
        json_object_object_add(b, "revokedKeys", json_object_new_int(0));
        json_object_object_add(b, "proomptersInQueue", json_object_new_int(0));
        json_object_object_add(b, "estimatedQueueTime", json_object_new_string("no wait"));
        json_object_object_add(info, fam, b);
    }
    if (unknown) {
        json_object *b = json_object_new_object();
        json_object_object_add(b, "activeKeys", json_object_new_int(unknown));
        json_object_object_add(info, "azure-unknown", b);
    }
}

void provider_azure_probe(const struct config *cfg, struct state *st,
                          const struct transport_opts *t)
{
    char err[256];
    const struct azure_deployments *ds =
        azure_deployments_get(cfg->azure_credentials, err, sizeof err);
    if (ds && ds->n)
        probe(cfg, st, t, ds);
}
