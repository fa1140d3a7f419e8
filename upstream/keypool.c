/* keypool.c - key health in the shared state store (see keypool.h). */
#include "upstream/keypool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#define ERR_TTL_MS     (24L * 3600 * 1000)
#define STREAK_KEEP_MS 60000 /* a cooldown entry outlives its end by this much */

static int has(const char *hay, const char *needle)
{
    return hay && strcasestr(hay, needle) != NULL;
}

/* Messages that mean the account ran out (not a per-minute limit): OpenAI/Azure's
 * insufficient_quota, Anthropic's credit and usage blocks, Bedrock's and Vertex's daily quotas. */
static int quota_message(const char *m)
{
    return has(m, "per day") || has(m, "insufficient_quota") ||
           has(m, "exceeded your current quota") || has(m, "credit balance") ||
           has(m, "usage blocked") || has(m, "billing");
}

enum keypool_verdict keypool_classify(long status, const char *error_type, const char *message)
{
    if (status == 200)
        return KEYPOOL_OK;
    if (status == 0)
        return KEYPOOL_TRANSIENT;
    switch (status) {
    case 401:
        return KEYPOOL_REVOKED;
    case 403:
        /* Bedrock's AccessDeniedException for a model the account has not been granted */
        if (has(message, "specified model") || has(message, "access to the model"))
            return KEYPOOL_NOMODEL;
        return quota_message(message) ? KEYPOOL_QUOTA : KEYPOOL_REVOKED;
    case 404:
        return KEYPOOL_NOMODEL;
    case 429:
        return quota_message(message) || has(error_type, "insufficient_quota") ? KEYPOOL_QUOTA
                                                                               : KEYPOOL_COOL;
    case 503:
    case 529:
        return KEYPOOL_COOL;
    case 400:
        if (has(message, "credit balance") || has(message, "usage blocked"))
            return KEYPOOL_QUOTA;
        if (has(message, "organization has been disabled"))
            return KEYPOOL_REVOKED;
        return KEYPOOL_FATAL;
    default:
        return status >= 500 || status == 408 || status == 424 ? KEYPOOL_TRANSIENT : KEYPOOL_FATAL;
    }
}

const char *keypool_verdict_name(enum keypool_verdict v)
{
    static const char *const names[] = {"ok",      "cool",      "quota", "revoked",
                                        "nomodel", "transient", "fatal"};
    return (unsigned)v < sizeof names / sizeof names[0] ? names[v] : "?";
}

/* ---- loading ------------------------------------------------------------------------------- */

struct load_ctx {
    struct keypool *p;
    size_t prefix_len;
};

static int64_t num(const char *v, size_t len)
{
    char b[32];
    size_t k = len < sizeof b - 1 ? len : sizeof b - 1;
    memcpy(b, v, k);
    b[k] = '\0';
    return strtoll(b, NULL, 10);
}

/* Whether the comma list v (len bytes) names id. */
static int list_names(const char *v, size_t len, const char *id)
{
    size_t il = strlen(id);
    const char *e = v + len;
    while (v < e) {
        const char *c = memchr(v, ',', (size_t)(e - v));
        size_t l = (size_t)((c ? c : e) - v);
        if (l == il && memcmp(v, id, il) == 0)
            return 1;
        v += l + 1;
    }
    return 0;
}

