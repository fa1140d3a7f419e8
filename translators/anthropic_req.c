/*
 * anthropic_req.c - the request-side helpers of anthropic.h shared by the OpenAI-translated and
 * the native /messages routes: SPEC §12 normalisation, anthropic-beta filtering, and readable
 * messages from upstream error bodies. (The response side lives in anthropic.c.)
 */
#include "translators/anthropic.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "translators/catalog.h"

static json_object *get(json_object *o, const char *k)
{
    json_object *v = NULL;
    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, k, &v))
        return NULL;
    return v;
}

static int streq(json_object *v, const char *s)
{
    return json_object_is_type(v, json_type_string) && strcmp(json_object_get_string(v), s) == 0;
}

static int empty_text(json_object *block)
{
    json_object *t = get(block, "text");
    return streq(get(block, "type"), "text") && json_object_is_type(t, json_type_string) &&
           json_object_get_string_len(t) == 0;
}

/* drop_empty removes empty text blocks from the array a in place. */
static void drop_empty(json_object *a)
{
    for (size_t k = json_object_array_length(a); k-- > 0;)
        if (empty_text(json_object_array_get_idx(a, k)))
            json_object_array_del_idx(a, k, 1);
}

/* as_blocks returns a new block array for a message's content (a string becomes one text
 * block, "" none; an array is copied by reference; anything else - missing, a number, an
 * object - none: Claude will refuse it with its own message), or NULL on allocation failure. */
static json_object *as_blocks(json_object *content)
{
    json_object *a = json_object_new_array();
    if (!a)
        return NULL;
    if (!json_object_is_type(content, json_type_string) &&
        !json_object_is_type(content, json_type_array))
        return a;
    if (json_object_is_type(content, json_type_string)) {
        if (json_object_get_string_len(content) == 0)
            return a;
        json_object *b = json_object_new_object();
        if (!b || json_object_object_add(b, "type", json_object_new_string("text")) ||
            json_object_object_add(b, "text", json_object_get(content)) ||
            json_object_array_add(a, b)) {
            json_object_put(b);
            json_object_put(a);
            return NULL;
        }
        return a;
    }
    for (size_t k = 0; k < json_object_array_length(content); k++)
        if (json_object_array_add(a, json_object_get(json_object_array_get_idx(content, k)))) {
            json_object_put(a);
            return NULL;
        }
    return a;
}

/* merge_msg appends src's content to dst's (user turns: tool_result blocks first). Returns 0
 * or -1 on allocation failure (dst unchanged). */
static int merge_msg(json_object *dst, json_object *src)
{
    int user = streq(get(dst, "role"), "user");
    json_object *a = as_blocks(get(dst, "content")), *b = as_blocks(get(src, "content"));
    json_object *all = json_object_new_array();
    int rc = (a && b && all) ? 0 : -1;
    for (int pass = 0; pass < 2 && !rc; pass++) {
        json_object *lists[2] = {a, b};
        for (int l = 0; l < 2 && !rc; l++)
            for (size_t k = 0; k < json_object_array_length(lists[l]) && !rc; k++) {
                json_object *blk = json_object_array_get_idx(lists[l], k);
                int result = streq(get(blk, "type"), "tool_result");
                if (!user ? pass == 0 : (pass == 0) == result)
                    rc = json_object_array_add(all, json_object_get(blk)) ? -1 : 0;
            }
        if (!user)
            break;
    }
    if (!rc) {
        rc = json_object_object_add(dst, "content", all) ? -1 : 0;
        if (!rc)
            all = NULL;
    }
    json_object_put(all);
    json_object_put(a);
    json_object_put(b);
    return rc;
}

/* normalize_messages drops empty text blocks; a message left with no blocks is dropped and
 * the neighbours that then touch are merged when they share a role. */
static void normalize_messages(json_object *msgs)
{
    size_t n = json_object_array_length(msgs), w = 0;
    int seam = 0;
    for (size_t r = 0; r < n; r++) {
        json_object *m = json_object_array_get_idx(msgs, w);
        json_object *content = get(m, "content");
        if (json_object_is_type(content, json_type_array)) {
            drop_empty(content);
            if (json_object_array_length(content) == 0) {
                json_object_array_del_idx(msgs, w, 1);
                seam = 1;
                continue;
            }
        }
        if (seam && w > 0) {
            json_object *prev = json_object_array_get_idx(msgs, w - 1);
            json_object *role = get(prev, "role");
            if (json_object_is_type(role, json_type_string) &&
                streq(get(m, "role"), json_object_get_string(role)) && merge_msg(prev, m) == 0) {
                json_object_array_del_idx(msgs, w, 1);
                seam = 0;
                continue;
            }
        }
        seam = 0;
        w++;
    }
}

