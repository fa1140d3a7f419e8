/* Unit tests for translators/bedrock: model ids with inference-profile prefixes, wire paths,
 * body preparation, error-name mapping, and chunk/exception frames unwrapped from the
 * event-stream vectors ES-B1 and ES-B2 of reference/wire-formats.md §4.6. */
#include <stdlib.h>

#include "common/err.h"
#include "common/util.h"
#include "translators/bedrock.h"
#include "tests/unit/tap.h"

static const char es_b1[] =
    "000000e20000004bd638d3ce0b3a6576656e742d747970650700056368756e6b0d3a636f6e74656e742d7479"
    "70650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b"
    "226279746573223a2265794a306558426c496a6f695932397564475675644639696247396a6131396b5a5778"
    "3059534973496d6c755a475634496a6f774c434a6b5a5778305953493665794a306558426c496a6f69644756"
    "346446396b5a57783059534973496e526c654851694f694a4961534a3966513d3d222c2270223a2261626364"
    "227d528ecb0b";
static const char es_b2[] =
    "000000b2000000613590d5d30f3a657863657074696f6e2d747970650700137468726f74746c696e6745786365"
    "7074696f6e0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167"
    "652d74797065070009657863657074696f6e7b226d657373616765223a22546f6f206d616e792072657175657374"
    "732c20706c656173652077616974206265666f726520747279696e6720616761696e2e227de8ffb26a";

static size_t unhex(const char *h, unsigned char *out)
{
    size_t n = 0;
    for (; h[0] && h[1]; h += 2) {
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (unsigned char)v;
    }
    return n;
}

struct seen {
    char events[8][64];
    char data[8][256];
    int nev;
    int http;
    char code[64], message[256];
};

static int on_event(void *ctx, const char *name, const char *data, size_t len)
{
    struct seen *s = ctx;
    if (s->nev < 8) {
        snprintf(s->events[s->nev], sizeof s->events[0], "%s", name ? name : "");
        snprintf(s->data[s->nev], sizeof s->data[0], "%.*s", (int)len, data);
        s->nev++;
    }
    return 0;
}

static int on_error(void *ctx, int http, const char *code, const char *message)
{
    struct seen *s = ctx;
    s->http = http;
    snprintf(s->code, sizeof s->code, "%s", code);
    snprintf(s->message, sizeof s->message, "%s", message);
    return 0;
}

static void test_stream(void)
{
    unsigned char b1[512], b2[512], both[1024];
    size_t n1 = unhex(es_b1, b1), n2 = unhex(es_b2, b2);
    memcpy(both, b1, n1);
    memcpy(both + n1, b2, n2);
    for (size_t split = 0; split <= n1 + n2; split += 7) {
        struct seen s;
        memset(&s, 0, sizeof s);
        struct bedrock_stream bs;
        bedrock_stream_init(&bs, on_event, on_error, &s);
        int rc = bedrock_stream_feed(&bs, (const char *)both, split);
        if (!rc)
            rc = bedrock_stream_feed(&bs, (const char *)both + split, n1 + n2 - split);
        bedrock_stream_free(&bs);
        if (split == 0 || split == 7 * 20) {
            char name[64];
            snprintf(name, sizeof name, "split at %zu", split);
            is_int(rc, 0, name);
            is_int(s.nev, 1, "one Anthropic event from the chunk");
            is_str(s.events[0], "content_block_delta", "event named by its type");
            is_str(s.data[0],
                   "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                   "\"text_delta\",\"text\":\"Hi\"}}",
                   "the base64 payload decoded verbatim");
            is_int(s.http, 429, "throttlingException frame -> 429");
            is_str(s.code, "rate_limit_exceeded", "rate_limit_exceeded");
            has_str(s.message, "Too many requests", "the exception's message is kept");
        } else if (rc != 0 || s.nev != 1 || s.http != 429) {
            ok(0, "every split point gives the same result");
            printf("#   split %zu: rc %d events %d http %d\n", split, rc, s.nev, s.http);
            return;
        }
    }
    ok(1, "every split point gives the same result");

    struct seen s;
    memset(&s, 0, sizeof s);
    struct bedrock_stream bs;
    bedrock_stream_init(&bs, on_event, on_error, &s);
    b1[n1 - 10] ^= 1; /* inside the payload: the message CRC no longer matches */
    is_int(bedrock_stream_feed(&bs, (const char *)b1, n1), OAI_EBADFRAME, "corrupted CRC refused");
    is_int(s.nev, 0, "nothing delivered from a corrupted frame");
    bedrock_stream_free(&bs);
}

