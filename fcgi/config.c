#include "fcgi/config.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "fcgi/io.h"
#include "gate/cidr.h"

#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/usr/local/var"
#endif
#define KB       *1024LL
#define INT_MAXV 2147483647LL

enum kind { K_STR, K_SECRET, K_INT, K_SIZE, K_ENUM, K_BOOL };

/* A validator checks a set, non-empty value; it writes a problem (without the value when the
 * setting is secret) into why and returns nonzero. */
typedef int (*check_fn)(const char *v, char *why, size_t n);

struct var {
    const char *name;
    enum kind kind;
    size_t off;
    const char *def;
    long long min, max;       /* K_INT, K_SIZE */
    const char *const *enums; /* K_ENUM: NULL-terminated, value = index */
    check_fn check;
    const char *summary_key; /* camelCase name on the info page; NULL = never shown */
    const char *help;
};

static const char *const gk_names[] = {"none", "proxy_key", "user_token", NULL};
static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const sysmsg_names[] = {"inline", "hoist", NULL};
static const char *const errstyle_names[] = {"standard", "completion", NULL};

/* ---- validators ----------------------------------------------------------------------------- */

/* Calls fn on each comma-separated, trimmed entry; an empty entry is a problem. */
static int each_entry(const char *v, char *why, size_t n,
                      int (*fn)(const char *e, size_t len, int idx, char *why, size_t n))
{
    const char *e;
    size_t len;
    for (int idx = 1; util_list_next(&v, &e, &len); idx++) {
        if (len == 0) {
            snprintf(why, n, "entry %d is empty", idx);
            return 1;
        }
        if (fn && fn(e, len, idx, why, n))
            return 1;
    }
    return 0;
}

static int count_fields(const char *e, size_t len, int *empty)
{
    int fields = 1;
    size_t start = 0;
    *empty = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || e[i] == ':') {
            if (i == start)
                *empty = 1;
            if (i < len)
                fields++;
            start = i + 1;
        }
    }
    return fields;
}

static int gcp_entry(const char *e, size_t len, int idx, char *why, size_t n)
{
    int empty;
    if (count_fields(e, len, &empty) < 4 || empty) {
        snprintf(why, n, "entry %d must be projectId:clientEmail:region:privateKey", idx);
        return 1;
    }
    return 0;
}

static int aws_entry(const char *e, size_t len, int idx, char *why, size_t n)
{
    int empty, f = count_fields(e, len, &empty);
    if ((f != 3 && f != 4) || empty) {
        snprintf(why, n, "entry %d must be accessKeyId:secretAccessKey:region[:sessionToken]", idx);
        return 1;
    }
    return 0;
}

static int azure_entry(const char *e, size_t len, int idx, char *why, size_t n)
{
    int empty;
    if (count_fields(e, len, &empty) != 3 || empty) {
        snprintf(why, n, "entry %d must be resourceName:deploymentId:apiKey", idx);
        return 1;
    }
    return 0;
}

static int file_entry(const char *e, size_t len, int idx, char *why, size_t n)
{
    char path[1024];
    if (len >= sizeof path) {
        snprintf(why, n, "entry %d is too long", idx);
        return 1;
    }
    memcpy(path, e, len);
    path[len] = '\0';
    /* an optional ":region" suffix follows the path */
    if (access(path, R_OK) != 0) {
        char *colon = strrchr(path, ':');
        if (colon)
            *colon = '\0';
        if (access(path, R_OK) != 0) {
            snprintf(why, n, "entry %d: cannot read %s", idx, path);
            return 1;
        }
    }
    return 0;
}

static int alias_entry(const char *e, size_t len, int idx, char *why, size_t n)
{
    const char *eq = memchr(e, '=', len);
    if (!eq || eq == e || eq == e + len - 1) {
        snprintf(why, n, "entry %d must be alias=model", idx);
        return 1;
    }
    return 0;
}

static int connect_to_entry(const char *e, size_t len, int idx, char *why, size_t n)
{
    int colons = 0, depth = 0;
    for (size_t i = 0; i < len; i++) {
        if (e[i] == '[')
            depth++;
        else if (e[i] == ']')
            depth--;
        else if (e[i] == ':' && depth == 0)
            colons++;
    }
    if (colons != 3) {
        snprintf(why, n, "entry %d must be host:port:connecthost:connectport", idx);
        return 1;
    }
    return 0;
}

