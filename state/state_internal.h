/*
 * state_internal.h - the seam between the store's front and its Redis backend; not for use
 * outside state/.
 *
 * state.c holds the public functions of state.h, their argument checks (key and value limits,
 * ttl), the per-process mutex, the fork rule and the SQLite backend; a struct state opened by
 * state_open_url carries a struct state_redis, and every public call forwards to the function
 * below of the same name. state.c makes those calls with the struct state's mutex held, from the
 * process that opened it, and only with arguments that passed the same checks as for SQLite, so
 * none of them checks anything again. They return 0 or OAI_ESTATE (OAI_ENOMEM, OAI_ELIMIT).
 */
#ifndef OAI_STATE_INTERNAL_H
#define OAI_STATE_INTERNAL_H

#include "state/state.h"

#include <stddef.h>
#include <stdint.h>

struct state_redis;

/* ---- state_redis.c -------------------------------------------------------------------------- */

/* state_redis_open parses url, keeps prefix and tries to connect once (a failure there only
 * logs a warning). A bad url or prefix is OAI_ECONFIG with one log_error line (no password). */
__attribute__((warn_unused_result)) int state_redis_open(struct state_redis **out, const char *url,
                                                         const char *prefix);
/* state_redis_close drops the connection and frees rd; NULL is a no-op. */
void state_redis_close(struct state_redis *rd);
/* state_redis_url borrows the URL with its password replaced by "***". */
const char *state_redis_url(const struct state_redis *rd);
/* state_redis_healthy sends PING: 1 when it answers, else 0 with the reason in why[n]. */
int state_redis_healthy(struct state_redis *rd, char *why, size_t n);

/* state_redis_unsent says whether the last counter_add / counter_add_many that failed did so
 * before anything reached a server (not connected, or no connection to be had): it then had no
 * effect for sure, and may be sent again later without counting twice. A timeout never is. */
int state_redis_unsent(const struct state_redis *rd);

__attribute__((warn_unused_result)) int
state_redis_counter_add(struct state_redis *rd, const char *name, int64_t delta, int64_t *value);
__attribute__((warn_unused_result)) int state_redis_counter_get(struct state_redis *rd,
                                                                const char *name, int64_t *value);
__attribute__((warn_unused_result)) int
state_redis_counter_add_many(struct state_redis *rd, const struct state_delta *d, size_t n);
/* state_redis_kv_put is kv_set, or kv_add when only_new (then *wrote says whether it stored). */
__attribute__((warn_unused_result)) int state_redis_kv_put(struct state_redis *rd, const char *key,
                                                           const void *value, size_t len,
                                                           int64_t ttl_ms, int only_new,
                                                           int *wrote);
/* state_redis_kv_get stores a malloc'd NUL-terminated copy in *value (NULL when missing). */
__attribute__((warn_unused_result)) int state_redis_kv_get(struct state_redis *rd, const char *key,
                                                           char **value, size_t *len);
__attribute__((warn_unused_result)) int state_redis_kv_del(struct state_redis *rd, const char *key);
__attribute__((warn_unused_result)) int state_redis_kv_count(struct state_redis *rd,
                                                             const char *prefix, int64_t *count);
/* state_redis_scan is kv_scan (kv_fn), or counter_scan when counters is set (counter_fn). */
__attribute__((warn_unused_result)) int state_redis_scan(struct state_redis *rd, const char *prefix,
                                                         int counters, state_kv_fn kv_fn,
                                                         state_counter_fn counter_fn, void *ctx);
__attribute__((warn_unused_result)) int state_redis_lease_acquire(struct state_redis *rd,
                                                                  const char *name,
                                                                  const char *owner, int64_t ttl_ms,
                                                                  int *held);
__attribute__((warn_unused_result)) int
state_redis_lease_release(struct state_redis *rd, const char *name, const char *owner);

#endif
