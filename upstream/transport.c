#include "upstream/transport.h"

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#define DEFAULT_MAX_BODY (8L * 1024 * 1024)

struct priv {
    CURL *easy;
    struct curl_slist *headers;
    struct curl_slist *connect_to;
    int aborted;          /* on_data said the client is gone */
    int stopped;          /* on_data has all it needs: a successful early end */
    int64_t done_ms;      /* on_data said TRANSPORT_DONE then: the body may end by itself */
    int64_t last_data_ms; /* for STREAM_IDLE_TIMEOUT_S */
    int answering;        /* a header line has come: the upstream is sending its reply */
};

/* Connection reuse. Each request runs its transfers on a multi handle taken from a pool and
 * given back afterwards; the upstream connections (TCP + TLS) stay in that handle's connection
 * cache, so the next request reuses one instead of paying a new TLS handshake. A multi handle
 * is used by one thread at a time, which is all libcurl allows (sharing the connection cache
 * itself between concurrent threads is not supported). TLS sessions and DNS answers are shared
 * by every handle through a share object with a lock per kind of data. Idle handles beyond
 * POOL_MAX are closed, which bounds what idle connections hold. */
#define POOL_MAX      64
#define POOL_MAXCONNS 4L /* connections a pooled handle keeps */

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static CURLM *pool[POOL_MAX];
static int npool;
static CURLSH *share;
static pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ctx)
{
    (void)h, (void)access, (void)ctx;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&share_mu[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ctx)
{
    (void)h, (void)ctx;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&share_mu[data]);
}

void transport_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&share_mu[i], NULL);
    share = curl_share_init();
    if (share) {
        curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock);
        curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock);
        curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
        curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    }
}

void transport_global_cleanup(void)
{
    pthread_mutex_lock(&pool_mu);
    while (npool > 0)
        curl_multi_cleanup(pool[--npool]);
    pthread_mutex_unlock(&pool_mu);
}

/* Each upstream TLS connection gives its OpenSSL read and write buffers (about 34 KiB) back
 * while idle - most of the time of a slow stream - instead of holding them for its life. */
static CURLcode tls_setup(CURL *e, void *ssl_ctx, void *ud)
{
    (void)e, (void)ud;
    SSL_CTX_set_mode((SSL_CTX *)ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    return CURLE_OK;
}

static CURLM *multi_get(void)
{
    CURLM *m = NULL;
    pthread_mutex_lock(&pool_mu);
    if (npool > 0)
        m = pool[--npool];
    pthread_mutex_unlock(&pool_mu);
    if (!m && (m = curl_multi_init()) != NULL)
        curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, POOL_MAXCONNS);
    return m;
}

static void multi_put(CURLM *m)
{
    pthread_mutex_lock(&pool_mu);
    if (npool < POOL_MAX) {
        pool[npool++] = m;
        m = NULL;
    }
    pthread_mutex_unlock(&pool_mu);
    if (m)
        curl_multi_cleanup(m);
}

void xfer_init(struct xfer *x)
{
    memset(x, 0, sizeof *x);
    buf_init(&x->body_out, DEFAULT_MAX_BODY);
}

void xfer_free(struct xfer *x)
{
    struct priv *p = x->easy_;
    if (p) {
        curl_easy_cleanup(p->easy);
        curl_slist_free_all(p->headers);
        curl_slist_free_all(p->connect_to);
        free(p);
        x->easy_ = NULL;
    }
    buf_free(&x->body_out);
}

