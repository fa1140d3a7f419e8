/* gate.c - the gatekeeper, IP caps, rate limits and quotas over the state store (see gate.h). */
#include "gate/gate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "gate/users.h"

#define RATE_WINDOW_MS 60000
#define RATE_MAX_SLOTS 100000 /* TEXT_MODEL_RATE_LIMIT beyond this is treated as this */

void gate_who_free(struct gate_who *who)
{
    json_object_put(who->user);
    who->user = NULL;
}

__attribute__((format(printf, 4, 5))) static void refuse(struct gate_verdict *v, int http,
                                                         const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    v->http = http;
    v->code = code;
    vsnprintf(v->message, sizeof v->message, fmt, ap);
    va_end(ap);
}

const char *gate_credential(const char *authorization, const char *x_api_key, char *out, size_t n)
{
    const char *c = NULL;
    if (authorization && strncasecmp(authorization, "Bearer ", 7) == 0)
        c = authorization + 7;
    else if (x_api_key && *x_api_key)
        c = x_api_key;
    if (!c)
        return NULL;
    while (*c == ' ')
        c++;
    size_t len = strlen(c);
    while (len && c[len - 1] == ' ')
        len--;
    if (!len || len >= n)
        return NULL;
    memcpy(out, c, len);
    out[len] = '\0';
    return out;
}

static int same_secret(const char *a, const char *b)
{
    return a && b && *b && util_ct_equal(a, b);
}

/* ---- gatekeeper ---------------------------------------------------------------------------- */

/* A new IP for a capped user: recorded, unless that makes one too many (then taken back). */
static int ip_allowed(struct state *st, const char *token, const char *ip, long long cap,
                      struct gate_verdict *v)
{
    char name[STATE_KEY_MAX], prefix[STATE_KEY_MAX];
    char *seen = NULL;
    snprintf(name, sizeof name, USERS_IP_PREFIX "%s:%s", token, ip);
    if (state_kv_get(st, name, &seen, NULL))
        return OAI_ESTATE;
    if (seen) {
        free(seen);
        return 0; /* a known address */
    }
    int added = 0;
    int64_t count = 0;
    snprintf(prefix, sizeof prefix, USERS_IP_PREFIX "%s:", token);
    if (state_kv_add(st, name, "1", 1, 0, &added) || state_kv_count(st, prefix, &count))
        return OAI_ESTATE;
    if (cap > 0 && added && count > cap) {
        /* two new addresses racing may both be refused; never both admitted */
        if (state_kv_del(st, name))
            log_warn("user %.8s...: refused address not removed", token);
        refuse(v, 403, "ip_limit_exceeded",
               "Forbidden: no more IP addresses allowed for this user token (limit %lld)", cap);
    }
    return 0;
}

static int admit_user(struct state *st, const struct gate_rules *r, const char *token,
                      const char *ip, struct gate_who *who, struct gate_verdict *v)
{
    json_object *u = NULL;
    int rc = users_load(st, token, &u);
    if (rc)
        return rc;
    if (!u) {
        refuse(v, 401, "invalid_api_key", "Unauthorized: unknown user token");
        return 0;
    }
    who->user = u;
    snprintf(who->token, sizeof who->token, "%s", token);
    char hash[13];
    log_hash(token, strlen(token), hash);
    snprintf(who->identity, sizeof who->identity, "user:%s", hash);
    const char *type = users_str(u, "type");
    who->special = type && strcmp(type, "special") == 0;
    if (users_int(u, "disabledAt", 0) > 0) {
        const char *why = users_str(u, "disabledReason");
        refuse(v, 403, "user_disabled", "Forbidden: %s", why && *why ? why : "User token disabled");
        return 0;
    }
    int64_t expires = users_int(u, "expiresAt", 0);
    if (type && strcmp(type, "temporary") == 0 && expires > 0 && expires <= util_now_ms()) {
        refuse(v, 403, "user_expired", "Forbidden: Temporary token expired.");
        return 0;
    }
    /* every address is recorded (the user view lists them); a cap refuses new ones */
    return ip_allowed(st, token, ip, users_int(u, "maxIps", r->max_ips_per_user), v);
}

