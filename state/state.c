/*
 * state.c - the shared state store's public functions (see state.h) and its SQLite backend.
 *
 * Every public function checks its arguments (the same limits for both backends), takes the
 * connection (the mutex, and the fork rule below), and then runs SQLite, or forwards to the
 * Redis backend (state_redis.c, through state_internal.h) when the store was opened with
 * state_open_url.
 *
 * One WAL-mode database file is shared by every process of the gateway; each process opens its
 * own connection, and all threads of a process share that connection behind a mutex. Every
 * call runs exactly one SQL statement in autocommit mode - an UPSERT, a conditional UPSERT with
 * RETURNING, a DELETE or a SELECT - so each call is a single transaction, atomic across
 * processes. Write statements take SQLite's write lock on their first step (waiting up to
 * BUSY_TIMEOUT_MS for it), so the read-then-decide of kv_add and lease_acquire cannot interleave
 * with another writer.
 *
 * Deadlines are absolute CLOCK_REALTIME milliseconds computed by the caller's process
 * (expires_ms, 0 = never). Reads treat rows past their deadline as absent; expired kv rows are
 * deleted at most once per PURGE_INTERVAL_MS per connection, through a partial index on the
 * deadline, so no call pays for a table scan.
 *
 * When SQLite cannot write (another program holds the write lock, a full disk, an I/O error),
 * or Redis cannot be reached at all, the counter updates that cannot wait - a request's usage and
 * metrics, a quota settlement - are held in memory (merged per counter, at most PENDING_MAX
 * counters; on Redis only when the update certainly never left) and written with the next
 * counter write that succeeds, or by state_checkpoint within a second of the store recovering,
 * or at the latest by state_close: accounting survives the fault unless it outlasts the process. After a write found the lock
 * taken for BUSY_TIMEOUT_MS, writes do not wait for it again for BUSY_BACKOFF_MS, so a lock
 * that is not let go costs each request nothing rather than seconds per write. state_healthy
 * reports a failure until a write succeeds, or for FAILED_NEWS_MS when nothing waits to be
 * written.
 *
 * A struct state must not cross fork(): a child opens its own (SQLite's file locks are per
 * process, and a Redis connection cannot be shared). Calls from the wrong process fail with
 * OAI_ESTATE.
 */
#include "state/state.h"

#include "common/err.h"
#include "common/log.h"
#include "state/state_internal.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define SCHEMA_VERSION    1
#define BUSY_TIMEOUT_MS   2000 /* contention between our writers is a matter of milliseconds */
#define BUSY_BACKOFF_MS   1000
#define PENDING_MAX       512
#define FAILED_NEWS_MS    10000
#define PURGE_INTERVAL_MS 1000

enum stmt_id {
    S_COUNTER_ADD,
    S_COUNTER_GET,
    S_COUNTER_BUMP,
    S_KV_SET,
    S_KV_ADD,
    S_KV_GET,
    S_KV_DEL,
    S_KV_COUNT_RANGE,
    S_KV_COUNT_FROM,
    S_KV_SCAN_RANGE,
    S_KV_SCAN_FROM,
    S_COUNTER_SCAN_RANGE,
    S_COUNTER_SCAN_FROM,
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_LEASE_ACQUIRE,
    S_LEASE_RELEASE,
    S_PURGE,
    S_COUNT
};

