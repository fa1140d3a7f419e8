#include "translators/anthropic.h"
#include "translators/openai.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"

/*
 * The response side of the translation core: Anthropic Messages responses and SSE events turned
 * into OpenAI chat.completion objects and chat.completion.chunk events.
 *
 * Ceilings (per stream; everything else is a fixed-size field or a per-event temporary):
 *  - THINKING_MAX: the text of the thinking block being streamed, re-sent whole with its
 *    signature when the block ends (SPEC §11); the only unbounded-by-nature accumulation.
 *  - SIGNATURE_MAX: that block's signature.
 *  - the local-stop holdback: at most the longest local stop - 1 bytes (+3 to keep UTF-8
 *    sequences whole).
 */
#define THINKING_MAX  (1024L * 1024)
#define SIGNATURE_MAX (256L * 1024)
#define REASON_MAX    64 /* stop_reason strings are short identifiers */

static const char *str_field(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* str_len_field is str_field with the string's length (JSON strings may hold NUL). */
static const char *str_len_field(json_object *o, const char *key, size_t *len)
{
    json_object *v;
    *len = 0;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

long long anthropic_token_count(json_object *v)
{
    if (!json_object_is_type(v, json_type_int))
        return 0;
    int64_t n = json_object_get_int64(v);
    return n < 0 ? 0 : n > ANTHROPIC_TOKENS_MAX ? ANTHROPIC_TOKENS_MAX : (long long)n;
}

/* count_field reads a token count (anthropic_token_count); *found says whether one was there. */
static long long count_field(json_object *o, const char *key, int *found)
{
    json_object *v;
    *found = 0;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        return 0;
    *found = 1;
    return anthropic_token_count(v);
}

static const char *finish_reason(const char *stop_reason, int legacy)
{
    if (!stop_reason)
        return "stop";
    if (strcmp(stop_reason, "max_tokens") == 0 ||
        strcmp(stop_reason, "model_context_window_exceeded") == 0)
        return "length";
    if (strcmp(stop_reason, "tool_use") == 0)
        return legacy ? "function_call" : "tool_calls";
    if (strcmp(stop_reason, "refusal") == 0)
        return "content_filter";
    return "stop"; /* end_turn, stop_sequence, pause_turn, null, unknown */
}

/* ---- local stop sequences ---- */

/* stops_maxlen is the length of the longest non-empty string in stops (0 if none). */
static size_t stops_maxlen(json_object *stops)
{
    size_t max = 0;
    if (!json_object_is_type(stops, json_type_array))
        return 0;
    size_t n = json_object_array_length(stops);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(stops, i);
        if (json_object_is_type(e, json_type_string) && (size_t)json_object_get_string_len(e) > max)
            max = (size_t)json_object_get_string_len(e);
    }
    return max;
}

/* find_stop finds the earliest match of any stop in s[from..n); returns 1 and sets *pos. */
static int find_stop(json_object *stops, const char *s, size_t n, size_t from, size_t *pos)
{
    int found = 0;
    size_t best = 0;
    size_t count =
        json_object_is_type(stops, json_type_array) ? json_object_array_length(stops) : 0;
    for (size_t i = 0; i < count && from < n; i++) {
        json_object *e = json_object_array_get_idx(stops, i);
        if (!json_object_is_type(e, json_type_string) || json_object_get_string_len(e) == 0)
            continue;
        const char *m = memmem(s + from, n - from, json_object_get_string(e),
                               (size_t)json_object_get_string_len(e));
        if (m && (!found || (size_t)(m - s) < best)) {
            best = (size_t)(m - s);
            found = 1;
        }
    }
    if (found)
        *pos = best;
    return found;
}

/* ---- shared ---- */

/* anthropic_usage_json: a new OpenAI usage object (prompt = input + cache read + cache write,
 * cached_tokens = cache read); the caller owns it. */
json_object *anthropic_usage_json(const struct anthropic_usage *u)
{
    long long prompt = u->input + u->cache_read + u->cache_write;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "prompt_tokens", json_object_new_int64(prompt));
    json_object_object_add(o, "completion_tokens", json_object_new_int64(u->output));
    json_object_object_add(o, "total_tokens", json_object_new_int64(prompt + u->output));
    json_object *pd = json_object_new_object();
    json_object_object_add(pd, "cached_tokens", json_object_new_int64(u->cache_read));
    json_object_object_add(o, "prompt_tokens_details", pd);
    json_object *cd = json_object_new_object();
    json_object_object_add(cd, "reasoning_tokens", json_object_new_int64(0));
    json_object_object_add(o, "completion_tokens_details", cd);
    return o;
}

