/*
 * t_state.c - the state store: counters, kv with expiry, kv_add, prefix counts, leases, limits,
 * scans, and atomicity across processes and threads - against SQLite always, and against Redis
 * too when OAI_TEST_REDIS_URL names a server (redis://[user:password@]host[:port][/db] or
 * redis+unix:///path/to/redis.sock[?db=N]); that run uses keys under "t_state:<pid>:" only and
 * deletes them at the end. SQLite only: open failures and the file on disk. Redis only: key
 * layout, glob characters in scan prefixes, error replies, a wrong password. Checks of
 * state_open_url that need no server (bad URLs, an unreachable and a hung server) always run.
 */
#include "common/err.h"
#include "common/log.h"
#include "state/state.h"
#include "tests/unit/tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROCS     4
#define THREADS   4
#define ADDS      200
#define RACE_KEYS 50
#define TTL_MS    100 /* short expiry */
#define PAST_TTL  200 /* sleep long enough for TTL_MS to pass */

static char tmpdir[64];

/* A store under test: SQLite at path, or Redis at url with keys under prefix. */
struct target {
    const char *path;
    const char *url;
    const char *prefix;
};

static int target_open(const struct target *t, struct state **st)
{
    return t->url != NULL ? state_open_url(st, t->url, t->prefix) : state_open(st, t->path);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void msleep(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void join_path(char *out, size_t n, const char *leaf)
{
    snprintf(out, n, "%s/%s", tmpdir, leaf);
}

/* ---- capturing stderr (log lines) ---------------------------------------------------------- */

static int capture_begin(const char *file)
{
    fflush(stderr);
    int saved = dup(2);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    return saved;
}

/* capture_end restores stderr and returns what was logged (static buffer). */
static const char *capture_end(int saved, const char *file, int *lines)
{
    static char text[4096];
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    text[0] = '\0';
    *lines = 0;
    FILE *f = fopen(file, "r");
    if (f != NULL) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    for (const char *p = text; *p; p++)
        if (*p == '\n')
            (*lines)++;
    return text;
}

/* open_fails expects state_open(path) to fail with OAI_ESTATE and one log line naming path
 * and containing reason. */
static void open_fails(const char *path, const char *reason, const char *what)
{
    char logfile[256], name[256];
    struct state *st = (struct state *)&st; /* must be reset to NULL */
    int lines = 0;
    join_path(logfile, sizeof logfile, "stderr.log");
    int saved = capture_begin(logfile);
    int rc = state_open(&st, path);
    const char *logged = capture_end(saved, logfile, &lines);
    snprintf(name, sizeof name, "%s: OAI_ESTATE", what);
    is_int(rc, OAI_ESTATE, name);
    snprintf(name, sizeof name, "%s: *out is NULL", what);
    ok(st == NULL, name);
    snprintf(name, sizeof name, "%s: exactly one log line", what);
    is_int(lines, 1, name);
    snprintf(name, sizeof name, "%s: log names the path", what);
    has_str(logged, path, name);
    snprintf(name, sizeof name, "%s: log gives the reason", what);
    has_str(logged, reason, name);
    if (rc == 0)
        state_close(st);
}

/* ---- single-process behaviour -------------------------------------------------------------- */

static void test_counters(struct state *st)
{
    int64_t v = 99;
    is_int(state_counter_get(st, "c:missing", &v), 0, "counter_get missing: rc 0");
    is_int(v, 0, "counter_get missing: reads 0");
    is_int(state_counter_add(st, "c:a", 5, &v), 0, "counter_add +5: rc 0");
    is_int(v, 5, "counter_add +5 returns 5");
    is_int(state_counter_add(st, "c:a", -7, &v), 0, "counter_add -7: rc 0");
    is_int(v, -2, "counter_add -7 returns -2");
    is_int(state_counter_add(st, "c:a", 1, NULL), 0, "counter_add with NULL value");
    is_int(state_counter_get(st, "c:a", &v), 0, "counter_get: rc 0");
    is_int(v, -1, "counter_get reads -1");
    is_int(state_counter_add(st, "c:new", -3, &v), 0, "counter_add on a new counter");
    is_int(v, -3, "a new counter starts at 0");
    is_int(state_counter_get(st, "c:missing", &v), 0, "counter_get still missing");
    is_int(v, 0, "other counters are untouched");
}

static void test_kv(struct state *st)
{
    char *val = (char *)&val;
    size_t len = 99;
    is_int(state_kv_get(st, "k:missing", &val, &len), 0, "kv_get missing: rc 0");
    ok(val == NULL, "kv_get missing: NULL");
    is_int(len, 0, "kv_get missing: len 0");

    is_int(state_kv_set(st, "k:a", "hello", 5, 0), 0, "kv_set");
    is_int(state_kv_get(st, "k:a", &val, &len), 0, "kv_get: rc 0");
    is_str(val, "hello", "kv_get returns the value, NUL-terminated");
    is_int(len, 5, "kv_get length");
    free(val);

    is_int(state_kv_set(st, "k:a", "bye", 3, 0), 0, "kv_set overwrite");
    is_int(state_kv_get(st, "k:a", &val, NULL), 0, "kv_get with NULL len");
    is_str(val, "bye", "overwritten value");
    free(val);

    is_int(state_kv_set(st, "k:bin", "a\0b\0", 4, 0), 0, "kv_set binary value");
    is_int(state_kv_get(st, "k:bin", &val, &len), 0, "kv_get binary value");
    ok(val != NULL && len == 4 && memcmp(val, "a\0b\0", 4) == 0 && val[4] == '\0',
       "binary value round-trips with its length");
    free(val);

    is_int(state_kv_set(st, "k:empty", NULL, 0, 0), 0, "kv_set empty value");
    len = 99;
    is_int(state_kv_get(st, "k:empty", &val, &len), 0, "kv_get empty value");
    ok(val != NULL && val[0] == '\0', "empty value is present, not missing");
    is_int(len, 0, "empty value length 0");
    free(val);

    is_int(state_kv_del(st, "k:a"), 0, "kv_del");
    is_int(state_kv_get(st, "k:a", &val, &len), 0, "kv_get after del: rc 0");
    ok(val == NULL, "kv_get after del: gone");
    is_int(state_kv_del(st, "k:a"), 0, "kv_del missing is not an error");
    is_int(state_kv_get(st, "k:bin", &val, &len), 0, "kv_get other key after del");
    ok(val != NULL, "kv_del removed only its key");
    free(val);
}

static void test_ttl(struct state *st)
{
    char *val = NULL;
    int64_t n = -1;
    is_int(state_kv_set(st, "t:a", "x", 1, TTL_MS), 0, "kv_set with ttl");
    is_int(state_kv_set(st, "t:keep", "y", 1, 0), 0, "kv_set without ttl");
    is_int(state_kv_set(st, "t:long", "z", 1, 60000), 0, "kv_set with a long ttl");
    is_int(state_kv_get(st, "t:a", &val, NULL), 0, "kv_get before expiry");
    is_str(val, "x", "present before expiry");
    free(val);
    is_int(state_kv_count(st, "t:", &n), 0, "kv_count before expiry");
    is_int(n, 3, "three live entries");
    msleep(PAST_TTL);
    val = (char *)&val;
    is_int(state_kv_get(st, "t:a", &val, NULL), 0, "kv_get after expiry: rc 0");
    ok(val == NULL, "expired entry is invisible");
    is_int(state_kv_count(st, "t:", &n), 0, "kv_count after expiry");
    is_int(n, 2, "expired entry not counted");
    is_int(state_kv_get(st, "t:keep", &val, NULL), 0, "kv_get of the ttl 0 entry");
    is_str(val, "y", "ttl 0 never expires");
    free(val);
    /* kv_set over an expired entry, and a set that removes a ttl. */
    is_int(state_kv_set(st, "t:a", "x2", 2, 0), 0, "kv_set over an expired entry");
    is_int(state_kv_get(st, "t:a", &val, NULL), 0, "kv_get after re-set");
    is_str(val, "x2", "re-set value is live");
    free(val);
    is_int(state_kv_set(st, "t:b", "b", 1, TTL_MS), 0, "kv_set with ttl again");
    is_int(state_kv_set(st, "t:b", "b2", 2, 0), 0, "kv_set with ttl 0 replaces the ttl");
    msleep(PAST_TTL);
    is_int(state_kv_get(st, "t:b", &val, NULL), 0, "kv_get after the old ttl");
    is_str(val, "b2", "the replaced ttl no longer applies");
    free(val);
    is_int(state_kv_set(st, "t:neg", "n", 1, -1), OAI_EINTERNAL, "negative ttl is refused");
}

static void test_kv_add(struct state *st)
{
    char *val = NULL;
    int added = -1;
    is_int(state_kv_add(st, "a:x", "one", 3, 0, &added), 0, "kv_add absent: rc 0");
    is_int(added, 1, "kv_add absent: added");
    is_int(state_kv_add(st, "a:x", "two", 3, 0, &added), 0, "kv_add present: rc 0");
    is_int(added, 0, "kv_add present: not added");
    is_int(state_kv_get(st, "a:x", &val, NULL), 0, "kv_get after refused add");
    is_str(val, "one", "kv_add did not overwrite");
    free(val);

    is_int(state_kv_add(st, "a:e", "old", 3, TTL_MS, &added), 0, "kv_add with ttl");
    is_int(added, 1, "kv_add with ttl: added");
    is_int(state_kv_add(st, "a:e", "mid", 3, TTL_MS, &added), 0, "kv_add over a live ttl entry");
    is_int(added, 0, "live ttl entry blocks kv_add");
    msleep(PAST_TTL);
    is_int(state_kv_add(st, "a:e", "new", 3, 0, &added), 0, "kv_add over an expired entry");
    is_int(added, 1, "expired entry does not block kv_add");
    is_int(state_kv_get(st, "a:e", &val, NULL), 0, "kv_get after add over expired");
    is_str(val, "new", "kv_add replaced the expired value");
    free(val);
    msleep(PAST_TTL);
    is_int(state_kv_get(st, "a:e", &val, NULL), 0, "kv_get later");
    is_str(val, "new", "kv_add with ttl 0 stored it forever");
    free(val);

    is_int(state_kv_set(st, "a:s", "s", 1, 0), 0, "kv_set");
    is_int(state_kv_add(st, "a:s", "t", 1, 0, &added), 0, "kv_add over a kv_set entry");
    is_int(added, 0, "kv_set entry blocks kv_add");
    is_int(state_kv_del(st, "a:s"), 0, "kv_del");
    is_int(state_kv_add(st, "a:s", "t", 1, 0, &added), 0, "kv_add after kv_del");
    is_int(added, 1, "kv_add after kv_del: added");
    is_int(state_kv_add(st, "a:null", "t", 1, 0, NULL), 0, "kv_add with NULL added");
}

static void test_count(struct state *st)
{
    int64_t n = -1;
    is_int(state_kv_set(st, "ip:1", "", 0, 0), 0, "set ip:1");
    is_int(state_kv_set(st, "ip:2", "", 0, 60000), 0, "set ip:2");
    is_int(state_kv_set(st, "ip:3", "", 0, TTL_MS), 0, "set ip:3 (short ttl)");
    is_int(state_kv_set(st, "ip:", "", 0, 0), 0, "set ip: (the prefix itself)");
    is_int(state_kv_set(st, "iq:1", "", 0, 0), 0, "set iq:1");
    is_int(state_kv_set(st, "ip", "", 0, 0), 0, "set ip");
    is_int(state_kv_set(st, "IP:4", "", 0, 0), 0, "set IP:4");
    is_int(state_kv_count(st, "ip:", &n), 0, "kv_count ip:");
    is_int(n, 4, "ip: matches ip:, ip:1, ip:2, ip:3 (case-sensitive, no neighbours)");
    is_int(state_kv_count(st, "ip:1", &n), 0, "kv_count ip:1");
    is_int(n, 1, "a full key is its own prefix");
    is_int(state_kv_count(st, "zz", &n), 0, "kv_count zz");
    is_int(n, 0, "no match counts 0");
    msleep(PAST_TTL);
    is_int(state_kv_count(st, "ip:", &n), 0, "kv_count ip: after expiry");
    is_int(n, 3, "expired entry not counted");

    is_int(state_kv_set(st,
                        "p\xff"
                        "1",
                        "", 0, 0),
           0, "set p\\xff1");
    is_int(state_kv_set(st, "p\xff\xff", "", 0, 0), 0, "set p\\xff\\xff");
    is_int(state_kv_set(st, "q", "", 0, 0), 0, "set q");
    is_int(state_kv_set(st, "\xff\xff\xffz", "", 0, 0), 0, "set \\xff\\xff\\xffz");
    is_int(state_kv_count(st, "p\xff", &n), 0, "kv_count with a trailing 0xff byte");
    is_int(n, 2, "0xff prefix: upper bound is computed correctly");
    is_int(state_kv_count(st, "\xff\xff", &n), 0, "kv_count with an all-0xff prefix");
    is_int(n, 1, "all-0xff prefix has no upper bound");

    int64_t all = -1;
    is_int(state_kv_count(st, "", &all), 0, "kv_count with an empty prefix");
    ok(all >= 10, "empty prefix counts every live entry");
}

static void test_leases(struct state *st)
{
    int held = -1;
    is_int(state_lease_acquire(st, "L", "a", 1000, &held), 0, "a acquires free lease: rc 0");
    is_int(held, 1, "a holds it");
    is_int(state_lease_acquire(st, "L", "b", 1000, &held), 0, "b tries: rc 0");
    is_int(held, 0, "b is refused while a holds it");
    is_int(state_lease_acquire(st, "L", "a", 1000, &held), 0, "a renews: rc 0");
    is_int(held, 1, "a still holds it after renewing");
    is_int(state_lease_release(st, "L", "b"), 0, "b releases a lease it does not hold: rc 0");
    is_int(state_lease_acquire(st, "L", "b", 1000, &held), 0, "b tries again");
    is_int(held, 0, "release by a non-owner changes nothing");
    is_int(state_lease_release(st, "L", "a"), 0, "a releases");
    is_int(state_lease_acquire(st, "L", "b", TTL_MS, &held), 0, "b acquires after release");
    is_int(held, 1, "b holds it after release");
    msleep(PAST_TTL);
    is_int(state_lease_acquire(st, "L", "a", 3 * TTL_MS, &held), 0, "a tries after b expired");
    is_int(held, 1, "an expired lease is free");
    /* Renewal extends: renew at 2/3 of the ttl, then wait past the original deadline. */
    msleep(2 * TTL_MS);
    is_int(state_lease_acquire(st, "L", "a", 3 * TTL_MS, &held), 0, "a renews before expiry");
    is_int(held, 1, "renewed");
    msleep(2 * TTL_MS);
    is_int(state_lease_acquire(st, "L", "b", 1000, &held), 0, "b tries past the first deadline");
    is_int(held, 0, "renewal moved the deadline");
    is_int(state_lease_acquire(st, "M", "b", 1000, &held), 0, "another lease name");
    is_int(held, 1, "leases are independent");
    is_int(state_lease_release(st, "nope", "a"), 0, "releasing a missing lease is not an error");
    is_int(state_lease_acquire(st, "L", "a", 0, &held), OAI_EINTERNAL, "ttl 0 lease refused");
    is_int(held, 0, "refused call leaves held 0");
}

static void test_limits(struct state *st)
{
    char key[STATE_KEY_MAX + 2];
    int64_t v = 0;
    int held = 0, added = 0;
    char *val = NULL;
    size_t len = 0;

    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0'; /* STATE_KEY_MAX + 1 bytes */
    is_int(state_kv_set(st, key, "v", 1, 0), OAI_ELIMIT, "kv_set oversized key");
    is_int(state_kv_add(st, key, "v", 1, 0, &added), OAI_ELIMIT, "kv_add oversized key");
    is_int(state_kv_get(st, key, &val, &len), OAI_ELIMIT, "kv_get oversized key");
    ok(val == NULL, "kv_get failure leaves NULL");
    is_int(state_kv_del(st, key), OAI_ELIMIT, "kv_del oversized key");
    is_int(state_kv_count(st, key, &v), OAI_ELIMIT, "kv_count oversized prefix");
    is_int(state_counter_add(st, key, 1, &v), OAI_ELIMIT, "counter_add oversized name");
    is_int(state_counter_get(st, key, &v), OAI_ELIMIT, "counter_get oversized name");
    is_int(state_lease_acquire(st, key, "o", 1000, &held), OAI_ELIMIT, "lease oversized name");
    is_int(state_lease_acquire(st, "L2", key, 1000, &held), OAI_ELIMIT, "lease oversized owner");
    is_int(state_lease_release(st, key, "o"), OAI_ELIMIT, "lease_release oversized name");

    key[STATE_KEY_MAX] = '\0'; /* exactly STATE_KEY_MAX bytes */
    is_int(state_kv_set(st, key, "v", 1, 0), 0, "kv_set key of exactly STATE_KEY_MAX");
    is_int(state_kv_get(st, key, &val, &len), 0, "kv_get key of exactly STATE_KEY_MAX");
    is_str(val, "v", "max-length key round-trips");
    free(val);
    is_int(state_kv_count(st, key, &v), 0, "kv_count prefix of exactly STATE_KEY_MAX");
    is_int(v, 1, "max-length prefix counts");

    char *big = malloc(STATE_VALUE_MAX + 1);
    if (big == NULL) {
        ok(0, "malloc");
        return;
    }
    memset(big, 'v', STATE_VALUE_MAX + 1);
    is_int(state_kv_set(st, "big", big, STATE_VALUE_MAX + 1, 0), OAI_ELIMIT,
           "kv_set oversized value");
    is_int(state_kv_add(st, "big", big, STATE_VALUE_MAX + 1, 0, &added), OAI_ELIMIT,
           "kv_add oversized value");
    is_int(state_kv_set(st, "big", big, STATE_VALUE_MAX, 0), 0, "kv_set value of the max size");
    is_int(state_kv_get(st, "big", &val, &len), 0, "kv_get value of the max size");
    is_int(len, STATE_VALUE_MAX, "max-size value length");
    ok(val != NULL && memcmp(val, big, STATE_VALUE_MAX) == 0, "max-size value content");
    free(val);
    free(big);
}

struct scan_acc {
    char keys[256];
    int64_t sum;
    int rows;
    int stop_after;
};

static int acc_kv(void *ctx, const char *key, const char *value, size_t len)
{
    struct scan_acc *a = ctx;
    size_t k = strlen(a->keys);
    snprintf(a->keys + k, sizeof a->keys - k, "%s%s=%.*s", k ? "," : "", key, (int)len, value);
    a->rows++;
    return a->stop_after && a->rows >= a->stop_after ? 7 : 0;
}

static int acc_counter(void *ctx, const char *name, int64_t value)
{
    struct scan_acc *a = ctx;
    size_t k = strlen(a->keys);
    snprintf(a->keys + k, sizeof a->keys - k, "%s%s", k ? "," : "", name);
    a->sum += value;
    a->rows++;
    return 0;
}

/* test_scans: kv_scan and counter_scan return live rows of the prefix in key order;
 * counter_add_many adds all deltas. */
static void test_scans(struct state *st)
{
    struct scan_acc a;
    is_int(state_kv_set(st, "sc:b", "2", 1, 0), 0, "scan: set sc:b");
    is_int(state_kv_set(st, "sc:a", "1", 1, 0), 0, "scan: set sc:a");
    is_int(state_kv_set(st, "sc:c", "", 0, 1), 0, "scan: set sc:c expiring in 1 ms");
    is_int(state_kv_set(st, "sd:a", "x", 1, 0), 0, "scan: set sd:a (other prefix)");
    is_int(state_kv_set(st, "sc", "y", 1, 0), 0, "scan: set sc (shorter than the prefix)");
    msleep(5);
    memset(&a, 0, sizeof a);
    is_int(state_kv_scan(st, "sc:", acc_kv, &a), 0, "kv_scan sc:");
    is_str(a.keys, "sc:a=1,sc:b=2", "kv_scan: live rows of the prefix, in key order");
    memset(&a, 0, sizeof a);
    a.stop_after = 1;
    is_int(state_kv_scan(st, "sc:", acc_kv, &a), 7, "kv_scan: the callback's non-zero stops it");
    is_int(a.rows, 1, "kv_scan: stopped after one row");
    memset(&a, 0, sizeof a);
    is_int(state_kv_scan(st, "none:", acc_kv, &a), 0, "kv_scan of an empty prefix range");
    is_int(a.rows, 0, "kv_scan: no rows");

    struct state_delta d[] = {{"cs:x", 3}, {"cs:y", 4}, {"cs:x", 10}, {"ct:z", 100}};
    is_int(state_counter_add_many(st, d, 4), 0, "counter_add_many");
    memset(&a, 0, sizeof a);
    is_int(state_counter_scan(st, "cs:", acc_counter, &a), 0, "counter_scan cs:");
    is_str(a.keys, "cs:x,cs:y", "counter_scan: names of the prefix in order");
    is_int(a.sum, 17, "counter_add_many added every delta (3 + 10 + 4)");
    char longname[STATE_KEY_MAX + 8];
    memset(longname, 'k', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    struct state_delta bad[] = {{"cs:x", 1}, {longname, 1}};
    is_int(state_counter_add_many(st, bad, 2), OAI_ELIMIT, "counter_add_many: a long name fails");
    int64_t v = 0;
    is_int(state_counter_get(st, "cs:x", &v), 0, "counter_get cs:x");
    is_int(v, 13, "counter_add_many: nothing added when one name is refused");
}

static void test_open_failures(void)
{
    char path[256], sub[256], file[256];

    open_fails("/nonexistent-oai-dir/x/state.db", "does not exist", "missing directory");
    join_path(path, sizeof path, "no/such/dir/state.db");
    open_fails(path, "does not exist", "missing directory under tmp");

    join_path(file, sizeof file, "plainfile");
    FILE *f = fopen(file, "w");
    if (f != NULL)
        fclose(f);
    join_path(path, sizeof path, "plainfile/state.db");
    open_fails(path, "not a directory", "parent is a file");

    join_path(path, sizeof path, "adir.db");
    mkdir(path, 0700);
    open_fails(path, "is a directory", "path is a directory");

    join_path(path, sizeof path, "garbage.db");
    f = fopen(path, "w");
    if (f != NULL) {
        fputs("this is not an SQLite database, just some text long enough to be read\n", f);
        for (int i = 0; i < 100; i++)
            fputs("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", f);
        fclose(f);
    }
    open_fails(path, "not a database", "file is not a database");

    open_fails("", "empty", "empty path");

    join_path(sub, sizeof sub, "ro");
    mkdir(sub, 0700);
    chmod(sub, 0555);
    if (access(sub, W_OK) == 0) {
        ok(1, "# SKIP unwritable directory: running as root, access(W_OK) succeeds");
    } else {
        join_path(path, sizeof path, "ro/state.db");
        open_fails(path, "not writable", "unwritable directory");
    }
    chmod(sub, 0700);
}

/* test_on_disk checks the file's settings with a separate raw connection. */
static void test_on_disk(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    is_int(rc, SQLITE_OK, "raw sqlite open of the store");
    if (rc == SQLITE_OK && sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL) == 0 &&
        sqlite3_step(s) == SQLITE_ROW)
        is_str((const char *)sqlite3_column_text(s, 0), "wal", "journal_mode is wal");
    else
        ok(0, "journal_mode is wal");
    sqlite3_finalize(s);
    s = NULL;
    if (rc == SQLITE_OK && sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) == 0 &&
        sqlite3_step(s) == SQLITE_ROW)
        is_int(sqlite3_column_int(s, 0), 1, "user_version is 1");
    else
        ok(0, "user_version is 1");
    sqlite3_finalize(s);
    s = NULL;
    if (rc == SQLITE_OK &&
        sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND "
                           "name IN ('counters', 'kv', 'leases')",
                           -1, &s, NULL) == 0 &&
        sqlite3_step(s) == SQLITE_ROW)
        is_int(sqlite3_column_int(s, 0), 3, "tables counters, kv, leases exist");
    else
        ok(0, "tables counters, kv, leases exist");
    sqlite3_finalize(s);
    sqlite3_close(db);
}

