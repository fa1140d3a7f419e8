/*
 * fuzz_anthropic_request.c - the Anthropic-native passthrough normaliser and the anthropic-beta
 * parser (translators/anthropic.h, anthropic_req.c).
 *
 * Input: body NUL anthropic-beta NUL drop-list. The body is parsed as the gateway parses client
 * bodies and normalised as upstream/proxy.c does for /v1/messages (a copy, max_tokens defaulted,
 * anthropic_normalize), once with the default settings and once with every model flag and a
 * max_tokens clamp. The header value is filtered by anthropic_betas with the drop list
 * (DROP_ANTHROPIC_BETAS) and without one. Without a NUL the whole input is also the header.
 */
#include "fuzz/fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "translators/anthropic.h"
#include "translators/catalog.h"

static void normalize(json_object *body, int flags, long long max_output)
{
    json_object *copy = NULL, *v;
    size_t len;
    if (json_object_deep_copy(body, &copy, NULL) != 0)
        return;
    if (json_object_is_type(copy, json_type_object) &&
        !json_object_object_get_ex(copy, "max_tokens", &v))
        json_object_object_add(copy, "max_tokens", json_object_new_int64(4096));
    anthropic_normalize(copy, flags, max_output);
    if (!util_json_plain(copy, &len))
        abort();
    json_object_put(copy);
}

static void betas(const char *header, const char *drop)
{
    json_object *a = anthropic_betas(header, drop);
    if (!json_object_is_type(a, json_type_array))
        abort(); /* NULL only on allocation failure */
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        json_object *e = json_object_array_get_idx(a, i);
        /* entries are trimmed and never empty */
        const char *s = json_object_get_string(e);
        size_t n = (size_t)json_object_get_string_len(e);
        if (n == 0 || s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t')
            abort();
    }
    json_object_put(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_fields f;
    json_object *body = NULL;
    fuzz_quiet();
    if (fuzz_fields_split(&f, data, size, 3) != 0)
        return 0;
    if (util_parse_json(f.v[0], f.len[0], &body) == 0) {
        normalize(body, 0, 0);
        normalize(body, CAT_OPUS | CAT_NO_TEMP_AND_TOP_P | CAT_THINKING, 1000);
        json_object_put(body);
    }
    const char *header = f.n > 1 ? f.v[1] : f.v[0];
    betas(header, NULL);
    betas(header, f.n > 2 ? f.v[2] : "context-1m-2025-08-07, ,interleaved-thinking-2025-05-14");
    fuzz_fields_free(&f);
    return 0;
}