/* read_usage overwrites the counters present in an Anthropic usage object. */
static void read_usage(json_object *usage, struct anthropic_usage *u)
{
    int found;
    long long v;
    if (!json_object_is_type(usage, json_type_object))
        return;
    v = count_field(usage, "input_tokens", &found);
    if (found)
        u->input = v;
    v = count_field(usage, "output_tokens", &found);
    if (found)
        u->output = v;
    v = count_field(usage, "cache_read_input_tokens", &found);
    if (found)
        u->cache_read = v;
    v = count_field(usage, "cache_creation_input_tokens", &found);
    if (found)
        u->cache_write = v;
}

/* ---- non-stream ---- */

/* compact_input is the compact JSON text of a tool_use input: "{}" when empty or absent. */
static json_object *compact_input(json_object *block)
{
    json_object *input = NULL;
    json_object_object_get_ex(block, "input", &input);
    if (!input ||
        (json_object_is_type(input, json_type_object) && json_object_object_length(input) == 0))
        return json_object_new_string("{}");
    size_t len;
    const char *s = util_json_plain(input, &len);
    return json_object_new_string_len(s, (int)len);
}

static json_object *function_obj(const char *name, json_object *arguments)
{
    json_object *f = json_object_new_object();
    json_object_object_add(f, "name", json_object_new_string(name ? name : ""));
    json_object_object_add(f, "arguments", arguments);
    return f;
}

/* add_text appends s[0..n) to a growing string; the total is bounded by the reply's size. */
static int add_text(char **dst, size_t *len, const char *s, size_t n)
{
    if (n == 0)
        return 0;
    char *p = realloc(*dst, *len + n + 1);
    if (!p)
        return OAI_ENOMEM;
    memcpy(p + *len, s, n);
    *len += n;
    p[*len] = '\0';
    *dst = p;
    return 0;
}

/* anthropic_to_openai: msg borrowed; returns a new chat.completion (caller owns it) or NULL when
 * msg is not a Messages response (or memory ran out). u, when not NULL, has the reply's usage
 * added. Local stops are searched in the joined text; blocks after a match are dropped. */
json_object *anthropic_to_openai(json_object *msg, const struct anthropic_opts *o,
                                 struct anthropic_usage *u)
{
    json_object *out = NULL, *content = NULL, *tool_calls = NULL, *thinking = NULL;
    json_object *function_call = NULL, *schema_json = NULL;
    char *text = NULL, *reasoning = NULL;
    size_t text_len = 0, reasoning_len = 0;
    int has_reasoning = 0, stopped = 0, real_tools = 0;
    const char *type = str_field(msg, "type");

    if (!json_object_is_type(msg, json_type_object) || (type && strcmp(type, "message") != 0) ||
        !json_object_object_get_ex(msg, "content", &content) ||
        !json_object_is_type(content, json_type_array))
        return NULL;

