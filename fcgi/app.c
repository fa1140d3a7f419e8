#include "fcgi/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "fcgi/request.h"
#include "fcgi/response.h"
#include "fcgi/sse.h"
#include "fcgi/status.h"
#include "auth/aws.h"
#include "auth/azure.h"
#include "auth/gcp.h"
#include "gate/cidr.h"
#include "gate/gate.h"
#include "gate/users.h"
#include "translators/apierr.h"
#include "translators/estimate.h"
#include "translators/testmsg.h"
#include "upstream/proxy.h"

/* Everything one request needs, on the handling thread's stack. */
struct ctx {
    struct app *app;
    const struct config *cfg;
    struct request rq;
    struct response resp;
    enum api api; /* the error format the client speaks */
    /* ERROR_STYLE=completion on a generation request: errors become fake completions */
    int completion_errors, stream;
    const char *model;
};

/* The store the settings name: Redis when STATE_URL is set, else the SQLite file. */
static int open_store(struct state **out, const struct config *cfg)
{
    if (cfg->state_url && *cfg->state_url)
        return state_open_url(out, cfg->state_url,
                              cfg->state_prefix ? cfg->state_prefix : "oai-fcgi:");
    return state_open(out, cfg->state_path);
}

int app_init(struct app *app, int cgi, config_report_fn report, void *rctx)
{
    memset(app, 0, sizeof *app);
    app->cgi = cgi;
    app->start_ms = util_now_ms();
    pthread_mutex_init(&app->mu, NULL);
    atomic_init(&app->in_flight, 0);
    extern char **environ;
    int problems = config_load(&app->cfg, config_env_lookup, NULL, environ, report, rctx);
    if (problems)
        return problems;
    /* Decode the service-account keys now, so that a bad key is a start-up error. */
    char err[256];
    if (!gcp_keys_get(app->cfg.gcp_credentials, app->cfg.gcp_credentials_file, err, sizeof err) ||
        !aws_keys_get(app->cfg.aws_credentials, err, sizeof err) ||
        !azure_deployments_get(app->cfg.azure_credentials, err, sizeof err)) {
        report(rctx, err);
        return 1;
    }
    log_set_level((enum log_level)app->cfg.log_level);
    const char *key =
        app->cfg.state_url && *app->cfg.state_url ? app->cfg.state_url : app->cfg.state_path;
    app->store_keys[0] = strdup(key);
    return open_store(&app->stores[0], &app->cfg);
}

void app_free(struct app *app)
{
    gcp_keys_cleanup();
    aws_keys_cleanup();
    azure_deployments_cleanup();
    for (int i = 0; i < APP_STORES; i++) {
        state_close(app->stores[i]);
        if (app->store_keys[i])
            memset(app->store_keys[i], 0, strlen(app->store_keys[i])); /* may hold a password */
        free(app->store_keys[i]);
    }
    pthread_mutex_destroy(&app->mu);
}

/* The store for this request's settings (usually the one opened at start), by STATE_URL when
 * set, else STATE_PATH. */
static struct state *store(struct app *app, const struct config *cfg)
{
    const char *key = cfg->state_url && *cfg->state_url ? cfg->state_url : cfg->state_path;
    struct state *st = NULL;
    pthread_mutex_lock(&app->mu);
    int i = 0;
    for (; i < APP_STORES && app->stores[i]; i++) {
        if (app->store_keys[i] && strcmp(app->store_keys[i], key) == 0) {
            st = app->stores[i];
            break;
        }
    }
    if (!st && i < APP_STORES && open_store(&app->stores[i], cfg) == 0) {
        st = app->stores[i];
        app->store_keys[i] = strdup(key);
    }
    pthread_mutex_unlock(&app->mu);
    if (!st)
        log_error("%s: cannot open the state store for this request",
                  cfg->state_url && *cfg->state_url ? "STATE_URL" : "STATE_PATH");
    return st;
}

/* ---- replies ----------------------------------------------------------------------------------
 */

struct emit_ctx {
    struct sse sse;
};