/* anthropic_normalize: see anthropic.h (SPEC §12). Values of the wrong type are left for the
 * upstream to refuse; a message whose content array is left empty is removed, and the turns it
 * separated are merged when they share a role (tool_result blocks first in a user turn). */
void anthropic_normalize(json_object *body, int model_flags, long long max_output_tokens)
{
    if (!json_object_is_type(body, json_type_object))
        return;
    if ((model_flags & CAT_NO_TEMP_AND_TOP_P) && get(body, "temperature") &&
        json_object_object_get_ex(body, "top_p", NULL))
        json_object_object_del(body, "top_p");

    json_object *tk = get(body, "top_k");
    if ((json_object_is_type(tk, json_type_int) || json_object_is_type(tk, json_type_double)) &&
        json_object_get_double(tk) == 0)
        json_object_object_del(body, "top_k");

    json_object *sys = get(body, "system");
    if (json_object_is_type(sys, json_type_array))
        drop_empty(sys);
    if ((json_object_is_type(sys, json_type_string) && json_object_get_string_len(sys) == 0) ||
        (json_object_is_type(sys, json_type_array) && json_object_array_length(sys) == 0))
        json_object_object_del(body, "system");

    json_object *msgs = get(body, "messages");
    if (json_object_is_type(msgs, json_type_array))
        normalize_messages(msgs);

    json_object *mt = get(body, "max_tokens");
    if (max_output_tokens > 0 && json_object_is_type(mt, json_type_int) &&
        json_object_get_int64(mt) > max_output_tokens)
        json_object_object_add(body, "max_tokens", json_object_new_int64(max_output_tokens));
}

/* ---- anthropic-beta ---- */

/* anthropic_betas: see anthropic.h. Entries are trimmed of spaces and tabs, compared exactly
 * with the (trimmed) drop entries, and each sent once. NULL only on allocation failure. */
json_object *anthropic_betas(const char *header, const char *drop)
{
    json_object *out = json_object_new_array();
    if (!out)
        return NULL;
    const char *e;
    size_t len;
    while (util_list_next(&header, &e, &len)) {
        if (len == 0 || util_list_has(drop, e, len))
            continue;
        int dup = 0;
        for (size_t k = 0; k < json_object_array_length(out) && !dup; k++) {
            json_object *v = json_object_array_get_idx(out, k);
            dup = (size_t)json_object_get_string_len(v) == len &&
                  memcmp(json_object_get_string(v), e, len) == 0;
        }
        if (dup)
            continue;
        json_object *v = json_object_new_string_len(e, (int)len);
        if (!v || json_object_array_add(out, v)) {
            json_object_put(v);
            json_object_put(out);
            return NULL;
        }
    }
    return out;
}

/* ---- upstream error messages ---- */

static const char *message_of(json_object *j)
{
    if (json_object_is_type(j, json_type_array))
        j = json_object_array_get_idx(j, 0); /* Google's streamed [{"error":{...}}] */
    json_object *e = get(j, "error"), *m;
    if (json_object_is_type(e, json_type_object)) {
        m = get(e, "message"); /* Anthropic and Google */
        if (json_object_is_type(m, json_type_string) && json_object_get_string_len(m) > 0)
            return json_object_get_string(m);
    } else if (json_object_is_type(e, json_type_string) && json_object_get_string_len(e) > 0) {
        m = get(j, "error_description"); /* OAuth token endpoint */
        if (json_object_is_type(m, json_type_string) && json_object_get_string_len(m) > 0)
            return json_object_get_string(m);
        return json_object_get_string(e);
    }
    m = get(j, "message"); /* Bedrock */
    if (!m)
        m = get(j, "Message");
    if (json_object_is_type(m, json_type_string) && json_object_get_string_len(m) > 0)
        return json_object_get_string(m);
    return NULL;
}

/* anthropic_error_message: see anthropic.h. Also understands Bedrock's {"message"} and an
 * OAuth token endpoint's {"error","error_description"}. The text is cut to fit n bytes on a
 * UTF-8 character boundary; nothing is written when n is 0. */
void anthropic_error_message(const char *body, size_t len, long status, char *out, size_t n)
{
    if (!out || n == 0)
        return;
    json_object *j = NULL;
    const char *m = NULL;
    if (body && len > 0 && util_parse_json(body, len, &j) == 0)
        m = message_of(j);
    if (!m) {
        snprintf(out, n, "upstream HTTP %ld", status);
        goto done;
    }
    size_t k = strlen(m);
    if (k >= n) {
        k = n - 1;
        while (k > 0 && ((unsigned char)m[k] & 0xC0) == 0x80)
            k--; /* cut before a UTF-8 continuation byte, never inside a character */
    }
    memcpy(out, m, k);
    out[k] = '\0';
done:
    json_object_put(j);
}
