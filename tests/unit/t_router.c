/* Unit tests for fcgi/router: route table and mount detection under every web server's
 * SCRIPT_NAME / PATH_INFO / REQUEST_URI conventions (reference §2.4). */
#include "common/err.h"
#include "fcgi/router.h"
#include "tests/unit/tap.h"

struct match_case {
    const char *path, *base;
    enum route_id id;
    enum provider provider;
    const char *what;
};

static void test_match(void)
{
    static const struct match_case cases[] = {
        {"/", "/proxy", ROUTE_INFO, PROV_NONE, "root is the info page"},
        {"/status", "/proxy", ROUTE_STATUS, PROV_NONE, "/status"},
        {"/healthz", "/proxy", ROUTE_HEALTHZ, PROV_NONE, "/healthz"},
        {"/metrics", "/proxy", ROUTE_METRICS, PROV_NONE, "/metrics"},
        {"/proxy/gcp/claude/v1/chat/completions", "/proxy", ROUTE_CHAT, PROV_GCP,
         "gcp chat with /v1"},
        {"/proxy/gcp/claude/chat/completions", "/proxy", ROUTE_CHAT, PROV_GCP,
         "gcp chat without /v1"},
        {"/proxy/aws/claude/messages", "/proxy", ROUTE_MESSAGES, PROV_AWS, "aws messages"},
        {"/proxy/aws/claude/v1/models", "/proxy", ROUTE_MODELS, PROV_AWS, "aws models"},
        {"/proxy/azure/openai/v1/chat/completions", "/proxy", ROUTE_CHAT, PROV_AZURE, "azure chat"},
        {"/proxy/azure/openai/v1/messages", "/proxy", ROUTE_NONE, PROV_NONE,
         "azure has no /messages"},
        {"/v1/models", "/proxy", ROUTE_MODELS, PROV_UNIFIED, "unified models"},
        {"/v1/messages", "/proxy", ROUTE_MESSAGES, PROV_UNIFIED, "unified messages"},
        {"/v1/chat/completions", "/proxy", ROUTE_CHAT, PROV_UNIFIED, "unified chat"},
        {"/proxyx/gcp/claude/v1/models", "/proxy", ROUTE_NONE, PROV_NONE,
         "base must end at a segment boundary"},
        {"/api/gcp/claude/v1/models", "/api", ROUTE_MODELS, PROV_GCP, "custom base"},
        {"/gcp/claude/v1/models", "", ROUTE_MODELS, PROV_GCP, "empty base"},
        {"/proxy/gcp/claude/v1/chat/completions/x", "/proxy", ROUTE_NONE, PROV_NONE,
         "extra segment is unknown"},
        {"/proxy/gcp/claude/v1/v1/models", "/proxy", ROUTE_NONE, PROV_NONE, "only one /v1"},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct match_case *c = &cases[i];
        struct route r;
        router_match(c->path, c->base, &r);
        if (!tap_ok(r.id == c->id && r.provider == c->provider, c->what, __FILE__, __LINE__))
            printf("#   path %s: got route %d provider %d, want %d/%d\n", c->path, r.id, r.provider,
                   c->id, c->provider);
    }
}

static void test_normalize(void)
{
    char p[64];
    strcpy(p, "//proxy///gcp/claude//models/");
    router_normalize(p, 1);
    is_str(p, "/proxy/gcp/claude/models", "repeated and trailing slashes collapse");
    strcpy(p, "/a%2Fb%20c");
    router_normalize(p, 1);
    is_str(p, "/a/b c", "percent-decoding");
    strcpy(p, "/a%00b");
    is_int(router_normalize(p, 1), OAI_EBADREQ, "an encoded NUL is refused");
    strcpy(p, "/a%zz");
    is_int(router_normalize(p, 1), OAI_EBADREQ, "a bad escape is refused");
    strcpy(p, "");
    router_normalize(p, 1);
    is_str(p, "/", "empty becomes /");
    strcpy(p, "status");
    router_normalize(p, 1);
    is_str(p, "/status", "a leading slash is added");
}

