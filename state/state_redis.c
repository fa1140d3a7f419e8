/*
 * state_redis.c - the Redis backend of the shared state store (see state.h and
 * state_internal.h).
 *
 * Every key starts with the configured prefix (STATE_PREFIX), then "c:" for a counter (a string
 * holding a decimal int64, changed with INCRBY), "k:" for a kv entry (a string with a PX
 * expiry) or "l:" for a lease (a string holding the owner, with a PX expiry). Each call is one
 * command, one MULTI/EXEC or one EVAL, so it is atomic for every host sharing the server.
 * Expiry is Redis's own (its clock, not the caller's); scans are SCAN + MGET and, unlike
 * SQLite's, no snapshot.
 *
 * One blocking hiredis connection per struct state, used under that struct's mutex (state.c).
 * Connecting and every command are bounded by TIMEOUT_MS. After any I/O or protocol failure the
 * connection is dropped and, for RETRY_MS, calls fail at once with OAI_ESTATE; the first call
 * after that reconnects. So a dead or hung server costs one request one timeout per RETRY_MS.
 * Warnings are limited to one per WARN_MS and never contain the password, a key or a value.
 */
#include "state/state_internal.h"

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>

#define TIMEOUT_MS    500
#define RETRY_MS      1000
#define WARN_MS       1000
#define DEFAULT_PORT  6379
#define SCAN_COUNT    "1000"
#define MGET_BATCH    100
#define SCAN_KEYS_MAX 1000000 /* a scan or count collecting more keys fails with OAI_ELIMIT */
/* Redis refuses a PX that overflows its clock; a ttl beyond a century is "forever" anyway. */
#define TTL_MAX_MS (INT64_C(100) * 365 * 24 * 3600 * 1000)
/* prefix (<= STATE_KEY_MAX) + "c:" + name (<= STATE_KEY_MAX) + NUL */
#define KEY_BUF (2 * STATE_KEY_MAX + 8)
/* the same with every byte escaped, and a trailing '*' */
#define PATTERN_BUF (2 * KEY_BUF + 2)

/* lease_acquire: take the lease when free (expired leases are gone) or renew our own. */
static const char acquire_lua[] = "local v = redis.call('GET', KEYS[1]) "
                                  "if v == false or v == ARGV[1] then "
                                  "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end "
                                  "return 0";
