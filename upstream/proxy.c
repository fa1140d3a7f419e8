#include "upstream/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "translators/anthropic.h"
#include "translators/apierr.h"
#include "translators/catalog.h"
#include "translators/openai.h"
#include "upstream/provider.h"
#include "upstream/transport.h"

#define MAX_ERROR_BODY    (64L * 1024)        /* an upstream error body we keep */
#define MAX_REPLY_BODY    (64L * 1024 * 1024) /* a non-stream upstream reply */
#define MAX_ATTEMPTS      3                   /* upstream attempts per request (SPEC §11) */
#define COOLDOWN_FIRST_MS 1000                /* without Retry-After: 1 s, doubling ... */
#define COOLDOWN_MAX_MS   30000               /* ... up to 30 s */
#define MAX_CHOICES_HARD  16

/* One upstream transfer: choice k of an n fan-out. */
struct choice {
    struct xfer x;
    void *dec;                   /* the provider's stream decoder */
    struct anthropic_stream *as; /* OpenAI clients: the stream translator */
    struct run *run;
    int index;
    int done;   /* final event seen (or an error was reported for it) */
    int failed; /* ended with an error */
    /* an error frame that arrived before anything was sent to the client */
    int pre_http;
    const char *pre_code;
    char pre_msg[512];
    struct anthropic_usage usage;
    struct buf body; /* the reply (non-stream) or the body of a non-200 answer */
};

/* Everything about one request. */
struct run {
    const struct proxy_call *c;
    const struct proxy_sink *s;
    const struct provider *pv;
    void *pstate;
    struct upstream_target t;
    enum proxy_api api;
    int stream, begun, gone;
    int n;
    struct choice *ch;
    struct openai_request oreq; /* OpenAI clients */
    struct catalog_resolved model;
    const char *client_model;
    char chunk_id[48];
    int64_t created;
    const char *body; /* the upstream body (serialised) */
    size_t body_len;
};

/* ---- replies ----------------------------------------------------------------------------------
 */

static void reply_error(struct run *r, int http, const char *code, const char *msg,
                        const char *param, const char *retry_after)
{
    json_object *e =
        apierr_body(r->api == PROXY_ANTHROPIC ? API_ANTHROPIC : API_OPENAI, http, code, msg, param);
    size_t len;
    const char *s = util_json_plain(e, &len);
    if (r->s->reply(r->s->ctx, http, s, len, retry_after) < 0)
        r->gone = 1;
    json_object_put(e);
    if (http >= 500 || http == 429)
        log_warn("req %s: %d %s", r->c->id, http, msg);
}

/* The stream is committed (200 and SSE headers) when its first event is about to be sent. */
static int ensure_begun(struct run *r)
{
    if (r->begun)
        return 0;
    if (r->s->stream_begin(r->s->ctx) < 0) {
        r->gone = 1;
        return OAI_EGONE;
    }
    r->begun = 1;
    return 0;
}

/* An error after the stream started: an error event in the client's format. */
static void event_error(struct run *r, int http, const char *code, const char *msg)
{
    int anth = r->api == PROXY_ANTHROPIC;
    if (ensure_begun(r))
        return;
    json_object *e = apierr_body(anth ? API_ANTHROPIC : API_OPENAI, http, code, msg, NULL);
    size_t len;
    const char *s = util_json_plain(e, &len);
    if (r->s->event(r->s->ctx, anth ? "error" : NULL, s, len) < 0)
        r->gone = 1;
    json_object_put(e);
    log_warn("req %s: mid-stream error: %s", r->c->id, msg);
}

/* Whether choice ch failed, and how: 0 when it is fine, else our HTTP status with code, a
 * message and (for 429) the upstream's Retry-After in *retry_after ("" if none). */