static int emit_sse(void *p, const char *name, const char *data, size_t len)
{
    struct emit_ctx *e = p;
    return sse_event(&e->sse, name, data, len, util_mono_ms());
}

/* ERROR_STYLE=completion (SPEC §6): the error as an HTTP 200 completion (or stream) carrying
 * the seed's marker, with x-oai-proxy-error headers. */
static void send_completion_error(struct ctx *c, int http, const char *code, const char *message)
{
    char title[96], status[8];
    apierr_completion_title(http, title, sizeof title);
    snprintf(status, sizeof status, "%d", http);
    if (resp_header(&c->resp, "x-oai-proxy-error", title) ||
        resp_header(&c->resp, "x-oai-proxy-error-status", status))
        return;
    if (c->stream) {
        struct emit_ctx e;
        if (sse_begin(&e.sse, &c->resp, (int)c->cfg->heartbeat_s, util_mono_ms()) == 0)
            apierr_completion_events(c->api, http, code, message, c->rq.id, c->model, emit_sse, &e);
        return;
    }
    json_object *body = apierr_completion(c->api, http, code, message, c->rq.id, c->model);
    resp_json(&c->resp, 200, body);
    json_object_put(body);
}

/* An error reply with an explicit status and code, in the client's format. */
static void send_http_error(struct ctx *c, int http, const char *code, const char *message,
                            const char *param)
{
    if (c->resp.status)
        return; /* too late for a status: the caller reports mid-stream errors itself */
    if (http >= 500)
        log_warn("req %s %s %s -> %d %s", c->rq.id, c->rq.method, c->rq.rp.path, http, message);
    if (c->completion_errors) {
        send_completion_error(c, http, code, message);
        return;
    }
    json_object *body = apierr_body(c->api, http, code, message, param);
    resp_json(&c->resp, http, body);
    json_object_put(body);
}

static void send_error_msg(struct ctx *c, int err, const char *message, const char *param)
{
    send_http_error(c, err_http(err), apierr_code(err), message, param);
}

/* A gate refusal: its status, Retry-After and, for 401, WWW-Authenticate. */
static void send_verdict(struct ctx *c, const struct gate_verdict *v)
{
    char ra[24];
    snprintf(ra, sizeof ra, "%lld", v->retry_after_s);
    if ((v->retry_after_s > 0 && resp_header(&c->resp, "Retry-After", ra)) ||
        (v->http == 401 && resp_header(&c->resp, "WWW-Authenticate", "Bearer")))
        return;
    send_http_error(c, v->http, v->code, v->message, NULL);
}

static void send_error(struct ctx *c, int err)
{
    send_error_msg(c, err, err_message(err), NULL);
}

static void send_text(struct ctx *c, int status, const char *ctype, const char *text, size_t n)
{
    resp_send(&c->resp, status, ctype, text, n);
}

/* ---- routes -----------------------------------------------------------------------------------
 */

static int64_t uptime_s(struct ctx *c, struct state *st)
{
    int64_t now = util_now_ms(), since = c->app->start_ms;
    if (c->app->cgi) {
        /* Each CGI process lives for one request: count from the first start on record. */
        char v[24];
        int added = 0;
        snprintf(v, sizeof v, "%lld", (long long)since);
        char *old = NULL;
        if (state_kv_add(st, "started_at", v, strlen(v), 0, &added) == 0 && !added &&
            state_kv_get(st, "started_at", &old, NULL) == 0 && old)
            since = strtoll(old, NULL, 10);
        free(old);
    }
    return (now - since) / 1000;
}

static void status_input_init(struct ctx *c, struct status_input *in, struct state *st,
                              char *origin, size_t n)
{
    request_origin(&c->rq, c->cfg, origin, n);
    in->cfg = c->cfg;
    in->st = st;
    in->uptime_s = uptime_s(c, st);
    in->origin = origin;
    in->mount = c->rq.rp.mount;
    in->in_flight = atomic_load(&c->app->in_flight);
}

