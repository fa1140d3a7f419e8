/*
 * gcp.h - Google service accounts: credentials, the RS256 JWT bearer assertion, and OAuth
 * access tokens cached in the shared state store (reference/wire-formats.md §3.3-§3.6).
 *
 * Keys come from GCP_CREDENTIALS (the seed's projectId:clientEmail:region:privateKey list, the
 * PEM with literal "\n") and GCP_CREDENTIALS_FILE (service-account JSON paths, each optionally
 * ":region"). The parsed set is cached per process for each distinct pair of values, so a
 * request costs no parsing; private keys are decoded only when a token must be minted.
 */
#ifndef OAI_GCP_H
#define OAI_GCP_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "state/state.h"
#include "upstream/transport.h"

#define GCP_TOKEN_URI        "https://oauth2.googleapis.com/token"
#define GCP_SCOPE            "https://www.googleapis.com/auth/cloud-platform"
#define GCP_DEFAULT_REGION   "us-east5"
#define GCP_REFRESH_MARGIN_S 300 /* refresh this long before expiry */

struct gcp_key {
    char *project, *email, *region, *token_uri, *key_id; /* key_id may be "" */
    char *pem;     /* the private key, PEM text with real newlines; never logged */
    char hash[13]; /* log_hash of the client email: how logs name this key */
};

struct gcp_keys {
    struct gcp_key *v;
    int n;
};

/* gcp_keys_get returns the parsed keys of these two settings (either may be NULL), parsing
 * them once per process and distinct value pair; the result lives until gcp_keys_cleanup.
 * On a bad entry it returns NULL and writes a message naming the variable and entry (never a
 * secret) into err. */
const struct gcp_keys *gcp_keys_get(const char *credentials, const char *files, char *err,
                                    size_t errlen);
/* gcp_keys_cleanup frees the process cache (at exit, for leak checkers). */
void gcp_keys_cleanup(void);

/* gcp_jwt writes the signed assertion for k at time iat into out: header
 * {"alg":"RS256","typ":"JWT"[,"kid":key_id]} and claims {"iss","scope","aud"=token_uri,"iat",
 * "exp"=iat+3600}, serialised without spaces in that order, base64url without padding.
 * Returns 0, OAI_EBADREQ (unusable private key), OAI_ENOMEM. */
__attribute__((warn_unused_result)) int gcp_jwt(const struct gcp_key *k, int64_t iat,
                                                struct buf *out);

/* gcp_token writes a valid access token for k into token[n]. It uses the token cached in st
 * (shared by every process) unless it expires within GCP_REFRESH_MARGIN_S or refresh is set
 * (after a 401 from Vertex: the cached token is dropped first). Only one process refreshes a
 * key's token at a time (a lease in st); the others wait for its result, up to a bound.
 * Returns 0, OAI_EAUTHUP (token endpoint refused the assertion, e.g. invalid_grant),
 * OAI_EUPSTREAM (token endpoint unreachable / 5xx), OAI_ESTATE. */
__attribute__((warn_unused_result)) int gcp_token(const struct gcp_key *k, struct state *st,
                                                  const struct transport_opts *t, int refresh,
                                                  char *token, size_t n);

#endif