static int choice_failure(struct run *r, struct choice *ch, const char **code, char *msg, size_t n,
                          char *retry_after, size_t ra)
{
    struct xfer *x = &ch->x;
    retry_after[0] = '\0';
    if (ch->pre_http) {
        *code = ch->pre_code;
        snprintf(msg, n, "%s", ch->pre_msg);
        return ch->pre_http;
    }
    if (x->result == OAI_EUPSTREAM || (!x->status && x->result)) {
        int timeout = strcasestr(x->error, "timeout") || strcasestr(x->error, "timed out") ||
                      strstr(x->error, "STREAM_IDLE_TIMEOUT_S");
        snprintf(msg, n, "the upstream could not be reached: %s", x->error);
        *code = timeout ? "timeout" : "upstream_error";
        return timeout ? 504 : 502;
    }
    if (x->status == 200)
        return 0;
    char upstream[512];
    anthropic_error_message(ch->body.data ? ch->body.data : "", ch->body.len, x->status, upstream,
                            sizeof upstream);
    snprintf(msg, n, "upstream (%s, %.120s) HTTP %ld%s%.80s: %.400s", r->pv->name, r->t.model_id,
             x->status, x->error_type[0] ? " " : "", x->error_type, upstream);
    int http = r->pv->map_error(x->status, x->error_type, ch->body.data ? ch->body.data : "",
                                ch->body.len, code);
    long long ms;
    if (http == 429 && x->retry_after[0])
        snprintf(retry_after, ra, "%s", x->retry_after);
    else if (http == 429 && util_parse_long(x->retry_after_ms, 0, 86400000, &ms) == 0)
        snprintf(retry_after, ra, "%lld", (ms + 999) / 1000); /* whole seconds, rounded up */
    return http;
}

/* ---- stream callbacks -------------------------------------------------------------------------
 */

static int emit_chunk(void *ctx, const char *json, size_t len)
{
    struct run *r = ctx;
    if (ensure_begun(r) || r->s->event(r->s->ctx, NULL, json, len) < 0) {
        r->gone = 1;
        return OAI_EGONE;
    }
    return 0;
}

/* Usage fields of an Anthropic usage object (message_start.message.usage or message_delta). */
static void take_usage(json_object *u, struct anthropic_usage *out)
{
    json_object *v;
    if (json_object_object_get_ex(u, "input_tokens", &v))
        out->input = json_object_get_int64(v);
    if (json_object_object_get_ex(u, "output_tokens", &v))
        out->output = json_object_get_int64(v);
    if (json_object_object_get_ex(u, "cache_read_input_tokens", &v))
        out->cache_read = json_object_get_int64(v);
    if (json_object_object_get_ex(u, "cache_creation_input_tokens", &v))
        out->cache_write = json_object_get_int64(v);
}

/* Usage fields of an OpenAI usage object (OpenAI-native upstreams). */
static void take_openai_usage(json_object *u, struct anthropic_usage *out)
{
    json_object *v;
    if (json_object_object_get_ex(u, "prompt_tokens", &v))
        out->input = json_object_get_int64(v);
    if (json_object_object_get_ex(u, "completion_tokens", &v))
        out->output = json_object_get_int64(v);
}

/* OpenAI-native upstreams (Azure): the provider's normaliser decided what to forward; chunks go
 * out unchanged, a usage chunk is noted, "done" ends the choice. */
static int openai_native_event(struct choice *ch, const char *name, const char *data, size_t len)
{
    if (name && strcmp(name, "done") == 0) {
        ch->done = 1;
        return 0;
    }
    if (len > 9 && memmem(data, len, "\"usage\":{", 9)) {
        json_object *o = NULL, *u;
        if (util_parse_json(data, len, &o) == 0 && json_object_object_get_ex(o, "usage", &u))
            take_openai_usage(u, &ch->usage);
        json_object_put(o);
    }
    return emit_chunk(ch->run, data, len);
}

/* Native (Anthropic) clients: events pass through unchanged; usage and the end are noted. */
static int native_event(struct choice *ch, const char *name, const char *data, size_t len)
{
    struct run *r = ch->run;
    if (ensure_begun(r) || r->s->event(r->s->ctx, name, data, len) < 0) {
        r->gone = 1;
        return OAI_EGONE;
    }
    if (!name)
        return 0;
    if (strcmp(name, "message_stop") == 0) {
        ch->done = 1;
    } else if (strcmp(name, "error") == 0) {
        ch->done = ch->failed = 1;
    } else if (strcmp(name, "message_start") == 0 || strcmp(name, "message_delta") == 0) {
        json_object *o = NULL, *m, *u;
        if (util_parse_json(data, len, &o) == 0) {
            if (json_object_object_get_ex(o, "message", &m) &&
                json_object_object_get_ex(m, "usage", &u))
                take_usage(u, &ch->usage);
            else if (json_object_object_get_ex(o, "usage", &u))
                take_usage(u, &ch->usage);
        }
        json_object_put(o);
    }
    return 0;
}

