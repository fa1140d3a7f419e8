/*
 * main.c - oai-fcgi: picks the run mode (SPEC §2) and hands requests to the app.
 *
 *   spawned FastCGI   fd 0 is a listening socket (lighttpd bin-path, mod_fcgid, spawn-fcgi)
 *   --listen ADDR     FastCGI on HOST:PORT or a unix socket path (nginx, Caddy, proxy_fcgi)
 *   CGI               anything else with a CGI environment: one request, then exit
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "build-info.h"
#include "revision.h"
#include "fcgi/app.h"
#include "fcgi/server.h"
#include "state/state.h"
#include "upstream/proxy.h"
#include "upstream/transport.h"

extern char **environ;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: oai-fcgi [--listen ADDR [--socket-mode MODE]] | --check-config | --version | "
            "--help\n"
            "\n"
            "OpenAI- and Anthropic-compatible gateway to Claude on Vertex AI and Bedrock and to\n"
            "Azure OpenAI, run as a FastCGI responder or CGI program by your web server.\n"
            "\n"
            "Run modes:\n"
            "  (no option)          FastCGI when fd 0 is a listening socket (lighttpd bin-path,\n"
            "                       Apache mod_fcgid, spawn-fcgi); CGI when run from a cgi-bin\n"
            "  --listen ADDR        FastCGI on 127.0.0.1:PORT (an explicit host is required) or\n"
            "                       on a unix socket /path/to.sock (nginx, Caddy, mod_proxy_fcgi)\n"
            "  --socket-mode MODE   permissions of the --listen unix socket (octal, default 0660)\n"
            "  --check-config       validate the environment, print a redacted summary, exit\n"
            "                       non-zero with one line per problem\n"
            "  --version            print the version\n"
            "  --help               this text\n"
            "\n"
            "Settings come from the request's FastCGI param, then REDIRECT_<NAME>, then the\n"
            "process environment (never from HTTP_* names):\n");
}

static void print_line(void *ctx, const char *line)
{
    fprintf(ctx, "%s\n", line);
}

/* After a good --check-config: if requests reached the gateway through Apache without any
 * credential while a gatekeeper is on (see APP_HINT_CGIPASSAUTH), one hint line on stdout. Not
 * a problem: the exit status stays as it is, and a store that cannot be read just skips it. */