int gate_admit(struct state *st, const struct gate_rules *r, const char *credential, const char *ip,
               struct gate_who *who, struct gate_verdict *v)
{
    memset(who, 0, sizeof *who);
    memset(v, 0, sizeof *v);
    snprintf(who->identity, sizeof who->identity, "ip:%.72s", ip ? ip : "");
    if (credential && same_secret(credential, r->admin_key)) {
        who->admin = 1;
        return 0;
    }
    switch (r->mode) {
    case GATE_NONE:
        return 0;
    case GATE_PROXY_KEY:
        if (!credential || !same_secret(credential, r->proxy_key))
            refuse(v, 401, "invalid_api_key",
                   "Unauthorized: %sthis proxy needs its key (Authorization: Bearer <key>, or "
                   "x-api-key)",
                   credential ? "wrong key; " : "");
        return 0;
    case GATE_USER_TOKEN:
        if (!credential) {
            refuse(v, 401, "invalid_api_key",
                   "Unauthorized: this proxy needs a user token (Authorization: Bearer <token>, "
                   "or x-api-key)");
            return 0;
        }
        if (!users_token_ok(credential)) {
            refuse(v, 401, "invalid_api_key", "Unauthorized: unknown user token");
            return 0;
        }
        {
            int rc = admit_user(st, r, credential, ip ? ip : "", who, v);
            if (rc)
                refuse(v, 503, "state_unavailable", "the gateway's state store is unavailable");
            return rc;
        }
    }
    return 0;
}

int gate_admin_ok(struct state *st, const char *admin_key, const char *credential, const char *ip,
                  struct gate_verdict *v)
{
    char name[160], *old = NULL;
    long long fails = 0, until = 0;
    int64_t now = util_now_ms();
    memset(v, 0, sizeof *v);
    snprintf(name, sizeof name, "adminfail:%.120s", ip ? ip : "");
    if (state_kv_get(st, name, &old, NULL) == 0 && old) {
        if (sscanf(old, "%lld %lld", &fails, &until) != 2)
            fails = until = 0;
        free(old);
    }
    if (fails >= GATE_ADMIN_TRIES && until > now) {
        v->http = 429;
        v->code = "too_many_attempts";
        v->retry_after_s = (until - now + 999) / 1000;
        snprintf(v->message, sizeof v->message,
                 "Too many failed admin attempts from this address; try again later");
        return 0;
    }
    if (credential && same_secret(credential, admin_key))
        return 1;
    char val[48];
    int len = snprintf(val, sizeof val, "%lld %lld", fails + 1,
                       (long long)(now + GATE_ADMIN_LOCK_S * 1000LL));
    if (state_kv_set(st, name, val, (size_t)len, GATE_ADMIN_LOCK_S * 1000LL))
        log_warn("admin: failed attempt not recorded (state store)");
    log_warn("admin: refused credential from %s (%lld failures)", ip ? ip : "?", fails + 1);
    v->http = 401;
    v->code = "invalid_api_key";
    snprintf(v->message, sizeof v->message, "%s: send Authorization: Bearer <ADMIN_KEY>",
             admin_key && *admin_key ? "Unauthorized" : "Unauthorized (no ADMIN_KEY is set)");
    return 0;
}

/* ---- rate limit ---------------------------------------------------------------------------- */

struct slots {
    size_t prefix_len;
    int64_t oldest; /* smallest expiry */
    long long live, limit;
    unsigned char *used; /* by index, up to limit */
};

static int slot_seen(void *ctx, const char *key, const char *value, size_t len)
{
    struct slots *s = ctx;
    long long i = strtoll(key + s->prefix_len, NULL, 10);
    char b[24];
    size_t k = len < sizeof b - 1 ? len : sizeof b - 1;
    memcpy(b, value, k);
    b[k] = '\0';
    int64_t exp = strtoll(b, NULL, 10);
    s->live++;
    if (i >= 0 && i < s->limit)
        s->used[i] = 1;
    if (!s->oldest || exp < s->oldest)
        s->oldest = exp;
    return 0;
}

