/* Unit tests for translators/openai (OpenAI request -> Anthropic Messages body) and the
 * request-side helpers of translators/anthropic (anthropic_normalize, anthropic_betas,
 * anthropic_error_message).
 *
 * Golden cases: $OAI_SRCDIR/tests/cases/openai/<case>/ holds request.json (the client's body),
 * expected.json (the upstream body) or error.txt (line 1: param, line 2: part of the message),
 * optional opts.json (struct openai_opts overrides - "model" picks the catalogue flags - and
 * the expected openai_request side fields), and README.txt (the rule proved). Every request is
 * also replayed with each value in it (top-level fields, messages, their fields, parts, ...)
 * replaced in turn by null, 1, "x", [] and {}: the translator must answer 0 or OAI_EBADREQ with
 * a message, never crash (run under ASan). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "translators/anthropic.h"
#include "translators/catalog.h"
#include "translators/openai.h"
#include "tests/unit/tap.h"

#define MAX_CASES 256
#define FILE_MAX  (1024 * 1024)

/* read_file returns the NUL-terminated contents of dir/name (free() it), or NULL. */
static char *read_file(const char *dir, const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, FILE_MAX, f) : 0;
    fclose(f);
    if (!buf)
        return NULL;
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static json_object *read_json(const char *dir, const char *name)
{
    size_t n = 0;
    char *s = read_file(dir, name, &n);
    json_object *j = NULL;
    if (s && util_parse_json(s, n, &j) != 0) {
        printf("# %s/%s: invalid JSON\n", dir, name);
        j = NULL;
    }
    free(s);
    return j;
}

static json_object *jget(json_object *o, const char *k)
{
    json_object *v = NULL;
    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, k, &v))
        return NULL;
    return v;
}

static long long opt_int(json_object *opts, const char *k, long long def)
{
    json_object *v = jget(opts, k);
    return v ? (long long)json_object_get_int64(v) : def;
}

static void default_opts(struct openai_opts *o)
{
    memset(o, 0, sizeof *o);
    o->default_max_tokens = 4096;
    o->max_choices = 4;
}

static void load_opts(json_object *opts, struct openai_opts *o)
{
    default_opts(o);
    o->default_max_tokens = opt_int(opts, "default_max_tokens", o->default_max_tokens);
    o->max_output_tokens = opt_int(opts, "max_output_tokens", 0);
    o->max_choices = opt_int(opts, "max_choices", o->max_choices);
    o->hoist_system = (int)opt_int(opts, "hoist_system", 0);
    o->model_flags = (int)opt_int(opts, "model_flags", 0);
    json_object *model = jget(opts, "model");
    if (model) {
        const struct catalog_model *m = catalog_find(json_object_get_string(model));
        if (!m)
            printf("# opts.json: unknown model %s\n", json_object_get_string(model));
        else
            o->model_flags = m->flags;
    }
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *plain(json_object *j)
{
    return j ? json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
                                                     JSON_C_TO_STRING_NOSLASHESCAPE)
             : "(none)";
}

/* side_fields compares the openai_request fields with opts.json's expectations (defaults: n 1,
 * everything else off/empty). */
static int side_fields(const char *name, json_object *opts, const struct openai_request *r)
{
    int good = 1;
    struct {
        const char *key;
        long long got, def;
    } ints[] = {{"n", r->n, 1},
                {"stream", r->stream, 0},
                {"include_usage", r->include_usage, 0},
                {"legacy_functions", r->legacy_functions, 0}};
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
        long long want = opt_int(opts, ints[k].key, ints[k].def);
        if (ints[k].got != want) {
            printf("#   %s: %s = %lld, want %lld\n", name, ints[k].key, ints[k].got, want);
            good = 0;
        }
    }
    json_object *st = jget(opts, "schema_tool");
    const char *want_st = st ? json_object_get_string(st) : "";
    if (strcmp(r->schema_tool, want_st) != 0) {
        printf("#   %s: schema_tool = \"%s\", want \"%s\"\n", name, r->schema_tool, want_st);
        good = 0;
    }
    json_object *ls = jget(opts, "local_stops");
    if (!json_object_equal(ls, r->local_stops)) {
        printf("#   %s: local_stops = %s\n#   want %s\n", name, plain(r->local_stops), plain(ls));
        good = 0;
    }
    return good;
}

/* keys_allowed: the upstream body holds only Messages API fields (never model, stream,
 * anthropic_version or an OpenAI-only field). */
