/*
 * config.h - every setting of SPEC §4, parsed and validated by one table.
 *
 * A setting is looked up through a caller-supplied function: the process environment at
 * start-up and for --check-config; per request, the FastCGI param, then REDIRECT_<NAME>, then
 * the environment (config_for_request). Never from HTTP_* names.
 *
 * struct config borrows its strings from wherever the lookup found them, so a per-request
 * config lives no longer than its request.
 */
#ifndef OAI_CONFIG_H
#define OAI_CONFIG_H

#include <json-c/json.h>
#include <stddef.h>

struct io;

enum gatekeeper { GK_NONE, GK_PROXY_KEY, GK_USER_TOKEN };
enum sysmsg_mode { SYSMSG_INLINE, SYSMSG_HOIST };
enum error_style { ERRSTYLE_STANDARD, ERRSTYLE_COMPLETION };

struct config {
    const char *gcp_credentials, *gcp_credentials_file, *aws_credentials, *azure_credentials;
    long long gatekeeper;
    const char *proxy_key, *admin_key;
    const char *proxy_endpoint_route;
    const char *model_aliases;
    long long default_max_tokens, max_output_tokens;
    const char *allowed_model_families;
    long long text_model_rate_limit, max_ips_per_user;
    const char *blocked_origins, *ip_blacklist;
    long long trusted_proxies;
    const char *state_path;
    long long max_body_bytes, upstream_timeout_s, stream_idle_timeout_s, heartbeat_s;
    const char *upstream_connect_to, *upstream_ca_bundle, *https_proxy, *server_title;
    long long log_level, system_message_mode, error_style;
    const char *azure_api_version;
    long long max_choices;
    const char *drop_anthropic_betas, *vertex_anthropic_version, *bedrock_anthropic_version;
    long long max_queue_wait_s;
    const char *provider_order;
    long long key_check_period_s, key_max_concurrency;
    const char *quota_refresh_period, *state_url, *state_prefix;
    long long state_fail_open;
    /* derived */
    char base[256]; /* PROXY_ENDPOINT_ROUTE without a trailing slash ("" for "/") */
    int gcp_keys, aws_keys, azure_keys;
};

/* A lookup returns the raw value of a variable or NULL when unset. */
typedef const char *(*config_lookup_fn)(void *ctx, const char *name);
/* A problem report: one line naming the variable, never its value when it is a secret. */
typedef void (*config_report_fn)(void *ctx, const char *line);

/* config_load fills cfg from lookup (defaults for unset variables) and reports each problem.
 * extra lists further "NAME=value" pairs to validate by pattern (TOKEN_QUOTA_*); may be NULL.
 * Returns the number of problems (0 = cfg is valid). */
int config_load(struct config *cfg, config_lookup_fn lookup, void *lctx, char **extra,
                config_report_fn report, void *rctx);

/* config_env_lookup is a config_lookup_fn over the process environment. */
const char *config_env_lookup(void *ctx, const char *name);

/* config_for_request returns the settings for one request: base itself when no request
 * parameter names a setting (the common case costs one pass over the params), else the result
 * of loading param -> REDIRECT_<NAME> -> environment into *scratch. Returns NULL when a
 * per-request value is invalid; each problem is logged naming the variable. */
const struct config *config_for_request(const struct config *base, struct io *io,
                                        struct config *scratch);

/* config_token_quota reads TOKEN_QUOTA_<FAMILY> for family ("gcp-claude-opus" ->
 * TOKEN_QUOTA_GCP_CLAUDE_OPUS) the way settings are read (param, REDIRECT_, environment; io may
 * be NULL: environment only). 0 (unlimited) when unset; values were validated at load. */
long long config_token_quota(struct io *io, const char *family);

/* config_summary returns a new JSON object of the non-secret settings as strings (for the info
 * page and --check-config); secrets appear only as "set"/absent. */
json_object *config_summary(const struct config *cfg);

/* config_print_help writes the variable list (name, default, meaning) to f. */
void config_print_help(void *f);

#endif
