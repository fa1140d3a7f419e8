/* Unit tests for translators/anthropic (the response side): the golden cases in
 * $OAI_SRCDIR/tests/cases/anthropic/<case>/ and checks of what golden files cannot show
 * (split-independence, the client leaving, limits, bounded memory).
 *
 * A case holds either reply.json + expected.json (non-stream) or reply.sse + expected.sse
 * (stream: upstream SSE bytes verbatim; the chunks we must emit, one JSON per "data:" line), an
 * optional opts.json and a README.txt naming the rule. opts.json members:
 *   model, id, created, choice, legacy_functions, schema_tool, local_stops - struct anthropic_opts
 *   rc     - the status the stream ends with, as err_name() spells it ("OK", "TRUNCATED", ...)
 *   usage  - {"input","output","cache_read","cache_write"}: the usage reported afterwards
 *   null   - true: anthropic_to_openai must return NULL (no expected.json)
 * The stream is fed through sseparse whole, a byte at a time and in random splits (several
 * seeds); every way must give exactly the expected chunks. */
#include <dirent.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "translators/anthropic.h"
#include "translators/sseparse.h"
#include "tests/unit/tap.h"

#define FILE_MAX    (4L * 1024 * 1024)
#define EVENT_MAX   (4L * 1024 * 1024)
#define SPLIT_SEEDS 8

/* ---- helpers ---- */

static char *read_file(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct buf b;
    buf_init(&b, FILE_MAX);
    char chunk[8192];
    int rc = buf_add(&b, "", 0); /* an empty file is "" rather than NULL */
    while (!rc) {
        size_t n = fread(chunk, 1, sizeof chunk, f);
        if (n == 0)
            break;
        rc = buf_add(&b, chunk, n);
    }
    fclose(f);
    if (rc) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b, len);
}

static json_object *read_json(const char *dir, const char *name)
{
    size_t len;
    char *txt = read_file(dir, name, &len);
    json_object *o = NULL;
    if (txt && util_parse_json(txt, len, &o) != 0)
        printf("# %s/%s is not valid JSON\n", dir, name);
    free(txt);
    return o;
}

static void show(const char *label, json_object *o)
{
    printf("#   %s: %s\n", label,
           o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : "(none)");
}

/* The emitted events of one run. */
struct sink {
    char **items;
    size_t n, cap;
    int fail_at; /* emit returns OAI_EGONE from this event on (1-based), 0 = never */
};

static int sink_emit(void *ctx, const char *json, size_t len)
{
    struct sink *k = ctx;
    if (k->fail_at && (int)k->n + 1 >= k->fail_at)
        return OAI_EGONE;
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 16;
        char **p = realloc(k->items, cap * sizeof *p);
        if (!p)
            return OAI_ENOMEM;
        k->items = p;
        k->cap = cap;
    }
    char *s = malloc(len + 1);
    if (!s)
        return OAI_ENOMEM;
    memcpy(s, json, len);
    s[len] = '\0';
    k->items[k->n++] = s;
    return 0;
}

static void sink_free(struct sink *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->items[i]);
    free(k->items);
    memset(k, 0, sizeof *k);
}

/* The case's options; strings borrowed from the opts object. */
struct case_opts {
    struct anthropic_opts o;
    const char *rc;
    json_object *usage;
    int want_null;
};

