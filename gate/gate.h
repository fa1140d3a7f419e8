/*
 * gate.h - who may use the gateway, how often and how much (SPEC §9): the gatekeeper (none,
 * proxy_key, user_token), per-user IP caps, the per-identity rate limit and per-family token
 * quotas. Everything that must agree across processes lives in the state store, using only its
 * atomic operations, so the rules hold exactly however many processes serve requests.
 *
 * This layer knows rules and state, not HTTP: the responder passes header values in and turns a
 * verdict into a reply in the client's format.
 */
#ifndef OAI_GATE_H
#define OAI_GATE_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "state/state.h"

#define GATE_TOKEN_MAX 64

/* A refusal: http 0 means admitted. */
struct gate_verdict {
    int http;
    const char *code; /* OpenAI error code */
    char message[256];
    long long retry_after_s; /* > 0: the reply carries Retry-After */
};

/* Who is asking, once admitted. */
struct gate_who {
    int admin;                  /* presented ADMIN_KEY */
    int special;                /* a special user: no rate limit, no quota */
    char token[GATE_TOKEN_MAX]; /* the user token (GATEKEEPER=user_token), else "" */
    char identity[80];          /* rate-limit identity: "user:<hash>" or "ip:<address>" */
    json_object *user;          /* the stored user (user_token mode), owned; gate_who_free */
};
void gate_who_free(struct gate_who *who);

enum gate_mode { GATE_NONE, GATE_PROXY_KEY, GATE_USER_TOKEN };

struct gate_rules {
    enum gate_mode mode;
    const char *proxy_key, *admin_key; /* may be NULL */
    long long max_ips_per_user;        /* 0 = no cap */
};

/* gate_credential takes the client's credential from Authorization ("Bearer X") or, failing
 * that, x-api-key (either may be NULL). Returns out, or NULL when there is none. */
const char *gate_credential(const char *authorization, const char *x_api_key, char *out, size_t n);

/* gate_admit decides whether a request with credential (may be NULL) from ip may use the proxy
 * routes; fills who either way. 0, or OAI_ESTATE when the store failed (v says 503). */
int gate_admit(struct state *st, const struct gate_rules *r, const char *credential, const char *ip,
               struct gate_who *who, struct gate_verdict *v);

/* gate_admin_ok checks an ADMIN_KEY bearer for /admin and /metrics with a lock-out: after
 * GATE_ADMIN_TRIES failures from one ip, even the right key is refused for GATE_ADMIN_LOCK_S.
 * 1 admitted; 0 refused (v says why). */
#define GATE_ADMIN_TRIES  5
#define GATE_ADMIN_LOCK_S 900
int gate_admin_ok(struct state *st, const char *admin_key, const char *credential, const char *ip,
                  struct gate_verdict *v);

/* Rate limit: at most limit requests per identity in any 60 s (a slot per request, expiring 60 s
 * after it was taken). info gets the X-RateLimit-* figures. */
struct gate_rate_info {
    long long limit, remaining;
    int64_t reset_ms; /* when the oldest slot frees (epoch ms) */
};
int gate_rate(struct state *st, const struct gate_who *who, long long limit, const char *req_id,
              struct gate_rate_info *info, struct gate_verdict *v);

/* Token quotas: a request reserves its estimate (prompt + requested output) against the
 * user's family quota in one atomic add; if that passes the limit the reservation is taken back
 * and the request refused. After the answer the reservation is settled to what the upstream
 * reported. So concurrent requests cannot overspend by more than one request's estimation error.
 * limit: the user's tokenLimits[family] when set, else default_limit; 0 = unlimited. period:
 * QUOTA_REFRESH_PERIOD (NULL: the quota never refreshes). */
struct gate_reservation {
    char counter[200];
    int64_t reserved;
    int active;
};
int gate_quota_reserve(struct state *st, const struct gate_who *who, const char *family,
                       long long default_limit, const char *period, int64_t estimate,
                       struct gate_reservation *res, struct gate_verdict *v);
void gate_quota_settle(struct state *st, struct gate_reservation *res, int64_t actual);

/* gate_count records an answered request against the user (lifetime counters, last use). */
void gate_count(struct state *st, const struct gate_who *who, const char *family, int64_t tokens,
                int prompts);

/* gate_period_start is the start (epoch ms, UTC) of the quota period holding now: 0 for none,
 * the hour for "hourly", the day for "daily", else the last minute a 5-field cron expression
 * matched (-1 if it matched none in the past year). */
int64_t gate_period_start(const char *period, int64_t now_ms);

/* gate_origin_blocked: 1 when Origin or Referer contains an entry of the comma list. */
int gate_origin_blocked(const char *list, const char *origin, const char *referer);

#endif