static int keys_allowed(json_object *body)
{
    static const char *const allowed[] = {"system", "messages",    "max_tokens",     "temperature",
                                          "top_p",  "top_k",       "stop_sequences", "metadata",
                                          "tools",  "tool_choice", "thinking"};
    json_object_object_foreach(body, key, val)
    {
        (void)val;
        size_t k = 0;
        while (k < sizeof allowed / sizeof allowed[0] && strcmp(allowed[k], key) != 0)
            k++;
        if (k == sizeof allowed / sizeof allowed[0]) {
            printf("#   unexpected upstream key %s\n", key);
            return 0;
        }
    }
    return 1;
}

static void run_case(const char *root, const char *name)
{
    char dir[1024], what[512];
    if (snprintf(dir, sizeof dir, "%s/%s", root, name) >= (int)sizeof dir)
        return;
    json_object *req = read_json(dir, "request.json"), *opts = read_json(dir, "opts.json");
    json_object *want = read_json(dir, "expected.json");
    char *err = read_file(dir, "error.txt", NULL), *readme = read_file(dir, "README.txt", NULL);
    struct openai_opts o;
    struct openai_request r;
    char msg[256], param[128];

    snprintf(what, sizeof what, "%s: %s", name, readme ? strtok(readme, "\n") : "(no README)");
    if (!req || (!want && !err)) {
        ok(0, what);
        printf("#   %s needs request.json and expected.json or error.txt\n", dir);
        goto done;
    }
    load_opts(opts, &o);
    int rc = openai_translate(req, &o, &r, msg, sizeof msg, param, sizeof param);
    if (err) {
        char *want_param = strtok(err, "\n"), *want_msg = strtok(NULL, "\n");
        int good = rc == OAI_EBADREQ && !r.body && want_param && strcmp(param, want_param) == 0 &&
                   (!want_msg || strstr(msg, want_msg));
        if (!tap_ok(good, what, __FILE__, __LINE__))
            printf("#   rc %d param \"%s\" msg \"%s\"\n#   want param \"%s\" msg ~ \"%s\"\n", rc,
                   param, msg, want_param ? want_param : "", want_msg ? want_msg : "");
    } else {
        int good = rc == 0 && json_object_equal(r.body, want) && keys_allowed(r.body);
        good = side_fields(name, opts, &r) && good;
        if (!tap_ok(good, what, __FILE__, __LINE__)) {
            printf("#   rc %d (%s: %s)\n", rc, param, msg);
            printf("#   got:\n%s\n#   want:\n%s\n", plain(r.body), plain(want));
        }
    }
    openai_request_free(&r);
done:
    json_object_put(req);
    json_object_put(opts);
    json_object_put(want);
    free(err);
    free(readme);
}

/* ---- robustness ---- */

static json_object *replacement(int k)
{
    switch (k) {
    case 0:
        return NULL;
    case 1:
        return json_object_new_int(1);
    case 2:
        return json_object_new_string("x");
    case 3:
        return json_object_new_array();
    default:
        return json_object_new_object();
    }
}

/* try_one translates req and counts an unexpected status. */
static void try_one(json_object *req, int *bad)
{
    struct openai_opts o;
    struct openai_request r;
    char msg[256], param[128];
    default_opts(&o);
    o.model_flags = CAT_THINKING | CAT_NO_TEMP_AND_TOP_P;
    o.max_output_tokens = 8192;
    int rc = openai_translate(req, &o, &r, msg, sizeof msg, param, sizeof param);
    if (rc != 0 && rc != OAI_EBADREQ) {
        printf("#   status %d for %s\n", rc, json_object_to_json_string(req));
        (*bad)++;
    }
    if (rc == 0 && (!r.body || !keys_allowed(r.body)))
        (*bad)++;
    if (rc == OAI_EBADREQ && (r.body || !msg[0]))
        (*bad)++;
    openai_request_free(&r);
}

/* replace_nth replaces the value at preorder position *k below node (the root itself is not
 * counted) with rep (taken); returns 1 once done. */
static int replace_nth(json_object *node, int *k, json_object *rep)
{
    if (json_object_is_type(node, json_type_object)) {
        json_object_object_foreach(node, key, val)
        {
            if ((*k)-- == 0) {
                json_object_object_add(node, key, rep);
                return 1;
            }
            if (replace_nth(val, k, rep))
                return 1;
        }
    } else if (json_object_is_type(node, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(node); i++) {
            if ((*k)-- == 0) {
                json_object_array_put_idx(node, i, rep);
                return 1;
            }
            if (replace_nth(json_object_array_get_idx(node, i), k, rep))
                return 1;
        }
    }
    return 0;
}

