#include "fcgi/response.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"

void resp_init(struct response *r, struct io *io)
{
    r->io = io;
    r->status = 0;
    r->gone = 0;
    buf_init(&r->hdr, LIMIT_HEADER_BLOCK);
}

void resp_free(struct response *r)
{
    buf_free(&r->hdr);
}

const char *resp_reason(int status)
{
    const char *reason = util_http_reason(status);
    return reason ? reason : "Status";
}

int resp_header(struct response *r, const char *name, const char *value)
{
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return OAI_EBADREQ;
    return buf_printf(&r->hdr, "%s: %s\r\n", name, value);
}

static int put(struct response *r, const void *p, size_t n)
{
    if (r->gone)
        return OAI_EGONE;
    if (io_write(r->io, p, n)) {
        r->gone = 1;
        return OAI_EGONE;
    }
    return 0;
}

int resp_begin(struct response *r, int status, const char *ctype, long long length)
{
    char head[512];
    int n = snprintf(head, sizeof head, "Status: %d %s\r\nAccess-Control-Allow-Origin: *\r\n",
                     status, resp_reason(status));
    if (ctype)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Type: %s\r\n", ctype);
    if (length >= 0)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %lld\r\n", length);
    r->status = status;
    if (put(r, head, (size_t)n) || put(r, r->hdr.data ? r->hdr.data : "", r->hdr.len))
        return OAI_EGONE;
    return put(r, "\r\n", 2);
}

int resp_write(struct response *r, const void *p, size_t n)
{
    return put(r, p, n);
}

int resp_flush(struct response *r)
{
    if (r->gone)
        return OAI_EGONE;
    if (io_flush(r->io)) {
        r->gone = 1;
        return OAI_EGONE;
    }
    return 0;
}

int resp_send(struct response *r, int status, const char *ctype, const void *body, size_t n)
{
    int rc = resp_begin(r, status, ctype, (long long)n);
    if (!rc && n)
        rc = resp_write(r, body, n);
    if (!rc)
        rc = resp_flush(r);
    return rc;
}

int resp_json(struct response *r, int status, json_object *obj)
{
    size_t len;
    const char *s = util_json_plain(obj, &len);
    return resp_send(r, status, "application/json", s, len);
}