/* lease_release: delete only our own lease. */
static const char release_lua[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                  "return redis.call('DEL', KEYS[1]) end "
                                  "return 0";

struct state_redis {
    redisContext *c; /* NULL while disconnected */
    char *url;       /* the URL with its password replaced by "***" */
    char *host;      /* TCP host, or NULL when sock is set */
    char *sock;      /* unix socket path */
    int port;
    char *user; /* AUTH user, or NULL */
    char *pass; /* AUTH password, or NULL; never logged */
    long db;
    char *prefix;
    size_t prefix_len;
    int64_t retry_ms;         /* CLOCK_MONOTONIC: no connection attempt before this */
    int64_t warn_ms;          /* when the last warning was logged */
    int warned;               /* warn_ms is set */
    unsigned long suppressed; /* warnings dropped since the last one logged */
    int down;                 /* failed since the last connect: log the recovery */
    int unsent;               /* the last call failed before anything reached a server */
    char why[256];            /* the last failure, for state_redis_healthy */
};

/* A growing list of keys (malloc'd strings), for scans. */
struct keys {
    char **v;
    size_t n, cap;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* warn records a failure in rd->why and logs it, at most once per WARN_MS. */
__attribute__((format(printf, 2, 3))) static void warn(struct state_redis *rd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rd->why, sizeof rd->why, fmt, ap);
    va_end(ap);
    int64_t now = mono_ms();
    if (rd->warned && now - rd->warn_ms < WARN_MS) {
        rd->suppressed++;
        return;
    }
    if (rd->suppressed > 0)
        log_warn("state %s: %s (%lu more warnings suppressed before this one)", rd->url, rd->why,
                 rd->suppressed);
    else
        log_warn("state %s: %s", rd->url, rd->why);
    rd->warned = 1;
    rd->warn_ms = now;
    rd->suppressed = 0;
}

/* drop ends the connection after a failure (why given as for warn): a warning, and no new
 * connection for RETRY_MS. Returns OAI_ESTATE. */
__attribute__((format(printf, 2, 3))) static int drop(struct state_redis *rd, const char *fmt, ...)
{
    char msg[sizeof rd->why];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    warn(rd, "%s (calls fail for %d ms, then the next one reconnects)", msg, RETRY_MS);
    redisFree(rd->c);
    rd->c = NULL;
    rd->retry_ms = mono_ms() + RETRY_MS;
    rd->down = 1;
    return OAI_ESTATE;
}

/* io_fail drops the connection after hiredis reported an error on it. */
static int io_fail(struct state_redis *rd, const char *op)
{
    int oom = rd->c->err == REDIS_ERR_OOM;
    const char *what = rd->c->errstr[0] ? rd->c->errstr : "connection lost";
    if (rd->c->err == REDIS_ERR_IO && strcmp(what, strerror(EAGAIN)) == 0)
        what = "no answer in time"; /* SO_RCVTIMEO expired */
    (void)drop(rd, "%s failed: %s", op, what);
    return oom ? OAI_ENOMEM : OAI_ESTATE;
}

/* unexpected drops the connection after a reply of the wrong shape (and frees it). */
static int unexpected(struct state_redis *rd, const char *op, redisReply *r)
{
    int type = r ? r->type : 0;
    freeReplyObject(r);
    return drop(rd, "%s: unexpected reply (type %d)", op, type);
}

/* handshake sends AUTH and SELECT on a new connection; on failure the caller drops it. */
static int handshake(struct state_redis *rd, char *why, size_t n)
{
    char db[24];
    const char *argv[3];
    size_t lens[3];
    int argc = 0;
    redisReply *r = NULL;
    int rc = OAI_ESTATE;

    if (rd->pass != NULL) {
        argv[argc] = "AUTH";
        lens[argc++] = 4;
        if (rd->user != NULL) {
            argv[argc] = rd->user;
            lens[argc] = strlen(rd->user);
            argc++;
        }
        argv[argc] = rd->pass;
        lens[argc] = strlen(rd->pass);
        argc++;
        r = redisCommandArgv(rd->c, argc, argv, lens);
        if (r == NULL)
            goto done;
        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(why, n, "AUTH refused: %.150s", r->str);
            goto done;
        }
        freeReplyObject(r);
        r = NULL;
    }
    if (rd->db != 0) {
        argv[0] = "SELECT";
        lens[0] = 6;
        argv[1] = db;
        lens[1] = (size_t)snprintf(db, sizeof db, "%ld", rd->db);
        r = redisCommandArgv(rd->c, 2, argv, lens);
        if (r == NULL)
            goto done;
        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(why, n, "SELECT %ld refused: %.150s", rd->db, r->str);
            goto done;
        }
    }
    rc = 0;
done:
    freeReplyObject(r);
    return rc;
}

/* connect_now makes sure rd->c is a ready connection (AUTH and SELECT done), unless the last
 * failure was less than RETRY_MS ago: then it fails at once, without a log line. */
static int connect_now(struct state_redis *rd)
{
    struct timeval tv = {TIMEOUT_MS / 1000, (TIMEOUT_MS % 1000) * 1000};
    char why[sizeof rd->why] = "";

    if (rd->c != NULL)
        return 0;
    if (mono_ms() < rd->retry_ms)
        return OAI_ESTATE;
    if (rd->sock != NULL)
        rd->c = redisConnectUnixWithTimeout(rd->sock, tv);
    else
        rd->c = redisConnectWithTimeout(rd->host, rd->port, tv);
    if (rd->c == NULL) {
        warn(rd, "cannot connect: out of memory");
        rd->retry_ms = mono_ms() + RETRY_MS;
        return OAI_ENOMEM;
    }
    if (rd->c->err)
        return drop(rd, "cannot connect: %s", rd->c->errstr);
    if (redisSetTimeout(rd->c, tv) != REDIS_OK)
        return drop(rd, "cannot set a timeout on the connection");
    if (handshake(rd, why, sizeof why) < 0) {
        if (why[0] == '\0')
            return io_fail(rd, "connect");
        return drop(rd, "%s", why);
    }
    if (rd->down)
        log_info("state %s: connected", rd->url);
    rd->down = 0;
    return 0;
}

/* command runs one command (binary-safe arguments) and hands the reply to *out, which the
 * caller frees. An error reply (WRONGTYPE, NOAUTH...) is OAI_ESTATE with a warning, and the
 * connection stays; an I/O failure drops it. */
