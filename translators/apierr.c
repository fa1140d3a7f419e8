#include "translators/apierr.h"

#include "common/err.h"

static const char *openai_type(int http)
{
    if (http == 401)
        return "authentication_error";
    if (http == 403)
        return "permission_error";
    if (http == 429)
        return "rate_limit_error";
    if (http >= 500)
        return "server_error";
    return "invalid_request_error";
}

static const char *anthropic_type(int http)
{
    switch (http) {
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 503:
    case 529:
        return "overloaded_error";
    default:
        return http >= 500 ? "api_error" : "invalid_request_error";
    }
}

const char *apierr_code(int err)
{
    switch (err) {
    case OAI_EBADJSON:
        return "invalid_json";
    case OAI_EBADREQ:
    case OAI_ECLIENTIO:
        return "invalid_request";
    case OAI_ETOOBIG:
        return "request_too_large";
    case OAI_ENOTFOUND:
        return "not_found";
    case OAI_EMETHOD:
        return "method_not_allowed";
    case OAI_EUNAUTH:
        return "invalid_api_key";
    case OAI_ENOKEYS:
        return "no_keys";
    case OAI_ECONFIG:
        return "config_error";
    default:
        return "internal_error";
    }
}

json_object *apierr_body(enum api api, int http, const char *code, const char *message,
                         const char *param)
{
    json_object *err = json_object_new_object();
    json_object *root = json_object_new_object();
    if (api == API_ANTHROPIC) {
        json_object_object_add(root, "type", json_object_new_string("error"));
        json_object_object_add(err, "type", json_object_new_string(anthropic_type(http)));
        json_object_object_add(err, "message", json_object_new_string(message));
    } else {
        json_object_object_add(err, "message", json_object_new_string(message));
        json_object_object_add(err, "type", json_object_new_string(openai_type(http)));
        json_object_object_add(err, "param", param ? json_object_new_string(param) : NULL);
        json_object_object_add(err, "code", code ? json_object_new_string(code) : NULL);
    }
    json_object_object_add(root, "error", err);
    return root;
}

int apierr_upstream(long status, const char **code)
{
    switch (status) {
    case 400:
    case 422:
        *code = "invalid_request";
        return 400;
    case 401:
        *code = "upstream_auth_failed";
        return 502;
    case 403:
        *code = "model_access_denied";
        return 403;
    case 404:
        *code = "model_not_found";
        return 404;
    case 408:
        *code = "timeout";
        return 504;
    case 413:
        *code = "request_too_large";
        return 413;
    case 429:
        *code = "rate_limit_exceeded";
        return 429;
    case 503:
    case 529:
        *code = "server_is_overloaded";
        return 503;
    default:
        *code = "upstream_error";
        return 502;
    }
}
