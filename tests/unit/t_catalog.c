/* Unit tests for translators/catalog (name resolution per provider, aliases, families, flags)
 * and translators/vertex (URLs per location kind, body preparation). */
#include "common/err.h"
#include "common/util.h"
#include "translators/catalog.h"
#include "translators/vertex.h"
#include "tests/unit/tap.h"

struct resolve_case {
    const char *name, *aliases;
    enum catalog_provider provider;
    const char *upstream, *family;
};

static void test_resolve(void)
{
    static const struct resolve_case cases[] = {
        {"claude-sonnet-4-5-20250929", NULL, CATALOG_VERTEX, "claude-sonnet-4-5@20250929",
         "gcp-claude"},
        {"claude-sonnet-4-5", NULL, CATALOG_VERTEX, "claude-sonnet-4-5@20250929", "gcp-claude"},
        {"claude-opus-4-5", NULL, CATALOG_VERTEX, "claude-opus-4-5@20251101", "gcp-claude-opus"},
        {"claude-opus-4-1-20250805", NULL, CATALOG_BEDROCK,
         "anthropic.claude-opus-4-1-20250805-v1:0", "aws-claude-opus"},
        {"anthropic.claude-haiku-4-5-20251001-v1:0", NULL, CATALOG_VERTEX,
         "claude-haiku-4-5@20251001", "gcp-claude"},
        {"us.anthropic.claude-sonnet-4-20250514-v1:0", NULL, CATALOG_BEDROCK,
         "us.anthropic.claude-sonnet-4-20250514-v1:0", "aws-claude"},
        {"claude-sonnet-4-5@20250929", NULL, CATALOG_VERTEX, "claude-sonnet-4-5@20250929",
         "gcp-claude"},
        {"claude-opus-4-6", NULL, CATALOG_VERTEX, NULL, NULL},
        {"claude-future@20990101", NULL, CATALOG_VERTEX, "claude-future@20990101", "gcp-claude"},
        {"claude-opus-9@20990101", NULL, CATALOG_VERTEX, "claude-opus-9@20990101",
         "gcp-claude-opus"},
        {"gpt-4o", "gpt-4o=claude-sonnet-4-5, x=y", CATALOG_VERTEX, "claude-sonnet-4-5@20250929",
         "gcp-claude"},
        {"gpt-4o", NULL, CATALOG_VERTEX, NULL, NULL},
        {"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-7-"
         "sonnet-20250219-v1:0",
         NULL, CATALOG_BEDROCK,
         "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-7-"
         "sonnet-20250219-v1:0",
         "aws-claude"},
        {"claude-3-5-sonnet-20241022", NULL, CATALOG_VERTEX, "claude-3-5-sonnet-v2@20241022",
         "gcp-claude"},
        {"claude-3-opus-20240229", NULL, CATALOG_VERTEX, "claude-3-opus@20240229",
         "gcp-claude-opus"},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct resolve_case *c = &cases[i];
        struct catalog_resolved r;
        int rc = catalog_resolve(c->name, c->aliases, c->provider, &r);
        int good = c->upstream ? rc == 0 && strcmp(r.upstream_id, c->upstream) == 0 &&
                                     strcmp(r.family, c->family) == 0
                               : rc == -1;
        if (!tap_ok(good, c->name, __FILE__, __LINE__))
            printf("#   rc %d upstream \"%s\" family \"%s\"; want %s / %s\n", rc,
                   rc ? "" : r.upstream_id, rc ? "" : r.family,
                   c->upstream ? c->upstream : "unknown", c->family ? c->family : "");
    }
    struct catalog_resolved r;
    catalog_resolve("claude-sonnet-4-5", NULL, CATALOG_VERTEX, &r);
    ok(r.flags & CAT_NO_TEMP_AND_TOP_P, "Sonnet 4.5 refuses temperature with top_p");
    catalog_resolve("claude-sonnet-4-20250514", NULL, CATALOG_VERTEX, &r);
    ok(!(r.flags & CAT_NO_TEMP_AND_TOP_P), "Sonnet 4 accepts both");
    catalog_resolve("us.anthropic.claude-opus-4-1-20250805-v1:0", NULL, CATALOG_BEDROCK, &r);
    ok((r.flags & CAT_NO_TEMP_AND_TOP_P) && (r.flags & CAT_OPUS),
       "a native id found in the catalogue takes its flags");
    static const char *const minimum[] = {"claude-opus-4-5",         "claude-opus-4-1",
                                          "claude-opus-4-0",         "claude-sonnet-4-5",
                                          "claude-sonnet-4-0",       "claude-3-7-sonnet-20250219",
                                          "claude-haiku-4-5",        "claude-3-5-haiku-20241022",
                                          "claude-3-haiku-20240307", "claude-3-5-sonnet-20240620",
                                          "claude-3-sonnet-20240229"};
    for (unsigned i = 0; i < sizeof minimum / sizeof minimum[0]; i++) {
        const struct catalog_model *m = catalog_find(minimum[i]);
        ok(m && m->vertex && m->bedrock && strchr(m->vertex, '@') &&
               strncmp(m->bedrock, "anthropic.", 10) == 0,
           minimum[i]);
    }
}

static void test_vertex(void)
{
    char url[512];
    is_int(vertex_url("p1", "us-east5", "claude-sonnet-4-5@20250929", 0, url, sizeof url), 0,
           "regional url");
    is_str(url,
           "https://us-east5-aiplatform.googleapis.com/v1/projects/p1/locations/us-east5/"
           "publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict",
           "regional rawPredict");
    vertex_url("p1", "global", "m", 1, url, sizeof url);
    is_str(url,
           "https://aiplatform.googleapis.com/v1/projects/p1/locations/global/publishers/"
           "anthropic/models/m:streamRawPredict",
           "global streamRawPredict");
    vertex_url("p1", "eu", "m", 0, url, sizeof url);
    has_str(url, "https://aiplatform.eu.rep.googleapis.com/v1/projects/p1/locations/eu/",
            "multi-region eu");
    is_int(vertex_url("p1", "us-east5", "a/b", 0, url, sizeof url), OAI_EBADREQ,
           "a slash in the model id is refused");
    is_int(vertex_url("p 1", "us-east5", "m", 0, url, sizeof url), OAI_EBADREQ,
           "a space in the project is refused");
    json_object *b = NULL;
    const char body[] = "{\"model\":\"x\",\"stream\":false,\"max_tokens\":5,\"messages\":[]}";
    if (util_parse_json(body, sizeof body - 1, &b) == 0) {
        vertex_prepare(b, "vertex-2023-10-16", 1);
        is_str(util_json_plain(b, NULL),
               "{\"stream\":true,\"max_tokens\":5,\"messages\":[],\"anthropic_version\":\"vertex-"
               "2023-10-16\"}",
               "model dropped, version set, stream true");
        vertex_prepare(b, "v2", 0);
        ok(!json_object_object_get_ex(b, "stream", NULL), "no stream key for rawPredict");
        json_object_put(b);
    }
}

int main(void)
{
    tap_start();
    test_resolve();
    test_vertex();
    return tap_done();
}