static int command(struct state_redis *rd, const char *op, int argc, const char **argv,
                   const size_t *lens, redisReply **out)
{
    *out = NULL;
    int reused = rd->c != NULL;
    int rc = connect_now(rd);
    rd->unsent = rc < 0;
    if (rc < 0)
        return rc;
    redisReply *r = redisCommandArgv(rd->c, argc, argv, lens);
    if (r == NULL && reused &&
        (rd->c->err == REDIS_ERR_EOF ||
         (rd->c->err == REDIS_ERR_IO && (strstr(rd->c->errstr, strerror(ECONNRESET)) ||
                                         strstr(rd->c->errstr, strerror(EPIPE)))))) {
        /* The server had closed this idle connection (a Redis restart): the command reached no
         * live server, so connect again now and send it once more. A timeout is never retried:
         * the command may have been applied. */
        redisFree(rd->c);
        rd->c = NULL;
        rc = connect_now(rd);
        rd->unsent = rc < 0;
        if (rc < 0)
            return rc;
        r = redisCommandArgv(rd->c, argc, argv, lens);
    }
    if (r == NULL)
        return io_fail(rd, op);
    if (r->type == REDIS_REPLY_ERROR) {
        warn(rd, "%s: Redis answered: %.150s", op, r->str);
        freeReplyObject(r);
        return OAI_ESTATE;
    }
    *out = r;
    return 0;
}

/* command_integer runs a command whose answer must be an integer and stores it in *value (may
 * be NULL); another kind of answer drops the connection (unexpected). */
static int command_integer(struct state_redis *rd, const char *op, int argc, const char **argv,
                           const size_t *lens, long long *value)
{
    redisReply *r = NULL;
    int rc = command(rd, op, argc, argv, lens, &r);
    if (rc < 0)
        return rc;
    if (r->type != REDIS_REPLY_INTEGER)
        return unexpected(rd, op, r);
    if (value != NULL)
        *value = r->integer;
    freeReplyObject(r);
    return 0;
}

/* key_of writes prefix + kind ("c:", "k:" or "l:") + name to out and returns its length. */
static size_t key_of(const struct state_redis *rd, const char *kind, const char *name,
                     char out[KEY_BUF])
{
    int n = snprintf(out, KEY_BUF, "%s%s%s", rd->prefix, kind, name);
    return n > 0 ? (size_t)n : 0;
}

/* ttl_arg formats a ttl for PX, capped at TTL_MAX_MS. */
static size_t ttl_arg(int64_t ttl_ms, char out[24])
{
    if (ttl_ms > TTL_MAX_MS)
        ttl_ms = TTL_MAX_MS;
    return (size_t)snprintf(out, 24, "%" PRId64, ttl_ms);
}

/* parse_i64 reads a whole decimal int64 (a counter's value). */
static int parse_i64(const char *s, size_t len, int64_t *out)
{
    char *end = NULL;
    if (len == 0 || len > 20)
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end != s + len)
        return -1;
    *out = (int64_t)v;
    return 0;
}

int state_redis_unsent(const struct state_redis *rd)
{
    return rd->unsent;
}

int state_redis_counter_add(struct state_redis *rd, const char *name, int64_t delta, int64_t *value)
{
    char key[KEY_BUF], num[24];
    const char *argv[] = {"INCRBY", key, num};
    size_t lens[] = {6, key_of(rd, "c:", name, key),
                     (size_t)snprintf(num, sizeof num, "%" PRId64, delta)};
    long long v = 0;
    int rc = command_integer(rd, "counter_add", 3, argv, lens, &v);
    if (rc == 0)
        *value = v;
    return rc;
}

int state_redis_counter_get(struct state_redis *rd, const char *name, int64_t *value)
{
    char key[KEY_BUF];
    const char *argv[] = {"GET", key};
    size_t lens[] = {3, key_of(rd, "c:", name, key)};
    redisReply *r = NULL;
    int rc = command(rd, "counter_get", 2, argv, lens, &r);
    if (rc < 0)
        return rc;
    *value = 0;
    if (r->type == REDIS_REPLY_STRING) {
        if (parse_i64(r->str, r->len, value) < 0) {
            warn(rd, "counter_get: the counter does not hold an integer");
            rc = OAI_ESTATE;
        }
    } else if (r->type != REDIS_REPLY_NIL) {
        return unexpected(rd, "counter_get", r);
    }
    freeReplyObject(r);
    return rc;
}

