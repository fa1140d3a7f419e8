/*
 * openai.c - OpenAI Chat Completions request -> Anthropic Messages request.
 *
 * The upstream body is built from an allow-list: only the fields below are ever written, so no
 * OpenAI-only field (stream_options, n, seed, logprobs, ...) can leak upstream. The work is done
 * in passes over a small intermediate form (a list of turns, each a block array):
 *   1. messages -> system blocks + turns (names, images, tool calls, tool results, ...)
 *   2. turns -> seed user turn, same-role merging (tool_result blocks first) -> "messages"
 *   3. sampling, stops, metadata, n/stream, tools, tool_choice, response_format, thinking
 *   4. anthropic_normalize (SPEC §12), shared with the native /messages route.
 */
#include "translators/openai.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "translators/anthropic.h"
#include "translators/catalog.h"

#define SEED_TEXT          "[ Joining chat... ]"
#define JSON_OBJECT_HINT   "Respond only with a valid JSON object."
#define SCHEMA_TOOL_NAME   "json_response"
#define THINK_MIN_BUDGET   1024LL
#define THINK_HEADROOM     1024LL
#define FALLBACK_MAX_TOKEN 4096LL
#define TOOL_NAME_MAX      64

/* Error reporting: the client's message and the offending field's path. */
struct ctx {
    const struct openai_opts *o;
    char *msg;
    size_t msglen;
    char *param;
    size_t paramlen;
};

/* One conversation turn on its way to "messages": blocks is an owned array of content blocks;
 * plain means it came from one string content and may be sent back as a string. */
struct turn {
    int assistant;
    int plain;
    json_object *blocks;
};

/* Everything the passes produce before the body is assembled (all owned). */
struct parts {
    json_object *system; /* array of text blocks */
    struct turn *turns;
    size_t nturns;
    size_t *fn_pending; /* message indexes of legacy function_calls not yet answered */
    size_t nfn;
    json_object *messages;
    long long max_tokens;
    json_object *temperature, *top_p, *top_k;
    json_object *stop_sequences;
    json_object *metadata;
    json_object *tools;
    json_object *tool_choice;
    json_object *thinking;
    int parallel_off;
    int json_hint;
};

__attribute__((format(printf, 3, 4))) static int fail(struct ctx *c, const char *message,
                                                      const char *pfmt, ...)
{
    if (c->msglen)
        snprintf(c->msg, c->msglen, "%s", message);
    if (c->paramlen) {
        va_list ap;
        va_start(ap, pfmt);
        vsnprintf(c->param, c->paramlen, pfmt, ap);
        va_end(ap);
    }
    return OAI_EBADREQ;
}

/* ---- small json helpers ---- */

/* get returns the member k of o, or NULL when o is not an object, k is missing or null. */
static json_object *get(json_object *o, const char *k)
{
    json_object *v = NULL;
    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, k, &v))
        return NULL;
    return v;
}

/* add puts v (taken, even on failure) into o under k. */
static int add(json_object *o, const char *k, json_object *v)
{
    if (!v)
        return OAI_ENOMEM;
    if (json_object_object_add(o, k, v) != 0) {
        json_object_put(v);
        return OAI_ENOMEM;
    }
    return 0;
}

/* push appends v (taken, even on failure) to array a. */
static int push(json_object *a, json_object *v)
{
    if (!v)
        return OAI_ENOMEM;
    if (json_object_array_add(a, v) != 0) {
        json_object_put(v);
        return OAI_ENOMEM;
    }
    return 0;
}

static int is_str(json_object *v)
{
    return json_object_is_type(v, json_type_string);
}

static int is_num(json_object *v)
{
    return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

/* get_int reads an integer (or an integral double) into *out; 0 if v is not one. */
static int get_int(json_object *v, long long *out)
{
    if (json_object_is_type(v, json_type_int)) {
        *out = (long long)json_object_get_int64(v);
        return 1;
    }
    if (json_object_is_type(v, json_type_double)) {
        double d = json_object_get_double(v);
        if (d >= -9.0e15 && d <= 9.0e15 && d == (double)(long long)d) {
            *out = (long long)d;
            return 1;
        }
    }
    return 0;
}

static int streq(json_object *v, const char *s)
{
    return is_str(v) && strcmp(json_object_get_string(v), s) == 0;
}

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\f' || ch == '\v';
}

static int all_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_space(s[i]))
            return 0;
    return 1;
}

static json_object *text_block(const char *s, size_t n)
{
    json_object *b = json_object_new_object();
    if (!b)
        return NULL;
    if (add(b, "type", json_object_new_string("text")) ||
        add(b, "text", json_object_new_string_len(s, (int)n))) {
        json_object_put(b);
        return NULL;
    }
    return b;
}

/* keep_cache copies a part's cache_control (an object) onto block. */
static int keep_cache(struct ctx *c, json_object *part, json_object *block, const char *path)
{
    json_object *cc = get(part, "cache_control");
    if (!cc)
        return 0;
    if (!json_object_is_type(cc, json_type_object))
        return fail(c, "cache_control must be an object", "%s.cache_control", path);
    return add(block, "cache_control", json_object_get(cc));
}

/* prefix_text prepends "<a><b>" to the first text block of blocks (none: nothing). */
static int prefix_text(json_object *blocks, const char *a, const char *b)
{
    size_t n = json_object_array_length(blocks);
    for (size_t i = 0; i < n; i++) {
        json_object *blk = json_object_array_get_idx(blocks, i);
        if (!streq(get(blk, "type"), "text"))
            continue;
        json_object *t = get(blk, "text");
        size_t la = strlen(a), lb = strlen(b), lt = (size_t)json_object_get_string_len(t);
        char *s = malloc(la + lb + lt + 1);
        if (!s)
            return OAI_ENOMEM;
        memcpy(s, a, la);
        memcpy(s + la, b, lb);
        memcpy(s + la + lb, json_object_get_string(t), lt);
        s[la + lb + lt] = '\0';
        int rc = add(blk, "text", json_object_new_string_len(s, (int)(la + lb + lt)));
        free(s);
        return rc;
    }
    return 0;
}

/* ---- images ---- */

static int b64val(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* b64_check validates standard padded base64 and decodes its first bytes into head (up to
 * headlen); returns the number of head bytes, or -1 when s is not valid base64. */
static int b64_check(const char *s, size_t n, unsigned char *head, size_t headlen)
{
    if (n == 0 || n % 4 != 0)
        return -1;
    size_t pad = 0;
    if (s[n - 1] == '=')
        pad = (s[n - 2] == '=') ? 2 : 1;
    size_t got = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n - pad; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (got < headlen)
                head[got++] = (unsigned char)((acc >> bits) & 0xff);
        }
    }
    return (int)got;
}