static int on_event(void *ctx, const char *name, const char *data, size_t len)
{
    struct choice *ch = ctx;
    if (ch->done)
        return 0; /* nothing after the final event (or after an error) */
    if (ch->run->pv->openai_native)
        return openai_native_event(ch, name, data, len);
    if (ch->run->api == PROXY_ANTHROPIC)
        return native_event(ch, name, data, len);
    int rc = anthropic_stream_event(ch->as, name, data, len);
    if (rc == ANTHROPIC_STREAM_DONE)
        ch->done = 1;
    else if (rc == OAI_EGONE || ch->run->gone)
        return OAI_EGONE;
    else if (rc < 0)
        ch->done = ch->failed = 1; /* the translator already sent the error event */
    return 0;
}

/* An error frame in a 200 stream: before anything went out it is the request's status (and may
 * be retried); after, it is an error event. */
static int on_stream_error(void *ctx, int http, const char *code, const char *message)
{
    struct choice *ch = ctx;
    struct run *r = ch->run;
    if (ch->done)
        return 0;
    ch->done = ch->failed = 1;
    if (!r->begun) {
        ch->pre_http = http;
        ch->pre_code = code;
        snprintf(ch->pre_msg, sizeof ch->pre_msg, "%s", message);
        return 0;
    }
    event_error(r, http, code, message);
    return r->gone ? OAI_EGONE : 0;
}

static int on_data(void *ctx, struct xfer *x, const char *p, size_t n)
{
    struct choice *ch = ctx;
    struct run *r = ch->run;
    if (x->status != 200 || !r->stream) {
        /* an error body (bounded, kept for the message) or the whole non-stream reply */
        size_t room = ch->body.max - ch->body.len;
        if (x->status != 200 && n > room)
            n = room;
        return buf_add(&ch->body, p, n) ? TRANSPORT_STOP : 0;
    }
    int rc = r->pv->stream_feed(ch->dec, p, n);
    if (rc == OAI_EGONE || r->gone)
        return -1;
    if (rc < 0 && !ch->done)
        on_stream_error(ch, 502, "upstream_error",
                        rc == OAI_EBADFRAME ? "the upstream sent a malformed stream frame"
                                            : "the upstream sent an event that cannot be read");
    if (r->gone)
        return -1;
    return ch->done ? TRANSPORT_STOP : 0;
}

static int on_tick(void *ctx)
{
    struct run *r = ctx;
    if (r->gone)
        return -1;
    if (r->s->tick(r->s->ctx) < 0) {
        r->gone = 1;
        return -1;
    }
    return 0;
}

/* ---- the run ----------------------------------------------------------------------------------
 */

/* How choice i's answer is shaped for the client. */
static void answer_opts(const struct run *r, int i, struct anthropic_opts *o)
{
    memset(o, 0, sizeof *o);
    o->model = r->client_model;
    o->id = r->chunk_id;
    o->created = r->created;
    o->choice = i;
    o->legacy_functions = r->oreq.legacy_functions;
    o->schema_tool = r->oreq.schema_tool;
    o->local_stops = r->oreq.local_stops;
}

/* Waits ms for a cooldown, ticking (heartbeats, disconnects). A stream that has waited
 * HEARTBEAT_S since the request began commits 200 so that heartbeats can flow (SPEC §11).
 * Returns 0, or -1 when the client is gone. */
static int wait_cooldown(struct run *r, int64_t ms, int64_t start)
{
    int64_t end = util_mono_ms() + ms;
    for (;;) {
        int64_t now = util_mono_ms();
        if (now >= end)
            return 0;
        if (r->stream && !r->begun && now - start >= r->c->cfg->heartbeat_s * 1000 &&
            ensure_begun(r))
            return -1;
        if (on_tick(r) < 0)
            return -1;
        int64_t step = end - now < 250 ? end - now : 250;
        usleep((useconds_t)step * 1000);
    }
}

static void choice_clear(struct choice *ch, const struct provider *pv)
{
    xfer_free(&ch->x);
    buf_free(&ch->body);
    if (ch->dec)
        pv->stream_free(ch->dec);
    anthropic_stream_free(ch->as);
}

