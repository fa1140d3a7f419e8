/*
 * testmsg.h - SillyTavern's "test connection" message (SPEC §5, seed-behaviour §7), answered
 * locally in every client format without touching a key.
 */
#ifndef OAI_TESTMSG_H
#define OAI_TESTMSG_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

/* testmsg_detect says whether a request body (borrowed) is the test message: exactly one
 * message with role "user" and string content "Hi"; or, without messages, a prompt that trimmed
 * equals "Human: Hi\n\nAssistant:" or starts with "Hi\n\n". */
int testmsg_detect(json_object *body);

/* testmsg_reply returns a new multi-format non-stream body (OpenAI chat completion, Anthropic
 * message and legacy completion fields at once) for model (may be NULL). */
json_object *testmsg_reply(const char *model, int64_t created_s);

/* An emitter writes one SSE event: name (NULL for a data-only event) and its data. Returns 0,
 * or a negative code that stops the stream (the client is gone). */
typedef int (*testmsg_emit_fn)(void *ctx, const char *name, const char *data, size_t len);

/* testmsg_stream_openai emits the OpenAI chunk stream: role chunk, "Hello!", finish chunk,
 * a usage chunk when include_usage, then [DONE]. id is the shared chunk id. */
int testmsg_stream_openai(const char *model, const char *id, int64_t created_s, int include_usage,
                          testmsg_emit_fn emit, void *ctx);

/* testmsg_stream_anthropic emits message_start ... message_stop for message id. */
int testmsg_stream_anthropic(const char *model, const char *id, testmsg_emit_fn emit, void *ctx);

#endif