static int family_entry(const char *e, size_t len, int idx, char *why, size_t n)
{
    static const char *const fams[] = {"gcp-claude", "gcp-claude-opus", "aws-claude",
                                       "aws-claude-opus"};
    for (unsigned i = 0; i < sizeof fams / sizeof fams[0]; i++)
        if (strlen(fams[i]) == len && memcmp(fams[i], e, len) == 0)
            return 0;
    if (len > 6 && memcmp(e, "azure-", 6) == 0)
        return 0;
    snprintf(why, n,
             "entry %d is not a model family (gcp-claude, gcp-claude-opus, aws-claude, "
             "aws-claude-opus, azure-<model>)",
             idx);
    return 1;
}

static int provider_entry(const char *e, size_t len, int idx, char *why, size_t n)
{
    if ((len == 3 && memcmp(e, "gcp", 3) == 0) || (len == 3 && memcmp(e, "aws", 3) == 0))
        return 0;
    snprintf(why, n, "entry %d must be gcp or aws", idx);
    return 1;
}

#define LIST_CHECK(fname, entry)                                                                   \
    static int fname(const char *v, char *why, size_t n)                                           \
    {                                                                                              \
        return each_entry(v, why, n, entry);                                                       \
    }
LIST_CHECK(check_gcp, gcp_entry)
LIST_CHECK(check_gcp_file, file_entry)
LIST_CHECK(check_aws, aws_entry)
LIST_CHECK(check_azure, azure_entry)
LIST_CHECK(check_aliases, alias_entry)
LIST_CHECK(check_connect_to, connect_to_entry)
LIST_CHECK(check_families, family_entry)
LIST_CHECK(check_providers, provider_entry)
LIST_CHECK(check_list, NULL)

/* IP_BLACKLIST: the gatekeeper's own parser decides what is valid. */
static int check_cidrs(const char *v, char *why, size_t n)
{
    return cidr_list_valid(v, why, n) != 0;
}

static int check_route(const char *v, char *why, size_t n)
{
    if (v[0] != '/' || strlen(v) >= 200 || strpbrk(v, "?# \t%")) {
        snprintf(why, n, "must be a path starting with / (no ?, #, %% or spaces)");
        return 1;
    }
    return 0;
}

static int check_readable(const char *v, char *why, size_t n)
{
    if (access(v, R_OK) != 0) {
        snprintf(why, n, "cannot read %s", v);
        return 1;
    }
    return 0;
}

static int check_url(const char *v, char *why, size_t n)
{
    if (!strstr(v, "://")) {
        snprintf(why, n, "must be a URL (scheme://host:port)");
        return 1;
    }
    return 0;
}

static int check_state_url(const char *v, char *why, size_t n)
{
    if (strncmp(v, "rediss://", 9) == 0) {
        snprintf(why, n,
                 "TLS to Redis is not built in (hiredis 0.14): reach a TLS-only Redis "
                 "through stunnel or a TLS-terminating proxy and give its redis:// URL");
        return 1;
    }
    const char *rest = strncmp(v, "redis://", 8) == 0         ? v + 8
                       : strncmp(v, "redis+unix://", 13) == 0 ? v + 13
                       : strncmp(v, "unix://", 7) == 0        ? v + 7
                                                              : NULL;
    if (!rest || !*rest || (v[5] != ':' && rest[0] != '/')) {
        snprintf(why, n,
                 "must be redis://[user:password@]host[:port][/db] or "
                 "redis+unix:///path/to/redis.sock[?db=N]");
        return 1;
    }
    return 0;
}

static int check_state_path(const char *v, char *why, size_t n)
{
    char dir[1024];
    if (strlen(v) >= sizeof dir) {
        snprintf(why, n, "path too long");
        return 1;
    }
    strcpy(dir, v);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    if (access(dir, F_OK) != 0) {
        snprintf(why, n, "directory %s does not exist", dir);
        return 1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(why, n, "directory %s is not writable", dir);
        return 1;
    }
    return 0;
}

static int check_cron(const char *v, char *why, size_t n)
{
    if (strcmp(v, "hourly") == 0 || strcmp(v, "daily") == 0)
        return 0;
    int fields = 0, in = 0;
    for (const char *p = v; *p; p++) {
        if (isspace((unsigned char)*p)) {
            in = 0;
            continue;
        }
        if (!strchr("0123456789*/,-", *p))
            fields = 99;
        if (!in)
            fields++;
        in = 1;
    }
    if (fields != 5) {
        snprintf(why, n, "must be hourly, daily or a 5-field cron expression");
        return 1;
    }
    return 0;
}

