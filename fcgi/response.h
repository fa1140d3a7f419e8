/*
 * response.h - status line, headers and body of one response, in CGI form
 * ("Status: 200 OK\r\nName: value\r\n\r\n" then the body).
 *
 * Every response carries Access-Control-Allow-Origin: *. Headers queued with resp_header go
 * out with resp_begin. After the client is gone every call returns OAI_EGONE at once.
 */
#ifndef OAI_RESPONSE_H
#define OAI_RESPONSE_H

#include <json-c/json.h>
#include <stddef.h>

#include "common/buf.h"
#include "fcgi/io.h"

struct response {
    struct io *io;  /* borrowed */
    int status;     /* 0 until resp_begin */
    int gone;       /* the client disconnected */
    struct buf hdr; /* queued extra headers */
};

void resp_init(struct response *r, struct io *io);
void resp_free(struct response *r);

/* resp_header queues "name: value" (CR/LF in either is refused). 0, OAI_EBADREQ, OAI_ELIMIT. */
__attribute__((warn_unused_result)) int resp_header(struct response *r, const char *name,
                                                    const char *value);
/* resp_begin sends the status, Content-Type (may be NULL), Content-Length (when >= 0) and the
 * queued headers. 0 or OAI_EGONE. */
int resp_begin(struct response *r, int status, const char *ctype, long long length);
/* resp_write sends body bytes (buffered until resp_flush). 0 or OAI_EGONE. */
int resp_write(struct response *r, const void *p, size_t n);
int resp_flush(struct response *r);
/* resp_send sends a whole response. */
int resp_send(struct response *r, int status, const char *ctype, const void *body, size_t n);
/* resp_json sends obj (borrowed) as the body of a JSON response. */
int resp_json(struct response *r, int status, json_object *obj);

/* resp_reason is the HTTP reason phrase for a status. */
const char *resp_reason(int status);

#endif
