#include <string.h>

#include "common/err.h"
#include "fcgi/io.h"

static struct io_mem *self(struct io *io)
{
    return (struct io_mem *)io;
}

static const char *param(struct io *io, const char *name)
{
    size_t n = strlen(name);
    for (char **e = self(io)->params; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

static char **params(struct io *io)
{
    return self(io)->params;
}

static long rd(struct io *io, char *buf, size_t n)
{
    struct io_mem *m = self(io);
    size_t left = m->body_len - m->body_pos;
    size_t k = n < left ? n : left;
    if (k > 7)
        k = 7; /* hand the body out in small pieces so readers must loop to EOF */
    memcpy(buf, m->body + m->body_pos, k);
    m->body_pos += k;
    return (long)k;
}

static int wr(struct io *io, const char *p, size_t n)
{
    struct io_mem *m = self(io);
    if (m->gone)
        return OAI_EGONE;
    if (m->fail_after && m->out.len + n > m->fail_after) {
        m->gone = 1;
        return OAI_EGONE;
    }
    return buf_add(&m->out, p, n) ? OAI_EGONE : 0;
}

static int fl(struct io *io)
{
    struct io_mem *m = self(io);
    m->flushes++;
    return m->gone ? OAI_EGONE : 0;
}

static int gone(struct io *io)
{
    return self(io)->gone;
}

static const struct io_ops ops = {param, params, rd, wr, fl, gone};

void io_mem_init(struct io_mem *io, char **params_, const char *body, size_t body_len)
{
    memset(io, 0, sizeof *io);
    io->base.ops = &ops;
    io->params = params_;
    io->body = body ? body : "";
    io->body_len = body ? body_len : 0;
    buf_init(&io->out, 64L * 1024 * 1024);
}

void io_mem_free(struct io_mem *io)
{
    buf_free(&io->out);
}
