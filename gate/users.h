/*
 * users.h - user tokens in the state store and the /admin/users REST API (the seed's shapes).
 *
 * A user is a JSON object under kv "user:<token>" holding what an admin sets: type (normal,
 * special, temporary), createdAt, expiresAt, disabledAt, disabledReason, tokenLimits {family:
 * tokens}, maxIps, nickname, adminNote, meta. What requests change lives apart, so that no
 * request rewrites the object: the addresses seen under "uip:<token>:<ip>", the last use under
 * "ulast:<token>", counters "user:<token>:prompts" and "user:<token>:tokens:<family>". A view
 * merges them back into the seed's user shape (token, ip[], promptCount, tokenCounts{},
 * lastUsedAt, ...).
 */
#ifndef OAI_USERS_H
#define OAI_USERS_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "state/state.h"

#define USERS_PREFIX         "user:"
#define USERS_IP_PREFIX      "uip:"
#define USERS_LAST_PREFIX    "ulast:"
#define USERS_COUNTER_PREFIX "user:"

/* users_token_ok: a token is 1..63 characters of A-Z a-z 0-9 - _ (what we mint is a UUID). */
int users_token_ok(const char *token);

/* users_load reads the stored user (*out NULL when there is none). */
int users_load(struct state *st, const char *token, json_object **out);

/* Field readers over a stored user (absent or wrong type: NULL / dflt). */
const char *users_str(json_object *u, const char *key);
int64_t users_int(json_object *u, const char *key, int64_t dflt);

/* users_admin serves /admin/users[/<token>]: method, the path after "/admin/users" ("" or
 * "/<token>"), the query string (may be NULL) and the parsed body (may be NULL). Returns the
 * HTTP status with the reply body in *out, or with a message in err (4xx/5xx, *out NULL). */
int users_admin(struct state *st, const char *method, const char *tail, const char *query,
                json_object *body, json_object **out, char *err, size_t n);

#endif
