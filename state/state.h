/*
 * state.h - the shared state store: what must agree across every process and thread of the
 * gateway (counters, key/value entries with expiry, leases).
 *
 * The interface is deliberately narrow so that two backends serve it with the same functions.
 * The SQLite backend (state_open) keeps one WAL-mode database file at STATE_PATH; any number of
 * processes of one host may open it. The Redis backend (state_open_url) keeps everything under
 * one key prefix on a Redis server that several hosts share. One struct state may be shared by
 * all threads of a process (calls are serialised inside), but never crosses fork(). Every call
 * is one atomic operation across processes (and, on Redis, hosts); scans are the exception on
 * Redis (see state_kv_scan).
 *
 * Keys and names are NUL-terminated strings of at most STATE_KEY_MAX bytes. Values are byte
 * strings of at most STATE_VALUE_MAX bytes. Times are milliseconds (CLOCK_REALTIME).
 * All functions return 0 or a negative OAI_E* code (OAI_ESTATE for store failures,
 * OAI_ELIMIT for oversized keys/values, OAI_ENOMEM).
 */
#ifndef OAI_STATE_H
#define OAI_STATE_H

#include <stddef.h>
#include <stdint.h>

#define STATE_KEY_MAX 512

/* Counters shared by every layer (the info page reads what the upstream layer counts). */
#define STATE_PROMPTS   "proompts" /* answered prompts */
#define STATE_TOKENS    "tokens"   /* tokens reported by upstreams; also "tokens:<family>" */
#define STATE_VALUE_MAX (1024 * 1024)

struct state;

/* state_open opens (creating if needed) the store at path; *out is the caller's to close.
 * A path whose directory is missing or unwritable fails with OAI_ESTATE and a log line. */
__attribute__((warn_unused_result)) int state_open(struct state **out, const char *path);
/* state_open_url opens a store on Redis (STATE_URL): redis://[user:password@]host[:port][/db]
 * (port 6379 and db 0 by default; an IPv6 host goes in brackets) or
 * redis+unix://[user:password@]/path/to/redis.sock[?db=N] (also unix://...). The user and the
 * password are percent-decoded. Keys are namespaced with prefix (STATE_PREFIX, e.g.
 * "oai-fcgi:"; NULL is ""). A bad URL, rediss:// (this build has no TLS: put stunnel or a
 * TLS-terminating proxy in front of Redis) or a prefix longer than STATE_KEY_MAX is
 * OAI_ECONFIG with one log line that never shows the password. An unreachable server is NOT
 * an error here: a warning is logged and the connection is retried on use. Connecting and
 * every command are bounded by 500 ms; after a failure, calls fail at once with OAI_ESTATE for
 * a second, then the next call reconnects. The process must ignore SIGPIPE. *out is the
 * caller's to close. */
__attribute__((warn_unused_result)) int state_open_url(struct state **out, const char *url,
                                                       const char *prefix);
/* state_close closes the store (after a last try to write held counter updates); NULL
 * is a no-op. */
void state_close(struct state *st);
/* state_path borrows the path the store was opened with; for Redis, the URL with its password
 * replaced by "***" (safe to log, and stable enough to serve as a cache key). */
const char *state_path(const struct state *st);
/* state_healthy returns 1 if the store answers now (Redis: PING; SQLite: unless a recent call
 * failed and no write succeeded since), else 0 with the reason in why[n] (may be NULL; never a
 * secret). */
int state_healthy(struct state *st, char *why, size_t n);

/* state_counter_add adds delta to counter name (created at 0) and stores the new value in
 * *value (may be NULL). With value NULL, an update the store cannot take is kept for later (see
 * state_checkpoint) and 0 returned: on SQLite always, on Redis when it never reached a server. */
__attribute__((warn_unused_result)) int state_counter_add(struct state *st, const char *name,
                                                          int64_t delta, int64_t *value);
/* state_counter_get reads counter name; a missing counter reads 0. */
__attribute__((warn_unused_result)) int state_counter_get(struct state *st, const char *name,
                                                          int64_t *value);

