/*
 * util.h - small helpers shared by every layer: clocks, random ids, number parsing, strict JSON.
 */
#ifndef OAI_UTIL_H
#define OAI_UTIL_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

/* util_init initialises libcrypto and fetches the digests the gateway uses; call it once
 * before starting threads, so that no worker thread does library set-up. */
void util_init(void);

/* util_thread_done releases the calling thread's library state (OpenSSL's per-thread random
 * generators); call it as the last thing a worker thread does. */
void util_thread_done(void);

/* util_now_ms is wall-clock milliseconds; util_mono_ms is monotonic milliseconds. */
int64_t util_now_ms(void);
int64_t util_mono_ms(void);

/* util_http_reason is the reason phrase of an HTTP status ("Too Many Requests"), or NULL for a
 * status it does not know. */
const char *util_http_reason(int status);

/* util_pretty_tokens formats a token count the seed's way ("999", "1.5k", "2.25m", "1.500b"). */
void util_pretty_tokens(int64_t n, char *out, size_t len);

/* util_random_hex fills out with n random hex digits and a NUL (out holds n + 1 bytes). */
void util_random_hex(char *out, size_t n);

/* util_hexval is the value of one hex digit (either case), or -1. */
int util_hexval(int c);

/* util_list_next walks a comma-separated list: from *cursor (NULL: the list is over) it stores
 * the next entry, trimmed of white space, in *item and *len (an empty entry gives len 0) and
 * moves *cursor past it. Returns 1 for an entry, 0 at the end. */
int util_list_next(const char **cursor, const char **item, size_t *len);

/* util_list_has says whether the comma-separated list (may be NULL) holds the entry s[0..n). */
int util_list_has(const char *list, const char *s, size_t n);

/* util_parse_long parses a whole decimal string into [min, max]; 0 or OAI_EBADREQ. */
__attribute__((warn_unused_result)) int util_parse_long(const char *s, long long min, long long max,
                                                        long long *out);

/* util_parse_json parses exactly one JSON value from p[0..n) (trailing whitespace allowed),
 * rejecting invalid UTF-8, nesting deeper than LIMIT_JSON_DEPTH, and trailing garbage.
 * On success *out holds a new reference (caller puts it). Returns 0 or OAI_EBADJSON. */
__attribute__((warn_unused_result)) int util_parse_json(const char *p, size_t n, json_object **out);

/* util_utf8_prefix returns the length of the longest prefix of p[0..n) that is well-formed
 * UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF): n when it all is. */
size_t util_utf8_prefix(const char *p, size_t n);

/* util_utf8_repair appends p[0..n) to out with every ill-formed sequence (each maximal subpart,
 * as Unicode's "U+FFFD substitution" counts them) replaced by U+FFFD. 0 or OAI_ELIMIT / OAI_ENOMEM
 * from the buffer. */
__attribute__((warn_unused_result)) int util_utf8_repair(const char *p, size_t n, struct buf *out);

/* util_json_plain serialises obj without spaces (the wire form); the string is owned by obj. */
const char *util_json_plain(json_object *obj, size_t *len);

/* util_sha256 writes the SHA-256 digest of data to out (the algorithm is fetched from OpenSSL
 * once per process, not per call). */
void util_sha256(const void *data, size_t len, unsigned char out[32]);

/* util_ct_equal compares two strings in time independent of where they differ. */
int util_ct_equal(const char *a, const char *b);

#endif