static int choices_reset(struct run *r)
{
    for (int i = 0; i < r->n; i++) {
        struct choice *ch = &r->ch[i];
        choice_clear(ch, r->pv);
        memset(ch, 0, sizeof *ch);
        ch->run = r;
        ch->index = i;
        xfer_init(&ch->x);
        buf_init(&ch->body, r->stream ? MAX_ERROR_BODY : MAX_REPLY_BODY);
        if (r->stream) {
            ch->dec = r->pv->stream_new(on_event, on_stream_error, ch);
            if (!ch->dec)
                return OAI_ENOMEM;
        }
        if (r->api == PROXY_OPENAI && r->stream && !r->pv->openai_native) {
            struct anthropic_opts o;
            answer_opts(r, i, &o);
            ch->as = anthropic_stream_new(&o, emit_chunk, r);
            if (!ch->as)
                return OAI_ENOMEM;
        }
        struct xfer *x = &ch->x;
        x->method = "POST";
        x->url = r->t.url;
        for (int h = 0;
             h < PROVIDER_MAX_HEADERS && h < TRANSPORT_MAX_HEADERS - 1 && r->t.headers[h]; h++)
            x->headers[h] = r->t.headers[h];
        x->body = r->body;
        x->body_len = r->body_len;
        x->on_data = on_data;
        x->ctx = ch;
    }
    return 0;
}

static void choices_free(struct run *r)
{
    for (int i = 0; r->ch && i < r->n; i++)
        choice_clear(&r->ch[i], r->pv);
    free(r->ch);
}

static void transport_opts_of(const struct config *cfg, struct transport_opts *t)
{
    t->connect_to = cfg->upstream_connect_to;
    t->ca_bundle = cfg->upstream_ca_bundle;
    t->proxy = cfg->https_proxy;
    t->timeout_s = cfg->upstream_timeout_s;
    t->idle_timeout_s = cfg->stream_idle_timeout_s;
}

static void count_usage(struct run *r, const struct anthropic_usage *u, int prompts)
{
    struct state *st = r->c->st;
    long long total = u->input + u->cache_read + u->cache_write + u->output;
    char name[64];
    snprintf(name, sizeof name, STATE_TOKENS ":%s", r->model.family);
    if (state_counter_add(st, STATE_PROMPTS, prompts, NULL) ||
        state_counter_add(st, STATE_TOKENS, total, NULL) ||
        state_counter_add(st, name, total, NULL))
        log_warn("req %s: usage not recorded (state store)", r->c->id);
}

/* Non-stream answers: pass the native reply through, or translate each choice and merge. */
static void finish_plain(struct run *r)
{
    struct anthropic_usage sum = {0, 0, 0, 0};
    json_object *merged = NULL, *choices = NULL;
    int ok = 0;
    for (int i = 0; i < r->n; i++) {
        struct choice *ch = &r->ch[i];
        const char *text = ch->body.data ? ch->body.data : "";
        json_object *msg = NULL, *u;
        if (util_parse_json(text, ch->body.len, &msg)) {
            json_object_put(merged);
            reply_error(r, 502, "upstream_error", "the upstream reply is not valid JSON", NULL,
                        NULL);
            return;
        }
        if (r->api == PROXY_ANTHROPIC || r->pv->openai_native) {
            /* passthrough: the upstream bytes unchanged */
            if (json_object_object_get_ex(msg, "usage", &u)) {
                if (r->pv->openai_native)
                    take_openai_usage(u, &sum);
                else
                    take_usage(u, &sum);
            }
            json_object_put(msg);
            if (r->s->reply(r->s->ctx, 200, text, ch->body.len, NULL) < 0)
                r->gone = 1;
            count_usage(r, &sum, 1);
            return;
        }
        struct anthropic_opts o;
        answer_opts(r, i, &o);
        json_object *one = anthropic_to_openai(msg, &o, &sum);
        json_object_put(msg);
        if (!one) {
            json_object_put(merged);
            reply_error(r, 502, "upstream_error", "the upstream reply is not a message", NULL,
                        NULL);
            return;
        }
        ok++;
        if (!merged) {
            merged = one;
            json_object_object_get_ex(merged, "choices", &choices);
        } else {
            json_object *c;
            if (json_object_object_get_ex(one, "choices", &c) && json_object_array_length(c))
                json_object_array_add(choices, json_object_get(json_object_array_get_idx(c, 0)));
            json_object_put(one);
        }
    }
    json_object_object_add(merged, "usage", anthropic_usage_json(&sum));
    size_t len;
    const char *s = util_json_plain(merged, &len);
    if (r->s->reply(r->s->ctx, 200, s, len, NULL) < 0)
        r->gone = 1;
    json_object_put(merged);
    count_usage(r, &sum, ok);
}

