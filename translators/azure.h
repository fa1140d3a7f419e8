/*
 * azure.h - what Azure OpenAI changes about the OpenAI wire format (reference/wire-formats.md
 * §6; SPEC §5 "Azure", §11 "Azure usage"): fields an api-version refuses, the prompt-filter and
 * other empty-choice stream chunks, and its error bodies.
 */
#ifndef OAI_AZURE_H
#define OAI_AZURE_H

#include <json-c/json.h>
#include <stddef.h>

#include "common/buf.h"

/* azure_new_fields says whether an api-version accepts stream_options and
 * max_completion_tokens (previews from 2024-09-01-preview, and GA versions after 2024-10-21). */
int azure_new_fields(const char *api_version);

/* azure_prepare edits a copy of the client's body for api_version in place: drops "model" (the
 * deployment selects it); for versions without the newer fields moves max_completion_tokens to
 * max_tokens and drops stream_options; and drops every field the 2024-10-21 schema does not
 * know when the version is that old (older versions refuse unknown fields). */
void azure_prepare(json_object *body, const char *api_version);

/* azure_family is the family of a model name: "azure-" plus the name without a -YYYY-MM-DD
 * suffix and without the dash after "gpt" ("gpt-4o-2024-11-20" -> "azure-gpt4o"). */
void azure_family(const char *model, char *out, size_t n);

/* azure_model_matches says how well a client model names a deployment: 3 equal to the
 * deployment name, 2 equal to its model, 1 equal to its model without the -YYYY-MM-DD suffix,
 * 0 not at all. model_of may be NULL (not known yet). */
int azure_model_matches(const char *client, const char *deployment, const char *model_of);

/* azure_error maps an Azure error answer to our status and OpenAI code: 400 content_filter keeps
 * code content_filter; 401/403 -> 502 upstream_auth_failed; 404 (DeploymentNotFound) ->
 * model_not_found; 429 -> 429; 503 -> 503 server_is_overloaded; other 5xx -> 502. */
int azure_error(long status, const char *body, size_t len, const char **code);

/* ---- stream normaliser ---- */

struct azure_stream {
    int done;         /* data: [DONE] seen */
    int finished;     /* a choice's finish_reason passed */
    int usage_seen;   /* an include_usage chunk passed through */
    long long deltas; /* content/tool deltas passed: the completion-token estimate */
    char id[96];      /* id, created and model of the forwarded chunks, for our usage chunk */
    long long created;
    char model[128];
};

/* azure_stream_chunk decides what to do with one upstream data payload: returns 1 to forward it
 * unchanged, 0 to drop it, 2 for [DONE] (not forwarded: the caller ends the stream), or
 * OAI_EBADJSON. Dropped: chunks without choices that carry no usage (the prompt-filter chunk),
 * Azure's annotation chunks (empty id, or no choice with a delta to deliver or a finish reason:
 * asynchronous filter results) and anything after the finish except the usage chunk. Counts
 * deltas for the usage estimate. */
int azure_stream_chunk(struct azure_stream *s, const char *data, size_t len);

/* azure_usage_chunk returns a new final usage chunk (choices: [], the stream's id, created and
 * model) for an api-version that cannot send its own: completion tokens = content/tool deltas
 * seen (Azure streams about one token per chunk), prompt tokens = characters of the messages
 * / 4. */
json_object *azure_usage_chunk(const struct azure_stream *s, json_object *client_body);

#endif