static size_t on_header(char *line, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    struct priv *p = x->easy_;
    size_t len = size * n;
    p->answering = 1;
    p->last_data_ms = util_mono_ms();
    const char *names[] = {"content-type:", "retry-after:", "x-amzn-errortype:", "retry-after-ms:"};
    char *dst[] = {x->content_type, x->retry_after, x->error_type, x->retry_after_ms};
    size_t cap[] = {sizeof x->content_type, sizeof x->retry_after, sizeof x->error_type,
                    sizeof x->retry_after_ms};
    for (int i = 0; i < 4; i++) {
        size_t k = strlen(names[i]);
        if (len > k && strncasecmp(line, names[i], k) == 0) {
            const char *v = line + k;
            size_t vl = len - k;
            while (vl && (*v == ' ' || *v == '\t')) {
                v++;
                vl--;
            }
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
                vl--;
            snprintf(dst[i], cap[i], "%.*s", (int)vl, v);
        }
    }
    return len;
}

static size_t on_body(char *ptr, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    struct priv *p = x->easy_;
    size_t len = size * n;
    p->last_data_ms = util_mono_ms();
    if (!x->status)
        curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &x->status);
    if (x->on_data) {
        if (p->done_ms)
            return len; /* the rest of a finished body: read so that the connection is reusable */
        int rc = x->on_data(x->ctx, x, ptr, len);
        if (rc == TRANSPORT_DONE) {
            p->done_ms = p->last_data_ms;
            return len;
        }
        if (rc < 0)
            p->aborted = 1;
        else if (rc == TRANSPORT_STOP)
            p->stopped = 1;
        /* a short count is CURLE_WRITE_ERROR: libcurl closes the connection at once */
        return rc ? 0 : len;
    }
    if (buf_add(&x->body_out, ptr, len)) {
        snprintf(x->error, sizeof x->error, "upstream response larger than %zu bytes",
                 x->body_out.max);
        return 0;
    }
    return len;
}

/* A comma list "a:1:b:2,c:3:d:4" as a curl_slist. */
static struct curl_slist *split_list(const char *s)
{
    struct curl_slist *l = NULL;
    const char *e;
    size_t len;
    while (util_list_next(&s, &e, &len)) {
        if (!len)
            continue;
        char item[512];
        snprintf(item, sizeof item, "%.*s", (int)(len < 511 ? len : 511), e);
        struct curl_slist *nl = curl_slist_append(l, item);
        if (!nl) {
            curl_slist_free_all(l);
            return NULL;
        }
        l = nl;
    }
    return l;
}

static int setup(struct xfer *x, const struct transport_opts *o)
{
    struct priv *p = calloc(1, sizeof *p);
    if (!p)
        return OAI_ENOMEM;
    x->easy_ = p;
    p->easy = curl_easy_init();
    if (!p->easy)
        return OAI_ENOMEM;
    if (x->max_body)
        x->body_out.max = x->max_body;
    for (int i = 0; i < TRANSPORT_MAX_HEADERS && x->headers[i]; i++) {
        struct curl_slist *nl = curl_slist_append(p->headers, x->headers[i]);
        if (!nl)
            return OAI_ENOMEM;
        p->headers = nl;
    }
    /* libcurl would add "Expect: 100-continue" to large POSTs: one round trip for nothing. */
    struct curl_slist *nl = curl_slist_append(p->headers, "Expect:");
    if (!nl)
        return OAI_ENOMEM;
    p->headers = nl;
    CURL *e = p->easy;
    curl_easy_setopt(e, CURLOPT_URL, x->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->headers);
    if (x->method && strcmp(x->method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body ? x->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* gzip/deflate decoded for us */
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, o->timeout_s > 0 ? o->timeout_s : 600L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->error);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (share)
        curl_easy_setopt(e, CURLOPT_SHARE, share);
    curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, tls_setup);
    /* 8 KiB receive buffer (default 16) and the smallest send buffer (default 64): a held
     * stream costs what it needs, not 80 KiB of buffers it hardly uses */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 8192L);
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
    if (o->ca_bundle && *o->ca_bundle)
        curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_bundle);
    if (o->proxy && *o->proxy)
        curl_easy_setopt(e, CURLOPT_PROXY, o->proxy);
    else
        curl_easy_setopt(e, CURLOPT_PROXY, ""); /* never pick up a stray environment proxy */
    if (o->connect_to && *o->connect_to) {
        p->connect_to = split_list(o->connect_to);
        curl_easy_setopt(e, CURLOPT_CONNECT_TO, p->connect_to);
    }
    p->last_data_ms = util_mono_ms();
    return 0;
}