/* Streams that started: close each choice properly, then usage and [DONE]. */
static void finish_stream(struct run *r)
{
    struct anthropic_usage sum = {0, 0, 0, 0};
    int ok = 0;
    for (int i = 0; i < r->n && !r->gone; i++) {
        struct choice *ch = &r->ch[i];
        if (!ch->done) {
            const char *code;
            char msg[768], ra[32];
            int http = choice_failure(r, ch, &code, msg, sizeof msg, ra, sizeof ra);
            if (http)
                event_error(r, http, code, msg);
            else if (r->api == PROXY_OPENAI && !r->pv->openai_native && ensure_begun(r) == 0)
                anthropic_stream_end(ch->as); /* emits the truncation error */
            else
                event_error(r, 502, "upstream_truncated",
                            "the upstream stream ended before message_stop");
            ch->failed = 1;
        }
        struct anthropic_usage u = ch->usage;
        if (ch->as)
            anthropic_stream_usage(ch->as, &u);
        sum.input += u.input;
        sum.output += u.output;
        sum.cache_read += u.cache_read;
        sum.cache_write += u.cache_write;
        ok += !ch->failed;
    }
    json_object *estimate = NULL;
    if (!r->gone && r->pv->openai_native && r->oreq.include_usage && r->pv->usage_estimate &&
        r->n > 0 && r->ch[0].dec)
        estimate = r->pv->usage_estimate(r->ch[0].dec, r->c->body);
    if (estimate) {
        /* the api-version could not send usage: our estimate instead (SPEC §11) */
        json_object *u;
        if (json_object_object_get_ex(estimate, "usage", &u))
            take_openai_usage(u, &sum);
        size_t len;
        const char *s = util_json_plain(estimate, &len);
        emit_chunk(r, s, len);
        json_object_put(estimate);
    }
    if (!r->gone && r->api == PROXY_OPENAI && !r->pv->openai_native) {
        if (r->oreq.include_usage) {
            json_object *c = openai_usage_chunk(r->chunk_id, r->created, r->client_model,
                                                anthropic_usage_json(&sum));
            size_t len;
            const char *s = util_json_plain(c, &len);
            emit_chunk(r, s, len);
            json_object_put(c);
        }
    }
    if (!r->gone && r->api == PROXY_OPENAI)
        emit_chunk(r, "[DONE]", 6);
    count_usage(r, &sum, ok);
}

/* ---- setup ------------------------------------------------------------------------------------
 */

