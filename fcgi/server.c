#include "fcgi/server.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"

struct worker {
    pthread_t tid;
    int in_accept;
    struct worker *next, *prev;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_attr_t attr;
    int listen_fd;
    server_handler_fn fn;
    void *ctx;
    int stopping;
    int nthreads, accepting;
    struct worker *workers;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *worker_main(void *arg);

static void stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);
}

void server_block_signals(void)
{
    sigset_t set;
    stop_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* Starts one more worker; called with S.mu held. */
static void spawn_locked(void)
{
    struct worker *w = calloc(1, sizeof *w);
    if (!w) {
        log_error("cannot start a worker thread: out of memory");
        return;
    }
    w->next = S.workers;
    if (S.workers)
        S.workers->prev = w;
    S.workers = w;
    S.nthreads++;
    int rc = pthread_create(&w->tid, &S.attr, worker_main, w);
    if (rc) {
        S.workers = w->next;
        if (S.workers)
            S.workers->prev = NULL;
        S.nthreads--;
        free(w);
        log_error("cannot start a worker thread (%d threads running): %s", S.nthreads,
                  strerror(rc));
    }
}

static void retire_locked(struct worker *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        S.workers = w->next;
    if (w->next)
        w->next->prev = w->prev;
    S.nthreads--;
    pthread_cond_broadcast(&S.cv);
    free(w);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    FCGX_Request req;
    FCGX_InitRequest(&req, S.listen_fd, FCGI_FAIL_ACCEPT_ON_INTR);
    pthread_mutex_lock(&S.mu);
    while (!S.stopping) {
        S.accepting++;
        w->in_accept = 1;
        pthread_mutex_unlock(&S.mu);
        int rc = FCGX_Accept_r(&req);
        pthread_mutex_lock(&S.mu);
        S.accepting--;
        w->in_accept = 0;
        if (rc < 0) {
            if (S.stopping || rc == -EINTR)
                continue;
            pthread_mutex_unlock(&S.mu);
            log_warn("accept failed: %s", rc > -1000 ? strerror(-rc) : "FastCGI error");
            usleep(100000); /* e.g. EMFILE: do not spin */
            pthread_mutex_lock(&S.mu);
            continue;
        }
        if (S.accepting == 0 && S.nthreads < WORKERS_MAX)
            spawn_locked();
        pthread_mutex_unlock(&S.mu);

        S.fn(S.ctx, &req);
        FCGX_Finish_r(&req);

        pthread_mutex_lock(&S.mu);
        if (S.accepting >= WORKERS_SPARE)
            break; /* enough threads are waiting for work: this one retires */
    }
    pthread_mutex_unlock(&S.mu);
    FCGX_Free(&req, 0);
    /* Free per-thread library state before saying we are gone: once the last worker has
     * retired, main may exit, and thread-local destructors that had not run yet would leak. */
    util_thread_done();
    pthread_mutex_lock(&S.mu);
    retire_locked(w);
    pthread_mutex_unlock(&S.mu);
    return NULL;
}

static void on_wake(int sig)
{
    (void)sig; /* only interrupts accept() */
}

int server_run(int listen_fd, server_handler_fn fn, void *ctx)
{
    sigset_t set;
    stop_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_wake; /* no SA_RESTART: accept() returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);

    S.listen_fd = listen_fd;
    S.fn = fn;
    S.ctx = ctx;
    pthread_attr_init(&S.attr);
    pthread_attr_setdetachstate(&S.attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&S.attr, WORKER_STACK);

    pthread_mutex_lock(&S.mu);
    for (int i = 0; i < WORKERS_SPARE; i++)
        spawn_locked();
    int started = S.nthreads;
    pthread_mutex_unlock(&S.mu);
    if (!started)
        return -1;
    log_info("serving FastCGI (%d threads waiting)", started);

    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    log_info("signal %d: shutting down", sig);
    FCGX_ShutdownPending();

    int64_t deadline = util_mono_ms() + SHUTDOWN_GRACE_MS;
    pthread_mutex_lock(&S.mu);
    S.stopping = 1;
    while (S.nthreads > 0 && util_mono_ms() < deadline) {
        for (struct worker *w = S.workers; w; w = w->next)
            if (w->in_accept)
                pthread_kill(w->tid, SIGUSR2);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&S.cv, &S.mu, &ts);
    }
    int left = S.nthreads;
    pthread_mutex_unlock(&S.mu);
    if (left) {
        log_warn("%d requests still running after %d ms; exiting anyway", left, SHUTDOWN_GRACE_MS);
        return 1;
    }
    pthread_attr_destroy(&S.attr);
    return 0;
}
