#include "fcgi/request.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/util.h"

const char *request_param(struct request *rq, const char *name)
{
    return io_param(rq->io, name);
}

static void trim_copy(char *dst, size_t n, const char *src, size_t len)
{
    while (len && (*src == ' ' || *src == '\t')) {
        src++;
        len--;
    }
    while (len && (src[len - 1] == ' ' || src[len - 1] == '\t'))
        len--;
    if (len >= n)
        len = n - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* The client is the address TRUSTED_PROXIES hops from the right of [X-Forwarded-For...,
 * REMOTE_ADDR], as the seed (Express "trust proxy" N) does. */
static void client_ip(struct request *rq, long long hops)
{
    const char *remote = request_param(rq, "REMOTE_ADDR");
    trim_copy(rq->client_ip, sizeof rq->client_ip, remote ? remote : "",
              remote ? strlen(remote) : 0);
    const char *xff = request_param(rq, "HTTP_X_FORWARDED_FOR");
    if (hops <= 0 || !xff)
        return;
    const char *end = xff + strlen(xff);
    for (long long i = 0; i < hops && end > xff; i++) {
        const char *start = end;
        while (start > xff && start[-1] != ',')
            start--;
        trim_copy(rq->client_ip, sizeof rq->client_ip, start, (size_t)(end - start));
        end = start > xff ? start - 1 : xff;
    }
}

int request_init(struct request *rq, struct io *io, const struct config *cfg)
{
    memset(rq, 0, sizeof *rq);
    rq->io = io;
    buf_init(&rq->body, 0);
    util_random_hex(rq->id, sizeof rq->id - 1);
    const char *m = request_param(rq, "REQUEST_METHOD");
    rq->method = m ? m : "GET";
    client_ip(rq, cfg->trusted_proxies);
    int rc = router_resolve(request_param(rq, "SCRIPT_NAME"), request_param(rq, "PATH_INFO"),
                            request_param(rq, "REQUEST_URI"), cfg->base, &rq->rp);
    if (rc) {
        strcpy(rq->rp.path, "/");
        rq->rp.mount[0] = '\0';
        rq->route.id = ROUTE_NONE;
        return rc;
    }
    router_match(rq->rp.path, cfg->base, &rq->route);
    return 0;
}

void request_free(struct request *rq)
{
    buf_free(&rq->body);
}

int request_read_body(struct request *rq, long long max)
{
    char chunk[16384];
    buf_init(&rq->body, (size_t)max);
    for (;;) {
        long n = io_read(rq->io, chunk, sizeof chunk);
        if (n < 0)
            return OAI_ECLIENTIO;
        if (n == 0)
            return 0;
        int rc = buf_add(&rq->body, chunk, (size_t)n);
        if (rc == OAI_ELIMIT)
            return OAI_ETOOBIG;
        if (rc)
            return rc;
    }
}

void request_origin(struct request *rq, const struct config *cfg, char *out, size_t n)
{
    const char *https = request_param(rq, "HTTPS");
    const char *scheme = request_param(rq, "REQUEST_SCHEME");
    if (!scheme || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
        scheme = https && strcasecmp(https, "on") == 0 ? "https" : "http";
    if (cfg->trusted_proxies > 0) {
        const char *fwd = request_param(rq, "HTTP_X_FORWARDED_PROTO");
        if (fwd && (strcmp(fwd, "http") == 0 || strcmp(fwd, "https") == 0))
            scheme = fwd;
    }
    const char *host = request_param(rq, "HTTP_HOST");
    char hostbuf[300];
    if (!host || !*host || strpbrk(host, " \t\r\n/\\\"<>")) {
        const char *name = request_param(rq, "SERVER_NAME");
        const char *port = request_param(rq, "SERVER_PORT");
        snprintf(hostbuf, sizeof hostbuf, "%s%s%s", name ? name : "localhost", port ? ":" : "",
                 port ? port : "");
        host = hostbuf;
    }
    snprintf(out, n, "%s://%s", scheme, host);
}
