/*
 * state_cost.c - what the shared state store adds to one generation request.
 *
 * A request touches the store exactly as upstream/proxy.c and fcgi/app.c do on the success path:
 * note the prompter (kv_set with a TTL), load the provider's key pool (one prefix scan), mark the
 * chosen key used (kv_set), judge the answer (nothing to write for a healthy key) and settle the
 * counters (one transaction: prompts, tokens, tokens per family, the key's prompts and tokens,
 * requests by route/provider/status, the latency bucket and sum). This program times that
 * sequence with the real functions against a fresh SQLite file, first in one process, then in P
 * processes at once (several FastCGI processes sharing the store), and prints p50 / p90 / p99 per
 * request in microseconds.
 *
 *   make bench/state_cost && bench/state_cost [requests per process, default 5000] [processes, 4]
 *                                              [--url redis://...]   (Redis instead of SQLite)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "state/state.h"
#include "upstream/keypool.h"
#include "upstream/proxy.h"

static const char *const hashes[] = {"gcp-0a1b2c3d4e5f", "gcp-1a1b2c3d4e5f", "gcp-2a1b2c3d4e5f"};

static const char *redis_url; /* --url: the Redis backend instead of a SQLite file */

static int open_store(struct state **st, const char *path)
{
    return redis_url ? state_open_url(st, redis_url, "oai-bench:") : state_open(st, path);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One request's state traffic; returns its duration in ns. */
static int64_t one_request(struct state *st, int i)
{
    int64_t t0 = now_ns();
    char prompter[64];
    snprintf(prompter, sizeof prompter, "prompter:10.0.0.%d", i % 200);
    if (state_kv_set(st, prompter, "1", 1, 60000))
        return -1;
    struct keypool p;
    int64_t soonest;
    if (keypool_load(&p, st, "gcp", "gcp-claude", "claude-sonnet-4-5@20250929",
                     "claude-sonnet-4-5-20250929", hashes, 3))
        return -1;
    int k = keypool_pick(&p, NULL, 0, state_now_ms(), &soonest), slot;
    if (k < 0 || keypool_take(&p, st, k, 0, "bench", 60000, &slot))
        return -1;
    keypool_judge(&p, st, k, KEYPOOL_OK, -1, 200, "");
    char kp[160], kt[200];
    keypool_count_names("gcp", hashes[k], "gcp-claude", kp, sizeof kp, kt, sizeof kt);
    struct state_delta d[] = {
        {STATE_PROMPTS, 1},
        {STATE_TOKENS, 120},
        {STATE_TOKENS ":gcp-claude", 120},
        {kp, 1},
        {kt, 120},
        {PROXY_METRIC_REQUESTS "chat:gcp:200", 1},
        {PROXY_METRIC_LATENCY "gcp:3", 1},
        {PROXY_METRIC_LATENCY_SUM "gcp", 800},
    };
    int rc = state_counter_add_many(st, d, sizeof d / sizeof d[0]);
    keypool_free(&p);
    return rc ? -1 : now_ns() - t0;
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Runs n requests, writes the durations to fd (binary) and returns 0. */
static int worker(const char *path, int n, int fd)
{
    struct state *st = NULL;
    if (open_store(&st, path))
        return 1;
    int64_t *t = calloc((size_t)n, sizeof *t);
    if (!t)
        return 1;
    for (int i = 0; i < 50; i++)
        one_request(st, i); /* warm up the statements and the page cache */
    for (int i = 0; i < n; i++)
        if ((t[i] = one_request(st, i)) < 0)
            return 1;
    size_t len = (size_t)n * sizeof *t;
    int rc = write(fd, t, len) == (ssize_t)len ? 0 : 1;
    free(t);
    state_close(st);
    return rc;
}

static void report(const char *what, int64_t *t, size_t n, double wall_s)
{
    qsort(t, n, sizeof *t, cmp);
    printf("%-28s %8zu %9.1f %9.1f %9.1f %10.0f\n", what, n, t[n / 2] / 1e3, t[n * 9 / 10] / 1e3,
           t[n * 99 / 100] / 1e3, n / wall_s);
}

static int run(const char *path, int procs, int n, const char *what)
{
    int fds[64][2];
    pid_t pids[64];
    int64_t t0 = now_ns();
    for (int p = 0; p < procs; p++) {
        char file[256];
        snprintf(file, sizeof file, "%s.%d.out", path, p);
        fds[p][0] = -1;
        FILE *f = fopen(file, "w+b");
        if (!f)
            return 1;
        fds[p][1] = dup(fileno(f));
        fclose(f);
        pids[p] = fork();
        if (pids[p] == 0)
            _exit(worker(path, n, fds[p][1]));
    }
    int bad = 0;
    for (int p = 0; p < procs; p++) {
        int status;
        waitpid(pids[p], &status, 0);
        bad |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    double wall = (now_ns() - t0) / 1e9;
    if (bad) {
        fprintf(stderr, "a worker failed\n");
        return 1;
    }
    size_t total = (size_t)procs * (size_t)n;
    int64_t *all = calloc(total, sizeof *all);
    for (int p = 0; p < procs && all; p++) {
        if (pread(fds[p][1], all + (size_t)p * (size_t)n, (size_t)n * sizeof *all, 0) !=
            (ssize_t)((size_t)n * sizeof *all))
            bad = 1;
        close(fds[p][1]);
        char file[256];
        snprintf(file, sizeof file, "%s.%d.out", path, p);
        unlink(file);
    }
    if (!all || bad)
        return 1;
    report(what, all, total, wall);
    free(all);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[argc - 2], "--url") == 0) {
        redis_url = argv[argc - 1];
        argc -= 2;
    }
    int n = argc > 1 ? atoi(argv[1]) : 5000, procs = argc > 2 ? atoi(argv[2]) : 4;
    if (n < 100 || n > 1000000 || procs < 1 || procs > 64) {
        fprintf(stderr, "usage: %s [requests per process 100..1000000] [processes 1..64]\n",
                argv[0]);
        return 2;
    }
    log_set_level(LOG_ERROR);
    char dir[] = "/tmp/oai-state-cost.XXXXXX", path[128];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/state.db", dir);
    if (redis_url)
        printf("state store cost per generation request (Redis)\n");
    else
        printf("state store cost per generation request (SQLite WAL at %s)\n", dir);
    printf("%-28s %8s %9s %9s %9s %10s\n", "", "requests", "p50 us", "p90 us", "p99 us", "req/s");
    char what[64];
    int rc = run(path, 1, n, "1 process");
    snprintf(what, sizeof what, "%d processes at once", procs);
    if (!rc && procs > 1)
        rc = run(path, procs, n, what);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