struct resolve_case {
    const char *what, *script_name, *path_info, *request_uri, *want_path, *want_mount;
};

static void test_resolve(void)
{
    static const struct resolve_case cases[] = {
        {"lighttpd / with fix-root-scriptname", "", "/v1/chat/completions",
         "/v1/chat/completions?x=1", "/v1/chat/completions", ""},
        {"lighttpd / without fix-root-scriptname", "/status", NULL, "/status", "/status", ""},
        {"lighttpd / without fix-root, provider", "/proxy/gcp/claude/v1/models", "",
         "/proxy/gcp/claude/v1/models", "/proxy/gcp/claude/v1/models", ""},
        {"lighttpd prefix /oai", "/oai", "/proxy/gcp/claude/v1/models",
         "/oai/proxy/gcp/claude/v1/models", "/proxy/gcp/claude/v1/models", "/oai"},
        {"lighttpd prefix, bare mount", "/oai", NULL, "/oai", "/", "/oai"},
        {"lighttpd prefix, mount with slash", "/oai", "/", "/oai/", "/", "/oai"},
        {"root request", "", "/", "/", "/", ""},
        {"mod_fcgid .htaccess rewrite", "/oai/oai-fcgi.fcgi", "/v1/models", "/oai/v1/models",
         "/v1/models", "/oai"},
        {"mod_proxy_fcgi (no PATH_INFO, SCRIPT_NAME = whole path)", "/oai/v1/chat/completions",
         NULL, "/oai/v1/chat/completions", "/v1/chat/completions", "/oai"},
        {"mod_proxy_fcgi, info page", "/oai/", NULL, "/oai/", "/", "/oai"},
        {"nginx split_path_info", "/oai", "/status", "/oai/status", "/status", "/oai"},
        {"doubled slashes in the URI", "", NULL, "/proxy/gcp/claude//models",
         "/proxy/gcp/claude/models", ""},
        {"unknown path under a prefix", "/oai", "/nope", "/oai/nope", "/nope", "/oai"},
        {"unknown path, no PATH_INFO", "", NULL, "/nope/deeper", "/nope/deeper", ""},
        {"SCRIPT_NAME a proper prefix, no PATH_INFO", "/oai", NULL, "/oai/v1/models", "/v1/models",
         "/oai"},
        {"a split URI is not searched for route suffixes", "", NULL,
         "/proxy/azure/openai/v1/messages", "/proxy/azure/openai/v1/messages", ""},
        {"mod_proxy_fcgi, unknown path under the mount", "/oai/x/y", NULL, "/oai/x/y", "/oai/x/y",
         ""},
        {"SCRIPT_NAME fallback with doubled slashes (fuzzer)", "/foo//", "/x", "/other", "/x",
         "/foo"},
        {"SCRIPT_NAME fallback without a leading slash (fuzzer)", "oai", "/x", "/other", "/x",
         "/oai"},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct resolve_case *c = &cases[i];
        struct route_path rp;
        int rc = router_resolve(c->script_name, c->path_info, c->request_uri, "/proxy", &rp);
        int good =
            rc == 0 && strcmp(rp.path, c->want_path) == 0 && strcmp(rp.mount, c->want_mount) == 0;
        if (!tap_ok(good, c->what, __FILE__, __LINE__))
            printf("#   rc %d path \"%s\" mount \"%s\"; want path \"%s\" mount \"%s\"\n", rc,
                   rp.path, rp.mount, c->want_path, c->want_mount);
    }
    struct route_path rp;
    char huge[LIMIT_PATH + 10];
    memset(huge, 'a', sizeof huge - 1);
    huge[0] = '/';
    huge[sizeof huge - 1] = '\0';
    is_int(router_resolve("", NULL, huge, "/proxy", &rp), OAI_EBADREQ, "over-long URI refused");
}

int main(void)
{
    tap_start();
    test_match();
    test_normalize();
    test_resolve();
    return tap_done();
}
