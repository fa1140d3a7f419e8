#include "translators/bedrock.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/util.h"
#include "translators/apierr.h"

#define MAX_CHUNK (4L * 1024 * 1024) /* one decoded chunk; Bedrock's are <= 1,000,000 bytes */

const char *bedrock_geo_prefix(const char *region)
{
    if (strncmp(region, "us-gov-", 7) == 0)
        return "us-gov.";
    if (strncmp(region, "us-", 3) == 0 || strncmp(region, "ca-", 3) == 0)
        return "us.";
    if (strncmp(region, "eu-", 3) == 0)
        return "eu.";
    if (strncmp(region, "ap-", 3) == 0)
        return "apac.";
    return "global.";
}

int bedrock_model_id(const struct catalog_resolved *m, const char *region, char *out, size_t n)
{
    int len;
    if (!m->native && (m->flags & CAT_PROFILE))
        len = snprintf(out, n, "%s%s", bedrock_geo_prefix(region), m->upstream_id);
    else
        len = snprintf(out, n, "%s", m->upstream_id);
    return len < 0 || (size_t)len >= n ? OAI_ELIMIT : 0;
}

int bedrock_target(const char *region, const char *model_id, int stream, char *url, size_t un,
                   char *host, size_t hn, char *path, size_t pn)
{
    static const char hex[] = "0123456789ABCDEF";
    char enc[768];
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)model_id; *p; p++) {
        if (k + 4 >= sizeof enc)
            return OAI_ELIMIT;
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            enc[k++] = (char)*p;
        } else {
            enc[k++] = '%';
            enc[k++] = hex[*p >> 4];
            enc[k++] = hex[*p & 15];
        }
    }
    enc[k] = '\0';
    for (const char *r = region; *r; r++)
        if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-'))
            return OAI_EBADREQ;
    int a = snprintf(host, hn, "bedrock-runtime.%s.amazonaws.com", region);
    int b =
        snprintf(path, pn, "/model/%s/%s", enc, stream ? "invoke-with-response-stream" : "invoke");
    int c = snprintf(url, un, "https://%s%s", host, path);
    if (a < 0 || b < 0 || c < 0 || (size_t)a >= hn || (size_t)b >= pn || (size_t)c >= un)
        return OAI_ELIMIT;
    return 0;
}

void bedrock_prepare(json_object *body, const char *version, json_object *betas)
{
    json_object_object_del(body, "model");
    json_object_object_del(body, "stream");
    json_object_object_add(body, "anthropic_version", json_object_new_string(version));
    if (betas && json_object_array_length(betas) > 0)
        json_object_object_add(body, "anthropic_beta", json_object_get(betas));
}

int bedrock_error(const char *name, long http_status, const char **code)
{
    static const struct {
        const char *name;
        int http;
        const char *code;
    } map[] = {
        {"throttlingException", 429, "rate_limit_exceeded"},
        {"modelNotReadyException", 429, "rate_limit_exceeded"},
        {"serviceQuotaExceededException", 429, "insufficient_quota"},
        {"validationException", 400, "invalid_request"},
        {"accessDeniedException", 403, "model_access_denied"},
        {"unrecognizedClientException", 502, "upstream_auth_failed"},
        {"invalidSignatureException", 502, "upstream_auth_failed"},
        {"expiredTokenException", 502, "upstream_auth_failed"},
        {"incompleteSignatureException", 502, "upstream_auth_failed"},
        {"resourceNotFoundException", 404, "model_not_found"},
        {"modelTimeoutException", 504, "timeout"},
        {"modelErrorException", 502, "upstream_error"},
        {"modelStreamErrorException", 502, "upstream_error"},
        {"internalServerException", 502, "upstream_error"},
        {"serviceUnavailableException", 503, "server_is_overloaded"},
    };
    size_t len = name ? strcspn(name, ":") : 0;
    for (unsigned i = 0; name && i < sizeof map / sizeof map[0]; i++) {
        if (strlen(map[i].name) == len && strncasecmp(map[i].name, name, len) == 0) {
            *code = map[i].code;
            return map[i].http;
        }
    }
    if (http_status == 401 || http_status == 403) { /* auth-layer refusals name no error */
        *code = "upstream_auth_failed";
        return 502;
    }
    return apierr_upstream(http_status, code);
}