static const char *opt_str(json_object *opts, const char *key, const char *def)
{
    json_object *v;
    if (json_object_object_get_ex(opts, key, &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return def;
}

static long long opt_int(json_object *opts, const char *key, long long def)
{
    json_object *v;
    if (json_object_object_get_ex(opts, key, &v) &&
        (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_boolean)))
        return json_object_get_int64(v);
    return def;
}

static void case_opts(json_object *opts, struct case_opts *c)
{
    json_object *v = NULL;
    memset(c, 0, sizeof *c);
    c->o.model = opt_str(opts, "model", "claude-sonnet-4-5");
    c->o.id = opt_str(opts, "id", "chatcmpl-test");
    c->o.created = opt_int(opts, "created", 1700000000);
    c->o.choice = (int)opt_int(opts, "choice", 0);
    c->o.legacy_functions = (int)opt_int(opts, "legacy_functions", 0);
    c->o.schema_tool = opt_str(opts, "schema_tool", NULL);
    if (json_object_object_get_ex(opts, "local_stops", &v))
        c->o.local_stops = v;
    c->rc = opt_str(opts, "rc", "OK");
    if (json_object_object_get_ex(opts, "usage", &v))
        c->usage = v;
    c->want_null = (int)opt_int(opts, "null", 0);
}

static int usage_matches(json_object *want, const struct anthropic_usage *u)
{
    if (!want)
        return 1;
    return opt_int(want, "input", 0) == u->input && opt_int(want, "output", 0) == u->output &&
           opt_int(want, "cache_read", 0) == u->cache_read &&
           opt_int(want, "cache_write", 0) == u->cache_write;
}

/* ---- non-stream cases ---- */

static void run_nonstream(const char *name, const char *dir, const struct case_opts *c)
{
    char label[512];
    json_object *reply = read_json(dir, "reply.json");
    json_object *want = c->want_null ? NULL : read_json(dir, "expected.json");
    struct anthropic_usage u = {0, 0, 0, 0};
    json_object *got = reply ? anthropic_to_openai(reply, &c->o, &u) : NULL;
    snprintf(label, sizeof label, "%s: chat.completion as expected", name);
    if (c->want_null) {
        snprintf(label, sizeof label, "%s: not a message, NULL", name);
        ok(reply && !got, label);
    } else if (!ok(want && got && json_object_equal(got, want), label)) {
        show("got ", got);
        show("want", want);
    }
    if (c->usage) {
        snprintf(label, sizeof label, "%s: usage added to the caller's counters", name);
        ok(usage_matches(c->usage, &u), label);
    }
    json_object_put(reply);
    json_object_put(want);
    json_object_put(got);
}

/* ---- stream cases ---- */

struct feed {
    struct anthropic_stream *s;
    int first_neg; /* the first negative status an event returned */
    int done;      /* an event returned ANTHROPIC_STREAM_DONE */
};

static int feed_event(void *ctx, const char *name, const char *data, size_t len)
{
    struct feed *f = ctx;
    int rc = anthropic_stream_event(f->s, name, data, len);
    if (rc == ANTHROPIC_STREAM_DONE)
        f->done = 1;
    if (rc < 0 && !f->first_neg)
        f->first_neg = rc;
    return 0; /* keep going: events after the end must be ignored */
}

static uint32_t rnd_state;

static uint32_t rnd(void)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 16) & 0x7fff;
}

/* run_stream translates the SSE bytes split per mode: 0 whole, 1 byte by byte, else random
 * pieces from seed mode. Returns the final status; the emitted events go to k. */
static int run_stream(const char *bytes, size_t len, const struct anthropic_opts *o, int mode,
                      struct sink *k, struct anthropic_usage *u)
{
    struct sseparse p;
    struct feed f = {NULL, 0, 0};
    int rc = 0;
    f.s = anthropic_stream_new(o, sink_emit, k);
    if (!f.s)
        return OAI_ENOMEM;
    sseparse_init(&p, EVENT_MAX);
    rnd_state = (uint32_t)mode;
    size_t at = 0;
    while (at < len && !rc) {
        size_t piece = mode == 0 ? len : mode == 1 ? 1 : 1 + rnd() % 23;
        if (piece > len - at)
            piece = len - at;
        rc = sseparse_feed(&p, bytes + at, piece, feed_event, &f);
        at += piece;
    }
    if (!rc) {
        int end = anthropic_stream_end(f.s);
        rc = f.first_neg ? f.first_neg : end;
    }
    anthropic_stream_usage(f.s, u);
    anthropic_stream_free(f.s);
    sseparse_free(&p);
    return rc;
}

