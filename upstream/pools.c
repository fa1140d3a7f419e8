/*
 * pools.c - what the key pools show (info page blocks, Prometheus metrics) and the key checker
 * that keeps them true.
 *
 * The checker asks each key, for each catalogue model, a question that costs nothing: Bedrock gets
 * an invoke with max_tokens -1 (it authorises and finds the model before validating the body, so a
 * 400 naming max_tokens means "this key can use this model"); Vertex and Azure get max_tokens 1.
 * One process at a time runs it (a lease in the state store); a full round every
 * KEY_CHECK_PERIOD_S, and the revoked keys again every few minutes so that a key that works again
 * comes back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "translators/anthropic.h"
#include "upstream/keypool.h"
#include "upstream/provider.h"
#include "upstream/proxy.h"

#define CHECK_LEASE       "keycheck"
#define CHECK_FULL        "keycheck:full"    /* present while the last full round is fresh */
#define CHECK_REVOKED     "keycheck:revoked" /* present while the last revoked round is fresh */
#define CHECK_LEASE_MS    (10L * 60 * 1000)
#define REVOKED_RECHECK_S 300
#define CHECK_TIMEOUT_S   30
#define MAX_CHECK_MODELS  32
#define LAT_BUCKETS_SHOWN 11

static const struct provider *const all_providers[] = {&provider_gcp, &provider_aws,
                                                       &provider_azure};
#define NPROVIDERS ((int)(sizeof all_providers / sizeof all_providers[0]))

const struct provider *provider_by_name(const char *name)
{
    for (int i = 0; i < NPROVIDERS; i++)
        if (strcmp(all_providers[i]->name, name) == 0)
            return all_providers[i];
    return NULL;
}

void provider_transport_opts(const struct config *cfg, struct transport_opts *t)
{
    memset(t, 0, sizeof *t);
    t->connect_to = cfg->upstream_connect_to;
    t->ca_bundle = cfg->upstream_ca_bundle;
    t->proxy = cfg->https_proxy;
    t->timeout_s = cfg->upstream_timeout_s;
    t->idle_timeout_s = cfg->stream_idle_timeout_s;
}

/* The hashes of pv's keys (malloc'd array of borrowed strings); *n the count (0: none). */
static const char **hashes_of(const struct provider *pv, const struct config *cfg, int *n)
{
    char err[256];
    *n = pv->keys(cfg, err, sizeof err);
    if (*n <= 0) {
        *n = 0;
        return NULL;
    }
    const char **h = calloc((size_t)*n, sizeof *h);
    if (!h) {
        *n = 0;
        return NULL;
    }
    for (int i = 0; i < *n; i++)
        h[i] = pv->key_hash(cfg, i);
    return h;
}

/* The catalogue models a Claude platform serves, resolved for it. */
static int models_of(const struct provider *pv, struct catalog_resolved *out, int max)
{
    int n = 0;
    for (size_t i = 0; i < catalog_count() && n < max; i++) {
        const struct catalog_model *m = catalog_at(i);
        if (m->flags & CAT_LEGACY)
            continue;
        if (catalog_resolve(m->api_id, NULL, pv->catalog, &out[n]) == 0)
            n++;
    }
    return n;
}

/* ---- info page ----------------------------------------------------------------------------- */

/* The seed's wait text: "no wait" up to 2 s, else "Nsec", else "Mmin, Ssec". */
static void wait_text(int64_t ms, char *out, size_t n)
{
    if (ms <= 2000)
        snprintf(out, n, "no wait");
    else if (ms < 60000)
        snprintf(out, n, "%lldsec", (long long)((ms + 500) / 1000));
    else
        snprintf(out, n, "%lldmin, %lldsec", (long long)(ms / 60000),
                 (long long)((ms % 60000 + 500) / 1000));
}

struct family_stat {
    int active, revoked, quota, cooling;
    int64_t wait_ms; /* until a key is ready, when none is */
};