static const char *str_field(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

static void unknown_model(struct run *r, const char *model)
{
    char msg[1536];
    if (r->pv->openai_native) {
        json_object *data = json_object_new_array();
        provider_azure_models(r->c->cfg, r->c->st, data);
        size_t k = (size_t)snprintf(msg, sizeof msg,
                                    "The model `%.100s` is served by no configured Azure "
                                    "deployment (a deployment matches by name, by model, or by "
                                    "model without its date). Available:",
                                    model ? model : "");
        for (size_t i = 0; i < json_object_array_length(data) && k < sizeof msg - 80; i++) {
            json_object *id = json_object_object_get(json_object_array_get_idx(data, i), "id");
            k += (size_t)snprintf(msg + k, sizeof msg - k, "%s %s", i ? "," : "",
                                  json_object_get_string(id));
        }
        json_object_put(data);
        reply_error(r, 404, "model_not_found", msg, "model", NULL);
        return;
    }
    size_t k = (size_t)snprintf(msg, sizeof msg,
                                "The model `%.100s` does not exist or is not available here. "
                                "Available models:",
                                model ? model : "");
    for (size_t i = 0; i < catalog_count() && k < sizeof msg - 64; i++) {
        const struct catalog_model *m = catalog_at(i);
        if (!(m->flags & CAT_LEGACY))
            k += (size_t)snprintf(msg + k, sizeof msg - k, "%s %s", i ? "," : "", m->api_id);
    }
    reply_error(r, 404, "model_not_found", msg, "model", NULL);
}

static int family_allowed(const struct config *cfg, const char *family)
{
    const char *list = cfg->allowed_model_families;
    return !list || !*list || util_list_has(list, family, strlen(family));
}

/* Builds the upstream Messages body; 0, or -1 after answering the client. */
static int build_body(struct run *r, json_object **out)
{
    const struct config *cfg = r->c->cfg;
    char msg[512], param[128];
    if (r->pv->openai_native) {
        /* the body is already OpenAI chat: the provider edits a copy */
        json_object *so, *iu, *v;
        if (json_object_deep_copy(r->c->body, out, NULL) != 0) {
            reply_error(r, 500, "internal_error", "out of memory", NULL, NULL);
            return -1;
        }
        r->n = 1; /* n passes through: the upstream answers every choice itself */
        r->stream = json_object_object_get_ex(*out, "stream", &v) && json_object_get_boolean(v);
        r->oreq.stream = r->stream;
        r->oreq.include_usage =
            r->stream && json_object_object_get_ex(*out, "stream_options", &so) &&
            json_object_object_get_ex(so, "include_usage", &iu) && json_object_get_boolean(iu);
        return 0;
    }
    if (r->api == PROXY_OPENAI) {
        struct openai_opts o = {
            .default_max_tokens = cfg->default_max_tokens,
            .max_output_tokens = cfg->max_output_tokens,
            .max_choices =
                cfg->max_choices < MAX_CHOICES_HARD ? cfg->max_choices : MAX_CHOICES_HARD,
            .hoist_system = cfg->system_message_mode == SYSMSG_HOIST,
            .model_flags = r->model.flags,
        };
        msg[0] = param[0] = '\0';
        if (openai_translate(r->c->body, &o, &r->oreq, msg, sizeof msg, param, sizeof param)) {
            reply_error(r, 400, "invalid_request", msg[0] ? msg : "invalid request",
                        param[0] ? param : NULL, NULL);
            return -1;
        }
        r->n = r->oreq.n > 0 ? r->oreq.n : 1;
        r->stream = r->oreq.stream;
        *out = json_object_get(r->oreq.body);
        return 0;
    }
    json_object *copy = NULL, *v;
    if (json_object_deep_copy(r->c->body, &copy, NULL) != 0) {
        reply_error(r, 500, "internal_error", "out of memory", NULL, NULL);
        return -1;
    }
    r->n = 1;
    r->stream = json_object_object_get_ex(copy, "stream", &v) && json_object_get_boolean(v);
    if (!json_object_object_get_ex(copy, "max_tokens", &v))
        json_object_object_add(copy, "max_tokens", json_object_new_int64(cfg->default_max_tokens));
    anthropic_normalize(copy, r->model.flags, cfg->max_output_tokens);
    *out = copy;
    return 0;
}

/* The attempt loop: authenticate, run the transfer(s), and answer, retry or wait. */
static void attempts(struct run *r)
{
    const struct proxy_call *c = r->c;
    const struct config *cfg = c->cfg;
    struct transport_opts topts;
    transport_opts_of(cfg, &topts);
    struct xfer *xs[MAX_CHOICES_HARD];
    int64_t t0 = util_mono_ms(), backoff = COOLDOWN_FIRST_MS;
    int refresh = 0, refreshed = 0;
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        int rc = r->pv->auth(r->pstate, cfg, c->st, &topts, r->body, r->body_len, refresh, &r->t);
        refresh = 0;
        if (rc) {
            const char *msg = rc == OAI_EAUTHUP ? "the upstream refused the gateway's credentials"
                                                : "could not authenticate to the upstream";
            if (r->begun)
                event_error(r, 502, "upstream_auth_failed", msg);
            else
                reply_error(r, 502, "upstream_auth_failed", msg, NULL, NULL);
            return;
        }
        if (choices_reset(r)) {
            reply_error(r, 500, "internal_error", "out of memory", NULL, NULL);
            return;
        }
        for (int i = 0; i < r->n; i++)
            xs[i] = &r->ch[i].x;
        transport_run(xs, r->n, &topts, on_tick, r);
        log_info("req %s: %s key %s model %s attempt %d -> HTTP %ld after %lld ms", c->id,
                 r->pv->name, r->t.key_hash, r->t.model_id, attempt + 1, r->ch[0].x.status,
                 (long long)(util_mono_ms() - t0));
        if (r->gone)
            return;
        /* the first choice that failed before any byte of it was sent decides what follows */
        const char *code = NULL;
        char msg[768], ra[32];
        int http = 0;
        struct choice *bad = NULL;
        for (int i = 0; i < r->n && !http; i++) {
            http = choice_failure(r, &r->ch[i], &code, msg, sizeof msg, ra, sizeof ra);
            bad = http ? &r->ch[i] : NULL;
        }
        if (r->begun && (!bad || bad->x.status == 200)) {
            finish_stream(r);
            return;
        }
        if (!bad) {
            if (r->stream)
                reply_error(r, 502, "upstream_truncated", "the upstream stream was empty", NULL,
                            NULL);
            else
                finish_plain(r);
            return;
        }
        if (bad->x.status == 401 && r->pv->refresh_on_401 && !refreshed &&
            attempt + 1 < MAX_ATTEMPTS) {
            log_warn("req %s: %s key %s: credentials refused; refreshing once", c->id, r->pv->name,
                     r->t.key_hash);
            refresh = refreshed = 1;
            continue;
        }
        int64_t cool = backoff;
        if (http == 429 || http == 503) {
            long long secs;
            if (ra[0] && util_parse_long(ra, 0, 86400, &secs) == 0)
                cool = secs * 1000;
            backoff = backoff * 2 > COOLDOWN_MAX_MS ? COOLDOWN_MAX_MS : backoff * 2;
            if (!r->begun && attempt + 1 < MAX_ATTEMPTS &&
                util_mono_ms() - t0 + cool <= cfg->max_queue_wait_s * 1000) {
                if (wait_cooldown(r, cool, t0) < 0)
                    return;
                continue;
            }
        }
        if (r->begun) {
            finish_stream(r); /* committed while waiting: the failure is an SSE event */
            return;
        }
        /* SPEC §11: a 429 always carries Retry-After, from the cooldown when upstream gave none */
        if (http == 429 && !ra[0])
            snprintf(ra, sizeof ra, "%lld", (long long)((cool + 999) / 1000));
        reply_error(r, http, code, msg, NULL, ra[0] ? ra : NULL);
        return;
    }
}

