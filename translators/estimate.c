/* estimate.c - token estimates for quota checks (see estimate.h). */
#include "translators/estimate.h"

#include <string.h>

/* Whether a string value is an image payload (a data: URL or bare base64 "data"). */
static int is_image(const char *key, const char *s)
{
    return strncmp(s, "data:", 5) == 0 || (key && strcmp(key, "data") == 0);
}

struct tally {
    int64_t bytes, images, messages;
};

static void walk(json_object *o, const char *key, struct tally *t, int depth)
{
    if (!o || depth > 64)
        return;
    switch (json_object_get_type(o)) {
    case json_type_string: {
        const char *s = json_object_get_string(o);
        if (is_image(key, s))
            t->images++;
        else if (!key || (strcmp(key, "model") && strcmp(key, "role") && strcmp(key, "type") &&
                          strcmp(key, "signature") && strcmp(key, "url")))
            t->bytes += json_object_get_string_len(o);
        else if (strcmp(key, "url") == 0)
            t->images++; /* a remote image */
        break;
    }
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(o); i++)
            walk(json_object_array_get_idx(o, i), key, t, depth + 1);
        break;
    case json_type_object: {
        json_object_object_foreach(o, k, v)
        {
            if (strcmp(k, "messages") == 0 && json_object_is_type(v, json_type_array))
                t->messages += (int64_t)json_object_array_length(v);
            walk(v, k, t, depth + 1);
        }
        break;
    }
    default:
        break;
    }
}

int64_t estimate_prompt_tokens(json_object *body)
{
    struct tally t = {0, 0, 0};
    json_object *v;
    static const char *const parts[] = {"messages", "system", "tools", "functions", "prompt"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (json_object_object_get_ex(body, parts[i], &v)) {
            if (i == 0 && json_object_is_type(v, json_type_array))
                t.messages += (int64_t)json_object_array_length(v);
            walk(v, parts[i], &t, 0);
        }
    return (t.bytes + 3) / 4 + t.images * ESTIMATE_IMAGE_TOKENS + t.messages * 4 + 8;
}

int64_t estimate_output_tokens(json_object *body, long long default_max, long long max_output)
{
    json_object *v;
    int64_t out = default_max, n = 1;
    if ((json_object_object_get_ex(body, "max_completion_tokens", &v) ||
         json_object_object_get_ex(body, "max_tokens", &v)) &&
        json_object_is_type(v, json_type_int) && json_object_get_int64(v) > 0)
        out = json_object_get_int64(v);
    if (max_output > 0 && out > max_output)
        out = max_output;
    if (json_object_object_get_ex(body, "n", &v) && json_object_is_type(v, json_type_int) &&
        json_object_get_int64(v) > 1 && json_object_get_int64(v) <= 16)
        n = json_object_get_int64(v);
    return out * n;
}