static const char *sniff(const unsigned char *h, int n)
{
    if (n >= 4 && h[0] == 0x89 && h[1] == 'P' && h[2] == 'N' && h[3] == 'G')
        return "image/png";
    if (n >= 3 && h[0] == 0xff && h[1] == 0xd8 && h[2] == 0xff)
        return "image/jpeg";
    if (n >= 4 && memcmp(h, "GIF8", 4) == 0)
        return "image/gif";
    if (n >= 12 && memcmp(h, "RIFF", 4) == 0 && memcmp(h + 8, "WEBP", 4) == 0)
        return "image/webp";
    return NULL;
}

/* image_block turns an image_url part into a base64 image block (*out, new). The media type is
 * taken from the bytes, whatever the URL declares (Claude checks it against the bytes). */
static int image_block(struct ctx *c, json_object *part, const char *path, json_object **out)
{
    *out = NULL;
    json_object *iu = get(part, "image_url");
    json_object *u = json_object_is_type(iu, json_type_object) ? get(iu, "url") : iu;
    if (!is_str(u))
        return fail(c, "image_url.url must be a string", "%s.image_url", path);
    const char *url = json_object_get_string(u);
    if (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0)
        return fail(c, "image URLs are not supported: send the image as a data: URL",
                    "%s.image_url", path);
    if (strncasecmp(url, "data:", 5) != 0)
        return fail(c, "image_url.url must be a data: URL", "%s.image_url", path);
    const char *comma = strchr(url, ',');
    if (!comma || comma - url < 12 || strncasecmp(comma - 7, ";base64", 7) != 0)
        return fail(c, "the image data URL must be base64 (data:image/png;base64,...)",
                    "%s.image_url", path);
    const char *data = comma + 1;
    size_t dlen = (size_t)json_object_get_string_len(u) - (size_t)(data - url);
    unsigned char head[12];
    int nh = b64_check(data, dlen, head, sizeof head);
    if (nh < 0)
        return fail(c, "the image data is not valid base64", "%s.image_url", path);
    const char *mt = sniff(head, nh);
    if (!mt)
        return fail(c, "unsupported image type: send a JPEG, PNG, GIF or WEBP image",
                    "%s.image_url", path);

    json_object *blk = json_object_new_object(), *src = json_object_new_object();
    int rc = OAI_ENOMEM;
    if (!blk || !src)
        goto done;
    if ((rc = add(src, "type", json_object_new_string("base64"))) ||
        (rc = add(src, "media_type", json_object_new_string(mt))) ||
        (rc = add(src, "data", json_object_new_string_len(data, (int)dlen))))
        goto done;
    if ((rc = add(blk, "type", json_object_new_string("image"))))
        goto done;
    rc = add(blk, "source", src);
    src = NULL;
    if (rc || (rc = keep_cache(c, part, blk, path)))
        goto done;
    *out = blk;
    blk = NULL;
done:
    json_object_put(src);
    json_object_put(blk);
    return rc;
}

/* ---- messages ---- */

/* text_parts appends the text blocks of a system/tool content array (text parts only; empty
 * ones skipped) to blocks. */
static int text_parts(struct ctx *c, json_object *content, size_t i, json_object *blocks)
{
    size_t n = json_object_array_length(content);
    for (size_t j = 0; j < n; j++) {
        json_object *p = json_object_array_get_idx(content, j);
        char path[96];
        snprintf(path, sizeof path, "messages[%zu].content[%zu]", i, j);
        if (!json_object_is_type(p, json_type_object))
            return fail(c, "each content part must be an object", "%s", path);
        if (!streq(get(p, "type"), "text"))
            return fail(c, "only text parts are allowed here", "%s.type", path);
        json_object *t = get(p, "text");
        if (!is_str(t))
            return fail(c, "a text part needs a string text", "%s.text", path);
        if (json_object_get_string_len(t) == 0)
            continue;
        json_object *blk = text_block(json_object_get_string(t), json_object_get_string_len(t));
        int rc = blk ? keep_cache(c, p, blk, path) : OAI_ENOMEM;
        if (rc) {
            json_object_put(blk);
            return rc;
        }
        if ((rc = push(blocks, blk)))
            return rc;
    }
    return 0;
}

/* text_content: a string -> one text block (none if empty), an array -> text_parts. *plain
 * is set for a string. */
static int text_content(struct ctx *c, json_object *content, size_t i, json_object *blocks,
                        int *plain)
{
    *plain = 0;
    if (is_str(content)) {
        *plain = 1;
        if (json_object_get_string_len(content) == 0)
            return 0;
        return push(blocks, text_block(json_object_get_string(content),
                                       json_object_get_string_len(content)));
    }
    if (json_object_is_type(content, json_type_array))
        return text_parts(c, content, i, blocks);
    return fail(c, "content must be a string or an array of text parts", "messages[%zu].content",
                i);
}

static int push_turn(struct parts *pt, int assistant, json_object *blocks, int plain)
{
    if (json_object_array_length(blocks) == 0) {
        json_object_put(blocks);
        return 0;
    }
    struct turn *t = &pt->turns[pt->nturns++];
    t->assistant = assistant;
    t->plain = plain && json_object_array_length(blocks) == 1;
    t->blocks = blocks;
    return 0;
}

/* name_prefix: a string name on a user/assistant message becomes "Name: " on the first text. */
static int name_prefix(struct ctx *c, json_object *m, size_t i, json_object *blocks)
{
    json_object *name = get(m, "name");
    if (!name)
        return 0;
    if (!is_str(name))
        return fail(c, "name must be a string", "messages[%zu].name", i);
    if (json_object_get_string_len(name) == 0)
        return 0;
    return prefix_text(blocks, json_object_get_string(name), ": ");
}

static int system_message(struct ctx *c, json_object *m, size_t i, int to_system, struct parts *pt)
{
    json_object *blocks = json_object_new_array();
    int plain = 0, rc;
    if (!blocks)
        return OAI_ENOMEM;
    json_object *content = get(m, "content");
    if ((rc = text_content(c, content, i, blocks, &plain)))
        goto fail;
    if (to_system) {
        size_t n = json_object_array_length(blocks);
        for (size_t j = 0; j < n && !rc; j++)
            rc = push(pt->system, json_object_get(json_object_array_get_idx(blocks, j)));
        json_object_put(blocks);
        return rc;
    }
    if ((rc = prefix_text(blocks, "System: ", "")))
        goto fail;
    return push_turn(pt, 0, blocks, plain);
fail:
    json_object_put(blocks);
    return rc;
}

