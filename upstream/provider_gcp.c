/* provider_gcp.c - Claude on Vertex AI behind the provider table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/gcp.h"
#include "common/err.h"
#include "translators/apierr.h"
#include "translators/vertex.h"
#include "upstream/provider.h"

struct gcp_state {
    const struct gcp_key *key;
    char beta[1024]; /* "anthropic-beta: a,b" or "" (Vertex takes betas as a header) */
    char auth[4200]; /* "Authorization: Bearer ..." */
};

static int gcp_count(const struct config *cfg, char *err, size_t n)
{
    const struct gcp_keys *k =
        gcp_keys_get(cfg->gcp_credentials, cfg->gcp_credentials_file, err, n);
    return k ? k->n : -1;
}

static const char *gcp_key_hash(const struct config *cfg, int i)
{
    char err[256];
    const struct gcp_keys *k =
        gcp_keys_get(cfg->gcp_credentials, cfg->gcp_credentials_file, err, sizeof err);
    return k && i >= 0 && i < k->n ? k->v[i].hash : "";
}

static int gcp_prepare(void **state, const struct config *cfg, int64_t pick,
                       const struct catalog_resolved *m, json_object *body, int stream,
                       json_object *betas, struct upstream_target *t, char *err, size_t n)
{
    const struct gcp_keys *keys =
        gcp_keys_get(cfg->gcp_credentials, cfg->gcp_credentials_file, err, n);
    if (!keys || keys->n == 0)
        return OAI_ENOKEYS;
    struct gcp_state *s = calloc(1, sizeof *s);
    if (!s)
        return OAI_ENOMEM;
    *state = s;
    s->key = &keys->v[(pick < 0 ? -pick : pick) % keys->n];
    snprintf(t->key_hash, sizeof t->key_hash, "%s", s->key->hash);
    snprintf(t->model_id, sizeof t->model_id, "%s", m->upstream_id);
    vertex_prepare(body, cfg->vertex_anthropic_version, stream);
    size_t k = 0;
    for (size_t i = 0; betas && i < json_object_array_length(betas) && k < sizeof s->beta - 80; i++)
        k += (size_t)snprintf(s->beta + k, sizeof s->beta - k, "%s%s", i ? "," : "anthropic-beta: ",
                              json_object_get_string(json_object_array_get_idx(betas, i)));
    if (vertex_url(s->key->project, s->key->region, m->upstream_id, stream, t->url,
                   sizeof t->url)) {
        snprintf(err, n, "the model id cannot be used in a Vertex URL");
        return OAI_EBADREQ;
    }
    return 0;
}

static int gcp_auth(void *state, const struct config *cfg, struct state *st,
                    const struct transport_opts *topts, const char *body, size_t len, int refresh,
                    struct upstream_target *t)
{
    struct gcp_state *s = state;
    char token[4096];
    int rc = gcp_token(s->key, st, topts, refresh, token, sizeof token);
    if (rc)
        return rc;
    snprintf(s->auth, sizeof s->auth, "Authorization: Bearer %s", token);
    memset(token, 0, sizeof token);
    int h = 0;
    t->headers[h++] = s->auth;
    t->headers[h++] = "Content-Type: application/json";
    if (s->beta[0])
        t->headers[h++] = s->beta;
    t->headers[h] = NULL;
    return 0;
}

static void gcp_release(void *state)
{
    struct gcp_state *s = state;
    if (s)
        memset(s->auth, 0, sizeof s->auth);
    free(s);
}

struct sse_dec {
    struct sseparse sp;
    sseparse_fn on_event;
    void *ctx;
};

#define MAX_UPSTREAM_EVENT (8L * 1024 * 1024)

static void *gcp_stream_new(sseparse_fn on_event, provider_error_fn on_error, void *ctx)
{
    (void)on_error; /* Vertex reports errors as Anthropic "error" events */
    struct sse_dec *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    sseparse_init(&d->sp, MAX_UPSTREAM_EVENT);
    d->on_event = on_event;
    d->ctx = ctx;
    return d;
}

static int gcp_stream_feed(void *dec, const char *p, size_t n)
{
    struct sse_dec *d = dec;
    return sseparse_feed(&d->sp, p, n, d->on_event, d->ctx);
}

static void gcp_stream_free(void *dec)
{
    struct sse_dec *d = dec;
    if (d)
        sseparse_free(&d->sp);
    free(d);
}

static int gcp_map_error(long status, const char *error_type, const char *body, size_t len,
                         const char **code)
{
    (void)error_type, (void)body, (void)len;
    return apierr_upstream(status, code);
}

const struct provider provider_gcp = {
    .name = "gcp",
    .catalog = CATALOG_VERTEX,
    .owned_by = "anthropic-vertex",
    .refresh_on_401 = 1,
    .keys = gcp_count,
    .key_hash = gcp_key_hash,
    .check_max_tokens = 1,
    .prepare = gcp_prepare,
    .auth = gcp_auth,
    .release = gcp_release,
    .stream_new = gcp_stream_new,
    .stream_feed = gcp_stream_feed,
    .stream_free = gcp_stream_free,
    .map_error = gcp_map_error,
};