/* expected_events reads the JSON of every "data:" line of expected.sse into a new array. */
static json_object *expected_events(const char *dir)
{
    size_t len;
    char *txt = read_file(dir, "expected.sse", &len);
    if (!txt)
        return NULL;
    json_object *arr = json_object_new_array();
    char *save = NULL;
    for (char *line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "data:", 5) != 0)
            continue;
        line += 5;
        if (*line == ' ')
            line++;
        json_object *o = NULL;
        if (util_parse_json(line, strlen(line), &o) != 0) {
            printf("# %s/expected.sse: not JSON: %s\n", dir, line);
            o = json_object_new_string("(invalid expected line)");
        }
        json_object_array_add(arr, o);
    }
    free(txt);
    return arr;
}

/* check_events compares what was emitted with the expected array; 1 if equal. */
static int check_events(const struct sink *k, json_object *want, int verbose)
{
    size_t nwant = json_object_array_length(want);
    int same = k->n == nwant;
    for (size_t i = 0; i < k->n || i < nwant; i++) {
        json_object *got = NULL;
        json_object *w = i < nwant ? json_object_array_get_idx(want, i) : NULL;
        if (i < k->n) {
            if (strchr(k->items[i], '\n') ||
                util_parse_json(k->items[i], strlen(k->items[i]), &got) != 0) {
                same = 0;
                if (verbose)
                    printf("#   event %zu is not one line of valid JSON: %s\n", i, k->items[i]);
                continue;
            }
        }
        if (!got || !w || !json_object_equal(got, w)) {
            same = 0;
            if (verbose) {
                printf("#   event %zu differs\n", i);
                show("got ", got);
                show("want", w);
            }
        }
        json_object_put(got);
    }
    return same;
}

/* check_envelope: every chunk carries the stream's id, created, model and choice index. */
static int check_envelope(const struct sink *k, const struct anthropic_opts *o)
{
    for (size_t i = 0; i < k->n; i++) {
        json_object *c = NULL, *v, *choices;
        if (util_parse_json(k->items[i], strlen(k->items[i]), &c) != 0)
            return 0;
        int good = 1;
        if (json_object_object_get_ex(c, "choices", &choices)) {
            const char *id = opt_str(c, "id", ""), *model = opt_str(c, "model", "");
            good = strcmp(id, o->id) == 0 && strcmp(model, o->model) == 0 &&
                   opt_int(c, "created", -1) == o->created &&
                   strcmp(opt_str(c, "object", ""), "chat.completion.chunk") == 0 &&
                   json_object_array_length(choices) == 1 &&
                   opt_int(json_object_array_get_idx(choices, 0), "index", -1) == o->choice;
        } else {
            good = json_object_object_get_ex(c, "error", &v); /* the only other event */
        }
        json_object_put(c);
        if (!good)
            return 0;
    }
    return 1;
}

