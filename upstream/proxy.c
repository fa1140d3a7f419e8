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
#include "upstream/keypool.h"
#include "upstream/provider.h"
#include "upstream/transport.h"

#define MAX_ERROR_BODY   (64L * 1024)        /* an upstream error body we keep */
#define MAX_REPLY_BODY   (64L * 1024 * 1024) /* a non-stream upstream reply */
#define MAX_ATTEMPTS     3                   /* upstream attempts per request (SPEC §11) */
#define MAX_CHOICES_HARD 16
#define MAX_LANES        3 /* providers one request may try (unified routes) */
#define LAT_BUCKETS      11
static const int64_t lat_bucket_ms[LAT_BUCKETS] = {100,   250,   500,   1000,   2500,  5000,
                                                   10000, 30000, 60000, 120000, 300000};

/* One upstream transfer: choice k of an n fan-out. */
struct choice {
    struct xfer x;
    void *dec;                   /* the provider's stream decoder */
    struct anthropic_stream *as; /* OpenAI clients: the stream translator */
    struct run *run;
    int index;
    int done;   /* final event seen (or an error was reported for it) */
    int ended;  /* done by the upstream's own final event: its body ends by itself */
    int failed; /* ended with an error */
    /* an error frame that arrived before anything was sent to the client */
    int pre_http;
    const char *pre_code;
    char pre_msg[512];
    struct anthropic_usage usage;
    struct buf body; /* the reply (non-stream) or the body of a non-200 answer */
};

/* One provider that can serve the request, with its keys. */
struct lane {
    const struct provider *pv;
    struct catalog_resolved model;
    int nkeys;
    const char **hashes;    /* borrowed from the parsed settings */
    unsigned char *allowed; /* serves the model and has not failed transiently here */
};

/* An upstream attempt's failure, kept for the answer when nothing better comes. */
struct failure {
    int http;
    const char *code;
    char msg[768];
    char retry_after[32];
};

/* Everything about one request. */
struct run {
    const struct proxy_call *c;
    const struct proxy_sink *s;
    const struct provider *pv; /* the current lane's */
    void *pstate;
    struct upstream_target t;
    enum proxy_api api;
    int stream, begun, gone;
    int emitted; /* something other than heartbeats reached the client */
    int64_t t0;  /* monotonic ms when the attempts began */
    int status;  /* what the client was answered (metrics) */
    struct lane lanes[MAX_LANES];
    int nlanes, cur;
    json_object *ubody;   /* the current lane's upstream body */
    json_object *betas;   /* the client's anthropic-beta flags, may be NULL */
    const char *key_hash; /* the key of the attempt that answered */
    struct anthropic_usage usage_sum;
    int prompts;
    int nlat;
    struct {
        const char *provider;
        int64_t ms;
    } lat[MAX_ATTEMPTS + 1];
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
    r->status = http;
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
    r->status = 200;
    return 0;
}

/* Output other than heartbeats is about to go out: no retry after this. */
static int begin_output(struct run *r)
{
    r->emitted = 1;
    return ensure_begun(r);
}