/* state_kv_set stores key=value, replacing any entry. ttl_ms > 0 makes it expire after that
 * long; ttl_ms == 0 keeps it forever. */
__attribute__((warn_unused_result)) int state_kv_set(struct state *st, const char *key,
                                                     const void *value, size_t len, int64_t ttl_ms);
/* state_kv_add stores key=value only if no live entry exists; *added says whether it did. */
__attribute__((warn_unused_result)) int state_kv_add(struct state *st, const char *key,
                                                     const void *value, size_t len, int64_t ttl_ms,
                                                     int *added);
/* state_kv_get copies a live entry into a malloc'd, NUL-terminated *value (caller frees) and
 * its length into *len (may be NULL). A missing or expired entry gives *value = NULL, rc 0. */
__attribute__((warn_unused_result)) int state_kv_get(struct state *st, const char *key,
                                                     char **value, size_t *len);
/* state_kv_del removes an entry (missing is not an error). */
__attribute__((warn_unused_result)) int state_kv_del(struct state *st, const char *key);
/* state_kv_count counts live entries whose key starts with prefix. */
__attribute__((warn_unused_result)) int state_kv_count(struct state *st, const char *prefix,
                                                       int64_t *count);

/* state_kv_scan calls fn(ctx, key, value, len) for each live entry whose key starts with prefix,
 * in key order (value is NOT NUL-terminated). fn must not call the store; a non-zero return
 * stops the scan and is returned. SQLite: one read, consistent across the entries it returns.
 * Redis: SCAN then MGET, not a snapshot: an entry written or deleted meanwhile may or may not
 * be seen, and one that expires between the two is skipped. */
typedef int (*state_kv_fn)(void *ctx, const char *key, const char *value, size_t len);
__attribute__((warn_unused_result)) int state_kv_scan(struct state *st, const char *prefix,
                                                      state_kv_fn fn, void *ctx);

/* state_counter_scan is state_kv_scan for counters whose name starts with prefix. */
typedef int (*state_counter_fn)(void *ctx, const char *name, int64_t value);
__attribute__((warn_unused_result)) int state_counter_scan(struct state *st, const char *prefix,
                                                           state_counter_fn fn, void *ctx);

/* state_counter_add_many adds every delta in one transaction (all or none; on Redis one
 * MULTI/EXEC, so a counter key holding something else than an integer fails only its own add).
 * Updates the store cannot take (SQLite: a lock held elsewhere, a full disk, an I/O error; Redis:
 * no connection to be had) are kept in memory and written with the next counter write that
 * succeeds; 0 then. */
struct state_delta {
    const char *name;
    int64_t delta;
};
__attribute__((warn_unused_result)) int
state_counter_add_many(struct state *st, const struct state_delta *d, size_t n);

/* state_lease_acquire takes lease name for owner for ttl_ms if it is free, expired, or
 * already held by owner (which renews it). *held says whether owner holds it now. */
__attribute__((warn_unused_result)) int state_lease_acquire(struct state *st, const char *name,
                                                            const char *owner, int64_t ttl_ms,
                                                            int *held);
/* state_lease_release gives the lease up if owner holds it. */
__attribute__((warn_unused_result)) int state_lease_release(struct state *st, const char *name,
                                                            const char *owner);

/* Checkpoints (no-ops on Redis, apart from the held updates). By default SQLite folds the WAL back into the database
 * from inside whichever write passes 1000 pages, which then waits for it (a tail-latency spike on a
 * request). A long-lived process calls state_background_checkpoints once, so that its writes never
 * do it, and state_checkpoint from ONE housekeeping thread (passive: it never blocks writers;
 * another process checkpointing at the same time makes it a no-op). */
int state_background_checkpoints(struct state *st);
/* state_checkpoint also writes the counter updates held back while the store could not take
 * them (either backend). */
int state_checkpoint(struct state *st);

/* state_now_ms is the store's clock (CLOCK_REALTIME in ms), exposed for tests and callers. */
int64_t state_now_ms(void);

#endif
