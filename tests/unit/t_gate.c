/*
 * t_gate.c - the gatekeeper over a real state store: credentials, the three modes, disabled and
 * expired users, IP caps, the admin lock-out, rate-limit slots and quota reservations (also raced
 * by several processes), quota periods (hourly, daily, cron), origins, the /admin/users API and
 * the token estimate.
 */
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "gate/gate.h"
#include "gate/users.h"
#include "state/state.h"
#include "tests/unit/tap.h"
#include "translators/estimate.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROCS 4

static char path[128];

static json_object *parse(const char *s)
{
    json_object *o = NULL;
    if (util_parse_json(s, strlen(s), &o))
        return NULL;
    return o;
}

/* POST /admin/users with body; the new token into out. */
static int create_user(struct state *st, const char *body, char *out, size_t n)
{
    json_object *b = parse(body), *res = NULL;
    char err[256];
    int http = users_admin(st, "POST", "", NULL, b, &res, err, sizeof err);
    json_object *t;
    if (http == 200 && json_object_object_get_ex(res, "token", &t))
        snprintf(out, n, "%s", json_object_get_string(t));
    json_object_put(res);
    json_object_put(b);
    return http;
}

static void test_credential(void)
{
    char b[64];
    is_str(gate_credential("Bearer abc", NULL, b, sizeof b), "abc", "Bearer");
    is_str(gate_credential("bearer  abc ", NULL, b, sizeof b), "abc", "bearer, spaces trimmed");
    is_str(gate_credential(NULL, "xyz", b, sizeof b), "xyz", "x-api-key");
    is_str(gate_credential("Basic Zm9v", "xyz", b, sizeof b), "xyz",
           "a non-Bearer Authorization falls back to x-api-key");
    ok(gate_credential(NULL, NULL, b, sizeof b) == NULL, "none");
    ok(gate_credential("Bearer ", "", b, sizeof b) == NULL, "empty");
}