int gate_rate(struct state *st, const struct gate_who *who, long long limit, const char *req_id,
              struct gate_rate_info *info, struct gate_verdict *v)
{
    (void)req_id;
    memset(info, 0, sizeof *info);
    memset(v, 0, sizeof *v);
    if (limit <= 0 || who->special || who->admin)
        return 0;
    if (limit > RATE_MAX_SLOTS)
        limit = RATE_MAX_SLOTS;
    info->limit = limit;
    char prefix[128], name[160];
    snprintf(prefix, sizeof prefix, "rl:%s:", who->identity);
    struct slots s = {strlen(prefix), 0, 0, limit, calloc((size_t)limit, 1)};
    if (!s.used)
        return OAI_ENOMEM;
    int rc = 0;
    for (int tries = 0; tries < 4; tries++) {
        memset(s.used, 0, (size_t)limit);
        s.live = 0;
        s.oldest = 0;
        if ((rc = state_kv_scan(st, prefix, slot_seen, &s)) != 0)
            break;
        long long free_slot = -1;
        for (long long i = 0; i < limit && free_slot < 0; i++)
            if (!s.used[i])
                free_slot = i;
        int64_t now = util_now_ms();
        if (free_slot < 0) {
            int64_t wait = s.oldest > now ? s.oldest - now : 1000;
            info->remaining = 0;
            info->reset_ms = s.oldest ? s.oldest : now + RATE_WINDOW_MS;
            v->http = 429;
            v->code = "rate_limit_exceeded";
            v->retry_after_s = (wait + 999) / 1000;
            snprintf(v->message, sizeof v->message,
                     "This proxy allows %lld prompts per minute; try again in %lld seconds", limit,
                     v->retry_after_s);
            break;
        }
        char val[24];
        int len = snprintf(val, sizeof val, "%lld", (long long)(now + RATE_WINDOW_MS));
        int added = 0;
        snprintf(name, sizeof name, "%s%lld", prefix, free_slot);
        if ((rc = state_kv_add(st, name, val, (size_t)len, RATE_WINDOW_MS, &added)) != 0)
            break;
        if (added) {
            info->remaining = limit - s.live - 1 > 0 ? limit - s.live - 1 : 0;
            info->reset_ms = s.oldest ? s.oldest : now + RATE_WINDOW_MS;
            break;
        }
        /* another process took that slot between the scan and the add: look again */
    }
    free(s.used);
    return rc;
}

/* ---- quotas -------------------------------------------------------------------------------- */

/* Cron fields: "*", "*\/n", "a", "a-b", "a-b/n", and comma lists of them. */
static int cron_field(const char *f, size_t len, int v, int lo, int hi)
{
    const char *e = f + len;
    while (f < e) {
        const char *c = memchr(f, ',', (size_t)(e - f));
        const char *end = c ? c : e;
        int a = lo, b = hi, step = 1;
        const char *p = f;
        if (*p == '*') {
            p++;
        } else {
            a = (int)strtol(p, (char **)&p, 10);
            b = a;
            if (p < end && *p == '-')
                b = (int)strtol(p + 1, (char **)&p, 10);
        }
        if (p < end && *p == '/') {
            step = (int)strtol(p + 1, (char **)&p, 10);
            if (*f != '*' && b == a)
                b = hi;
        }
        if (step > 0 && v >= a && v <= b && (v - a) % step == 0)
            return 1;
        f = end + 1;
    }
    return 0;
}

/* Whether the day of t matches the day-of-month, month and day-of-week fields (cron's rule:
 * when both day fields are restricted, either may match). */
static int cron_day(const char *fields[5], const size_t lens[5], const struct tm *t)
{
    int dom_any = lens[2] == 1 && fields[2][0] == '*',
        dow_any = lens[4] == 1 && fields[4][0] == '*';
    int dom = cron_field(fields[2], lens[2], t->tm_mday, 1, 31);
    int dow = cron_field(fields[4], lens[4], t->tm_wday, 0, 7) ||
              (t->tm_wday == 0 && cron_field(fields[4], lens[4], 7, 0, 7));
    int day = dom_any || dow_any ? dom && dow : dom || dow;
    return day && cron_field(fields[3], lens[3], t->tm_mon + 1, 1, 12);
}

