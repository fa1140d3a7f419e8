/* Unit tests for translators/azure: fields per api-version, deployment matching, families,
 * error mapping, the stream normaliser (empty-choice chunks dropped, usage chunk kept) and the
 * usage estimate. */
#include "common/err.h"
#include "common/util.h"
#include "translators/azure.h"
#include "tests/unit/tap.h"

static json_object *parse(const char *s)
{
    json_object *o = NULL;
    return util_parse_json(s, strlen(s), &o) ? NULL : o;
}

static void test_versions(void)
{
    ok(!azure_new_fields("2024-10-21"), "2024-10-21 GA has no stream_options");
    ok(!azure_new_fields("2024-06-01"), "older GA neither");
    ok(!azure_new_fields("2024-08-01-preview"), "previews before 2024-09-01 neither");
    ok(azure_new_fields("2024-09-01-preview"), "2024-09-01-preview has them");
    ok(azure_new_fields("2024-12-01-preview"), "later previews too");
    ok(azure_new_fields("2025-04-01"), "GA versions after 2024-10-21 too");
    ok(!azure_new_fields(NULL) && !azure_new_fields("x"), "garbage: the conservative answer");

    json_object *b = parse("{\"model\":\"gpt-4o\",\"messages\":[],\"max_completion_tokens\":50,"
                           "\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                           "\"reasoning_effort\":\"low\",\"store\":true,\"temperature\":0.5}");
    azure_prepare(b, "2024-10-21");
    is_str(util_json_plain(b, NULL),
           "{\"messages\":[],\"stream\":true,\"temperature\":0.5,\"max_tokens\":50}",
           "2024-10-21: model, stream_options and unknown fields dropped; max_completion_tokens "
           "becomes max_tokens");
    json_object_put(b);
    b = parse("{\"model\":\"gpt-4o\",\"messages\":[],\"max_completion_tokens\":50,"
              "\"max_tokens\":10}");
    azure_prepare(b, "2024-10-21");
    is_str(util_json_plain(b, NULL), "{\"messages\":[],\"max_tokens\":10}",
           "an explicit max_tokens wins");
    json_object_put(b);
    b = parse("{\"model\":\"gpt-4o\",\"messages\":[],\"max_completion_tokens\":50,"
              "\"stream_options\":{\"include_usage\":true}}");
    azure_prepare(b, "2024-12-01-preview");
    is_str(util_json_plain(b, NULL),
           "{\"messages\":[],\"max_completion_tokens\":50,\"stream_options\":{\"include_usage\":"
           "true}}",
           "a newer version keeps both");
    json_object_put(b);
}

static void test_matching(void)
{
    is_int(azure_model_matches("gpt4o-prod", "gpt4o-prod", NULL), 3, "by deployment name: best");
    is_int(azure_model_matches("gpt-4o-2024-11-20", "prod", "gpt-4o-2024-11-20"), 2, "by model");
    is_int(azure_model_matches("gpt-4o-mini", "mini", "gpt-4o-mini-2024-07-18"), 1,
           "by model without its date: weakest");
    ok(!azure_model_matches("gpt-4o", "mini", "gpt-4o-mini-2024-07-18"), "not by a prefix");
    ok(!azure_model_matches("gpt-4o", "prod", NULL), "an unknown model matches by name only");
    char fam[64];
    azure_family("gpt-4o-2024-11-20", fam, sizeof fam);
    is_str(fam, "azure-gpt4o", "family of a dated gpt-4o");
    azure_family("gpt-4-turbo", fam, sizeof fam);
    is_str(fam, "azure-gpt4-turbo", "family of gpt-4-turbo");
}

