/*
 * proxy.h - one generation request from the client's body to the upstream and back.
 *
 * proxy_generate resolves the model, picks a key and its credentials, translates the body (or
 * passes an Anthropic body through), runs the upstream transfer(s) and writes the answer
 * through a sink that the responder provides, so this layer never touches FastCGI and the
 * responder never touches a wire format. The status is decided before the first byte: errors
 * before it keep their real status in the client's format; errors after it are SSE events.
 */
#ifndef OAI_PROXY_H
#define OAI_PROXY_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "fcgi/config.h"
#include "state/state.h"

enum proxy_api { PROXY_OPENAI, PROXY_ANTHROPIC };

/* Metric counters in the state store (rendered by proxy_metrics). */
#define PROXY_METRIC_REQUESTS    "m:req:"    /* m:req:<api>:<provider>:<status> */
#define PROXY_METRIC_LATENCY     "m:lat:"    /* m:lat:<provider>:<bucket> (not cumulative) */
#define PROXY_METRIC_LATENCY_SUM "m:latsum:" /* m:latsum:<provider>, milliseconds */

struct proxy_sink {
    /* a whole response (JSON body bytes); retry_after may be NULL */
    int (*reply)(void *ctx, int status, const char *body, size_t len, const char *retry_after);
    /* commit 200 and the stream headers */
    int (*stream_begin)(void *ctx);
    /* one SSE event (name NULL for data-only) */
    int (*event)(void *ctx, const char *name, const char *data, size_t len);
    /* called at least every 250 ms while upstream transfers run: heartbeat if due; < 0 when the
     * client is gone */
    int (*tick)(void *ctx);
    /* an SSE comment (the stream was committed while waiting for a key); may be NULL */
    int (*comment)(void *ctx, const char *text);
    void *ctx;
};

/* What a call came to, for the gatekeeper's accounting. */
struct proxy_result {
    char family[48]; /* the family of the provider that answered (or was tried last) */
    int64_t tokens;  /* tokens the upstream reported, all choices */
    int prompts;     /* choices answered */
    int status;      /* what the client was answered (499: it left first) */
};

struct proxy_call {
    const struct config *cfg;
    struct state *st;
    enum proxy_api api;
    const char *provider;        /* "gcp", "aws", "azure" or "unified" */
    json_object *body;           /* the client's request body, borrowed */
    const char *beta;            /* the client's anthropic-beta header, may be NULL */
    const char *id;              /* request id (hex) for ids and logs */
    struct proxy_result *result; /* filled when not NULL */
};

/* proxy_generate answers the call through the sink; it always answers (or stops because the
 * client is gone). */
void proxy_generate(const struct proxy_call *c, const struct proxy_sink *s);

/* proxy_family finds the model family the call would be served under first (the first provider
 * that has keys, serves the model and whose family is allowed) without sending anything: 0, or
 * -1 when none does (the call itself will answer why). */
int proxy_family(const struct proxy_call *c, char *out, size_t n);

/* proxy_models returns a new OpenAI model list of what the configured keys of provider can
 * serve ("unified": every provider). */
json_object *proxy_models(const struct config *cfg, struct state *st, const char *provider);

/* proxy_key_check runs the key checker when it is due and no other process runs it (a lease in
 * the state store): every key of every provider once per KEY_CHECK_PERIOD_S, revoked keys every
 * few minutes. Blocking (upstream calls): run it off the request threads. stop (may be NULL)
 * is polled to give up early. Returns 1 when it ran a round. */
int proxy_key_check(const struct config *cfg, struct state *st, int (*stop)(void *), void *ctx);
/* proxy_key_check_due says whether a round is due (one read; no lease taken). */
int proxy_key_check_due(const struct config *cfg, struct state *st);

/* proxy_status adds the key pools' per-family blocks to the info object (SPEC §7). */
void proxy_status(const struct config *cfg, struct state *st, json_object *info);

/* proxy_metrics appends the Prometheus text of requests, upstream latency, tokens, key states
 * and queues (all processes) to out. */
int proxy_metrics(const struct config *cfg, struct state *st, struct buf *out);

#endif