/* state_redis_counter_add_many pipelines MULTI, one INCRBY per delta and EXEC, then reads every
 * reply (so that the connection stays in step). Nothing is sent until the whole transaction is
 * buffered, and Redis applies none of it if the connection dies before EXEC. */
int state_redis_counter_add_many(struct state_redis *rd, const struct state_delta *d, size_t n)
{
    const char *op = "counter_add_many";
    char key[KEY_BUF], num[24];
    const char *argv[] = {"INCRBY", key, num};
    size_t lens[3] = {6, 0, 0};
    redisReply *r = NULL;
    int failed = 0, odd = 0;
    int rc;

    if (n == 0)
        return 0;
    rc = connect_now(rd);
    rd->unsent = rc < 0;
    if (rc < 0)
        return rc;
    if (redisAppendCommand(rd->c, "MULTI") != REDIS_OK)
        return io_fail(rd, op);
    for (size_t i = 0; i < n; i++) {
        lens[1] = key_of(rd, "c:", d[i].name, key);
        lens[2] = (size_t)snprintf(num, sizeof num, "%" PRId64, d[i].delta);
        if (redisAppendCommandArgv(rd->c, 3, argv, lens) != REDIS_OK)
            return io_fail(rd, op);
    }
    if (redisAppendCommand(rd->c, "EXEC") != REDIS_OK)
        return io_fail(rd, op);
    /* MULTI answers OK, each INCRBY QUEUED, EXEC the array of results (or an error). */
    for (size_t i = 0; i < n + 2; i++) {
        if (redisGetReply(rd->c, (void **)&r) != REDIS_OK)
            return io_fail(rd, op);
        if (r->type == REDIS_REPLY_ERROR) {
            if (!failed)
                warn(rd, "%s: Redis answered: %.150s", op, r->str);
            failed = 1;
        } else if (i < n + 1) {
            odd |= r->type != REDIS_REPLY_STATUS;
        } else if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
            failed = 1; /* nil: the transaction was aborted */
            odd |= r->type != REDIS_REPLY_NIL;
        } else {
            for (size_t j = 0; j < n && !failed; j++) {
                if (r->element[j]->type == REDIS_REPLY_ERROR) {
                    warn(rd, "%s: Redis answered: %.150s", op, r->element[j]->str);
                    failed = 1;
                }
            }
        }
        freeReplyObject(r);
        r = NULL;
    }
    if (odd)
        return unexpected(rd, op, NULL);
    return failed ? OAI_ESTATE : 0;
}

int state_redis_kv_put(struct state_redis *rd, const char *key, const void *value, size_t len,
                       int64_t ttl_ms, int only_new, int *wrote)
{
    char k[KEY_BUF], ttl[24];
    const char *argv[6] = {"SET", k, len > 0 ? value : ""};
    size_t lens[6] = {3, key_of(rd, "k:", key, k), len};
    int argc = 3;
    redisReply *r = NULL;
    const char *op = only_new ? "kv_add" : "kv_set";

    if (only_new) {
        argv[argc] = "NX";
        lens[argc++] = 2;
    }
    if (ttl_ms > 0) {
        argv[argc] = "PX";
        lens[argc++] = 2;
        argv[argc] = ttl;
        lens[argc++] = ttl_arg(ttl_ms, ttl);
    }
    int rc = command(rd, op, argc, argv, lens, &r);
    if (rc < 0)
        return rc;
    if (r->type == REDIS_REPLY_STATUS)
        *wrote = 1;
    else if (r->type == REDIS_REPLY_NIL && only_new)
        *wrote = 0;
    else
        return unexpected(rd, op, r);
    freeReplyObject(r);
    return 0;
}

