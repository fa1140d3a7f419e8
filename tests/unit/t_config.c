/* Unit tests for fcgi/config: defaults, validation of every kind, lookup order per request
 * (param, REDIRECT_, environment; never HTTP_*), and that no secret reaches a report. */
#include <stdlib.h>

#include "fcgi/config.h"
#include "fcgi/io.h"
#include "tests/unit/tap.h"

struct kv {
    const char *const *pairs; /* NAME, value, NAME, value, ..., NULL */
};

static const char *lookup(void *ctx, const char *name)
{
    const struct kv *kv = ctx;
    for (const char *const *p = kv->pairs; p && *p; p += 2)
        if (strcmp(p[0], name) == 0)
            return p[1];
    return NULL;
}

static char reports[4096];
static int nreports;

static void collect(void *ctx, const char *line)
{
    (void)ctx;
    strncat(reports, line, sizeof reports - strlen(reports) - 2);
    strcat(reports, "\n");
    nreports++;
}

static int load(struct config *cfg, const char *const *pairs, char **extra)
{
    struct kv kv = {pairs};
    reports[0] = '\0';
    nreports = 0;
    return config_load(cfg, lookup, &kv, extra, collect, NULL);
}

static void test_defaults(void)
{
    struct config c;
    is_int(load(&c, NULL, NULL), 0, "empty environment is valid");
    is_int(c.gatekeeper, GK_NONE, "GATEKEEPER defaults to none");
    is_str(c.base, "/proxy", "PROXY_ENDPOINT_ROUTE defaults to /proxy");
    is_int(c.max_body_bytes, 32LL * 1024 * 1024, "MAX_BODY_BYTES defaults to 32 MiB");
    is_int(c.default_max_tokens, 4096, "DEFAULT_MAX_TOKENS");
    is_int(c.heartbeat_s, 15, "HEARTBEAT_S");
    is_int(c.max_choices, 4, "MAX_CHOICES");
    is_str(c.azure_api_version, "2024-10-21", "AZURE_API_VERSION");
    is_str(c.vertex_anthropic_version, "vertex-2023-10-16", "VERTEX_ANTHROPIC_VERSION");
    is_str(c.bedrock_anthropic_version, "bedrock-2023-05-31", "BEDROCK_ANTHROPIC_VERSION");
    is_str(c.server_title, "oai-fcgi", "SERVER_TITLE");
    is_int(c.gcp_keys + c.aws_keys + c.azure_keys, 0, "no keys");
}

static void test_values(void)
{
    struct config c;
    const char *const good[] = {"MAX_BODY_BYTES",
                                "64k",
                                "PROXY_ENDPOINT_ROUTE",
                                "/api/",
                                "AWS_CREDENTIALS",
                                "AKIA:secret:us-east-1,AKIB:s2:eu-west-1:tok",
                                "AZURE_CREDENTIALS",
                                "res:dep:key",
                                "GATEKEEPER",
                                "proxy_key",
                                "PROXY_KEY",
                                "pw",
                                "STATE_FAIL_OPEN",
                                "yes",
                                "ALLOWED_MODEL_FAMILIES",
                                "gcp-claude, azure-gpt4o",
                                "IP_BLACKLIST",
                                "10.0.0.0/8,::1",
                                "QUOTA_REFRESH_PERIOD",
                                "0 */6 * * *",
                                NULL};
    is_int(load(&c, good, NULL), 0, "a full valid configuration");
    if (nreports)
        printf("# %s", reports);
    is_int(c.max_body_bytes, 65536, "k suffix");
    is_str(c.base, "/api", "trailing slash of the route prefix dropped");
    is_int(c.aws_keys, 2, "two AWS keys counted");
    is_int(c.azure_keys, 1, "one Azure key counted");
    is_int(c.state_fail_open, 1, "boolean yes");
    is_int(c.gatekeeper, GK_PROXY_KEY, "enum value");
}

