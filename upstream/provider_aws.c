/* provider_aws.c - Claude on AWS Bedrock behind the provider table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/aws.h"
#include "auth/sigv4.h"
#include "common/err.h"
#include "common/util.h"
#include "translators/bedrock.h"
#include "upstream/provider.h"

struct aws_state {
    const struct aws_key *key;
    int stream;
    char host[160];
    char path[900];
    struct sigv4_result sig;
};

static int aws_count(const struct config *cfg, char *err, size_t n)
{
    const struct aws_keys *k = aws_keys_get(cfg->aws_credentials, err, n);
    return k ? k->n : -1;
}

static const char *aws_key_hash(const struct config *cfg, int i)
{
    char err[256];
    const struct aws_keys *k = aws_keys_get(cfg->aws_credentials, err, sizeof err);
    return k && i >= 0 && i < k->n ? k->v[i].hash : "";
}

static int aws_prepare(void **state, const struct config *cfg, int64_t pick,
                       const struct catalog_resolved *m, json_object *body, int stream,
                       json_object *betas, struct upstream_target *t, char *err, size_t n)
{
    const struct aws_keys *keys = aws_keys_get(cfg->aws_credentials, err, n);
    if (!keys || keys->n == 0)
        return OAI_ENOKEYS;
    struct aws_state *s = calloc(1, sizeof *s);
    if (!s)
        return OAI_ENOMEM;
    *state = s;
    s->key = &keys->v[(pick < 0 ? -pick : pick) % keys->n];
    s->stream = stream;
    snprintf(t->key_hash, sizeof t->key_hash, "%s", s->key->hash);
    if (bedrock_model_id(m, s->key->region, t->model_id, sizeof t->model_id) ||
        bedrock_target(s->key->region, t->model_id, stream, t->url, sizeof t->url, s->host,
                       sizeof s->host, s->path, sizeof s->path)) {
        snprintf(err, n, "the model id cannot be used in a Bedrock URL");
        return OAI_EBADREQ;
    }
    bedrock_prepare(body, cfg->bedrock_anthropic_version, betas);
    return 0;
}

static int aws_auth(void *state, const struct config *cfg, struct state *st,
                    const struct transport_opts *topts, const char *body, size_t len, int refresh,
                    struct upstream_target *t)
{
    (void)cfg, (void)st, (void)topts, (void)refresh;
    struct aws_state *s = state;
    static const char ctype[] = "Content-Type: application/json";
    const char *accept =
        s->stream ? "Accept: application/vnd.amazon.eventstream" : "Accept: application/json";
    struct sigv4_key key = {s->key->access_key, s->key->secret_key, s->key->session_token,
                            s->key->region, "bedrock"};
    struct sigv4_request rq = {.method = "POST",
                               .host = s->host,
                               .path = s->path,
                               .query = NULL,
                               .body = body,
                               .body_len = len};
    rq.headers[0] = ctype;
    rq.headers[1] = accept;
    int rc = sigv4_sign(&key, &rq, util_now_ms() / 1000, &s->sig);
    if (rc)
        return rc == OAI_ENOMEM ? rc : OAI_EAUTHUP;
    int h = 0;
    t->headers[h++] = s->sig.authorization;
    t->headers[h++] = s->sig.date_header;
    if (s->sig.token_header[0])
        t->headers[h++] = s->sig.token_header;
    t->headers[h++] = ctype;
    t->headers[h++] = accept;
    if (s->stream)
        t->headers[h++] = "X-Amzn-Bedrock-Accept: application/json";
    t->headers[h] = NULL;
    return 0;
}

static void aws_release(void *state)
{
    struct aws_state *s = state;
    if (s)
        memset(&s->sig, 0, sizeof s->sig);
    free(s);
}

static void *aws_stream_new(sseparse_fn on_event, provider_error_fn on_error, void *ctx)
{
    struct bedrock_stream *d = calloc(1, sizeof *d);
    if (d)
        bedrock_stream_init(d, on_event, on_error, ctx);
    return d;
}

static int aws_stream_feed(void *dec, const char *p, size_t n)
{
    return bedrock_stream_feed(dec, p, n);
}

static void aws_stream_free(void *dec)
{
    if (dec)
        bedrock_stream_free(dec);
    free(dec);
}

static int aws_map_error(long status, const char *error_type, const char *body, size_t len,
                         const char **code)
{
    (void)body, (void)len;
    return bedrock_error(error_type, status, code);
}

const struct provider provider_aws = {
    .name = "aws",
    .catalog = CATALOG_BEDROCK,
    .owned_by = "anthropic-bedrock",
    .refresh_on_401 = 0,
    .keys = aws_count,
    .key_hash = aws_key_hash,
    .check_max_tokens = -1,
    .prepare = aws_prepare,
    .auth = aws_auth,
    .release = aws_release,
    .stream_new = aws_stream_new,
    .stream_feed = aws_stream_feed,
    .stream_free = aws_stream_free,
    .map_error = aws_map_error,
};