static void print_cgipassauth_hint(struct app *app)
{
    if (app->cfg.gatekeeper == GK_NONE || !app->stores[0])
        return;
    char *v = NULL;
    if (state_kv_get(app->stores[0], APP_HINT_CGIPASSAUTH, &v, NULL) || !v)
        return;
    char when[32] = "unknown";
    time_t t = (time_t)(strtoll(v, NULL, 10) / 1000);
    struct tm tm;
    if (t > 0 && gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    free(v);
    printf("hint: requests reached the gateway through Apache without an Authorization header "
           "while GATEKEEPER=%s (latest %s): if your clients send Authorization: Bearer, add "
           "CGIPassAuth On where the gateway is mounted\n",
           app->cfg.gatekeeper == GK_PROXY_KEY ? "proxy_key" : "user_token", when);
}

static int check_config(void)
{
    struct app app;
    int rc = app_init(&app, 0, print_line, stderr);
    if (rc > 0) {
        fprintf(stderr, "%d configuration problem%s\n", rc, rc == 1 ? "" : "s");
        app_free(&app);
        return 1;
    }
    if (rc < 0) {
        fprintf(stderr, "STATE_PATH: cannot open the state store %s\n", app.cfg.state_path);
        app_free(&app);
        return 1;
    }
    json_object *sum = config_summary(&app.cfg);
    json_object_object_add(sum, "statePath", json_object_new_string(app.cfg.state_path));
    json_object_object_add(sum, "gcpKeys", json_object_new_int(app.cfg.gcp_keys));
    json_object_object_add(sum, "awsKeys", json_object_new_int(app.cfg.aws_keys));
    json_object_object_add(sum, "azureKeys", json_object_new_int(app.cfg.azure_keys));
    json_object_object_add(
        sum, "proxyKey",
        json_object_new_string(app.cfg.proxy_key && *app.cfg.proxy_key ? "set" : "unset"));
    json_object_object_add(
        sum, "adminKey",
        json_object_new_string(app.cfg.admin_key && *app.cfg.admin_key ? "set" : "unset"));
    printf("configuration OK\n%s\n",
           json_object_to_json_string_ext(sum, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                   JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(sum);
    print_cgipassauth_hint(&app);
    app_free(&app);
    return 0;
}

static void handle_fcgx(void *ctx, FCGX_Request *req)
{
    struct io_fcgx io;
    io_fcgx_init(&io, req);
    app_handle(ctx, &io.base);
}

/* Validates a --listen spec before libfcgi sees it (FCGX_OpenSocket exit()s on some errors,
 * and ":PORT" would bind every interface). */
static int listen_spec_ok(const char *spec)
{
    if (spec[0] == '/')
        return strlen(spec) < sizeof(((struct sockaddr_un *)0)->sun_path);
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec) {
        fprintf(stderr,
                "--listen %s: give HOST:PORT with an explicit host (e.g. 127.0.0.1:%s) "
                "or an absolute unix socket path\n",
                spec, colon ? colon + 1 : "9000");
        return 0;
    }
    char host[256];
    size_t hl = (size_t)(colon - spec);
    long long port;
    if (hl >= sizeof host || util_parse_long(colon + 1, 1, 65535, &port)) {
        fprintf(stderr, "--listen %s: bad port\n", spec);
        return 0;
    }
    memcpy(host, spec, hl);
    host[hl] = '\0';
    struct in_addr a;
    if (inet_pton(AF_INET, host, &a) != 1 && strcmp(host, "localhost") != 0) {
        fprintf(stderr, "--listen %s: the host must be an IPv4 address (libfcgi binds IPv4)\n",
                spec);
        return 0;
    }
    return 1;
}

/* The key checker runs in one thread per FastCGI process; the lease in the state store lets
 * one process of the pool (and of every pool sharing the store) check at a time. */
#define CHECKER_POLL_S 30

static pthread_mutex_t checker_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t checker_cv = PTHREAD_COND_INITIALIZER;
static int checker_stopping;

static int checker_stop(void *p)
{
    (void)p;
    pthread_mutex_lock(&checker_mu);
    int stop = checker_stopping;
    pthread_mutex_unlock(&checker_mu);
    return stop;
}

/* The housekeeping thread: the WAL checkpoint every second (off the request path), memory
 * given back to the system every HOUSEKEEP_TRIM_S, the key checker when it is due. */
#define HOUSEKEEP_TRIM_S 10

static void *checker_main(void *p)
{
    struct app *app = p;
    long long period = app->cfg.key_check_period_s;
    int poll_s = period > 0 && period < CHECKER_POLL_S ? (int)period : CHECKER_POLL_S;
    if (state_background_checkpoints(app->stores[0]))
        log_warn("state store: checkpoints stay inside writes");
    int trimmed = 0;
    for (int64_t tick = 0;; tick++) {
        if (tick % poll_s == 0)
            proxy_key_check(&app->cfg, app->stores[0], checker_stop, NULL);
        if (state_checkpoint(app->stores[0]))
            log_warn("state store: checkpoint failed");
        /* freed request memory back to the system: at once when a burst is over, and now and
         * then while busy (a trim walks every arena: not while requests could wait for it) */
        long busy = atomic_load(&app->in_flight);
        if ((busy == 0 && !trimmed) || tick % HOUSEKEEP_TRIM_S == 0) {
            malloc_trim(0);
            trimmed = 1;
        }
        if (busy)
            trimmed = 0;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_mutex_lock(&checker_mu);
        while (!checker_stopping && pthread_cond_timedwait(&checker_cv, &checker_mu, &until) == 0)
            ;
        int stop = checker_stopping;
        pthread_mutex_unlock(&checker_mu);
        if (stop)
            break;
    }
    util_thread_done();
    return NULL;
}

static int run_fastcgi(struct app *app, int fd)
{
    pthread_t checker;
    int checking = pthread_create(&checker, NULL, checker_main, app) == 0;
    int rc = server_run(fd, handle_fcgx, app);
    pthread_mutex_lock(&checker_mu);
    checker_stopping = 1;
    pthread_cond_broadcast(&checker_cv);
    pthread_mutex_unlock(&checker_mu);
    if (rc == 1)
        _exit(0); /* requests still running: do not free what they use */
    if (checking)
        pthread_join(checker, NULL); /* its transfers stop at their next tick */
    transport_global_cleanup();
    app_free(app);
    return rc < 0 ? 1 : 0;
}

static void log_problem(void *ctx, const char *line);

/* CGI mode: the response is complete; a due key check runs in a detached child holding none of
 * the response's descriptors (the web server sees EOF now), with its own state connection and
 * configuration, and a 60 s bound. */
static void cgi_key_check(void)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return; /* the parent exits normally; a failed fork skips this round */
    if (fork() != 0)
        _exit(0); /* the grandchild is re-parented: nobody waits for it */
    setsid();
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        if (null > 2)
            close(null);
    }
    alarm(60);
    struct app child;
    if (app_init(&child, 1, log_problem, NULL) == 0)
        proxy_key_check(&child.cfg, child.stores[0], NULL, NULL);
    _exit(0);
}