static void generate(struct run *r)
{
    const struct proxy_call *c = r->c;
    const struct config *cfg = c->cfg;
    char err[256] = "";
    int nkeys = r->pv->keys(cfg, err, sizeof err);
    if (nkeys < 0) {
        log_error("req %s: %s", c->id, err);
        reply_error(r, 500, "config_error",
                    "the gateway's upstream credentials are unusable; see the server log", NULL,
                    NULL);
        return;
    }
    if (nkeys == 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "no %s credentials are configured", r->pv->name);
        reply_error(r, 503, "no_keys", msg, NULL, NULL);
        return;
    }
    r->client_model = str_field(c->body, "model");
    if (!r->client_model) {
        reply_error(r, 400, "invalid_request", "you must provide a model parameter", "model", NULL);
        return;
    }
    struct transport_opts topts;
    transport_opts_of(cfg, &topts);
    int unknown = r->pv->resolve ? r->pv->resolve(cfg, c->st, &topts, r->client_model, &r->model)
                                 : catalog_resolve(r->client_model, cfg->model_aliases,
                                                   r->pv->catalog, &r->model);
    if (unknown) {
        unknown_model(r, r->client_model);
        return;
    }
    if (!family_allowed(cfg, r->model.family)) {
        char msg[160];
        snprintf(msg, sizeof msg, "Model family '%s' is not enabled on this proxy",
                 r->model.family);
        reply_error(r, 403, "model_not_allowed", msg, "model", NULL);
        return;
    }
    json_object *body = NULL;
    if (build_body(r, &body))
        return;
    json_object *betas =
        c->beta && *c->beta ? anthropic_betas(c->beta, cfg->drop_anthropic_betas) : NULL;
    char rrname[32];
    int64_t pick = 0;
    snprintf(rrname, sizeof rrname, "%s:rr", r->pv->name);
    if (state_counter_add(c->st, rrname, 1, &pick))
        pick = 0;
    int rc = r->pv->prepare(&r->pstate, cfg, pick, &r->model, body, r->stream, betas, &r->t, err,
                            sizeof err);
    json_object_put(betas);
    if (rc) {
        reply_error(r, err_http(rc), rc == OAI_EBADREQ ? "invalid_request" : "internal_error",
                    err[0] ? err : err_message(rc), rc == OAI_EBADREQ ? "model" : NULL, NULL);
        json_object_put(body);
        return;
    }
    r->body = util_json_plain(body, &r->body_len);
    r->ch = calloc((size_t)r->n, sizeof *r->ch);
    if (!r->ch)
        reply_error(r, 500, "internal_error", "out of memory", NULL, NULL);
    else
        attempts(r);
    json_object_put(body);
}

static const struct provider *provider_named(const char *name)
{
    if (strcmp(name, "gcp") == 0)
        return &provider_gcp;
    if (strcmp(name, "aws") == 0)
        return &provider_aws;
    if (strcmp(name, "azure") == 0)
        return &provider_azure;
    return NULL;
}

