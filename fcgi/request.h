/*
 * request.h - one incoming request: method, route, mount, client address and body.
 *
 * Parameters are borrowed from the io backend and live as long as the request.
 */
#ifndef OAI_REQUEST_H
#define OAI_REQUEST_H

#include "common/buf.h"
#include "fcgi/config.h"
#include "fcgi/io.h"
#include "fcgi/router.h"

struct request {
    struct io *io;        /* borrowed */
    const char *method;   /* "GET", "POST", ... */
    struct route_path rp; /* path relative to the mount, and the mount */
    struct route route;   /* ROUTE_NONE when the path names no route */
    char client_ip[64];   /* after TRUSTED_PROXIES */
    char id[25];          /* random request id for logs and response ids */
    struct buf body;
};

/* request_init resolves the route of the request on io under cfg. Returns 0 or OAI_EBADREQ
 * (undecodable path); rq is usable (and must be freed) either way. */
int request_init(struct request *rq, struct io *io, const struct config *cfg);
void request_free(struct request *rq);

/* request_param borrows a CGI variable ("HTTP_ACCEPT", "REMOTE_ADDR", ...). */
const char *request_param(struct request *rq, const char *name);

/* request_read_body reads the body to its end, whatever CONTENT_LENGTH says, into rq->body.
 * Returns 0, OAI_ETOOBIG past max bytes, OAI_ECLIENTIO if the body could not be read. */
int request_read_body(struct request *rq, long long max);

/* request_origin writes "scheme://host[:port]" as the client reached the server. */
void request_origin(struct request *rq, const struct config *cfg, char *out, size_t n);

#endif