static int load_one(void *ctx, const char *key, const char *v, size_t len)
{
    struct load_ctx *c = ctx;
    struct keypool *p = c->p;
    const char *h = key + c->prefix_len, *colon = strchr(h, ':');
    if (!colon)
        return 0;
    size_t hl = (size_t)(colon - h);
    const char *field = colon + 1;
    for (int i = 0; i < p->n; i++) {
        struct keypool_key *k = &p->k[i];
        if (strlen(k->hash) != hl || memcmp(k->hash, h, hl) != 0)
            continue;
        if (strcmp(field, "used") == 0) {
            k->used = num(v, len);
        } else if (strncmp(field, "cool:", 5) == 0 && strcmp(field + 5, p->family) == 0) {
            const char *sp = memchr(v, ' ', len);
            k->cool_until = num(v, len);
            k->streak = sp ? (int)num(sp + 1, len - (size_t)(sp + 1 - v)) : 1;
        } else if (strcmp(field, "quota") == 0) {
            k->quota_until = num(v, len);
        } else if (strcmp(field, "revoked") == 0) {
            k->revoked = 1;
        } else if (strcmp(field, "models") == 0) {
            k->checked = 1;
            k->has_model = p->api_id[0] && list_names(v, len, p->api_id);
        } else if (strncmp(field, "slot:", 5) == 0) {
            k->busy++;
        }
        break;
    }
    return 0;
}

int keypool_load(struct keypool *p, struct state *st, const char *provider, const char *family,
                 const char *model, const char *api_id, const char *const *hashes, int n)
{
    memset(p, 0, sizeof *p);
    snprintf(p->provider, sizeof p->provider, "%s", provider);
    snprintf(p->family, sizeof p->family, "%s", family ? family : "");
    snprintf(p->model, sizeof p->model, "%s", model ? model : "");
    snprintf(p->api_id, sizeof p->api_id, "%s", api_id ? api_id : "");
    p->k = calloc(n > 0 ? (size_t)n : 1, sizeof *p->k);
    if (!p->k)
        return OAI_ENOMEM;
    p->n = n;
    for (int i = 0; i < n; i++)
        p->k[i].hash = hashes[i];
    char prefix[64];
    snprintf(prefix, sizeof prefix, KEYPOOL_PREFIX "%s:", provider);
    struct load_ctx c = {p, strlen(prefix)};
    int rc = state_kv_scan(st, prefix, load_one, &c);
    if (rc) {
        log_warn("key pool %s: state store unreadable; treating every key as healthy", provider);
        for (int i = 0; i < n; i++) {
            memset(&p->k[i], 0, sizeof p->k[i]);
            p->k[i].hash = hashes[i];
        }
    }
    return rc;
}

void keypool_free(struct keypool *p)
{
    free(p->k);
    p->k = NULL;
    p->n = 0;
}

/* ---- choosing ------------------------------------------------------------------------------ */

enum keypool_state keypool_state(const struct keypool *p, int i, int cap, int64_t now)
{
    const struct keypool_key *k = &p->k[i];
    if (k->revoked)
        return KEYSTATE_REVOKED;
    if (k->quota_until > now)
        return KEYSTATE_OVER_QUOTA;
    if (k->checked && p->api_id[0] && !k->has_model)
        return KEYSTATE_NO_MODEL;
    if (k->cool_until > now)
        return KEYSTATE_COOLING;
    return cap > 0 && k->busy >= cap ? KEYSTATE_BUSY : KEYSTATE_READY;
}

int keypool_usable(const struct keypool *p, int i, int64_t now)
{
    return keypool_state(p, i, 0, now) <= KEYSTATE_COOLING;
}

int keypool_pick(const struct keypool *p, const unsigned char *allowed, int cap, int64_t now,
                 int64_t *soonest)
{
    int best = -1;
    *soonest = 0;
    for (int i = 0; i < p->n; i++) {
        if (allowed && !allowed[i])
            continue;
        const struct keypool_key *k = &p->k[i];
        switch (keypool_state(p, i, cap, now)) {
        case KEYSTATE_READY:
            if (best < 0 || k->used < p->k[best].used)
                best = i;
            break;
        case KEYSTATE_COOLING:
        case KEYSTATE_BUSY: {
            /* slots free when requests end: look again soon */
            int64_t at = k->cool_until > now ? k->cool_until : now + 250;
            if (!*soonest || at < *soonest)
                *soonest = at;
            break;
        }
        default:
            break;
        }
    }
    if (best >= 0)
        *soonest = now;
    return best;
}