int state_redis_kv_get(struct state_redis *rd, const char *key, char **value, size_t *len)
{
    char k[KEY_BUF];
    const char *argv[] = {"GET", k};
    size_t lens[] = {3, key_of(rd, "k:", key, k)};
    redisReply *r = NULL;
    int rc = command(rd, "kv_get", 2, argv, lens, &r);
    if (rc < 0)
        return rc;
    *value = NULL;
    *len = 0;
    if (r->type == REDIS_REPLY_NIL)
        goto done;
    if (r->type != REDIS_REPLY_STRING)
        return unexpected(rd, "kv_get", r);
    if (r->len > STATE_VALUE_MAX) {
        warn(rd, "kv_get: a value of %zu bytes is over STATE_VALUE_MAX", r->len);
        rc = OAI_ELIMIT;
        goto done;
    }
    *value = malloc(r->len + 1);
    if (*value == NULL) {
        rc = OAI_ENOMEM;
        goto done;
    }
    memcpy(*value, r->str, r->len);
    (*value)[r->len] = '\0';
    *len = r->len;
done:
    freeReplyObject(r);
    return rc;
}

int state_redis_kv_del(struct state_redis *rd, const char *key)
{
    char k[KEY_BUF];
    const char *argv[] = {"DEL", k};
    size_t lens[] = {3, key_of(rd, "k:", key, k)};
    return command_integer(rd, "kv_del", 2, argv, lens, NULL);
}

static void keys_free(struct keys *ks)
{
    for (size_t i = 0; i < ks->n; i++)
        free(ks->v[i]);
    free(ks->v);
    memset(ks, 0, sizeof *ks);
}

/* keys_push appends a copy of s[len]. */
static int keys_push(struct keys *ks, const char *s, size_t len)
{
    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? 2 * ks->cap : 64;
        char **v = realloc(ks->v, cap * sizeof *v);
        if (v == NULL)
            return OAI_ENOMEM;
        ks->v = v;
        ks->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return OAI_ENOMEM;
    memcpy(copy, s, len);
    copy[len] = '\0';
    ks->v[ks->n++] = copy;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* glob_escape appends s to out at position at with the glob characters of SCAN MATCH escaped. */
static size_t glob_escape(char *out, size_t at, const char *s)
{
    for (; *s != '\0'; s++) {
        if (strchr("*?[]\\", *s) != NULL)
            out[at++] = '\\';
        out[at++] = *s;
    }
    return at;
}

/* scan_keys collects, sorted and without duplicates (SCAN may repeat a key), the keys of kind
 * ("c:" or "k:") whose name starts with prefix. */
static int scan_keys(struct state_redis *rd, const char *op, const char *kind, const char *prefix,
                     struct keys *ks)
{
    char pattern[PATTERN_BUF], cursor[32] = "0";
    size_t plen = glob_escape(pattern, 0, rd->prefix);
    plen = glob_escape(pattern, plen, kind);
    plen = glob_escape(pattern, plen, prefix);
    pattern[plen++] = '*';
    pattern[plen] = '\0';
    const char *argv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_COUNT};
    size_t lens[] = {4, 0, 5, plen, 5, strlen(SCAN_COUNT)};
    redisReply *r = NULL;
    int rc = 0;

    do {
        lens[1] = strlen(cursor);
        rc = command(rd, op, 6, argv, lens, &r);
        if (rc < 0)
            return rc;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof cursor ||
            r->element[1]->type != REDIS_REPLY_ARRAY)
            return unexpected(rd, op, r);
        memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
        const redisReply *found = r->element[1];
        for (size_t i = 0; rc == 0 && i < found->elements; i++) {
            const redisReply *e = found->element[i];
            /* A key with a NUL in it is not one of ours. */
            if (e->type == REDIS_REPLY_STRING && memchr(e->str, '\0', e->len) == NULL)
                rc = keys_push(ks, e->str, e->len);
        }
        freeReplyObject(r);
        r = NULL;
        if (rc == 0 && ks->n > SCAN_KEYS_MAX) {
            warn(rd, "%s: more than %d keys match", op, SCAN_KEYS_MAX);
            rc = OAI_ELIMIT;
        }
    } while (rc == 0 && strcmp(cursor, "0") != 0);
    if (rc < 0)
        return rc;
    if (ks->n > 1)
        qsort(ks->v, ks->n, sizeof *ks->v, cmp_str);
    size_t kept = 0;
    for (size_t i = 0; i < ks->n; i++) {
        if (kept > 0 && strcmp(ks->v[kept - 1], ks->v[i]) == 0)
            free(ks->v[i]);
        else
            ks->v[kept++] = ks->v[i];
    }
    ks->n = kept;
    return 0;
}