/* A write lock held by another connection: counter updates are held in memory and the store
 * says why; reads go on; once the lock is gone state_checkpoint writes them, each once. */
static void test_held_writes(const char *path)
{
    struct state *st = NULL;
    sqlite3 *other = NULL;
    int64_t v = -1;
    char why[256] = "";
    is_int(state_open(&st, path), 0, "held writes: open the store");
    if (st == NULL)
        return;
    is_int(state_counter_add(st, "c:held", 5, NULL), 0, "a counter written before the lock");
    ok(sqlite3_open_v2(path, &other, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
           sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK,
       "another connection takes the write lock");
    int64_t t0 = state_now_ms();
    struct state_delta d[] = {{"c:held", 2}, {"c:held2", 7}};
    is_int(state_counter_add_many(st, d, 2), 0, "add_many while locked: held, 0");
    is_int(state_counter_add(st, "c:held", 1, NULL), 0, "counter_add without a value: held, 0");
    int64_t waited = state_now_ms() - t0;
    ok(waited >= 1500 && waited < 3500,
       "the first write waited for the lock (busy timeout), the second did not");
    is_int(state_counter_add(st, "c:held", 1, &v), OAI_ESTATE,
           "counter_add that needs the new value fails (quota reservations fail closed)");
    ok(!state_healthy(st, why, sizeof why) && strstr(why, "locked") != NULL,
       "state_healthy reports the failing writes");
    is_int(state_counter_get(st, "c:held", &v), 0, "reads go on");
    is_int(v, 5, "held updates are not in the store yet");
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    is_int(state_checkpoint(st), 0, "state_checkpoint once the lock is gone");
    is_int(state_counter_get(st, "c:held", &v), 0, "counter_get");
    is_int(v, 8, "the held updates were written, once");
    is_int(state_counter_get(st, "c:held2", &v), 0, "counter_get");
    is_int(v, 7, "the held update of a new counter too");
    is_int(state_checkpoint(st), 0, "a second state_checkpoint");
    is_int(state_counter_get(st, "c:held", &v), 0, "counter_get");
    is_int(v, 8, "writes nothing twice");
    ok(state_healthy(st, why, sizeof why), "healthy again after a write succeeded");

    /* a process that ends with updates held (CGI) writes them as it closes the store */
    ok(sqlite3_open_v2(path, &other, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
           sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK,
       "the write lock taken again");
    is_int(state_counter_add(st, "c:held", 10, NULL), 0, "an update held");
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    state_close(st);
    st = NULL;
    is_int(state_open(&st, path), 0, "reopen");
    is_int(st ? state_counter_get(st, "c:held", &v) : -1, 0, "counter_get");
    is_int(v, 18, "state_close wrote the held update");
    state_close(st);
}

/* ---- concurrency --------------------------------------------------------------------------- */

struct worker {
    struct state *st;
    int gate;     /* read end of the start gate: EOF means go */
    int failures; /* calls that did not return 0 */
    int wins[RACE_KEYS];
};

static void wait_gate(int gate)
{
    char c;
    ssize_t r;
    do
        r = read(gate, &c, 1);
    while (r < 0 && errno == EINTR);
}

static void *thread_main(void *arg)
{
    struct worker *w = arg;
    char key[32];
    wait_gate(w->gate);
    for (int i = 0; i < ADDS; i++) {
        if (state_counter_add(w->st, "conc", 1, NULL) != 0)
            w->failures++;
        if (i < RACE_KEYS) {
            int added = 0;
            snprintf(key, sizeof key, "trace:%d", i);
            if (state_kv_add(w->st, key, "t", 1, 0, &added) != 0)
                w->failures++;
            w->wins[i] = added;
        }
    }
    return NULL;
}

/* child_main runs in a forked child: its own connection, counter adds interleaved with kv_add
 * races; each won key index is written as one byte to results. Never returns. */
static void child_main(const struct target *t, int gate, int results)
{
    struct state *st = NULL;
    char key[32];
    int failures = 0;
    wait_gate(gate);
    if (target_open(t, &st) != 0)
        _exit(2);
    for (int i = 0; i < ADDS; i++) {
        if (i < RACE_KEYS) {
            int added = 0;
            snprintf(key, sizeof key, "race:%d", i);
            if (state_kv_add(st, key, "p", 1, 0, &added) != 0)
                failures++;
            unsigned char b = (unsigned char)i;
            if (added && write(results, &b, 1) != 1)
                failures++;
        }
        if (state_counter_add(st, "conc", 1, NULL) != 0)
            failures++;
    }
    state_close(st);
    _exit(failures ? 1 : 0);
}

/* test_concurrency: no connection may be open in this process when it forks. */
static void test_concurrency(const struct target *tg)
{
    int gate[2], results[2];
    pid_t pids[PROCS];
    pthread_t tids[THREADS];
    struct worker workers[THREADS];
    struct state *st = NULL;
    int64_t v = -1;

    if (pipe(gate) != 0 || pipe(results) != 0) {
        ok(0, "pipes");
        return;
    }
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            close(gate[1]);
            close(results[0]);
            child_main(tg, gate[0], results[1]);
        }
    }
    close(results[1]);
    is_int(target_open(tg, &st), 0, "parent opens the shared store");
    if (st == NULL) {
        close(gate[1]); /* let the children fail */
        for (int p = 0; p < PROCS; p++)
            waitpid(pids[p], NULL, 0);
        close(gate[0]);
        close(results[0]);
        return;
    }
    memset(workers, 0, sizeof workers);
    for (int t = 0; t < THREADS; t++) {
        workers[t].st = st;
        workers[t].gate = gate[0];
        pthread_create(&tids[t], NULL, thread_main, &workers[t]);
    }
    close(gate[1]); /* go */

    int thread_failures = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(tids[t], NULL);
        thread_failures += workers[t].failures;
    }
    int children_ok = 0;
    for (int p = 0; p < PROCS; p++) {
        int status = 0;
        if (pids[p] > 0 && waitpid(pids[p], &status, 0) == pids[p] && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0)
            children_ok++;
    }
    close(gate[0]);

    int wins[RACE_KEYS] = {0};
    unsigned char buf[256];
    ssize_t n;
    int total = 0;
    while ((n = read(results[0], buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] < RACE_KEYS)
                wins[buf[i]]++;
            total++;
        }
    }
    close(results[0]);

    is_int(children_ok, PROCS, "every child process exited cleanly with no failed call");
    is_int(thread_failures, 0, "no failed call in the threads");
    is_int(state_counter_get(st, "conc", &v), 0, "counter_get after the storm");
    is_int(v, (PROCS + THREADS) * ADDS, "counter is exactly 1600: no lost update");

    int exactly_one = 0;
    for (int i = 0; i < RACE_KEYS; i++)
        exactly_one += wins[i] == 1;
    is_int(total, RACE_KEYS, "process kv_add race: one win per key in total");
    is_int(exactly_one, RACE_KEYS, "process kv_add race: every key has exactly one winner");

    exactly_one = 0;
    for (int i = 0; i < RACE_KEYS; i++) {
        int w = 0;
        for (int t = 0; t < THREADS; t++)
            w += workers[t].wins[i];
        exactly_one += w == 1;
    }
    is_int(exactly_one, RACE_KEYS, "thread kv_add race: every key has exactly one winner");
    state_close(st);
}