/* An error after the stream started: an error event in the client's format. */
static void event_error(struct run *r, int http, const char *code, const char *msg)
{
    int anth = r->api == PROXY_ANTHROPIC;
    if (begin_output(r))
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
        snprintf(msg, n, "%s: %s",
                 x->status ? "the upstream connection failed during the reply"
                           : "the upstream could not be reached",
                 x->error);
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
    if (begin_output(r) || r->s->event(r->s->ctx, NULL, json, len) < 0) {
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
        out->input = anthropic_token_count(v);
    if (json_object_object_get_ex(u, "output_tokens", &v))
        out->output = anthropic_token_count(v);
    if (json_object_object_get_ex(u, "cache_read_input_tokens", &v))
        out->cache_read = anthropic_token_count(v);
    if (json_object_object_get_ex(u, "cache_creation_input_tokens", &v))
        out->cache_write = anthropic_token_count(v);
}

/* Usage fields of an OpenAI usage object (OpenAI-native upstreams). */
static void take_openai_usage(json_object *u, struct anthropic_usage *out)
{
    json_object *v;
    if (json_object_object_get_ex(u, "prompt_tokens", &v))
        out->input = anthropic_token_count(v);
    if (json_object_object_get_ex(u, "completion_tokens", &v))
        out->output = anthropic_token_count(v);
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
    if (begin_output(r) || r->s->event(r->s->ctx, name, data, len) < 0) {
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

static int on_event_open(struct choice *ch, const char *name, const char *data, size_t len);

/* Upstreams are trusted to send UTF-8 but not relied on: an ill-formed sequence in an event
 * becomes U+FFFD rather than costing the client the whole answer or reaching it as is. */
static int on_event(void *ctx, const char *name, const char *data, size_t len)
{
    struct choice *ch = ctx;
    if (ch->done)
        return 0; /* nothing after the final event (or after an error) */
    int rc;
    if (util_utf8_prefix(data, len) == len) {
        rc = on_event_open(ch, name, data, len);
    } else {
        struct buf fixed;
        buf_init(&fixed, len * 3 + 1);
        rc = util_utf8_repair(data, len, &fixed) ? OAI_ENOMEM
                                                  : on_event_open(ch, name, fixed.data, fixed.len);
        buf_free(&fixed);
    }
    /* the upstream's last event (not a local stop or an error): let its body end */
    ch->ended = ch->done && !ch->failed && name &&
                (strcmp(name, "message_stop") == 0 || strcmp(name, "done") == 0);
    return rc;
}

static int on_event_open(struct choice *ch, const char *name, const char *data, size_t len)
{
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
        if (buf_add(&ch->body, p, n) == 0)
            return 0;
        if (x->status == 200) { /* a reply this large is not one we can pass on */
            ch->pre_http = 502;
            ch->pre_code = "upstream_error";
            snprintf(ch->pre_msg, sizeof ch->pre_msg,
                     "the upstream reply is larger than %zu bytes", ch->body.max);
        }
        return TRANSPORT_STOP;
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
    return !ch->done ? 0 : ch->ended ? TRANSPORT_DONE : TRANSPORT_STOP;
}

static int on_tick(void *ctx)
{
    struct run *r = ctx;
    if (r->gone)
        return -1;
    /* HEARTBEAT_S of upstream silence before its first byte: a stream commits 200 so that
     * heartbeats flow (they keep proxies from timing the client out, and their writes are how a
     * client that hung up is noticed); later failures are error events, as after a queue wait */
    if (r->stream && !r->begun && util_mono_ms() - r->t0 >= r->c->cfg->heartbeat_s * 1000 &&
        ensure_begun(r))
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
        if (r->stream && !r->begun && now - start >= r->c->cfg->heartbeat_s * 1000) {
            if (ensure_begun(r))
                return -1;
            /* say so at once: the client may otherwise see nothing until the next heartbeat */
            if (r->s->comment && r->s->comment(r->s->ctx, "waiting for an upstream key") < 0) {
                r->gone = 1;
                return -1;
            }
        }
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

/* Usage is summed here and written with the request's other counters in one transaction. */
static void count_usage(struct run *r, const struct anthropic_usage *u, int prompts)
{
    r->usage_sum.input += u->input;
    r->usage_sum.output += u->output;
    r->usage_sum.cache_read += u->cache_read;
    r->usage_sum.cache_write += u->cache_write;
    r->prompts += prompts;
}

/* Non-stream answers: pass the native reply through, or translate each choice and merge. */
static void finish_plain(struct run *r)
{
    struct anthropic_usage sum = {0, 0, 0, 0};
    json_object *merged = NULL, *choices = NULL;
    int ok = 0;
    for (int i = 0; i < r->n; i++) {
        struct choice *ch = &r->ch[i];
        if (util_utf8_prefix(ch->body.data, ch->body.len) != ch->body.len) {
            struct buf fixed; /* see on_event */
            buf_init(&fixed, ch->body.len * 3 + 1);
            if (util_utf8_repair(ch->body.data, ch->body.len, &fixed) == 0) {
                buf_free(&ch->body);
                ch->body = fixed;
            } else
                buf_free(&fixed);
        }
        const char *text = ch->body.data ? ch->body.data : "";
        json_object *msg = NULL, *u;
        if (util_parse_json(text, ch->body.len, &msg)) {
            json_object_put(merged);
            reply_error(r, 502, "upstream_error",
                        ch->body.len ? "the upstream reply is not valid JSON"
                                     : "the upstream reply was empty",
                        NULL, NULL);
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
            r->status = 200;
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
    r->status = 200;
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
            else if (r->api == PROXY_OPENAI && !r->pv->openai_native && begin_output(r) == 0)
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

/* ---- keys and lanes ---------------------------------------------------------------------------
 */

static void lanes_free(struct run *r)
{
    for (int l = 0; l < r->nlanes; l++) {
        free(r->lanes[l].hashes);
        free(r->lanes[l].allowed);
    }
    r->nlanes = 0;
}

/* Adds pv as a lane when it has keys and serves the model. 1 added, 0 not, -1 after answering
 * the client (unusable credentials). *had_keys notes that some provider had keys. */
static int lane_add(struct run *r, const struct provider *pv, int *had_keys)
{
    const struct proxy_call *c = r->c;
    char err[256] = "";
    int n = pv->keys(c->cfg, err, sizeof err);
    if (n < 0) {
        log_error("req %s: %s", c->id, err);
        reply_error(r, 500, "config_error",
                    "the gateway's upstream credentials are unusable; see the server log", NULL,
                    NULL);
        return -1;
    }
    if (n == 0 || r->nlanes == MAX_LANES)
        return 0;
    *had_keys = 1;
    struct lane *ln = &r->lanes[r->nlanes];
    memset(ln, 0, sizeof *ln);
    struct transport_opts topts;
    provider_transport_opts(c->cfg, &topts);
    if (pv->resolve
            ? pv->resolve(c->cfg, c->st, &topts, r->client_model, &ln->model)
            : catalog_resolve(r->client_model, c->cfg->model_aliases, pv->catalog, &ln->model))
        return 0;
    ln->hashes = calloc((size_t)n, sizeof *ln->hashes);
    ln->allowed = calloc((size_t)n, 1);
    if (!ln->hashes || !ln->allowed) {
        free(ln->hashes);
        free(ln->allowed);
        reply_error(r, 500, "internal_error", "out of memory", NULL, NULL);
        return -1;
    }
    ln->pv = pv;
    ln->nkeys = n;
    for (int i = 0; i < n; i++) {
        ln->hashes[i] = pv->key_hash(c->cfg, i);
        ln->allowed[i] = !pv->serves || pv->serves(c->cfg, c->st, &ln->model, i);
    }
    r->nlanes++;
    return 1;
}

/* The providers that may serve the request, in order: one for a provider route; for the unified
 * routes every provider of PROVIDER_ORDER that has keys and knows the model, then Azure when no
 * Claude platform took it. 0, or -1 after answering the client. */
static int lanes_setup(struct run *r)
{
    const struct proxy_call *c = r->c;
    const struct config *cfg = c->cfg;
    int had_keys = 0;
    if (strcmp(c->provider, "unified") != 0) {
        const struct provider *pv = provider_by_name(c->provider);
        if (pv && lane_add(r, pv, &had_keys) < 0)
            return -1;
    } else {
        /* Azure never stands in for Claude: it takes the models the Claude catalogue lacks */
        struct catalog_resolved m;
        int claude =
            catalog_resolve(r->client_model, cfg->model_aliases, CATALOG_VERTEX, &m) == 0 ||
            catalog_resolve(r->client_model, cfg->model_aliases, CATALOG_BEDROCK, &m) == 0;
        const char *order = cfg->provider_order ? cfg->provider_order : "gcp,aws";
        const char *e;
        size_t len;
        int azure_listed = 0;
        while (util_list_next(&order, &e, &len)) {
            char name[16];
            snprintf(name, sizeof name, "%.*s", (int)(len < 15 ? len : 15), e);
            const struct provider *pv = provider_by_name(name);
            if (pv == &provider_azure)
                azure_listed = 1;
            if (!pv)
                continue;
            if ((pv == &provider_azure) == claude) {
                char err[256];
                had_keys |= pv->keys(cfg, err, sizeof err) > 0; /* an unknown model is a 404 */
                continue;
            }
            if (lane_add(r, pv, &had_keys) < 0)
                return -1;
        }
        if (!claude && !azure_listed && lane_add(r, &provider_azure, &had_keys) < 0)
            return -1;
    }
    if (r->nlanes > 0)
        return 0;
    if (!had_keys) {
        char msg[128];
        snprintf(msg, sizeof msg, "no usable key: this gateway has no %s credentials",
                 strcmp(c->provider, "unified") == 0 ? "upstream" : c->provider);
        reply_error(r, 503, "no_keys", msg, NULL, NULL);
        return -1;
    }
    const struct provider *pv = provider_by_name(c->provider);
    r->pv = pv ? pv : &provider_gcp;
    unknown_model(r, r->client_model);
    return -1;
}

/* Makes lane l current: the body is translated for its platform. 0, or -1 after answering. */
static int lane_enter(struct run *r, int l)
{
    if (r->cur == l)
        return 0;
    if (r->pv) {
        if (r->pstate)
            r->pv->release(r->pstate);
        r->pstate = NULL;
        choices_free(r);
        r->ch = NULL;
    }
    json_object_put(r->ubody);
    r->ubody = NULL;
    openai_request_free(&r->oreq);
    memset(&r->oreq, 0, sizeof r->oreq);
    r->cur = l;
    r->pv = r->lanes[l].pv;
    r->model = r->lanes[l].model;
    if (build_body(r, &r->ubody))
        return -1;
    r->ch = calloc((size_t)r->n, sizeof *r->ch);
    if (!r->ch) {
        reply_error(r, 500, "internal_error", "out of memory", NULL, NULL);
        return -1;
    }
    return 0;
}

/* Why keys were left out (for the answer when none is usable). */
struct census {
    int revoked, quota, nomodel;
};

/* Loads each lane's key pool in order; the first lane with a ready key wins (its pool is left in
 * *pool). -1 when none is ready: *soonest is when one will be (0: never). */
static int choose(struct run *r, int *lane, struct keypool *pool, int64_t *soonest,
                  struct census *cs)
{
    const struct config *cfg = r->c->cfg;
    int64_t now = state_now_ms();
    *soonest = 0;
    memset(cs, 0, sizeof *cs);
    for (int l = 0; l < r->nlanes; l++) {
        struct lane *ln = &r->lanes[l];
        int64_t at;
        /* the checker's model lists cover the current catalogue, not legacy ids */
        const struct catalog_model *cm = ln->model.model;
        keypool_load(pool, r->c->st, ln->pv->name, ln->model.family, ln->model.upstream_id,
                     cm && !(cm->flags & CAT_LEGACY) ? cm->api_id : "", ln->hashes, ln->nkeys);
        int k = keypool_pick(pool, ln->allowed, (int)cfg->key_max_concurrency, now, &at);
        if (k >= 0) {
            *lane = l;
            return k;
        }
        if (at && (!*soonest || at < *soonest))
            *soonest = at;
        for (int i = 0; i < pool->n; i++) {
            enum keypool_state ks = ln->allowed[i] ? keypool_state(pool, i, 0, now) : 0;
            cs->revoked += ks == KEYSTATE_REVOKED;
            cs->quota += ks == KEYSTATE_OVER_QUOTA;
            cs->nomodel += ks == KEYSTATE_NO_MODEL;
        }
        keypool_free(pool);
    }
    return -1;
}

/* Waits for a cooling key, counted in the family's queue for the info page. */
static int queue_wait(struct run *r, int64_t ms, int64_t t0)
{
    const char *family = r->lanes[0].model.family;
    keypool_queue_enter(r->c->st, family, r->c->id, ms + 5000);
    int rc = wait_cooldown(r, ms, t0);
    keypool_queue_leave(r->c->st, family, r->c->id);
    return rc;
}

/* The answer when no attempt can follow: the last failure, else why no key was ready. */
static void answer_failure(struct run *r, struct failure *f, int64_t soonest,
                           const struct census *cs)
{
    int64_t wait = soonest ? soonest - state_now_ms() : 0;
    if (!f->http && soonest) {
        f->http = 429;
        f->code = "rate_limit_exceeded";
        snprintf(f->msg, sizeof f->msg,
                 "every key that serves %.100s is cooling down after upstream rate limits",
                 r->client_model);
    } else if (!f->http && cs && cs->nomodel && !cs->revoked && !cs->quota) {
        f->http = 404;
        f->code = "model_not_found";
        snprintf(f->msg, sizeof f->msg,
                 "no configured key can use %.100s (the key checker found the model "
                 "unavailable to every key)",
                 r->client_model);
    } else if (!f->http && cs && cs->revoked && !cs->quota && !cs->nomodel) {
        f->http = 502; /* as when the upstream refused them live (SPEC §6) */
        f->code = "upstream_auth_failed";
        snprintf(f->msg, sizeof f->msg,
                 "the upstream refused the gateway's credentials: every key that serves %.100s "
                 "is revoked (the key checker retries them every few minutes)",
                 r->client_model);
    } else if (!f->http) {
        f->http = 503;
        f->code = "no_keys";
        snprintf(f->msg, sizeof f->msg,
                 "no usable key for %.100s: %d revoked, %d over quota, %d without access to "
                 "the model (see the server log)",
                 r->client_model, cs ? cs->revoked : 0, cs ? cs->quota : 0, cs ? cs->nomodel : 0);
    }
    /* SPEC §11: a 429 always carries Retry-After, from the soonest cooldown when upstream gave
     * none */
    if (f->http == 429 && !f->retry_after[0])
        snprintf(f->retry_after, sizeof f->retry_after, "%lld",
                 (long long)(wait > 1000 ? (wait + 999) / 1000 : 1));
    if (r->begun) { /* committed while waiting: the failure is an SSE event */
        event_error(r, f->http, f->code, f->msg);
        if (!r->gone && r->api == PROXY_OPENAI)
            emit_chunk(r, "[DONE]", 6);
        return;
    }
    reply_error(r, f->http, f->code, f->msg, NULL, f->retry_after[0] ? f->retry_after : NULL);
}

/* One upstream attempt with key k of the current lane. 0 when the transfer ran (the choices
 * tell how it went), else an auth failure (OAI_EAUTHUP / OAI_EUPSTREAM) or -1 after answering. */
static int attempt_once(struct run *r, int k, int refresh, struct transport_opts *topts)
{
    const struct proxy_call *c = r->c;
    char err[256] = "";
    if (r->pstate)
        r->pv->release(r->pstate);
    r->pstate = NULL;
    int rc = r->pv->prepare(&r->pstate, c->cfg, k, &r->model, r->ubody, r->stream, r->betas, &r->t,
                            err, sizeof err);
    if (rc) {
        reply_error(r, err_http(rc), rc == OAI_EBADREQ ? "invalid_request" : "internal_error",
                    err[0] ? err : err_message(rc), rc == OAI_EBADREQ ? "model" : NULL, NULL);
        return -1;
    }
    r->body = util_json_plain(r->ubody, &r->body_len);
    rc = r->pv->auth(r->pstate, c->cfg, c->st, topts, r->body, r->body_len, refresh, &r->t);
    if (rc)
        return rc;
    if (choices_reset(r)) {
        reply_error(r, 500, "internal_error", "out of memory", NULL, NULL);
        return -1;
    }
    struct xfer *xs[MAX_CHOICES_HARD];
    for (int i = 0; i < r->n; i++)
        xs[i] = &r->ch[i].x;
    int64_t t1 = util_mono_ms();
    transport_run(xs, r->n, topts, on_tick, r);
    if (r->nlat < MAX_ATTEMPTS + 1) {
        r->lat[r->nlat].provider = r->pv->name;
        r->lat[r->nlat++].ms = util_mono_ms() - t1;
    }
    return 0;
}

/* The attempt loop: pick a ready key (any lane), run it, and answer, retry elsewhere or wait.
 * At most MAX_ATTEMPTS transfers; every failure is judged against its key in the shared store. */
static void attempts(struct run *r)
{
    const struct proxy_call *c = r->c;
    const struct config *cfg = c->cfg;
    struct transport_opts topts;
    provider_transport_opts(cfg, &topts);
    struct failure last;
    memset(&last, 0, sizeof last);
    int64_t t0 = util_mono_ms();
    r->t0 = t0;
    int attempt = 0, cap = (int)cfg->key_max_concurrency;
    int64_t slot_ttl = (cfg->upstream_timeout_s + 60) * 1000 * MAX_ATTEMPTS;
    for (;;) {
        struct keypool pool;
        struct census cs;
        int lane = 0;
        int64_t soonest;
        int k = choose(r, &lane, &pool, &soonest, &cs);
        if (k >= 0 && attempt >= MAX_ATTEMPTS)
            keypool_free(&pool);
        if (k < 0 || attempt >= MAX_ATTEMPTS) {
            int64_t wait = soonest ? soonest - state_now_ms() : -1;
            if (attempt < MAX_ATTEMPTS && soonest &&
                wait <= cfg->max_queue_wait_s * 1000 - (util_mono_ms() - t0)) {
                if (queue_wait(r, wait > 0 ? wait : 0, t0) < 0)
                    return;
                continue;
            }
            answer_failure(r, &last, soonest, &cs);
            return;
        }
        int slot = -1, answered = 0;
        if (lane_enter(r, lane) < 0) {
            keypool_free(&pool);
            return;
        }
        if (keypool_take(&pool, c->st, k, cap, c->id, slot_ttl, &slot)) {
            keypool_free(&pool); /* another process took the last slot: choose again */
            continue;
        }
        struct choice *bad = NULL;
        enum keypool_verdict v = KEYPOOL_OK;
        long status = 0;
        for (int refresh = 0;; refresh = 1) {
            int rc = attempt_once(r, k, refresh, &topts);
            attempt++;
            if (rc < 0 && rc != OAI_EAUTHUP && rc != OAI_EUPSTREAM && rc != OAI_ESTATE) {
                answered = 1;
                break;
            }
            if (rc) {
                v = rc == OAI_EAUTHUP ? KEYPOOL_REVOKED : KEYPOOL_TRANSIENT;
                last.http = 502;
                last.code = "upstream_auth_failed";
                snprintf(last.msg, sizeof last.msg, "%s",
                         rc == OAI_EAUTHUP ? "the upstream refused the gateway's credentials"
                                           : "could not authenticate to the upstream");
                last.retry_after[0] = '\0';
                bad = NULL;
                break;
            }
            log_info("req %s: %s key %s model %s attempt %d -> HTTP %ld after %lld ms", c->id,
                     r->pv->name, r->t.key_hash, r->t.model_id, attempt, r->ch[0].x.status,
                     (long long)(util_mono_ms() - t0));
            if (r->gone)
                break;
            /* the first choice that failed before any byte of it was sent decides what follows */
            int http = 0;
            const char *code = NULL;
            for (int i = 0; i < r->n && !http; i++) {
                http = choice_failure(r, &r->ch[i], &code, last.msg, sizeof last.msg,
                                      last.retry_after, sizeof last.retry_after);
                bad = http ? &r->ch[i] : NULL;
            }
            if (!bad) {
                v = KEYPOOL_OK;
                break;
            }
            last.http = http;
            last.code = code;
            status = bad->pre_http ? bad->pre_http : bad->x.status;
            /* a transfer that failed is a network fault even when a status line had come */
            v = bad->x.result && !bad->pre_http && (status == 0 || status == 200)
                    ? KEYPOOL_TRANSIENT
                    : keypool_classify(status, bad->x.error_type, last.msg);
            if (bad->x.status == 401 && r->pv->refresh_on_401 && !refresh &&
                attempt < MAX_ATTEMPTS) {
                log_warn("req %s: %s key %s: credentials refused; refreshing once", c->id,
                         r->pv->name, r->t.key_hash);
                continue;
            }
            break;
        }
        long long secs;
        int64_t ra_ms = v == KEYPOOL_COOL && last.retry_after[0] &&
                                util_parse_long(last.retry_after, 0, 86400, &secs) == 0
                            ? secs * 1000
                            : -1;
        if (!r->gone && !answered)
            keypool_judge(&pool, c->st, k, v, ra_ms, status, v == KEYPOOL_OK ? "" : last.msg);
        keypool_give(&pool, c->st, k, slot);
        keypool_free(&pool);
        if (r->gone || answered)
            return;
        if (v == KEYPOOL_OK || r->emitted) {
            r->key_hash = r->lanes[lane].hashes[k];
            if (r->stream && (r->begun || r->emitted))
                finish_stream(r);
            else if (r->stream && !bad)
                reply_error(r, 502, "upstream_truncated", "the upstream stream was empty", NULL,
                            NULL);
            else
                finish_plain(r);
            return;
        }
        if (v == KEYPOOL_REVOKED && last.http == 403) {
            last.http = 502; /* our credential is wrong, not the client's (SPEC §6) */
            last.code = "upstream_auth_failed";
        }
        if (v == KEYPOOL_FATAL) {
            answer_failure(r, &last, 0, NULL);
            return;
        }
        if (v == KEYPOOL_TRANSIENT || v == KEYPOOL_NOMODEL)
            r->lanes[lane].allowed[k] = 0; /* not again in this request */
    }
}

/* Writes the request's counters (usage, the key's, metrics) in one transaction. */
static void settle(struct run *r)
{
    const struct anthropic_usage *u = &r->usage_sum;
    int64_t total = u->input + u->cache_read + u->cache_write + u->output;
    char fam[96], kp[160], kt[200], req[160], lat[LAT_BUCKETS + 1 + 2][96];
    struct state_delta d[8 + MAX_ATTEMPTS * 3];
    size_t n = 0;
    const char *family = r->model.family[0] ? r->model.family : "none";
    const char *provider = r->pv ? r->pv->name : "none";
    if (r->prompts || total) {
        snprintf(fam, sizeof fam, STATE_TOKENS ":%s", family);
        d[n++] = (struct state_delta){STATE_PROMPTS, r->prompts};
        d[n++] = (struct state_delta){STATE_TOKENS, total};
        d[n++] = (struct state_delta){fam, total};
        if (r->key_hash) {
            keypool_count_names(provider, r->key_hash, family, kp, sizeof kp, kt, sizeof kt);
            d[n++] = (struct state_delta){kp, r->prompts};
            d[n++] = (struct state_delta){kt, total};
        }
    }
    snprintf(req, sizeof req, PROXY_METRIC_REQUESTS "%s:%s:%d",
             r->api == PROXY_ANTHROPIC ? "messages" : "chat", provider,
             r->status ? r->status : 499);
    d[n++] = (struct state_delta){req, 1};
    for (int i = 0, li = 0; i < r->nlat && li + 3 <= (int)(sizeof lat / sizeof lat[0]); i++) {
        int b = 0;
        while (b < LAT_BUCKETS && r->lat[i].ms > lat_bucket_ms[b])
            b++;
        snprintf(lat[li], sizeof lat[li], PROXY_METRIC_LATENCY "%s:%d", r->lat[i].provider, b);
        d[n++] = (struct state_delta){lat[li++], 1};
        snprintf(lat[li], sizeof lat[li], PROXY_METRIC_LATENCY_SUM "%s", r->lat[i].provider);
        d[n++] = (struct state_delta){lat[li++], r->lat[i].ms};
    }
    if (state_counter_add_many(r->c->st, d, n))
        log_warn("req %s: usage and metrics not recorded (state store)", r->c->id);
}

static void generate(struct run *r)
{
    const struct proxy_call *c = r->c;
    r->client_model = str_field(c->body, "model");
    if (!r->client_model) {
        reply_error(r, 400, "invalid_request", "you must provide a model parameter", "model", NULL);
        return;
    }
    if (lanes_setup(r))
        return;
    /* ALLOWED_MODEL_FAMILIES: lanes of other families drop out */
    int kept = 0;
    for (int l = 0; l < r->nlanes; l++) {
        if (family_allowed(c->cfg, r->lanes[l].model.family)) {
            r->lanes[kept++] = r->lanes[l];
        } else {
            free(r->lanes[l].hashes);
            free(r->lanes[l].allowed);
        }
    }
    if (!kept) {
        char msg[160];
        snprintf(msg, sizeof msg, "Model family '%s' is not enabled on this proxy",
                 r->lanes[0].model.family);
        r->nlanes = 0;
        reply_error(r, 403, "model_not_allowed", msg, "model", NULL);
        return;
    }
    r->nlanes = kept;
    r->betas = c->beta && *c->beta ? anthropic_betas(c->beta, c->cfg->drop_anthropic_betas) : NULL;
    attempts(r);
}

static int null_reply(void *ctx, int status, const char *body, size_t len, const char *ra)
{
    (void)ctx, (void)status, (void)body, (void)len, (void)ra;
    return 0;
}

int proxy_family(const struct proxy_call *c, char *out, size_t n)
{
    struct proxy_sink quiet = {null_reply, NULL, NULL, NULL, NULL, NULL};
    struct run *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    r->c = c;
    r->s = &quiet;
    r->cur = -1;
    r->client_model = str_field(c->body, "model");
    int found = -1;
    if (r->client_model && lanes_setup(r) == 0) {
        for (int l = 0; l < r->nlanes && found < 0; l++)
            if (family_allowed(c->cfg, r->lanes[l].model.family))
                found = l;
        if (found < 0 && r->nlanes > 0)
            found = 0;
        if (found >= 0)
            snprintf(out, n, "%s", r->lanes[found].model.family);
    }
    lanes_free(r);
    free(r);
    return found >= 0 ? 0 : -1;
}

void proxy_generate(const struct proxy_call *c, const struct proxy_sink *s)
{
    struct run *r = calloc(1, sizeof *r);
    if (!r) { /* nothing left to build an error with: a fixed one in the client's format */
        static const char oai[] = "{\"error\":{\"message\":\"out of memory\",\"type\":"
                                  "\"server_error\",\"param\":null,\"code\":\"internal_error\"}}";
        static const char anth[] = "{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                                   "\"message\":\"out of memory\"}}";
        int a = c->api == PROXY_ANTHROPIC;
        s->reply(s->ctx, 500, a ? anth : oai, a ? sizeof anth - 1 : sizeof oai - 1, NULL);
        return;
    }
    r->c = c;
    r->s = s;
    r->api = c->api;
    r->cur = -1;
    r->created = util_now_ms() / 1000;
    snprintf(r->chunk_id, sizeof r->chunk_id, "chatcmpl-%s", c->id);
    generate(r);
    settle(r);
    if (c->result) {
        const struct anthropic_usage *u = &r->usage_sum;
        snprintf(c->result->family, sizeof c->result->family, "%s", r->model.family);
        c->result->tokens = u->input + u->cache_read + u->cache_write + u->output;
        c->result->prompts = r->prompts;
        c->result->status = r->status ? r->status : 499;
    }
    if (r->pv && r->pstate)
        r->pv->release(r->pstate);
    if (r->pv)
        choices_free(r);
    lanes_free(r);
    json_object_put(r->ubody);
    json_object_put(r->betas);
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