    const char *schema = o->schema_tool && *o->schema_tool ? o->schema_tool : NULL;
    size_t maxstop = stops_maxlen(o->local_stops);
    size_t nblocks = json_object_array_length(content);
    for (size_t i = 0; i < nblocks && !stopped; i++) {
        json_object *b = json_object_array_get_idx(content, i);
        const char *bt = str_field(b, "type");
        if (!bt)
            continue;
        if (strcmp(bt, "text") == 0) {
            size_t n, old = text_len, pos;
            const char *t = str_len_field(b, "text", &n);
            if (t && add_text(&text, &text_len, t, n))
                goto fail;
            /* a stop may span blocks: search from where a new match could begin */
            size_t from = maxstop && old >= maxstop - 1 ? old - (maxstop - 1) : 0;
            if (maxstop && find_stop(o->local_stops, text, text_len, from, &pos)) {
                text_len = pos;
                stopped = 1; /* nothing after the cut reaches the client (as in a stream) */
            }
        } else if (strcmp(bt, "thinking") == 0 || strcmp(bt, "redacted_thinking") == 0) {
            if (!thinking)
                thinking = json_object_new_array();
            json_object *copy = NULL;
            if (json_object_deep_copy(b, &copy, NULL) != 0)
                goto fail;
            json_object_array_add(thinking, copy);
            size_t n;
            const char *t = str_len_field(b, "thinking", &n);
            if (strcmp(bt, "thinking") == 0) {
                has_reasoning = 1;
                if (t && add_text(&reasoning, &reasoning_len, t, n))
                    goto fail;
            }
        } else if (strcmp(bt, "tool_use") == 0) {
            const char *name = str_field(b, "name");
            if (schema && name && strcmp(name, schema) == 0) {
                if (!schema_json)
                    schema_json = compact_input(b);
                continue;
            }
            real_tools++;
            if (o->legacy_functions) {
                if (!function_call)
                    function_call = function_obj(name, compact_input(b));
                continue;
            }
            const char *id = str_field(b, "id");
            json_object *tc = json_object_new_object();
            json_object_object_add(tc, "id", json_object_new_string(id ? id : ""));
            json_object_object_add(tc, "type", json_object_new_string("function"));
            json_object_object_add(tc, "function", function_obj(name, compact_input(b)));
            if (!tool_calls)
                tool_calls = json_object_new_array();
            json_object_array_add(tool_calls, tc);
        }
        /* other blocks (server tools, citations...) carry nothing an OpenAI client reads */
    }

    const char *reason = finish_reason(str_field(msg, "stop_reason"), o->legacy_functions);
    if (stopped || (schema_json && !real_tools && strcmp(reason, "length") != 0 &&
                    strcmp(reason, "content_filter") != 0))
        reason = "stop";

    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string("assistant"));
    if (schema_json) {
        json_object_object_add(m, "content", schema_json);
        schema_json = NULL;
    } else if (text_len || (!tool_calls && !function_call)) {
        json_object_object_add(m, "content",
                               json_object_new_string_len(text ? text : "", (int)text_len));
    } else {
        json_object_object_add(m, "content", NULL);
    }
    json_object_object_add(m, "refusal", NULL);
    if (has_reasoning)
        json_object_object_add(
            m, "reasoning_content",
            json_object_new_string_len(reasoning ? reasoning : "", (int)reasoning_len));
    if (thinking) {
        json_object_object_add(m, "thinking_blocks", thinking);
        thinking = NULL;
    }
    if (tool_calls) {
        json_object_object_add(m, "tool_calls", tool_calls);
        tool_calls = NULL;
    }
    if (function_call) {
        json_object_object_add(m, "function_call", function_call);
        function_call = NULL;
    }

    json_object *choice = json_object_new_object();
    json_object_object_add(choice, "index", json_object_new_int(o->choice));
    json_object_object_add(choice, "message", m);
    json_object_object_add(choice, "logprobs", NULL);
    json_object_object_add(choice, "finish_reason", json_object_new_string(reason));
    json_object *choices = json_object_new_array();
    json_object_array_add(choices, choice);

    struct anthropic_usage mu = {0, 0, 0, 0};
    json_object *usage;
    if (json_object_object_get_ex(msg, "usage", &usage))
        read_usage(usage, &mu);
    if (u) {
        u->input += mu.input;
        u->output += mu.output;
        u->cache_read += mu.cache_read;
        u->cache_write += mu.cache_write;
    }

    out = json_object_new_object();
    json_object_object_add(out, "id", json_object_new_string(o->id ? o->id : ""));
    json_object_object_add(out, "object", json_object_new_string("chat.completion"));
    json_object_object_add(out, "created", json_object_new_int64(o->created));
    json_object_object_add(out, "model", json_object_new_string(o->model ? o->model : ""));
    json_object_object_add(out, "choices", choices);
    json_object_object_add(out, "usage", anthropic_usage_json(&mu));
    goto done;
fail:
    out = NULL;
done:
    json_object_put(tool_calls);
    json_object_put(thinking);
    json_object_put(function_call);
    json_object_put(schema_json);
    free(text);
    free(reasoning);
    return out;
}

/* ---- stream ---- */

