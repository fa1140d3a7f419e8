#include "fcgi/sse.h"

#include <string.h>

#include "common/err.h"
#include "common/util.h"

int sse_begin(struct sse *s, struct response *r, int heartbeat_s, int64_t now_ms)
{
    s->resp = r;
    s->last_ms = now_ms;
    s->heartbeat_ms = (int64_t)heartbeat_s * 1000;
    int rc = resp_header(r, "Cache-Control", "no-cache");
    if (!rc)
        rc = resp_header(r, "X-Accel-Buffering", "no");
    if (rc)
        return rc;
    rc = resp_begin(r, 200, "text/event-stream; charset=utf-8", -1);
    return rc ? rc : resp_flush(r);
}

static int done(struct sse *s, int64_t now_ms)
{
    s->last_ms = now_ms;
    return resp_flush(s->resp);
}

int sse_event(struct sse *s, const char *name, const char *data, size_t len, int64_t now_ms)
{
    struct response *r = s->resp;
    if (name && (resp_write(r, "event: ", 7) || resp_write(r, name, strlen(name)) ||
                 resp_write(r, "\n", 1)))
        return OAI_EGONE;
    const char *p = data, *end = data + len;
    do {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n && p[n - 1] == '\r')
            n--;
        if (resp_write(r, "data: ", 6) || resp_write(r, p, n) || resp_write(r, "\n", 1))
            return OAI_EGONE;
        p = nl ? nl + 1 : end;
    } while (p < end);
    if (resp_write(r, "\n", 1))
        return OAI_EGONE;
    return done(s, now_ms);
}

int sse_json(struct sse *s, const char *name, json_object *obj, int64_t now_ms)
{
    size_t len;
    const char *str = util_json_plain(obj, &len);
    return sse_event(s, name, str, len, now_ms);
}

int sse_comment(struct sse *s, const char *text, int64_t now_ms)
{
    if (resp_write(s->resp, ": ", 2) || resp_write(s->resp, text, strcspn(text, "\r\n")) ||
        resp_write(s->resp, "\n\n", 2))
        return OAI_EGONE;
    return done(s, now_ms);
}

int64_t sse_heartbeat_in(const struct sse *s, int64_t now_ms)
{
    int64_t left = s->last_ms + s->heartbeat_ms - now_ms;
    return left > 0 ? left : 0;
}

int sse_heartbeat(struct sse *s, int64_t now_ms)
{
    if (s->resp->gone)
        return OAI_EGONE;
    if (sse_heartbeat_in(s, now_ms) > 0)
        return 0;
    int rc = sse_comment(s, "keep-alive", now_ms);
    return rc ? rc : 1;
}