void bedrock_stream_init(struct bedrock_stream *s, sseparse_fn on_event,
                         bedrock_exception_fn on_error, void *ctx)
{
    es_init(&s->es, ES_MAX_FRAME);
    s->on_event = on_event;
    s->on_error = on_error;
    s->ctx = ctx;
}

void bedrock_stream_free(struct bedrock_stream *s)
{
    es_free(&s->es);
}

static int header_is(const struct es_message *m, const char *name, const char *want)
{
    size_t len;
    const char *v = es_header_string(m, name, &len);
    return v && strlen(want) == len && memcmp(v, want, len) == 0;
}

/* A chunk event: {"bytes":"<base64 of one Anthropic event>","p":"..."}. */
static int chunk(struct bedrock_stream *s, const struct es_message *m)
{
    json_object *o = NULL, *b;
    unsigned char *raw = NULL;
    int rc = OAI_EBADJSON;
    if (util_parse_json((const char *)m->payload, m->payload_len, &o) ||
        !json_object_object_get_ex(o, "bytes", &b) || !json_object_is_type(b, json_type_string))
        goto done;
    size_t blen = (size_t)json_object_get_string_len(b);
    const char *b64 = json_object_get_string(b);
    if (blen == 0 || blen % 4 || blen / 4 * 3 > MAX_CHUNK)
        goto done;
    raw = malloc(blen / 4 * 3 + 1);
    if (!raw) {
        rc = OAI_ENOMEM;
        goto done;
    }
    int n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)blen);
    if (n < 0)
        goto done;
    if (b64[blen - 1] == '=')
        n--;
    if (b64[blen - 2] == '=')
        n--;
    raw[n] = '\0';
    /* The event's name is its "type" (Bedrock sends no SSE event line). */
    json_object *ev = NULL, *type;
    if (util_parse_json((const char *)raw, (size_t)n, &ev) ||
        !json_object_object_get_ex(ev, "type", &type) ||
        !json_object_is_type(type, json_type_string)) {
        json_object_put(ev);
        goto done;
    }
    char name[64];
    snprintf(name, sizeof name, "%s", json_object_get_string(type));
    json_object_put(ev);
    rc = s->on_event(s->ctx, name, (const char *)raw, (size_t)n);
done:
    free(raw);
    json_object_put(o);
    return rc;
}

/* An exception frame (:exception-type) or an error frame (:error-code, :error-message). */
static int failure(struct bedrock_stream *s, const struct es_message *m, int is_error)
{
    char name[128] = "", message[512] = "";
    size_t len;
    const char *v = es_header_string(m, is_error ? ":error-code" : ":exception-type", &len);
    if (v)
        snprintf(name, sizeof name, "%.*s", (int)(len < 127 ? len : 127), v);
    if (is_error) {
        v = es_header_string(m, ":error-message", &len);
        if (v)
            snprintf(message, sizeof message, "%.*s", (int)(len < 511 ? len : 511), v);
    } else {
        json_object *o = NULL, *msg;
        if (util_parse_json((const char *)m->payload, m->payload_len, &o) == 0 &&
            (json_object_object_get_ex(o, "message", &msg) ||
             json_object_object_get_ex(o, "Message", &msg)))
            snprintf(message, sizeof message, "%s", json_object_get_string(msg));
        json_object_put(o);
    }
    const char *code;
    int http = bedrock_error(name, 0, &code);
    char text[768];
    snprintf(text, sizeof text, "upstream (aws) %s: %s", name[0] ? name : "error",
             message[0] ? message : "the stream failed");
    return s->on_error(s->ctx, http, code, text);
}

static int on_message(void *ctx, const struct es_message *m)
{
    struct bedrock_stream *s = ctx;
    if (header_is(m, ":message-type", "exception"))
        return failure(s, m, 0);
    if (header_is(m, ":message-type", "error"))
        return failure(s, m, 1);
    if (header_is(m, ":event-type", "chunk"))
        return chunk(s, m);
    return 0; /* other events (none expected from InvokeModelWithResponseStream) */
}

int bedrock_stream_feed(struct bedrock_stream *s, const char *p, size_t n)
{
    return es_feed(&s->es, p, n, on_message, s);
}