static int run_cgi(struct app *app, int problems)
{
    struct io_cgi io;
    io_cgi_init(&io, environ, 0, 1);
    signal(SIGPIPE, SIG_IGN);
    if (problems) {
        /* Tell the client something is wrong; the details went to the error log. */
        static const char body[] = "{\"error\":{\"message\":\"the gateway is misconfigured; see "
                                   "the server log\",\"type\":\"server_error\",\"param\":null,"
                                   "\"code\":\"config_error\"}}";
        printf("Status: 500 Internal Server Error\r\nContent-Type: application/json\r\n"
               "Access-Control-Allow-Origin: *\r\n\r\n%s",
               body);
        return 0;
    }
    app_handle(app, &io.base);
    io_flush(&io.base);
    int check = app->stores[0] && proxy_key_check_due(&app->cfg, app->stores[0]);
    app_free(app);
    if (check)
        cgi_key_check();
    return 0;
}

static void log_problem(void *ctx, const char *line)
{
    (void)ctx;
    log_error("configuration: %s", line);
}

int main(int argc, char **argv)
{
    const char *listen_addr = NULL;
    long long mode = 0660;
    util_init();
    transport_global_init();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--version") == 0) {
            printf("%s %s (%s)\n", PACKAGE_NAME, PACKAGE_VERSION, OAI_GIT_REV);
            return 0;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            config_print_help(stdout);
            return 0;
        } else if (strcmp(a, "--check-config") == 0) {
            return check_config();
        } else if (strcmp(a, "--listen") == 0 && i + 1 < argc) {
            listen_addr = argv[++i];
        } else if (strcmp(a, "--socket-mode") == 0 && i + 1 < argc) {
            char *end;
            mode = strtoll(argv[++i], &end, 8);
            if (*end || mode < 0 || mode > 0777) {
                fprintf(stderr, "--socket-mode %s: give an octal mode such as 0660\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!listen_addr && getenv("LOG_LEVEL") && log_parse_level(getenv("LOG_LEVEL")) >= 0)
        log_set_level((enum log_level)log_parse_level(getenv("LOG_LEVEL")));

    if (FCGX_Init() != 0) {
        fprintf(stderr, "libfcgi initialisation failed\n");
        return 1;
    }
    int fd = 0;
    if (listen_addr) {
        if (!listen_spec_ok(listen_addr))
            return 2;
        fd = FCGX_OpenSocket(listen_addr, 1024);
        if (fd < 0) {
            fprintf(stderr, "--listen %s: %s\n", listen_addr, strerror(errno));
            return 1;
        }
        if (listen_addr[0] == '/' && chmod(listen_addr, (mode_t)mode) != 0) {
            fprintf(stderr, "--listen %s: chmod: %s\n", listen_addr, strerror(errno));
            return 1;
        }
    } else if (FCGX_IsCGI()) {
        if (!getenv("GATEWAY_INTERFACE") && !getenv("REQUEST_METHOD")) {
            usage(stderr);
            fprintf(stderr, "\nNo FastCGI socket on fd 0 and no CGI environment: start oai-fcgi "
                            "from a web server, or use --listen.\n");
            return 2;
        }
        struct app app;
        int rc = app_init(&app, 1, log_problem, NULL);
        return run_cgi(&app, rc != 0);
    }

    server_block_signals(); /* before any thread exists, so only server_run sees them */
    struct app app;
    int rc = app_init(&app, 0, log_problem, NULL);
    if (rc) {
        log_error("not starting: %s", rc > 0 ? "fix the configuration problems above"
                                             : "the state store cannot be opened (STATE_PATH)");
        app_free(&app);
        if (listen_addr && listen_addr[0] == '/')
            unlink(listen_addr);
        return 1;
    }
    rc = run_fastcgi(&app, fd);
    if (listen_addr && listen_addr[0] == '/')
        unlink(listen_addr);
    return rc;
}