static void family_stat(struct state *st, const struct provider *pv, const char *family,
                        const char **hashes, int n, struct family_stat *fs)
{
    struct keypool p;
    int64_t now = state_now_ms(), soonest;
    memset(fs, 0, sizeof *fs);
    keypool_load(&p, st, pv->name, family, "", "", hashes, n);
    for (int i = 0; i < p.n; i++) {
        enum keypool_state ks = keypool_state(&p, i, 0, now);
        fs->revoked += ks == KEYSTATE_REVOKED;
        fs->quota += ks == KEYSTATE_OVER_QUOTA;
        fs->active += ks != KEYSTATE_REVOKED && ks != KEYSTATE_OVER_QUOTA;
        fs->cooling += ks == KEYSTATE_COOLING;
    }
    if (keypool_pick(&p, NULL, 0, now, &soonest) < 0 && soonest > now)
        fs->wait_ms = soonest - now;
    keypool_free(&p);
}

/* The block of the family of models[i], on the pass that shows it (0: Sonnet-class, 1: Opus). */
static void family_block(struct state *st, const struct provider *pv,
                         const struct catalog_resolved *models, int nm, int i, int pass,
                         const char **hashes, int n, json_object *info)
{
    const char *family = models[i].family;
    json_object *b;
    if ((strstr(family, "-opus") != NULL) != pass || json_object_object_get_ex(info, family, &b))
        return; /* another pass, or done with the first model of the family */
    struct family_stat fs;
    family_stat(st, pv, family, hashes, n, &fs);
    char name[96], pretty[32], usage[48], wait[32];
    int64_t tokens = 0;
    snprintf(name, sizeof name, STATE_TOKENS ":%s", family);
    if (state_counter_get(st, name, &tokens))
        tokens = 0;
    util_pretty_tokens(tokens, pretty, sizeof pretty);
    snprintf(usage, sizeof usage, "%s tokens", pretty);
    b = json_object_new_object();
    json_object_object_add(b, "usage", json_object_new_string(usage));
    json_object_object_add(b, "activeKeys", json_object_new_int(fs.active));
    json_object_object_add(b, "revokedKeys", json_object_new_int(fs.revoked));
    json_object_object_add(b, "overQuotaKeys", json_object_new_int(fs.quota));
    json_object_object_add(b, "coolingKeys", json_object_new_int(fs.cooling));
    json_object *per = json_object_new_object();
    for (int j = i; j < nm; j++) {
        if (strcmp(models[j].family, family) != 0)
            continue;
        struct keypool p;
        int64_t now = state_now_ms();
        int usable = 0;
        keypool_load(&p, st, pv->name, family, models[j].upstream_id, models[j].model->api_id,
                     hashes, n);
        for (int k = 0; k < p.n; k++)
            usable += keypool_usable(&p, k, now);
        keypool_free(&p);
        json_object_object_add(per, models[j].model->api_id, json_object_new_int(usable));
    }
    json_object_object_add(b, "modelKeys", per);
    int64_t queued = keypool_queue_length(st, family);
    wait_text(queued || fs.wait_ms ? fs.wait_ms : 0, wait, sizeof wait);
    json_object_object_add(b, "proomptersInQueue", json_object_new_int64(queued));
    json_object_object_add(b, "estimatedQueueTime", json_object_new_string(wait));
    json_object_object_add(info, family, b);
}

/* One info block per family of a Claude platform (SPEC §7). */
static void claude_blocks(const struct config *cfg, struct state *st, const struct provider *pv,
                          json_object *info)
{
    int n;
    const char **hashes = hashes_of(pv, cfg, &n);
    if (!n)
        return;
    struct catalog_resolved *models = calloc(MAX_CHECK_MODELS, sizeof *models);
    if (!models) {
        free(hashes);
        return;
    }
    int nm = models_of(pv, models, MAX_CHECK_MODELS);
    /* the seed's order: gcp-claude before gcp-claude-opus */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < nm; i++)
            family_block(st, pv, models, nm, i, pass, hashes, n, info);
    }
    free(models);
    free(hashes);
}

void proxy_status(const struct config *cfg, struct state *st, json_object *info)
{
    claude_blocks(cfg, st, &provider_gcp, info);
    claude_blocks(cfg, st, &provider_aws, info);
    if (cfg->azure_keys > 0)
        provider_azure_status(cfg, st, info);
}

/* ---- metrics ------------------------------------------------------------------------------- */

struct metric_ctx {
    struct buf *out;
    int rc;
    const char *prefix;
    int64_t hist[LAT_BUCKETS_SHOWN + 1];
};

