#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "fcgi/io.h"

static struct io_cgi *self(struct io *io)
{
    return (struct io_cgi *)io;
}

static const char *param(struct io *io, const char *name)
{
    size_t n = strlen(name);
    for (char **e = self(io)->envp; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

static char **params(struct io *io)
{
    return self(io)->envp;
}

static long rd(struct io *io, char *buf, size_t n)
{
    for (;;) {
        ssize_t got = read(self(io)->in_fd, buf, n);
        if (got >= 0)
            return (long)got;
        if (errno != EINTR)
            return OAI_ECLIENTIO;
    }
}

static int fl(struct io *io)
{
    struct io_cgi *c = self(io);
    size_t off = 0;
    while (!c->gone && off < c->olen) {
        ssize_t w = write(c->out_fd, c->obuf + off, c->olen - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            c->gone = 1; /* EPIPE: the web server (and so the client) went away */
        else
            off += (size_t)w;
    }
    c->olen = 0;
    return c->gone ? OAI_EGONE : 0;
}

static int wr(struct io *io, const char *p, size_t n)
{
    struct io_cgi *c = self(io);
    while (n > 0) {
        if (c->gone)
            return OAI_EGONE;
        size_t room = sizeof c->obuf - c->olen;
        size_t k = n < room ? n : room;
        memcpy(c->obuf + c->olen, p, k);
        c->olen += k;
        p += k;
        n -= k;
        if (c->olen == sizeof c->obuf && fl(io))
            return OAI_EGONE;
    }
    return c->gone ? OAI_EGONE : 0;
}

static int gone(struct io *io)
{
    struct io_cgi *c = self(io);
    /* A closed reading end of stdout shows as POLLERR/POLLHUP whatever events we ask for. */
    struct pollfd p = {.fd = c->out_fd, .events = 0};
    if (c->gone)
        return 1;
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLERR | POLLHUP));
}

static const struct io_ops ops = {param, params, rd, wr, fl, gone};

void io_cgi_init(struct io_cgi *io, char **envp, int in_fd, int out_fd)
{
    io->base.ops = &ops;
    io->base.params_are_env = 1;
    io->envp = envp;
    io->in_fd = in_fd;
    io->out_fd = out_fd;
    io->gone = 0;
    io->olen = 0;
}
