/*
 * fuzz_router.c - route and path parsing (fcgi/router.h router_resolve, router_match,
 * router_normalize), as fcgi/request.c runs it on the CGI variables of each request.
 *
 * Input: SCRIPT_NAME NUL PATH_INFO NUL REQUEST_URI NUL base. A variable whose field is missing is
 * unset (NULL); base is PROXY_ENDPOINT_ROUTE as config.c derives it when the field is a valid
 * one, else "/proxy". Checks the documented shape of what comes out: a resolved path starts with
 * "/", has no "//" and no trailing "/" (except "/" itself), and normalising is idempotent.
 */
#include "fuzz/fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "fcgi/router.h"

static int well_formed(const char *p)
{
    size_t n = strlen(p);
    return p[0] == '/' && !strstr(p, "//") && (n == 1 || p[n - 1] != '/');
}

/* normalize checks router_normalize on a copy of s with room for the leading "/" it may add. */
static void normalize(const char *s, size_t len, int decode)
{
    char *a = malloc(len + 2), *b = malloc(len + 2);
    if (!a || !b)
        goto done;
    memcpy(a, s, len + 1);
    if (router_normalize(a, decode) != 0)
        goto done;
    if (!well_formed(a))
        abort();
    memcpy(b, a, strlen(a) + 1);
    if (router_normalize(b, 0) != 0 || strcmp(a, b) != 0)
        abort(); /* normalising a normal path changes nothing */
done:
    free(a);
    free(b);
}

/* base_of derives the provider prefix as config.c does from a valid PROXY_ENDPOINT_ROUTE. */
static void base_of(const char *route, char *out, size_t n)
{
    size_t len = route ? strlen(route) : 0;
    if (!route || route[0] != '/' || len >= 200 || strpbrk(route, "?# \t%")) {
        route = "/proxy";
        len = strlen(route);
    }
    while (len > 0 && route[len - 1] == '/')
        len--;
    if (len >= n)
        len = 0;
    memcpy(out, route, len);
    out[len] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_fields f;
    struct route_path *rp = NULL;
    char base[256];
    fuzz_quiet();
    if (fuzz_fields_split(&f, data, size, 4) != 0)
        return 0;
    base_of(f.v[3], base, sizeof base);
    rp = malloc(sizeof *rp);
    if (!rp)
        goto done;
    if (router_resolve(f.v[0], f.v[1], f.v[2], base, rp) == 0) {
        struct route r;
        if (!well_formed(rp->path) || strnlen(rp->mount, sizeof rp->mount) == sizeof rp->mount)
            abort();
        if (router_match(rp->path, base, &r)) {
            size_t plen = strlen(rp->path), tlen = strlen(r.tail);
            /* the tail lies inside the matched path */
            if (r.id == ROUTE_ADMIN_USERS &&
                (tlen > plen || strcmp(rp->path + plen - tlen, r.tail) != 0))
                abort();
            if (!r.method || !router_provider_name(r.provider))
                abort();
        } else if (r.id != ROUTE_NONE) {
            abort();
        }
    }
    for (int i = 0; i < f.n && i < 3; i++) {
        normalize(f.v[i], strlen(f.v[i]), 0);
        normalize(f.v[i], strlen(f.v[i]), 1);
    }
done:
    free(rp);
    fuzz_fields_free(&f);
    return 0;
}