static void test_ids_and_paths(void)
{
    struct catalog_resolved m;
    char id[256], url[512], host[128], path[512];
    catalog_resolve("claude-sonnet-4-5", NULL, CATALOG_BEDROCK, &m);
    bedrock_model_id(&m, "us-east-1", id, sizeof id);
    is_str(id, "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "us-* key: us. profile");
    bedrock_model_id(&m, "eu-west-1", id, sizeof id);
    is_str(id, "eu.anthropic.claude-sonnet-4-5-20250929-v1:0", "eu-* key: eu. profile");
    bedrock_model_id(&m, "ap-northeast-1", id, sizeof id);
    is_str(id, "apac.anthropic.claude-sonnet-4-5-20250929-v1:0", "ap-* key: apac. profile");
    bedrock_model_id(&m, "us-gov-west-1", id, sizeof id);
    is_str(id, "us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0", "GovCloud profile");
    catalog_resolve("claude-3-haiku-20240307", NULL, CATALOG_BEDROCK, &m);
    bedrock_model_id(&m, "us-east-1", id, sizeof id);
    is_str(id, "anthropic.claude-3-haiku-20240307-v1:0", "older models run on demand: no prefix");
    catalog_resolve("anthropic.claude-sonnet-4-5-20250929-v1:0", NULL, CATALOG_BEDROCK, &m);
    bedrock_model_id(&m, "us-east-1", id, sizeof id);
    is_str(id, "anthropic.claude-sonnet-4-5-20250929-v1:0", "a client-sent base id goes verbatim");

    is_int(bedrock_target("us-east-1", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", 1, url,
                          sizeof url, host, sizeof host, path, sizeof path),
           0, "target");
    is_str(host, "bedrock-runtime.us-east-1.amazonaws.com", "host");
    is_str(path,
           "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream",
           "':' percent-encoded in the wire path");
    is_str(url,
           "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.anthropic.claude-sonnet-4-5-"
           "20250929-v1%3A0/invoke-with-response-stream",
           "url");
    bedrock_target("us-east-1",
                   "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.x", 0,
                   url, sizeof url, host, sizeof host, path, sizeof path);
    is_str(path,
           "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus."
           "anthropic.x/invoke",
           "an ARN is one path label ('/' as %2F)");
    is_int(bedrock_target("us east", "m", 0, url, sizeof url, host, sizeof host, path, sizeof path),
           OAI_EBADREQ, "a bad region is refused");
}

static void test_prepare_and_errors(void)
{
    json_object *b = NULL, *betas = json_object_new_array();
    const char body[] = "{\"model\":\"x\",\"stream\":true,\"max_tokens\":5,\"messages\":[]}";
    if (util_parse_json(body, sizeof body - 1, &b))
        return;
    bedrock_prepare(b, "bedrock-2023-05-31", betas);
    is_str(util_json_plain(b, NULL),
           "{\"max_tokens\":5,\"messages\":[],\"anthropic_version\":\"bedrock-2023-05-31\"}",
           "no model, no stream, version set, no empty anthropic_beta");
    json_object_array_add(betas, json_object_new_string("a"));
    bedrock_prepare(b, "bedrock-2023-05-31", betas);
    has_str(util_json_plain(b, NULL), "\"anthropic_beta\":[\"a\"]", "betas go into the body");
    json_object_put(b);
    json_object_put(betas);

    static const struct {
        const char *name;
        long status;
        int http;
        const char *code;
    } cases[] = {
        {"ThrottlingException:http://internal.amazon.com/coral/", 429, 429, "rate_limit_exceeded"},
        {"AccessDeniedException", 403, 403, "model_access_denied"},
        {"UnrecognizedClientException", 403, 502, "upstream_auth_failed"},
        {"InvalidSignatureException", 403, 502, "upstream_auth_failed"},
        {"ExpiredTokenException", 403, 502, "upstream_auth_failed"},
        {"ValidationException", 400, 400, "invalid_request"},
        {"ResourceNotFoundException", 404, 404, "model_not_found"},
        {"ModelTimeoutException", 408, 504, "timeout"},
        {"ModelErrorException", 424, 502, "upstream_error"},
        {"ServiceUnavailableException", 503, 503, "server_is_overloaded"},
        {"modelStreamErrorException", 0, 502, "upstream_error"},
        {"", 429, 429, "rate_limit_exceeded"},
        {"", 500, 502, "upstream_error"},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *code = NULL;
        int http = bedrock_error(cases[i].name, cases[i].status, &code);
        char name[128];
        snprintf(name, sizeof name, "%s / %ld", cases[i].name, cases[i].status);
        ok(http == cases[i].http && code && strcmp(code, cases[i].code) == 0, name);
    }
}

int main(void)
{
    tap_start();
    test_stream();
    test_ids_and_paths();
    test_prepare_and_errors();
    return tap_done();
}