static void test_modes(struct state *st)
{
    struct gate_rules r = {GATE_PROXY_KEY, "pk-secret", "admin-secret", 0};
    struct gate_who who;
    struct gate_verdict v;
    is_int(gate_admit(st, &r, NULL, "10.0.0.1", &who, &v), 0, "proxy_key, no credential");
    is_int(v.http, 401, "-> 401");
    gate_admit(st, &r, "pk-wrong", "10.0.0.1", &who, &v);
    is_int(v.http, 401, "wrong key -> 401");
    gate_admit(st, &r, "pk-secret", "10.0.0.1", &who, &v);
    is_int(v.http, 0, "the proxy key admits");
    is_str(who.identity, "ip:10.0.0.1", "identity: the address");
    gate_admit(st, &r, "admin-secret", "10.0.0.1", &who, &v);
    ok(v.http == 0 && who.admin, "ADMIN_KEY admits as admin");
    r.mode = GATE_NONE;
    gate_admit(st, &r, NULL, "10.0.0.1", &who, &v);
    is_int(v.http, 0, "none admits anyone");

    char normal[64] = "", special[64] = "", temp[64] = "", capped[64] = "";
    is_int(create_user(st, "{}", normal, sizeof normal), 200, "create a normal user");
    ok(strlen(normal) == 36 && normal[14] == '4', "a UUID v4 token");
    is_int(create_user(st, "{\"type\":\"special\"}", special, sizeof special), 200, "special");
    is_int(create_user(st, "{\"type\":\"temporary\"}", temp, sizeof temp), 400,
           "temporary without expiresAt -> 400");
    char body[128];
    snprintf(body, sizeof body, "{\"type\":\"temporary\",\"expiresAt\":%lld}",
             (long long)util_now_ms() + 300);
    is_int(create_user(st, body, temp, sizeof temp), 200, "temporary expiring in 300 ms");
    is_int(create_user(st, "{\"maxIps\":1}", capped, sizeof capped), 200, "a user capped at 1 IP");

    r.mode = GATE_USER_TOKEN;
    r.max_ips_per_user = 0;
    gate_admit(st, &r, "no-such-token", "10.0.0.1", &who, &v);
    is_int(v.http, 401, "unknown token -> 401");
    gate_who_free(&who);
    gate_admit(st, &r, NULL, "10.0.0.1", &who, &v);
    is_int(v.http, 401, "no token -> 401");
    gate_admit(st, &r, normal, "10.0.0.1", &who, &v);
    ok(v.http == 0 && strcmp(who.token, normal) == 0 && !who.special, "a user token admits");
    ok(strncmp(who.identity, "user:", 5) == 0 && !strstr(who.identity, normal),
       "identity: a hash of the token, not the token");
    gate_who_free(&who);
    gate_admit(st, &r, special, "10.0.0.1", &who, &v);
    ok(v.http == 0 && who.special, "special");
    gate_who_free(&who);
    gate_admit(st, &r, temp, "10.0.0.1", &who, &v);
    is_int(v.http, 0, "temporary, before expiry");
    gate_who_free(&who);
    usleep(400 * 1000);
    gate_admit(st, &r, temp, "10.0.0.1", &who, &v);
    is_int(v.http, 403, "temporary, after expiry -> 403");
    ok(strstr(v.message, "expired") != NULL, "says it expired");
    gate_who_free(&who);

    gate_admit(st, &r, capped, "10.0.0.1", &who, &v);
    is_int(v.http, 0, "capped user, first address");
    gate_who_free(&who);
    gate_admit(st, &r, capped, "10.0.0.1", &who, &v);
    is_int(v.http, 0, "capped user, the same address again");
    gate_who_free(&who);
    gate_admit(st, &r, capped, "10.0.0.2", &who, &v);
    is_int(v.http, 403, "capped user, a second address -> 403");
    gate_who_free(&who);
    r.max_ips_per_user = 2;
    gate_admit(st, &r, normal, "10.0.0.2", &who, &v);
    gate_who_free(&who);
    gate_admit(st, &r, normal, "10.0.0.3", &who, &v);
    is_int(v.http, 403, "MAX_IPS_PER_USER=2: a third address -> 403");
    gate_who_free(&who);

    /* DELETE disables with a reason */
    json_object *out = NULL;
    char err[256], tail[80];
    snprintf(tail, sizeof tail, "/%s", normal);
    is_int(
        users_admin(st, "DELETE", tail, "disabledReason=too+many%21", NULL, &out, err, sizeof err),
        200, "DELETE /admin/users/<token>");
    json_object_put(out);
    gate_admit(st, &r, normal, "10.0.0.1", &who, &v);
    is_int(v.http, 403, "disabled -> 403");
    is_str(v.message, "Forbidden: too many!", "with the reason");
    gate_who_free(&who);
}

static void test_admin_lockout(struct state *st)
{
    struct gate_verdict v;
    for (int i = 0; i < GATE_ADMIN_TRIES; i++)
        gate_admin_ok(st, "admin-secret", "guess", "10.9.9.9", &v);
    is_int(v.http, 401, "wrong admin key -> 401");
    is_int(gate_admin_ok(st, "admin-secret", "admin-secret", "10.9.9.9", &v), 0,
           "after 5 failures even the right key is refused");
    ok(v.http == 429 && v.retry_after_s > 0 && v.retry_after_s <= GATE_ADMIN_LOCK_S,
       "429 with Retry-After");
    is_int(gate_admin_ok(st, "admin-secret", "admin-secret", "10.9.9.8", &v), 1,
           "another address is not locked out");
    is_int(gate_admin_ok(st, NULL, "x", "10.9.9.7", &v), 0, "no ADMIN_KEY: refused");
}