/* Parameters: ?1 key/name, ?2 value/owner/upper bound, ?3 deadline, ?4 now. */
static const char *const sqls[S_COUNT] = {
    [S_COUNTER_ADD] = "INSERT INTO counters(name, value) VALUES (?1, ?2) "
                      "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value "
                      "RETURNING value",
    [S_COUNTER_GET] = "SELECT value FROM counters WHERE name = ?1",
    /* counter_add_many: the same UPSERT without reading the value back */
    [S_COUNTER_BUMP] = "INSERT INTO counters(name, value) VALUES (?1, ?2) "
                       "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
    [S_KV_SET] = "INSERT INTO kv(key, value, expires_ms) VALUES (?1, ?2, ?3) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                 "expires_ms = excluded.expires_ms",
    /* Inserts, or replaces an expired row; RETURNING yields a row only when it wrote. */
    [S_KV_ADD] = "INSERT INTO kv(key, value, expires_ms) VALUES (?1, ?2, ?3) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                 "expires_ms = excluded.expires_ms "
                 "WHERE kv.expires_ms <> 0 AND kv.expires_ms <= ?4 "
                 "RETURNING 1",
    [S_KV_GET] = "SELECT value FROM kv WHERE key = ?1 AND (expires_ms = 0 OR expires_ms > ?4)",
    [S_KV_DEL] = "DELETE FROM kv WHERE key = ?1",
    /* Prefix match as a key range so that the primary-key index serves it. */
    [S_KV_COUNT_RANGE] = "SELECT count(*) FROM kv WHERE key >= ?1 AND key < ?2 "
                         "AND (expires_ms = 0 OR expires_ms > ?4)",
    [S_KV_COUNT_FROM] = "SELECT count(*) FROM kv WHERE key >= ?1 "
                        "AND (expires_ms = 0 OR expires_ms > ?4)",
    [S_KV_SCAN_RANGE] = "SELECT key, value FROM kv WHERE key >= ?1 AND key < ?2 "
                        "AND (expires_ms = 0 OR expires_ms > ?4) ORDER BY key",
    [S_KV_SCAN_FROM] = "SELECT key, value FROM kv WHERE key >= ?1 "
                       "AND (expires_ms = 0 OR expires_ms > ?4) ORDER BY key",
    [S_COUNTER_SCAN_RANGE] = "SELECT name, value FROM counters WHERE name >= ?1 AND name < ?2 "
                             "ORDER BY name",
    [S_COUNTER_SCAN_FROM] = "SELECT name, value FROM counters WHERE name >= ?1 ORDER BY name",
    /* counter_add_many: one write transaction around several S_COUNTER_ADD */
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    /* Takes a free or expired lease, or renews our own; a row comes back when we hold it. */
    [S_LEASE_ACQUIRE] = "INSERT INTO leases(name, owner, expires_ms) VALUES (?1, ?2, ?3) "
                        "ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, "
                        "expires_ms = excluded.expires_ms "
                        "WHERE leases.owner = excluded.owner OR leases.expires_ms <= ?4 "
                        "RETURNING 1",
    [S_LEASE_RELEASE] = "DELETE FROM leases WHERE name = ?1 AND owner = ?2",
    [S_PURGE] = "DELETE FROM kv WHERE expires_ms <> 0 AND expires_ms <= ?4",
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY, value BLOB, "
    "expires_ms INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS kv_expires ON kv(expires_ms) WHERE expires_ms <> 0;"
    "CREATE TABLE IF NOT EXISTS leases(name TEXT PRIMARY KEY, owner TEXT NOT NULL, "
    "expires_ms INTEGER NOT NULL);"
    "PRAGMA user_version = 1;";

struct state {
    struct state_redis *rd; /* the Redis backend, or NULL for SQLite (then the rest is used) */
    sqlite3 *db;
    char *path;         /* for Redis, the URL with the password replaced by "***" */
    pid_t pid;          /* the process that opened it */
    pthread_mutex_t mu; /* serialises every use of db and stmt[] */
    int mu_ready;
    int64_t last_purge_ms; /* guarded by mu */
    sqlite3_stmt *stmt[S_COUNT];
    sqlite3 *ckpt; /* state_checkpoint's own connection, so requests never wait for it */
    /* guarded by mu: */
    int busy_ms;            /* the busy timeout set on db */
    int64_t busy_until_ms;  /* no waiting for the write lock before then */
    int64_t failed_ms;      /* when a write last failed (0: the last write succeeded) */
    char failed_why[128];   /* and why */
    struct state_pending *pending; /* counter updates not written yet */
    size_t npending;
};

struct state_pending {
    char name[STATE_KEY_MAX + 1];
    int64_t delta;
};

/* state_now_ms is CLOCK_REALTIME in milliseconds: every process on the host shares it. */
int64_t state_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* deadline turns a ttl into an absolute expiry (0 = never), saturating instead of overflowing. */
static int64_t deadline(int64_t now, int64_t ttl_ms)
{
    if (ttl_ms <= 0)
        return 0;
    if (ttl_ms > INT64_MAX - now)
        return INT64_MAX;
    return now + ttl_ms;
}

/* check_key: NULL is a caller bug; longer than STATE_KEY_MAX is OAI_ELIMIT. */
static int check_key(const char *key)
{
    if (key == NULL)
        return OAI_EINTERNAL;
    if (strnlen(key, STATE_KEY_MAX + 1) > STATE_KEY_MAX)
        return OAI_ELIMIT;
    return 0;
}

/* sql_fail logs a failed operation (never keys or values) and maps the SQLite code. */
static int sql_fail(struct state *st, const char *op, int src)
{
    log_warn("state %s: %s failed: %s (%s)", st->path, op, sqlite3_errstr(src),
             sqlite3_errmsg(st->db));
    int64_t now = state_now_ms();
    if ((src & 0xff) == SQLITE_BUSY)
        st->busy_until_ms = now + BUSY_BACKOFF_MS;
    if ((src & 0xff) != SQLITE_NOMEM && (src & 0xff) != SQLITE_INTERNAL) {
        st->failed_ms = now;
        snprintf(st->failed_why, sizeof st->failed_why, "%s failed: %s", op, sqlite3_errstr(src));
    }
    return (src & 0xff) == SQLITE_NOMEM ? OAI_ENOMEM : OAI_ESTATE;
}

static int hold(struct state *st, const struct state_delta *d, size_t n);
static int add_many(struct state *st, const struct state_delta *d, size_t n);

/* enter takes the connection for one call; every successful enter is paired with leave. */
static int enter(struct state *st, const char *op)
{
    if (st == NULL)
        return OAI_EINTERNAL;
    if (st->pid != getpid()) {
        log_warn("state %s: %s called in a child process; open the store after fork()", st->path,
                 op);
        return OAI_ESTATE;
    }
    pthread_mutex_lock(&st->mu);
    if (st->db != NULL) {
        int want = state_now_ms() < st->busy_until_ms ? 0 : BUSY_TIMEOUT_MS;
        if (want != st->busy_ms && sqlite3_busy_timeout(st->db, want) == SQLITE_OK)
            st->busy_ms = want;
    }
    return 0;
}

/* leave resets the statement (dropping its bindings) and releases the connection. */
static void leave(struct state *st, sqlite3_stmt *s)
{
    if (s != NULL) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    pthread_mutex_unlock(&st->mu);
}

/* run steps s to completion. *rows (may be NULL) counts result rows; the first row's column 0
 * goes to *col0 (may be NULL). Writes with RETURNING commit only once stepped to the end. */
static int run(struct state *st, sqlite3_stmt *s, const char *op, int *rows, int64_t *col0)
{
    int n = 0;
    int src;
    for (;;) {
        src = sqlite3_step(s);
        if (src != SQLITE_ROW)
            break;
        if (n == 0 && col0 != NULL)
            *col0 = sqlite3_column_int64(s, 0);
        n++;
    }
    if (rows != NULL)
        *rows = n;
    if (src != SQLITE_DONE)
        return sql_fail(st, op, src);
    return 0;
}

/* bind_common binds key (?1), an optional text (?2) and now (?4, when the statement has one). */
static int bind_common(sqlite3_stmt *s, const char *key, const char *text2, int64_t now)
{
    int src = sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    if (src == SQLITE_OK && text2 != NULL)
        src = sqlite3_bind_text(s, 2, text2, -1, SQLITE_STATIC);
    if (src == SQLITE_OK && sqlite3_bind_parameter_count(s) >= 4)
        src = sqlite3_bind_int64(s, 4, now);
    return src;
}

/* purge deletes expired kv rows, at most once per PURGE_INTERVAL_MS; failures only log. */
static void purge(struct state *st, int64_t now)
{
    if (now - st->last_purge_ms < PURGE_INTERVAL_MS)
        return;
    st->last_purge_ms = now;
    sqlite3_stmt *s = st->stmt[S_PURGE];
    int src = sqlite3_bind_int64(s, 4, now);
    if (src == SQLITE_OK) {
        int rc = run(st, s, "purge", NULL, NULL);
        (void)rc; /* already logged; the rows stay invisible and go next time */
    } else {
        (void)sql_fail(st, "purge", src);
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* check_dir explains in why[] when the directory holding path cannot hold the database. */
static int check_dir(const char *path, char *why, size_t whylen)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    struct stat sb;
    int rc = OAI_ESTATE;

    if (slash == NULL) {
        snprintf(dir, sizeof dir, ".");
    } else if (slash == path) {
        snprintf(dir, sizeof dir, "/");
    } else if ((size_t)(slash - path) >= sizeof dir) {
        snprintf(why, whylen, "path is too long");
        goto done;
    } else {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    if (stat(dir, &sb) != 0) {
        if (errno == ENOENT)
            snprintf(why, whylen, "directory %.300s does not exist", dir);
        else
            snprintf(why, whylen, "directory %.300s: %s", dir, strerror(errno));
        goto done;
    }
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(why, whylen, "%.300s is not a directory", dir);
        goto done;
    }
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        snprintf(why, whylen, "%.300s is a directory, not a database file", path);
        goto done;
    }
    /* The database, its -wal and its -shm file are all created in this directory. */
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(why, whylen, "directory %.300s is not writable (%s)", dir, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    return rc;
}

/* pragma_text runs a one-row PRAGMA and copies its text answer into out. */
static int pragma_text(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    out[0] = '\0';
    if (src != SQLITE_OK)
        goto done;
    src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(s, 0);
        snprintf(out, outlen, "%s", t ? (const char *)t : "");
        src = SQLITE_OK;
    } else if (src == SQLITE_DONE) {
        src = SQLITE_OK;
    }
done:
    sqlite3_finalize(s);
    return src;
}

/* setup_schema creates the tables once, under the write lock, and checks the version. */
static int setup_schema(sqlite3 *db, char *why, size_t whylen)
{
    char ver[32];
    long v;
    int rc = OAI_ESTATE;
    int in_tx = 0;
    int src = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        snprintf(why, whylen, "cannot lock the database: %s", sqlite3_errmsg(db));
        goto done;
    }
    in_tx = 1;
    src = pragma_text(db, "PRAGMA user_version", ver, sizeof ver);
    if (src != SQLITE_OK) {
        snprintf(why, whylen, "cannot read the schema version: %s", sqlite3_errmsg(db));
        goto done;
    }
    v = strtol(ver, NULL, 10);
    if (v > SCHEMA_VERSION) {
        snprintf(why, whylen, "schema version %ld is newer than this build's (%d)", v,
                 SCHEMA_VERSION);
        goto done;
    }
    src = sqlite3_exec(db, schema_sql, NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        snprintf(why, whylen, "cannot create the tables: %s", sqlite3_errmsg(db));
        goto done;
    }
    src = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        snprintf(why, whylen, "cannot commit the schema: %s", sqlite3_errmsg(db));
        goto done;
    }
    in_tx = 0;
    rc = 0;