/* fuzz_case replays request.json with every value in it - each top-level field, each message,
 * each field of each part, ... - replaced in turn by null, 1, "x", [] and {}. */
static void fuzz_case(const char *root, const char *name)
{
    char dir[1024], what[300];
    if (snprintf(dir, sizeof dir, "%s/%s", root, name) >= (int)sizeof dir)
        return;
    json_object *req = read_json(dir, "request.json");
    int bad = 0, tries = 0;
    for (int pos = 0; req; pos++) {
        int replaced = 0;
        for (int r = 0; r < 5; r++) {
            json_object *copy = NULL, *rep = replacement(r);
            if (json_object_deep_copy(req, &copy, NULL) != 0)
                abort();
            int k = pos;
            replaced = replace_nth(copy, &k, rep);
            if (!replaced) {
                json_object_put(rep);
                json_object_put(copy);
                break;
            }
            try_one(copy, &bad);
            tries++;
            json_object_put(copy);
        }
        if (!replaced)
            break;
    }
    snprintf(what, sizeof what, "fuzz %s: %d variants answer 0 or EBADREQ", name, tries);
    ok(req && bad == 0, what);
    json_object_put(req);
}

static void test_golden(void)
{
    const char *src = getenv("OAI_SRCDIR");
    if (!src || !*src) {
        printf("Bail out! OAI_SRCDIR is not set (make check sets it to the source tree)\n");
        exit(1);
    }
    char root[1024];
    snprintf(root, sizeof root, "%s/tests/cases/openai", src);
    DIR *d = opendir(root);
    if (!d) {
        printf("Bail out! cannot open %s\n", root);
        exit(1);
    }
    char *names[MAX_CASES];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || n == MAX_CASES)
            continue;
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_names);
    ok(n >= 40, "at least 40 golden cases");
    for (size_t k = 0; k < n; k++)
        run_case(root, names[k]);
    for (size_t k = 0; k < n; k++) {
        fuzz_case(root, names[k]);
        free(names[k]);
    }
}

/* ---- targeted checks ---- */

static json_object *parse(const char *s)
{
    json_object *j = NULL;
    if (util_parse_json(s, strlen(s), &j) != 0) {
        printf("Bail out! bad test JSON: %s\n", s);
        exit(1);
    }
    return j;
}

static void is_json(json_object *got, const char *want, const char *name)
{
    json_object *w = parse(want);
    if (!tap_ok(json_object_equal(got, w), name, __FILE__, __LINE__))
        printf("#   got:  %s\n#   want: %s\n", got ? json_object_to_json_string(got) : "NULL",
               want);
    json_object_put(w);
}

static void test_betas(void)
{
    json_object *b = anthropic_betas("a, b ,,c", NULL);
    is_json(b, "[\"a\",\"b\",\"c\"]", "betas: trimmed, empty entries dropped");
    json_object_put(b);
    b = anthropic_betas(" prompt-caching-2024-07-31 ,context-1m-2025-08-07,\tx ",
                        "context-1m-2025-08-07, x");
    is_json(b, "[\"prompt-caching-2024-07-31\"]", "betas: DROP_ANTHROPIC_BETAS entries removed");
    json_object_put(b);
    b = anthropic_betas(NULL, "a");
    is_json(b, "[]", "betas: NULL header is an empty array");
    json_object_put(b);
    b = anthropic_betas(" , ,", NULL);
    is_json(b, "[]", "betas: only separators is an empty array");
    json_object_put(b);
    b = anthropic_betas("a,a,b,a", "");
    is_json(b, "[\"a\",\"b\"]", "betas: duplicates sent once");
    json_object_put(b);
    b = anthropic_betas("ab,b", "a");
    is_json(b, "[\"ab\",\"b\"]", "betas: drop matches whole entries only");
    json_object_put(b);
}

