/*
 * router.h - which route a request path names, and where the gateway is mounted.
 *
 * Paths are relative to the mount point. Web servers disagree on SCRIPT_NAME/PATH_INFO
 * (reference/web-servers-and-tooling.md §2.4), so router_resolve works from whatever is set:
 * PATH_INFO when present; else REQUEST_URI minus SCRIPT_NAME when SCRIPT_NAME is a proper
 * prefix; else (SCRIPT_NAME is the whole path, as with mod_proxy_fcgi or lighttpd at "/"
 * without fix-root-scriptname) the longest suffix of REQUEST_URI that names a route.
 */
#ifndef OAI_ROUTER_H
#define OAI_ROUTER_H

#include <stddef.h>

#include "common/limits.h"

enum route_id {
    ROUTE_NONE,
    ROUTE_INFO,
    ROUTE_STATUS,
    ROUTE_HEALTHZ,
    ROUTE_METRICS,
    ROUTE_MODELS,
    ROUTE_CHAT,
    ROUTE_MESSAGES,
    ROUTE_ADMIN_USERS /* /admin/users[/<token>], any method (the handler decides) */
};
enum provider { PROV_NONE, PROV_GCP, PROV_AWS, PROV_AZURE, PROV_UNIFIED };

struct route {
    enum route_id id;
    enum provider provider;
    const char *method; /* the one method the route answers ("GET" or "POST"; "*": any) */
    const char *tail;   /* ROUTE_ADMIN_USERS: "" or "/<token>", inside the matched path */
};

struct route_path {
    char path[LIMIT_PATH];  /* normalised path relative to the mount, starts with "/" */
    char mount[LIMIT_PATH]; /* URL prefix of the mount, "" at the root, no trailing "/" */
};

/* router_normalize decodes %XX escapes (unless decode is 0), collapses repeated slashes and
 * drops a trailing slash (except for "/") in place. It may prepend a "/": the buffer needs room
 * for one byte more than the string (and at least 2 bytes for ""). Returns 0 or OAI_EBADREQ (bad
 * escape, NUL byte). */
int router_normalize(char *path, int decode);

/* router_match fills *r for path (normalised) under provider prefix base ("" or "/proxy").
 * Returns 1 if the path names a route, else 0 (r->id = ROUTE_NONE). */
int router_match(const char *path, const char *base, struct route *r);

/* router_resolve computes the route path and mount from the CGI variables (any may be NULL).
 * Returns 0, or OAI_EBADREQ for a path that cannot be decoded or is too long. */
int router_resolve(const char *script_name, const char *path_info, const char *request_uri,
                   const char *base, struct route_path *out);

/* router_provider_name is "gcp", "aws", "azure", "unified" or "". */
const char *router_provider_name(enum provider p);

#endif
