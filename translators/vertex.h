/*
 * vertex.h - what Claude on Vertex AI needs of a Messages request (wire-formats §2.1, §3.1):
 * the rawPredict / streamRawPredict URL for a location, and the body with the model moved to
 * the URL, anthropic_version set and the stream flag as the method expects.
 */
#ifndef OAI_VERTEX_H
#define OAI_VERTEX_H

#include <json-c/json.h>
#include <stddef.h>

/* vertex_url writes the endpoint for project, location (a region such as "us-east5", "global",
 * or the multi-regions "us"/"eu") and model id (sent literally, "@" included). Returns 0, or
 * OAI_EBADREQ when a part holds a character that cannot appear in a path segment. */
int vertex_url(const char *project, const char *location, const char *model, int stream, char *out,
               size_t n);

/* vertex_prepare edits a Messages body in place: removes "model", sets "anthropic_version",
 * sets "stream": true when streaming and removes it otherwise. */
void vertex_prepare(json_object *body, const char *version, int stream);

#endif
