/*
 * io.h - the responder's one request/response interface, with three backends:
 *   io_fcgx  a libfcgi FCGX_Request (FastCGI, spawned or --listen)
 *   io_cgi   the process environment, stdin and stdout (CGI)
 *   io_mem   in-memory params, body and output (unit tests)
 *
 * Everything above this interface is the same for FastCGI, CGI and tests.
 */
#ifndef OAI_IO_H
#define OAI_IO_H

#include <fcgiapp.h>
#include <stddef.h>

#include "common/buf.h"

struct io;

struct io_ops {
    /* param borrows the value of a request parameter (CGI variable), NULL if absent. */
    const char *(*param)(struct io *io, const char *name);
    /* params borrows the NULL-terminated "NAME=value" list of all parameters. */
    char **(*params)(struct io *io);
    /* read reads up to n body bytes: count, 0 at end of body, or OAI_ECLIENTIO. */
    long (*read)(struct io *io, char *buf, size_t n);
    /* write queues n output bytes: 0, or OAI_EGONE once the client is gone. */
    int (*write)(struct io *io, const char *p, size_t n);
    /* flush sends queued output to the web server now: 0 or OAI_EGONE. */
    int (*flush)(struct io *io);
    /* gone says, without blocking or writing, whether the web server dropped the request (the
     * client left): 1 or 0. Once the body is read nothing more should arrive on the
     * connection, so anything readable there (EOF, an abort record) means gone. */
    int (*gone)(struct io *io);
};

struct io {
    const struct io_ops *ops;
    int params_are_env; /* CGI: parameters and process environment are the same list */
};

static inline const char *io_param(struct io *io, const char *name)
{
    return io->ops->param(io, name);
}

static inline char **io_params(struct io *io)
{
    return io->ops->params(io);
}

static inline long io_read(struct io *io, char *buf, size_t n)
{
    return io->ops->read(io, buf, n);
}

static inline int io_write(struct io *io, const char *p, size_t n)
{
    return io->ops->write(io, p, n);
}

static inline int io_flush(struct io *io)
{
    return io->ops->flush(io);
}

static inline int io_gone(struct io *io)
{
    return io->ops->gone(io);
}

/* ---- io_fcgx.c ---- */
struct io_fcgx {
    struct io base;
    FCGX_Request *req; /* borrowed */
};
/* io_fcgx_init wraps an accepted request; the wrapper owns nothing. */
void io_fcgx_init(struct io_fcgx *io, FCGX_Request *req);

/* ---- io_cgi.c ---- */
struct io_cgi {
    struct io base;
    char **envp;
    int in_fd, out_fd;
    int gone;
    size_t olen;
    char obuf[8192];
};
/* io_cgi_init serves one CGI request from envp, in_fd and out_fd (all borrowed). */
void io_cgi_init(struct io_cgi *io, char **envp, int in_fd, int out_fd);

/* ---- io_mem.c ---- */
struct io_mem {
    struct io base;
    char **params;    /* borrowed */
    const char *body; /* borrowed */
    size_t body_len, body_pos;
    struct buf out;    /* owned: everything written */
    size_t fail_after; /* > 0: the "client" leaves once this many bytes were written */
    int gone;
    int flushes;
};
/* io_mem_init serves a request from params and body; io_mem_free frees the output. */
void io_mem_init(struct io_mem *io, char **params, const char *body, size_t body_len);
void io_mem_free(struct io_mem *io);

#endif
