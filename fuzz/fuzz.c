/*
 * fuzz.c - helpers shared by the harnesses (see fuzz.h).
 */
#include "fuzz/fuzz.h"

#include "common/log.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

void fuzz_quiet(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    log_set_level((enum log_level)(LOG_ERROR + 1)); /* above error: nothing is written */
    util_init();
}

void fuzz_splits_read(struct fuzz_splits *s, const uint8_t **data, size_t *size)
{
    s->lens = NULL;
    s->n = s->next = 0;
    if (*size == 0)
        return;
    size_t k = (*data)[0] % 8;
    (*data)++;
    (*size)--;
    if (k > *size)
        k = *size;
    s->lens = *data;
    s->n = k;
    *data += k;
    *size -= k;
}

size_t fuzz_splits_next(struct fuzz_splits *s, size_t left)
{
    if (s->n == 0)
        return left;
    size_t piece = (size_t)s->lens[s->next] + 1;
    s->next = (s->next + 1) % s->n;
    return piece < left ? piece : left;
}

int fuzz_sse_feed(struct sseparse *p, struct fuzz_splits *s, const uint8_t *data, size_t size,
                  sseparse_fn fn, void *ctx)
{
    int rc = 0;
    while (size > 0 && rc == 0) {
        size_t piece = fuzz_splits_next(s, size);
        char *chunk = malloc(piece);
        if (!chunk)
            break;
        memcpy(chunk, data, piece);
        rc = sseparse_feed(p, chunk, piece, fn, ctx);
        free(chunk);
        data += piece;
        size -= piece;
    }
    return rc;
}

int fuzz_fields_split(struct fuzz_fields *f, const uint8_t *data, size_t size, int max)
{
    memset(f, 0, sizeof *f);
    if (max > FUZZ_MAX_FIELDS)
        max = FUZZ_MAX_FIELDS;
    size_t at = 0;
    while (f->n < max) {
        const uint8_t *nul = f->n + 1 < max ? memchr(data + at, 0, size - at) : NULL;
        size_t len = nul ? (size_t)(nul - (data + at)) : size - at;
        char *v = malloc(len + 1);
        if (!v) {
            fuzz_fields_free(f);
            return -1;
        }
        if (len)
            memcpy(v, data + at, len);
        v[len] = '\0';
        f->v[f->n] = v;
        f->len[f->n] = len;
        f->n++;
        if (!nul)
            break;
        at += len + 1;
    }
    return 0;
}

void fuzz_fields_free(struct fuzz_fields *f)
{
    for (int i = 0; i < FUZZ_MAX_FIELDS; i++)
        free(f->v[i]);
    memset(f, 0, sizeof *f);
}