static void handle_info(struct ctx *c, int html_allowed)
{
    struct state *st = store(c->app, c->cfg);
    if (!st) {
        send_error(c, OAI_ESTATE);
        return;
    }
    char origin[512];
    struct status_input in;
    status_input_init(c, &in, st, origin, sizeof origin);
    json_object *info = NULL;
    int rc = status_info(&in, &info);
    if (rc) {
        /* the store does not answer (Redis down): say so, with what needs no store */
        char why[200] = "";
        state_healthy(st, why, sizeof why);
        info = json_object_new_object();
        json_object_object_add(info, "uptime", json_object_new_int64(in.uptime_s));
        char text[260];
        snprintf(text, sizeof text, "unreachable: %s", why[0] ? why : "state store error");
        json_object_object_add(info, "stateStore", json_object_new_string(text));
        json_object_object_add(info, "config", config_summary(c->cfg));
        if (resp_header(&c->resp, "Cache-Control", "no-store") == 0)
            resp_json(&c->resp, 503, info);
        json_object_put(info);
        return;
    }
    proxy_status(c->cfg, st, info);
    /* it answers reads but may fail writes (a lock held elsewhere, a full disk): say so */
    char why[200] = "";
    int healthy = state_healthy(st, why, sizeof why);
    if (!healthy) {
        char text[260];
        snprintf(text, sizeof text, "failing: %s", why[0] ? why : "state store error");
        json_object_object_add(info, "stateStore", json_object_new_string(text));
    }
    /* the seed's order: the family blocks, then config and build */
    for (const char *const *k = (const char *const[]){"config", "build", NULL}; *k; k++) {
        json_object *v = NULL;
        if (json_object_object_get_ex(info, *k, &v)) {
            json_object_get(v);
            json_object_object_del(info, *k);
            json_object_object_add(info, *k, v);
        }
    }
    if (html_allowed && status_prefers_html(request_param(&c->rq, "HTTP_ACCEPT"))) {
        struct buf page;
        buf_init(&page, 4L * 1024 * 1024);
        if (status_html(info, c->cfg->server_title, &page) == 0)
            send_text(c, 200, "text/html; charset=utf-8", page.data, page.len);
        else
            send_error(c, OAI_ENOMEM);
        buf_free(&page);
    } else {
        if (resp_header(&c->resp, "Cache-Control", "no-store") == 0)
            resp_json(&c->resp, healthy ? 200 : 503, info);
    }
    json_object_put(info);
}

/* The client's credential (Authorization: Bearer, else x-api-key), or NULL. */
static const char *credential(struct ctx *c, char *out, size_t n)
{
    return gate_credential(request_param(&c->rq, "HTTP_AUTHORIZATION"),
                           request_param(&c->rq, "HTTP_X_API_KEY"), out, n);
}

/* /metrics and /admin: an ADMIN_KEY bearer (open when ADMIN_KEY is unset and open is set),
 * with the gate's lock-out. 1 admitted, else the refusal was sent. */
static int admin_ok(struct ctx *c, struct state *st, int open)
{
    const char *key = c->cfg->admin_key;
    if (open && (!key || !*key))
        return 1;
    char cred[512];
    struct gate_verdict v;
    if (gate_admin_ok(st, key, credential(c, cred, sizeof cred), c->rq.client_ip, &v))
        return 1;
    send_verdict(c, &v);
    return 0;
}

static void handle_metrics(struct ctx *c)
{
    struct state *st = store(c->app, c->cfg);
    if (!st) {
        send_error(c, OAI_ESTATE);
        return;
    }
    if (!admin_ok(c, st, 1))
        return;
    char origin[512];
    struct status_input in;
    status_input_init(c, &in, st, origin, sizeof origin);
    struct buf text;
    buf_init(&text, 1L * 1024 * 1024);
    int rc = status_metrics(&in, &text);
    if (!rc)
        rc = proxy_metrics(c->cfg, st, &text);
    if (rc)
        send_error(c, rc);
    else
        send_text(c, 200, "text/plain; version=0.0.4; charset=utf-8", text.data, text.len);
    buf_free(&text);
}

/* A 401 for a request through Apache that carries no credential at all: most likely Apache
 * dropped Authorization (no CGIPassAuth On). Says so in v's message, records the time in the
 * state store for --check-config, and logs it once per process. */
