/*
 * buf.h - a growable byte buffer with a ceiling (after curl's dynbuf).
 *
 * struct buf is caller-owned: buf_init() on the stack, buf_free() when done. Appending past
 * the ceiling fails with OAI_ELIMIT and leaves the contents unchanged. The data is always
 * NUL-terminated (the terminator is not counted in len).
 */
#ifndef OAI_BUF_H
#define OAI_BUF_H

#include <stddef.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
__attribute__((warn_unused_result)) int buf_add(struct buf *b, const void *p, size_t n);
__attribute__((warn_unused_result)) int buf_adds(struct buf *b, const char *s);
__attribute__((warn_unused_result, format(printf, 2, 3))) int buf_printf(struct buf *b,
                                                                         const char *fmt, ...);
/* buf_take hands the data to the caller (free() it) and resets the buffer. */
char *buf_take(struct buf *b, size_t *len);

#endif