/* state_redis_kv_count counts what SCAN finds; Redis skips expired keys while scanning. */
int state_redis_kv_count(struct state_redis *rd, const char *prefix, int64_t *count)
{
    struct keys ks = {0};
    int rc = scan_keys(rd, "kv_count", "k:", prefix, &ks);
    *count = rc == 0 ? (int64_t)ks.n : 0;
    keys_free(&ks);
    return rc;
}

/* state_redis_scan reads the values of the sorted keys with MGET, MGET_BATCH at a time, and
 * hands each to the callback (a key gone since the SCAN is skipped). */
int state_redis_scan(struct state_redis *rd, const char *prefix, int counters, state_kv_fn kv_fn,
                     state_counter_fn counter_fn, void *ctx)
{
    const char *op = counters ? "counter_scan" : "kv_scan";
    const char *argv[MGET_BATCH + 1];
    size_t lens[MGET_BATCH + 1];
    struct keys ks = {0};
    redisReply *r = NULL;
    size_t strip = rd->prefix_len + 2;
    int rc = scan_keys(rd, op, counters ? "c:" : "k:", prefix, &ks);

    argv[0] = "MGET";
    lens[0] = 4;
    for (size_t at = 0; rc == 0 && at < ks.n; at += MGET_BATCH) {
        size_t m = ks.n - at < MGET_BATCH ? ks.n - at : MGET_BATCH;
        for (size_t j = 0; j < m; j++) {
            argv[j + 1] = ks.v[at + j];
            lens[j + 1] = strlen(ks.v[at + j]);
        }
        rc = command(rd, op, (int)m + 1, argv, lens, &r);
        if (rc < 0)
            break;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != m) {
            rc = unexpected(rd, op, r);
            break;
        }
        for (size_t j = 0; rc == 0 && j < m; j++) {
            const redisReply *e = r->element[j];
            const char *name = ks.v[at + j] + strip;
            int64_t v = 0;
            if (e->type == REDIS_REPLY_NIL)
                continue; /* expired or deleted since the SCAN */
            if (e->type != REDIS_REPLY_STRING) {
                rc = unexpected(rd, op, r);
                r = NULL;
            } else if (!counters) {
                rc = kv_fn(ctx, name, e->str, e->len);
            } else if (parse_i64(e->str, e->len, &v) < 0) {
                warn(rd, "%s: a counter does not hold an integer", op);
                rc = OAI_ESTATE;
            } else {
                rc = counter_fn(ctx, name, v);
            }
        }
        freeReplyObject(r);
        r = NULL;
    }
    keys_free(&ks);
    return rc;
}

int state_redis_lease_acquire(struct state_redis *rd, const char *name, const char *owner,
                              int64_t ttl_ms, int *held)
{
    char key[KEY_BUF], ttl[24];
    const char *argv[] = {"EVAL", acquire_lua, "1", key, owner, ttl};
    size_t lens[] = {4,
                     sizeof acquire_lua - 1,
                     1,
                     key_of(rd, "l:", name, key),
                     strlen(owner),
                     ttl_arg(ttl_ms, ttl)};
    long long v = 0;
    int rc = command_integer(rd, "lease_acquire", 6, argv, lens, &v);
    if (rc == 0)
        *held = v == 1;
    return rc;
}

int state_redis_lease_release(struct state_redis *rd, const char *name, const char *owner)
{
    char key[KEY_BUF];
    const char *argv[] = {"EVAL", release_lua, "1", key, owner};
    size_t lens[] = {4, sizeof release_lua - 1, 1, key_of(rd, "l:", name, key), strlen(owner)};
    return command_integer(rd, "lease_release", 5, argv, lens, NULL);
}

int state_redis_healthy(struct state_redis *rd, char *why, size_t n)
{
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    redisReply *r = NULL;
    int rc = command(rd, "PING", 1, argv, lens, &r);
    if (rc == 0 && (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "PONG") != 0)) {
        rc = unexpected(rd, "PING", r);
        r = NULL;
    }
    freeReplyObject(r);
    if (rc == 0)
        return 1;
    if (why != NULL && n > 0)
        snprintf(why, n, "Redis at %s: %s", rd->url, rd->why[0] ? rd->why : "unavailable");
    return 0;
}

/* ---- opening ------------------------------------------------------------------------------- */

/* redact copies url with the password of its user information (up to the last '@', so that a
 * password holding a raw '/', '?' or '@' is hidden whole) replaced by "***". */