static int user_message(struct ctx *c, json_object *m, size_t i, struct parts *pt)
{
    json_object *blocks = json_object_new_array(), *blk = NULL;
    int plain = 0, rc = 0;
    if (!blocks)
        return OAI_ENOMEM;
    json_object *content = get(m, "content");
    if (is_str(content)) {
        plain = 1;
        if (json_object_get_string_len(content) > 0)
            rc = push(blocks, text_block(json_object_get_string(content),
                                         json_object_get_string_len(content)));
    } else if (json_object_is_type(content, json_type_array)) {
        size_t n = json_object_array_length(content);
        for (size_t j = 0; j < n && !rc; j++) {
            json_object *p = json_object_array_get_idx(content, j);
            char path[96];
            snprintf(path, sizeof path, "messages[%zu].content[%zu]", i, j);
            json_object *type = get(p, "type");
            if (!json_object_is_type(p, json_type_object)) {
                rc = fail(c, "each content part must be an object", "%s", path);
            } else if (!is_str(type)) {
                rc = fail(c, "a content part needs a type", "%s.type", path);
            } else if (streq(type, "text")) {
                json_object *t = get(p, "text");
                if (!is_str(t)) {
                    rc = fail(c, "a text part needs a string text", "%s.text", path);
                } else if (json_object_get_string_len(t) > 0) {
                    blk = text_block(json_object_get_string(t), json_object_get_string_len(t));
                    rc = blk ? keep_cache(c, p, blk, path) : OAI_ENOMEM;
                    if (!rc)
                        rc = push(blocks, blk);
                    else
                        json_object_put(blk);
                    blk = NULL;
                }
            } else if (streq(type, "image_url")) {
                rc = image_block(c, p, path, &blk);
                if (!rc)
                    rc = push(blocks, blk);
                blk = NULL;
            } else if (streq(type, "input_audio") || streq(type, "file")) {
                rc = fail(c, "audio and file parts are not supported by Claude", "%s.type", path);
            } else {
                rc = fail(c, "unknown content part type", "%s.type", path);
            }
        }
    } else {
        rc = fail(c, "user content must be a string or an array of parts", "messages[%zu].content",
                  i);
    }
    if (!rc)
        rc = name_prefix(c, m, i, blocks);
    if (rc) {
        json_object_put(blocks);
        return rc;
    }
    return push_turn(pt, 0, blocks, plain);
}

/* tool_input parses a tool call's arguments text into an object (*out, new): "" / missing /
 * null -> {}. */
static int tool_input(struct ctx *c, json_object *args, const char *path, json_object **out)
{
    *out = NULL;
    if (json_object_is_type(args, json_type_object)) {
        *out = json_object_get(args); /* some clients send the object itself */
        return 0;
    }
    if (args && !is_str(args))
        return fail(c, "arguments must be a string of JSON", "%s", path);
    const char *s = args ? json_object_get_string(args) : "";
    size_t n = args ? (size_t)json_object_get_string_len(args) : 0;
    if (all_space(s, n) || (n == 4 && memcmp(s, "null", 4) == 0)) {
        *out = json_object_new_object();
        return *out ? 0 : OAI_ENOMEM;
    }
    json_object *v = NULL;
    if (util_parse_json(s, n, &v) != 0 || !json_object_is_type(v, json_type_object)) {
        json_object_put(v);
        return fail(c, "arguments must be a JSON object", "%s", path);
    }
    *out = v;
    return 0;
}

static int tool_use(struct ctx *c, const char *id, json_object *name, json_object *args,
                    const char *path, json_object *blocks)
{
    char p[128];
    snprintf(p, sizeof p, "%s.name", path);
    if (!is_str(name) || json_object_get_string_len(name) == 0)
        return fail(c, "a function call needs a name", "%s", p);
    snprintf(p, sizeof p, "%s.arguments", path);
    json_object *input = NULL;
    int rc = tool_input(c, args, p, &input);
    if (rc)
        return rc;
    json_object *b = json_object_new_object();
    if (!b) {
        json_object_put(input);
        return OAI_ENOMEM;
    }
    if ((rc = add(b, "type", json_object_new_string("tool_use"))) ||
        (rc = add(b, "id", json_object_new_string(id))) ||
        (rc = add(b, "name", json_object_get(name)))) {
        json_object_put(input);
        json_object_put(b);
        return rc;
    }
    if ((rc = add(b, "input", input))) {
        json_object_put(b);
        return rc;
    }
    return push(blocks, b);
}