static int metric_requests(void *ctx, const char *name, int64_t value)
{
    struct metric_ctx *m = ctx;
    char api[16], provider[16];
    int status;
    if (sscanf(name + strlen(PROXY_METRIC_REQUESTS), "%15[^:]:%15[^:]:%d", api, provider,
               &status) == 3 &&
        !m->rc)
        m->rc = buf_printf(m->out,
                           "oai_fcgi_requests_total{route=\"%s\",provider=\"%s\",status=\"%d\"} "
                           "%lld\n",
                           api, provider, status, (long long)value);
    return 0;
}

static int metric_tokens(void *ctx, const char *name, int64_t value)
{
    struct metric_ctx *m = ctx;
    const char *family = name + strlen(STATE_TOKENS ":");
    if (!m->rc && !strchr(family, ':'))
        m->rc = buf_printf(m->out, "oai_fcgi_tokens_by_family_total{family=\"%s\"} %lld\n", family,
                           (long long)value);
    return 0;
}

static int metric_latency(void *ctx, const char *name, int64_t value)
{
    struct metric_ctx *m = ctx;
    int b;
    if (strncmp(name, m->prefix, strlen(m->prefix)) == 0 &&
        sscanf(name + strlen(m->prefix), "%d", &b) == 1 && b >= 0 && b <= LAT_BUCKETS_SHOWN)
        m->hist[b] += value;
    return 0;
}

int proxy_metrics(const struct config *cfg, struct state *st, struct buf *out)
{
    static const double le[LAT_BUCKETS_SHOWN] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
    struct metric_ctx m = {out, 0, NULL, {0}};
    m.rc = buf_adds(out, "# HELP oai_fcgi_requests_total Generation requests answered, by route, "
                         "provider and status (all processes).\n"
                         "# TYPE oai_fcgi_requests_total counter\n");
    if (!m.rc && state_counter_scan(st, PROXY_METRIC_REQUESTS, metric_requests, &m))
        return OAI_ESTATE;
    if (!m.rc)
        m.rc = buf_adds(out, "# HELP oai_fcgi_tokens_by_family_total Tokens reported by "
                             "upstreams, by model family.\n"
                             "# TYPE oai_fcgi_tokens_by_family_total counter\n");
    if (!m.rc && state_counter_scan(st, STATE_TOKENS ":", metric_tokens, &m))
        return OAI_ESTATE;
    if (!m.rc)
        m.rc = buf_adds(out, "# HELP oai_fcgi_upstream_latency_seconds Duration of upstream "
                             "attempts (whole transfer).\n"
                             "# TYPE oai_fcgi_upstream_latency_seconds histogram\n");
    for (int p = 0; p < NPROVIDERS && !m.rc; p++) {
        char prefix[64], sum_name[64];
        int64_t sum = 0, cum = 0;
        snprintf(prefix, sizeof prefix, PROXY_METRIC_LATENCY "%s:", all_providers[p]->name);
        memset(m.hist, 0, sizeof m.hist);
        m.prefix = prefix;
        if (state_counter_scan(st, prefix, metric_latency, &m))
            return OAI_ESTATE;
        snprintf(sum_name, sizeof sum_name, PROXY_METRIC_LATENCY_SUM "%s", all_providers[p]->name);
        if (state_counter_get(st, sum_name, &sum))
            return OAI_ESTATE;
        for (int b = 0; b < LAT_BUCKETS_SHOWN && !m.rc; b++) {
            cum += m.hist[b];
            m.rc = buf_printf(out,
                              "oai_fcgi_upstream_latency_seconds_bucket{provider=\"%s\",le=\"%g\"} "
                              "%lld\n",
                              all_providers[p]->name, le[b], (long long)cum);
        }
        cum += m.hist[LAT_BUCKETS_SHOWN];
        if (!m.rc)
            m.rc = buf_printf(
                out,
                "oai_fcgi_upstream_latency_seconds_bucket{provider=\"%s\",le=\"+Inf\"} %lld\n"
                "oai_fcgi_upstream_latency_seconds_sum{provider=\"%s\"} %.3f\n"
                "oai_fcgi_upstream_latency_seconds_count{provider=\"%s\"} %lld\n",
                all_providers[p]->name, (long long)cum, all_providers[p]->name,
                (double)sum / 1000.0, all_providers[p]->name, (long long)cum);
    }
    if (!m.rc)
        m.rc = buf_adds(out, "# HELP oai_fcgi_keys_by_state Keys by provider and state "
                             "(cooling: for any family).\n"
                             "# TYPE oai_fcgi_keys_by_state gauge\n"
                             "# HELP oai_fcgi_queue_length Requests waiting for a cooling key, "
                             "by family.\n"
                             "# TYPE oai_fcgi_queue_length gauge\n");
    for (int p = 0; p < NPROVIDERS && !m.rc; p++) {
        const struct provider *pv = all_providers[p];
        int n;
        const char **hashes = hashes_of(pv, cfg, &n);
        if (!n)
            continue;
        struct family_stat total = {0, 0, 0, 0, 0};
        struct catalog_resolved models[MAX_CHECK_MODELS];
        int nm = pv->openai_native ? 0 : models_of(pv, models, MAX_CHECK_MODELS);
        char seen[8][32];
        int nseen = 0;
        struct family_stat fs;
        family_stat(st, pv, "", hashes, n, &total);
        total.cooling = 0;
        for (int i = 0; i < nm && !m.rc; i++) {
            int dup = 0;
            for (int s = 0; s < nseen; s++)
                dup |= strcmp(seen[s], models[i].family) == 0;
            if (dup || nseen == 8)
                continue;
            snprintf(seen[nseen++], sizeof seen[0], "%s", models[i].family);
            family_stat(st, pv, models[i].family, hashes, n, &fs);
            total.cooling += fs.cooling;
            m.rc = buf_printf(out, "oai_fcgi_queue_length{family=\"%s\"} %lld\n", models[i].family,
                              (long long)keypool_queue_length(st, models[i].family));
        }
        if (!m.rc)
            m.rc = buf_printf(out,
                              "oai_fcgi_keys_by_state{provider=\"%s\",state=\"active\"} %d\n"
                              "oai_fcgi_keys_by_state{provider=\"%s\",state=\"cooling\"} %d\n"
                              "oai_fcgi_keys_by_state{provider=\"%s\",state=\"over_quota\"} %d\n"
                              "oai_fcgi_keys_by_state{provider=\"%s\",state=\"revoked\"} %d\n",
                              pv->name, total.active, pv->name, total.cooling, pv->name,
                              total.quota, pv->name, total.revoked);
        free(hashes);
    }
    return m.rc;
}