static void explain_cgipassauth(struct ctx *c, struct state *st, struct gate_verdict *v)
{
    static atomic_flag logged = ATOMIC_FLAG_INIT;
    const char *auth = request_param(&c->rq, "HTTP_AUTHORIZATION");
    const char *xkey = request_param(&c->rq, "HTTP_X_API_KEY");
    const char *server = request_param(&c->rq, "SERVER_SOFTWARE");
    if (v->http != 401 || (auth && *auth) || (xkey && *xkey) || !server ||
        strncmp(server, "Apache", 6) != 0)
        return;
    size_t len = strlen(v->message);
    snprintf(v->message + len, sizeof v->message - len,
             " (Apache passes the Authorization header on only with CGIPassAuth On; see the "
             "README)");
    char now[24];
    int n = snprintf(now, sizeof now, "%lld", (long long)util_now_ms());
    if (state_kv_set(st, APP_HINT_CGIPASSAUTH, now, (size_t)n, APP_HINT_CGIPASSAUTH_TTL_MS))
        log_warn("req %s: could not record the CGIPassAuth hint in the state store", c->rq.id);
    if (!atomic_flag_test_and_set(&logged))
        log_warn("req %s: a request through Apache came without any credential while GATEKEEPER "
                 "is on; if clients send Authorization: Bearer, Apache needs CGIPassAuth On",
                 c->rq.id);
}

/* The gatekeeper for the proxy routes: 1 admitted (who filled, to free), else refused. */
static int admit(struct ctx *c, struct state *st, struct gate_who *who)
{
    struct gate_rules rules = {
        .mode = (enum gate_mode)c->cfg->gatekeeper,
        .proxy_key = c->cfg->proxy_key,
        .admin_key = c->cfg->admin_key,
        .max_ips_per_user = c->cfg->max_ips_per_user,
    };
    struct gate_verdict v;
    char cred[512];
    int rc = gate_admit(st, &rules, credential(c, cred, sizeof cred), c->rq.client_ip, who, &v);
    memset(cred, 0, sizeof cred);
    if (rc && !v.http) {
        send_error(c, rc);
    } else if (v.http) {
        explain_cgipassauth(c, st, &v);
        send_verdict(c, &v);
    }
    if (rc || v.http) {
        gate_who_free(who);
        return 0;
    }
    return 1;
}

static void handle_admin_users(struct ctx *c)
{
    struct state *st = store(c->app, c->cfg);
    if (!st) {
        send_error(c, OAI_ESTATE);
        return;
    }
    if (!admin_ok(c, st, 0))
        return;
    json_object *body = NULL, *out = NULL;
    int rc = request_read_body(&c->rq, c->cfg->max_body_bytes);
    if (rc) {
        send_error(c, rc);
        return;
    }
    if (c->rq.body.len && util_parse_json(c->rq.body.data, c->rq.body.len, &body)) {
        send_error(c, OAI_EBADJSON);
        return;
    }
    char err[256] = "";
    int http = users_admin(st, c->rq.method, c->rq.route.tail,
                           request_param(&c->rq, "QUERY_STRING"), body, &out, err, sizeof err);
    if (out)
        resp_json(&c->resp, http, out);
    else
        send_http_error(c, http, http == 404 ? "not_found" : NULL, err, NULL);
    json_object_put(out);
    json_object_put(body);
}

static void handle_models(struct ctx *c)
{
    struct state *st = store(c->app, c->cfg);
    if (!st) {
        send_error(c, OAI_ESTATE);
        return;
    }
    struct gate_who who;
    if (!admit(c, st, &who))
        return;
    gate_who_free(&who);
    json_object *list = proxy_models(c->cfg, st, router_provider_name(c->rq.route.provider));
    resp_json(&c->resp, 200, list);
    json_object_put(list);
}

/* Remembers the client as a prompter for 60 s (the info page's proomptersNow). */
/* Remembers the client as a prompter for 60 s (the info page's proomptersNow). A client this
 * process noted in the last PROMPTER_RENOTE_MS is not written again: its entry has most of its
 * minute left, and a write per request is the dearest part of the store's cost. */