/* test_backend: everything that must behave the same on every backend. */
static void test_backend(struct state *st)
{
    test_counters(st);
    test_kv(st);
    test_ttl(st);
    test_kv_add(st);
    test_count(st);
    test_leases(st);
    test_limits(st);
    test_scans(st);
}

/* ---- Redis without a server ---------------------------------------------------------------- */

/* url_fails expects state_open_url(url, prefix) to fail with OAI_ECONFIG and one log line
 * containing reason and never the password "s3cret". */
static void url_fails(const char *url, const char *prefix, const char *reason, const char *what)
{
    char logfile[256], name[300];
    struct state *st = (struct state *)&st; /* must be reset to NULL */
    int lines = 0;
    join_path(logfile, sizeof logfile, "stderr.log");
    int saved = capture_begin(logfile);
    int rc = state_open_url(&st, url, prefix);
    const char *logged = capture_end(saved, logfile, &lines);
    snprintf(name, sizeof name, "bad URL, %s: OAI_ECONFIG", what);
    is_int(rc, OAI_ECONFIG, name);
    snprintf(name, sizeof name, "bad URL, %s: *out is NULL", what);
    ok(st == NULL, name);
    snprintf(name, sizeof name, "bad URL, %s: one log line giving the reason", what);
    ok(lines == 1 && strstr(logged, reason) != NULL, name);
    if (lines != 1 || strstr(logged, reason) == NULL)
        printf("#   logged: %s#   want: %s\n", logged, reason);
    snprintf(name, sizeof name, "bad URL, %s: the log never shows the password", what);
    ok(strstr(logged, "s3cret") == NULL && strstr(logged, "cret") == NULL, name);
    if (rc == 0)
        state_close(st);
}