/* ---- key checker --------------------------------------------------------------------------- */

struct check_ctx {
    int (*stop)(void *);
    void *stop_ctx;
};

static int check_tick(void *ctx)
{
    struct check_ctx *c = ctx;
    return c->stop && c->stop(c->stop_ctx) ? -1 : 0;
}

/* What one probe answer says: 1 the key can use the model, 0 it cannot, -1 unknown; *revoked
 * (with why) when the credentials were refused. */
static int probe_verdict(const struct provider *pv, struct xfer *x, int *revoked,
                         enum keypool_verdict *quota, char *why, size_t n)
{
    char msg[400] = "";
    if (x->status && x->status != 200)
        anthropic_error_message(x->body_out.data ? x->body_out.data : "", x->body_out.len,
                                x->status, msg, sizeof msg);
    if (x->status == 200)
        return 1;
    if (pv->check_max_tokens < 0 && x->status == 400 && strstr(msg, "max_tokens"))
        return 1; /* validated after authorisation and model access: usable */
    enum keypool_verdict v = keypool_classify(x->status, x->error_type, msg);
    switch (v) {
    case KEYPOOL_COOL:
        return 1; /* rate-limited: it exists and the key may use it */
    case KEYPOOL_QUOTA:
        *quota = KEYPOOL_QUOTA;
        snprintf(why, n, "HTTP %ld: %.200s", x->status, msg);
        return 1;
    case KEYPOOL_REVOKED:
        *revoked = 1;
        snprintf(why, n, "HTTP %ld: %.200s", x->status, msg);
        return 0;
    case KEYPOOL_NOMODEL:
        return 0;
    default:
        return -1;
    }
}

