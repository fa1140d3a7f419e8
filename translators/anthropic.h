/*
 * anthropic.h - Anthropic Messages responses -> OpenAI Chat Completions (SPEC §5, §6, §11, §12;
 * reference/wire-formats.md §1.4-§1.6, §2.5-§2.7), and the normalisation shared by the
 * OpenAI-translated and the native /messages requests.
 */
#ifndef OAI_ANTHROPIC_H
#define OAI_ANTHROPIC_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

/* Token usage as the upstream reported it. */
struct anthropic_usage {
    long long input, output, cache_read, cache_write;
};

/* What the client asked for, for shaping the answer. */
struct anthropic_opts {
    const char *model;        /* the model name the client sent (echoed back) */
    const char *id;           /* "chatcmpl-..." shared by every chunk */
    int64_t created;          /* Unix seconds shared by every chunk */
    int choice;               /* choices[].index (n fan-out) */
    int legacy_functions;     /* answer with message.function_call / finish_reason function_call */
    const char *schema_tool;  /* response_format json_schema tool name: its input becomes the
                                 content, finish_reason stop, no tool_calls; "" or NULL if none */
    json_object *local_stops; /* borrowed array of stop strings the gateway enforces, or NULL */
};

/* ---- non-stream ---- */

/* anthropic_to_openai turns an upstream Messages response (borrowed) into a new
 * chat.completion object for choice o->choice (content = all text blocks joined; every
 * tool_use -> tool_calls with JSON-text arguments, "{}" when empty; reasoning_content and
 * thinking_blocks (SPEC §11); finish_reason mapped; usage with prompt = input + cache read +
 * cache write and prompt_tokens_details.cached_tokens). local stops cut the content at the first
 * match (finish_reason "stop"). Adds the usage to *u. Returns NULL if msg is not a message. */
json_object *anthropic_to_openai(json_object *msg, const struct anthropic_opts *o,
                                 struct anthropic_usage *u);

/* ---- stream ---- */

/* emit receives one OpenAI chunk (JSON text, written by the caller as "data: ...\n\n"), or an
 * error object {"error":{...}}. A negative return (client gone) is passed back up. */
typedef int (*anthropic_emit_fn)(void *ctx, const char *json, size_t len);

struct anthropic_stream;

/* anthropic_stream_new starts translating one upstream SSE stream (o is copied; local_stops
 * borrowed for the stream's life). NULL on allocation failure. */
struct anthropic_stream *anthropic_stream_new(const struct anthropic_opts *o,
                                              anthropic_emit_fn emit, void *ctx);
void anthropic_stream_free(struct anthropic_stream *s);

/* anthropic_stream_event feeds one upstream SSE event (name may be NULL; data = its JSON).
 * Emits: the role chunk on message_start; delta.content for text; delta.reasoning_content for
 * thinking and one delta with thinking_blocks (the whole block with its signature) when a
 * thinking block ends; tool calls with dense indexes from 0 (id/type/name on the first
 * fragment, argument fragments after, "{}" when a call has no arguments); one finish chunk at
 * message_stop. Returns 0; ANTHROPIC_STREAM_DONE once message_stop was handled or a local stop
 * sequence matched (the caller aborts the upstream); OAI_EUPSTREAM_STATUS after an upstream
 * "error" event (an OpenAI error object was emitted); OAI_EBADJSON for garbage (an error object
 * was emitted); or emit's negative code. Memory stays bounded whatever the stream's length. */
#define ANTHROPIC_STREAM_DONE 1
int anthropic_stream_event(struct anthropic_stream *s, const char *name, const char *data,
                           size_t len);

/* anthropic_stream_end is called at the end of the upstream body. If the stream was not done
 * it emits an error object (truncated stream) and returns OAI_ETRUNCATED, else 0. */
int anthropic_stream_end(struct anthropic_stream *s);

/* anthropic_stream_usage reports the usage seen so far (cumulative message_delta counts). */
void anthropic_stream_usage(const struct anthropic_stream *s, struct anthropic_usage *u);

/* ---- shared ---- */

/* Token counts from an upstream are clamped to [0, ANTHROPIC_TOKENS_MAX], so that sums of them
 * (prompt + cache + output, over choices and requests) can never overflow. */
#define ANTHROPIC_TOKENS_MAX 1000000000000000LL
long long anthropic_token_count(json_object *v);

/* anthropic_usage_json returns a new OpenAI usage object for u. */
json_object *anthropic_usage_json(const struct anthropic_usage *u);

/* anthropic_normalize applies the rules both request paths share (SPEC §12) to a Messages
 * request body in place: drop top_p when temperature is also set and model_flags has
 * CAT_NO_TEMP_AND_TOP_P; drop top_k 0; drop empty text blocks (with or without cache_control)
 * from system and message content, omitting a system left empty; clamp max_tokens to
 * max_output_tokens when that is > 0. */
void anthropic_normalize(json_object *body, int model_flags, long long max_output_tokens);

/* anthropic_betas filters a comma-separated anthropic-beta header value: trims entries, drops
 * empty ones and those named in drop (comma list, may be NULL). Returns a new JSON array of
 * strings (possibly empty). */
json_object *anthropic_betas(const char *header, const char *drop);

/* anthropic_error_message extracts a readable message from an upstream error body (Anthropic
 * {"type":"error","error":{...}}, Google {"error":{"message",...}} or [{"error":...}]), into
 * out; falls back to "upstream HTTP <status>". */
void anthropic_error_message(const char *body, size_t len, long status, char *out, size_t n);

#endif