static void test_rate(struct state *st)
{
    struct gate_who who;
    struct gate_rate_info info;
    struct gate_verdict v;
    memset(&who, 0, sizeof who);
    snprintf(who.identity, sizeof who.identity, "ip:10.1.1.1");
    for (int i = 0; i < 3; i++) {
        is_int(gate_rate(st, &who, 3, "r", &info, &v), 0, "rate");
        is_int(v.http, 0, "within the limit");
        is_int(info.remaining, 2 - i, "remaining counts down");
    }
    gate_rate(st, &who, 3, "r", &info, &v);
    is_int(v.http, 429, "the 4th in 60 s -> 429");
    ok(v.retry_after_s >= 59 && v.retry_after_s <= 60, "Retry-After: when the oldest slot frees");
    ok(info.reset_ms > util_now_ms(), "X-RateLimit-Reset in the future");
    who.special = 1;
    gate_rate(st, &who, 3, "r", &info, &v);
    is_int(v.http, 0, "special users are not limited");
    who.special = 0;
    snprintf(who.identity, sizeof who.identity, "ip:10.1.1.2");
    gate_rate(st, &who, 3, "r", &info, &v);
    is_int(v.http, 0, "another identity has its own window");
}

static void test_quota(struct state *st)
{
    char tok[64];
    create_user(st, "{\"tokenLimits\":{\"aws-claude\":500}}", tok, sizeof tok);
    struct gate_rules r = {GATE_USER_TOKEN, NULL, "admin", 0};
    struct gate_who who;
    struct gate_verdict v;
    struct gate_reservation a, b, c;
    gate_admit(st, &r, tok, "10.2.2.2", &who, &v);
    is_int(gate_quota_reserve(st, &who, "gcp-claude", 1000, NULL, 600, &a, &v), 0, "reserve 600");
    ok(v.http == 0 && a.active, "within TOKEN_QUOTA 1000");
    gate_quota_reserve(st, &who, "gcp-claude", 1000, NULL, 600, &b, &v);
    ok(v.http == 429 && strcmp(v.code, "insufficient_quota") == 0 && !b.active,
       "600 more would pass 1000 -> 429 insufficient_quota");
    gate_quota_settle(st, &a, 100);
    gate_quota_reserve(st, &who, "gcp-claude", 1000, NULL, 600, &b, &v);
    ok(v.http == 0 && b.active, "the first settled at 100: 600 more fit");
    gate_quota_settle(st, &b, 0);
    gate_quota_reserve(st, &who, "aws-claude", 0, NULL, 501, &c, &v);
    is_int(v.http, 429, "the user's own tokenLimits beat the default");
    gate_quota_reserve(st, &who, "aws-claude-opus", 0, NULL, 1000000, &c, &v);
    ok(v.http == 0 && !c.active, "0 = unlimited: nothing reserved");
    gate_who_free(&who);
}

/* Several processes race one quota and one rate limit with their own connections. */
static void test_races(void)
{
    struct state *st = NULL;
    char tok[64];
    if (state_open(&st, path))
        return;
    create_user(st, "{}", tok, sizeof tok);
    state_close(st);
    int fds[PROCS][2];
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        if (pipe(fds[p]))
            return;
        pids[p] = fork();
        if (pids[p] == 0) {
            struct state *s2 = NULL;
            int admitted_q = 0, admitted_r = 0;
            if (state_open(&s2, path) == 0) {
                struct gate_rules r = {GATE_USER_TOKEN, NULL, "admin", 0};
                struct gate_who who;
                struct gate_verdict v;
                gate_admit(s2, &r, tok, "10.3.3.3", &who, &v);
                for (int i = 0; i < 10; i++) {
                    struct gate_reservation res;
                    struct gate_rate_info info;
                    if (gate_quota_reserve(s2, &who, "gcp-claude", 1000, "hourly", 150, &res, &v) ==
                            0 &&
                        !v.http)
                        admitted_q++; /* never settled: all of it stays spent */
                    if (gate_rate(s2, &who, 7, "x", &info, &v) == 0 && !v.http)
                        admitted_r++;
                }
                gate_who_free(&who);
                state_close(s2);
            }
            char line[32];
            int len = snprintf(line, sizeof line, "%d %d", admitted_q, admitted_r);
            _exit(write(fds[p][1], line, (size_t)len) == len ? 0 : 1);
        }
        close(fds[p][1]);
    }
    int total_q = 0, total_r = 0;
    for (int p = 0; p < PROCS; p++) {
        char line[32] = "";
        int q = 0, rr = 0;
        ssize_t n = read(fds[p][0], line, sizeof line - 1);
        if (n > 0 && sscanf(line, "%d %d", &q, &rr) == 2) {
            total_q += q;
            total_r += rr;
        }
        close(fds[p][0]);
        waitpid(pids[p], NULL, 0);
    }
    is_int(total_q, 6, "4 processes x 10 reservations of 150 against 1000: exactly 6 admitted");
    is_int(total_r, 7, "4 processes x 10 requests against a limit of 7: exactly 7 admitted");
}