#define PROMPTER_RENOTE_MS 10000
#define PROMPTER_SLOTS     64

static void note_prompter(struct ctx *c, struct state *st, const char *identity)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static struct {
        char hash[13];
        int64_t at;
    } recent[PROMPTER_SLOTS];
    char key[64], hash[13];
    log_hash(identity, strlen(identity), hash);
    int64_t now = util_mono_ms();
    unsigned slot = (unsigned)strtoul(hash + 6, NULL, 16) % PROMPTER_SLOTS;
    pthread_mutex_lock(&mu);
    int fresh = strcmp(recent[slot].hash, hash) == 0 && now - recent[slot].at < PROMPTER_RENOTE_MS;
    if (!fresh) {
        memcpy(recent[slot].hash, hash, sizeof hash);
        recent[slot].at = now;
    }
    pthread_mutex_unlock(&mu);
    if (fresh)
        return;
    snprintf(key, sizeof key, STATUS_PROMPTER_PREFIX "%s", hash);
    if (state_kv_set(st, key, "1", 1, STATUS_PROMPTER_TTL_MS))
        log_warn("req %s: could not record the prompter in the state store", c->rq.id);
}

static void reply_test_message(struct ctx *c, json_object *body, const char *model, int stream)
{
    int64_t now_s = util_now_ms() / 1000;
    if (!stream) {
        json_object *reply = testmsg_reply(model, now_s);
        resp_json(&c->resp, 200, reply);
        json_object_put(reply);
        return;
    }
    struct emit_ctx e;
    if (sse_begin(&e.sse, &c->resp, (int)c->cfg->heartbeat_s, util_mono_ms()))
        return;
    char id[48];
    if (c->rq.route.id == ROUTE_MESSAGES) {
        snprintf(id, sizeof id, "msg_%s", c->rq.id);
        testmsg_stream_anthropic(model, id, emit_sse, &e);
        return;
    }
    json_object *opts, *usage;
    int include_usage = json_object_object_get_ex(body, "stream_options", &opts) &&
                        json_object_object_get_ex(opts, "include_usage", &usage) &&
                        json_object_get_boolean(usage);
    snprintf(id, sizeof id, "chatcmpl-%s", c->rq.id);
    testmsg_stream_openai(model, id, now_s, include_usage, emit_sse, &e);
}

/* ---- the sink through which upstream/proxy answers ----------------------------------------------
 */

struct sink_ctx {
    struct ctx *c;
    struct sse sse;
    int streaming;
};

static int sink_reply(void *p, int status, const char *body, size_t len, const char *retry_after)
{
    struct sink_ctx *k = p;
    if (retry_after && resp_header(&k->c->resp, "Retry-After", retry_after))
        return OAI_EINTERNAL;
    if (status >= 400 && k->c->completion_errors) {
        /* the error body is ours (apierr_body): take its message and code back out */
        json_object *o = NULL, *e, *v;
        const char *msg = "error", *code = NULL;
        if (util_parse_json(body, len, &o) == 0 && json_object_object_get_ex(o, "error", &e)) {
            if (json_object_object_get_ex(e, "message", &v))
                msg = json_object_get_string(v);
            if (json_object_object_get_ex(e, "code", &v) ||
                json_object_object_get_ex(e, "type", &v))
                code = json_object_get_string(v);
        }
        send_completion_error(k->c, status, code, msg);
        json_object_put(o);
        return k->c->resp.gone ? OAI_EGONE : 0;
    }
    return resp_send(&k->c->resp, status, "application/json", body, len);
}

static int sink_stream_begin(void *p)
{
    struct sink_ctx *k = p;
    k->streaming = 1;
    return sse_begin(&k->sse, &k->c->resp, (int)k->c->cfg->heartbeat_s, util_mono_ms());
}

static int sink_event(void *p, const char *name, const char *data, size_t len)
{
    struct sink_ctx *k = p;
    return sse_event(&k->sse, name, data, len, util_mono_ms());
}