enum block {
    B_NONE,     /* no block open */
    B_TEXT,     /* text: deltas are content */
    B_THINKING, /* thinking: deltas are reasoning_content, text and signature kept */
    B_TOOL,     /* a client-visible tool call (or the legacy function call) */
    B_SCHEMA,   /* the response_format tool: its input is the content */
    B_SKIP      /* anything else: ignored (redacted thinking was sent at its start) */
};

enum state { S_RUNNING, S_DONE, S_FAILED };

struct anthropic_stream {
    struct anthropic_opts o; /* strings point at the copies below */
    char *model, *id, *schema;
    anthropic_emit_fn emit;
    void *ctx;

    enum state state;
    int rc;        /* the code returned again once failed */
    int role_sent; /* the role chunk went out */

    enum block block; /* the open content block */
    long long block_index;
    int tool_index;    /* dense OpenAI index of the open tool call */
    int tool_has_args; /* the open tool call got a non-empty argument fragment */
    int next_tool;     /* next dense tool-call index */
    int real_tools;    /* client-visible tool calls emitted */
    int schema_seen;   /* the response_format tool was answered */
    struct buf thinking, signature;

    size_t maxstop;  /* longest local stop, 0 if none */
    struct buf hold; /* text held back so a stop split across deltas is still seen */

