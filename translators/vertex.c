#include "translators/vertex.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"

static int segment_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (*s <= ' ' || strchr("/?#%\\\"<>", *s) || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

int vertex_url(const char *project, const char *location, const char *model, int stream, char *out,
               size_t n)
{
    if (!segment_ok(project) || !segment_ok(location) || !segment_ok(model))
        return OAI_EBADREQ;
    char host[128];
    if (strcmp(location, "global") == 0)
        snprintf(host, sizeof host, "aiplatform.googleapis.com");
    else if (strcmp(location, "us") == 0 || strcmp(location, "eu") == 0)
        snprintf(host, sizeof host, "aiplatform.%s.rep.googleapis.com", location);
    else
        snprintf(host, sizeof host, "%.64s-aiplatform.googleapis.com", location);
    int len =
        snprintf(out, n, "https://%s/v1/projects/%s/locations/%s/publishers/anthropic/models/%s:%s",
                 host, project, location, model, stream ? "streamRawPredict" : "rawPredict");
    return len < 0 || (size_t)len >= n ? OAI_EBADREQ : 0;
}

void vertex_prepare(json_object *body, const char *version, int stream)
{
    json_object_object_del(body, "model");
    json_object_object_add(body, "anthropic_version", json_object_new_string(version));
    if (stream)
        json_object_object_add(body, "stream", json_object_new_boolean(1));
    else
        json_object_object_del(body, "stream");
}