done:
    if (in_tx)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/*
 * state_open opens (creating if needed) the database at path: WAL journal, synchronous=NORMAL,
 * a BUSY_TIMEOUT_MS busy timeout, the schema, and every statement prepared once. On failure
 * *out is NULL, the result is OAI_ESTATE (OAI_ENOMEM when memory ran out), and exactly one
 * log_error line names the path and the reason. There is no fallback location.
 */
/* state_init sets what both backends share: the path (or redacted URL), the mutex, the pid. */
static int state_init(struct state *st, const char *path)
{
    st->path = strdup(path);
    if (st->path == NULL || pthread_mutex_init(&st->mu, NULL) != 0)
        return OAI_ENOMEM;
    st->mu_ready = 1;
    st->pid = getpid();
    return 0;
}

int state_open(struct state **out, const char *path)
{
    struct state *st = NULL;
    char why[512] = "";
    char mode[32];
    int rc = OAI_ESTATE;
    int src;

    *out = NULL;
    if (path == NULL || path[0] == '\0') {
        snprintf(why, sizeof why, "the path is empty");
        path = "";
        goto done;
    }
    rc = check_dir(path, why, sizeof why);
    if (rc < 0)
        goto done;
    rc = OAI_ENOMEM;
    st = calloc(1, sizeof *st);
    if (st == NULL || state_init(st, path) != 0)
        goto done;

    rc = OAI_ESTATE;
    src = sqlite3_open_v2(path, &st->db,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (src != SQLITE_OK) {
        snprintf(why, sizeof why, "cannot open the database: %s",
                 st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(src));
        goto done;
    }
    if (sqlite3_db_readonly(st->db, "main") != 0) {
        snprintf(why, sizeof why, "the database file is read-only");
        goto done;
    }
    sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
    st->busy_ms = BUSY_TIMEOUT_MS;
    /* Switching to WAL needs an exclusive lock, and SQLite reports SQLITE_BUSY without
     * consulting the busy handler when another process is doing the same (several gateway
     * processes starting together on a new file): retry within the busy timeout. */
    for (int waited = 0;; waited += 10) {
        src = pragma_text(st->db, "PRAGMA journal_mode=WAL", mode, sizeof mode);
        if ((src != SQLITE_BUSY && src != SQLITE_LOCKED) || waited >= BUSY_TIMEOUT_MS)
            break;
        usleep(10000);
    }
    if (src != SQLITE_OK) {
        snprintf(why, sizeof why, "cannot use the database: %s", sqlite3_errmsg(st->db));
        goto done;
    }
    if (strcmp(mode, "wal") != 0) {
        snprintf(why, sizeof why, "cannot enable WAL journal mode (got \"%s\")", mode);
        goto done;
    }
    src = sqlite3_exec(st->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        snprintf(why, sizeof why, "cannot set synchronous=NORMAL: %s", sqlite3_errmsg(st->db));
        goto done;
    }
    rc = setup_schema(st->db, why, sizeof why);
    if (rc < 0)
        goto done;
    rc = OAI_ESTATE;
    for (int i = 0; i < S_COUNT; i++) {
        src =
            sqlite3_prepare_v3(st->db, sqls[i], -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL);
        if (src != SQLITE_OK) {
            snprintf(why, sizeof why, "cannot prepare statement %d: %s", i, sqlite3_errmsg(st->db));
            goto done;
        }
    }
    *out = st;
    st = NULL;
    rc = 0;
done:
    if (rc < 0) {
        if (rc == OAI_ENOMEM && why[0] == '\0')
            snprintf(why, sizeof why, "out of memory");
        log_error("STATE_PATH %s: %s", path, why);
    }
    state_close(st);
    return rc;
}

int state_background_checkpoints(struct state *st)
{
    int rc = enter(st, "background_checkpoints");
    if (rc < 0)
        return rc;
    int src = st->rd != NULL ? SQLITE_OK : sqlite3_wal_autocheckpoint(st->db, 0);
    rc = src == SQLITE_OK ? 0 : sql_fail(st, "background_checkpoints", src);
    leave(st, NULL);
    return rc;
}

/* Only the housekeeping thread calls this. It takes the mutex only to write held counter
 * updates; the checkpoint uses a second connection, so that its page copies and fsync never hold
 * the mutex request threads wait on. */
int state_checkpoint(struct state *st)
{
    if (st == NULL || st->pid != getpid())
        return OAI_EINTERNAL;
    pthread_mutex_lock(&st->mu);
    if (st->npending) /* the store may take writes again */
        (void)add_many(st, NULL, 0);
    pthread_mutex_unlock(&st->mu);
    if (st->rd != NULL)
        return 0;
    if (!st->ckpt) {
        int src = sqlite3_open_v2(st->path, &st->ckpt, SQLITE_OPEN_READWRITE, NULL);
        if (src == SQLITE_OK)
            src = sqlite3_busy_timeout(st->ckpt, 100);
        if (src != SQLITE_OK) {
            log_warn("state %s: checkpoint connection: %s", st->path, sqlite3_errstr(src));
            sqlite3_close(st->ckpt);
            st->ckpt = NULL;
            return OAI_ESTATE;
        }
    }
    int src = sqlite3_wal_checkpoint_v2(st->ckpt, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (src == SQLITE_OK || src == SQLITE_BUSY || src == SQLITE_LOCKED)
        return 0;
    log_warn("state %s: checkpoint failed: %s", st->path, sqlite3_errmsg(st->ckpt));
    return OAI_ESTATE;
}

/* state_close tries once more to write held counter updates, finalises the statements, closes
 * the connection and frees st; NULL is a no-op.
 * No other thread may be using st. */
void state_close(struct state *st)
{
    if (st == NULL)
        return;
    if (st->npending && (st->db != NULL || st->rd != NULL)) { /* a last try (CGI has no later) */
        if (st->db != NULL)
            sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
        (void)add_many(st, NULL, 0);
    }
    state_redis_close(st->rd);
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    if (st->db != NULL && sqlite3_close(st->db) != SQLITE_OK)
        log_warn("state %s: close failed: %s", st->path, sqlite3_errmsg(st->db));
    sqlite3_close(st->ckpt);
    if (st->npending)
        log_warn("state %s: %zu held counter updates could not be written", st->path,
                 st->npending);
    free(st->pending);
    if (st->mu_ready)
        pthread_mutex_destroy(&st->mu);
    free(st->path);
    free(st);
}

/* state_path borrows the path given to state_open (or the redacted URL); valid until
 * state_close. */
const char *state_path(const struct state *st)
{
    return st->path;
}

/* state_open_url: the Redis backend (which parses the URL and logs its own failures) in a
 * struct state that carries only the mutex, the pid and the redacted URL. */
int state_open_url(struct state **out, const char *url, const char *prefix)
{
    struct state *st = NULL;
    struct state_redis *rd = NULL;
    int rc = state_redis_open(&rd, url, prefix);

    *out = NULL;
    if (rc < 0)
        return rc;
    rc = OAI_ENOMEM;
    st = calloc(1, sizeof *st);
    if (st == NULL)
        goto done;
    st->rd = rd;
    rd = NULL;
    if (state_init(st, state_redis_url(st->rd)) != 0)
        goto done;
    *out = st;
    st = NULL;
    rc = 0;
done:
    if (rc < 0)
        log_error("STATE_URL %s: out of memory", state_redis_url(st != NULL ? st->rd : rd));
    state_redis_close(rd);
    state_close(st);
    return rc;
}

/* state_healthy: SQLite is healthy unless its last write failed; Redis is asked (PING). */
int state_healthy(struct state *st, char *why, size_t n)
{
    int healthy;
    if (why != NULL && n > 0)
        why[0] = '\0';
    if (st == NULL || st->pid != getpid()) {
        if (why != NULL && n > 0)
            snprintf(why, n, "%s", st == NULL ? "no store" : "the store was opened before fork()");
        return 0;
    }
    pthread_mutex_lock(&st->mu);
    if (st->rd == NULL) {
        /* a failure is news for FAILED_NEWS_MS, and for as long as updates wait to be written */
        healthy = st->failed_ms == 0 ||
                  (!st->npending && state_now_ms() - st->failed_ms > FAILED_NEWS_MS);
        if (!healthy && why != NULL && n > 0)
            snprintf(why, n, "failing since %llds ago: %s%s",
                     (long long)((state_now_ms() - st->failed_ms) / 1000), st->failed_why,
                     st->npending ? " (usage held in memory until they succeed)" : "");
        pthread_mutex_unlock(&st->mu);
        return healthy;
    }
    healthy = state_redis_healthy(st->rd, why, n);
    pthread_mutex_unlock(&st->mu);
    return healthy;
}

/* state_counter_add: one UPSERT ... RETURNING, so the add and the read of the new value are
 * one transaction. */
int state_counter_add(struct state *st, const char *name, int64_t delta, int64_t *value)
{
    sqlite3_stmt *s = NULL;
    int64_t v = 0;
    int src;
    int rows = 0;
    int rc = check_key(name);
    if (rc < 0)
        goto done;
    rc = enter(st, "counter_add");
    if (rc < 0)
        goto done;
    if (st->rd != NULL) {
        rc = state_redis_counter_add(st->rd, name, delta, &v);
        if (rc == OAI_ESTATE && value == NULL && state_redis_unsent(st->rd)) {
            struct state_delta one = {name, delta}; /* it never left: keep it, as below */
            rc = hold(st, &one, 1);
        }
        goto unlock;
    }
    s = st->stmt[S_COUNTER_ADD];
    src = bind_common(s, name, NULL, 0);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(s, 2, delta);
    if (src != SQLITE_OK) {
        rc = sql_fail(st, "counter_add", src);
        goto unlock;
    }
    rc = run(st, s, "counter_add", &rows, &v);
    if (rc == 0 && rows != 1)
        rc = sql_fail(st, "counter_add", SQLITE_INTERNAL);
    if (rc == 0)
        st->failed_ms = 0;
    else if (rc == OAI_ESTATE && value == NULL) { /* nobody waits for the value: keep it */
        struct state_delta one = {name, delta};
        rc = hold(st, &one, 1);
    }
unlock:
    leave(st, s);
done:
    if (value != NULL)
        *value = rc == 0 ? v : 0;
    return rc;
}

/* state_counter_get: one SELECT; a missing counter reads 0. */
int state_counter_get(struct state *st, const char *name, int64_t *value)
{
    sqlite3_stmt *s = NULL;
    int64_t v = 0;
    int src;
    int rc = check_key(name);
    if (rc < 0)
        goto done;
    rc = enter(st, "counter_get");
    if (rc < 0)
        goto done;
    if (st->rd != NULL) {
        rc = state_redis_counter_get(st->rd, name, &v);
        goto unlock;
    }
    s = st->stmt[S_COUNTER_GET];
    src = bind_common(s, name, NULL, 0);
    if (src != SQLITE_OK) {
        rc = sql_fail(st, "counter_get", src);
        goto unlock;
    }
    rc = run(st, s, "counter_get", NULL, &v);
unlock:
    leave(st, s);
done:
    *value = rc == 0 ? v : 0;
    return rc;
}

/* check_entry validates the arguments shared by kv_set and kv_add. */
static int check_entry(const char *key, const void *value, size_t len, int64_t ttl_ms)
{
    int rc = check_key(key);
    if (rc < 0)
        return rc;
    if (len > STATE_VALUE_MAX)
        return OAI_ELIMIT;
    if ((value == NULL && len > 0) || ttl_ms < 0)
        return OAI_EINTERNAL;
    return 0;
}

/* put runs S_KV_SET or S_KV_ADD; *wrote says whether a row was written (kv_add). */
static int put(struct state *st, enum stmt_id id, const char *op, const char *key,
               const void *value, size_t len, int64_t ttl_ms, int *wrote)
{
    sqlite3_stmt *s = NULL;
    int64_t now;
    int rows = 0;
    int src;
    int rc = check_entry(key, value, len, ttl_ms);
    if (rc < 0)
        goto done;
    rc = enter(st, op);
    if (rc < 0)
        goto done;
    if (st->rd != NULL) {
        rc = state_redis_kv_put(st->rd, key, value, len, ttl_ms, id == S_KV_ADD, &rows);
        goto unlock;
    }
    now = state_now_ms();
    purge(st, now);
    s = st->stmt[id];
    /* A zero-length blob must not be bound from NULL, which would store SQL NULL. */
    src = bind_common(s, key, NULL, now);
    if (src == SQLITE_OK)
        src = sqlite3_bind_blob(s, 2, len > 0 ? value : "", (int)len, SQLITE_STATIC);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(s, 3, deadline(now, ttl_ms));
    if (src != SQLITE_OK) {
        rc = sql_fail(st, op, src);
        goto unlock;
    }
    rc = run(st, s, op, &rows, NULL);
unlock:
    leave(st, s);
done:
    if (wrote != NULL)
        *wrote = rc == 0 && rows > 0;
    return rc;
}

/* state_kv_set: one UPSERT replacing any entry. ttl_ms < 0 is a caller bug (OAI_EINTERNAL). */
int state_kv_set(struct state *st, const char *key, const void *value, size_t len, int64_t ttl_ms)
{
    return put(st, S_KV_SET, "kv_set", key, value, len, ttl_ms, NULL);
}

/* state_kv_add: one UPSERT whose DO UPDATE only fires over an expired row, with RETURNING to
 * tell whether it wrote; racing processes are serialised by the write lock, so exactly one
 * of them sees the key absent. */
int state_kv_add(struct state *st, const char *key, const void *value, size_t len, int64_t ttl_ms,
                 int *added)
{
    return put(st, S_KV_ADD, "kv_add", key, value, len, ttl_ms, added);
}

/* state_kv_get: one SELECT of the live row; the copy is malloc'd with a trailing NUL. */
int state_kv_get(struct state *st, const char *key, char **value, size_t *len)
{
    sqlite3_stmt *s = NULL;
    char *copy = NULL;
    size_t n = 0;
    int src;
    int rc = check_key(key);
    if (rc < 0)
        goto done;
    rc = enter(st, "kv_get");
    if (rc < 0)
        goto done;
    if (st->rd != NULL) {
        rc = state_redis_kv_get(st->rd, key, &copy, &n);
        goto unlock;
    }
    s = st->stmt[S_KV_GET];
    src = bind_common(s, key, NULL, state_now_ms());
    if (src == SQLITE_OK)
        src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        const void *p = sqlite3_column_blob(s, 0);
        int bytes = sqlite3_column_bytes(s, 0);
        n = bytes > 0 ? (size_t)bytes : 0;
        copy = malloc(n + 1);
        if (copy == NULL) {
            rc = OAI_ENOMEM;
            goto unlock;
        }
        if (n > 0 && p != NULL)
            memcpy(copy, p, n);
        copy[n] = '\0';
    } else if (src != SQLITE_DONE) {
        rc = sql_fail(st, "kv_get", src);
    }
unlock:
    leave(st, s);
done:
    if (rc < 0) {
        free(copy);
        copy = NULL;
        n = 0;
    }
    *value = copy;
    if (len != NULL)
        *len = n;
    return rc;
}

/* state_kv_del: one DELETE. */
int state_kv_del(struct state *st, const char *key)
{
    sqlite3_stmt *s = NULL;
    int src;
    int rc = check_key(key);
    if (rc < 0)
        goto done;
    rc = enter(st, "kv_del");
    if (rc < 0)
        goto done;
    if (st->rd != NULL) {
        rc = state_redis_kv_del(st->rd, key);
        goto unlock;
    }
    s = st->stmt[S_KV_DEL];
    src = bind_common(s, key, NULL, 0);
    if (src != SQLITE_OK) {
        rc = sql_fail(st, "kv_del", src);
        goto unlock;
    }
    rc = run(st, s, "kv_del", NULL, NULL);
unlock:
    leave(st, s);
done:
    return rc;
}

/* prefix_upper computes the exclusive upper bound of the key range [prefix, upper): the prefix
 * without its trailing 0xff bytes and with its last byte incremented. Returns 0 when there is no
 * upper bound (a prefix of only 0xff bytes, or empty). */
static size_t prefix_upper(const char *prefix, char upper[STATE_KEY_MAX + 1])
{
    size_t n = strlen(prefix);
    memcpy(upper, prefix, n + 1);
    while (n > 0 && (unsigned char)upper[n - 1] == 0xff)
        n--;
    if (n > 0) {
        upper[n - 1] = (char)((unsigned char)upper[n - 1] + 1);
        upper[n] = '\0';
    }
    return n;
}

/* state_kv_count: one SELECT count(*) over the key range of prefix, so the primary-key index
 * serves it. */
int state_kv_count(struct state *st, const char *prefix, int64_t *count)
{
    sqlite3_stmt *s = NULL;
    char upper[STATE_KEY_MAX + 1];
    int64_t c = 0;
    size_t n;
    int src;
    int rc = check_key(prefix);
    if (rc < 0)
        goto done;
    n = prefix_upper(prefix, upper);
    rc = enter(st, "kv_count");
    if (rc < 0)
        goto done;
    if (st->rd != NULL) {
        rc = state_redis_kv_count(st->rd, prefix, &c);
        goto unlock;
    }
    s = st->stmt[n > 0 ? S_KV_COUNT_RANGE : S_KV_COUNT_FROM];
    src = bind_common(s, prefix, n > 0 ? upper : NULL, state_now_ms());
    if (src != SQLITE_OK) {
        rc = sql_fail(st, "kv_count", src);
        goto unlock;
    }
    rc = run(st, s, "kv_count", NULL, &c);
unlock:
    leave(st, s);
done:
    *count = rc == 0 ? c : 0;
    return rc;
}

/* scan runs one of the range SELECTs (kv rows, or counters when counters is set) and hands each
 * row to the callback while the connection is held. */
static int scan(struct state *st, const char *prefix, int counters, state_kv_fn kv_fn,
                state_counter_fn counter_fn, void *ctx)
{
    sqlite3_stmt *s = NULL;
    char upper[STATE_KEY_MAX + 1];
    const char *op = counters ? "counter_scan" : "kv_scan";
    int src;
    int rc = check_key(prefix);
    if (rc < 0)
        return rc;
    size_t n = prefix_upper(prefix, upper);
    rc = enter(st, op);
    if (rc < 0)
        return rc;
    if (st->rd != NULL) {
        rc = state_redis_scan(st->rd, prefix, counters, kv_fn, counter_fn, ctx);
        leave(st, NULL);
        return rc;
    }
    enum stmt_id id = counters ? (n > 0 ? S_COUNTER_SCAN_RANGE : S_COUNTER_SCAN_FROM)
                               : (n > 0 ? S_KV_SCAN_RANGE : S_KV_SCAN_FROM);
    s = st->stmt[id];
    src = bind_common(s, prefix, n > 0 ? upper : NULL, state_now_ms());
    while (src == SQLITE_OK && (src = sqlite3_step(s)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(s, 0);
        if (!key)
            continue;
        if (counters) {
            rc = counter_fn(ctx, key, sqlite3_column_int64(s, 1));
        } else {
            const char *v = sqlite3_column_blob(s, 1);
            int bytes = sqlite3_column_bytes(s, 1);
            rc = kv_fn(ctx, key, v ? v : "", bytes > 0 ? (size_t)bytes : 0);
        }
        if (rc)
            break;
        src = SQLITE_OK;
    }
    if (!rc && src != SQLITE_DONE)
        rc = sql_fail(st, op, src);
    leave(st, s);
    return rc;
}

int state_kv_scan(struct state *st, const char *prefix, state_kv_fn fn, void *ctx)
{
    return scan(st, prefix, 0, fn, NULL, ctx);
}

int state_counter_scan(struct state *st, const char *prefix, state_counter_fn fn, void *ctx)
{
    return scan(st, prefix, 1, NULL, fn, ctx);
}

/* step_plain runs a statement without parameters or rows (BEGIN, COMMIT, ROLLBACK). */
static int step_plain(struct state *st, enum stmt_id id, const char *op)
{
    sqlite3_stmt *s = st->stmt[id];
    int rc = run(st, s, op, NULL, NULL);
    sqlite3_reset(s);
    return rc;
}

/* state_counter_add_many: BEGIN IMMEDIATE, one UPSERT per counter, COMMIT - one transaction,
 * so a reader sees all of the deltas or none. */
int state_counter_add_many(struct state *st, const struct state_delta *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = check_key(d[i].name);
        if (rc < 0)
            return rc;
    }
    int rc = enter(st, "counter_add_many");
    if (rc < 0)
        return rc;
    rc = add_many(st, d, n);
    leave(st, NULL);
    return rc;
}

/* add_many for Redis: the held updates and d[0..n) in one MULTI/EXEC. Updates that never left
 * are held; after a failure whose effect is unknown (a timeout), the held ones are given up
 * rather than risk counting them twice. With the connection taken. */
static int add_many_redis(struct state *st, const struct state_delta *d, size_t n)
{
    const struct state_delta *all = d;
    struct state_delta *joined = NULL;
    size_t total = n, held = st->npending;
    if (held) {
        joined = malloc((held + n) * sizeof *joined);
        if (!joined)
            return OAI_ENOMEM;
        for (size_t i = 0; i < held; i++)
            joined[i] = (struct state_delta){st->pending[i].name, st->pending[i].delta};
        for (size_t i = 0; i < n; i++)
            joined[held + i] = d[i];
        all = joined;
        total = held + n;
    }
    int rc = state_redis_counter_add_many(st->rd, all, total);
    free(joined);
    if (rc == 0 || !state_redis_unsent(st->rd)) {
        if (held)
            log_info("state %s: %zu held counter updates %s", st->path, held,
                     rc == 0 ? "written" : "given up (Redis did not answer; they may have been applied)");
        st->npending = 0;
        return rc;
    }
    return rc == OAI_ESTATE ? hold(st, d, n) : rc;
}

/* bump adds one delta inside add_many's transaction. */
static int bump(struct state *st, const char *name, int64_t delta)
{
    sqlite3_stmt *s = st->stmt[S_COUNTER_BUMP];
    int src = bind_common(s, name, NULL, 0);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(s, 2, delta);
    int rc = src != SQLITE_OK ? sql_fail(st, "counter_add_many", src)
                              : run(st, s, "counter_add_many", NULL, NULL);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

/* add_many writes the held updates and d[0..n) in one transaction; if it fails, d joins the
 * held updates. With the connection taken. */
static int add_many_redis(struct state *st, const struct state_delta *d, size_t n);
static int add_many(struct state *st, const struct state_delta *d, size_t n)
{
    if (n == 0 && st->npending == 0)
        return 0;
    if (st->rd != NULL)
        return add_many_redis(st, d, n);
    int rc = step_plain(st, S_BEGIN, "counter_add_many");
    for (size_t i = 0; rc == 0 && i < st->npending; i++)
        rc = bump(st, st->pending[i].name, st->pending[i].delta);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = bump(st, d[i].name, d[i].delta);
    if (rc == 0)
        rc = step_plain(st, S_COMMIT, "counter_add_many");
    if (rc != 0 && !sqlite3_get_autocommit(st->db))
        (void)step_plain(st, S_ROLLBACK, "counter_add_many");
    if (rc == 0) {
        if (st->npending)
            log_info("state %s: %zu held counter updates written", st->path, st->npending);
        st->npending = 0;
        st->failed_ms = 0;
        return 0;
    }
    return rc == OAI_ESTATE ? hold(st, d, n) : rc;
}

/* hold keeps counter updates that could not be written for the next write that can (merged
 * per counter, at most PENDING_MAX counters). 0 when all were kept, else OAI_ESTATE. With the
 * connection taken. */
static int hold(struct state *st, const struct state_delta *d, size_t n)
{
    size_t lost = 0;
    int was_empty = st->npending == 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < st->npending && strcmp(st->pending[k].name, d[i].name) != 0)
            k++;
        if (k == st->npending) {
            if (!st->pending)
                st->pending = calloc(PENDING_MAX, sizeof *st->pending);
            if (!st->pending || st->npending == PENDING_MAX) {
                lost++;
                continue;
            }
            snprintf(st->pending[k].name, sizeof st->pending[k].name, "%s", d[i].name);
            st->pending[k].delta = 0;
            st->npending++;
        }
        st->pending[k].delta += d[i].delta;
    }
    /* once when holding begins (the failure itself is logged where it happens), and each loss */
    if (lost || (was_empty && st->npending))
        log_warn("state %s: counter updates held in memory until the store takes them again%s",
                 st->path, lost ? "; some were lost (too many counters)" : "");
    return lost ? OAI_ESTATE : 0;
}

