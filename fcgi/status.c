#include "fcgi/status.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/util.h"
#include "build-info.h"
#include "revision.h"

#define BUILD PACKAGE_NAME " " PACKAGE_VERSION " (" OAI_GIT_REV ")"

static json_object *url(const struct status_input *in, const char *a, const char *b)
{
    char u[1024];
    snprintf(u, sizeof u, "%s%s%s%s", in->origin, in->mount, a, b);
    return json_object_new_string(u);
}

struct counts {
    int64_t proompts, tokens, prompters;
};

static int read_counts(struct state *st, struct counts *c)
{
    int rc = state_counter_get(st, STATE_PROMPTS, &c->proompts);
    if (!rc)
        rc = state_counter_get(st, STATE_TOKENS, &c->tokens);
    if (!rc)
        rc = state_kv_count(st, STATUS_PROMPTER_PREFIX, &c->prompters);
    return rc;
}

int status_info(const struct status_input *in, json_object **out)
{
    struct counts c;
    *out = NULL;
    int rc = read_counts(in->st, &c);
    if (rc)
        return rc;
    const struct config *cfg = in->cfg;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "uptime", json_object_new_int64(in->uptime_s));
    json_object *ep = json_object_new_object();
    json_object_object_add(ep, "gcp", url(in, cfg->base, "/gcp/claude"));
    json_object_object_add(ep, "aws", url(in, cfg->base, "/aws/claude"));
    json_object_object_add(ep, "azure", url(in, cfg->base, "/azure/openai"));
    json_object_object_add(ep, "universal", url(in, "", "/v1"));
    json_object_object_add(o, "endpoints", ep);
    json_object_object_add(o, "proompts", json_object_new_int64(c.proompts));
    char pretty[32];
    util_pretty_tokens(c.tokens, pretty, sizeof pretty);
    json_object_object_add(o, "tookens", json_object_new_string(pretty));
    json_object_object_add(o, "proomptersNow", json_object_new_int64(c.prompters));
    if (cfg->gcp_keys)
        json_object_object_add(o, "gcpKeys", json_object_new_int(cfg->gcp_keys));
    if (cfg->aws_keys)
        json_object_object_add(o, "awsKeys", json_object_new_int(cfg->aws_keys));
    if (cfg->azure_keys)
        json_object_object_add(o, "azureKeys", json_object_new_int(cfg->azure_keys));
    json_object_object_add(o, "config", config_summary(cfg));
    json_object_object_add(o, "build", json_object_new_string(BUILD));
    *out = o;
    return 0;
}

static int escape_html(struct buf *b, const char *s)
{
    int rc = 0;
    for (; *s && !rc; s++) {
        switch (*s) {
        case '<':
            rc = buf_adds(b, "&lt;");
            break;
        case '>':
            rc = buf_adds(b, "&gt;");
            break;
        case '&':
            rc = buf_adds(b, "&amp;");
            break;
        case '"':
            rc = buf_adds(b, "&quot;");
            break;
        default:
            rc = buf_add(b, s, 1);
        }
    }
    return rc;
}

/* The seed's friendly family names: "GCP Claude (Sonnet)", "AWS Claude (Opus)", "Azure gpt4o". */
static void friendly(const char *family, char *out, size_t n)
{
    const char *platform = strncmp(family, "gcp-", 4) == 0   ? "GCP"
                           : strncmp(family, "aws-", 4) == 0 ? "AWS"
                                                             : NULL;
    if (platform)
        snprintf(out, n, "%s Claude (%s)", platform, strstr(family, "-opus") ? "Opus" : "Sonnet");
    else if (strncmp(family, "azure-", 6) == 0)
        snprintf(out, n, "Azure %s", family + 6);
    else
        snprintf(out, n, "%s", family);
}

/* One line of wait times, one entry per family block (seed §3.1). */
static int wait_line(json_object *info, struct buf *out)
{
    int rc = 0, first = 1;
    json_object_object_foreach(info, name, val)
    {
        json_object *t;
        if (!json_object_is_type(val, json_type_object) ||
            !json_object_object_get_ex(val, "estimatedQueueTime", &t))
            continue;
        char label[96];
        friendly(name, label, sizeof label);
        if (!rc)
            rc = buf_adds(out, first ? "<p>" : " / ");
        if (!rc)
            rc = buf_adds(out, "<strong>");
        if (!rc)
            rc = escape_html(out, label);
        if (!rc)
            rc = buf_adds(out, "</strong>: ");
        if (!rc)
            rc = escape_html(out, json_object_get_string(t));
        first = 0;
    }
    if (!rc && !first)
        rc = buf_adds(out, "</p>\n");
    return rc;
}