/* ---- the table --------------------------------------------------------------------------------
 */

#define O(f)          offsetof(struct config, f)
#define STATE_DEFAULT LOCALSTATEDIR "/lib/oai-fcgi/state.db"

static const struct var vars[] = {
    {"GCP_CREDENTIALS", K_SECRET, O(gcp_credentials), NULL, 0, 0, NULL, check_gcp, NULL,
     "projectId:clientEmail:region:privateKey,... (PEM with literal \\n)"},
    {"GCP_CREDENTIALS_FILE", K_STR, O(gcp_credentials_file), NULL, 0, 0, NULL, check_gcp_file, NULL,
     "service-account JSON paths, each optionally :region"},
    {"AWS_CREDENTIALS", K_SECRET, O(aws_credentials), NULL, 0, 0, NULL, check_aws, NULL,
     "accessKeyId:secretAccessKey:region[:sessionToken],..."},
    {"AZURE_CREDENTIALS", K_SECRET, O(azure_credentials), NULL, 0, 0, NULL, check_azure, NULL,
     "resourceName:deploymentId:apiKey,..."},
    {"GATEKEEPER", K_ENUM, O(gatekeeper), "none", 0, 0, gk_names, NULL, "gatekeeper",
     "none, proxy_key or user_token"},
    {"PROXY_KEY", K_SECRET, O(proxy_key), NULL, 0, 0, NULL, NULL, NULL,
     "shared password for GATEKEEPER=proxy_key"},
    {"ADMIN_KEY", K_SECRET, O(admin_key), NULL, 0, 0, NULL, NULL, NULL,
     "admin password (also a proxy credential; guards /metrics and /admin)"},
    {"PROXY_ENDPOINT_ROUTE", K_STR, O(proxy_endpoint_route), "/proxy", 0, 0, NULL, check_route,
     "proxyEndpointRoute", "route prefix of the provider endpoints"},
    {"MODEL_ALIASES", K_STR, O(model_aliases), NULL, 0, 0, NULL, check_aliases, "modelAliases",
     "alias=model,... e.g. gpt-4o=claude-sonnet-4-5"},
    {"DEFAULT_MAX_TOKENS", K_INT, O(default_max_tokens), "4096", 1, INT_MAXV, NULL, NULL,
     "defaultMaxTokens", "max_tokens sent to Claude when the client gives none"},
    {"MAX_OUTPUT_TOKENS", K_INT, O(max_output_tokens), "0", 0, INT_MAXV, NULL, NULL,
     "maxOutputTokens", "clamp on requested output tokens, 0 = none"},
    {"ALLOWED_MODEL_FAMILIES", K_STR, O(allowed_model_families), NULL, 0, 0, NULL, check_families,
     "allowedModelFamilies", "comma list of families; unset = all"},
    {"TEXT_MODEL_RATE_LIMIT", K_INT, O(text_model_rate_limit), "0", 0, INT_MAXV, NULL, NULL,
     "textModelRateLimit", "requests per minute per identity, 0 = off"},
    {"MAX_IPS_PER_USER", K_INT, O(max_ips_per_user), "0", 0, INT_MAXV, NULL, NULL, "maxIpsPerUser",
     "per-user IP cap, 0 = none"},
    {"BLOCKED_ORIGINS", K_STR, O(blocked_origins), NULL, 0, 0, NULL, check_list, "blockedOrigins",
     "comma list of Origin/Referer substrings to refuse"},
    {"IP_BLACKLIST", K_STR, O(ip_blacklist), NULL, 0, 0, NULL, check_cidrs, NULL,
     "comma list of IPs/CIDR ranges to refuse"},
    {"TRUSTED_PROXIES", K_INT, O(trusted_proxies), "0", 0, 64, NULL, NULL, "trustedProxies",
     "X-Forwarded-For hops to trust"},
    {"STATE_PATH", K_STR, O(state_path), STATE_DEFAULT, 0, 0, NULL, check_state_path, NULL,
     "SQLite state file shared by all processes"},
    {"MAX_BODY_BYTES", K_SIZE, O(max_body_bytes), "33554432", LIMIT_BODY_MIN, 4096LL * 1024 * 1024,
     NULL, NULL, "maxBodyBytes", "largest request body (bytes; k/m/g suffixes), larger gets 413"},
    {"UPSTREAM_TIMEOUT_S", K_INT, O(upstream_timeout_s), "600", 1, 86400, NULL, NULL,
     "upstreamTimeoutS", "upstream request timeout"},
    {"STREAM_IDLE_TIMEOUT_S", K_INT, O(stream_idle_timeout_s), "300", 1, 86400, NULL, NULL,
     "streamIdleTimeoutS", "longest upstream silence in a stream"},
    {"HEARTBEAT_S", K_INT, O(heartbeat_s), "15", 1, 3600, NULL, NULL, "heartbeatS",
     "SSE comment after this many seconds of silence"},
    {"UPSTREAM_CONNECT_TO", K_STR, O(upstream_connect_to), NULL, 0, 0, NULL, check_connect_to, NULL,
     "host:port:connecthost:connectport,... (libcurl CONNECT_TO)"},
    {"UPSTREAM_CA_BUNDLE", K_STR, O(upstream_ca_bundle), NULL, 0, 0, NULL, check_readable, NULL,
     "CA file for upstream TLS (default: system)"},
    {"HTTPS_PROXY", K_SECRET, O(https_proxy), NULL, 0, 0, NULL, check_url, NULL,
     "proxy for upstream calls"},
    {"SERVER_TITLE", K_STR, O(server_title), "oai-fcgi", 0, 0, NULL, NULL, NULL, "info page title"},
    {"LOG_LEVEL", K_ENUM, O(log_level), "info", 0, 0, level_names, NULL, "logLevel",
     "debug, info, warn or error"},
    {"SYSTEM_MESSAGE_MODE", K_ENUM, O(system_message_mode), "inline", 0, 0, sysmsg_names, NULL,
     "systemMessageMode", "inline or hoist"},
    {"ERROR_STYLE", K_ENUM, O(error_style), "standard", 0, 0, errstyle_names, NULL, "errorStyle",
     "standard or completion"},
    {"AZURE_API_VERSION", K_STR, O(azure_api_version), "2024-10-21", 0, 0, NULL, NULL,
     "azureApiVersion", "api-version for Azure deployments"},
    {"MAX_CHOICES", K_INT, O(max_choices), "4", 1, 16, NULL, NULL, "maxChoices",
     "largest n served by fan-out"},
    {"DROP_ANTHROPIC_BETAS", K_STR, O(drop_anthropic_betas), NULL, 0, 0, NULL, check_list,
     "dropAnthropicBetas", "comma list of anthropic-beta flags to remove"},
    {"VERTEX_ANTHROPIC_VERSION", K_STR, O(vertex_anthropic_version), "vertex-2023-10-16", 0, 0,
     NULL, NULL, "vertexAnthropicVersion", "anthropic_version sent to Vertex"},
    {"BEDROCK_ANTHROPIC_VERSION", K_STR, O(bedrock_anthropic_version), "bedrock-2023-05-31", 0, 0,
     NULL, NULL, "bedrockAnthropicVersion", "anthropic_version sent to Bedrock"},
    {"MAX_QUEUE_WAIT_S", K_INT, O(max_queue_wait_s), "60", 0, 3600, NULL, NULL, "maxQueueWaitS",
     "longest wait for a cooling key"},
    {"PROVIDER_ORDER", K_STR, O(provider_order), "gcp,aws", 0, 0, NULL, check_providers,
     "providerOrder", "order the unified routes try providers in"},
    {"KEY_CHECK_PERIOD_S", K_INT, O(key_check_period_s), "3600", 0, 30LL * 86400, NULL, NULL,
     "keyCheckPeriodS", "key checker period"},
    {"KEY_MAX_CONCURRENCY", K_INT, O(key_max_concurrency), "0", 0, 100000, NULL, NULL,
     "keyMaxConcurrency", "in-flight requests per key, 0 = unlimited"},
    {"QUOTA_REFRESH_PERIOD", K_STR, O(quota_refresh_period), NULL, 0, 0, NULL, check_cron,
     "quotaRefreshPeriod", "hourly, daily or a cron string"},
    {"STATE_URL", K_SECRET, O(state_url), NULL, 0, 0, NULL, check_state_url, NULL,
     "Redis URL of a state store shared by several hosts (instead of STATE_PATH)"},
    {"STATE_PREFIX", K_STR, O(state_prefix), "oai-fcgi:", 0, 0, NULL, NULL, "statePrefix",
     "key prefix in the shared state backend"},
    {"STATE_FAIL_OPEN", K_BOOL, O(state_fail_open), "off", 0, 0, NULL, NULL, "stateFailOpen",
     "whether unreadable state admits requests"},
};
#define NVARS (sizeof vars / sizeof vars[0])

