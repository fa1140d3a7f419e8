/*
 * apierr.h - error bodies in each client API's wire format.
 *
 *   OpenAI:    {"error":{"message":"…","type":"…","param":null|"…","code":"…"}}
 *   Anthropic: {"type":"error","error":{"type":"…","message":"…"}}
 *
 * With ERROR_STYLE=completion the same error travels as a seed-compatible fake completion (HTTP
 * 200), whose markdown text chat UIs show as the assistant's message:
 *
 *   ### **Proxy error (HTTP 429 Too Many Requests)**\n\n<message>\n\n----\n\n*<code>*\n\n
 *   <!-- oai-proxy-error -->
 *
 * The closing marker is what third-party clients look for to tell such a message from a reply.
 */
#ifndef OAI_APIERR_H
#define OAI_APIERR_H

#include <json-c/json.h>
#include <stddef.h>

enum api { API_OPENAI, API_ANTHROPIC };

/* apierr_body returns a new error object for HTTP status http in api's format. code is the
 * OpenAI "code" (NULL derives one from the status); param names the offending field or NULL.
 * The caller owns the result. */
json_object *apierr_body(enum api api, int http, const char *code, const char *message,
                         const char *param);

/* apierr_upstream maps an upstream HTTP error status to ours and an OpenAI code, the policy
 * every platform shares (SPEC §6; wire-formats §7.4): 400/422 stay 400; a refused credential
 * (401) is our problem, 502 upstream_auth_failed; 403 model_access_denied; 404 model_not_found;
 * 408 -> 504; 413 stays; 429 stays; 503/529 -> 503 server_is_overloaded; the rest 502. */
int apierr_upstream(long status, const char **code);

/* apierr_code is the OpenAI error code used for an OAI_E* status. */
const char *apierr_code(int err);

/* ---- seed-compatible error completions (ERROR_STYLE=completion) ---- */

/* The marker that ends the text of every error completion. */
#define APIERR_MARKER "<!-- oai-proxy-error -->"

/* apierr_completion_title writes "Proxy error (HTTP <http> <reason phrase>)" into out (n
 * bytes, truncated to fit), e.g. "Proxy error (HTTP 429 Too Many Requests)"; statuses without a
 * known phrase say "Error". */
void apierr_completion_title(int http, char *out, size_t n);

/* apierr_completion returns a new fake completion carrying the error whose status would have
 * been http: for API_OPENAI a chat.completion {id "error-<id>", choices[0].message.content the
 * text, finish_reason the title, usage zeros}; for API_ANTHROPIC a message {id
 * "msg_error_<id>", content [{text}], stop_reason "end_turn", usage zeros}. code and message as
 * in apierr_body (a NULL code is derived from the status; a message over 16 KiB is cut at a
 * character boundary); id is the request id (hex); model the client's model (NULL or "":
 * "unknown"). The caller owns the result; NULL if out of memory. */
json_object *apierr_completion(enum api api, int http, const char *code, const char *message,
                               const char *id, const char *model);

/* emit receives one SSE event: its name (NULL: no "event:" line) and its data. A non-zero
 * return stops the sequence. */
typedef int (*apierr_emit_fn)(void *ctx, const char *name, const char *data, size_t len);

/* apierr_completion_events sends the same error completion as a stream, one emit per event:
 * API_OPENAI one chat.completion.chunk {id "chatcmpl-<id>", delta {role, content: the text},
 * finish_reason the title}, then "[DONE]" (both unnamed); API_ANTHROPIC the named Messages
 * sequence message_start (empty content, usage zeros), content_block_start,
 * content_block_delta (text_delta with the text), content_block_stop, message_delta
 * (stop_reason "end_turn"), message_stop. Returns the first non-zero emit result (no further
 * event is sent), OAI_ENOMEM if an event could not be serialised, else 0. */
int apierr_completion_events(enum api api, int http, const char *code, const char *message,
                             const char *id, const char *model, apierr_emit_fn emit, void *ctx);

#endif