int status_html(json_object *info, const char *title, struct buf *out)
{
    int rc = buf_adds(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                           "<meta name=\"viewport\" content=\"width=device-width\"><title>");
    if (!rc)
        rc = escape_html(out, title);
    if (!rc)
        rc = buf_adds(out, "</title><style>body{font-family:system-ui,sans-serif;max-width:56em;"
                           "margin:2em auto;padding:0 1em;line-height:1.5}pre{background:#f4f4f4;"
                           "padding:1em;overflow:auto}code{background:#f4f4f4}</style></head>"
                           "<body>\n<h1>");
    if (!rc)
        rc = escape_html(out, title);
    if (!rc)
        rc = buf_adds(out, "</h1>\n");
    if (!rc)
        rc = wait_line(info, out);
    if (!rc)
        rc = buf_adds(out, "<h2>Endpoints</h2>\n<ul>\n");
    json_object *ep;
    if (!rc && json_object_object_get_ex(info, "endpoints", &ep)) {
        json_object_object_foreach(ep, name, val)
        {
            if (!rc)
                rc = buf_adds(out, "<li>");
            if (!rc)
                rc = escape_html(out, name);
            if (!rc)
                rc = buf_adds(out, ": <code>");
            if (!rc)
                rc = escape_html(out, json_object_get_string(val));
            if (!rc)
                rc = buf_adds(out, "</code></li>\n");
        }
    }
    if (!rc)
        rc = buf_adds(out, "</ul>\n<h2>Service Info</h2>\n<pre>");
    if (!rc)
        rc = escape_html(out, json_object_to_json_string_ext(
                                  info, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                            JSON_C_TO_STRING_NOSLASHESCAPE));
    if (!rc)
        rc = buf_adds(out, "</pre>\n</body></html>\n");
    return rc;
}

int status_metrics(const struct status_input *in, struct buf *out)
{
    struct counts c;
    int rc = read_counts(in->st, &c);
    if (rc)
        return rc;
    const struct config *cfg = in->cfg;
    return buf_printf(
        out,
        "# HELP oai_fcgi_build_info Build of the gateway.\n"
        "# TYPE oai_fcgi_build_info gauge\n"
        "oai_fcgi_build_info{version=\"%s\",revision=\"%s\"} 1\n"
        "# HELP oai_fcgi_uptime_seconds Seconds since the gateway started.\n"
        "# TYPE oai_fcgi_uptime_seconds gauge\n"
        "oai_fcgi_uptime_seconds %lld\n"
        "# HELP oai_fcgi_prompts_total Prompts answered by upstreams (all processes).\n"
        "# TYPE oai_fcgi_prompts_total counter\n"
        "oai_fcgi_prompts_total %lld\n"
        "# HELP oai_fcgi_tokens_total Tokens reported by upstreams (all processes).\n"
        "# TYPE oai_fcgi_tokens_total counter\n"
        "oai_fcgi_tokens_total %lld\n"
        "# HELP oai_fcgi_prompters_now Distinct clients with a prompt in the last 60 s.\n"
        "# TYPE oai_fcgi_prompters_now gauge\n"
        "oai_fcgi_prompters_now %lld\n"
        "# HELP oai_fcgi_keys Configured credentials per provider.\n"
        "# TYPE oai_fcgi_keys gauge\n"
        "oai_fcgi_keys{provider=\"gcp\"} %d\n"
        "oai_fcgi_keys{provider=\"aws\"} %d\n"
        "oai_fcgi_keys{provider=\"azure\"} %d\n"
        "# HELP oai_fcgi_requests_in_flight Requests being served by this process.\n"
        "# TYPE oai_fcgi_requests_in_flight gauge\n"
        "oai_fcgi_requests_in_flight %ld\n",
        PACKAGE_VERSION, OAI_GIT_REV, (long long)in->uptime_s, (long long)c.proompts,
        (long long)c.tokens, (long long)c.prompters, cfg->gcp_keys, cfg->aws_keys, cfg->azure_keys,
        in->in_flight);
}

/* The q-value of the most specific Accept entry matching type/sub, or -1 for none. */
static double accept_q(const char *accept, const char *type, const char *sub)
{
    double best = -1;
    int best_spec = -1;
    const char *p = accept;
    while (*p) {
        size_t len = strcspn(p, ",");
        char item[128];
        size_t k = len < sizeof item - 1 ? len : sizeof item - 1;
        memcpy(item, p, k);
        item[k] = '\0';
        p += len + (p[len] == ',');
        char *params = strchr(item, ';');
        double q = 1;
        if (params) {
            *params++ = '\0';
            char *qp = strstr(params, "q=");
            if (qp)
                q = strtod(qp + 2, NULL);
        }
        char *t = item;
        while (isspace((unsigned char)*t))
            t++;
        size_t tl = strlen(t);
        while (tl && isspace((unsigned char)t[tl - 1]))
            t[--tl] = '\0';
        char *slash = strchr(t, '/');
        if (!slash)
            continue;
        *slash = '\0';
        const char *ts = t, *ss = slash + 1;
        int spec = -1;
        if (strcasecmp(ts, type) == 0 && strcasecmp(ss, sub) == 0)
            spec = 2;
        else if (strcasecmp(ts, type) == 0 && strcmp(ss, "*") == 0)
            spec = 1;
        else if (strcmp(ts, "*") == 0 && strcmp(ss, "*") == 0)
            spec = 0;
        if (spec > best_spec) {
            best_spec = spec;
            best = q;
        }
    }
    return best;
}

int status_prefers_html(const char *accept)
{
    if (!accept || !*accept)
        return 0;
    double html = accept_q(accept, "text", "html");
    double json = accept_q(accept, "application", "json");
    return html > 0 && html > json;
}