static int sink_comment(void *p, const char *text)
{
    struct sink_ctx *k = p;
    return k->streaming ? sse_comment(&k->sse, text, util_mono_ms()) : 0;
}

static int sink_tick(void *p)
{
    struct sink_ctx *k = p;
    if (io_gone(k->c->resp.io)) {
        k->c->resp.gone = 1;
        return OAI_EGONE;
    }
    if (!k->streaming)
        return 0;
    return sse_heartbeat(&k->sse, util_mono_ms()) < 0 ? OAI_EGONE : 0;
}

static void upstream(struct ctx *c, struct state *st, json_object *body, struct proxy_result *res)
{
    struct sink_ctx k = {.c = c, .streaming = 0};
    struct proxy_sink sink = {sink_reply, sink_stream_begin, sink_event,
                              sink_tick,  sink_comment,      &k};
    struct proxy_call call = {
        .cfg = c->cfg,
        .st = st,
        .api = c->rq.route.id == ROUTE_MESSAGES ? PROXY_ANTHROPIC : PROXY_OPENAI,
        .provider = router_provider_name(c->rq.route.provider),
        .body = body,
        .beta = request_param(&c->rq, "HTTP_ANTHROPIC_BETA"),
        .id = c->rq.id,
        .result = res,
    };
    proxy_generate(&call, &sink);
}

/* TEXT_MODEL_RATE_LIMIT: one slot of the identity's 60 s window, with the X-RateLimit-*
 * headers. 1 admitted, else the 429 was sent. */
static int rate_ok(struct ctx *c, struct state *st, const struct gate_who *who)
{
    struct gate_rate_info info;
    struct gate_verdict v;
    int rc = gate_rate(st, who, c->cfg->text_model_rate_limit, c->rq.id, &info, &v);
    if (rc && c->cfg->state_fail_open) {
        log_warn("req %s: rate limit not checked (state store unavailable; STATE_FAIL_OPEN)",
                 c->rq.id);
        return 1;
    }
    if (rc) {
        send_error(c, rc);
        return 0;
    }
    if (info.limit > 0) {
        char a[24], b[24], r[24];
        snprintf(a, sizeof a, "%lld", info.limit);
        snprintf(b, sizeof b, "%lld", info.remaining);
        snprintf(r, sizeof r, "%lld", (long long)info.reset_ms);
        if (resp_header(&c->resp, "X-RateLimit-Limit", a) ||
            resp_header(&c->resp, "X-RateLimit-Remaining", b) ||
            resp_header(&c->resp, "X-RateLimit-Reset", r))
            return 0;
    }
    if (v.http) {
        send_verdict(c, &v);
        return 0;
    }
    return 1;
}

/* Quota, upstream, accounting: the part of a generation request after admission. */
static void generate(struct ctx *c, struct state *st, json_object *body, struct gate_who *who)
{
    struct proxy_call probe = {
        .cfg = c->cfg,
        .st = st,
        .api = c->rq.route.id == ROUTE_MESSAGES ? PROXY_ANTHROPIC : PROXY_OPENAI,
        .provider = router_provider_name(c->rq.route.provider),
        .body = body,
        .id = c->rq.id,
    };
    char family[48] = "";
    struct gate_reservation res = {0};
    if (who->token[0] && !who->special && proxy_family(&probe, family, sizeof family) == 0) {
        int64_t estimate =
            estimate_prompt_tokens(body) +
            estimate_output_tokens(body, c->cfg->default_max_tokens, c->cfg->max_output_tokens);
        struct gate_verdict v;
        int rc = gate_quota_reserve(st, who, family, config_token_quota(c->rq.io, family),
                                    c->cfg->quota_refresh_period, estimate, &res, &v);
        if (rc && c->cfg->state_fail_open) {
            /* STATE_FAIL_OPEN: the quota cannot be read, so it is not applied */
            log_warn("req %s: quota not checked (state store unavailable; STATE_FAIL_OPEN)",
                     c->rq.id);
            rc = 0;
        } else if (rc || v.http) {
            if (rc)
                send_error(c, rc);
            else
                send_verdict(c, &v);
            return;
        }
    }
    struct proxy_result out = {"", 0, 0, 0};
    upstream(c, st, body, &out);
    gate_quota_settle(st, &res, out.tokens);
    /* a failed stream's usage so far counts too, as it does in the gateway's counters */
    if (out.prompts || out.tokens)
        gate_count(st, who, out.family, out.tokens, out.prompts);
}

