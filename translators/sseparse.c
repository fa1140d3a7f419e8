#include "translators/sseparse.h"

#include <string.h>

#include "common/err.h"

/*
 * Line parsing follows the WHATWG event-stream interpretation rules, with two deliberate
 * differences for a machine-to-machine upstream: "id" and "retry" are ignored, and an event name
 * longer than the struct's buffer is an error rather than silently cut.
 *
 * p->saw_cr has a third value: FIRST_LINE means no line has ended yet, so a UTF-8 byte order mark
 * at the start of the line being read is the stream's BOM and is skipped (the BOM may itself
 * arrive split across calls, which is why it is only looked at when the first line ends).
 */
#define FIRST_LINE 2

static const char bom[] = "\xEF\xBB\xBF";

/* sseparse_init: every line and every event's data are bounded by max_event bytes. */
void sseparse_init(struct sseparse *p, size_t max_event)
{
    buf_init(&p->line, max_event);
    buf_init(&p->data, max_event);
    p->event[0] = '\0';
    p->has_data = 0;
    p->saw_cr = FIRST_LINE;
}

/* sseparse_free releases the buffers; the parser may be initialised again. */
void sseparse_free(struct sseparse *p)
{
    buf_free(&p->line);
    buf_free(&p->data);
    p->event[0] = '\0';
    p->has_data = 0;
    p->saw_cr = FIRST_LINE;
}

static void reset_event(struct sseparse *p)
{
    buf_reset(&p->data);
    p->event[0] = '\0';
    p->has_data = 0;
}

static int dispatch(struct sseparse *p, sseparse_fn fn, void *ctx)
{
    int rc = 0;
    if (p->has_data) {
        const char *name = p->event[0] ? p->event : NULL;
        rc = fn(ctx, name, p->data.data ? p->data.data : "", p->data.len);
    }
    reset_event(p);
    return rc < 0 ? rc : 0;
}

/* process_line handles one complete line (without its terminator). */
static int process_line(struct sseparse *p, const char *s, size_t n, sseparse_fn fn, void *ctx)
{
    if (n == 0)
        return dispatch(p, fn, ctx);
    if (s[0] == ':')
        return 0; /* comment */
    const char *colon = memchr(s, ':', n);
    size_t flen = colon ? (size_t)(colon - s) : n;
    const char *v = colon ? colon + 1 : s + n;
    size_t vlen = (size_t)(s + n - v);
    if (vlen && v[0] == ' ') {
        v++;
        vlen--;
    }
    if (flen == 5 && memcmp(s, "event", 5) == 0) {
        if (vlen >= sizeof p->event)
            return OAI_ELIMIT;
        memcpy(p->event, v, vlen);
        p->event[vlen] = '\0';
        return 0;
    }
    if (flen == 4 && memcmp(s, "data", 4) == 0) {
        int rc = 0;
        if (p->has_data)
            rc = buf_add(&p->data, "\n", 1);
        if (!rc)
            rc = buf_add(&p->data, v, vlen);
        if (rc)
            return rc;
        p->has_data = 1;
        return 0;
    }
    return 0; /* id, retry and unknown fields */
}

/* end_line is called at a line terminator: the line is the buffered part plus s[0..n). */
static int end_line(struct sseparse *p, const char *s, size_t n, sseparse_fn fn, void *ctx)
{
    const char *line = s;
    size_t len = n;
    if (n > p->line.max || p->line.len + n > p->line.max)
        return OAI_ELIMIT; /* the same ceiling whether or not the line arrived in pieces */
    if (p->line.len) {
        int rc = buf_add(&p->line, s, n);
        if (rc)
            return rc;
        line = p->line.data;
        len = p->line.len;
    }
    if (p->saw_cr == FIRST_LINE && len >= 3 && memcmp(line, bom, 3) == 0) {
        line += 3;
        len -= 3;
    }
    int rc = process_line(p, line, len, fn, ctx);
    buf_reset(&p->line);
    return rc;
}

/* sseparse_feed: parses bytes[0..n), calling fn for each complete event (data NUL-terminated,
 * len without the terminator). An event whose blank line has not arrived is kept for the next
 * call; at the end of the stream it was never complete and is not dispatched. Returns 0, fn's
 * negative code, OAI_ELIMIT (a line, an event's data or an event name too long) or OAI_ENOMEM;
 * after an error, stop feeding this parser. */
int sseparse_feed(struct sseparse *p, const char *bytes, size_t n, sseparse_fn fn, void *ctx)
{
    int rc = 0;
    size_t i = 0;
    while (i < n) {
        if (p->saw_cr == 1) {
            p->saw_cr = 0;
            if (bytes[i] == '\n') {
                i++;
                continue; /* the \n of a \r\n pair */
            }
        }
        size_t j = i;
        while (j < n && bytes[j] != '\r' && bytes[j] != '\n')
            j++;
        if (j == n) {
            rc = buf_add(&p->line, bytes + i, j - i);
            if (rc)
                goto done;
            break;
        }
        rc = end_line(p, bytes + i, j - i, fn, ctx);
        p->saw_cr = bytes[j] == '\r';
        if (rc)
            goto done;
        i = j + 1;
    }
done:
    if (rc) {
        /* leave the parser in a clean state: an oversized line or event is dropped whole */
        buf_reset(&p->line);
        if (rc == OAI_ELIMIT)
            reset_event(p);
    }
    return rc;
}
