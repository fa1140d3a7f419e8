/*
 * keypool.h - the health of every upstream key, kept in the shared state store so that every
 * process (and, with a shared store, every host) sees the same cooldowns and revocations.
 *
 * A key is named by its hash (log_hash of the credential, "gcp-1a2b3c4d"); its state lives in
 * kv entries under "pool:<provider>:<hash>:" and counters under the same prefix:
 *
 *   used                 last time a request took it (ms)
 *   cool:<family>        "until streak": rate-limited for that family until `until` (the entry
 *                        outlives the cooldown by a minute so that the next 429 doubles it)
 *   quota                "until": over quota (long cooldown)
 *   revoked              the reason; stays until the key checker finds the key working
 *   models               the key checker's list of catalogue ids the key serves
 *   checked              when the checker last classified it (ms)
 *   err                  "ms status text" of its last failure
 *   slot:<i>             an in-flight request holding concurrency slot i (KEY_MAX_CONCURRENCY)
 *   prompts, tokens:<family>   counters
 *
 * Requests waiting for a cooling family register under "queue:<family>:<request id>".
 */
#ifndef OAI_KEYPOOL_H
#define OAI_KEYPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "state/state.h"

#define KEYPOOL_PREFIX       "pool:"
#define KEYPOOL_QUEUE_PREFIX "queue:"
#define KEYPOOL_COOL_FIRST   1000          /* without Retry-After: 1 s, doubling ... */
#define KEYPOOL_COOL_MAX     30000         /* ... up to 30 s (SPEC §11) */
#define KEYPOOL_QUOTA_MS     (3600 * 1000) /* an exhausted quota: an hour, or the next check */

/* What one upstream answer says about the key that made it. */
enum keypool_verdict {
    KEYPOOL_OK,        /* it answered */
    KEYPOOL_COOL,      /* 429 / 529 / 503: cool down (Retry-After, else 1 s doubling to 30 s) */
    KEYPOOL_QUOTA,     /* quota or credit exhausted: long cooldown */
    KEYPOOL_REVOKED,   /* credentials refused: unusable until the checker finds it working */
    KEYPOOL_NOMODEL,   /* this key cannot use this model (the request tries elsewhere; the key
                          checker's model list is what remembers it) */
    KEYPOOL_TRANSIENT, /* network trouble or a server error: try elsewhere, record nothing */
    KEYPOOL_FATAL,     /* the request itself is wrong: no retry */
};

/* keypool_classify reads an upstream answer (HTTP status, 0 when the transfer failed; the
 * platform's error type or ""; the error message or "") as a verdict on the key. */
enum keypool_verdict keypool_classify(long status, const char *error_type, const char *message);
/* keypool_verdict_name: "ok", "cool", "quota", "revoked", "nomodel", "transient", "fatal". */
const char *keypool_verdict_name(enum keypool_verdict v);

struct keypool_key {
    const char *hash;    /* borrowed */
    int64_t used;        /* last taken (ms), 0 never */
    int64_t cool_until;  /* rate-limited for the family until (ms) */
    int streak;          /* cooldowns in a row (the next one doubles) */
    int64_t quota_until; /* over quota until (ms) */
    int revoked;
    int has_model; /* the checker's list names the model */
    int checked;   /* the checker has listed its models */
    int busy;      /* concurrency slots held */
};

/* The state of one provider's keys for one family and model, read in one scan. */
struct keypool {
    char provider[16];
    char family[48];
    char model[128];  /* upstream model id (logs) */
    char api_id[128]; /* catalogue id (the checker's lists), may be "" */
    int n;
    struct keypool_key *k;
};

/* keypool_load reads the state of keys hashes[0..n) (borrowed; they must outlive p). 0 or an
 * OAI_E* code (the store failed: p then holds every key as healthy). */
int keypool_load(struct keypool *p, struct state *st, const char *provider, const char *family,
                 const char *model, const char *api_id, const char *const *hashes, int n);
void keypool_free(struct keypool *p);

/* Where key i stands for this family and model at now. */
enum keypool_state {
    KEYSTATE_READY,      /* usable now */
    KEYSTATE_BUSY,       /* every concurrency slot taken */
    KEYSTATE_COOLING,    /* rate-limited for the family */
    KEYSTATE_NO_MODEL,   /* the checker found the model unavailable to it */
    KEYSTATE_OVER_QUOTA, /* over quota */
    KEYSTATE_REVOKED,    /* credentials refused */
};
enum keypool_state keypool_state(const struct keypool *p, int i, int cap, int64_t now);

/* keypool_usable: the key can serve this family and model, now or after a cooldown (it is not
 * revoked, not over quota, and has the model). */
int keypool_usable(const struct keypool *p, int i, int64_t now);

/* keypool_pick returns the ready key among allowed (NULL: all) that was used least recently
 * (ties: the lowest index), or -1. Then *soonest is when a usable key becomes ready (0 when no
 * usable key is left). */
int keypool_pick(const struct keypool *p, const unsigned char *allowed, int cap, int64_t now,
                 int64_t *soonest);

/* keypool_take marks key i used and, when cap > 0, takes a free concurrency slot for owner
 * (expiring after ttl_ms in case the process dies). *slot gets the slot or -1. Returns 0, or 1
 * when another process took the last slot first. */
int keypool_take(const struct keypool *p, struct state *st, int i, int cap, const char *owner,
                 int64_t ttl_ms, int *slot);
/* keypool_give releases a slot from keypool_take (slot < 0: nothing). */
void keypool_give(const struct keypool *p, struct state *st, int i, int slot);

/* keypool_judge records verdict v on key i (retry_after_ms: the upstream's, < 0 when none;
 * why: a short text for the log and the key's last error, never a secret) and logs the
 * decision with the key's hash. Returns the cooldown it set (ms), 0 for none. */
int64_t keypool_judge(struct keypool *p, struct state *st, int i, enum keypool_verdict v,
                      int64_t retry_after_ms, long status, const char *why);

/* keypool_set_checked records the checker's verdict on a key: the catalogue ids it serves
 * (comma list; NULL keeps the old list), revoked or not (clearing quota too when it works). */
int keypool_set_checked(struct state *st, const char *provider, const char *hash,
                        const char *models, int revoked, const char *why);

/* Waiting requests: entered while a request waits for a cooling family, left after. */
void keypool_queue_enter(struct state *st, const char *family, const char *id, int64_t ttl_ms);
void keypool_queue_leave(struct state *st, const char *family, const char *id);
int64_t keypool_queue_length(struct state *st, const char *family);

/* keypool_count_names fills the per-key usage counters' names ("pool:p:h:prompts" and
 * "pool:p:h:tokens:<family>") for the caller's batched counter add. */
void keypool_count_names(const char *provider, const char *hash, const char *family, char *prompts,
                         size_t np, char *tokens, size_t nt);

#endif