/* Checks that a field, when present, has the JSON type wanted; sends the 400 if not. */
static int field_ok(struct ctx *c, json_object *body, const char *key, json_type want, int required)
{
    json_object *v;
    int present = json_object_object_get_ex(body, key, &v);
    if ((!present && !required) || (present && json_object_is_type(v, want)))
        return 1;
    char msg[160];
    snprintf(msg, sizeof msg, present ? "'%s' must be %s" : "'%s' is required (%s)", key,
             want == json_type_array     ? "an array"
             : want == json_type_string  ? "a string"
             : want == json_type_boolean ? "a boolean"
                                         : "an object");
    send_error_msg(c, OAI_EBADREQ, msg, key);
    return 0;
}

static void handle_generation(struct ctx *c)
{
    json_object *body = NULL;
    int rc = request_read_body(&c->rq, c->cfg->max_body_bytes);
    if (rc) {
        char msg[128];
        if (rc == OAI_ETOOBIG) {
            snprintf(msg, sizeof msg, "the request body is larger than MAX_BODY_BYTES (%lld bytes)",
                     c->cfg->max_body_bytes);
            send_error_msg(c, rc, msg, NULL);
        } else {
            send_error(c, rc);
        }
        return;
    }
    if (util_parse_json(c->rq.body.data ? c->rq.body.data : "", c->rq.body.len, &body)) {
        send_error(c, OAI_EBADJSON);
        return;
    }
    if (!json_object_is_type(body, json_type_object)) {
        send_error_msg(c, OAI_EBADJSON, "the request body must be a JSON object", NULL);
        goto done;
    }
    json_object *v;
    int has_prompt = json_object_object_get_ex(body, "prompt", &v);
    if (!field_ok(c, body, "messages", json_type_array, !has_prompt) ||
        !field_ok(c, body, "model", json_type_string, 0) ||
        !field_ok(c, body, "stream", json_type_boolean, 0) ||
        !field_ok(c, body, "stream_options", json_type_object, 0) ||
        (has_prompt && !field_ok(c, body, "prompt", json_type_string, 0)))
        goto done;
    const char *model =
        json_object_object_get_ex(body, "model", &v) ? json_object_get_string(v) : NULL;
    int stream = json_object_object_get_ex(body, "stream", &v) && json_object_get_boolean(v);

    c->stream = stream;
    c->model = model;
    c->completion_errors = c->cfg->error_style == ERRSTYLE_COMPLETION;
    struct state *st = store(c->app, c->cfg);
    if (!st) {
        send_error(c, OAI_ESTATE);
        goto done;
    }
    struct gate_who who;
    if (!admit(c, st, &who))
        goto done;
    note_prompter(c, st, who.identity);
    if (testmsg_detect(body)) {
        reply_test_message(c, body, model, stream);
    } else if (!model || !*model) {
        send_error_msg(c, OAI_EBADREQ, "you must provide a model parameter", "model");
    } else if (rate_ok(c, st, &who)) {
        generate(c, st, body, &who);
    }
    gate_who_free(&who);
done:
    json_object_put(body);
}

