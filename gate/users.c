/* users.c - user tokens and the /admin/users REST API (see users.h). */
#include "gate/users.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#define MAX_TEXT 200 /* nickname, disabledReason, adminNote */

int users_token_ok(const char *t)
{
    size_t n = 0;
    for (; t && t[n]; n++)
        if (!isalnum((unsigned char)t[n]) && t[n] != '-' && t[n] != '_')
            return 0;
    return n > 0 && n < 64;
}

const char *users_str(json_object *u, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(u, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

int64_t users_int(json_object *u, const char *key, int64_t dflt)
{
    json_object *v;
    return json_object_object_get_ex(u, key, &v) && json_object_is_type(v, json_type_int)
               ? json_object_get_int64(v)
               : dflt;
}

int users_load(struct state *st, const char *token, json_object **out)
{
    char name[STATE_KEY_MAX], *v = NULL;
    size_t len = 0;
    *out = NULL;
    snprintf(name, sizeof name, USERS_PREFIX "%s", token);
    int rc = state_kv_get(st, name, &v, &len);
    if (rc || !v)
        return rc;
    if (util_parse_json(v, len, out) || !json_object_is_type(*out, json_type_object)) {
        json_object_put(*out);
        *out = NULL;
        log_warn("user %.8s...: stored record unreadable", token);
    }
    free(v);
    return 0;
}

static int store(struct state *st, const char *token, json_object *u)
{
    char name[STATE_KEY_MAX];
    size_t len;
    const char *text = util_json_plain(u, &len);
    snprintf(name, sizeof name, USERS_PREFIX "%s", token);
    return state_kv_set(st, name, text, len, 0);
}

/* ---- the seed's user view ------------------------------------------------------------------ */

struct collect {
    json_object *into; /* array (ips) or object (token counts) */
    size_t prefix_len;
};

static int collect_ip(void *ctx, const char *key, const char *value, size_t len)
{
    (void)value, (void)len;
    struct collect *c = ctx;
    json_object_array_add(c->into, json_object_new_string(key + c->prefix_len));
    return 0;
}

static int collect_tokens(void *ctx, const char *name, int64_t value)
{
    struct collect *c = ctx;
    json_object_object_add(c->into, name + c->prefix_len, json_object_new_int64(value));
    return 0;
}

static void copy_field(json_object *to, json_object *from, const char *key)
{
    json_object *v;
    json_object_object_add(to, key,
                           json_object_object_get_ex(from, key, &v) ? json_object_get(v) : NULL);
}

/* A new view of the stored user u (NULL on a store failure). */
static json_object *view(struct state *st, const char *token, json_object *u)
{
    char prefix[STATE_KEY_MAX], *last = NULL;
    int64_t prompts = 0;
    json_object *o = json_object_new_object(), *ips = json_object_new_array(),
                *counts = json_object_new_object();
    json_object_object_add(o, "token", json_object_new_string(token));
    struct collect ci = {ips, 0}, ct = {counts, 0};
    snprintf(prefix, sizeof prefix, USERS_IP_PREFIX "%s:", token);
    ci.prefix_len = strlen(prefix);
    int rc = state_kv_scan(st, prefix, collect_ip, &ci);
    snprintf(prefix, sizeof prefix, USERS_COUNTER_PREFIX "%s:tokens:", token);
    ct.prefix_len = strlen(prefix);
    if (!rc)
        rc = state_counter_scan(st, prefix, collect_tokens, &ct);
    snprintf(prefix, sizeof prefix, USERS_COUNTER_PREFIX "%s:prompts", token);
    if (!rc)
        rc = state_counter_get(st, prefix, &prompts);
    snprintf(prefix, sizeof prefix, USERS_LAST_PREFIX "%s", token);
    if (!rc)
        rc = state_kv_get(st, prefix, &last, NULL);
    if (rc) {
        json_object_put(ips);
        json_object_put(counts);
        json_object_put(o);
        return NULL;
    }
    json_object_object_add(o, "ip", ips);
    copy_field(o, u, "nickname");
    json_object *type;
    json_object_object_add(o, "type",
                           json_object_object_get_ex(u, "type", &type)
                               ? json_object_get(type)
                               : json_object_new_string("normal"));
    json_object_object_add(o, "promptCount", json_object_new_int64(prompts));
    json_object_object_add(o, "tokenCounts", counts);
    json_object *limits;
    json_object_object_add(o, "tokenLimits",
                           json_object_object_get_ex(u, "tokenLimits", &limits)
                               ? json_object_get(limits)
                               : json_object_new_object());
    copy_field(o, u, "createdAt");
    json_object_object_add(o, "lastUsedAt",
                           last ? json_object_new_int64(strtoll(last, NULL, 10)) : NULL);
    free(last);
    static const char *const rest[] = {"disabledAt", "disabledReason", "expiresAt",
                                       "maxIps",     "adminNote",      "meta"};
    for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++)
        copy_field(o, u, rest[i]);
    return o;
}

/* ---- validation ---------------------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int bad(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return 400;
}

/* Checks a partial user; 0 or 400 with a message. */
static int check_partial(json_object *p, char *err, size_t n)
{
    if (!json_object_is_type(p, json_type_object))
        return bad(err, n, "%s", "a user must be a JSON object");
    json_object_object_foreach(p, key, v)
    {
        int null = v == NULL;
        if (strcmp(key, "type") == 0) {
            const char *t =
                json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
            if (strcmp(t, "normal") && strcmp(t, "special") && strcmp(t, "temporary"))
                return bad(err, n, "%s", "'type' must be normal, special or temporary");
        } else if (!strcmp(key, "nickname") || !strcmp(key, "disabledReason") ||
                   !strcmp(key, "adminNote")) {
            if (!null && (!json_object_is_type(v, json_type_string) ||
                          json_object_get_string_len(v) > MAX_TEXT))
                return bad(err, n, "'%s' must be a string of at most 200 characters or null", key);
        } else if (!strcmp(key, "maxIps") || !strcmp(key, "expiresAt") ||
                   !strcmp(key, "disabledAt")) {
            if (!null && (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0))
                return bad(err, n, "'%s' must be a non-negative integer or null", key);
        } else if (!strcmp(key, "tokenLimits")) {
            if (null)
                continue;
            if (!json_object_is_type(v, json_type_object))
                return bad(err, n, "%s", "'tokenLimits' must be an object of family: tokens");
            json_object_object_foreach(v, fam, lim)
            {
                if (!lim || !json_object_is_type(lim, json_type_int) ||
                    json_object_get_int64(lim) < 0 || strlen(fam) > 48)
                    return bad(err, n, "tokenLimits.%s must be a non-negative integer", fam);
            }
        } else if (!strcmp(key, "meta")) {
            if (!null && !json_object_is_type(v, json_type_object))
                return bad(err, n, "%s", "'meta' must be an object or null");
        } else if (strcmp(key, "token") && strcmp(key, "ip") && strcmp(key, "promptCount") &&
                   strcmp(key, "tokenCounts") && strcmp(key, "createdAt") &&
                   strcmp(key, "lastUsedAt")) {
            return bad(err, n, "unknown user field '%s'", key);
        }
    }
    return 0;
}

/* Applies a checked partial to u: a null removes the field; read-only fields are skipped. */
static void apply(json_object *u, json_object *p)
{
    static const char *const writable[] = {"type",           "nickname",  "tokenLimits",
                                           "maxIps",         "expiresAt", "disabledAt",
                                           "disabledReason", "adminNote", "meta"};
    for (size_t i = 0; i < sizeof writable / sizeof writable[0]; i++) {
        json_object *v;
        if (!json_object_object_get_ex(p, writable[i], &v))
            continue;
        if (v)
            json_object_object_add(u, writable[i], json_object_get(v));
        else
            json_object_object_del(u, writable[i]);
    }
}

static void new_token(char out[37])
{
    char hex[33];
    util_random_hex(hex, 32);
    hex[12] = '4';                                                /* version 4 */
    hex[16] = "89ab"[strtol((char[]){hex[16], 0}, NULL, 16) & 3]; /* variant 10 */
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

/* ---- the REST API -------------------------------------------------------------------------- */

/* A query parameter's value, percent-decoded ('+' is a space). */
static int query_value(const char *q, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    while (q && *q) {
        const char *amp = strchr(q, '&'), *end = amp ? amp : q + strlen(q);
        if ((size_t)(end - q) > nl && strncmp(q, name, nl) == 0 && q[nl] == '=') {
            size_t k = 0;
            for (const char *p = q + nl + 1; p < end && k + 1 < n; p++) {
                int hi, lo;
                if (*p == '%' && end - p > 2 && (hi = util_hexval(p[1])) >= 0 &&
                    (lo = util_hexval(p[2])) >= 0) {
                    out[k++] = (char)(hi * 16 + lo);
                    p += 2;
                } else {
                    out[k++] = *p == '+' ? ' ' : *p;
                }
            }
            out[k] = '\0';
            return 1;
        }
        q = amp ? amp + 1 : NULL;
    }
    return 0;
}

struct listing {
    json_object *users;
    struct state *st;
    int failed;
};

static int list_one(void *ctx, const char *key, const char *value, size_t len)
{
    struct listing *l = ctx;
    json_object *u = NULL;
    const char *token = key + strlen(USERS_PREFIX);
    if (!users_token_ok(token) || util_parse_json(value, len, &u)) {
        json_object_put(u);
        return 0;
    }
    json_object_array_add(l->users, json_object_get(u)); /* views are made after the scan */
    json_object_object_add(u, "token", json_object_new_string(token));
    json_object_put(u);
    return 0;
}

/* the comparator's sort fields ("promptCount,lastUsedAt"), per thread */
static __thread const char *tls_sort;

static int64_t sort_value(json_object *u, const char *key, size_t len)
{
    char k[64];
    snprintf(k, sizeof k, "%.*s", (int)(len < 63 ? len : 63), key);
    return users_int(u, k, 0);
}

static int by_sort(const void *a, const void *b)
{
    json_object *x = *(json_object *const *)a, *y = *(json_object *const *)b;
    const char *list = tls_sort, *e;
    size_t len;
    while (util_list_next(&list, &e, &len)) {
        int64_t vx = sort_value(x, e, len), vy = sort_value(y, e, len);
        if (vx != vy)
            return vx < vy ? 1 : -1; /* descending, as the seed */
    }
    return strcmp(users_str(x, "token"), users_str(y, "token"));
}

static int list_users(struct state *st, const char *query, json_object **out, char *err, size_t n)
{
    struct listing l = {json_object_new_array(), st, 0};
    if (state_kv_scan(st, USERS_PREFIX, list_one, &l)) {
        json_object_put(l.users);
        snprintf(err, n, "the state store is unavailable");
        return 503;
    }
    json_object *views = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(l.users); i++) {
        json_object *u = json_object_array_get_idx(l.users, i);
        json_object *vw = view(st, users_str(u, "token"), u);
        if (vw)
            json_object_array_add(views, vw);
    }
    json_object_put(l.users);
    char sort[128];
    tls_sort = query_value(query, "sort", sort, sizeof sort) ? sort : "promptCount,lastUsedAt";
    json_object_array_sort(views, by_sort);
    *out = json_object_new_object();
    json_object_object_add(*out, "users", views);
    json_object_object_add(*out, "count",
                           json_object_new_int((int)json_object_array_length(views)));
    return 200;
}

/* Upserts one checked partial for token; the stored user after it in *saved (a view). */
static int upsert(struct state *st, const char *token, json_object *partial, json_object **saved,
                  char *err, size_t n)
{
    json_object *u = NULL;
    if (users_load(st, token, &u)) {
        snprintf(err, n, "the state store is unavailable");
        return 503;
    }
    if (!u) {
        u = json_object_new_object();
        json_object_object_add(u, "type", json_object_new_string("normal"));
        json_object_object_add(u, "createdAt", json_object_new_int64(util_now_ms()));
    }
    apply(u, partial);
    int rc = store(st, token, u);
    *saved = rc ? NULL : view(st, token, u);
    json_object_put(u);
    if (!*saved) {
        snprintf(err, n, "the state store is unavailable");
        return 503;
    }
    return 200;
}

static int create(struct state *st, json_object *body, json_object **out, char *err, size_t n)
{
    json_object *p = body ? json_object_get(body) : json_object_new_object();
    int rc = check_partial(p, err, n);
    const char *type = users_str(p, "type");
    int64_t expires = users_int(p, "expiresAt", 0);
    if (!rc && type && strcmp(type, "temporary") == 0 && expires <= util_now_ms())
        rc = bad(err, n, "%s", "a temporary user needs 'expiresAt' (epoch ms) in the future");
    char token[37];
    json_object *saved = NULL;
    if (!rc) {
        new_token(token);
        rc = upsert(st, token, p, &saved, err, n);
    }
    json_object_put(p);
    if (rc != 200)
        return rc;
    json_object_put(saved);
    *out = json_object_new_object();
    json_object_object_add(*out, "token", json_object_new_string(token));
    log_info("admin: user created (%s)", type ? type : "normal");
    return 200;
}

static int bulk(struct state *st, json_object *body, json_object **out, char *err, size_t n)
{
    json_object *users;
    if (!body || !json_object_object_get_ex(body, "users", &users) ||
        !json_object_is_type(users, json_type_array))
        return bad(err, n, "%s", "PUT /admin/users takes {\"users\": [user, ...]}");
    size_t count = json_object_array_length(users);
    for (size_t i = 0; i < count; i++) {
        json_object *p = json_object_array_get_idx(users, i);
        int rc = check_partial(p, err, n);
        if (rc)
            return rc;
        const char *t = users_str(p, "token");
        if (!t || !users_token_ok(t))
            return bad(err, n, "%s", "every user needs a 'token' (A-Z a-z 0-9 - _, 1-63)");
    }
    json_object *done = json_object_new_array();
    for (size_t i = 0; i < count; i++) {
        json_object *p = json_object_array_get_idx(users, i), *saved = NULL;
        int rc = upsert(st, users_str(p, "token"), p, &saved, err, n);
        if (rc != 200) {
            json_object_put(done);
            return rc;
        }
        json_object_array_add(done, saved);
    }
    *out = json_object_new_object();
    json_object_object_add(*out, "upserted_users", done);
    json_object_object_add(*out, "count", json_object_new_int((int)count));
    return 200;
}

int users_admin(struct state *st, const char *method, const char *tail, const char *query,
                json_object *body, json_object **out, char *err, size_t n)
{
    *out = NULL;
    const char *token = tail && tail[0] == '/' ? tail + 1 : "";
    if (*token && !users_token_ok(token)) {
        snprintf(err, n, "no such user");
        return 404;
    }
    if (!*token) {
        if (strcmp(method, "GET") == 0)
            return list_users(st, query, out, err, n);
        if (strcmp(method, "POST") == 0)
            return create(st, body, out, err, n);
        if (strcmp(method, "PUT") == 0)
            return bulk(st, body, out, err, n);
        snprintf(err, n, "/admin/users takes GET, POST or PUT");
        return 405;
    }
    json_object *u = NULL;
    if (users_load(st, token, &u)) {
        snprintf(err, n, "the state store is unavailable");
        return 503;
    }
    int rc;
    if (strcmp(method, "GET") == 0) {
        *out = u ? view(st, token, u) : NULL;
        rc = u ? (*out ? 200 : 503) : 404;
    } else if (strcmp(method, "PUT") == 0) {
        rc = body ? check_partial(body, err, n) : bad(err, n, "%s", "PUT needs a JSON user");
        const char *t = rc ? NULL : users_str(body, "token");
        if (!rc && t && strcmp(t, token) != 0)
            rc = bad(err, n, "%s", "the body's token differs from the path's");
        if (!rc)
            rc = upsert(st, token, body, out, err, n);
    } else if (strcmp(method, "DELETE") == 0) {
        rc = 404;
        if (u) {
            char why[MAX_TEXT + 1];
            json_object *p = json_object_new_object();
            json_object_object_add(p, "disabledAt", json_object_new_int64(util_now_ms()));
            json_object_object_add(
                p, "disabledReason",
                json_object_new_string(query_value(query, "disabledReason", why, sizeof why)
                                           ? why
                                           : "Disabled by the administrator."));
            rc = upsert(st, token, p, out, err, n);
            json_object_put(p);
            log_info("admin: user disabled");
        }
    } else {
        snprintf(err, n, "/admin/users/<token> takes GET, PUT or DELETE");
        rc = 405;
    }
    if (rc == 404)
        snprintf(err, n, "no such user");
    json_object_put(u);
    return rc;
}