static void test_periods(void)
{
    int64_t t = 1795680000000LL + 3723000; /* 2026-11-26 09:02:03 UTC, a Thursday */
    is_int(gate_period_start(NULL, t), 0, "no period");
    is_int(gate_period_start("hourly", t), 1795680000000LL + 3600000, "hourly: 09:00");
    is_int(gate_period_start("daily", t), 1795651200000LL, "daily: midnight UTC");
    is_int(gate_period_start("0 0 * * *", t), 1795651200000LL, "cron 0 0 * * *: the same");
    is_int(gate_period_start("*/15 * * * *", t), 1795680000000LL + 3600000, "cron */15: 09:00");
    is_int(gate_period_start("30 4 * * *", t), 1795667400000LL, "cron 30 4: today 04:30");
    /* the last Monday 09:00 was 2026-11-23 */
    is_int(gate_period_start("0 9 * * 1", t), 1795424400000LL, "cron Mondays 9:00");
    is_int(gate_period_start("0 0 1 * *", t), 1793491200000LL, "cron the 1st: 2026-11-01");
    is_int(gate_period_start("0 0 30 2 *", t), -1, "never matching: -1");
}

static void test_origins(void)
{
    ok(gate_origin_blocked("janitorai.com, evil.example", "https://janitorai.com", NULL),
       "Origin matched");
    ok(gate_origin_blocked("janitorai.com,evil.example", NULL, "https://evil.example/page"),
       "Referer matched");
    ok(!gate_origin_blocked("janitorai.com", "https://good.example", "https://good.example/"),
       "others pass");
    ok(!gate_origin_blocked(NULL, "https://x", NULL), "no list");
}

