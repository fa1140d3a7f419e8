/*
 * openai.h - OpenAI Chat Completions request -> Anthropic Messages request (SPEC §5, §11, §12;
 * reference/wire-formats.md §1, §2.8; the pitfalls of reference/peers.md §3 and §4.4).
 *
 * The result is the platform-neutral Messages body: no "model", no "anthropic_version", no
 * "stream" (the platform unit - vertex, bedrock - adds what it needs).
 */
#ifndef OAI_OPENAI_H
#define OAI_OPENAI_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

struct openai_opts {
    long long default_max_tokens; /* DEFAULT_MAX_TOKENS */
    long long max_output_tokens;  /* MAX_OUTPUT_TOKENS, 0 = no clamp */
    long long max_choices;        /* MAX_CHOICES: n above it is a 400 */
    int hoist_system;             /* SYSTEM_MESSAGE_MODE=hoist */
    int model_flags;              /* catalog flags of the resolved model (CAT_*) */
};

struct openai_request {
    json_object *body;    /* the Anthropic Messages request; owned (openai_request_free) */
    int n;                /* choices wanted (1..max_choices) */
    int stream;           /* stream: true */
    int include_usage;    /* stream_options.include_usage */
    int legacy_functions; /* the client used functions/function_call: answer in that shape */
    char schema_tool[72]; /* response_format json_schema: the forced tool's name, else "" */
    json_object
        *local_stops; /* whitespace-only stop strings the gateway enforces; owned; may be NULL */
};

/* openai_translate translates the client's body (borrowed). On a client error it returns
 * OAI_EBADREQ and writes a message for the client into msg and the offending field's name
 * (e.g. "messages[2].content", "temperature") into param (both caller-owned buffers). */
__attribute__((warn_unused_result)) int
openai_translate(json_object *req, const struct openai_opts *o, struct openai_request *out,
                 char *msg, size_t msglen, char *param, size_t paramlen);
void openai_request_free(struct openai_request *r);

/* openai_chunk returns a new chat.completion.chunk {id, object, created, model, choices}: one
 * choice {index, delta (taken), logprobs: null, finish_reason (NULL: null)} when delta is given,
 * else "choices": []. */
json_object *openai_chunk(const char *id, int64_t created, const char *model, int index,
                          json_object *delta, const char *finish);

/* openai_usage_chunk returns the final usage chunk of a stream: choices [] and usage (taken). */
json_object *openai_usage_chunk(const char *id, int64_t created, const char *model,
                                json_object *usage);

#endif
