#include "translators/apierr.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"

/* A longer message is cut (at a character boundary) in an error completion's text. */
#define COMPLETION_MESSAGE_MAX (16 * 1024)

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

/* ---- seed-compatible error completions ------------------------------------------------------ */

/* What every shape of one error completion shares. */
struct fake {
    char title[96];
    const char *id;    /* the request id, "" if none */
    const char *model; /* the client's model or "unknown" */
    int64_t created;   /* Unix seconds */
    json_object *text; /* the markdown text as a JSON string; owned */
};

static const char *reason_phrase(int http)
{
    const char *r = util_http_reason(http);
    return r ? r : "Error";
}

void apierr_completion_title(int http, char *out, size_t n)
{
    snprintf(out, n, "Proxy error (HTTP %d %s)", http, reason_phrase(http));
}

/* fake_init fills f for one error; f->text is NULL if the text could not be built. */
static void fake_init(struct fake *f, enum api api, int http, const char *code, const char *message,
                      const char *id, const char *model)
{
    apierr_completion_title(http, f->title, sizeof f->title);
    f->id = id ? id : "";
    f->model = model && *model ? model : "unknown";
    f->created = util_now_ms() / 1000;
    f->text = NULL;
    if (!code)
        code = api == API_ANTHROPIC ? anthropic_type(http) : openai_type(http);
    if (!message)
        message = "";
    size_t mlen = strlen(message);
    if (mlen > COMPLETION_MESSAGE_MAX) {
        mlen = COMPLETION_MESSAGE_MAX;
        while (mlen > 0 && ((unsigned char)message[mlen] & 0xC0) == 0x80)
            mlen--; /* never split a UTF-8 sequence */
    }
    struct buf b;
    buf_init(&b, strlen(f->title) + mlen + strlen(code) + sizeof APIERR_MARKER + 32);
    if (buf_printf(&b, "### **%s**\n\n%.*s\n\n----\n\n*%s*\n\n" APIERR_MARKER, f->title, (int)mlen,
                   message, code) == 0)
        f->text = json_object_new_string_len(b.data, (int)b.len);
    buf_free(&b);
}

/* prefixed returns a new JSON string prefix + f->id. */
static json_object *prefixed(const char *prefix, const struct fake *f)
{
    char s[160];
    snprintf(s, sizeof s, "%s%.128s", prefix, f->id);
    return json_object_new_string(s);
}

/* zero_usage returns a new usage object with each named counter 0 (names NULL-terminated). */
static json_object *zero_usage(const char *const *names)
{
    json_object *u = json_object_new_object();
    for (; *names; names++)
        json_object_object_add(u, *names, json_object_new_int(0));
    return u;
}

/* openai_fake returns a new chat.completion (chunk: a chat.completion.chunk) carrying f's text
 * (the reference is taken from f). */
static json_object *openai_fake(struct fake *f, int chunk)
{
    static const char *const usage[] = {"prompt_tokens", "completion_tokens", "total_tokens", NULL};
    json_object *root = json_object_new_object(), *choices = json_object_new_array();
    json_object *choice = json_object_new_object(), *msg = json_object_new_object();
    json_object_object_add(root, "id", prefixed(chunk ? "chatcmpl-" : "error-", f));
    json_object_object_add(
        root, "object",
        json_object_new_string(chunk ? "chat.completion.chunk" : "chat.completion"));
    json_object_object_add(root, "created", json_object_new_int64(f->created));
    json_object_object_add(root, "model", json_object_new_string(f->model));
    json_object_object_add(msg, "role", json_object_new_string("assistant"));
    json_object_object_add(msg, "content", f->text);
    f->text = NULL;
    json_object_object_add(choice, "index", json_object_new_int(0));
    json_object_object_add(choice, chunk ? "delta" : "message", msg);
    json_object_object_add(choice, "finish_reason", json_object_new_string(f->title));
    if (!chunk)
        json_object_object_add(choice, "logprobs", NULL);
    json_object_array_add(choices, choice);
    json_object_object_add(root, "choices", choices);
    if (!chunk)
        json_object_object_add(root, "usage", zero_usage(usage));
    return root;
}

/* anthropic_message returns a new Messages message for f: with the text as its one content
 * block (the reference is taken from f) and stop_reason end_turn, or (start) as message_start
 * carries it: empty content, stop_reason null. */