static void test_errors(void)
{
    static const char filter[] = "{\"error\":{\"message\":\"filtered\",\"type\":null,\"param\":"
                                 "\"prompt\",\"code\":\"content_filter\",\"status\":400}}";
    const char *code = NULL;
    is_int(azure_error(400, filter, sizeof filter - 1, &code), 400, "content filter: 400");
    is_str(code, "content_filter", "... with code content_filter");
    is_int(azure_error(400, "{}", 2, &code), 400, "other 400");
    is_str(code, "invalid_request", "... invalid_request");
    is_int(azure_error(401, "", 0, &code), 502, "a refused key is our problem: 502");
    is_str(code, "upstream_auth_failed", "... upstream_auth_failed");
    is_int(azure_error(404, "", 0, &code), 404, "DeploymentNotFound: 404");
    is_str(code, "model_not_found", "... model_not_found");
    is_int(azure_error(429, "", 0, &code), 429, "429 stays");
    is_int(azure_error(500, "", 0, &code), 502, "500 -> 502");
}

static void test_stream(void)
{
    struct azure_stream s;
    memset(&s, 0, sizeof s);
    static const char filter[] = "{\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\","
                                 "\"object\":\"\",\"prompt_filter_results\":[]}";
    static const char role[] = "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
                               "\"assistant\",\"content\":\"\"}}]}";
    static const char text[] = "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
                               "\"Hi\"}}]}";
    static const char async_filter[] =
        "{\"id\":\"c1\",\"choices\":[],\"content_filter_results\":{}}";
    static const char annotation[] = "{\"id\":\"\",\"choices\":[{\"index\":0,\"content_filter_"
                                     "offsets\":{}}]}";
    static const char finish[] = "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},"
                                 "\"finish_reason\":\"stop\"}]}";
    static const char late[] = "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},"
                               "\"content_filter_results\":{}}]}";
    static const char usage[] = "{\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
                                "\"completion_tokens\":1,\"total_tokens\":4}}";
    is_int(azure_stream_chunk(&s, filter, sizeof filter - 1), 0, "the prompt-filter chunk drops");
    is_int(azure_stream_chunk(&s, role, sizeof role - 1), 1, "the role chunk passes");
    is_int(azure_stream_chunk(&s, text, sizeof text - 1), 1, "content passes");
    is_int(azure_stream_chunk(&s, async_filter, sizeof async_filter - 1), 0,
           "an async filter chunk drops");
    is_int(azure_stream_chunk(&s, annotation, sizeof annotation - 1), 0,
           "an annotation chunk (empty id, no delta) drops");
    is_int(azure_stream_chunk(&s, finish, sizeof finish - 1), 1, "the finish chunk passes");
    is_int(azure_stream_chunk(&s, late, sizeof late - 1), 0, "nothing passes after the finish");
    is_int(s.deltas, 1, "one content delta counted");
    is_str(s.id, "c1", "the stream's id is remembered");
    is_int(s.usage_seen, 0, "no usage yet");
    is_int(azure_stream_chunk(&s, usage, sizeof usage - 1), 1, "the include_usage chunk passes");
    is_int(s.usage_seen, 1, "usage noted");
    is_int(azure_stream_chunk(&s, "[DONE]", 6), 2, "[DONE] is reported, not forwarded");
    is_int(azure_stream_chunk(&s, "{oops", 5), OAI_EBADJSON, "garbage is an error");

    struct azure_stream e;
    memset(&e, 0, sizeof e);
    e.deltas = 7;
    snprintf(e.id, sizeof e.id, "chatcmpl-az");
    e.created = 1700000000;
    snprintf(e.model, sizeof e.model, "gpt-4o-2024-11-20");
    json_object *body = parse("{\"messages\":[{\"role\":\"user\",\"content\":\"12345678\"}]}");
    json_object *u = azure_usage_chunk(&e, body);
    is_str(util_json_plain(u, NULL),
           "{\"id\":\"chatcmpl-az\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
           "\"model\":\"gpt-4o-2024-11-20\",\"choices\":[],\"usage\":{\"prompt_tokens\":2,"
           "\"completion_tokens\":7,\"total_tokens\":9}}",
           "estimate: the stream's id, prompt = chars / 4, completion = deltas");
    json_object_put(u);
    json_object_put(body);
}

int main(void)
{
    tap_start();
    test_versions();
    test_matching();
    test_errors();
    test_stream();
    return tap_done();
}
