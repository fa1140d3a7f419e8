/*
 * sigv4.h - AWS Signature Version 4, header form (reference/wire-formats.md §5).
 *
 * The canonical URI is the URI-encoding of the path exactly as it goes on the wire (so a model
 * id sent as "...v1%3A0" is signed as "...v1%253A0", and ARNs with %2F work), as botocore does
 * for every service but S3.
 */
#ifndef OAI_SIGV4_H
#define OAI_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define SIGV4_MAX_HEADERS 16

struct sigv4_key {
    const char *access_key;
    const char *secret_key;
    const char *session_token; /* NULL or "" when not temporary credentials */
    const char *region;
    const char *service; /* "bedrock" */
};

struct sigv4_request {
    const char *method; /* "POST" */
    const char *host;   /* the Host header as sent ("example.amazonaws.com", with ":port" if
                           the URL has a non-default port) */
    const char *path;   /* the path as sent on the wire (already percent-encoded) */
    const char *query;  /* the raw query string without "?", or NULL */
    const char *headers[SIGV4_MAX_HEADERS]; /* further "Name: value" headers to sign, NULL-ended */
    const void *body;
    size_t body_len;
};

struct sigv4_result {
    char amz_date[17];       /* YYYYMMDDTHHMMSSZ */
    char date_header[40];    /* "X-Amz-Date: ..." */
    char authorization[640]; /* "Authorization: AWS4-HMAC-SHA256 Credential=..., ..." */
    char token_header[2200]; /* "X-Amz-Security-Token: ..." or "" */
};

/* sigv4_sign signs rq with key at Unix time now. Host, x-amz-date and (when a session token is
 * given) x-amz-security-token are always signed, plus rq->headers. The caller sends exactly the
 * signed headers (the three in *out plus rq->headers). Returns 0, OAI_EBADREQ (a header or path
 * that cannot be canonicalised, too many headers), OAI_ELIMIT, OAI_ENOMEM. */
__attribute__((warn_unused_result)) int sigv4_sign(const struct sigv4_key *key,
                                                   const struct sigv4_request *rq, int64_t now,
                                                   struct sigv4_result *out);

/* sigv4_canonical_request and sigv4_string_to_sign append the intermediate strings to out
 * (for tests and debugging; the same code sigv4_sign uses). */
int sigv4_canonical_request(const struct sigv4_key *key, const struct sigv4_request *rq,
                            const char *amz_date, struct buf *out);
int sigv4_string_to_sign(const struct sigv4_key *key, const struct sigv4_request *rq,
                         const char *amz_date, struct buf *out);

#endif
