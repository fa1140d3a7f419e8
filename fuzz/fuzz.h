/*
 * fuzz.h - what every libFuzzer harness under fuzz/ shares: the entry point, quiet logs, the
 * split schedule read from the head of an input, feeding SSE in those splits, and NUL-separated
 * fields.
 *
 * Each harness is one fuzz_<name>.c defining LLVMFuzzerTestOneInput over the project's real
 * code (liboai.a). It builds twice: with libFuzzer (./configure --enable-fuzzing, make fuzz) and,
 * with any compiler, linked to replay.c as a test that runs every file of fuzz/corpus/<name>/.
 * A harness is deterministic, frees everything, writes no file and opens no socket.
 */
#ifndef OAI_FUZZ_H
#define OAI_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "translators/sseparse.h"

/* The libFuzzer entry point: 0 always (every input is acceptable). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- fuzz.c ---- */

/* fuzz_quiet silences the project's log (every level) and initialises libcrypto once; call it
 * at the top of every LLVMFuzzerTestOneInput. */
void fuzz_quiet(void);

/* A split schedule: how a stream harness cuts its input into feeds. */
struct fuzz_splits {
    const uint8_t *lens; /* piece lengths - 1, used in turn; none: one piece */
    size_t n, next;
};

/* fuzz_splits_read takes a schedule from the head of the input: one byte k, then k % 8 bytes
 * each giving a piece length minus one (1..256), used in turn. Advances *data and *size past it
 * (an input too short for its schedule keeps what there is). */
void fuzz_splits_read(struct fuzz_splits *s, const uint8_t **data, size_t *size);

/* fuzz_splits_next is the length of the next piece, at most left (and at least 1 if left is). */
size_t fuzz_splits_next(struct fuzz_splits *s, size_t left);

/* fuzz_sse_feed feeds data[0..size) to the SSE parser p in the pieces schedule s gives, each
 * piece in an allocation of its own (a read past it is caught), until the input ends or fn
 * stops the parse. Returns sseparse_feed's last result (0 when everything was fed). */
int fuzz_sse_feed(struct sseparse *p, struct fuzz_splits *s, const uint8_t *data, size_t size,
                  sseparse_fn fn, void *ctx);

#define FUZZ_MAX_FIELDS 8

/* Fields of an input separated by NUL bytes, each copied NUL-terminated. */
struct fuzz_fields {
    char *v[FUZZ_MAX_FIELDS]; /* owned; NULL past the last field present */
    size_t len[FUZZ_MAX_FIELDS];
    int n; /* fields present: 1 + the number of NULs seen, at most FUZZ_MAX_FIELDS */
};

/* fuzz_fields_split cuts data at its first max - 1 NUL bytes (max <= FUZZ_MAX_FIELDS): the last
 * field takes the rest, NULs included (its len counts them). Returns 0, or -1 when out of memory
 * (f is then empty). */
int fuzz_fields_split(struct fuzz_fields *f, const uint8_t *data, size_t size, int max);
void fuzz_fields_free(struct fuzz_fields *f);

#endif
