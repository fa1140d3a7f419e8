/*
 * status.h - the info page (JSON and HTML) and the Prometheus metrics.
 */
#ifndef OAI_STATUS_H
#define OAI_STATUS_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "fcgi/config.h"
#include "state/state.h"

struct status_input {
    const struct config *cfg;
    struct state *st; /* counters come from here */
    int64_t uptime_s;
    const char *origin; /* "http://host:port" */
    const char *mount;  /* "" or "/oai" */
    long in_flight;     /* this process */
};

/* Key names in the state store (counter names are in state/state.h). */
#define STATUS_PROMPTER_PREFIX "prompter:"
#define STATUS_PROMPTER_TTL_MS 60000

/* status_info returns a new info object (seed shape, SPEC §7); OAI_ESTATE leaves *out NULL. */
int status_info(const struct status_input *in, json_object **out);
/* status_html renders info as an HTML page titled title into out. */
int status_html(json_object *info, const char *title, struct buf *out);
/* status_metrics writes Prometheus text exposition into out. */
int status_metrics(const struct status_input *in, struct buf *out);
/* status_prefers_html says whether an Accept header prefers text/html over JSON. */
int status_prefers_html(const char *accept);

#endif