static int assistant_message(struct ctx *c, json_object *m, size_t i, struct parts *pt)
{
    json_object *blocks = json_object_new_array();
    int rc = 0, plain = 0;
    if (!blocks)
        return OAI_ENOMEM;

    /* thinking_blocks first, verbatim with their signatures (SPEC §11). */
    json_object *tb = get(m, "thinking_blocks");
    if (tb && !json_object_is_type(tb, json_type_array)) {
        rc = fail(c, "thinking_blocks must be an array", "messages[%zu].thinking_blocks", i);
        goto done;
    }
    for (size_t j = 0; tb && j < json_object_array_length(tb) && !rc; j++) {
        json_object *b = json_object_array_get_idx(tb, j);
        json_object *type = get(b, "type");
        if (!streq(type, "thinking") && !streq(type, "redacted_thinking"))
            rc = fail(c, "a thinking block must have type thinking or redacted_thinking",
                      "messages[%zu].thinking_blocks[%zu]", i, j);
        else
            rc = push(blocks, json_object_get(b));
    }
    if (rc)
        goto done;

    json_object *content = get(m, "content");
    if (is_str(content)) {
        plain = 1;
        if (json_object_get_string_len(content) > 0)
            rc = push(blocks, text_block(json_object_get_string(content),
                                         json_object_get_string_len(content)));
    } else if (json_object_is_type(content, json_type_array)) {
        for (size_t j = 0; j < json_object_array_length(content) && !rc; j++) {
            json_object *p = json_object_array_get_idx(content, j);
            char path[96];
            snprintf(path, sizeof path, "messages[%zu].content[%zu]", i, j);
            json_object *type = get(p, "type"), *t = NULL;
            if (streq(type, "text"))
                t = get(p, "text");
            else if (streq(type, "refusal"))
                t = get(p, "refusal");
            else {
                rc = fail(c, "assistant content parts must be text or refusal", "%s.type", path);
                break;
            }
            if (!is_str(t)) {
                rc = fail(c, "a text part needs a string text", "%s", path);
                break;
            }
            if (json_object_get_string_len(t) == 0)
                continue;
            json_object *blk = text_block(json_object_get_string(t), json_object_get_string_len(t));
            rc = blk ? keep_cache(c, p, blk, path) : OAI_ENOMEM;
            if (rc)
                json_object_put(blk);
            else
                rc = push(blocks, blk);
        }
    } else if (content) {
        rc = fail(c, "assistant content must be a string, an array of parts or null",
                  "messages[%zu].content", i);
    }
    if (rc || (rc = name_prefix(c, m, i, blocks)))
        goto done;

    json_object *calls = get(m, "tool_calls");
    if (calls && !json_object_is_type(calls, json_type_array)) {
        rc = fail(c, "tool_calls must be an array", "messages[%zu].tool_calls", i);
        goto done;
    }
    for (size_t j = 0; calls && j < json_object_array_length(calls) && !rc; j++) {
        json_object *tc = json_object_array_get_idx(calls, j);
        char path[96];
        snprintf(path, sizeof path, "messages[%zu].tool_calls[%zu]", i, j);
        json_object *type = get(tc, "type"), *id = get(tc, "id"), *fn = get(tc, "function");
        if (!json_object_is_type(tc, json_type_object))
            rc = fail(c, "each tool call must be an object", "%s", path);
        else if (type && !streq(type, "function"))
            rc = fail(c, "only function tool calls are supported", "%s.type", path);
        else if (!is_str(id) || json_object_get_string_len(id) == 0)
            rc = fail(c, "a tool call needs an id", "%s.id", path);
        else if (!json_object_is_type(fn, json_type_object))
            rc = fail(c, "a tool call needs a function object", "%s.function", path);
        else {
            char fpath[112];
            snprintf(fpath, sizeof fpath, "%s.function", path);
            rc = tool_use(c, json_object_get_string(id), get(fn, "name"), get(fn, "arguments"),
                          fpath, blocks);
        }
    }
    if (rc)
        goto done;

    json_object *fc = get(m, "function_call");
    if (fc) {
        char path[64], id[40];
        snprintf(path, sizeof path, "messages[%zu].function_call", i);
        snprintf(id, sizeof id, "call_fn_%zu", i);
        if (!json_object_is_type(fc, json_type_object)) {
            rc = fail(c, "function_call must be an object", "%s", path);
            goto done;
        }
        if ((rc = tool_use(c, id, get(fc, "name"), get(fc, "arguments"), path, blocks)))
            goto done;
        pt->fn_pending[pt->nfn++] = i;
    }
    rc = push_turn(pt, 1, blocks, plain);
    blocks = NULL;
done:
    json_object_put(blocks);
    return rc;
}

/* tool_result builds a user turn holding one tool_result block for id. */
static int tool_result(struct ctx *c, json_object *m, size_t i, const char *id, int parts_ok,
                       struct parts *pt)
{
    json_object *blocks = json_object_new_array(), *b = json_object_new_object();
    json_object *content = get(m, "content"), *inner = NULL;
    int rc = OAI_ENOMEM;
    if (!blocks || !b)
        goto done;
    if (is_str(content)) {
        if (json_object_get_string_len(content) > 0)
            inner = json_object_get(content);
    } else if (parts_ok && json_object_is_type(content, json_type_array)) {
        if (!(inner = json_object_new_array()))
            goto done;
        if ((rc = text_parts(c, content, i, inner)))
            goto done;
        if (json_object_array_length(inner) == 0) {
            json_object_put(inner);
            inner = NULL;
        }
    } else if (content) {
        rc = fail(c, "content must be a string", "messages[%zu].content", i);
        goto done;
    }
    if ((rc = add(b, "type", json_object_new_string("tool_result"))) ||
        (rc = add(b, "tool_use_id", json_object_new_string(id))))
        goto done;
    if (inner) {
        rc = add(b, "content", inner);
        inner = NULL;
        if (rc)
            goto done;
    }
    rc = push(blocks, b);
    b = NULL;
    if (rc)
        goto done;
    rc = push_turn(pt, 0, blocks, 0);
    blocks = NULL;
done:
    json_object_put(inner);
    json_object_put(b);
    json_object_put(blocks);
    return rc;
}

static int read_messages(struct ctx *c, json_object *req, struct parts *pt)
{
    json_object *msgs = get(req, "messages");
    if (!json_object_is_type(msgs, json_type_array) || json_object_array_length(msgs) == 0)
        return fail(c, "messages must be a non-empty array", "messages");
    size_t n = json_object_array_length(msgs);
    pt->turns = calloc(n + 1, sizeof *pt->turns); /* + 1: the seed turn */
    pt->fn_pending = calloc(n, sizeof *pt->fn_pending);
    if (!pt->turns || !pt->fn_pending)
        return OAI_ENOMEM;
    int leading = 1, rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        json_object *m = json_object_array_get_idx(msgs, i);
        if (!json_object_is_type(m, json_type_object))
            return fail(c, "each message must be an object", "messages[%zu]", i);
        json_object *role = get(m, "role");
        if (streq(role, "system") || streq(role, "developer")) {
            rc = system_message(c, m, i, leading || c->o->hoist_system, pt);
            continue;
        }
        leading = 0;
        if (streq(role, "user")) {
            rc = user_message(c, m, i, pt);
        } else if (streq(role, "assistant")) {
            rc = assistant_message(c, m, i, pt);
        } else if (streq(role, "tool")) {
            json_object *id = get(m, "tool_call_id");
            if (!is_str(id) || json_object_get_string_len(id) == 0)
                return fail(c, "a tool message needs a tool_call_id", "messages[%zu].tool_call_id",
                            i);
            rc = tool_result(c, m, i, json_object_get_string(id), 1, pt);
        } else if (streq(role, "function")) {
            if (pt->nfn == 0)
                return fail(c, "a function message must follow an assistant function_call",
                            "messages[%zu]", i);
            char id[40];
            snprintf(id, sizeof id, "call_fn_%zu", pt->fn_pending[--pt->nfn]);
            rc = tool_result(c, m, i, id, 0, pt);
        } else {
            return fail(c, "role must be one of system, developer, user, assistant, tool, function",
                        "messages[%zu].role", i);
        }
    }
    return rc;
}

/* seed_text finds the last non-empty line of the system text (SPEC §5 seed rule) and returns a
 * new text block with it, or with SEED_TEXT. */
