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
#include "translators/apierr.h"
#include "translators/testmsg.h"
#include "upstream/proxy.h"

/* Everything one request needs, on the handling thread's stack. */
struct ctx {
    struct app *app;
    const struct config *cfg;
    struct request rq;
    struct response resp;
    enum api api; /* the error format the client speaks */
};

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
    return state_open(&app->stores[0], app->cfg.state_path);
}

void app_free(struct app *app)
{
    gcp_keys_cleanup();
    aws_keys_cleanup();
    azure_deployments_cleanup();
    for (int i = 0; i < APP_STORES; i++)
        state_close(app->stores[i]);
    pthread_mutex_destroy(&app->mu);
}

/* The store for this request's STATE_PATH (usually the one opened at start). */
static struct state *store(struct app *app, const char *path)
{
    struct state *st = NULL;
    pthread_mutex_lock(&app->mu);
    int i = 0;
    for (; i < APP_STORES && app->stores[i]; i++) {
        if (strcmp(state_path(app->stores[i]), path) == 0) {
            st = app->stores[i];
            break;
        }
    }
    if (!st && i < APP_STORES && state_open(&app->stores[i], path) == 0)
        st = app->stores[i];
    pthread_mutex_unlock(&app->mu);
    if (!st)
        log_error("STATE_PATH %s: cannot open the state store for this request", path);
    return st;
}

/* ---- replies ----------------------------------------------------------------------------------
 */

static void send_error_msg(struct ctx *c, int err, const char *message, const char *param)
{
    if (c->resp.status)
        return; /* too late for a status: the caller reports mid-stream errors itself */
    int http = err_http(err);
    json_object *body = apierr_body(c->api, http, apierr_code(err), message, param);
    resp_json(&c->resp, http, body);
    json_object_put(body);
    if (http >= 500)
        log_warn("req %s %s %s -> %d %s", c->rq.id, c->rq.method, c->rq.rp.path, http, message);
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
    struct state *st = store(c->app, c->cfg->state_path);
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
        send_error(c, rc);
        return;
    }
    proxy_status(c->cfg, st, info);
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
            resp_json(&c->resp, 200, info);
    }
    json_object_put(info);
}

static int admin_ok(struct ctx *c)
{
    const char *key = c->cfg->admin_key;
    if (!key || !*key)
        return 1;
    const char *auth = request_param(&c->rq, "HTTP_AUTHORIZATION");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return 0;
    return util_ct_equal(auth + 7, key);
}

static void handle_metrics(struct ctx *c)
{
    if (!admin_ok(c)) {
        if (resp_header(&c->resp, "WWW-Authenticate", "Bearer") == 0)
            send_error_msg(c, OAI_EUNAUTH, "metrics need Authorization: Bearer <ADMIN_KEY>", NULL);
        return;
    }
    struct state *st = store(c->app, c->cfg->state_path);
    if (!st) {
        send_error(c, OAI_ESTATE);
        return;
    }
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

static void handle_models(struct ctx *c)
{
    struct state *st = store(c->app, c->cfg->state_path);
    if (!st) {
        send_error(c, OAI_ESTATE);
        return;
    }
    json_object *list = proxy_models(c->cfg, st, router_provider_name(c->rq.route.provider));
    resp_json(&c->resp, 200, list);
    json_object_put(list);
}

/* Remembers the client as a prompter for 60 s (the info page's proomptersNow). */
static void note_prompter(struct ctx *c, struct state *st)
{
    char key[64], hash[13];
    log_hash(c->rq.client_ip, strlen(c->rq.client_ip), hash);
    snprintf(key, sizeof key, STATUS_PROMPTER_PREFIX "%s", hash);
    if (state_kv_set(st, key, "1", 1, STATUS_PROMPTER_TTL_MS))
        log_warn("req %s: could not record the prompter in the state store", c->rq.id);
}

struct emit_ctx {
    struct sse sse;
};

static int emit_sse(void *p, const char *name, const char *data, size_t len)
{
    struct emit_ctx *e = p;
    return sse_event(&e->sse, name, data, len, util_mono_ms());
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

static void upstream(struct ctx *c, struct state *st, json_object *body)
{
    struct sink_ctx k = {.c = c, .streaming = 0};
    struct proxy_sink sink = {sink_reply, sink_stream_begin, sink_event, sink_tick, &k};
    struct proxy_call call = {
        .cfg = c->cfg,
        .st = st,
        .api = c->rq.route.id == ROUTE_MESSAGES ? PROXY_ANTHROPIC : PROXY_OPENAI,
        .provider = router_provider_name(c->rq.route.provider),
        .body = body,
        .beta = request_param(&c->rq, "HTTP_ANTHROPIC_BETA"),
        .id = c->rq.id,
    };
    proxy_generate(&call, &sink);
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

    struct state *st = store(c->app, c->cfg->state_path);
    if (!st) {
        send_error(c, OAI_ESTATE);
        goto done;
    }
    note_prompter(c, st);
    if (testmsg_detect(body)) {
        reply_test_message(c, body, model, stream);
        goto done;
    }
    if (!model || !*model) {
        send_error_msg(c, OAI_EBADREQ, "you must provide a model parameter", "model");
        goto done;
    }
    upstream(c, st, body);
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
    int head = strcmp(c->rq.method, "HEAD") == 0 && strcmp(r->method, "GET") == 0;
    if (strcmp(c->rq.method, r->method) != 0 && !head) {
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
    case ROUTE_NONE:
        break;
    }
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

void app_handle(struct app *app, struct io *io)
{
    struct ctx c;
    struct config scratch;
    atomic_fetch_add(&app->in_flight, 1);
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
}