static char *redact(const char *url)
{
    const char *start = strstr(url, "://");
    start = start != NULL ? start + 3 : url;
    const char *at = strrchr(start, '@');
    if (at == NULL)
        return strdup(url);
    const char *colon = memchr(start, ':', (size_t)(at - start));
    size_t head = (size_t)((colon != NULL ? colon + 1 : start) - url);
    size_t tail = strlen(at);
    char *out = malloc(head + 3 + tail + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, url, head);
    memcpy(out + head, "***", 3);
    memcpy(out + head + 3, at, tail + 1);
    return out;
}

/* decode copies s[n] into *out (malloc'd) with %XX escapes decoded; a bad escape or an encoded
 * NUL is OAI_ECONFIG. */
static int decode(const char *s, size_t n, char **out)
{
    char *d = malloc(n + 1);
    size_t k = 0;
    if (d == NULL)
        return OAI_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            d[k++] = s[i];
            continue;
        }
        int hi = i + 2 < n ? util_hexval((unsigned char)s[i + 1]) : -1;
        int lo = hi >= 0 ? util_hexval((unsigned char)s[i + 2]) : -1;
        if (lo < 0 || (hi == 0 && lo == 0)) {
            free(d);
            return OAI_ECONFIG;
        }
        d[k++] = (char)(hi * 16 + lo);
        i += 2;
    }
    d[k] = '\0';
    *out = d;
    return 0;
}

/* parse_number reads s[n] as a decimal number in [min, max]. */
static int parse_number(const char *s, size_t n, long min, long max, long *out)
{
    long v = 0;
    if (n == 0 || n > 9)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* parse_tcp reads host[:port][/db] of a redis:// URL. */
static int parse_tcp(struct state_redis *rd, const char *p, char *why, size_t n)
{
    const char *end = p + strcspn(p, "/?#");
    const char *host = p, *host_end, *after;
    long v = 0;

    if (*end == '?' || *end == '#' || (*end == '/' && end[1 + strcspn(end + 1, "?#")] != '\0')) {
        snprintf(why, n,
                 "a redis:// URL takes no query or fragment (the database is the path: "
                 "redis://host:6379/2)");
        return OAI_ECONFIG;
    }
    if (*p == '[') {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (host_end == NULL) {
            snprintf(why, n, "an IPv6 host is missing its closing ']'");
            return OAI_ECONFIG;
        }
        after = host_end + 1;
    } else {
        host_end = memchr(p, ':', (size_t)(end - p));
        if (host_end == NULL)
            host_end = end;
        after = host_end;
    }
    if (host_end == host) {
        snprintf(why, n, "the URL names no host");
        return OAI_ECONFIG;
    }
    if (after < end &&
        (*after != ':' || parse_number(after + 1, (size_t)(end - after - 1), 1, 65535, &v) < 0)) {
        snprintf(why, n, "the port must be a number from 1 to 65535");
        return OAI_ECONFIG;
    }
    if (after < end)
        rd->port = (int)v;
    if (*end == '/' && end[1] != '\0' &&
        parse_number(end + 1, strlen(end + 1), 0, 999999999, &rd->db) < 0) {
        snprintf(why, n, "the database (the URL's path) must be a number, as in redis://host/2");
        return OAI_ECONFIG;
    }
    rd->host = strndup(host, (size_t)(host_end - host));
    return rd->host != NULL ? 0 : OAI_ENOMEM;
}

/* parse_unix reads /path/to/redis.sock[?db=N] of a redis+unix:// or unix:// URL. */
static int parse_unix(struct state_redis *rd, const char *p, char *why, size_t n)
{
    const char *q = p + strcspn(p, "?#");
    int rc;

    if (*p != '/') {
        snprintf(why, n,
                 "a unix socket URL needs an absolute path: "
                 "redis+unix:///path/to/redis.sock[?db=N]");
        return OAI_ECONFIG;
    }
    rc = decode(p, (size_t)(q - p), &rd->sock);
    if (rc == OAI_ECONFIG)
        snprintf(why, n, "the socket path has a bad %%-escape");
    if (rc < 0)
        return rc;
    if (strlen(rd->sock) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        snprintf(why, n, "the socket path is longer than %zu bytes",
                 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        return OAI_ECONFIG;
    }
    if (*q != '\0' && (*q != '?' || strncmp(q, "?db=", 4) != 0 ||
                       parse_number(q + 4, strlen(q + 4), 0, 999999999, &rd->db) < 0)) {
        snprintf(why, n, "a unix socket URL takes only ?db=N after the path");
        return OAI_ECONFIG;
    }
    return 0;
}

/* parse_url fills rd's address and credentials from url, or explains in why what is wrong
 * (never quoting the password). */
static int parse_url(struct state_redis *rd, const char *url, char *why, size_t n)
{
    const char *sep = strstr(url, "://");
    size_t slen = sep != NULL ? (size_t)(sep - url) : 0;
    int is_unix = 0;
    int rc;

    if (sep == NULL) {
        snprintf(why, n,
                 "not a URL: expected redis://[user:password@]host[:port][/db] or "
                 "redis+unix:///path/to/redis.sock[?db=N]");
        return OAI_ECONFIG;
    }
    if (slen == 6 && strncasecmp(url, "rediss", 6) == 0) {
        snprintf(why, n,
                 "rediss:// (TLS) is not supported: this build's hiredis (0.14) has no "
                 "TLS; put stunnel or a TLS-terminating proxy in front of Redis and "
                 "point STATE_URL at it with redis://");
        return OAI_ECONFIG;
    }
    if ((slen == 10 && strncasecmp(url, "redis+unix", 10) == 0) ||
        (slen == 4 && strncasecmp(url, "unix", 4) == 0)) {
        is_unix = 1;
    } else if (slen != 5 || strncasecmp(url, "redis", 5) != 0) {
        snprintf(why, n, "unknown scheme \"%.*s\": expected redis://, redis+unix:// or unix://",
                 (int)(slen < 20 ? slen : 20), url);
        return OAI_ECONFIG;
    }
    const char *p = sep + 3;
    const char *at = strrchr(p, '@');
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon == NULL || colon + 1 == at) {
            snprintf(why, n,
                     "the user information must be user:password or :password "
                     "(%%-encode reserved characters)");
            return OAI_ECONFIG;
        }
        rc = colon > p ? decode(p, (size_t)(colon - p), &rd->user) : 0;
        if (rc == 0)
            rc = decode(colon + 1, (size_t)(at - colon - 1), &rd->pass);
        if (rc == OAI_ECONFIG)
            snprintf(why, n, "the user information has a bad %%-escape");
        if (rc < 0)
            return rc;
        p = at + 1;
    }
    return is_unix ? parse_unix(rd, p, why, n) : parse_tcp(rd, p, why, n);
}

