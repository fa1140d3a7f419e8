/*
 * fuzz_openai_request.c - the OpenAI Chat Completions request translator (translators/openai.h).
 *
 * Input: a client request body, as /v1/chat/completions receives it. It is parsed the way the
 * gateway parses bodies (util_parse_json: strict UTF-8, bounded depth) and translated twice, as
 * upstream/proxy.c does: with the default settings and the model flags the catalogue gives the
 * body's "model", then with the other branch of every setting (hoisted system messages, a
 * max_tokens clamp, the largest n, every model flag).
 */
#include "fuzz/fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "translators/catalog.h"
#include "translators/openai.h"

static int model_flags(json_object *body)
{
    json_object *m;
    struct catalog_resolved res;
    if (!json_object_object_get_ex(body, "model", &m) || !json_object_is_type(m, json_type_string))
        return 0;
    if (catalog_resolve(json_object_get_string(m), NULL, CATALOG_VERTEX, &res) != 0)
        return 0;
    return res.flags;
}

static void translate(json_object *body, const struct openai_opts *o)
{
    struct openai_request out;
    char msg[512], param[128];
    memset(&out, 0, sizeof out);
    msg[0] = param[0] = '\0';
    if (openai_translate(body, o, &out, msg, sizeof msg, param, sizeof param) == 0) {
        size_t len;
        /* what goes upstream: an object, and n within what the settings allow */
        if (!json_object_is_type(out.body, json_type_object) || out.n < 1 ||
            out.n > o->max_choices || !util_json_plain(out.body, &len))
            abort();
    } else if (strnlen(msg, sizeof msg) == sizeof msg ||
               strnlen(param, sizeof param) == sizeof param) {
        abort(); /* the messages must stay NUL-terminated */
    }
    openai_request_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_object *body = NULL;
    fuzz_quiet();
    if (util_parse_json((const char *)data, size, &body) != 0)
        return 0;
    int flags = model_flags(body);
    struct openai_opts gateway = {
        .default_max_tokens = 4096, /* DEFAULT_MAX_TOKENS, MAX_OUTPUT_TOKENS, MAX_CHOICES */
        .max_output_tokens = 0,
        .max_choices = 4,
        .hoist_system = 0,
        .model_flags = flags,
    };
    struct openai_opts other = {
        .default_max_tokens = 1,
        .max_output_tokens = 2048,
        .max_choices = 16,
        .hoist_system = 1,
        .model_flags = CAT_OPUS | CAT_NO_TEMP_AND_TOP_P | CAT_THINKING | CAT_LEGACY | CAT_PROFILE,
    };
    translate(body, &gateway);
    translate(body, &other);
    json_object_put(body);
    return 0;
}
