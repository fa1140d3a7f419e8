/*
 * provider.h - the table a Claude platform fills to plug into upstream/proxy.c.
 *
 * The orchestrator owns everything the platforms share (model resolution, translation, the
 * attempt loop, streaming to the client, usage); a provider knows only its keys, how to address
 * and authenticate one request, how its stream is framed, and what its errors mean.
 */
#ifndef OAI_PROVIDER_H
#define OAI_PROVIDER_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "fcgi/config.h"
#include "state/state.h"
#include "translators/catalog.h"
#include "translators/sseparse.h"
#include "upstream/transport.h"

#define PROVIDER_MAX_HEADERS 12

/* Where and how one upstream request goes; filled by prepare and auth. */
struct upstream_target {
    char url[1024];
    char model_id[256];                        /* the id that went upstream (for logs) */
    char key_hash[13];                         /* the key, as logs name it */
    const char *headers[PROVIDER_MAX_HEADERS]; /* NULL-ended; strings live in the state */
};

/* An error frame inside a 200 stream, already mapped to our status and code. */
typedef int (*provider_error_fn)(void *ctx, int http, const char *code, const char *message);

struct provider {
    const char *name; /* "gcp", "aws" */
    enum catalog_provider catalog;
    const char *owned_by; /* for /models */
    int refresh_on_401;   /* a 401 means a stale token: auth again with refresh set */
    int openai_native;    /* the upstream speaks OpenAI chat: bodies and chunks pass through
                             the provider's own normaliser, not the Claude core */

    /* resolve maps a client model to an upstream target instead of the Claude catalogue (NULL:
     * the catalogue); it may ask the upstream (a probe) and remember answers in st. 0, or -1
     * when nothing serves the model. */
    int (*resolve)(const struct config *cfg, struct state *st, const struct transport_opts *t,
                   const char *model, struct catalog_resolved *out);

    /* keys returns how many keys the settings hold, or -1 with a message (bad settings). */
    int (*keys)(const struct config *cfg, char *err, size_t n);
    /* key_hash names key i as logs and the key pool do (borrowed from the parsed settings). */
    const char *(*key_hash)(const struct config *cfg, int i);
    /* serves (NULL: every key serves every model) says whether key i can serve model m. */
    int (*serves)(const struct config *cfg, struct state *st, const struct catalog_resolved *m,
                  int i);
    /* check_max_tokens: what the key checker sends as max_tokens - 1, or -1 for the
     * invalid-request probe (a platform that validates after authorising and finding the model
     * answers 400 naming max_tokens: the key can use the model, nothing is generated). */
    int check_max_tokens;
    /* prepare uses key number pick (mod the count), finishes the Messages body for the
     * platform in place (betas: a borrowed array of anthropic-beta flags) and fills the
     * target's URL and model id. *state is the provider's, released by release. Returns 0 or
     * an OAI_E* code with a client message in err. */
    int (*prepare)(void **state, const struct config *cfg, int64_t pick,
                   const struct catalog_resolved *m, json_object *body, int stream,
                   json_object *betas, struct upstream_target *t, char *err, size_t n);
    /* auth fills the target's headers for one attempt over the serialised body. Returns 0,
     * OAI_EAUTHUP (credentials refused) or OAI_EUPSTREAM / OAI_ESTATE. */
    int (*auth)(void *state, const struct config *cfg, struct state *st,
                const struct transport_opts *topts, const char *body, size_t len, int refresh,
                struct upstream_target *t);
    void (*release)(void *state);

    /* A stream decoder per transfer: feed gets the 200 body's bytes and calls on_event for
     * each Anthropic event (name = type, data = JSON) and on_error for error frames. An
     * openai_native decoder calls on_event(NULL, chunk) for each chunk to forward and
     * on_event("done", "", 0) at the upstream's [DONE]. */
    void *(*stream_new)(sseparse_fn on_event, provider_error_fn on_error, void *ctx);
    int (*stream_feed)(void *dec, const char *p, size_t n);
    void (*stream_free)(void *dec);

    /* usage_estimate (openai_native, may be NULL): a new final usage chunk (choices: [] and
     * usage) when the stream carried none although the client asked for one, else NULL. */
    json_object *(*usage_estimate)(void *dec, json_object *client_body);

    /* map_error maps a non-200 answer (status, the x-amzn-ErrorType header or "", the body) to
     * our status and OpenAI error code. */
    int (*map_error)(long status, const char *error_type, const char *body, size_t len,
                     const char **code);
};

extern const struct provider provider_gcp;
/* provider_by_name: "gcp", "aws", "azure", else NULL. */
const struct provider *provider_by_name(const char *name);
/* provider_transport_opts fills the upstream transfer options from the settings. */
void provider_transport_opts(const struct config *cfg, struct transport_opts *t);
extern const struct provider provider_aws;
extern const struct provider provider_azure;

/* provider_azure_models appends the Azure deployments' models (or their names while unknown)
 * to a /models data array, without duplicates. */
void provider_azure_models(const struct config *cfg, struct state *st, json_object *data);

/* provider_azure_probe asks every deployment whose model is not known yet (max_tokens 1). */
void provider_azure_probe(const struct config *cfg, struct state *st,
                          const struct transport_opts *t);

/* provider_azure_status adds the info page's per-family Azure blocks to info ("azure-gpt4o":
 * usage and deployment count; "azure-unknown": deployments whose model is not learned yet). */
void provider_azure_status(const struct config *cfg, struct state *st, json_object *info);
extern const struct provider provider_azure;

#endif