static void handle_options(struct ctx *c)
{
    const char *want = request_param(&c->rq, "HTTP_ACCESS_CONTROL_REQUEST_HEADERS");
    if (!want || !*want || resp_header(&c->resp, "Access-Control-Allow-Headers", want)) {
        buf_reset(&c->resp.hdr);
        if (resp_header(&c->resp, "Access-Control-Allow-Headers", "*"))
            return;
    }
    if (resp_header(&c->resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS") == 0 &&
        resp_header(&c->resp, "Access-Control-Max-Age", "86400") == 0) {
        resp_begin(&c->resp, 204, NULL, -1);
        resp_flush(&c->resp);
    }
}

static void dispatch(struct ctx *c)
{
    const struct route *r = &c->rq.route;
    if (strcmp(c->rq.method, "OPTIONS") == 0) {
        handle_options(c);
        return;
    }
    if (r->id == ROUTE_NONE) {
        char msg[200];
        snprintf(msg, sizeof msg, "no route for %.8s %.120s", c->rq.method, c->rq.rp.path);
        send_error_msg(c, OAI_ENOTFOUND, msg, NULL);
        return;
    }
    if (r->id != ROUTE_HEALTHZ) {
        /* IP_BLACKLIST and BLOCKED_ORIGINS hold for everything but the health check */
        if (c->cfg->ip_blacklist && cidr_list_match(c->cfg->ip_blacklist, c->rq.client_ip)) {
            send_http_error(c, 403, "ip_blocked", "Forbidden (by IP_BLACKLIST)", NULL);
            return;
        }
        if (c->cfg->blocked_origins &&
            gate_origin_blocked(c->cfg->blocked_origins, request_param(&c->rq, "HTTP_ORIGIN"),
                                request_param(&c->rq, "HTTP_REFERER"))) {
            send_http_error(c, 403, "blocked_origin",
                            "Requests from this website are not allowed to use this proxy", NULL);
            return;
        }
    }
    int head = strcmp(c->rq.method, "HEAD") == 0 && strcmp(r->method, "GET") == 0;
    if (strcmp(r->method, "*") != 0 && strcmp(c->rq.method, r->method) != 0 && !head) {
        char allow[32];
        snprintf(allow, sizeof allow, "%s, OPTIONS", r->method);
        if (resp_header(&c->resp, "Allow", allow) == 0) {
            char msg[64];
            snprintf(msg, sizeof msg, "this route only accepts %s", r->method);
            send_error_msg(c, OAI_EMETHOD, msg, NULL);
        }
        return;
    }
    switch (r->id) {
    case ROUTE_HEALTHZ:
        send_text(c, 200, "text/plain; charset=utf-8", "ok\n", 3);
        break;
    case ROUTE_INFO:
        handle_info(c, 1);
        break;
    case ROUTE_STATUS:
        handle_info(c, 0);
        break;
    case ROUTE_METRICS:
        handle_metrics(c);
        break;
    case ROUTE_MODELS:
        handle_models(c);
        break;
    case ROUTE_CHAT:
    case ROUTE_MESSAGES:
        handle_generation(c);
        break;
    case ROUTE_ADMIN_USERS:
        handle_admin_users(c);
        break;
    case ROUTE_NONE:
        break;
    }
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

__attribute__((weak)) void app_request_begins(struct io *io)
{
    (void)io;
}

__attribute__((weak)) void app_request_ends(void)
{
}

void app_handle(struct app *app, struct io *io)
{
    struct ctx c;
    struct config scratch;
    app_request_begins(io);
    atomic_fetch_add(&app->in_flight, 1);
    memset(&c, 0, sizeof c);
    c.app = app;
    c.api = API_OPENAI;
    resp_init(&c.resp, io);
    c.cfg = config_for_request(&app->cfg, io, &scratch);
    int rc = request_init(&c.rq, io, c.cfg ? c.cfg : &app->cfg);
    if (c.rq.route.id == ROUTE_MESSAGES ||
        (c.rq.route.id == ROUTE_NONE && ends_with(c.rq.rp.path, "/messages")))
        c.api = API_ANTHROPIC;
    if (!c.cfg)
        send_error(&c, OAI_ECONFIG);
    else if (rc)
        send_error_msg(&c, rc, "the request path cannot be decoded", NULL);
    else
        dispatch(&c);
    if (c.resp.gone)
        log_info("req %s %s %s: client disconnected", c.rq.id, c.rq.method, c.rq.rp.path);
    else if (!c.resp.status)
        send_error(&c, OAI_EINTERNAL); /* a handler that answered nothing is a bug */
    request_free(&c.rq);
    resp_free(&c.resp);
    atomic_fetch_sub(&app->in_flight, 1);
    app_request_ends();
}
