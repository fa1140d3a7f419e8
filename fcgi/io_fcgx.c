#include <poll.h>

#include "common/err.h"
#include "fcgi/io.h"

static struct io_fcgx *self(struct io *io)
{
    return (struct io_fcgx *)io;
}

static const char *param(struct io *io, const char *name)
{
    return FCGX_GetParam(name, self(io)->req->envp);
}

static char **params(struct io *io)
{
    return self(io)->req->envp;
}

static long rd(struct io *io, char *buf, size_t n)
{
    FCGX_Stream *in = self(io)->req->in;
    int chunk = n > 65536 ? 65536 : (int)n;
    int got = FCGX_GetStr(buf, chunk, in);
    if (got > 0)
        return got;
    /* 0 is a clean end of body only if the stream has no error (libfcgi reports an aborted
     * request as a protocol error on the input stream). */
    return FCGX_GetError(in) ? OAI_ECLIENTIO : 0;
}

static int wr(struct io *io, const char *p, size_t n)
{
    FCGX_Stream *out = self(io)->req->out;
    while (n > 0) {
        int chunk = n > 65536 ? 65536 : (int)n;
        if (FCGX_PutStr(p, chunk, out) != chunk)
            return OAI_EGONE;
        p += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

static int fl(struct io *io)
{
    return FCGX_FFlush(self(io)->req->out) < 0 ? OAI_EGONE : 0;
}

static int gone(struct io *io)
{
    struct pollfd p = {.fd = self(io)->req->ipcFd, .events = POLLIN | POLLRDHUP};
    if (p.fd < 0)
        return 1;
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR));
}

static const struct io_ops ops = {param, params, rd, wr, fl, gone};

void io_fcgx_init(struct io_fcgx *io, FCGX_Request *req)
{
    io->base.ops = &ops;
    io->base.params_are_env = 0;
    io->req = req;
}
