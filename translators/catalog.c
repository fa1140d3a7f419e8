#include "translators/catalog.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

#define NOTP CAT_NO_TEMP_AND_TOP_P
#define PROF CAT_PROFILE

static const struct catalog_model models[] = {
    {"claude-opus-4-5-20251101", "claude-opus-4-5", "claude-opus-4-5@20251101",
     "anthropic.claude-opus-4-5-20251101-v1:0", CAT_OPUS | NOTP | CAT_THINKING | PROF, 1761955200},
    {"claude-opus-4-1-20250805", "claude-opus-4-1", "claude-opus-4-1@20250805",
     "anthropic.claude-opus-4-1-20250805-v1:0", CAT_OPUS | NOTP | CAT_THINKING | PROF, 1754352000},
    {"claude-opus-4-20250514", "claude-opus-4-0", "claude-opus-4@20250514",
     "anthropic.claude-opus-4-20250514-v1:0", CAT_OPUS | CAT_THINKING | PROF, 1747180800},
    {"claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "claude-sonnet-4-5@20250929",
     "anthropic.claude-sonnet-4-5-20250929-v1:0", NOTP | CAT_THINKING | PROF, 1759104000},
    {"claude-sonnet-4-20250514", "claude-sonnet-4-0", "claude-sonnet-4@20250514",
     "anthropic.claude-sonnet-4-20250514-v1:0", CAT_THINKING | PROF, 1747180800},
    {"claude-3-7-sonnet-20250219", "claude-3-7-sonnet-latest", "claude-3-7-sonnet@20250219",
     "anthropic.claude-3-7-sonnet-20250219-v1:0", CAT_THINKING | PROF, 1739923200},
    {"claude-haiku-4-5-20251001", "claude-haiku-4-5", "claude-haiku-4-5@20251001",
     "anthropic.claude-haiku-4-5-20251001-v1:0", NOTP | CAT_THINKING | PROF, 1759276800},
    {"claude-3-5-haiku-20241022", "claude-3-5-haiku-latest", "claude-3-5-haiku@20241022",
     "anthropic.claude-3-5-haiku-20241022-v1:0", PROF, 1729555200},
    {"claude-3-haiku-20240307", "claude-3-haiku", "claude-3-haiku@20240307",
     "anthropic.claude-3-haiku-20240307-v1:0", 0, 1709769600},
    {"claude-3-5-sonnet-20241022", "claude-3-5-sonnet-latest", "claude-3-5-sonnet-v2@20241022",
     "anthropic.claude-3-5-sonnet-20241022-v2:0", CAT_LEGACY | PROF, 1729555200},
    {"claude-3-5-sonnet-20240620", NULL, "claude-3-5-sonnet@20240620",
     "anthropic.claude-3-5-sonnet-20240620-v1:0", CAT_LEGACY, 1718841600},
    {"claude-3-opus-20240229", "claude-3-opus-latest", "claude-3-opus@20240229",
     "anthropic.claude-3-opus-20240229-v1:0", CAT_OPUS | CAT_LEGACY, 1709164800},
    {"claude-3-sonnet-20240229", NULL, "claude-3-sonnet@20240229",
     "anthropic.claude-3-sonnet-20240229-v1:0", CAT_LEGACY, 1709164800},
};
#define NMODELS (sizeof models / sizeof models[0])

size_t catalog_count(void)
{
    return NMODELS;
}

const struct catalog_model *catalog_at(size_t i)
{
    return i < NMODELS ? &models[i] : NULL;
}

static int eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* "us.anthropic.x" -> "anthropic.x"; "arn:...:inference-profile/us.anthropic.x" -> same. */
static const char *strip_bedrock(const char *name)
{
    if (strncmp(name, "arn:", 4) == 0) {
        const char *slash = strrchr(name, '/');
        if (slash)
            name = slash + 1;
    }
    const char *a = strstr(name, "anthropic.");
    if (a && a > name && a[-1] == '.') {
        for (const char *p = name; p < a - 1; p++)
            if (!islower((unsigned char)*p) && *p != '-')
                return name;
        return a;
    }
    return name;
}

const struct catalog_model *catalog_find(const char *name)
{
    if (!name || !*name)
        return NULL;
    const char *bare = strip_bedrock(name);
    for (size_t i = 0; i < NMODELS; i++) {
        const struct catalog_model *m = &models[i];
        if (eq(name, m->api_id) || eq(name, m->alias) || eq(name, m->vertex) ||
            eq(bare, m->bedrock))
            return m;
    }
    /* Short forms without a date that clients also use: claude-opus-4, claude-sonnet-4. */
    if (eq(name, "claude-opus-4"))
        return &models[2];
    if (eq(name, "claude-sonnet-4"))
        return &models[4];
    return NULL;
}

/* The target of name in "alias=target,..." or NULL; the result is copied into buf. */
static const char *alias_target(const char *aliases, const char *name, char *buf, size_t n)
{
    size_t len = strlen(name), elen;
    const char *e;
    while (util_list_next(&aliases, &e, &elen)) {
        const char *eqs = memchr(e, '=', elen), *end = e + elen;
        if (!eqs)
            continue;
        const char *ke = eqs, *v = eqs + 1;
        while (ke > e && ke[-1] == ' ')
            ke--;
        while (v < end && *v == ' ')
            v++;
        if ((size_t)(ke - e) == len && memcmp(e, name, len) == 0) {
            snprintf(buf, n, "%.*s", (int)(end - v), v);
            return buf;
        }
    }
    return NULL;
}

static int is_native(const char *name, enum catalog_provider provider)
{
    if (provider == CATALOG_VERTEX)
        return strchr(name, '@') != NULL;
    return strncmp(name, "arn:", 4) == 0 || strip_bedrock(name) != name ||
           strncmp(name, "anthropic.", 10) == 0;
}

int catalog_resolve(const char *name, const char *aliases, enum catalog_provider provider,
                    struct catalog_resolved *out)
{
    char buf[256];
    memset(out, 0, sizeof *out);
    if (!name || !*name)
        return -1;
    const char *target = alias_target(aliases, name, buf, sizeof buf);
    if (target)
        name = target;
    const struct catalog_model *m = catalog_find(name);
    out->native = is_native(name, provider);
    if (out->native)
        snprintf(out->upstream_id, sizeof out->upstream_id, "%s", name);
    else if (m)
        snprintf(out->upstream_id, sizeof out->upstream_id, "%s",
                 provider == CATALOG_VERTEX ? m->vertex : m->bedrock);
    else
        return -1;
    out->model = m;
    int opus = m ? (m->flags & CAT_OPUS) != 0 : strstr(name, "opus") != NULL;
    out->flags = m ? m->flags : 0;
    snprintf(out->family, sizeof out->family, "%s-claude%s",
             provider == CATALOG_VERTEX ? "gcp" : "aws", opus ? "-opus" : "");
    return 0;
}
