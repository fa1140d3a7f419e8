#include "translators/azure.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "translators/apierr.h"
#include "translators/openai.h"

int azure_new_fields(const char *v)
{
    if (!v || strlen(v) < 10)
        return 0;
    int preview = strstr(v, "-preview") != NULL;
    return preview ? strncmp(v, "2024-09-01", 10) >= 0 : strncmp(v, "2024-10-21", 10) > 0;
}

/* The request fields of the 2024-10-21 GA schema. */
static const char *const known_2024_10_21[] = {"messages",
                                               "temperature",
                                               "top_p",
                                               "stream",
                                               "stop",
                                               "max_tokens",
                                               "presence_penalty",
                                               "frequency_penalty",
                                               "logit_bias",
                                               "user",
                                               "n",
                                               "seed",
                                               "logprobs",
                                               "top_logprobs",
                                               "response_format",
                                               "tools",
                                               "tool_choice",
                                               "functions",
                                               "function_call",
                                               "parallel_tool_calls",
                                               "data_sources",
                                               NULL};

void azure_prepare(json_object *body, const char *api_version)
{
    json_object_object_del(body, "model");
    if (azure_new_fields(api_version))
        return;
    json_object *mct;
    if (json_object_object_get_ex(body, "max_completion_tokens", &mct)) {
        if (!json_object_object_get_ex(body, "max_tokens", NULL) && mct)
            json_object_object_add(body, "max_tokens", json_object_get(mct));
        json_object_object_del(body, "max_completion_tokens");
    }
    /* Older versions refuse unknown fields: keep only what the schema knows. */
    const char *drop[64];
    int ndrop = 0;
    json_object_object_foreach(body, key, val)
    {
        (void)val;
        int known = 0;
        for (int i = 0; known_2024_10_21[i] && !known; i++)
            known = strcmp(key, known_2024_10_21[i]) == 0;
        if (!known && ndrop < 64)
            drop[ndrop++] = key;
    }
    for (int i = 0; i < ndrop; i++)
        json_object_object_del(body, drop[i]);
}

/* Length of name without a trailing -YYYY-MM-DD. */
static size_t undated(const char *m)
{
    size_t n = strlen(m);
    if (n > 11 && m[n - 11] == '-' && m[n - 6] == '-' && m[n - 3] == '-') {
        for (size_t i = n - 10; i < n; i++)
            if (i != n - 6 && i != n - 3 && !isdigit((unsigned char)m[i]))
                return n;
        return n - 11;
    }
    return n;
}

void azure_family(const char *model, char *out, size_t n)
{
    size_t len = undated(model);
    size_t k = (size_t)snprintf(out, n, "azure-");
    for (size_t i = 0; i < len && k + 1 < n; i++) {
        if (i == 3 && strncmp(model, "gpt-", 4) == 0)
            continue; /* gpt-4o -> gpt4o, as the seed names families */
        out[k++] = (char)tolower((unsigned char)model[i]);
    }
    out[k < n ? k : n - 1] = '\0';
}

int azure_model_matches(const char *client, const char *deployment, const char *model_of)
{
    if (strcmp(client, deployment) == 0)
        return 3;
    if (!model_of || !*model_of)
        return 0;
    if (strcmp(client, model_of) == 0)
        return 2;
    size_t n = undated(model_of);
    return strlen(client) == n && strncmp(client, model_of, n) == 0 ? 1 : 0;
}

int azure_error(long status, const char *body, size_t len, const char **code)
{
    if (status == 400) {
        json_object *o = NULL, *e, *c;
        int filtered = util_parse_json(body, len, &o) == 0 &&
                       json_object_object_get_ex(o, "error", &e) &&
                       json_object_object_get_ex(e, "code", &c) &&
                       strcmp(json_object_get_string(c), "content_filter") == 0;
        json_object_put(o);
        *code = filtered ? "content_filter" : "invalid_request";
        return 400;
    }
    if (status == 403) { /* Azure's 403 is a key without access: ours to fix */
        *code = "upstream_auth_failed";
        return 502;
    }
    return apierr_upstream(status, code);
}

int azure_stream_chunk(struct azure_stream *s, const char *data, size_t len)
{
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        s->done = 1;
        return 2;
    }
    json_object *o = NULL, *choices, *usage;
    if (util_parse_json(data, len, &o) || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return OAI_EBADJSON;
    }
    int keep = 0;
    json_object *id;
    int has_usage = json_object_object_get_ex(o, "usage", &usage) &&
                    json_object_is_type(usage, json_type_object);
    int blank_id = json_object_object_get_ex(o, "id", &id) && json_object_get_string_len(id) == 0;
    if (!json_object_object_get_ex(o, "choices", &choices) ||
        !json_object_is_type(choices, json_type_array) || json_object_array_length(choices) == 0) {
        keep = has_usage; /* the usage chunk stays; the prompt-filter chunk goes */
        s->usage_seen |= keep;
    } else if (!blank_id && !s->finished) {
        for (size_t i = 0; i < json_object_array_length(choices); i++) {
            json_object *c = json_object_array_get_idx(choices, i), *d, *v, *fr;
            int finish = json_object_object_get_ex(c, "finish_reason", &fr) && fr;
            int delta = json_object_object_get_ex(c, "delta", &d) &&
                        json_object_is_type(d, json_type_object) &&
                        json_object_object_length(d) > 0;
            keep |= delta || finish;
            s->finished |= finish;
            if (delta &&
                ((json_object_object_get_ex(d, "content", &v) && json_object_get_string_len(v)) ||
                 json_object_object_get_ex(d, "tool_calls", NULL)))
                s->deltas++;
        }
    }
    if (keep && !s->id[0]) {
        json_object *v;
        if (json_object_object_get_ex(o, "id", &v))
            snprintf(s->id, sizeof s->id, "%s", json_object_get_string(v));
        if (json_object_object_get_ex(o, "created", &v))
            s->created = json_object_get_int64(v);
        if (json_object_object_get_ex(o, "model", &v))
            snprintf(s->model, sizeof s->model, "%s", json_object_get_string(v));
    }
    json_object_put(o);
    return keep;
}

json_object *azure_usage_chunk(const struct azure_stream *s, json_object *client_body)
{
    long long chars = 0;
    json_object *msgs;
    if (json_object_object_get_ex(client_body, "messages", &msgs) &&
        json_object_is_type(msgs, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(msgs); i++) {
            json_object *c;
            if (json_object_object_get_ex(json_object_array_get_idx(msgs, i), "content", &c))
                chars += json_object_is_type(c, json_type_string)
                             ? json_object_get_string_len(c)
                             : (long long)strlen(json_object_to_json_string(c));
        }
    }
    long long prompt = (chars + 3) / 4, completion = s->deltas;
    json_object *u = json_object_new_object();
    json_object_object_add(u, "prompt_tokens", json_object_new_int64(prompt));
    json_object_object_add(u, "completion_tokens", json_object_new_int64(completion));
    json_object_object_add(u, "total_tokens", json_object_new_int64(prompt + completion));
    return openai_usage_chunk(s->id, s->created, s->model, u);
}
