/*
 * apierr.h - error bodies in each client API's wire format.
 *
 *   OpenAI:    {"error":{"message":"…","type":"…","param":null|"…","code":"…"}}
 *   Anthropic: {"type":"error","error":{"type":"…","message":"…"}}
 */
#ifndef OAI_APIERR_H
#define OAI_APIERR_H

#include <json-c/json.h>

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

#endif
