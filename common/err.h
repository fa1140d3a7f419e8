/*
 * err.h - the project-wide status codes.
 *
 * Every function that can fail returns an int: 0 for success or one of the negative OAI_E*
 * codes below. Each code carries the HTTP status it maps to and a message fit for a client.
 * Translators turn (status, message) into the client's wire format; nothing else needs a table.
 */
#ifndef OAI_ERR_H
#define OAI_ERR_H

/* X(name, http status, message) */
#define OAI_ERR_MAP(X)                                                                             \
    X(NOMEM, 500, "out of memory")                                                                 \
    X(INTERNAL, 500, "internal error")                                                             \
    X(CONFIG, 500, "the gateway is misconfigured; see the server log")                             \
    X(STATE, 503, "the shared state store is unavailable")                                         \
    X(BADJSON, 400, "the request body is not valid UTF-8 JSON")                                    \
    X(BADREQ, 400, "invalid request")                                                              \
    X(TOOBIG, 413, "the request body is too large")                                                \
    X(NOTFOUND, 404, "no such route")                                                              \
    X(METHOD, 405, "method not allowed")                                                           \
    X(UNAUTH, 401, "missing or invalid credentials")                                               \
    X(NOKEYS, 503, "no usable key for this model")                                                 \
    X(CLIENTIO, 400, "the request body could not be read")                                         \
    X(GONE, 499, "the client disconnected")                                                        \
    X(LIMIT, 502, "a size limit was exceeded")                                                     \
    X(UPSTREAM, 502, "the upstream service could not be reached")                                  \
    X(UPSTREAM_STATUS, 502, "the upstream service answered with an error")                         \
    X(TRUNCATED, 502, "the upstream stream ended before its final event")                          \
    X(AUTHUP, 502, "the gateway's upstream credentials were refused")                            \
    X(BADFRAME, 502, "the upstream sent a malformed event-stream frame")

enum oai_err {
    OAI_OK = 0,
#define OAI_ERR_ENUM(name, http, msg) OAI_E##name,
    OAI_ERR_FIRST_ = -100,
    OAI_ERR_MAP(OAI_ERR_ENUM)
#undef OAI_ERR_ENUM
};

/* err_http returns the HTTP status for an OAI_E* code (500 for unknown codes). */
int err_http(int err);
/* err_message returns a static message for an OAI_E* code. */
const char *err_message(int err);
/* err_name returns the code's name ("NOMEM", ...) for logs. */
const char *err_name(int err);

#endif