static json_object *seed_block(json_object *system)
{
    for (size_t k = json_object_array_length(system); k-- > 0;) {
        json_object *t = get(json_object_array_get_idx(system, k), "text");
        const char *s = json_object_get_string(t);
        size_t end = (size_t)json_object_get_string_len(t);
        while (end > 0) {
            size_t start = end;
            while (start > 0 && s[start - 1] != '\n')
                start--;
            size_t e = end;
            while (e > start && is_space(s[e - 1]))
                e--;
            if (e > start && !all_space(s + start, e - start))
                return text_block(s + start, e - start);
            end = start > 0 ? start - 1 : 0;
        }
    }
    return text_block(SEED_TEXT, strlen(SEED_TEXT));
}

/* merge_into appends the blocks of src (consumed) to dst; in a user turn every tool_result
 * block comes first, in order. */
static int merge_into(struct turn *dst, struct turn *src)
{
    json_object *all = json_object_new_array();
    int rc = all ? 0 : OAI_ENOMEM;
    for (int pass = 0; pass < 2 && !rc; pass++) {
        json_object *lists[2] = {dst->blocks, src->blocks};
        for (int l = 0; l < 2 && !rc; l++) {
            for (size_t j = 0; j < json_object_array_length(lists[l]) && !rc; j++) {
                json_object *b = json_object_array_get_idx(lists[l], j);
                int is_result = streq(get(b, "type"), "tool_result");
                int want = dst->assistant ? (pass == 0) : (pass == 0) == is_result;
                if (want)
                    rc = push(all, json_object_get(b));
            }
        }
        if (dst->assistant)
            break;
    }
    if (rc) {
        json_object_put(all);
        return rc;
    }
    json_object_put(dst->blocks);
    json_object_put(src->blocks);
    src->blocks = NULL;
    dst->blocks = all;
    dst->plain = 0;
    return 0;
}

/* build_messages: seed turn, same-role merging, then the "messages" array. */
static int build_messages(struct parts *pt)
{
    int rc = 0;
    if (pt->nturns == 0 || pt->turns[0].assistant) {
        json_object *blocks = json_object_new_array();
        if (!blocks)
            return OAI_ENOMEM;
        if ((rc = push(blocks, pt->nturns == 0 ? text_block(SEED_TEXT, strlen(SEED_TEXT))
                                               : seed_block(pt->system)))) {
            json_object_put(blocks);
            return rc;
        }
        memmove(pt->turns + 1, pt->turns, pt->nturns * sizeof *pt->turns);
        pt->turns[0] = (struct turn){.assistant = 0, .plain = 1, .blocks = blocks};
        pt->nturns++;
    }
    size_t w = 0;
    for (size_t r = 1; r < pt->nturns; r++) {
        if (pt->turns[r].assistant == pt->turns[w].assistant) {
            if ((rc = merge_into(&pt->turns[w], &pt->turns[r])))
                return rc;
        } else {
            pt->turns[++w] = pt->turns[r];
            if (w != r)
                pt->turns[r].blocks = NULL;
        }
    }
    pt->nturns = w + 1;

    if (!(pt->messages = json_object_new_array()))
        return OAI_ENOMEM;
    for (size_t k = 0; k < pt->nturns && !rc; k++) {
        struct turn *t = &pt->turns[k];
        json_object *m = json_object_new_object(), *content = t->blocks;
        if (!m)
            return OAI_ENOMEM;
        json_object *first = json_object_array_get_idx(t->blocks, 0);
        if (t->plain && json_object_array_length(t->blocks) == 1 &&
            streq(get(first, "type"), "text") && !get(first, "cache_control"))
            content = get(first, "text");
        if ((rc = add(m, "role", json_object_new_string(t->assistant ? "assistant" : "user"))) ||
            (rc = add(m, "content", json_object_get(content)))) {
            json_object_put(m);
            return rc;
        }
        rc = push(pt->messages, m);
    }
    return rc;
}

/* ---- sampling, stops, n, stream ---- */

static int read_scalars(struct ctx *c, json_object *req, struct openai_request *out,
                        struct parts *pt)
{
    const struct openai_opts *o = c->o;
    const char *mname = "max_completion_tokens";
    json_object *v = get(req, mname);
    if (!v) {
        mname = "max_tokens";
        v = get(req, mname);
    }
    if (v) {
        if (!get_int(v, &pt->max_tokens) || pt->max_tokens < 1)
            return fail(c, "must be a positive integer", "%s", mname);
    } else {
        pt->max_tokens = o->default_max_tokens > 0 ? o->default_max_tokens : FALLBACK_MAX_TOKEN;
    }
    if (o->max_output_tokens > 0 && pt->max_tokens > o->max_output_tokens)
        pt->max_tokens = o->max_output_tokens;

    if ((v = get(req, "temperature"))) {
        if (!is_num(v))
            return fail(c, "temperature must be a number", "temperature");
        double d = json_object_get_double(v);
        pt->temperature = d < 0   ? json_object_new_double(0)
                          : d > 1 ? json_object_new_double(1)
                                  : json_object_get(v);
        if (!pt->temperature)
            return OAI_ENOMEM;
    }
    if ((v = get(req, "top_p"))) {
        if (!is_num(v))
            return fail(c, "top_p must be a number", "top_p");
        pt->top_p = json_object_get(v);
    }
    if ((v = get(req, "top_k"))) {
        long long k;
        if (!get_int(v, &k) || k < 0)
            return fail(c, "top_k must be a non-negative integer", "top_k");
        if (!(pt->top_k = json_object_new_int64(k)))
            return OAI_ENOMEM;
    }

    if ((v = get(req, "stop"))) {
        int arr = json_object_is_type(v, json_type_array);
        if (!arr && !is_str(v))
            return fail(c, "stop must be a string or an array of strings", "stop");
        size_t n = arr ? json_object_array_length(v) : 1;
        for (size_t i = 0; i < n; i++) {
            json_object *s = arr ? json_object_array_get_idx(v, i) : v;
            if (!is_str(s))
                return fail(c, "stop must be a string or an array of strings", "stop[%zu]", i);
            size_t len = (size_t)json_object_get_string_len(s);
            if (len == 0)
                continue;
            json_object **dst =
                all_space(json_object_get_string(s), len) ? &out->local_stops : &pt->stop_sequences;
            if (!*dst && !(*dst = json_object_new_array()))
                return OAI_ENOMEM;
            int rc = push(*dst, json_object_get(s));
            if (rc)
                return rc;
        }
    }

