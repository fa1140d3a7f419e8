/*
 * sse.h - a server-sent-events writer on top of a response.
 *
 * sse_begin commits 200 with the stream headers of SPEC §6. Each event is flushed to the web
 * server as soon as it is written. A caller waiting on an upstream calls sse_heartbeat at least
 * every sse_heartbeat_in() ms: it writes a ": keep-alive" comment when HEARTBEAT_S passed
 * without output, which is also how a gone client is noticed. Every call returns OAI_EGONE
 * as soon as the client is gone, so the caller can abort the upstream transfer at once.
 * Times are monotonic milliseconds supplied by the caller.
 */
#ifndef OAI_SSE_H
#define OAI_SSE_H

#include <json-c/json.h>
#include <stdint.h>

#include "fcgi/response.h"

struct sse {
    struct response *resp; /* borrowed */
    int64_t last_ms;       /* time of the last write */
    int64_t heartbeat_ms;
};

/* sse_begin sends the 200 stream headers and flushes. */
int sse_begin(struct sse *s, struct response *r, int heartbeat_s, int64_t now_ms);
/* sse_event writes "event: NAME\n" (when name is non-NULL) and the data, one "data:" line per
 * line of data, then a blank line, and flushes. */
int sse_event(struct sse *s, const char *name, const char *data, size_t len, int64_t now_ms);
/* sse_json writes obj (borrowed) as one event's data. */
int sse_json(struct sse *s, const char *name, json_object *obj, int64_t now_ms);
/* sse_comment writes ": text" and flushes. */
int sse_comment(struct sse *s, const char *text, int64_t now_ms);
/* sse_heartbeat writes a keep-alive comment if one is due: 1 written, 0 not due, OAI_EGONE. */
int sse_heartbeat(struct sse *s, int64_t now_ms);
/* sse_heartbeat_in is how many ms remain until the next heartbeat is due (>= 0). */
int64_t sse_heartbeat_in(const struct sse *s, int64_t now_ms);

#endif