static void key_name(char *out, size_t n, const struct keypool *p, int i, const char *field)
{
    snprintf(out, n, KEYPOOL_PREFIX "%s:%s:%s", p->provider, p->k[i].hash, field);
}

int keypool_take(const struct keypool *p, struct state *st, int i, int cap, const char *owner,
                 int64_t ttl_ms, int *slot)
{
    char name[160], v[32];
    int64_t now = state_now_ms();
    *slot = -1;
    for (int s = 0; s < cap; s++) {
        char field[32];
        int added = 0;
        snprintf(field, sizeof field, "slot:%d", s);
        key_name(name, sizeof name, p, i, field);
        if (state_kv_add(st, name, owner, strlen(owner), ttl_ms, &added) == 0 && added) {
            *slot = s;
            break;
        }
    }
    if (cap > 0 && *slot < 0)
        return 1;
    if (p->n == 1)
        return 0; /* one key: nothing to order by last use, so no write */
    key_name(name, sizeof name, p, i, "used");
    int len = snprintf(v, sizeof v, "%lld", (long long)now);
    if (state_kv_set(st, name, v, (size_t)len, 0))
        log_warn("key %s: last use not recorded (state store)", p->k[i].hash);
    return 0;
}

void keypool_give(const struct keypool *p, struct state *st, int i, int slot)
{
    if (slot < 0)
        return;
    char name[160], field[32];
    snprintf(field, sizeof field, "slot:%d", slot);
    key_name(name, sizeof name, p, i, field);
    if (state_kv_del(st, name))
        log_warn("key %s: concurrency slot not released (it expires)", p->k[i].hash);
}

/* ---- judging ------------------------------------------------------------------------------- */

static void set_text(struct state *st, const char *name, const char *text, int64_t ttl)
{
    if (state_kv_set(st, name, text, strlen(text), ttl))
        log_warn("key state %s not recorded (state store)", name);
}

int64_t keypool_judge(struct keypool *p, struct state *st, int i, enum keypool_verdict v,
                      int64_t retry_after_ms, long status, const char *why)
{
    struct keypool_key *k = &p->k[i];
    int64_t now = state_now_ms(), cool = 0;
    char name[320], text[600];
    why = why ? why : "";
    if (v == KEYPOOL_OK) {
        if (k->streak || k->cool_until) { /* a cooled key answered: the next 429 starts at 1 s */
            char field[80];
            snprintf(field, sizeof field, "cool:%s", p->family);
            key_name(name, sizeof name, p, i, field);
            if (state_kv_del(st, name))
                log_warn("key %s: cooldown not cleared (state store)", k->hash);
            k->streak = 0;
            k->cool_until = 0;
        }
        return 0;
    }
    if (v != KEYPOOL_FATAL) {
        key_name(name, sizeof name, p, i, "err");
        snprintf(text, sizeof text, "%lld %ld %.500s", (long long)now, status, why);
        set_text(st, name, text, ERR_TTL_MS);
    }
    switch (v) {
    case KEYPOOL_COOL: {
        int streak = k->streak + 1;
        if (retry_after_ms >= 0) {
            cool = retry_after_ms;
        } else {
            cool = KEYPOOL_COOL_FIRST;
            for (int s = 1; s < streak && cool < KEYPOOL_COOL_MAX; s++)
                cool *= 2;
            if (cool > KEYPOOL_COOL_MAX)
                cool = KEYPOOL_COOL_MAX;
        }
        char field[80];
        snprintf(field, sizeof field, "cool:%s", p->family);
        key_name(name, sizeof name, p, i, field);
        k->cool_until = now + cool;
        k->streak = streak;
        snprintf(text, sizeof text, "%lld %d", (long long)k->cool_until, streak);
        set_text(st, name, text, cool + STREAK_KEEP_MS);
        log_warn("key %s (%s): HTTP %ld, cooling %s for %lld ms (%s)", k->hash, p->provider, status,
                 p->family, (long long)cool, why);
        break;
    }
    case KEYPOOL_QUOTA:
        cool = retry_after_ms > KEYPOOL_QUOTA_MS ? retry_after_ms : KEYPOOL_QUOTA_MS;
        k->quota_until = now + cool;
        key_name(name, sizeof name, p, i, "quota");
        snprintf(text, sizeof text, "%lld", (long long)k->quota_until);
        set_text(st, name, text, cool);
        log_warn("key %s (%s): HTTP %ld, over quota; resting %lld s (%s)", k->hash, p->provider,
                 status, (long long)(cool / 1000), why);
        break;
    case KEYPOOL_REVOKED:
        k->revoked = 1;
        key_name(name, sizeof name, p, i, "revoked");
        set_text(st, name, why, 0);
        log_warn("key %s (%s): HTTP %ld, revoked until the key checker finds it working (%s)",
                 k->hash, p->provider, status, why);
        break;
    case KEYPOOL_NOMODEL:
        log_warn("key %s (%s): HTTP %ld, cannot use %s; trying elsewhere (%s)", k->hash,
                 p->provider, status, p->model, why);
        break;
    case KEYPOOL_TRANSIENT:
        log_warn("key %s (%s): %s%ld, trying elsewhere (%s)", k->hash, p->provider,
                 status ? "HTTP " : "transfer failed, status ", status, why);
        break;
    default:
        break;
    }
    return cool;
}