static void test_error_message(void)
{
    char out[64];
    const char *ant = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                      "\"message\":\"Overloaded\"},\"request_id\":\"req_1\"}";
    anthropic_error_message(ant, strlen(ant), 529, out, sizeof out);
    is_str(out, "Overloaded", "error message: Anthropic shape");
    const char *g = "{\"error\":{\"code\":429,\"message\":\"Quota exceeded for aiplatform\","
                    "\"status\":\"RESOURCE_EXHAUSTED\"}}";
    anthropic_error_message(g, strlen(g), 429, out, sizeof out);
    is_str(out, "Quota exceeded for aiplatform", "error message: Google shape");
    const char *ga = "[{\"error\":{\"code\":404,\"message\":\"Publisher model not found\"}}]";
    anthropic_error_message(ga, strlen(ga), 404, out, sizeof out);
    is_str(out, "Publisher model not found", "error message: Google array shape");
    const char *bed = "{\"message\":\"The security token included in the request is invalid.\"}";
    anthropic_error_message(bed, strlen(bed), 403, out, sizeof out);
    is_str(out, "The security token included in the request is invalid.",
           "error message: Bedrock {message}");
    const char *oauth = "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT\"}";
    anthropic_error_message(oauth, strlen(oauth), 400, out, sizeof out);
    is_str(out, "Invalid JWT", "error message: OAuth error_description");
    anthropic_error_message("<html>bad gateway</html>", 24, 502, out, sizeof out);
    is_str(out, "upstream HTTP 502", "error message: HTML falls back to the status");
    anthropic_error_message(NULL, 0, 500, out, sizeof out);
    is_str(out, "upstream HTTP 500", "error message: no body");
    const char *empty = "{\"error\":{\"message\":\"\"}}";
    anthropic_error_message(empty, strlen(empty), 400, out, sizeof out);
    is_str(out, "upstream HTTP 400", "error message: empty message falls back");
    const char *odd = "{\"error\":[1,2],\"x\":null}";
    anthropic_error_message(odd, strlen(odd), 418, out, sizeof out);
    is_str(out, "upstream HTTP 418", "error message: odd shapes fall back");
    /* "ééééé..." cut at 9 bytes: 4 whole characters, never half of one */
    const char *u = "{\"error\":{\"message\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}}";
    char small[10];
    anthropic_error_message(u, strlen(u), 400, small, sizeof small);
    is_str(small, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "error message: truncated on a character");
    char one[1] = {'z'};
    anthropic_error_message(ant, strlen(ant), 529, one, sizeof one);
    is_int(one[0], 0, "error message: a 1-byte buffer gets the terminator");
    anthropic_error_message(ant, strlen(ant), 529, NULL, 0); /* must not crash */
}

static void normalize_is(const char *in, int flags, long long maxout, const char *want,
                         const char *name)
{
    json_object *b = parse(in);
    anthropic_normalize(b, flags, maxout);
    is_json(b, want, name);
    json_object_put(b);
}

static void test_normalize(void)
{
    normalize_is("{\"temperature\":0.7,\"top_p\":0.9,\"messages\":[]}", CAT_NO_TEMP_AND_TOP_P, 0,
                 "{\"temperature\":0.7,\"messages\":[]}", "normalize: top_p dropped with the flag");
    normalize_is("{\"temperature\":0.7,\"top_p\":0.9}", 0, 0, "{\"temperature\":0.7,\"top_p\":0.9}",
                 "normalize: top_p kept without the flag");
    normalize_is("{\"top_p\":0.9}", CAT_NO_TEMP_AND_TOP_P, 0, "{\"top_p\":0.9}",
                 "normalize: top_p alone kept");
    normalize_is("{\"top_k\":0,\"max_tokens\":100000}", 0, 32000, "{\"max_tokens\":32000}",
                 "normalize: top_k 0 dropped, max_tokens clamped");
    normalize_is("{\"top_k\":5,\"max_tokens\":100}", 0, 32000, "{\"top_k\":5,\"max_tokens\":100}",
                 "normalize: top_k 5 and a small max_tokens kept");
    normalize_is("{\"system\":\"\"}", 0, 0, "{}", "normalize: system \"\" omitted");
    normalize_is("{\"system\":[{\"type\":\"text\",\"text\":\"\",\"cache_control\":{\"type\":"
                 "\"ephemeral\"}}]}",
                 0, 0, "{}", "normalize: system left empty omitted");
    normalize_is(
        "{\"system\":[{\"type\":\"text\",\"text\":\"\"},{\"type\":\"text\",\"text\":\"S\"}]}", 0, 0,
        "{\"system\":[{\"type\":\"text\",\"text\":\"S\"}]}",
        "normalize: empty system block dropped");
    normalize_is(
        "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":"
        "[{\"type\":\"text\",\"text\":\"\",\"cache_control\":{\"type\":\"ephemeral\"}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"b\"}]}]}",
        0, 0,
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
        "{\"type\":\"text\",\"text\":\"b\"}]}]}",
        "normalize: an emptied message is dropped and its neighbours merged");
    normalize_is(
        "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":"
        "[]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t\"}]}]}",
        0, 0,
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
        "\"t\"},{\"type\":\"text\",\"text\":\"a\"}]}]}",
        "normalize: re-merged user turn puts tool_result first");
    normalize_is("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\","
                 "\"content\":\"b\"}]}",
                 0, 0,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\","
                 "\"content\":\"b\"}]}",
                 "normalize: passthrough turns the client sent are not merged");
    normalize_is(
        "{\"messages\":[1,{\"role\":7,\"content\":[2]},null],\"system\":5,\"top_k\":\"x\"}",
        CAT_NO_TEMP_AND_TOP_P, 10,
        "{\"messages\":[1,{\"role\":7,\"content\":[2]},null],\"system\":5,\"top_k\":\"x\"}",
        "normalize: odd shapes left alone");
    anthropic_normalize(NULL, 0, 0);
    json_object *arr = parse("[1]");
    anthropic_normalize(arr, 0, 0);
    ok(json_object_array_length(arr) == 1, "normalize: a non-object is left alone");
    json_object_put(arr);
}

