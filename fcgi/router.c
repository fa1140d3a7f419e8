#include "fcgi/router.h"

#include <string.h>

#include "common/err.h"
#include "common/util.h"

int router_normalize(char *path, int decode)
{
    char *w = path;
    for (const char *r = path; *r; r++) {
        char c = *r;
        if (decode && c == '%') {
            int hi = util_hexval(r[1]), lo = hi < 0 ? -1 : util_hexval(r[2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return OAI_EBADREQ;
            c = (char)(hi * 16 + lo);
            r += 2;
        }
        if (c == '/' && w > path && w[-1] == '/')
            continue;
        *w++ = c;
    }
    *w = '\0';
    if (w == path) {
        strcpy(path, "/");
        return 0;
    }
    if (path[0] != '/') {
        size_t n = strlen(path);
        memmove(path + 1, path, n + 1);
        path[0] = '/';
        w++;
    }
    if (w - path > 1 && w[-1] == '/')
        w[-1] = '\0';
    return 0;
}

/* Strips prefix from *p if it is followed by "/" or the end; returns 1 on a match. */
static int eat(const char **p, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(*p, prefix, n) != 0 || ((*p)[n] != '\0' && (*p)[n] != '/'))
        return 0;
    *p += n;
    return 1;
}

static int api_route(const char *rest, enum provider prov, int with_messages, struct route *r)
{
    if (strcmp(rest, "/models") == 0) {
        r->id = ROUTE_MODELS;
        r->method = "GET";
    } else if (strcmp(rest, "/chat/completions") == 0) {
        r->id = ROUTE_CHAT;
        r->method = "POST";
    } else if (with_messages && strcmp(rest, "/messages") == 0) {
        r->id = ROUTE_MESSAGES;
        r->method = "POST";
    } else {
        return 0;
    }
    r->provider = prov;
    return 1;
}

int router_match(const char *path, const char *base, struct route *r)
{
    static const struct {
        const char *path;
        enum route_id id;
    } fixed[] = {{"/", ROUTE_INFO},
                 {"/status", ROUTE_STATUS},
                 {"/healthz", ROUTE_HEALTHZ},
                 {"/metrics", ROUTE_METRICS}};
    r->id = ROUTE_NONE;
    r->provider = PROV_NONE;
    r->method = "GET";
    r->tail = "";
    for (unsigned i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        if (strcmp(path, fixed[i].path) == 0) {
            r->id = fixed[i].id;
            return 1;
        }
    }
    const char *p = path;
    if (eat(&p, "/v1") && api_route(p, PROV_UNIFIED, 1, r))
        return 1;
    p = path;
    if (eat(&p, "/admin/users") && (!*p || !strchr(p + 1, '/'))) {
        r->id = ROUTE_ADMIN_USERS;
        r->method = "*";
        r->tail = p;
        return 1;
    }
    p = path;
    if (*base && !eat(&p, base))
        return 0;
    static const struct {
        const char *prefix;
        enum provider prov;
        int messages;
    } provs[] = {{"/gcp/claude", PROV_GCP, 1},
                 {"/aws/claude", PROV_AWS, 1},
                 {"/azure/openai", PROV_AZURE, 0}};
    for (unsigned i = 0; i < sizeof provs / sizeof provs[0]; i++) {
        const char *q = p;
        if (!eat(&q, provs[i].prefix))
            continue;
        eat(&q, "/v1");
        return api_route(q, provs[i].prov, provs[i].messages, r);
    }
    return 0;
}

/* copy_path copies at most LIMIT_PATH - 2 bytes: router_normalize may prepend a "/". */
static int copy_path(char *dst, const char *src, size_t len)
{
    if (len >= LIMIT_PATH - 1)
        return OAI_EBADREQ;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

int router_resolve(const char *script_name, const char *path_info, const char *request_uri,
                   const char *base, struct route_path *out)
{
    char uri[LIMIT_PATH];
    const char *ru = request_uri ? request_uri : "";
    size_t ulen = strcspn(ru, "?#");
    int rc = copy_path(uri, ru, ulen);
    if (rc)
        return rc;
    rc = router_normalize(uri, 1);
    if (rc)
        return rc;

    if (path_info && *path_info) {
        /* The server split the URL for us (PATH_INFO is already decoded). The mount is what
         * precedes PATH_INFO in the URI; fall back to SCRIPT_NAME (rewrites change it). */
        rc = copy_path(out->path, path_info, strlen(path_info));
        if (rc || (rc = router_normalize(out->path, 0)))
            return rc;
        size_t plen = strlen(out->path), len = strlen(uri);
        if (strcmp(out->path, "/") != 0 && len >= plen && strcmp(uri + len - plen, out->path) == 0)
            return copy_path(out->mount, uri, len - plen);
        if (strcmp(out->path, "/") == 0 && strcmp(uri, "/") != 0)
            return copy_path(out->mount, uri, strlen(uri));
        rc = copy_path(out->mount, script_name ? script_name : "",
                       script_name ? strlen(script_name) : 0);
        if (!rc && out->mount[0])
            rc = router_normalize(out->mount, 0); /* "/oai//" or "oai" is the mount "/oai" */
        if (!rc && strcmp(out->mount, "/") == 0)
            out->mount[0] = '\0';
        return rc;
    }

    /* No PATH_INFO. SCRIPT_NAME is the mount when it is a proper prefix of the URI. */
    char sn[LIMIT_PATH];
    size_t slen = script_name ? strlen(script_name) : 0;
    if ((rc = copy_path(sn, script_name ? script_name : "", slen)))
        return rc;
    router_normalize(sn, 0);
    slen = strcmp(sn, "/") == 0 ? 0 : strlen(sn);
    if (strcmp(sn, uri) != 0) {
        if (slen && strncmp(uri, sn, slen) == 0 && uri[slen] == '/') {
            if ((rc = copy_path(out->mount, uri, slen)))
                return rc;
            return copy_path(out->path, uri + slen, strlen(uri + slen));
        }
        out->mount[0] = '\0';
        return copy_path(out->path, uri, strlen(uri));
    }
    /* SCRIPT_NAME is the whole path (mod_proxy_fcgi; lighttpd at "/" without
     * fix-root-scriptname; a bare prefix mount): the mount is unknown, so take the longest
     * "/"-boundary suffix of the URI that names a route. */
    struct route r;
    for (const char *s = uri; s; s = strchr(s + 1, '/')) {
        if (router_match(s, base, &r) || (s != uri && strcmp(s, "/") == 0)) {
            if ((rc = copy_path(out->mount, uri, (size_t)(s - uri))))
                return rc;
            return copy_path(out->path, s, strlen(s));
        }
    }
    if (strchr(uri + 1, '/')) { /* several segments and no route: an unknown path */
        out->mount[0] = '\0';
        return copy_path(out->path, uri, strlen(uri));
    }
    /* a single segment ("/oai"): the bare mount point, i.e. the info page */
    if ((rc = copy_path(out->mount, uri, strcmp(uri, "/") == 0 ? 0 : strlen(uri))))
        return rc;
    return copy_path(out->path, "/", 1);
}

const char *router_provider_name(enum provider p)
{
    switch (p) {
    case PROV_GCP:
        return "gcp";
    case PROV_AWS:
        return "aws";
    case PROV_AZURE:
        return "azure";
    case PROV_UNIFIED:
        return "unified";
    default:
        return "";
    }
}