int keypool_set_checked(struct state *st, const char *provider, const char *hash,
                        const char *models, int revoked, const char *why)
{
    char name[160], v[32];
    int rc = 0;
    snprintf(name, sizeof name, KEYPOOL_PREFIX "%s:%s:revoked", provider, hash);
    rc |= revoked ? state_kv_set(st, name, why ? why : "", why ? strlen(why) : 0, 0)
                  : state_kv_del(st, name);
    if (!revoked) {
        snprintf(name, sizeof name, KEYPOOL_PREFIX "%s:%s:quota", provider, hash);
        rc |= state_kv_del(st, name);
    }
    if (models) {
        snprintf(name, sizeof name, KEYPOOL_PREFIX "%s:%s:models", provider, hash);
        rc |= state_kv_set(st, name, models, strlen(models), 0);
    }
    snprintf(name, sizeof name, KEYPOOL_PREFIX "%s:%s:checked", provider, hash);
    int len = snprintf(v, sizeof v, "%lld", (long long)state_now_ms());
    rc |= state_kv_set(st, name, v, (size_t)len, 0);
    return rc ? OAI_ESTATE : 0;
}

/* ---- queue --------------------------------------------------------------------------------- */

void keypool_queue_enter(struct state *st, const char *family, const char *id, int64_t ttl_ms)
{
    char name[160];
    snprintf(name, sizeof name, KEYPOOL_QUEUE_PREFIX "%s:%s", family, id);
    if (state_kv_set(st, name, "1", 1, ttl_ms > 0 ? ttl_ms : 1))
        log_warn("queue %s: entry not recorded (state store)", family);
}

void keypool_queue_leave(struct state *st, const char *family, const char *id)
{
    char name[160];
    snprintf(name, sizeof name, KEYPOOL_QUEUE_PREFIX "%s:%s", family, id);
    if (state_kv_del(st, name))
        log_warn("queue %s: entry not removed (it expires)", family);
}

int64_t keypool_queue_length(struct state *st, const char *family)
{
    char prefix[96];
    int64_t n = 0;
    snprintf(prefix, sizeof prefix, KEYPOOL_QUEUE_PREFIX "%s:", family);
    if (state_kv_count(st, prefix, &n))
        n = 0;
    return n;
}

void keypool_count_names(const char *provider, const char *hash, const char *family, char *prompts,
                         size_t np, char *tokens, size_t nt)
{
    snprintf(prompts, np, KEYPOOL_PREFIX "%s:%s:prompts", provider, hash);
    snprintf(tokens, nt, KEYPOOL_PREFIX "%s:%s:tokens:%s", provider, hash, family);
}
