/*
 * estimate.h - a local, upstream-free estimate of what a request may cost in tokens, for quota
 * checks before it is sent (SPEC §11: estimated prompt tokens + requested output).
 */
#ifndef OAI_ESTIMATE_H
#define OAI_ESTIMATE_H

#include <json-c/json.h>
#include <stdint.h>

#define ESTIMATE_IMAGE_TOKENS 1600 /* Claude's cap per image (about 1568 px on the long side) */

/* estimate_prompt_tokens: about one token per 4 bytes of text anywhere in the request
 * (messages, system, tools), ESTIMATE_IMAGE_TOKENS per image, and a few per message. Works on
 * OpenAI chat and Anthropic Messages bodies alike. Errs high rather than low. */
int64_t estimate_prompt_tokens(json_object *body);

/* estimate_output_tokens: the output the request may produce: max_completion_tokens, else
 * max_tokens, else default_max; clamped to max_output when that is > 0; times n (choices). */
int64_t estimate_output_tokens(json_object *body, long long default_max, long long max_output);

#endif