int64_t gate_period_start(const char *period, int64_t now_ms)
{
    if (!period || !*period)
        return 0;
    if (strcmp(period, "hourly") == 0)
        return now_ms - now_ms % 3600000;
    if (strcmp(period, "daily") == 0)
        return now_ms - now_ms % 86400000;
    const char *fields[5];
    size_t lens[5];
    const char *p = period;
    for (int i = 0; i < 5; i++) {
        while (*p == ' ')
            p++;
        fields[i] = p;
        while (*p && *p != ' ')
            p++;
        lens[i] = (size_t)(p - fields[i]);
        if (!lens[i])
            return -1;
    }
    /* walk back from this minute, skipping whole days and hours that cannot match (UTC) */
    time_t t = (time_t)(now_ms / 60000 * 60), floor = t - 366 * 86400;
    while (t > floor) {
        struct tm tm;
        gmtime_r(&t, &tm);
        if (!cron_day(fields, lens, &tm))
            t -= (time_t)(tm.tm_hour * 3600 + tm.tm_min * 60 + 60); /* 23:59 the day before */
        else if (!cron_field(fields[1], lens[1], tm.tm_hour, 0, 23))
            t -= (time_t)(tm.tm_min * 60 + 60); /* hh-1:59 */
        else if (cron_field(fields[0], lens[0], tm.tm_min, 0, 59))
            return (int64_t)t * 1000;
        else
            t -= 60;
    }
    return -1;
}

/* The user's limit for family: tokenLimits[family] when set, else the default. */
static long long limit_of(const struct gate_who *who, const char *family, long long dflt)
{
    json_object *limits, *v;
    if (who->user && json_object_object_get_ex(who->user, "tokenLimits", &limits) &&
        json_object_object_get_ex(limits, family, &v) && json_object_is_type(v, json_type_int))
        return json_object_get_int64(v);
    return dflt;
}

int gate_quota_reserve(struct state *st, const struct gate_who *who, const char *family,
                       long long default_limit, const char *period, int64_t estimate,
                       struct gate_reservation *res, struct gate_verdict *v)
{
    memset(res, 0, sizeof *res);
    memset(v, 0, sizeof *v);
    if (!who->token[0] || who->special || who->admin || !family || !*family)
        return 0;
    long long limit = limit_of(who, family, default_limit);
    if (limit <= 0)
        return 0;
    int64_t start = gate_period_start(period, util_now_ms());
    snprintf(res->counter, sizeof res->counter, "uq:%s:%s:%lld", who->token, family,
             (long long)(start > 0 ? start : 0));
    int64_t total = 0;
    int rc = state_counter_add(st, res->counter, estimate, &total);
    if (rc)
        return rc;
    if (total > limit) {
        if (state_counter_add(st, res->counter, -estimate, NULL))
            log_warn("quota: a refused reservation was not taken back (state store)");
        v->http = 429;
        v->code = "insufficient_quota";
        snprintf(v->message, sizeof v->message,
                 "You've exceeded your token quota for %s: %lld of %lld tokens used, this "
                 "request may need up to %lld",
                 family, (long long)(total - estimate), limit, (long long)estimate);
        return 0;
    }
    res->reserved = estimate;
    res->active = 1;
    return 0;
}

void gate_quota_settle(struct state *st, struct gate_reservation *res, int64_t actual)
{
    if (!res->active)
        return;
    res->active = 0;
    if (actual != res->reserved &&
        state_counter_add(st, res->counter, actual - res->reserved, NULL))
        log_warn("quota: usage not settled (state store)");
}

void gate_count(struct state *st, const struct gate_who *who, const char *family, int64_t tokens,
                int prompts)
{
    if (!who->token[0])
        return;
    char p[STATE_KEY_MAX], t[STATE_KEY_MAX], last[STATE_KEY_MAX], now[24];
    snprintf(p, sizeof p, USERS_COUNTER_PREFIX "%s:prompts", who->token);
    snprintf(t, sizeof t, USERS_COUNTER_PREFIX "%s:tokens:%s", who->token,
             family && *family ? family : "none");
    struct state_delta d[] = {{p, prompts}, {t, tokens}};
    int len = snprintf(now, sizeof now, "%lld", (long long)util_now_ms());
    snprintf(last, sizeof last, USERS_LAST_PREFIX "%s", who->token);
    if (state_counter_add_many(st, d, 2) || state_kv_set(st, last, now, (size_t)len, 0))
        log_warn("user usage not recorded (state store)");
}

/* ---- origins ------------------------------------------------------------------------------- */

int gate_origin_blocked(const char *list, const char *origin, const char *referer)
{
    const char *e;
    size_t len;
    while (list && util_list_next(&list, &e, &len)) {
        char entry[256];
        if (!len || len >= sizeof entry)
            continue;
        memcpy(entry, e, len);
        entry[len] = '\0';
        if ((origin && strstr(origin, entry)) || (referer && strstr(referer, entry)))
            return 1;
    }
    return 0;
}
