/*
 * bedrock.h - what Claude on AWS Bedrock needs around the shared Messages core
 * (reference/wire-formats.md §2.1, §4, §7.2): the model id (inference-profile prefix by the
 * key's region), the InvokeModel[WithResponseStream] URL and wire path, the body (no model, no
 * stream, anthropic_version, anthropic_beta in the body), the event-stream response turned back
 * into Anthropic events, and Bedrock's error names mapped to our statuses.
 */
#ifndef OAI_BEDROCK_H
#define OAI_BEDROCK_H

#include <json-c/json.h>
#include <stddef.h>

#include "translators/catalog.h"
#include "translators/eventstream.h"
#include "translators/sseparse.h"

/* bedrock_geo_prefix is the cross-region inference-profile prefix for a region ("us.", "eu.",
 * "apac.", "us-gov.", or "global." for regions outside those geographies). */
const char *bedrock_geo_prefix(const char *region);

/* bedrock_model_id writes the id to invoke: a client-sent Bedrock id or ARN as it is; a
 * catalogue model that Bedrock serves only through inference profiles gets the region's
 * prefix. Returns 0 or OAI_ELIMIT. */
int bedrock_model_id(const struct catalog_resolved *m, const char *region, char *out, size_t n);

/* bedrock_target writes the URL, the Host header value and the wire path (the model id
 * percent-encoded as one path label: ":" as %3A, "/" as %2F) for region. */
int bedrock_target(const char *region, const char *model_id, int stream, char *url, size_t un,
                   char *host, size_t hn, char *path, size_t pn);

/* bedrock_prepare edits a Messages body in place: removes "model" and "stream", sets
 * "anthropic_version", and sets "anthropic_beta" to betas (borrowed array of strings) when it
 * has entries. */
void bedrock_prepare(json_object *body, const char *version, json_object *betas);

/* bedrock_error maps a Bedrock error or exception name (x-amzn-ErrorType header value, possibly
 * with a ":..." suffix, or an event-stream :exception-type, either capitalisation) and the HTTP
 * status to our status and OpenAI error code. Unknown names fall back on the status. */
int bedrock_error(const char *name, long http_status, const char **code);

/* Called for each exception or error frame of a stream, already mapped. */
typedef int (*bedrock_exception_fn)(void *ctx, int http, const char *code, const char *message);

struct bedrock_stream {
    struct es_decoder es;
    sseparse_fn on_event;          /* each Anthropic event: name = its "type", data = its JSON */
    bedrock_exception_fn on_error; /* exception / error frames */
    void *ctx;
};

void bedrock_stream_init(struct bedrock_stream *s, sseparse_fn on_event,
                         bedrock_exception_fn on_error, void *ctx);
void bedrock_stream_free(struct bedrock_stream *s);
/* bedrock_stream_feed decodes n more response bytes: "chunk" events are unwrapped (base64
 * "bytes" -> the Anthropic event JSON) and handed to on_event; exception and error frames to
 * on_error. Returns 0, a callback's negative code, OAI_EBADFRAME (bad framing or CRC) or
 * OAI_EBADJSON (a chunk that is not the expected JSON). */
int bedrock_stream_feed(struct bedrock_stream *s, const char *p, size_t n);

#endif