    if ((v = get(req, "user"))) {
        if (!is_str(v))
            return fail(c, "user must be a string", "user");
        if (json_object_get_string_len(v) > 0) {
            if (!(pt->metadata = json_object_new_object()))
                return OAI_ENOMEM;
            int rc = add(pt->metadata, "user_id", json_object_get(v));
            if (rc)
                return rc;
        }
    }

    long long maxn = o->max_choices > 0 ? o->max_choices : 1;
    if ((v = get(req, "n"))) {
        long long n;
        if (!get_int(v, &n) || n < 1 || n > maxn) {
            char m[96];
            snprintf(m, sizeof m, "n must be an integer from 1 to %lld", maxn);
            return fail(c, m, "n");
        }
        out->n = (int)n;
    }
    if ((v = get(req, "stream"))) {
        if (!json_object_is_type(v, json_type_boolean))
            return fail(c, "stream must be a boolean", "stream");
        out->stream = json_object_get_boolean(v);
    }
    if ((v = get(req, "stream_options"))) {
        if (!json_object_is_type(v, json_type_object))
            return fail(c, "stream_options must be an object", "stream_options");
        json_object *iu = get(v, "include_usage");
        if (iu && !json_object_is_type(iu, json_type_boolean))
            return fail(c, "include_usage must be a boolean", "stream_options.include_usage");
        out->include_usage = iu ? json_object_get_boolean(iu) : 0;
    }
    return 0;
}

/* ---- tools ---- */

/* function_tool turns an OpenAI function definition into an Anthropic tool (*out, new). */
static int function_tool(struct ctx *c, json_object *fn, const char *path, json_object **out)
{
    *out = NULL;
    if (!json_object_is_type(fn, json_type_object))
        return fail(c, "a function definition must be an object", "%s", path);
    json_object *name = get(fn, "name"), *desc = get(fn, "description");
    json_object *params = get(fn, "parameters"), *schema = NULL;
    if (!is_str(name) || json_object_get_string_len(name) == 0)
        return fail(c, "a function needs a name", "%s.name", path);
    if (desc && !is_str(desc))
        return fail(c, "description must be a string", "%s.description", path);
    if (params && !json_object_is_type(params, json_type_object))
        return fail(c, "parameters must be a JSON Schema object", "%s.parameters", path);
    int rc = OAI_ENOMEM;
    if (params && get(params, "type")) {
        schema = json_object_get(params);
    } else if (params) {
        /* {} or a schema without "type": Claude needs an object schema. */
        if (json_object_deep_copy(params, &schema, NULL) != 0)
            return OAI_ENOMEM;
        if ((rc = add(schema, "type", json_object_new_string("object"))))
            goto fail;
    } else {
        if (!(schema = json_object_new_object()))
            return OAI_ENOMEM;
        if ((rc = add(schema, "type", json_object_new_string("object"))) ||
            (rc = add(schema, "properties", json_object_new_object())))
            goto fail;
    }
    json_object *t = json_object_new_object();
    if (!t)
        goto fail;
    if ((rc = add(t, "name", json_object_get(name))) ||
        (desc && (rc = add(t, "description", json_object_get(desc))))) {
        json_object_put(t);
        goto fail;
    }
    if ((rc = add(t, "input_schema", schema))) {
        json_object_put(t);
        return rc;
    }
    *out = t;
    return 0;
fail:
    json_object_put(schema);
    return rc;
}

static int tool_choice_obj(const char *type, json_object *name, json_object **out)
{
    json_object *o = json_object_new_object();
    int rc = o ? add(o, "type", json_object_new_string(type)) : OAI_ENOMEM;
    if (!rc && name)
        rc = add(o, "name", json_object_get(name));
    if (rc) {
        json_object_put(o);
        return rc;
    }
    *out = o;
    return 0;
}

static int read_tools(struct ctx *c, json_object *req, struct openai_request *out, struct parts *pt)
{
    int rc = 0;
    json_object *tools = get(req, "tools"), *fns = get(req, "functions"), *t = NULL;
    if (tools && !json_object_is_type(tools, json_type_array))
        return fail(c, "tools must be an array", "tools");
    if (fns && !json_object_is_type(fns, json_type_array))
        return fail(c, "functions must be an array", "functions");
    if (!(pt->tools = json_object_new_array()))
        return OAI_ENOMEM;
    for (size_t i = 0; tools && i < json_object_array_length(tools); i++) {
        json_object *e = json_object_array_get_idx(tools, i), *type = get(e, "type");
        char path[64];
        snprintf(path, sizeof path, "tools[%zu]", i);
        if (!json_object_is_type(e, json_type_object))
            return fail(c, "each tool must be an object", "%s", path);
        if (type && !streq(type, "function"))
            return fail(c, "only function tools are supported", "%s.type", path);
        char fpath[80];
        snprintf(fpath, sizeof fpath, "%s.function", path);
        if ((rc = function_tool(c, get(e, "function"), fpath, &t)))
            return rc;
        if ((rc = keep_cache(c, e, t, path))) {
            json_object_put(t);
            return rc;
        }
        if ((rc = push(pt->tools, t)))
            return rc;
    }
    for (size_t i = 0; fns && i < json_object_array_length(fns); i++) {
        char path[64];
        snprintf(path, sizeof path, "functions[%zu]", i);
        if ((rc = function_tool(c, json_object_array_get_idx(fns, i), path, &t)) ||
            (rc = push(pt->tools, t)))
            return rc;
    }
    if (fns && json_object_array_length(fns) > 0 && !tools)
        out->legacy_functions = 1;

    json_object *tc = get(req, "tool_choice");
    const char *pname = "tool_choice";
    int legacy = 0;
    if (!tc) {
        tc = get(req, "function_call");
        pname = "function_call";
        legacy = 1;
    }
    if (is_str(tc)) {
        const char *s = json_object_get_string(tc);
        if (strcmp(s, "auto") == 0)
            rc = tool_choice_obj("auto", NULL, &pt->tool_choice);
        else if (strcmp(s, "none") == 0)
            rc = tool_choice_obj("none", NULL, &pt->tool_choice);
        else if (strcmp(s, "required") == 0 && !legacy)
            rc = tool_choice_obj("any", NULL, &pt->tool_choice);
        else
            rc = fail(c, "unknown tool choice", "%s", pname);
    } else if (json_object_is_type(tc, json_type_object)) {
        json_object *name = legacy ? get(tc, "name") : get(get(tc, "function"), "name");
        if (!legacy && !streq(get(tc, "type"), "function"))
            rc = fail(c, "tool_choice type must be function", "tool_choice.type");
        else if (!is_str(name) || json_object_get_string_len(name) == 0)
            rc = fail(c, "the forced function needs a name", "%s", pname);
        else
            rc = tool_choice_obj("tool", name, &pt->tool_choice);
    } else if (tc) {
        rc = fail(c, "tool choice must be a string or an object", "%s", pname);
    }
    if (rc)
        return rc;

    json_object *par = get(req, "parallel_tool_calls");
    if (par && !json_object_is_type(par, json_type_boolean))
        return fail(c, "parallel_tool_calls must be a boolean", "parallel_tool_calls");
    pt->parallel_off = par && !json_object_get_boolean(par);
    return 0;
}

