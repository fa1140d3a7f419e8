/*
 * transport.h - the one libcurl wrapper every provider uses for upstream HTTP.
 *
 * A caller fills one or more struct xfer (URL, headers, body, a data callback) and runs them
 * together with transport_run (n > 1 serves `n` fan-out). Response bytes reach on_data as they
 * arrive (gzip already decoded), after the status and headers are known, so a streaming caller
 * can translate and forward each event at once. While waiting, tick is called at least every
 * TRANSPORT_TICK_MS so the caller can send heartbeats and notice a gone client; a negative
 * return from tick or on_data aborts the transfer(s) at once (the connection is closed).
 *
 * Settings come from struct transport_opts: UPSTREAM_CONNECT_TO (libcurl CONNECT_TO, how tests
 * reach mocks under the real hostnames), UPSTREAM_CA_BUNDLE, HTTPS_PROXY, UPSTREAM_TIMEOUT_S,
 * STREAM_IDLE_TIMEOUT_S.
 */
#ifndef OAI_TRANSPORT_H
#define OAI_TRANSPORT_H

#include <stddef.h>

#include "common/buf.h"

#define TRANSPORT_TICK_MS       250
#define TRANSPORT_MAX_HEADERS   16
#define TRANSPORT_STOP          1
#define TRANSPORT_DONE          2 /* see on_data */
#define TRANSPORT_DONE_GRACE_MS 500

struct transport_opts {
    const char *connect_to; /* comma list host:port:chost:cport, may be NULL */
    const char *ca_bundle;  /* may be NULL (system store) */
    const char *proxy;      /* HTTPS_PROXY, may be NULL */
    long timeout_s;         /* whole transfer */
    long idle_timeout_s;    /* longest silence once the reply has begun (its first header) */
};

struct xfer {
    /* request, set by the caller */
    const char *method; /* "POST" or "GET" */
    const char *url;
    const char *headers[TRANSPORT_MAX_HEADERS]; /* "Name: value", NULL-terminated, borrowed */
    const char *body;                           /* borrowed */
    size_t body_len;
    /* on_data gets response body bytes as they arrive; NULL collects them into `body_out`. A
     * negative return aborts every transfer of the run (the client is gone); TRANSPORT_STOP
     * ends this transfer early as a success (the caller has all it needs); TRANSPORT_DONE says
     * the same but lets the body end on its own for up to TRANSPORT_DONE_GRACE_MS, so that the
     * connection stays reusable (later bytes are not passed on). */
    int (*on_data)(void *ctx, struct xfer *x, const char *p, size_t n);
    void *ctx;
    size_t max_body; /* ceiling of body_out when on_data is NULL (0 = 8 MiB) */

    /* response, filled by transport_run */
    long status; /* HTTP status, 0 if none arrived */
    char content_type[128];
    char retry_after[32];    /* Retry-After header or "" */
    char error_type[96];     /* x-amzn-ErrorType header (Bedrock) or "" */
    char retry_after_ms[24]; /* retry-after-ms header (Azure) or "" */
    struct buf body_out;     /* when on_data is NULL; caller frees with xfer_free */
    int result;              /* 0, OAI_EUPSTREAM (network/TLS/timeout), OAI_EGONE (aborted) */
    char error[256];         /* libcurl's reason when result != 0 (no secrets) */

    void *easy_; /* private */
};

/* xfer_init zeroes x; xfer_free releases body_out and private state. */
void xfer_init(struct xfer *x);
void xfer_free(struct xfer *x);

/* transport_run performs the n transfers concurrently and returns when all have finished or
 * were aborted. tick (may be NULL) is called at least every TRANSPORT_TICK_MS; a negative
 * return aborts everything. Returns 0 when every transfer got an HTTP response (whatever its
 * status), else the first failing xfer's result. */
int transport_run(struct xfer **x, int n, const struct transport_opts *opts, int (*tick)(void *ctx),
                  void *tick_ctx);

/* transport_global_init must be called once before threads start; transport_global_cleanup
 * closes the pooled upstream connections (at exit, after the threads). */
void transport_global_init(void);
void transport_global_cleanup(void);

#endif