static json_object *anthropic_message(struct fake *f, int start)
{
    static const char *const usage[] = {"input_tokens", "output_tokens", NULL};
    json_object *m = json_object_new_object(), *content = json_object_new_array();
    json_object_object_add(m, "id", prefixed("msg_error_", f));
    json_object_object_add(m, "type", json_object_new_string("message"));
    json_object_object_add(m, "role", json_object_new_string("assistant"));
    json_object_object_add(m, "model", json_object_new_string(f->model));
    if (!start) {
        json_object *block = json_object_new_object();
        json_object_object_add(block, "type", json_object_new_string("text"));
        json_object_object_add(block, "text", f->text);
        f->text = NULL;
        json_object_array_add(content, block);
    }
    json_object_object_add(m, "content", content);
    json_object_object_add(m, "stop_reason", start ? NULL : json_object_new_string("end_turn"));
    json_object_object_add(m, "stop_sequence", NULL);
    json_object_object_add(m, "usage", zero_usage(usage));
    return m;
}

json_object *apierr_completion(enum api api, int http, const char *code, const char *message,
                               const char *id, const char *model)
{
    struct fake f;
    fake_init(&f, api, http, code, message, id, model);
    if (!f.text)
        return NULL;
    return api == API_ANTHROPIC ? anthropic_message(&f, 0) : openai_fake(&f, 0);
}

/* The Messages stream, in order. */
static const char *const anthropic_events[] = {"message_start",       "content_block_start",
                                               "content_block_delta", "content_block_stop",
                                               "message_delta",       "message_stop"};

/* anthropic_event returns a new event object for anthropic_events[step] (the delta takes the
 * text's reference from f). */
static json_object *anthropic_event(struct fake *f, unsigned step)
{
    json_object *ev = json_object_new_object(), *o = NULL;
    json_object_object_add(ev, "type", json_object_new_string(anthropic_events[step]));
    switch (step) {
    case 0:
        json_object_object_add(ev, "message", anthropic_message(f, 1));
        break;
    case 1:
        o = json_object_new_object();
        json_object_object_add(o, "type", json_object_new_string("text"));
        json_object_object_add(o, "text", json_object_new_string(""));
        json_object_object_add(ev, "index", json_object_new_int(0));
        json_object_object_add(ev, "content_block", o);
        break;
    case 2:
        o = json_object_new_object();
        json_object_object_add(o, "type", json_object_new_string("text_delta"));
        json_object_object_add(o, "text", f->text);
        f->text = NULL;
        json_object_object_add(ev, "index", json_object_new_int(0));
        json_object_object_add(ev, "delta", o);
        break;
    case 3:
        json_object_object_add(ev, "index", json_object_new_int(0));
        break;
    case 4:
        o = json_object_new_object();
        json_object_object_add(o, "stop_reason", json_object_new_string("end_turn"));
        json_object_object_add(o, "stop_sequence", NULL);
        json_object_object_add(ev, "delta", o);
        o = json_object_new_object();
        json_object_object_add(o, "output_tokens", json_object_new_int(0));
        json_object_object_add(ev, "usage", o);
        break;
    default:
        break;
    }
    return ev;
}

/* send_json emits obj (taken) as one event named name. */
static int send_json(apierr_emit_fn emit, void *ctx, const char *name, json_object *obj)
{
    size_t len = 0;
    const char *txt = obj ? util_json_plain(obj, &len) : NULL;
    int rc = txt ? emit(ctx, name, txt, len) : OAI_ENOMEM;
    json_object_put(obj);
    return rc;
}

int apierr_completion_events(enum api api, int http, const char *code, const char *message,
                             const char *id, const char *model, apierr_emit_fn emit, void *ctx)
{
    struct fake f;
    fake_init(&f, api, http, code, message, id, model);
    int rc = f.text ? 0 : OAI_ENOMEM;
    if (rc == 0 && api == API_ANTHROPIC) {
        for (unsigned i = 0; rc == 0 && i < sizeof anthropic_events / sizeof *anthropic_events; i++)
            rc = send_json(emit, ctx, anthropic_events[i], anthropic_event(&f, i));
    } else if (rc == 0) {
        rc = send_json(emit, ctx, NULL, openai_fake(&f, 1));
        if (rc == 0)
            rc = emit(ctx, NULL, "[DONE]", 6);
    }
    json_object_put(f.text); /* still held if the sequence stopped before the text */
    return rc;
}