int transport_run(struct xfer **xs, int n, const struct transport_opts *opts,
                  int (*tick)(void *ctx), void *tick_ctx)
{
    int rc = 0;
    CURLM *multi = multi_get();
    if (!multi)
        return OAI_ENOMEM;
    for (int i = 0; i < n; i++) {
        xs[i]->result = 0;
        xs[i]->status = 0;
        int src = setup(xs[i], opts);
        if (src) {
            rc = src;
            goto done;
        }
        curl_multi_add_handle(multi, ((struct priv *)xs[i]->easy_)->easy);
    }
    int running = n;
    int64_t idle_ms = (opts->idle_timeout_s > 0 ? opts->idle_timeout_s : 300) * 1000;
    while (running > 0) {
        CURLMcode mc = curl_multi_perform(multi, &running);
        if (mc != CURLM_OK) {
            rc = OAI_EUPSTREAM;
            break;
        }
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            for (int i = 0; i < n; i++) {
                struct priv *p = xs[i]->easy_;
                if (p->easy != m->easy_handle)
                    continue;
                curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &xs[i]->status);
                if (p->aborted)
                    xs[i]->result = OAI_EGONE;
                else if (p->stopped)
                    xs[i]->result = 0;
                else if (m->data.result != CURLE_OK) {
                    xs[i]->result = OAI_EUPSTREAM;
                    if (!xs[i]->error[0])
                        snprintf(xs[i]->error, sizeof xs[i]->error, "%s",
                                 curl_easy_strerror(m->data.result));
                }
            }
        }
        if (running == 0)
            break;
        int aborted = 0;
        for (int i = 0; i < n; i++)
            aborted |= ((struct priv *)xs[i]->easy_)->aborted;
        if (aborted)
            break; /* one choice's client is gone: the whole request is over */
        if (tick && tick(tick_ctx) < 0) {
            for (int i = 0; i < n; i++)
                if (!xs[i]->result)
                    xs[i]->result = OAI_EGONE;
            break;
        }
        int64_t now = util_mono_ms();
        int lingering = 0, open = 0;
        for (int i = 0; i < n; i++) {
            struct priv *p = xs[i]->easy_;
            int finished = xs[i]->result || p->stopped;
            open += !finished && !p->done_ms;
            lingering += !finished && p->done_ms && now - p->done_ms > TRANSPORT_DONE_GRACE_MS;
        }
        if (lingering && !open) {
            /* done, but the upstream keeps the body open: end it as a success (the connection
             * is closed) */
            for (int i = 0; i < n; i++)
                ((struct priv *)xs[i]->easy_)->stopped = 1;
            break;
        }
        for (int i = 0; i < n; i++) {
            struct priv *p = xs[i]->easy_;
            if (!xs[i]->result && p->answering && now - p->last_data_ms > idle_ms) {
                xs[i]->result = OAI_EUPSTREAM;
                curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &xs[i]->status);
                snprintf(xs[i]->error, sizeof xs[i]->error,
                         "upstream silent for more than STREAM_IDLE_TIMEOUT_S");
                running = 0;
            }
        }
        if (running == 0)
            break;
        curl_multi_poll(multi, NULL, 0, TRANSPORT_TICK_MS, NULL);
    }
    for (int i = 0; i < n; i++) {
        if (((struct priv *)xs[i]->easy_)->aborted && !xs[i]->result)
            xs[i]->result = OAI_EGONE;
        if (!rc && xs[i]->result)
            rc = xs[i]->result;
    }
done:
    for (int i = 0; i < n; i++) {
        struct priv *p = xs[i]->easy_;
        if (p && p->easy)
            curl_multi_remove_handle(multi, p->easy);
    }
    multi_put(multi); /* its connections stay open for the next request */
    return rc;
}
