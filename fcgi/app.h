/*
 * app.h - the gateway as one object: start-up configuration, shared state stores, and the
 * request pipeline that every run mode (FastCGI, CGI, tests) drives through struct io.
 */
#ifndef OAI_APP_H
#define OAI_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "fcgi/config.h"
#include "fcgi/io.h"
#include "state/state.h"

#define APP_STORES 8

/* A state-store entry left when a request came through Apache with no credential at all while
 * a gatekeeper is on (Apache drops Authorization without CGIPassAuth On): its value is the time
 * of the latest such request (epoch ms, decimal). --check-config reports it. */
#define APP_HINT_CGIPASSAUTH        "hint:cgipassauth"
#define APP_HINT_CGIPASSAUTH_TTL_MS (7LL * 24 * 3600 * 1000)

struct app {
    struct config cfg; /* from the process environment, validated at start */
    int64_t start_ms;
    int cgi; /* one request per process: uptime comes from the state store */
    pthread_mutex_t mu;
    struct state *stores[APP_STORES]; /* one per STATE_URL / STATE_PATH in use */
    char *store_keys[APP_STORES];     /* the URL or path each was opened with */
    atomic_long in_flight;
};

/* app_init validates the process environment (each problem goes to report) and opens the
 * state store. Returns 0, or the number of configuration problems (> 0), or a negative
 * OAI_E* code when the store cannot be opened. */
int app_init(struct app *app, int cgi, config_report_fn report, void *rctx);
void app_free(struct app *app);

/* app_handle serves one request on io completely: never fails, never leaves io half-written
 * unless the client is gone. Safe to call from many threads at once. */
void app_handle(struct app *app, struct io *io);

/* app_request_begins and app_request_ends bracket every request in app_handle. They do
 * nothing; the fault-injection build (tests/faults/faults.c) replaces them to fail one of the
 * request's allocations. */
void app_request_begins(struct io *io);
void app_request_ends(void);

#endif