static int translate(const char *body, struct openai_opts *o, struct openai_request *r, char *msg,
                     char *param)
{
    json_object *req = parse(body);
    int rc = openai_translate(req, o, r, msg, 256, param, 128);
    json_object_put(req);
    return rc;
}

static void test_translate_units(void)
{
    struct openai_opts o;
    struct openai_request r;
    char msg[256], param[128];
    default_opts(&o);

    json_object *one = json_object_new_int(1);
    int rc = openai_translate(one, &o, &r, msg, sizeof msg, param, sizeof param);
    is_int(rc, OAI_EBADREQ, "a non-object body is a 400");
    ok(r.body == NULL && r.local_stops == NULL, "nothing to free after a 400");
    json_object_put(one);
    rc = openai_translate(NULL, &o, &r, msg, sizeof msg, param, sizeof param);
    is_int(rc, OAI_EBADREQ, "a NULL body is a 400");

    /* the body outlives the client's request (references are counted, not borrowed) */
    rc = translate("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
                   "\"hi\",\"cache_control\":{\"type\":\"ephemeral\"}}]}],\"stop\":[\" \",\"X\"]}",
                   &o, &r, msg, param);
    is_int(rc, 0, "translate after which the request is freed");
    is_json(r.body,
            "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\","
            "\"cache_control\":{\"type\":\"ephemeral\"}}]}],\"max_tokens\":4096,"
            "\"stop_sequences\":[\"X\"]}",
            "the body stands alone");
    is_json(r.local_stops, "[\" \"]", "local stops stand alone");
    size_t len = 0;
    const char *wire = util_json_plain(r.body, &len);
    ok(wire && !strchr(wire, '\n') && len > 0, "the wire form is one line");
    openai_request_free(&r);
    openai_request_free(&r); /* twice is harmless */
    openai_request_free(NULL);

    /* small buffers: messages are cut, never overflowed */
    json_object *bad = parse("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                             "\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\"}}]}]}");
    char smsg[8], sparam[6];
    rc = openai_translate(bad, &o, &r, smsg, sizeof smsg, sparam, sizeof sparam);
    is_int(rc, OAI_EBADREQ, "image URL with tiny error buffers");
    is_int((long long)strlen(smsg), 7, "message cut to its buffer");
    is_str(sparam, "messa", "param cut to its buffer");
    rc = openai_translate(bad, &o, &r, NULL, 0, NULL, 0);
    is_int(rc, OAI_EBADREQ, "no error buffers at all");
    json_object_put(bad);

    /* n bounds follow max_choices */
    o.max_choices = 8;
    rc = translate("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"n\":8}", &o, &r, msg,
                   param);
    is_int(rc, 0, "n up to MAX_CHOICES");
    is_int(r.n, 8, "n reported");
    openai_request_free(&r);
    rc = translate("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"n\":9}", &o, &r, msg,
                   param);
    is_int(rc, OAI_EBADREQ, "n above MAX_CHOICES is a 400");
    is_str(param, "n", "param n");
    has_str(msg, "1 to 8", "the message names the range");

    /* deep nesting inside a passthrough field stays within the parser's depth */
    default_opts(&o);
    rc = translate("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"tools\":[{\"type\":"
                   "\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\","
                   "\"properties\":{\"a\":{\"type\":\"object\",\"properties\":{\"b\":{\"type\":"
                   "\"array\",\"items\":{\"type\":\"string\"}}}}}}}}]}",
                   &o, &r, msg, param);
    is_int(rc, 0, "nested tool schema passes through");
    openai_request_free(&r);
}

int main(void)
{
    tap_start();
    test_betas();
    test_error_message();
    test_normalize();
    test_translate_units();
    test_golden();
    return tap_done();
}