static void test_admin_api(struct state *st)
{
    json_object *out = NULL, *v;
    char err[256], tok[64], tail[80];
    create_user(st, "{\"nickname\":\"ann\",\"tokenLimits\":{\"gcp-claude\":5}}", tok, sizeof tok);
    snprintf(tail, sizeof tail, "/%s", tok);
    is_int(users_admin(st, "GET", tail, NULL, NULL, &out, err, sizeof err), 200, "GET a user");
    ok(json_object_object_get_ex(out, "token", &v) && !strcmp(json_object_get_string(v), tok),
       "token");
    ok(json_object_object_get_ex(out, "ip", &v) && json_object_is_type(v, json_type_array), "ip[]");
    ok(json_object_object_get_ex(out, "promptCount", &v) && json_object_get_int(v) == 0,
       "promptCount 0");
    ok(json_object_object_get_ex(out, "tokenCounts", &v), "tokenCounts");
    is_str(users_str(out, "nickname"), "ann", "nickname");
    is_str(users_str(out, "type"), "normal", "type normal");
    json_object_put(out);

    json_object *p = parse("{\"nickname\":null,\"maxIps\":3,\"adminNote\":\"vip\"}");
    is_int(users_admin(st, "PUT", tail, NULL, p, &out, err, sizeof err), 200, "PUT partial");
    ok(!json_object_object_get_ex(out, "nickname", &v) || v == NULL, "null deletes nickname");
    is_int((int)users_int(out, "maxIps", 0), 3, "maxIps set");
    json_object_put(out);
    json_object_put(p);
    p = parse("{\"frobnicate\":1}");
    is_int(users_admin(st, "PUT", tail, NULL, p, &out, err, sizeof err), 400,
           "an unknown field -> 400");
    json_object_put(p);
    p = parse("{\"type\":\"root\"}");
    is_int(users_admin(st, "PUT", tail, NULL, p, &out, err, sizeof err), 400, "a bad type -> 400");
    json_object_put(p);
    is_int(users_admin(st, "GET", "/no-such-user", NULL, NULL, &out, err, sizeof err), 404,
           "GET an unknown token -> 404");
    is_int(users_admin(st, "DELETE", "/no-such-user", NULL, NULL, &out, err, sizeof err), 404,
           "DELETE an unknown token -> 404");
    is_int(users_admin(st, "GET", "/bad%token", NULL, NULL, &out, err, sizeof err), 404,
           "a malformed token -> 404");

    p = parse("{\"users\":[{\"token\":\"imported-1\",\"type\":\"special\"},"
              "{\"token\":\"imported-2\",\"nickname\":\"bo\"}]}");
    is_int(users_admin(st, "PUT", "", NULL, p, &out, err, sizeof err), 200, "bulk upsert");
    ok(json_object_object_get_ex(out, "count", &v) && json_object_get_int(v) == 2, "count 2");
    ok(json_object_object_get_ex(out, "upserted_users", &v) && json_object_array_length(v) == 2,
       "upserted_users");
    json_object_put(out);
    json_object_put(p);
    p = parse("{\"users\":[{\"type\":\"special\"}]}");
    is_int(users_admin(st, "PUT", "", NULL, p, &out, err, sizeof err), 400,
           "bulk: a user without a token -> 400");
    json_object_put(p);

    is_int(users_admin(st, "GET", "", "sort=maxIps", NULL, &out, err, sizeof err), 200, "list");
    json_object *users;
    ok(json_object_object_get_ex(out, "users", &users) &&
           json_object_object_get_ex(out, "count", &v) &&
           json_object_get_int(v) == (int)json_object_array_length(users) &&
           json_object_get_int(v) >= 3,
       "{users, count}");
    is_str(users_str(json_object_array_get_idx(users, 0), "token"), tok,
           "sort=maxIps: the user with maxIps 3 first");
    json_object_put(out);
    is_int(users_admin(st, "PATCH", "", NULL, NULL, &out, err, sizeof err), 405, "PATCH -> 405");
}

static void test_estimate(void)
{
    json_object *b =
        parse("{\"model\":\"m\",\"max_tokens\":100,\"messages\":["
              "{\"role\":\"user\",\"content\":\"0123456789012345678901234567890123456789\"}]}");
    int64_t p = estimate_prompt_tokens(b);
    ok(p >= 10 && p <= 40, "40 bytes of text: about 10 tokens plus overhead");
    is_int(estimate_output_tokens(b, 4096, 0), 100, "max_tokens");
    is_int(estimate_output_tokens(b, 4096, 50), 50, "clamped by MAX_OUTPUT_TOKENS");
    json_object_put(b);
    b = parse("{\"n\":3,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
              "\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}]}]}");
    ok(estimate_prompt_tokens(b) >= ESTIMATE_IMAGE_TOKENS, "an image counts its cap");
    is_int(estimate_output_tokens(b, 4096, 0), 3 * 4096, "default max times n");
    json_object_put(b);
}

int main(void)
{
    char dir[] = "/tmp/t_gate.XXXXXX";
    tap_start();
    log_set_level(LOG_ERROR);
    test_credential();
    test_periods();
    test_origins();
    test_estimate();
    if (!mkdtemp(dir)) {
        ok(0, "mkdtemp");
        return tap_done();
    }
    snprintf(path, sizeof path, "%s/state.db", dir);
    struct state *st = NULL;
    is_int(state_open(&st, path), 0, "open a store");
    if (!st)
        return tap_done();
    test_modes(st);
    test_admin_lockout(st);
    test_rate(st);
    test_quota(st);
    test_admin_api(st);
    state_close(st);
    test_races();
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ok(system(cmd) == 0, "temp dir removed");
    return tap_done();
}