    char stop_reason[REASON_MAX];
    int has_stop_reason;
    struct anthropic_usage usage;
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* anthropic_stream_new: copies o's strings (model, id, schema_tool); local_stops stays borrowed.
 * Free with anthropic_stream_free. NULL when memory ran out. */
struct anthropic_stream *anthropic_stream_new(const struct anthropic_opts *o,
                                              anthropic_emit_fn emit, void *ctx)
{
    struct anthropic_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->o = *o;
    s->model = dup_or_null(o->model ? o->model : "");
    s->id = dup_or_null(o->id ? o->id : "");
    s->schema = dup_or_null(o->schema_tool && *o->schema_tool ? o->schema_tool : NULL);
    if (!s->model || !s->id || (o->schema_tool && *o->schema_tool && !s->schema)) {
        anthropic_stream_free(s);
        return NULL;
    }
    s->o.model = s->model;
    s->o.id = s->id;
    s->o.schema_tool = s->schema;
    s->emit = emit;
    s->ctx = ctx;
    s->state = S_RUNNING;
    buf_init(&s->thinking, THINKING_MAX);
    buf_init(&s->signature, SIGNATURE_MAX);
    s->maxstop = stops_maxlen(o->local_stops);
    buf_init(&s->hold, s->maxstop ? s->maxstop + 3 : 0);
    return s;
}

/* anthropic_stream_free releases s; NULL is a no-op. */
void anthropic_stream_free(struct anthropic_stream *s)
{
    if (!s)
        return;
    buf_free(&s->thinking);
    buf_free(&s->signature);
    buf_free(&s->hold);
    free(s->model);
    free(s->id);
    free(s->schema);
    free(s);
}

/* anthropic_stream_usage copies the usage seen so far (message_start, then the cumulative
 * message_delta counts: the last value of each counter wins). */
void anthropic_stream_usage(const struct anthropic_stream *s, struct anthropic_usage *u)
{
    *u = s->usage;
}

/* send_json serialises obj (taken) and hands it to the client. */
static int send_json(struct anthropic_stream *s, json_object *obj)
{
    if (!obj)
        return OAI_ENOMEM;
    size_t len;
    const char *txt = util_json_plain(obj, &len);
    int rc = txt ? s->emit(s->ctx, txt, len) : OAI_ENOMEM;
    json_object_put(obj);
    return rc < 0 ? rc : 0;
}

/* send_chunk emits one chat.completion.chunk with delta (taken) and finish (NULL: null). */
static int send_chunk(struct anthropic_stream *s, json_object *delta, const char *finish)
{
    return send_json(s, openai_chunk(s->id, s->o.created, s->model, s->o.choice, delta, finish));
}

static int send_role(struct anthropic_stream *s)
{
    if (s->role_sent)
        return 0;
    s->role_sent = 1;
    json_object *d = json_object_new_object();
    json_object_object_add(d, "role", json_object_new_string("assistant"));
    json_object_object_add(d, "content", json_object_new_string(""));
    return send_chunk(s, d, NULL);
}

/* send_delta1 emits a delta with one member key = val (taken), after the role chunk. */
static int send_delta1(struct anthropic_stream *s, const char *key, json_object *val)
{
    int rc = send_role(s);
    if (rc) {
        json_object_put(val);
        return rc;
    }
    json_object *d = json_object_new_object();
    json_object_object_add(d, key, val);
    return send_chunk(s, d, NULL);
}

static int send_content(struct anthropic_stream *s, const char *t, size_t n)
{
    if (n == 0)
        return 0;
    return send_delta1(s, "content", json_object_new_string_len(t, (int)n));
}

static int send_error(struct anthropic_stream *s, const char *message, const char *type,
                      const char *code)
{
    json_object *e = json_object_new_object();
    json_object_object_add(e, "message", json_object_new_string(message));
    json_object_object_add(e, "type", json_object_new_string(type));
    json_object_object_add(e, "param", NULL);
    json_object_object_add(e, "code", code ? json_object_new_string(code) : NULL);
    json_object *root = json_object_new_object();
    json_object_object_add(root, "error", e);
    return send_json(s, root);
}

/* flush_hold sends the held-back text (at the end, or before other content must follow it). */
static int flush_hold(struct anthropic_stream *s)
{
    int rc = send_content(s, s->hold.data, s->hold.len);
    buf_reset(&s->hold);
    return rc;
}

/* send_finish emits the held-back text, then the one chunk carrying finish_reason. */
static int send_finish(struct anthropic_stream *s, const char *finish)
{
    int rc = flush_hold(s);
    if (!rc)
        rc = send_role(s);
    if (!rc)
        rc = send_chunk(s, json_object_new_object(), finish);
    return rc;
}

/* text goes out at once, or through the holdback when local stops are enforced. Returns
 * ANTHROPIC_STREAM_DONE when a stop matched (the text before it and the finish chunk sent). */
static int on_text(struct anthropic_stream *s, const char *t, size_t n)
{
    if (n == 0)
        return 0;
    if (!s->maxstop)
        return send_content(s, t, n);

    size_t wlen = s->hold.len + n, pos;
    char *w = malloc(wlen + 1);
    if (!w)
        return OAI_ENOMEM;
    if (s->hold.len)
        memcpy(w, s->hold.data, s->hold.len);
    memcpy(w + s->hold.len, t, n);
    w[wlen] = '\0';
    buf_reset(&s->hold);
    int rc;
    if (find_stop(s->o.local_stops, w, wlen, 0, &pos)) {
        rc = send_content(s, w, pos);
        if (!rc)
            rc = send_finish(s, "stop");
        if (!rc)
            rc = ANTHROPIC_STREAM_DONE;
        goto done;
    }
    /* keep the last maxstop - 1 bytes (a stop's possible beginning), whole UTF-8 characters */
    size_t keep = s->maxstop - 1 < wlen ? s->maxstop - 1 : wlen;
    size_t split = wlen - keep;
    while (split > 0 && split < wlen && ((unsigned char)w[split] & 0xC0) == 0x80)
        split--;
    rc = send_content(s, w, split);
    if (!rc)
        rc = buf_add(&s->hold, w + split, wlen - split);
done:
    free(w);
    return rc;
}

static json_object *tool_header(int index, const char *id, const char *name)
{
    json_object *tc = json_object_new_object();
    json_object_object_add(tc, "index", json_object_new_int(index));
    json_object_object_add(tc, "id", json_object_new_string(id ? id : ""));
    json_object_object_add(tc, "type", json_object_new_string("function"));
    json_object *f = json_object_new_object();
    json_object_object_add(f, "name", json_object_new_string(name ? name : ""));
    json_object_object_add(f, "arguments", json_object_new_string(""));
    json_object_object_add(tc, "function", f);
    json_object *arr = json_object_new_array();
    json_object_array_add(arr, tc);
    return arr;
}

/* on_args sends one argument fragment of the open tool call (or schema tool). */
static int on_args(struct anthropic_stream *s, const char *frag, size_t n)
{
    if (n == 0)
        return 0;
    if (s->block == B_SCHEMA) {
        s->tool_has_args = 1;
        int rc = flush_hold(s); /* the JSON follows any text already given */
        return rc ? rc : send_content(s, frag, n);
    }
    if (s->block != B_TOOL)
        return 0;
    s->tool_has_args = 1;
    json_object *args = json_object_new_string_len(frag, (int)n);
    if (s->o.legacy_functions) {
        json_object *f = json_object_new_object();
        json_object_object_add(f, "arguments", args);
        return send_delta1(s, "function_call", f);
    }
    json_object *tc = json_object_new_object();
    json_object_object_add(tc, "index", json_object_new_int(s->tool_index));
    json_object *f = json_object_new_object();
    json_object_object_add(f, "arguments", args);
    json_object_object_add(tc, "function", f);
    json_object *arr = json_object_new_array();
    json_object_array_add(arr, tc);
    return send_delta1(s, "tool_calls", arr);
}

/* close_block finishes the open block: "{}" for an argument-less call, the whole thinking
 * block with its signature. */
static int close_block(struct anthropic_stream *s)
{
    int rc = 0;
    enum block b = s->block;
    if ((b == B_TOOL || b == B_SCHEMA) && !s->tool_has_args)
        rc = on_args(s, "{}", 2);
    if (b == B_THINKING) {
        json_object *tb = json_object_new_object();
        json_object_object_add(tb, "type", json_object_new_string("thinking"));
        json_object_object_add(tb, "thinking",
                               json_object_new_string_len(s->thinking.data ? s->thinking.data : "",
                                                          (int)s->thinking.len));
        json_object_object_add(
            tb, "signature",
            json_object_new_string_len(s->signature.data ? s->signature.data : "",
                                       (int)s->signature.len));
        json_object *arr = json_object_new_array();
        json_object_array_add(arr, tb);
        rc = send_delta1(s, "thinking_blocks", arr);
        buf_free(&s->thinking);
        buf_free(&s->signature);
    }
    s->block = B_NONE;
    s->tool_has_args = 0;
    return rc;
}

static int thinking_too_large(struct anthropic_stream *s, int rc)
{
    if (rc != OAI_ELIMIT)
        return rc;
    int e = send_error(s, "a thinking block was larger than the gateway's limit", "server_error",
                       "upstream_limit");
    return e ? e : OAI_ELIMIT;
}

static int on_thinking(struct anthropic_stream *s, const char *t, size_t n)
{
    if (n == 0)
        return 0;
    if (s->block == B_THINKING) {
        int rc = buf_add(&s->thinking, t, n);
        if (rc)
            return thinking_too_large(s, rc);
    }
    return send_delta1(s, "reasoning_content", json_object_new_string_len(t, (int)n));
}

static int on_block_start(struct anthropic_stream *s, json_object *ev)
{
    int rc = 0;
    json_object *cb = NULL, *idx = NULL;
    if (s->block != B_NONE) {
        rc = close_block(s); /* the upstream skipped content_block_stop */
        if (rc)
            return rc;
    }
    json_object_object_get_ex(ev, "content_block", &cb);
    s->block_index = json_object_object_get_ex(ev, "index", &idx) ? json_object_get_int64(idx) : -1;
    const char *bt = str_field(cb, "type");
    s->block = B_SKIP;
    s->tool_has_args = 0;
    if (!bt)
        return 0;
    size_t n;
    const char *t;
    if (strcmp(bt, "text") == 0) {
        s->block = B_TEXT;
        t = str_len_field(cb, "text", &n);
        return on_text(s, t, n);
    }
    if (strcmp(bt, "thinking") == 0) {
        s->block = B_THINKING;
        buf_reset(&s->thinking);
        buf_reset(&s->signature);
        t = str_len_field(cb, "signature", &n);
        rc = n ? buf_add(&s->signature, t, n) : 0;
        if (rc)
            return thinking_too_large(s, rc);
        t = str_len_field(cb, "thinking", &n);
        return on_thinking(s, t, n);
    }
    if (strcmp(bt, "redacted_thinking") == 0) {
        json_object *copy = NULL, *arr;
        if (json_object_deep_copy(cb, &copy, NULL) != 0)
            return OAI_ENOMEM;
        arr = json_object_new_array();
        json_object_array_add(arr, copy);
        return send_delta1(s, "thinking_blocks", arr);
    }
    if (strcmp(bt, "tool_use") != 0)
        return 0; /* server tool results and future block types: nothing to say */

    const char *name = str_field(cb, "name");
    if (s->schema && name && strcmp(name, s->schema) == 0) {
        s->block = B_SCHEMA;
        s->schema_seen = 1;
    } else if (s->o.legacy_functions) {
        if (s->real_tools > 0)
            return 0; /* a legacy client gets the first call only */
        s->block = B_TOOL;
        s->real_tools++;
        json_object *f = json_object_new_object();
        json_object_object_add(f, "name", json_object_new_string(name ? name : ""));
        json_object_object_add(f, "arguments", json_object_new_string(""));
        rc = send_delta1(s, "function_call", f);
    } else {
        s->block = B_TOOL;
        s->tool_index = s->next_tool++;
        s->real_tools++;
        rc = send_delta1(s, "tool_calls", tool_header(s->tool_index, str_field(cb, "id"), name));
    }
    /* the start block's input is {} in practice; anything else is the first fragment */
    json_object *input = NULL;
    if (!rc && json_object_object_get_ex(cb, "input", &input) &&
        json_object_is_type(input, json_type_object) && json_object_object_length(input) > 0) {
        size_t len;
        const char *txt = util_json_plain(input, &len);
        rc = on_args(s, txt, len);
    }
    return rc;
}

static int on_block_delta(struct anthropic_stream *s, json_object *ev)
{
    json_object *d = NULL, *idx = NULL;
    if (!json_object_object_get_ex(ev, "delta", &d))
        return 0;
    if (json_object_object_get_ex(ev, "index", &idx) && s->block != B_NONE &&
        json_object_get_int64(idx) != s->block_index)
        return 0; /* not the open block: nothing sensible to attach it to */
    const char *dt = str_field(d, "type");
    size_t n;
    const char *t;
    if (!dt)
        return 0;
    if (strcmp(dt, "text_delta") == 0) {
        t = str_len_field(d, "text", &n);
        return on_text(s, t, n);
    }
    if (strcmp(dt, "input_json_delta") == 0) {
        t = str_len_field(d, "partial_json", &n);
        return on_args(s, t, n);
    }
    if (strcmp(dt, "thinking_delta") == 0) {
        t = str_len_field(d, "thinking", &n);
        return on_thinking(s, t, n);
    }
    if (strcmp(dt, "signature_delta") == 0 && s->block == B_THINKING) {
        t = str_len_field(d, "signature", &n);
        int rc = n ? buf_add(&s->signature, t, n) : 0;
        return thinking_too_large(s, rc);
    }
    return 0; /* citations_delta and future delta types */
}

static int on_message_delta(struct anthropic_stream *s, json_object *ev)
{
    json_object *d = NULL, *usage = NULL;
    if (json_object_object_get_ex(ev, "delta", &d)) {
        const char *r = str_field(d, "stop_reason");
        if (r) {
            snprintf(s->stop_reason, sizeof s->stop_reason, "%s", r);
            s->has_stop_reason = 1;
        }
    }
    if (json_object_object_get_ex(ev, "usage", &usage))
        read_usage(usage, &s->usage); /* counts are cumulative: the last value wins */
    return 0;
}

static int on_message_stop(struct anthropic_stream *s)
{
    int rc = 0;
    if (s->block != B_NONE)
        rc = close_block(s);
    if (rc)
        return rc;
    const char *r =
        finish_reason(s->has_stop_reason ? s->stop_reason : NULL, s->o.legacy_functions);
    if (s->schema_seen && !s->real_tools && strcmp(r, "length") != 0 &&
        strcmp(r, "content_filter") != 0)
        r = "stop";
    rc = send_finish(s, r);
    return rc ? rc : ANTHROPIC_STREAM_DONE;
}

static int on_error(struct anthropic_stream *s, json_object *ev)
{
    json_object *e = NULL;
    json_object_object_get_ex(ev, "error", &e);
    const char *etype = str_field(e, "type");
    const char *msg = str_field(e, "message");
    const char *status =
        str_field(e, "status"); /* Google's shape: {"error":{code,message,status}} */
    if (!etype && status && strcmp(status, "RESOURCE_EXHAUSTED") == 0)
        etype = "rate_limit_error";
    else if (!etype && status && strcmp(status, "UNAVAILABLE") == 0)
        etype = "overloaded_error";
    const char *type = "server_error", *code = etype;
    if (etype && strcmp(etype, "overloaded_error") == 0) {
        code = "server_is_overloaded";
    } else if (etype && strcmp(etype, "rate_limit_error") == 0) {
        type = "rate_limit_error";
        code = "rate_limit_exceeded";
    } else if (etype && strcmp(etype, "invalid_request_error") == 0) {
        type = "invalid_request_error";
    }
    int rc = flush_hold(s);
    if (!rc)
        rc =
            send_error(s, msg && *msg ? msg : "the upstream service reported an error", type, code);
    return rc ? rc : OAI_EUPSTREAM_STATUS;
}

static int dispatch(struct anthropic_stream *s, const char *name, json_object *ev)
{
    const char *type = str_field(ev, "type");
    if (!type)
        type = name;
    if (!type) {
        json_object *e;
        /* a Google-shaped error ({"error":{...}}) without a type */
        if (json_object_object_get_ex(ev, "error", &e))
            type = "error";
        else
            return 0;
    }
    if (strcmp(type, "message_start") == 0) {
        json_object *m = NULL, *usage = NULL;
        if (json_object_object_get_ex(ev, "message", &m) &&
            json_object_object_get_ex(m, "usage", &usage))
            read_usage(usage, &s->usage);
        return send_role(s);
    }
    if (strcmp(type, "content_block_start") == 0)
        return on_block_start(s, ev);
    if (strcmp(type, "content_block_delta") == 0)
        return on_block_delta(s, ev);
    if (strcmp(type, "content_block_stop") == 0)
        return s->block != B_NONE ? close_block(s) : 0;
    if (strcmp(type, "message_delta") == 0)
        return on_message_delta(s, ev);
    if (strcmp(type, "message_stop") == 0)
        return on_message_stop(s);
    if (strcmp(type, "error") == 0)
        return on_error(s, ev);
    return 0; /* ping and unknown events */
}

/* anthropic_stream_event: one upstream event (data[0..len) is its JSON; name may be NULL, the
 * JSON's "type" decides). Returns 0, ANTHROPIC_STREAM_DONE (again for every later event),
 * or a negative code that sticks: OAI_EUPSTREAM_STATUS, OAI_EBADJSON, OAI_ELIMIT (a thinking
 * block over THINKING_MAX) after an error object was emitted, or emit's own negative code. */
int anthropic_stream_event(struct anthropic_stream *s, const char *name, const char *data,
                           size_t len)
{
    json_object *ev = NULL;
    int rc;
    if (s->state == S_DONE)
        return ANTHROPIC_STREAM_DONE;
    if (s->state == S_FAILED)
        return s->rc;
    rc = util_parse_json(data ? data : "", data ? len : 0, &ev);
    if (rc || !json_object_is_type(ev, json_type_object)) {
        rc = flush_hold(s);
        if (!rc)
            rc = send_error(s, "the upstream sent an event that is not valid JSON", "server_error",
                            "upstream_bad_json");
        if (!rc)
            rc = OAI_EBADJSON;
        goto done;
    }
    rc = dispatch(s, name, ev);
done:
    json_object_put(ev);
    if (rc == ANTHROPIC_STREAM_DONE) {
        s->state = S_DONE;
    } else if (rc < 0) {
        s->state = S_FAILED;
        s->rc = rc;
    }
    return rc;
}

/* anthropic_stream_end: 0 after message_stop (or a local stop); the sticky failure code if the
 * stream already failed (no second error object); else the truncation error object and
 * OAI_ETRUNCATED. */
int anthropic_stream_end(struct anthropic_stream *s)
{
    int rc;
    if (s->state == S_DONE)
        return 0;
    if (s->state == S_FAILED)
        return s->rc;
    rc = flush_hold(s);
    if (!rc)
        rc = send_error(s, "the upstream stream ended before message_stop", "server_error",
                        "upstream_truncated");
    s->state = S_FAILED;
    s->rc = rc ? rc : OAI_ETRUNCATED;
    return s->rc;
}
