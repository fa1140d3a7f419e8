/*
 * sseparse.h - incremental server-sent-events parser for upstream streams.
 *
 * Bytes may be split anywhere (inside a line, inside a UTF-8 sequence, between \r and \n).
 * Lines end in \n, \r\n or \r; "event:" sets the event name, "data:" lines are joined with
 * "\n", ":" lines are comments, a blank line dispatches the event (if it had data). Every
 * event is bounded by max_event bytes: larger is OAI_ELIMIT, never an unbounded buffer.
 */
#ifndef OAI_SSEPARSE_H
#define OAI_SSEPARSE_H

#include <stddef.h>

#include "common/buf.h"

struct sseparse {
    struct buf line; /* the current, unfinished line */
    struct buf data; /* data lines of the current event */
    char event[64];  /* event name of the current event, "" if none */
    int has_data;
    int saw_cr; /* 1: the last byte was \r (a following \n belongs to it); 2: no line has
                 * ended yet (a leading byte-order mark is still to be skipped) */
};

/* Called once per event: name NULL when the event had no "event:" line. A negative return
 * stops parsing and is returned by sseparse_feed. */
typedef int (*sseparse_fn)(void *ctx, const char *name, const char *data, size_t len);

void sseparse_init(struct sseparse *p, size_t max_event);
void sseparse_free(struct sseparse *p);
/* sseparse_feed parses n more bytes. Returns 0, fn's negative code, or OAI_ELIMIT. */
int sseparse_feed(struct sseparse *p, const char *bytes, size_t n, sseparse_fn fn, void *ctx);

#endif