/* ---- loading ----------------------------------------------------------------------------------
 */

static int parse_bool(const char *v, long long *out)
{
    static const char *const yes[] = {"1", "true", "on", "yes"}, *const no[] = {"0", "false", "off",
                                                                                "no"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int parse_size(const char *v, long long min, long long max, long long *out)
{
    char num[32];
    size_t len = strlen(v);
    long long mul = 1;
    if (len == 0 || len >= sizeof num)
        return -1;
    memcpy(num, v, len + 1);
    switch (tolower((unsigned char)num[len - 1])) {
    case 'k':
        mul = 1 KB;
        break;
    case 'm':
        mul = 1 KB KB;
        break;
    case 'g':
        mul = 1 KB KB KB;
        break;
    default:
        break;
    }
    if (mul > 1)
        num[len - 1] = '\0';
    long long n;
    if (util_parse_long(num, 0, max / mul, &n) || n * mul < min)
        return -1;
    *out = n * mul;
    return 0;
}

static void problem(config_report_fn report, void *rctx, const char *name, const char *why)
{
    char line[512];
    snprintf(line, sizeof line, "%s: %s", name, why);
    report(rctx, line);
}

static int load_var(struct config *cfg, const struct var *v, const char *val, char *why, size_t n)
{
    char *field = (char *)cfg + v->off;
    int set = val && *val;
    if (!set)
        val = v->def;
    if (set && strlen(val) > LIMIT_SETTING) {
        snprintf(why, n, "value is too long");
        return 1;
    }
    switch (v->kind) {
    case K_STR:
    case K_SECRET:
        *(const char **)field = set ? val : v->def;
        if (set && v->check && v->check(val, why, n))
            return 1;
        return 0;
    case K_INT:
        if (util_parse_long(val, v->min, v->max, (long long *)field)) {
            snprintf(why, n, "must be an integer from %lld to %lld", v->min, v->max);
            return 1;
        }
        return 0;
    case K_SIZE:
        if (parse_size(val, v->min, v->max, (long long *)field)) {
            snprintf(why, n, "must be a byte count from %lld (k, m, g suffixes allowed)", v->min);
            return 1;
        }
        return 0;
    case K_BOOL:
        if (parse_bool(val, (long long *)field)) {
            snprintf(why, n, "must be on or off (true/false, 1/0, yes/no)");
            return 1;
        }
        return 0;
    case K_ENUM:
        for (int i = 0; v->enums[i]; i++) {
            if (strcmp(val, v->enums[i]) == 0) {
                *(long long *)field = i;
                return 0;
            }
        }
        {
            size_t k = (size_t)snprintf(why, n, "must be one of ");
            for (int i = 0; v->enums[i] && k < n; i++)
                k += (size_t)snprintf(why + k, n - k, "%s%s", i ? ", " : "", v->enums[i]);
        }
        return 1;
    }
    return 1;
}

static int count_entries(const char *v)
{
    if (!v || !*v)
        return 0;
    int n = 1;
    for (; *v; v++)
        n += *v == ',';
    return n;
}

static int quota_problems(char **extra, config_report_fn report, void *rctx)
{
    int problems = 0;
    for (char **e = extra; e && *e; e++) {
        if (strncmp(*e, "TOKEN_QUOTA_", 12) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        long long q;
        if (!eq || eq == *e + 12 || util_parse_long(eq + 1, 0, INT64_MAX, &q)) {
            char name[128];
            size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
            snprintf(name, sizeof name, "%.*s", (int)(len < 100 ? len : 100), *e);
            problem(report, rctx, name, "must be a non-negative integer (tokens), 0 = unlimited");
            problems++;
        }
    }
    return problems;
}

int config_load(struct config *cfg, config_lookup_fn lookup, void *lctx, char **extra,
                config_report_fn report, void *rctx)
{
    int problems = 0;
    char why[400];
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NVARS; i++) {
        why[0] = '\0';
        if (load_var(cfg, &vars[i], lookup(lctx, vars[i].name), why, sizeof why)) {
            problem(report, rctx, vars[i].name, why);
            problems++;
        }
    }
    if (cfg->gatekeeper == GK_PROXY_KEY && !(cfg->proxy_key && *cfg->proxy_key)) {
        problem(report, rctx, "PROXY_KEY", "must be set when GATEKEEPER=proxy_key");
        problems++;
    }
    if (cfg->gatekeeper == GK_USER_TOKEN && !(cfg->admin_key && *cfg->admin_key)) {
        problem(report, rctx, "ADMIN_KEY", "must be set when GATEKEEPER=user_token");
        problems++;
    }
    problems += quota_problems(extra, report, rctx);

    const char *route = cfg->proxy_endpoint_route ? cfg->proxy_endpoint_route : "/proxy";
    size_t len = strlen(route);
    if (len >= sizeof cfg->base)
        len = 0;
    while (len > 0 && route[len - 1] == '/')
        len--;
    memcpy(cfg->base, route, len);
    cfg->base[len] = '\0';
    cfg->gcp_keys = count_entries(cfg->gcp_credentials) + count_entries(cfg->gcp_credentials_file);
    cfg->aws_keys = count_entries(cfg->aws_credentials);
    cfg->azure_keys = count_entries(cfg->azure_credentials);
    return problems;
}

const char *config_env_lookup(void *ctx, const char *name)
{
    (void)ctx;
    return getenv(name);
}

/* ---- per request ------------------------------------------------------------------------------
 */

static int is_setting_name(const char *entry)
{
    const char *name = entry;
    if (strncmp(name, "HTTP_", 5) == 0)
        return 0; /* client headers: never settings, and most of the params */
    if (strncmp(name, "REDIRECT_", 9) == 0)
        name += 9;
    if (strncmp(name, "TOKEN_QUOTA_", 12) == 0)
        return 1;
    size_t len = strcspn(name, "=");
    for (size_t i = 0; i < NVARS; i++)
        if (vars[i].name[0] == name[0] && strncmp(vars[i].name, name, len) == 0 &&
            vars[i].name[len] == '\0')
            return 1;
    return 0;
}

static const char *request_lookup(void *ctx, const char *name)
{
    struct io *io = ctx;
    const char *v = io_param(io, name);
    if (v)
        return v;
    char redirected[128];
    snprintf(redirected, sizeof redirected, "REDIRECT_%s", name);
    v = io_param(io, redirected);
    return v ? v : getenv(name);
}

static void log_problem(void *ctx, const char *line)
{
    (void)ctx;
    log_error("bad per-request setting: %s", line);
}

const struct config *config_for_request(const struct config *base, struct io *io,
                                        struct config *scratch)
{
    if (io->params_are_env)
        return base;
    char **p = io_params(io);
    for (; p && *p; p++)
        if (isupper((unsigned char)**p) && is_setting_name(*p))
            break;
    if (!p || !*p)
        return base;
    if (config_load(scratch, request_lookup, io, io_params(io), log_problem, NULL))
        return NULL;
    return scratch;
}

long long config_token_quota(struct io *io, const char *family)
{
    char name[96];
    size_t k = (size_t)snprintf(name, sizeof name, "TOKEN_QUOTA_");
    for (const char *f = family; *f && k + 1 < sizeof name; f++)
        name[k++] = *f == '-' ? '_' : (char)toupper((unsigned char)*f);
    name[k] = '\0';
    const char *v = io ? request_lookup(io, name) : getenv(name);
    long long q;
    return v && util_parse_long(v, 0, INT64_MAX, &q) == 0 ? q : 0;
}

/* ---- summary and help ------------------------------------------------------------------------ */

json_object *config_summary(const struct config *cfg)
{
    json_object *o = json_object_new_object();
    for (size_t i = 0; i < NVARS; i++) {
        const struct var *v = &vars[i];
        if (!v->summary_key)
            continue;
        const char *field = (const char *)cfg + v->off;
        char num[32];
        const char *s = NULL;
        switch (v->kind) {
        case K_STR:
            s = *(const char *const *)field;
            break;
        case K_INT:
        case K_SIZE:
            snprintf(num, sizeof num, "%lld", *(const long long *)field);
            s = num;
            break;
        case K_BOOL:
            s = *(const long long *)field ? "on" : "off";
            break;
        case K_ENUM:
            s = v->enums[*(const long long *)field];
            break;
        case K_SECRET:
            break;
        }
        if (s && *s)
            json_object_object_add(o, v->summary_key, json_object_new_string(s));
    }
    return o;
}

void config_print_help(void *f)
{
    for (size_t i = 0; i < NVARS; i++)
        fprintf(f, "  %-26s %s%s%s%s\n", vars[i].name, vars[i].help, vars[i].def ? " [" : "",
                vars[i].def ? vars[i].def : "", vars[i].def ? "]" : "");
    fprintf(f, "  %-26s %s\n", "TOKEN_QUOTA_<FAMILY>", "per-user token quota, 0 = unlimited");
}