/* dead_port binds a TCP socket on 127.0.0.1 without listening (so connecting is refused) or,
 * with listening set, listens without ever accepting or answering (a hung server). */
static int dead_port(int listening, int *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0 || (listening && listen(fd, 64) != 0)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

/* url_opens expects url to open (the server need not answer) and state_path to be want. */
static void url_opens(const char *url, const char *want, const char *what)
{
    char logfile[256], name[300];
    struct state *st = NULL;
    int lines = 0;
    join_path(logfile, sizeof logfile, "stderr.log");
    int saved = capture_begin(logfile);
    int rc = state_open_url(&st, url, "t:");
    const char *logged = capture_end(saved, logfile, &lines);
    snprintf(name, sizeof name, "URL %s: opens without a server", what);
    is_int(rc, 0, name);
    snprintf(name, sizeof name, "URL %s: state_path", what);
    is_str(st != NULL ? state_path(st) : NULL, want, name);
    snprintf(name, sizeof name, "URL %s: at most one warning, without the password", what);
    ok(lines <= 1 && strstr(logged, "s3cret") == NULL && strstr(logged, "w@rd") == NULL, name);
    state_close(st);
}

static void test_bad_urls(void)
{
    char url[512], longp[STATE_KEY_MAX + 2];
    int port = 0;
    int fd = dead_port(0, &port);
    if (fd < 0) {
        ok(0, "bind a dead port");
        return;
    }
    url_fails("", "t:", "not a URL", "empty");
    url_fails("localhost:6379", "t:", "not a URL", "no scheme");
    url_fails("u:s3cret@localhost:6379", "t:", "not a URL", "no scheme, with a password");
    url_fails("http://h:1", "t:", "unknown scheme", "http");
    url_fails("rediss://:s3cret@h:6380/0", "t:", "stunnel", "rediss is refused");
    url_fails("REDISS://h", "t:", "TLS-terminating proxy", "rediss in capitals");
    url_fails("redis://", "t:", "no host", "no host");
    url_fails("redis://:s3cret@", "t:", "no host", "password but no host");
    url_fails("redis://:s3cret@:6379", "t:", "no host", "port but no host");
    url_fails("redis://h:0", "t:", "port must be", "port 0");
    url_fails("redis://h:65536", "t:", "port must be", "port 65536");
    url_fails("redis://h:x", "t:", "port must be", "port x");
    url_fails("redis://h:", "t:", "port must be", "empty port");
    url_fails("redis://u:s3/cret@h:99999", "t:", "port must be", "raw / in the password");
    url_fails("redis://h/x", "t:", "database", "db x");
    url_fails("redis://h/1/2", "t:", "database", "db 1/2");
    url_fails("redis://h/-1", "t:", "database", "db -1");
    url_fails("redis://h?db=1", "t:", "no query", "query on redis://");
    url_fails("redis://h:1/0#x", "t:", "no query", "fragment on redis://");
    url_fails("redis://s3cret@h", "t:", "user:password", "userinfo without a colon");
    url_fails("redis://u:@h", "t:", "user:password", "empty password");
    url_fails("redis://u:s3%zzcret@h", "t:", "bad %-escape", "bad escape in the password");
    url_fails("redis://u:s3cret%00@h", "t:", "bad %-escape", "encoded NUL in the password");
    url_fails("redis://u:s3cret@[::1", "t:", "closing ']'", "unclosed IPv6 bracket");
    url_fails("redis+unix://relative.sock", "t:", "absolute path", "relative unix path");
    url_fails("unix://:s3cret@tmp/x.sock", "t:", "absolute path", "relative path with password");
    url_fails("unix:///tmp/x.sock?db=x", "t:", "only ?db=N", "unix db x");
    url_fails("redis+unix:///tmp/x.sock?foo=1", "t:", "only ?db=N", "unix unknown query");
    snprintf(url, sizeof url, "redis+unix:///%0200d.sock", 0);
    url_fails(url, "t:", "longer than", "unix path too long");
    memset(longp, 'p', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    url_fails(url, longp, "STATE_PREFIX", "prefix over STATE_KEY_MAX");

    char want[512];
    snprintf(url, sizeof url, "redis://alice:s3cret@127.0.0.1:%d/3", port);
    snprintf(want, sizeof want, "redis://alice:***@127.0.0.1:%d/3", port);
    url_opens(url, want, "user:password");
    snprintf(url, sizeof url, "redis://:p%%40ss/w@rd@127.0.0.1:%d", port);
    snprintf(want, sizeof want, "redis://:***@127.0.0.1:%d", port);
    url_opens(url, want, "password with %40, raw / and @");
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/", port);
    url_opens(url, url, "no password, empty db");
    snprintf(url, sizeof url, "Redis://[::1]:%d", port);
    url_opens(url, url, "IPv6 host, scheme in capitals");
    snprintf(url, sizeof url, "redis+unix:///nonexistent-oai-dir/redis.sock?db=2");
    url_opens(url, url, "redis+unix with db");
    snprintf(url, sizeof url, "unix://:s3cret@/nonexistent-oai-dir/redis.sock");
    url_opens(url, "unix://:***@/nonexistent-oai-dir/redis.sock", "unix with password");
    close(fd);
}

/* calls_fail runs one of every call on a store whose server does not answer: each must fail
 * with OAI_ESTATE, and within max_ms - but for counter_add_many, whose updates never left the
 * process: they are held for later (0). */
static void calls_fail(struct state *st, int64_t max_ms, const char *what)
{
    struct state_delta d[] = {{"a", 1}, {"b", 2}};
    struct scan_acc a;
    char name[200], *val = (char *)&val;
    int64_t v = 7, slowest = 0;
    int added = 7, held = 7, wrong = 0;
    int rcs[12];
    for (int i = 0; i < 12; i++) {
        int64_t t0 = mono_ms();
        memset(&a, 0, sizeof a);
        switch (i) {
        case 0:
            rcs[i] = state_counter_add(st, "a", 1, &v);
            break;
        case 1:
            rcs[i] = state_counter_get(st, "a", &v);
            break;
        case 2:
            rcs[i] = state_counter_add_many(st, d, 2);
            break;
        case 3:
            rcs[i] = state_kv_set(st, "k", "v", 1, 0);
            break;
        case 4:
            rcs[i] = state_kv_add(st, "k", "v", 1, 1000, &added);
            break;
        case 5:
            rcs[i] = state_kv_get(st, "k", &val, NULL);
            break;
        case 6:
            rcs[i] = state_kv_del(st, "k");
            break;
        case 7:
            rcs[i] = state_kv_count(st, "k", &v);
            break;
        case 8:
            rcs[i] = state_kv_scan(st, "k", acc_kv, &a);
            break;
        case 9:
            rcs[i] = state_counter_scan(st, "", acc_counter, &a);
            break;
        case 10:
            rcs[i] = state_lease_acquire(st, "L", "me", 1000, &held);
            break;
        default:
            rcs[i] = state_lease_release(st, "L", "me");
            break;
        }
        int64_t took = mono_ms() - t0;
        if (took > slowest)
            slowest = took;
        if (rcs[i] != (i == 2 ? 0 : OAI_ESTATE)) {
            printf("#   call %d returned %d\n", i, rcs[i]);
            wrong++;
        }
    }
    snprintf(name, sizeof name, "%s: every call fails with OAI_ESTATE; counter_add_many is held",
             what);
    is_int(wrong, 0, name);
    snprintf(name, sizeof name, "%s: every call returns within %lld ms", what, (long long)max_ms);
    ok(slowest <= max_ms, name);
    if (slowest > max_ms)
        printf("#   slowest: %lld ms\n", (long long)slowest);
    snprintf(name, sizeof name, "%s: failed calls leave zeros and NULL", what);
    ok(v == 0 && val == NULL && added == 0 && held == 0, name);
}

/* test_unreachable: nothing listens on the port. */
static void test_unreachable(void)
{
    char url[256], want[256], why[256], logfile[256];
    struct state *st = NULL;
    int port = 0, lines = 0;
    int fd = dead_port(0, &port);
    if (fd < 0) {
        ok(0, "bind a dead port");
        return;
    }
    join_path(logfile, sizeof logfile, "stderr.log");
    snprintf(url, sizeof url, "redis://alice:s3cret@127.0.0.1:%d/1", port);
    snprintf(want, sizeof want, "redis://alice:***@127.0.0.1:%d/1", port);
    int saved = capture_begin(logfile);
    int rc = state_open_url(&st, url, "t_state:");
    const char *logged = capture_end(saved, logfile, &lines);
    is_int(rc, 0, "unreachable: state_open_url still succeeds");
    if (st == NULL) {
        close(fd);
        return;
    }
    is_int(lines, 1, "unreachable: one warning at open");
    has_str(logged, want, "unreachable: the warning names the URL without its password");
    ok(strstr(logged, "s3cret") == NULL, "unreachable: the warning never shows the password");
    is_str(state_path(st), want, "unreachable: state_path hides the password");

    saved = capture_begin(logfile);
    calls_fail(st, 100, "unreachable, within a second of the failure");
    why[0] = '\0';
    is_int(state_healthy(st, why, sizeof why), 0, "unreachable: state_healthy says no");
    logged = capture_end(saved, logfile, &lines);
    has_str(why, "Connection refused", "unreachable: state_healthy gives the reason");
    ok(strstr(why, "s3cret") == NULL, "unreachable: the reason has no password");
    is_int(lines, 1, "unreachable: failing fast logs nothing more than that updates are held");
    has_str(logged, "held in memory", "unreachable: the held updates are said once");
    is_int(state_background_checkpoints(st), 0, "Redis: state_background_checkpoints is a no-op");
    is_int(state_checkpoint(st), 0, "Redis: state_checkpoint is a no-op");

    msleep(1100);
    saved = capture_begin(logfile);
    calls_fail(st, 100, "unreachable, a second later (one reconnect attempt)");
    logged = capture_end(saved, logfile, &lines);
    is_int(lines, 1, "unreachable: the reconnect attempt logs one warning");
    ok(strstr(logged, "s3cret") == NULL, "unreachable: that warning has no password");
    state_close(st);
    close(fd);
}

/* test_hung: the server accepts connections (the kernel does) and never answers. */
static void test_hung(void)
{
    char url[256], why[256], logfile[256];
    struct state *st = NULL;
    int port = 0, lines = 0;
    int64_t v = 0;
    int fd = dead_port(1, &port);
    if (fd < 0) {
        ok(0, "listen on a port");
        return;
    }
    join_path(logfile, sizeof logfile, "stderr.log");
    /* A password makes state_open_url send AUTH, which gets no answer. */
    snprintf(url, sizeof url, "redis://:s3cret@127.0.0.1:%d", port);
    int saved = capture_begin(logfile);
    int64_t t0 = mono_ms();
    int rc = state_open_url(&st, url, "t_state:");
    int64_t took = mono_ms() - t0;
    const char *logged = capture_end(saved, logfile, &lines);
    is_int(rc, 0, "hung server: state_open_url succeeds");
    ok(took >= 400 && took < 1000, "hung server: the AUTH at open gives up after the timeout");
    if (took < 400 || took >= 1000)
        printf("#   took %lld ms\n", (long long)took);
    ok(lines == 1 && strstr(logged, "s3cret") == NULL, "hung server: one warning, no password");
    if (st == NULL) {
        close(fd);
        return;
    }
    saved = capture_begin(logfile);
    calls_fail(st, 100, "hung server, within a second of the failure");
    is_int(state_healthy(st, why, sizeof why), 0, "hung server: state_healthy says no");
    msleep(1100);
    t0 = mono_ms();
    rc = state_counter_get(st, "a", &v);
    took = mono_ms() - t0;
    logged = capture_end(saved, logfile, &lines);
    is_int(rc, OAI_ESTATE, "hung server: a call a second later fails");
    ok(took >= 400 && took < 1000, "hung server: that call costs one timeout, well under 1 s");
    if (took < 400 || took >= 1000)
        printf("#   took %lld ms\n", (long long)took);
    is_int(lines, 2, "hung server: one warning for it, one that updates are held");
    state_close(st);
    close(fd);
}

/* ---- Redis with a server ------------------------------------------------------------------- */

/* raw_connect opens a plain hiredis connection to the test's URL (no %-decoding: test URLs
 * need none), to look at and clean up what the store wrote. */
static redisContext *raw_connect(const char *url)
{
    char buf[512], *user = NULL, *pass = NULL, *rest;
    long db = 0;
    redisContext *c = NULL;
    redisReply *r;
    snprintf(buf, sizeof buf, "%s", url);
    char *sep = strstr(buf, "://");
    if (sep == NULL)
        return NULL;
    *sep = '\0';
    rest = sep + 3;
    char *at = strrchr(rest, '@');
    if (at != NULL) {
        char *colon = strchr(rest, ':');
        if (colon == NULL || colon > at)
            return NULL;
        *colon = *at = '\0';
        user = *rest ? rest : NULL;
        pass = colon + 1;
        rest = at + 1;
    }
    if (strcasecmp(buf, "redis") == 0) {
        char *slash = strchr(rest, '/');
        int port = 6379;
        if (slash != NULL) {
            *slash = '\0';
            db = atol(slash + 1);
        }
        char *colon = strrchr(rest, ':');
        if (colon != NULL) {
            *colon = '\0';
            port = atoi(colon + 1);
        }
        c = redisConnect(rest, port);
    } else {
        char *q = strchr(rest, '?');
        if (q != NULL) {
            *q = '\0';
            if (strncmp(q + 1, "db=", 3) == 0)
                db = atol(q + 4);
        }
        c = redisConnectUnix(rest);
    }
    if (c == NULL || c->err) {
        redisFree(c);
        return NULL;
    }
    if (pass != NULL) {
        r = user ? redisCommand(c, "AUTH %s %s", user, pass) : redisCommand(c, "AUTH %s", pass);
        freeReplyObject(r);
    }
    r = redisCommand(c, "SELECT %ld", db);
    freeReplyObject(r);
    return c;
}

/* raw_get returns GET prefix+key as a static string ("(nil)" when missing). */
static const char *raw_get(redisContext *c, const char *prefix, const char *key)
{
    static char out[64];
    redisReply *r = redisCommand(c, "GET %s%s", prefix, key);
    snprintf(out, sizeof out, "%s",
             r == NULL                       ? "(error)"
             : r->type == REDIS_REPLY_STRING ? r->str
                                             : "(nil)");
    freeReplyObject(r);
    return out;
}

static long long raw_int(redisContext *c, const char *cmd, const char *prefix, const char *key)
{
    redisReply *r = redisCommand(c, "%s %s%s", cmd, prefix, key);
    long long v = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -999;
    freeReplyObject(r);
    return v;
}

/* test_redis_specific: the key layout, glob characters in prefixes, error replies, another
 * prefix's isolation. */
static void test_redis_specific(struct state *st, redisContext *c, const char *url,
                                const char *prefix)
{
    struct scan_acc a;
    int64_t v = 0;
    int held = 0;
    char *val = NULL;
    char other[128];

    is_int(state_counter_add(st, "lay", 5, &v), 0, "layout: counter_add");
    is_str(raw_get(c, prefix, "c:lay"), "5", "layout: a counter is prefix + c: + name");
    is_int(state_kv_set(st, "lay", "v", 1, 60000), 0, "layout: kv_set with a ttl");
    is_str(raw_get(c, prefix, "k:lay"), "v", "layout: an entry is prefix + k: + key");
    long long pttl = raw_int(c, "PTTL", prefix, "k:lay");
    ok(pttl > 50000 && pttl <= 60000, "layout: the ttl is a PX expiry");
    is_int(state_kv_set(st, "lay", "w", 1, 0), 0, "layout: kv_set without a ttl");
    is_int(raw_int(c, "PTTL", prefix, "k:lay"), -1, "layout: ttl 0 leaves no expiry");
    is_int(state_lease_acquire(st, "lay", "me", 5000, &held), 0, "layout: lease_acquire");
    is_str(raw_get(c, prefix, "l:lay"), "me", "layout: a lease is prefix + l: + name = owner");
    pttl = raw_int(c, "PTTL", prefix, "l:lay");
    ok(pttl > 4000 && pttl <= 5000, "layout: the lease expires by PX");
    is_int(state_lease_release(st, "lay", "me"), 0, "layout: lease_release");
    is_int(raw_int(c, "EXISTS", prefix, "l:lay"), 0, "layout: the released lease is deleted");

    const char *globs[] = {"g*1", "g?2", "g[3]", "g\\4", "gx5", "g]6"};
    for (int i = 0; i < 6; i++)
        is_int(state_kv_set(st, globs[i], "1", 1, 0), 0, "glob: set a key with a glob character");
    is_int(state_kv_count(st, "g*", &v), 0, "glob: kv_count g*");
    is_int(v, 1, "glob: * in a prefix is literal");
    is_int(state_kv_count(st, "g[", &v), 0, "glob: kv_count g[");
    is_int(v, 1, "glob: [ in a prefix is literal");
    is_int(state_kv_count(st, "g\\", &v), 0, "glob: kv_count g\\");
    is_int(v, 1, "glob: \\ in a prefix is literal");
    is_int(state_kv_count(st, "g", &v), 0, "glob: kv_count g");
    is_int(v, 6, "glob: every g key");
    memset(&a, 0, sizeof a);
    is_int(state_kv_scan(st, "g?", acc_kv, &a), 0, "glob: kv_scan g?");
    is_str(a.keys, "g?2=1", "glob: ? in a prefix is literal");
    memset(&a, 0, sizeof a);
    is_int(state_kv_scan(st, "g", acc_kv, &a), 0, "glob: kv_scan g");
    is_str(a.keys, "g*1=1,g?2=1,g[3]=1,g\\4=1,g]6=1,gx5=1", "glob: all of them, in byte order");

    redisReply *r = redisCommand(c, "HSET %sk:wrong f v", prefix);
    freeReplyObject(r);
    r = redisCommand(c, "SET %sc:notnum abc", prefix);
    freeReplyObject(r);
    val = (char *)&val;
    is_int(state_kv_get(st, "wrong", &val, NULL), OAI_ESTATE, "WRONGTYPE reply: OAI_ESTATE");
    ok(val == NULL, "WRONGTYPE reply: *value is NULL");
    is_int(state_counter_add(st, "notnum", 1, &v), OAI_ESTATE, "INCRBY on a non-integer");
    is_int(state_counter_get(st, "notnum", &v), OAI_ESTATE, "GET of a non-integer counter");
    struct state_delta d[] = {{"lay", 1}, {"notnum", 1}};
    is_int(state_counter_add_many(st, d, 2), OAI_ESTATE, "counter_add_many: an INCRBY fails");
    is_int(state_counter_get(st, "lay", &v), 0, "an error reply keeps the connection");
    is_int(state_kv_del(st, "wrong"), 0, "kv_del deletes a key of another type");
    r = redisCommand(c, "DEL %sc:notnum", prefix);
    freeReplyObject(r);

    struct state *iso = NULL;
    snprintf(other, sizeof other, "%siso:", prefix);
    is_int(state_open_url(&iso, url, other), 0, "isolation: open with another prefix");
    is_int(iso ? state_kv_count(iso, "", &v) : -1, 0, "isolation: kv_count there");
    is_int(v, 0, "isolation: another prefix sees no entries");
    is_int(iso ? state_counter_get(iso, "lay", &v) : -1, 0, "isolation: counter_get there");
    is_int(v, 0, "isolation: nor counters");
    state_close(iso);
}

/* wrong_password inserts (or replaces) the URL's password with a wrong one. */
static void wrong_password(const char *url, char *out, size_t n)
{
    const char *sep = strstr(url, "://");
    const char *at = sep ? strrchr(sep, '@') : NULL;
    if (sep == NULL) {
        snprintf(out, n, "%s", url);
    } else if (at == NULL) {
        snprintf(out, n, "%.*s:wrong-s3cret@%s", (int)(sep + 3 - url), url, sep + 3);
    } else {
        const char *colon = memchr(sep + 3, ':', (size_t)(at - sep - 3));
        snprintf(out, n, "%.*s:wrong-s3cret%s", (int)((colon ? colon : at) - url), url, at);
    }
}

static void test_wrong_password(const char *url)
{
    char bad[512], why[256], logfile[256];
    struct state *st = NULL;
    int lines = 0;
    int64_t v = 0;
    wrong_password(url, bad, sizeof bad);
    join_path(logfile, sizeof logfile, "stderr.log");
    int saved = capture_begin(logfile);
    int rc = state_open_url(&st, bad, "t_state:");
    const char *logged = capture_end(saved, logfile, &lines);
    is_int(rc, 0, "wrong password: state_open_url still succeeds");
    ok(lines == 1 && strstr(logged, "AUTH refused") != NULL, "wrong password: one warning");
    ok(strstr(logged, "s3cret") == NULL, "wrong password: the warning hides it");
    if (st == NULL)
        return;
    saved = capture_begin(logfile);
    is_int(state_counter_get(st, "a", &v), OAI_ESTATE, "wrong password: calls fail");
    is_int(state_healthy(st, why, sizeof why), 0, "wrong password: state_healthy says no");
    capture_end(saved, logfile, &lines);
    has_str(why, "AUTH refused", "wrong password: the reason");
    ok(strstr(why, "s3cret") == NULL, "wrong password: the reason hides it");
    state_close(st);
}

/* raw_cleanup deletes every key under prefix and returns how many. */
static long long raw_cleanup(redisContext *c, const char *prefix)
{
    char cursor[32] = "0";
    long long n = 0;
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s* COUNT 1000", cursor, prefix);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            return -1;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const redisReply *k = r->element[1]->element[i];
            redisReply *d = redisCommand(c, "DEL %b", k->str, k->len);
            n += d != NULL && d->type == REDIS_REPLY_INTEGER ? d->integer : 0;
            freeReplyObject(d);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return n;
}

static void test_redis(const char *url)
{
    char prefix[64], why[256];
    struct state *st = NULL;
    int64_t v = 0;
    snprintf(prefix, sizeof prefix, "t_state:%ld:", (long)getpid());
    struct target t = {NULL, url, prefix};

    printf("# Redis backend at %s, keys under %s\n",
           strchr(url, '@') ? "(URL with a password)" : url, prefix);
    redisContext *c = raw_connect(url);
    ok(c != NULL, "Redis: a raw connection for checks and cleanup");
    if (c == NULL)
        return;
    is_int(state_open_url(&st, url, prefix), 0, "Redis: state_open_url");
    if (st == NULL) {
        redisFree(c);
        return;
    }
    if (strchr(url, '@') != NULL)
        has_str(state_path(st), ":***@", "Redis: state_path hides the password");
    else
        is_str(state_path(st), url, "Redis: state_path is the URL");
    why[0] = 'x';
    is_int(state_healthy(st, why, sizeof why), 1, "Redis: state_healthy (PING)");
    is_str(why, "", "Redis: no reason when healthy");
    test_backend(st);
    test_redis_specific(st, c, url, prefix);
    state_close(st);

    st = NULL;
    is_int(state_open_url(&st, url, prefix), 0, "Redis: reopen");
    is_int(st ? state_counter_get(st, "c:a", &v) : -1, 0, "Redis: counter_get after reopen");
    is_int(v, -1, "Redis: counters persist across close/open");
    state_close(st);

    test_wrong_password(url);
    test_concurrency(&t);
    ok(raw_cleanup(c, prefix) > 0, "Redis: the test's keys are deleted");
    redisFree(c);
}

/* ---- cleanup ------------------------------------------------------------------------------- */

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(p);
}

int main(void)
{
    char path[256];
    struct state *st = NULL;
    int64_t v = 0;

    tap_start();
    signal(SIGPIPE, SIG_IGN); /* as the gateway does: hiredis writes to sockets */
    snprintf(tmpdir, sizeof tmpdir, "/tmp/t_state.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        ok(0, "mkdtemp");
        return tap_done();
    }
    join_path(path, sizeof path, "state.db");

    is_int(state_open(&st, path), 0, "state_open on a fresh temp dir");
    if (st == NULL)
        return tap_done();
    is_str(state_path(st), path, "state_path returns the path");
    test_on_disk(path);
    test_backend(st);
    state_close(st);
    state_close(NULL);
    ok(1, "state_close(NULL) is a no-op");

    st = NULL;
    is_int(state_open(&st, path), 0, "reopen the store");
    is_int(st ? state_counter_get(st, "c:a", &v) : -1, 0, "counter_get after reopen");
    is_int(v, -1, "counters persist across close/open");
    state_close(st);

    test_open_failures();
    struct target sqlite = {path, NULL, NULL};
    test_concurrency(&sqlite);
    test_held_writes(path);

    test_bad_urls();
    test_unreachable();
    test_hung();
    const char *url = getenv("OAI_TEST_REDIS_URL");
    if (url != NULL && url[0] != '\0')
        test_redis(url);
    else
        ok(1, "# SKIP Redis backend: set OAI_TEST_REDIS_URL to run it against a server");

    ok(nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0, "temp dir removed");
    return tap_done();
}