/* state_lease_acquire: one UPSERT whose DO UPDATE only fires when the row is ours or expired,
 * with RETURNING to tell whether we hold it. ttl_ms must be > 0 (else OAI_EINTERNAL). */
int state_lease_acquire(struct state *st, const char *name, const char *owner, int64_t ttl_ms,
                        int *held)
{
    sqlite3_stmt *s = NULL;
    int64_t now;
    int rows = 0;
    int src;
    int rc = check_key(name);
    if (rc == 0)
        rc = check_key(owner);
    if (rc < 0)
        goto done;
    if (ttl_ms <= 0) {
        rc = OAI_EINTERNAL;
        goto done;
    }
    rc = enter(st, "lease_acquire");
    if (rc < 0)
        goto done;
    if (st->rd != NULL) {
        rc = state_redis_lease_acquire(st->rd, name, owner, ttl_ms, &rows);
        goto unlock;
    }
    s = st->stmt[S_LEASE_ACQUIRE];
    now = state_now_ms();
    src = bind_common(s, name, owner, now);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(s, 3, deadline(now, ttl_ms));
    if (src != SQLITE_OK) {
        rc = sql_fail(st, "lease_acquire", src);
        goto unlock;
    }
    rc = run(st, s, "lease_acquire", &rows, NULL);
unlock:
    leave(st, s);
done:
    *held = rc == 0 && rows > 0;
    return rc;
}

/* state_lease_release: one DELETE matching name and owner, so another owner's lease stays. */
int state_lease_release(struct state *st, const char *name, const char *owner)
{
    sqlite3_stmt *s = NULL;
    int src;
    int rc = check_key(name);
    if (rc == 0)
        rc = check_key(owner);
    if (rc < 0)
        goto done;
    rc = enter(st, "lease_release");
    if (rc < 0)
        goto done;
    if (st->rd != NULL) {
        rc = state_redis_lease_release(st->rd, name, owner);
        goto unlock;
    }
    s = st->stmt[S_LEASE_RELEASE];
    src = bind_common(s, name, owner, 0);
    if (src != SQLITE_OK) {
        rc = sql_fail(st, "lease_release", src);
        goto unlock;
    }
    rc = run(st, s, "lease_release", NULL, NULL);
unlock:
    leave(st, s);
done:
    return rc;
}