/* ---- response_format ---- */

static int read_response_format(struct ctx *c, json_object *req, struct openai_request *out,
                                struct parts *pt)
{
    json_object *rf = get(req, "response_format");
    if (!rf)
        return 0;
    if (!json_object_is_type(rf, json_type_object))
        return fail(c, "response_format must be an object", "response_format");
    json_object *type = get(rf, "type");
    if (streq(type, "text"))
        return 0;
    if (streq(type, "json_object")) {
        pt->json_hint = 1;
        return 0;
    }
    if (!streq(type, "json_schema"))
        return fail(c, "response_format type must be text, json_object or json_schema",
                    "response_format.type");
    json_object *js = get(rf, "json_schema");
    if (js && !json_object_is_type(js, json_type_object))
        return fail(c, "json_schema must be an object", "response_format.json_schema");
    json_object *name = get(js, "name"), *desc = get(js, "description"),
                *schema = get(js, "schema");
    if (name && !is_str(name))
        return fail(c, "name must be a string", "response_format.json_schema.name");
    if (desc && !is_str(desc))
        return fail(c, "description must be a string", "response_format.json_schema.description");
    if (schema && !json_object_is_type(schema, json_type_object))
        return fail(c, "schema must be a JSON Schema object", "response_format.json_schema.schema");

    char tname[TOOL_NAME_MAX + 1];
    size_t k = 0;
    const char *s = name ? json_object_get_string(name) : "";
    for (; s[k] && k < TOOL_NAME_MAX; k++) {
        char ch = s[k];
        int okc = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
        tname[k] = okc ? ch : '_';
    }
    tname[k] = '\0';
    if (k == 0)
        snprintf(tname, sizeof tname, "%s", SCHEMA_TOOL_NAME);

    json_object *t = json_object_new_object(), *is = NULL;
    int rc = t ? add(t, "name", json_object_new_string(tname)) : OAI_ENOMEM;
    if (!rc && desc)
        rc = add(t, "description", json_object_get(desc));
    if (!rc && schema) {
        rc = add(t, "input_schema", json_object_get(schema));
    } else if (!rc) {
        is = json_object_new_object();
        rc = is ? add(is, "type", json_object_new_string("object")) : OAI_ENOMEM;
        if (!rc)
            rc = add(t, "input_schema", is);
        else
            json_object_put(is);
    }
    if (rc) {
        json_object_put(t);
        return rc;
    }
    if ((rc = push(pt->tools, t)))
        return rc;
    json_object_put(pt->tool_choice);
    pt->tool_choice = NULL;
    json_object *tn = json_object_new_string(tname);
    if (!tn)
        return OAI_ENOMEM;
    rc = tool_choice_obj("tool", tn, &pt->tool_choice);
    json_object_put(tn);
    if (rc)
        return rc;
    snprintf(out->schema_tool, sizeof out->schema_tool, "%s", tname);
    return 0;
}

/* ---- thinking ---- */

static int read_thinking(struct ctx *c, json_object *req, struct parts *pt)
{
    json_object *th = get(req, "thinking");
    if (th) {
        if (!json_object_is_type(th, json_type_object))
            return fail(c, "thinking must be an object", "thinking");
        if (json_object_deep_copy(th, &pt->thinking, NULL) != 0)
            return OAI_ENOMEM;
    } else if ((th = get(req, "reasoning_effort"))) {
        static const struct {
            const char *name;
            long long budget;
        } levels[] = {
            {"minimal", 0}, {"none", 0}, {"low", 1024}, {"medium", 4096}, {"high", 16384}};
        size_t k = 0;
        for (; k < sizeof levels / sizeof levels[0]; k++)
            if (streq(th, levels[k].name))
                break;
        if (k == sizeof levels / sizeof levels[0])
            return fail(c, "reasoning_effort must be minimal, low, medium or high",
                        "reasoning_effort");
        if (levels[k].budget > 0 && (c->o->model_flags & CAT_THINKING)) {
            if (!(pt->thinking = json_object_new_object()) ||
                add(pt->thinking, "type", json_object_new_string("enabled")) ||
                add(pt->thinking, "budget_tokens", json_object_new_int64(levels[k].budget)))
                return OAI_ENOMEM;
        }
    }
    if (!pt->thinking || !streq(get(pt->thinking, "type"), "enabled"))
        return 0;

    long long budget;
    if (get_int(get(pt->thinking, "budget_tokens"), &budget)) {
        long long cap = c->o->max_output_tokens;
        if (budget >= pt->max_tokens)
            pt->max_tokens = budget + THINK_HEADROOM;
        if (cap > 0 && pt->max_tokens > cap) {
            pt->max_tokens = cap;
            if (cap <= THINK_MIN_BUDGET) {
                json_object_put(pt->thinking); /* no room to think: answer without */
                pt->thinking = NULL;
                return 0;
            }
            if (budget >= cap) {
                budget = cap - THINK_HEADROOM < THINK_MIN_BUDGET ? THINK_MIN_BUDGET
                                                                 : cap - THINK_HEADROOM;
                if (add(pt->thinking, "budget_tokens", json_object_new_int64(budget)))
                    return OAI_ENOMEM;
            }
        }
    }
    /* Claude refuses sampling changes and forced tool use with thinking. */
    json_object_put(pt->temperature);
    json_object_put(pt->top_p);
    json_object_put(pt->top_k);
    pt->temperature = pt->top_p = pt->top_k = NULL;
    json_object *tct = get(pt->tool_choice, "type");
    if (streq(tct, "any") || streq(tct, "tool")) {
        json_object_object_del(pt->tool_choice, "name");
        if (add(pt->tool_choice, "type", json_object_new_string("auto")))
            return OAI_ENOMEM;
    }
    return 0;
}

/* ---- assembly ---- */