int state_redis_open(struct state_redis **out, const char *url, const char *prefix)
{
    struct state_redis *rd = NULL;
    char why[300] = "";
    int rc = OAI_ENOMEM;

    *out = NULL;
    if (url == NULL)
        url = "";
    if (prefix == NULL)
        prefix = "";
    rd = calloc(1, sizeof *rd);
    if (rd == NULL)
        goto done;
    rd->port = DEFAULT_PORT;
    rd->url = redact(url);
    rd->prefix = strdup(prefix);
    if (rd->url == NULL || rd->prefix == NULL)
        goto done;
    rd->prefix_len = strlen(prefix);
    if (rd->prefix_len > STATE_KEY_MAX) {
        snprintf(why, sizeof why, "STATE_PREFIX is longer than %d bytes", STATE_KEY_MAX);
        rc = OAI_ECONFIG;
        goto done;
    }
    rc = parse_url(rd, url, why, sizeof why);
    if (rc < 0)
        goto done;
    /* Only a warning when the server does not answer yet: the next calls retry. */
    if (connect_now(rd) == OAI_ENOMEM) {
        rc = OAI_ENOMEM;
        goto done;
    }
    *out = rd;
    rd = NULL;
    rc = 0;
done:
    if (rc < 0)
        log_error("STATE_URL %.300s: %s", rd != NULL && rd->url != NULL ? rd->url : "",
                  why[0] != '\0' ? why : "out of memory");
    state_redis_close(rd);
    return rc;
}

void state_redis_close(struct state_redis *rd)
{
    if (rd == NULL)
        return;
    redisFree(rd->c);
    if (rd->pass != NULL)
        explicit_bzero(rd->pass, strlen(rd->pass));
    free(rd->pass);
    free(rd->user);
    free(rd->host);
    free(rd->sock);
    free(rd->prefix);
    free(rd->url);
    free(rd);
}

const char *state_redis_url(const struct state_redis *rd)
{
    return rd->url;
}