/* Checks key i of pv: one probe per model, all at once. */
static void check_key(const struct config *cfg, struct state *st, const struct provider *pv, int i,
                      const struct transport_opts *t, struct check_ctx *cc)
{
    struct catalog_resolved *models = calloc(MAX_CHECK_MODELS, sizeof *models);
    struct xfer *xs = calloc(MAX_CHECK_MODELS, sizeof *xs);
    struct xfer **xp = calloc(MAX_CHECK_MODELS, sizeof *xp);
    void **ps = calloc(MAX_CHECK_MODELS, sizeof *ps);
    json_object **bodies = calloc(MAX_CHECK_MODELS, sizeof *bodies);
    struct upstream_target *tg = calloc(MAX_CHECK_MODELS, sizeof *tg);
    int *xfer_of = calloc(MAX_CHECK_MODELS, sizeof *xfer_of); /* 1 + transfer index, 0 none */
    const char *hash = pv->key_hash(cfg, i);
    int nm = 0, n = 0, revoked = 0, auth_refused = 0;
    if (!models || !xs || !xp || !ps || !bodies || !tg || !xfer_of)
        goto out;
    if (pv->openai_native) {
        snprintf(models[0].upstream_id, sizeof models[0].upstream_id, "%d", i);
        nm = 1;
    } else {
        nm = models_of(pv, models, MAX_CHECK_MODELS);
    }
    for (int j = 0; j < nm; j++) {
        char err[256];
        bodies[j] = json_object_new_object();
        json_object *msgs = json_object_new_array(), *m = json_object_new_object();
        json_object_object_add(m, "role", json_object_new_string("user"));
        json_object_object_add(m, "content", json_object_new_string("Hi"));
        json_object_array_add(msgs, m);
        json_object_object_add(bodies[j], "messages", msgs);
        json_object_object_add(bodies[j], "max_tokens", json_object_new_int(pv->check_max_tokens));
        if (pv->prepare(&ps[j], cfg, i, &models[j], bodies[j], 0, NULL, &tg[j], err, sizeof err))
            continue;
        size_t len;
        const char *body = util_json_plain(bodies[j], &len);
        int rc = pv->auth(ps[j], cfg, st, t, body, len, 0, &tg[j]);
        if (rc == OAI_EAUTHUP) {
            auth_refused = 1;
            break;
        }
        if (rc)
            continue;
        struct xfer *x = &xs[n];
        xfer_init(x);
        x->method = "POST";
        x->url = tg[j].url;
        for (int h = 0;
             h < PROVIDER_MAX_HEADERS && h < TRANSPORT_MAX_HEADERS - 1 && tg[j].headers[h]; h++)
            x->headers[h] = tg[j].headers[h];
        x->body = body;
        x->body_len = len;
        x->max_body = 64 * 1024;
        xp[n++] = x;
        xfer_of[j] = n;
    }
    if (auth_refused) {
        log_warn("key checker: %s key %s: the token endpoint refused its credentials; revoked",
                 pv->name, hash);
        if (keypool_set_checked(st, pv->name, hash, NULL, 1, "credentials refused"))
            log_warn("key checker: %s key %s: result not recorded (state store)", pv->name, hash);
        goto out;
    }
    if (n)
        transport_run(xp, n, t, check_tick, cc);
    if (cc->stop && cc->stop(cc->stop_ctx))
        goto out;
    struct buf list;
    buf_init(&list, 64 * 1024);
    int usable = 0, unknown = 0;
    enum keypool_verdict quota = KEYPOOL_OK;
    char why[300] = "";
    for (int j = 0; j < nm; j++) {
        if (!xfer_of[j]) {
            unknown++;
            continue;
        }
        int v = probe_verdict(pv, &xs[xfer_of[j] - 1], &revoked, &quota, why, sizeof why);
        if (v < 0)
            unknown++;
        if (v != 0 && !pv->openai_native) {
            if (buf_printf(&list, "%s%s", list.len ? "," : "", models[j].model->api_id))
                unknown++;
        }
        usable += v > 0;
    }
    if (unknown == nm) {
        log_warn("key checker: %s key %s: no answer could be read; state unchanged", pv->name,
                 hash);
    } else {
        if (quota == KEYPOOL_QUOTA && !revoked) {
            struct keypool p;
            const char *h[1] = {hash};
            keypool_load(&p, st, pv->name, "", "", "", h, 1);
            keypool_judge(&p, st, 0, KEYPOOL_QUOTA, -1, 429, why);
            keypool_free(&p);
        }
        if (keypool_set_checked(st, pv->name, hash,
                                revoked || pv->openai_native ? NULL : (list.data ? list.data : ""),
                                revoked, why))
            log_warn("key checker: %s key %s: result not recorded (state store)", pv->name, hash);
        else if (revoked)
            log_warn("key checker: %s key %s: revoked (%s)", pv->name, hash, why);
        else
            log_info("key checker: %s key %s: serves %d of %d models", pv->name, hash, usable, nm);
    }
    buf_free(&list);
out:
    for (int j = 0; j < MAX_CHECK_MODELS && xs && ps && bodies; j++) {
        if (j < n)
            xfer_free(&xs[j]);
        if (ps[j])
            pv->release(ps[j]);
        json_object_put(bodies[j]);
    }
    free(models);
    free(xs);
    free(xp);
    free(ps);
    free(bodies);
    free(tg);
    free(xfer_of);
}