static int json_hint(struct parts *pt)
{
    size_t n = json_object_array_length(pt->system);
    json_object *last = n ? json_object_array_get_idx(pt->system, n - 1) : NULL;
    if (!last || get(last, "cache_control"))
        return push(pt->system, text_block(JSON_OBJECT_HINT, strlen(JSON_OBJECT_HINT)));
    json_object *t = get(last, "text");
    size_t lt = (size_t)json_object_get_string_len(t), lh = strlen(JSON_OBJECT_HINT);
    char *s = malloc(lt + 2 + lh + 1);
    if (!s)
        return OAI_ENOMEM;
    memcpy(s, json_object_get_string(t), lt);
    memcpy(s + lt, "\n\n", 2);
    memcpy(s + lt + 2, JSON_OBJECT_HINT, lh + 1);
    int rc = add(last, "text", json_object_new_string_len(s, (int)(lt + 2 + lh)));
    free(s);
    return rc;
}

static int assemble(struct parts *pt, json_object *body)
{
    int rc;
    if (pt->json_hint && (rc = json_hint(pt)))
        return rc;
    if (json_object_array_length(pt->system) > 0) {
        rc = add(body, "system", pt->system);
        pt->system = NULL;
        if (rc)
            return rc;
    }
    rc = add(body, "messages", pt->messages);
    pt->messages = NULL;
    if (rc || (rc = add(body, "max_tokens", json_object_new_int64(pt->max_tokens))))
        return rc;
    struct {
        const char *key;
        json_object **v;
    } opt[] = {{"temperature", &pt->temperature},
               {"top_p", &pt->top_p},
               {"top_k", &pt->top_k},
               {"stop_sequences", &pt->stop_sequences},
               {"metadata", &pt->metadata},
               {"thinking", &pt->thinking}};
    for (size_t k = 0; k < sizeof opt / sizeof opt[0]; k++) {
        if (!*opt[k].v)
            continue;
        rc = add(body, opt[k].key, *opt[k].v);
        *opt[k].v = NULL;
        if (rc)
            return rc;
    }
    if (json_object_array_length(pt->tools) == 0)
        return 0; /* tool_choice without tools is dropped */
    rc = add(body, "tools", pt->tools);
    pt->tools = NULL;
    if (rc)
        return rc;
    if (pt->parallel_off && !pt->tool_choice &&
        (rc = tool_choice_obj("auto", NULL, &pt->tool_choice)))
        return rc;
    if (!pt->tool_choice)
        return 0;
    if (pt->parallel_off && !streq(get(pt->tool_choice, "type"), "none") &&
        (rc = add(pt->tool_choice, "disable_parallel_tool_use", json_object_new_boolean(1))))
        return rc;
    rc = add(body, "tool_choice", pt->tool_choice);
    pt->tool_choice = NULL;
    return rc;
}

static void parts_free(struct parts *pt)
{
    for (size_t k = 0; pt->turns && k < pt->nturns; k++)
        json_object_put(pt->turns[k].blocks);
    free(pt->turns);
    free(pt->fn_pending);
    json_object *objs[] = {pt->system,      pt->messages,       pt->temperature, pt->top_p,
                           pt->top_k,       pt->stop_sequences, pt->metadata,    pt->tools,
                           pt->tool_choice, pt->thinking};
    for (size_t k = 0; k < sizeof objs / sizeof objs[0]; k++)
        json_object_put(objs[k]);
}

/* openai_translate: see openai.h. Builds out->body from an allow-list (no model, stream or
 * anthropic_version; never an OpenAI-only field), then applies anthropic_normalize. On any
 * failure *out holds nothing to free; a client error fills msg and param (param "" when the
 * body as a whole is wrong). The client's body is not modified; out->body may share read-only
 * sub-objects with it by reference count, so either can be freed first. */
int openai_translate(json_object *req, const struct openai_opts *o, struct openai_request *out,
                     char *msg, size_t msglen, char *param, size_t paramlen)
{
    struct ctx c = {.o = o, .msg = msg, .msglen = msglen, .param = param, .paramlen = paramlen};
    struct parts pt = {0};
    json_object *body = NULL;
    int rc;

    memset(out, 0, sizeof *out);
    out->n = 1;
    if (msglen)
        msg[0] = '\0';
    if (paramlen)
        param[0] = '\0';
    if (!json_object_is_type(req, json_type_object)) {
        rc = fail(&c, "the request body must be a JSON object", "%s", "");
        goto done;
    }
    if (!(body = json_object_new_object()) || !(pt.system = json_object_new_array())) {
        rc = OAI_ENOMEM;
        goto done;
    }
    if ((rc = read_messages(&c, req, &pt)) || (rc = read_scalars(&c, req, out, &pt)) ||
        (rc = read_tools(&c, req, out, &pt)) || (rc = read_response_format(&c, req, out, &pt)) ||
        (rc = read_thinking(&c, req, &pt)) || (rc = build_messages(&pt)) ||
        (rc = assemble(&pt, body)))
        goto done;
    anthropic_normalize(body, o->model_flags, o->max_output_tokens);
    out->body = body;
    body = NULL;
done:
    parts_free(&pt);
    json_object_put(body);
    if (rc)
        openai_request_free(out);
    return rc;
}

/* openai_request_free releases what openai_translate produced; NULL and a second call are
 * harmless. */
void openai_request_free(struct openai_request *r)
{
    if (!r)
        return;
    json_object_put(r->body);
    json_object_put(r->local_stops);
    r->body = NULL;
    r->local_stops = NULL;
}

json_object *openai_chunk(const char *id, int64_t created, const char *model, int index,
                          json_object *delta, const char *finish)
{
    json_object *c = json_object_new_object(), *choices = json_object_new_array();
    json_object_object_add(c, "id", json_object_new_string(id));
    json_object_object_add(c, "object", json_object_new_string("chat.completion.chunk"));
    json_object_object_add(c, "created", json_object_new_int64(created));
    json_object_object_add(c, "model", json_object_new_string(model ? model : ""));
    if (delta) {
        json_object *choice = json_object_new_object();
        json_object_object_add(choice, "index", json_object_new_int(index));
        json_object_object_add(choice, "delta", delta);
        json_object_object_add(choice, "logprobs", NULL);
        json_object_object_add(choice, "finish_reason",
                               finish ? json_object_new_string(finish) : NULL);
        json_object_array_add(choices, choice);
    }
    json_object_object_add(c, "choices", choices);
    return c;
}

json_object *openai_usage_chunk(const char *id, int64_t created, const char *model,
                                json_object *usage)
{
    json_object *c = openai_chunk(id, created, model, 0, NULL, NULL);
    json_object_object_add(c, "usage", usage);
    return c;
}