static void run_streamcase(const char *name, const char *dir, const struct case_opts *c)
{
    char label[512];
    size_t len;
    char *bytes = read_file(dir, "reply.sse", &len);
    json_object *want = expected_events(dir);
    if (!bytes || !want) {
        snprintf(label, sizeof label, "%s: reply.sse and expected.sse readable", name);
        ok(0, label);
        goto done;
    }
    int all_same = 1, all_rc = 1, all_usage = 1, envelope = 1;
    for (int mode = 0; mode < 2 + SPLIT_SEEDS; mode++) {
        struct sink k = {NULL, 0, 0, 0};
        struct anthropic_usage u;
        int rc = run_stream(bytes, len, &c->o, mode, &k, &u);
        int verbose = all_same && all_rc && all_usage; /* show the first difference only */
        if (!check_events(&k, want, verbose)) {
            all_same = 0;
            if (verbose)
                printf("#   (split mode %d)\n", mode);
        }
        if (strcmp(err_name(rc), c->rc) != 0) {
            if (all_rc)
                printf("#   split mode %d ended with %s, want %s\n", mode, err_name(rc), c->rc);
            all_rc = 0;
        }
        if (!usage_matches(c->usage, &u)) {
            if (all_usage)
                printf("#   usage %lld/%lld/%lld/%lld\n", u.input, u.output, u.cache_read,
                       u.cache_write);
            all_usage = 0;
        }
        envelope = envelope && check_envelope(&k, &c->o);
        sink_free(&k);
    }
    /* hostile variants: a few bytes changed anywhere; never a crash, and every event we emit is
     * still one line of valid UTF-8 JSON, the last one a finish chunk or an error object */
    int mutants_good = 1;
    char *m = malloc(len ? len : 1);
    for (int seed = 1; seed <= 24 && m && len; seed++) {
        memcpy(m, bytes, len);
        rnd_state = (uint32_t)seed * 7919u;
        for (int flips = 1 + (int)(rnd() % 4); flips > 0; flips--)
            m[rnd() % len] = (char)rnd();
        struct sink k = {NULL, 0, 0, 0};
        struct anthropic_usage u;
        int mrc = run_stream(m, len, &c->o, 100 + seed, &k, &u);
        for (size_t i = 0; i < k.n; i++) {
            json_object *o = NULL;
            if (strchr(k.items[i], '\n') ||
                util_parse_json(k.items[i], strlen(k.items[i]), &o) != 0)
                mutants_good = 0;
            json_object_put(o);
        }
        /* (an event the SSE parser refuses - e.g. a lost newline making an over-long event
         * name - is OAI_ELIMIT from sseparse_feed, reported by the caller, not the translator) */
        if (k.n && mrc != OAI_ELIMIT && !strstr(k.items[k.n - 1], "\"error\"") &&
            !strstr(k.items[k.n - 1], "\"delta\":{},\"logprobs\":null,\"finish_reason\":\""))
            mutants_good = 0;
        sink_free(&k);
    }
    free(m);
    snprintf(label, sizeof label, "%s: 24 corrupted variants end cleanly with valid JSON", name);
    ok(mutants_good, label);
    snprintf(label, sizeof label, "%s: the expected chunks, however the bytes are split", name);
    ok(all_same, label);
    snprintf(label, sizeof label, "%s: ends with %s", name, c->rc);
    ok(all_rc, label);
    snprintf(label, sizeof label, "%s: one id/created/model/choice on every chunk", name);
    ok(envelope, label);
    if (c->usage) {
        snprintf(label, sizeof label, "%s: usage as reported", name);
        ok(all_usage, label);
    }
done:
    free(bytes);
    json_object_put(want);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_golden(void)
{
    const char *src = getenv("OAI_SRCDIR");
    if (!src || !*src) {
        ok(0, "OAI_SRCDIR is set (make check sets it; run as OAI_SRCDIR=/path/to/src "
              "tests/unit/t_anthropic)");
        return;
    }
    char root[4096], dir[4096 + 256];
    snprintf(root, sizeof root, "%s/tests/cases/anthropic", src);
    DIR *d = opendir(root);
    if (!ok(d != NULL, "the golden case folder opens")) {
        printf("#   %s\n", root);
        return;
    }
    char *names[512];
    size_t n = 0;
    for (;;) {
        struct dirent *e = readdir(d);
        if (!e || n == sizeof names / sizeof names[0])
            break;
        if (e->d_name[0] != '.')
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_names);
    int streams = 0, plain = 0;
    for (size_t i = 0; i < n; i++) {
        snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
        size_t rlen;
        char *readme = read_file(dir, "README.txt", &rlen);
        if (readme && rlen)
            printf("# %s: %.*s\n", names[i], (int)strcspn(readme, "\n"), readme);
        else
            ok(0, "every case has a README.txt");
        free(readme);
        json_object *opts = read_json(dir, "opts.json");
        struct case_opts c;
        case_opts(opts, &c);
        size_t l;
        char *probe = read_file(dir, "reply.sse", &l);
        if (probe) {
            run_streamcase(names[i], dir, &c);
            streams++;
        } else {
            run_nonstream(names[i], dir, &c);
            plain++;
        }
        free(probe);
        json_object_put(opts);
        free(names[i]);
    }
    printf("# %d stream cases, %d non-stream cases\n", streams, plain);
    ok(streams > 0 && plain > 0, "golden cases of both kinds were found");
}

/* ---- unit checks ---- */

static const struct anthropic_opts base = {"m", "chatcmpl-1", 1700000000, 0, 0, NULL, NULL};

static void test_usage_json(void)
{
    struct anthropic_usage u = {10, 5, 100, 7};
    json_object *o = anthropic_usage_json(&u);
    is_str(util_json_plain(o, NULL),
           "{\"prompt_tokens\":117,\"completion_tokens\":5,\"total_tokens\":122,"
           "\"prompt_tokens_details\":{\"cached_tokens\":100},"
           "\"completion_tokens_details\":{\"reasoning_tokens\":0}}",
           "usage: prompt = input + cache read + cache write");
    json_object_put(o);
}

static int feed_str(struct anthropic_stream *s, const char *sse)
{
    struct sseparse p;
    struct feed f = {s, 0, 0};
    sseparse_init(&p, EVENT_MAX);
    int rc = sseparse_feed(&p, sse, strlen(sse), feed_event, &f);
    sseparse_free(&p);
    return rc ? rc : f.first_neg ? f.first_neg : f.done ? ANTHROPIC_STREAM_DONE : 0;
}

#define START                                                                                      \
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","       \
    "\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude\","             \
    "\"stop_reason\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"
#define TEXT_START                                                                                 \
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"             \
    "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
#define TEXT_DELTA                                                                                 \
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"             \
    "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n"
#define STOP "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"

static void test_stream_api(void)
{
    struct sink k = {NULL, 0, 0, 0};
    struct anthropic_stream *s = anthropic_stream_new(&base, sink_emit, &k);
    is_int(feed_str(s, START TEXT_START TEXT_DELTA STOP), ANTHROPIC_STREAM_DONE, "done");
    size_t n = k.n;
    is_int(anthropic_stream_event(s, "message_stop", "{\"type\":\"message_stop\"}", 23),
           ANTHROPIC_STREAM_DONE, "an event after the end reports DONE again");
    is_int(anthropic_stream_event(s, NULL, "garbage", 7), ANTHROPIC_STREAM_DONE,
           "even garbage after the end is ignored");
    is_int((long long)k.n, (long long)n, "and emits nothing");
    is_int(anthropic_stream_end(s), 0, "end after message_stop is fine");
    is_int((long long)k.n, (long long)n, "and emits nothing");
    anthropic_stream_free(s);
    sink_free(&k);

    /* the client leaves at the second event: its code comes back and sticks */
    k.fail_at = 2;
    s = anthropic_stream_new(&base, sink_emit, &k);
    is_int(feed_str(s, START TEXT_START TEXT_DELTA), OAI_EGONE, "emit's negative code");
    is_int(anthropic_stream_event(s, NULL, "{\"type\":\"ping\"}", 15), OAI_EGONE,
           "the failure sticks");
    is_int(anthropic_stream_end(s), OAI_EGONE, "end reports it too, without a second error");
    is_int((long long)k.n, 1, "only the role chunk went out");
    anthropic_stream_free(s);
    sink_free(&k);

    /* opts strings are copied */
    char model[8] = "mine", id[16] = "chatcmpl-x";
    struct anthropic_opts o = base;
    o.model = model;
    o.id = id;
    s = anthropic_stream_new(&o, sink_emit, &k);
    strcpy(model, "XXXX");
    strcpy(id, "YYYY");
    is_int(feed_str(s, START), 0, "start");
    has_str(k.n ? k.items[0] : NULL, "\"model\":\"mine\"", "the model name was copied");
    has_str(k.n ? k.items[0] : NULL, "\"id\":\"chatcmpl-x\"", "the id was copied");
    anthropic_stream_free(s);
    sink_free(&k);
    anthropic_stream_free(NULL);
}

static void test_thinking_limit(void)
{
    struct sink k = {NULL, 0, 0, 0};
    struct anthropic_stream *s = anthropic_stream_new(&base, sink_emit, &k);
    is_int(feed_str(s,
                    START "event: content_block_start\ndata: {\"type\":\"content_block_start\","
                          "\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}"
                          "\n\n"),
           0, "a thinking block starts");
    static char ev[80000];
    int n = snprintf(ev, sizeof ev,
                     "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                     "\"thinking_delta\",\"thinking\":\"");
    memset(ev + n, 'x', 65536);
    n += 65536;
    n += snprintf(ev + n, sizeof ev - (size_t)n, "\"}}");
    int rc = 0, i;
    for (i = 0; i < 100 && rc == 0; i++)
        rc = anthropic_stream_event(s, "content_block_delta", ev, (size_t)n);
    is_int(rc, OAI_ELIMIT, "a thinking block past its ceiling is an error");
    is_int(i, 17, "at the ceiling (1 MiB = 16 deltas of 64 KiB)");
    has_str(k.n ? k.items[k.n - 1] : NULL, "\"code\":\"upstream_limit\"", "an error object");
    is_int(anthropic_stream_end(s), OAI_ELIMIT, "end keeps the status");
    anthropic_stream_free(s);
    sink_free(&k);
}

/*
 * Memory per stream. Outside ASan builds the test binary interposes malloc & co. (forwarding to
 * glibc's __libc_* entry points) to count the bytes live at any moment, json-c's allocations
 * included, so the peak a stream costs is measured exactly. ASan brings its own allocator; there
 * the check is skipped.
 */
#if defined(__SANITIZE_ADDRESS__)
#define NO_COUNTING 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_COUNTING 1
#endif
#endif

#if !defined(NO_COUNTING) && defined(__GLIBC__)
#define COUNTING 1
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

static long long live_bytes, peak_bytes;

static void count(void *p, long long sign)
{
    if (!p)
        return;
    live_bytes += sign * (long long)malloc_usable_size(p);
    if (live_bytes > peak_bytes)
        peak_bytes = live_bytes;
}

void *malloc(size_t n)
{
    void *p = __libc_malloc(n);
    count(p, 1);
    return p;
}

void *calloc(size_t n, size_t m)
{
    void *p = __libc_calloc(n, m);
    count(p, 1);
    return p;
}

void *realloc(void *p, size_t n)
{
    count(p, -1);
    void *q = __libc_realloc(p, n);
    count(q ? q : p, 1); /* a failed realloc leaves p allocated */
    return q;
}

void free(void *p)
{
    count(p, -1);
    __libc_free(p);
}
#endif

/* stream_peak runs a text stream of the given number of deltas (each consumed by the client at
 * once) and returns the most bytes it held at any moment: translator, parser, events in flight. */
static long long stream_peak(size_t deltas, int with_stops)
{
    struct sink k = {NULL, 0, 0, 0};
    json_object *stops = json_tokener_parse("[\"\\n\\n\",\"END!\"]");
    struct anthropic_opts o = base;
    o.local_stops = with_stops ? stops : NULL;
#ifdef COUNTING
    long long before = live_bytes;
    peak_bytes = live_bytes;
#endif
    struct anthropic_stream *s = anthropic_stream_new(&o, sink_emit, &k);
    struct sseparse p;
    struct feed f = {s, 0, 0};
    sseparse_init(&p, EVENT_MAX);
    int rc = sseparse_feed(&p, START TEXT_START, strlen(START TEXT_START), feed_event, &f);
    static const char delta[] =
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"0123456789 0123456789 0123456789 "
        "0123456789 0123456789 0123456789 0123456789 0123456789 0123456789 0123456789\\n\"}}\n\n";
    for (size_t i = 0; i < deltas && !rc; i++) {
        rc = sseparse_feed(&p, delta, sizeof delta - 1, feed_event, &f);
        for (size_t j = 0; j < k.n; j++)
            free(k.items[j]); /* the client consumed it */
        k.n = 0;
    }
    if (!rc)
        rc = sseparse_feed(&p, STOP, strlen(STOP), feed_event, &f);
    long long peak = 0;
#ifdef COUNTING
    peak = peak_bytes - before;
#endif
    anthropic_stream_free(s);
    sseparse_free(&p);
    sink_free(&k);
    json_object_put(stops);
    return rc || f.first_neg || !f.done ? -1 : peak;
}

static void test_bounded_memory(void)
{
    /* ~2 KB and ~2 MB of text (119 bytes per delta) */
    for (int stops = 0; stops < 2; stops++) {
        long long small = stream_peak(17, stops), large = stream_peak(17600, stops);
        ok(small >= 0 && large >= 0, stops ? "streams with local stops ran" : "streams ran");
#ifdef COUNTING
        printf("#   peak bytes held: 2 KB stream %lld, 2 MB stream %lld%s\n", small, large,
               stops ? " (with local stops)" : "");
        /* the same up to allocator rounding: nothing grows with the stream's length */
        ok(large <= small + 1024, stops ? "a 2 MB stream costs what a 2 KB one does (local stops)"
                                        : "a 2 MB stream costs what a 2 KB one does");
#else
        ok(1, "peak memory is not measured under ASan");
#endif
    }
}

static void test_nonstream_misc(void)
{
    json_object *m = json_tokener_parse("[1,2]");
    ok(anthropic_to_openai(m, &base, NULL) == NULL, "an array is not a message");
    json_object_put(m);
    m = json_tokener_parse("{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"a\"}],"
                           "\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}");
    json_object *r = anthropic_to_openai(m, &base, NULL);
    ok(r != NULL, "usage pointer may be NULL");
    json_object_put(r);
    struct anthropic_usage u = {1, 1, 1, 1};
    r = anthropic_to_openai(m, &base, &u);
    ok(u.input == 2 && u.output == 3 && u.cache_read == 1 && u.cache_write == 1,
       "usage is added to what the caller had (n fan-out sums)");
    json_object_put(r);
    json_object_put(m);
}

static void test_hostile_messages(void)
{
    static const char *const bodies[] = {
        "{\"type\":\"message\",\"content\":\"text\"}",
        "{\"type\":\"message\",\"content\":[1,null,[],\"x\",{\"type\":7}]}",
        "{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":5},"
        "{\"type\":\"tool_use\",\"name\":3,\"input\":\"str\"},"
        "{\"type\":\"thinking\",\"thinking\":null}],\"stop_reason\":9,"
        "\"usage\":{\"input_tokens\":\"12\",\"output_tokens\":-4}}",
        "{\"content\":[]}",
    };
    int survived = 0;
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        json_object *m = json_tokener_parse(bodies[i]);
        struct anthropic_usage u = {0, 0, 0, 0};
        json_object *r = anthropic_to_openai(m, &base, &u);
        survived += (i == 0) ? r == NULL : r != NULL;
        json_object_put(r);
        json_object_put(m);
    }
    is_int(survived, 4,
           "wrong types in a reply: NULL for content that is not an array, else an "
           "answer built from what is usable");
    json_object *m = json_tokener_parse(bodies[2]);
    json_object *r = anthropic_to_openai(m, &base, NULL);
    has_str(r ? util_json_plain(r, NULL) : NULL,
            "\"tool_calls\":[{\"id\":\"\",\"type\":\"function\",\"function\":{\"name\":\"\","
            "\"arguments\":\"\\\"str\\\"\"}}]",
            "a non-object input is still serialised as JSON text");
    has_str(r ? util_json_plain(r, NULL) : NULL, "\"prompt_tokens\":0,\"completion_tokens\":0",
            "non-integer and negative counts are 0");
    json_object_put(r);
    json_object_put(m);
}

int main(void)
{
    tap_start();
    run_golden();
    test_usage_json();
    test_stream_api();
    test_thinking_limit();
    test_bounded_memory();
    test_nonstream_misc();
    test_hostile_messages();
    return tap_done();
}