/* Checks the keys of every provider (only_revoked: just the revoked ones). */
static void check_round(const struct config *cfg, struct state *st, int only_revoked,
                        struct check_ctx *cc)
{
    struct transport_opts t;
    provider_transport_opts(cfg, &t);
    t.timeout_s = CHECK_TIMEOUT_S;
    t.idle_timeout_s = CHECK_TIMEOUT_S;
    for (int p = 0; p < NPROVIDERS; p++) {
        const struct provider *pv = all_providers[p];
        int n;
        const char **hashes = hashes_of(pv, cfg, &n);
        if (!n)
            continue;
        if (pv == &provider_azure && !only_revoked)
            provider_azure_probe(cfg, st, &t); /* learn what each deployment serves */
        struct keypool pool;
        keypool_load(&pool, st, pv->name, "", "", "", hashes, n);
        for (int i = 0; i < n; i++) {
            if (cc->stop && cc->stop(cc->stop_ctx))
                break;
            if (!only_revoked || pool.k[i].revoked)
                check_key(cfg, st, pv, i, &t, cc);
        }
        keypool_free(&pool);
        free(hashes);
    }
}

/* Whether the entry name is absent (a round is due); store failures say "not due". */
static int due(struct state *st, const char *name)
{
    char *v = NULL;
    if (state_kv_get(st, name, &v, NULL))
        return 0;
    free(v);
    return v == NULL;
}

static void mark_done(struct state *st, const char *name, int64_t ttl_s)
{
    if (state_kv_set(st, name, "1", 1, ttl_s * 1000))
        log_warn("key checker: %s not recorded (state store)", name);
}

int proxy_key_check_due(const struct config *cfg, struct state *st)
{
    return cfg->key_check_period_s > 0 && (due(st, CHECK_FULL) || due(st, CHECK_REVOKED));
}

int proxy_key_check(const struct config *cfg, struct state *st, int (*stop)(void *), void *ctx)
{
    char owner[64];
    int held = 0, ran = 0;
    if (cfg->key_check_period_s <= 0)
        return 0;
    snprintf(owner, sizeof owner, "pid %d", (int)getpid());
    if (state_lease_acquire(st, CHECK_LEASE, owner, CHECK_LEASE_MS, &held) || !held)
        return 0;
    struct check_ctx cc = {stop, ctx};
    int64_t revoked_period =
        cfg->key_check_period_s < REVOKED_RECHECK_S ? cfg->key_check_period_s : REVOKED_RECHECK_S;
    if (due(st, CHECK_FULL)) {
        log_info("key checker: checking every key");
        check_round(cfg, st, 0, &cc);
        if (!stop || !stop(ctx)) {
            mark_done(st, CHECK_FULL, cfg->key_check_period_s);
            mark_done(st, CHECK_REVOKED, revoked_period);
        }
        ran = 1;
    } else if (due(st, CHECK_REVOKED)) {
        check_round(cfg, st, 1, &cc);
        if (!stop || !stop(ctx))
            mark_done(st, CHECK_REVOKED, revoked_period);
        ran = 1;
    }
    if (state_lease_release(st, CHECK_LEASE, owner))
        log_warn("key checker: lease not released (it expires)");
    return ran;
}
