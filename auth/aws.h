/*
 * aws.h - AWS credentials from AWS_CREDENTIALS: comma-separated
 * accessKeyId:secretAccessKey:region[:sessionToken] (the seed's format plus an optional STS
 * session token). Parsed once per process and distinct value.
 */
#ifndef OAI_AWS_H
#define OAI_AWS_H

#include <stddef.h>

struct aws_key {
    char *access_key, *secret_key, *region, *session_token; /* session_token may be "" */
    char hash[13]; /* log_hash of the access key id: how logs name this key */
};

struct aws_keys {
    struct aws_key *v;
    int n;
};

/* aws_keys_get returns the parsed keys of AWS_CREDENTIALS (NULL or "" gives n = 0); the result
 * lives until aws_keys_cleanup. On a bad entry it returns NULL and writes a message naming the
 * variable and entry number (never a secret) into err. */
const struct aws_keys *aws_keys_get(const char *credentials, char *err, size_t errlen);
void aws_keys_cleanup(void);

#endif