static void test_problems(void)
{
    struct config c;
    const char *const bad[] = {"GATEKEEPER",
                               "bogus",
                               "MAX_BODY_BYTES",
                               "abc",
                               "HEARTBEAT_S",
                               "0",
                               "LOG_LEVEL",
                               "loud",
                               "SYSTEM_MESSAGE_MODE",
                               "x",
                               "AWS_CREDENTIALS",
                               "AKIAMARKER:SECRETMARKER",
                               "GCP_CREDENTIALS",
                               "proj:mail@x:us-east5",
                               "PROXY_ENDPOINT_ROUTE",
                               "api",
                               "IP_BLACKLIST",
                               "1.2.3.4/40",
                               "PROVIDER_ORDER",
                               "gcp,azure",
                               "STATE_URL",
                               "rediss://:PASSMARKER@h:6379", /* TLS: refused */
                               NULL};
    int n = load(&c, bad, NULL);
    is_int(n, 11, "each bad variable is one problem");
    is_int(nreports, 11, "one report line per problem");
    static const char *const named[] = {
        "GATEKEEPER:",          "MAX_BODY_BYTES:",  "HEARTBEAT_S:",     "LOG_LEVEL:",
        "SYSTEM_MESSAGE_MODE:", "AWS_CREDENTIALS:", "GCP_CREDENTIALS:", "PROXY_ENDPOINT_ROUTE:",
        "IP_BLACKLIST:",        "PROVIDER_ORDER:",  "STATE_URL:"};
    for (unsigned i = 0; i < sizeof named / sizeof named[0]; i++)
        has_str(reports, named[i], named[i]);
    ok(!strstr(reports, "SECRETMARKER") && !strstr(reports, "AKIAMARKER") &&
           !strstr(reports, "PASSMARKER"),
       "no secret value in any report");

    const char *const pk[] = {"GATEKEEPER", "proxy_key", NULL};
    is_int(load(&c, pk, NULL), 1, "proxy_key without PROXY_KEY");
    has_str(reports, "PROXY_KEY: must be set", "names PROXY_KEY");
    const char *const ut[] = {"GATEKEEPER", "user_token", NULL};
    is_int(load(&c, ut, NULL), 1, "user_token without ADMIN_KEY");
    has_str(reports, "ADMIN_KEY: must be set", "names ADMIN_KEY");
    const char *const sp[] = {"STATE_PATH", "/nonexistent-dir-oai/state.db", NULL};
    is_int(load(&c, sp, NULL), 1, "STATE_PATH in a missing directory");
    has_str(reports, "STATE_PATH: directory /nonexistent-dir-oai does not exist", "explains why");

    char *quota[] = {"TOKEN_QUOTA_GCP_CLAUDE=1000", "TOKEN_QUOTA_AWS_CLAUDE=lots", "OTHER=1", NULL};
    is_int(load(&c, NULL, quota), 1, "a non-numeric TOKEN_QUOTA_* is a problem");
    has_str(reports, "TOKEN_QUOTA_AWS_CLAUDE:", "names the quota variable");
}

static void test_per_request(void)
{
    struct config base, scratch;
    load(&base, NULL, NULL);
    setenv("SERVER_TITLE", "from-env", 1);
    setenv("HEARTBEAT_S", "20", 1);
    load(&base, (const char *const[]){"SERVER_TITLE", "from-env", NULL}, NULL);

    char *plain[] = {"REQUEST_METHOD=GET", "HTTP_SERVER_TITLE=evil", NULL};
    struct io_mem m;
    io_mem_init(&m, plain, NULL, 0);
    const struct config *c = config_for_request(&base, &m.base, &scratch);
    ok(c == &base, "no setting among the params: the start-up config is used as is");
    is_str(c->server_title, "from-env", "HTTP_* params never configure anything");
    io_mem_free(&m);

    char *param[] = {"SERVER_TITLE=from-param", "REDIRECT_SERVER_TITLE=from-redirect",
                     "REDIRECT_MAX_CHOICES=2", NULL};
    io_mem_init(&m, param, NULL, 0);
    c = config_for_request(&base, &m.base, &scratch);
    ok(c == &scratch, "a setting param gives a per-request config");
    is_str(c->server_title, "from-param", "the param wins over REDIRECT_ and env");
    is_int(c->max_choices, 2, "REDIRECT_<NAME> is used when the param is absent");
    is_int(c->heartbeat_s, 20, "the process environment fills the rest");
    io_mem_free(&m);

    char *badparam[] = {"MAX_BODY_BYTES=lots", NULL};
    io_mem_init(&m, badparam, NULL, 0);
    ok(config_for_request(&base, &m.base, &scratch) == NULL, "a bad per-request value fails");
    io_mem_free(&m);
    unsetenv("SERVER_TITLE");
    unsetenv("HEARTBEAT_S");
}

static void test_summary(void)
{
    struct config c;
    const char *const s[] = {
        "ADMIN_KEY",         "ADMINMARKER",  "PROXY_KEY",   "PROXYMARKER",
        "AZURE_CREDENTIALS", "r:d:AZMARKER", "HTTPS_PROXY", "http://u:HPMARKER@proxy:3128",
        "SERVER_TITLE",      "My Gateway",   NULL};
    load(&c, s, NULL);
    json_object *sum = config_summary(&c);
    const char *j = json_object_to_json_string(sum);
    ok(!strstr(j, "MARKER"), "the summary holds no secret");
    has_str(j, "\"gatekeeper\"", "the summary lists settings");
    json_object_put(sum);
}

int main(void)
{
    tap_start();
    test_defaults();
    test_values();
    test_problems();
    test_per_request();
    test_summary();
    return tap_done();
}