/* The unified routes: a Claude model goes to the first provider in PROVIDER_ORDER that has keys;
 * any other model to Azure when Azure has deployments. */
static const struct provider *provider_unified(const struct config *cfg, json_object *body)
{
    const char *order = cfg->provider_order ? cfg->provider_order : "gcp,aws";
    char err[256];
    struct catalog_resolved m;
    const char *model = str_field(body, "model");
    if (model && catalog_resolve(model, cfg->model_aliases, CATALOG_VERTEX, &m) != 0 &&
        provider_azure.keys(cfg, err, sizeof err) > 0)
        return &provider_azure;
    const char *e;
    size_t len;
    while (util_list_next(&order, &e, &len)) {
        char name[16];
        snprintf(name, sizeof name, "%.*s", (int)(len < 15 ? len : 15), e);
        const struct provider *pv = provider_named(name);
        if (pv && pv->keys(cfg, err, sizeof err) > 0)
            return pv;
    }
    return &provider_gcp;
}

void proxy_generate(const struct proxy_call *c, const struct proxy_sink *s)
{
    struct run *r = calloc(1, sizeof *r);
    if (!r) {
        s->reply(s->ctx, 500, "{}", 2, NULL);
        return;
    }
    r->c = c;
    r->s = s;
    r->api = c->api;
    r->created = util_now_ms() / 1000;
    snprintf(r->chunk_id, sizeof r->chunk_id, "chatcmpl-%s", c->id);
    r->pv = strcmp(c->provider, "unified") == 0 ? provider_unified(c->cfg, c->body)
                                                : provider_named(c->provider);
    if (r->pv) {
        generate(r);
    } else {
        char msg[128];
        snprintf(msg, sizeof msg,
                 "no usable key: this gateway has no %s credentials it can "
                 "call yet",
                 c->provider);
        reply_error(r, 503, "no_keys", msg, NULL, NULL);
    }
    if (r->pv && r->pstate)
        r->pv->release(r->pstate);
    choices_free(r);
    openai_request_free(&r->oreq);
    free(r);
}

json_object *proxy_models(const struct config *cfg, struct state *st, const char *provider)
{
    json_object *list = json_object_new_object(), *data = json_object_new_array();
    json_object_object_add(list, "object", json_object_new_string("list"));
    const struct provider *all[] = {&provider_gcp, &provider_aws};
    int unified = strcmp(provider, "unified") == 0;
    char err[256];
    int listed = 0;
    for (unsigned p = 0; p < 2 && !listed; p++) {
        if ((!unified && strcmp(provider, all[p]->name) != 0) ||
            all[p]->keys(cfg, err, sizeof err) <= 0)
            continue;
        listed = 1; /* the same catalogue whichever provider serves it */
        for (size_t i = 0; i < catalog_count(); i++) {
            const struct catalog_model *m = catalog_at(i);
            if (m->flags & CAT_LEGACY)
                continue;
            json_object *e = json_object_new_object();
            json_object_object_add(e, "id", json_object_new_string(m->api_id));
            json_object_object_add(e, "object", json_object_new_string("model"));
            json_object_object_add(e, "created", json_object_new_int64(m->created));
            json_object_object_add(e, "owned_by", json_object_new_string(all[p]->owned_by));
            json_object_array_add(data, e);
        }
    }
    char e2[256];
    if ((unified || strcmp(provider, "azure") == 0) && provider_azure.keys(cfg, e2, sizeof e2) > 0)
        provider_azure_models(cfg, st, data);
    json_object_object_add(list, "data", data);
    return list;
}

void proxy_status(const struct config *cfg, struct state *st, json_object *info)
{
    if (cfg->azure_keys > 0)
        provider_azure_status(cfg, st, info);
}

void proxy_startup_check(const struct config *cfg, struct state *st)
{
    if (cfg->azure_keys <= 0)
        return;
    char owner[48];
    int held = 0;
    snprintf(owner, sizeof owner, "pid %d", (int)getpid());
    /* every process of a pool starts at once: one of them asks */
    if (state_lease_acquire(st, "azure:probe", owner, 60000, &held) || !held)
        return;
    struct transport_opts t;
    transport_opts_of(cfg, &t);
    if (t.timeout_s > 30)
        t.timeout_s = 30;
    provider_azure_probe(cfg, st, &t);
}
