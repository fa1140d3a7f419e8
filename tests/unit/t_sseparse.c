/* Unit tests for translators/sseparse: the same events whatever the split, every line ending,
 * comments and fields, ceilings, and random bytes that must never crash the parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "translators/sseparse.h"
#include "tests/unit/tap.h"

static int unterminated;

/* A record of the events seen: "name\x1f" "data\x1e" per event ("(null)" for no name). */
struct rec {
    struct buf out;
    int count;
    int fail_at; /* return -7 from this event on (1-based), 0 = never */
};

static void rec_init(struct rec *r)
{
    buf_init(&r->out, 1 << 20);
    r->count = 0;
    r->fail_at = 0;
}

static int on_event(void *ctx, const char *name, const char *data, size_t len)
{
    struct rec *r = ctx;
    r->count++;
    if (r->fail_at && r->count >= r->fail_at)
        return -7;
    if (buf_adds(&r->out, name ? name : "(null)") || buf_add(&r->out, "\x1f", 1) ||
        buf_add(&r->out, data, len) || buf_add(&r->out, "\x1e", 1))
        return OAI_ENOMEM;
    if (data[len] != '\0')
        unterminated++; /* callers may treat data as a string */
    return 0;
}

/* parse feeds s[0..n) in pieces ending at the cut points (ascending, < n), returns the status. */
static int parse(const char *s, size_t n, const size_t *cuts, size_t ncuts, size_t max,
                 struct rec *r)
{
    struct sseparse p;
    sseparse_init(&p, max);
    size_t at = 0;
    int rc = 0;
    for (size_t i = 0; i <= ncuts && !rc; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        rc = sseparse_feed(&p, s + at, end - at, on_event, r);
        at = end;
    }
    sseparse_free(&p);
    return rc;
}

static const char stream[] = "\xEF\xBB\xBF: a comment first, after the BOM\r\n"
                             "event: message_start\r\n"
                             "data: {\"a\":1}\r\n"
                             "\r\n"
                             "event:ping\r"
                             "data:{}\r"
                             "\r"
                             "data: line1\n"
                             "data: line2\n"
                             "id: 5\n"
                             "retry: 10\n"
                             ": comment between events\n"
                             "\n"
                             "data:  two spaces\n"
                             "\n"
                             "event: name-without-data\n"
                             "\n"
                             "data\n"
                             "\n"
                             "event: x\n"
                             "data: \xC3\xA9\xF0\x9F\x98\x80\r\n"
                             "\r\n"
                             "unknown: field\n"
                             "data: not dispatched: no blank line at the end";

static const char want[] = "message_start\x1f{\"a\":1}\x1e"
                           "ping\x1f{}\x1e"
                           "(null)\x1fline1\nline2\x1e"
                           "(null)\x1f two spaces\x1e"
                           "(null)\x1f\x1e"
                           "x\x1f\xC3\xA9\xF0\x9F\x98\x80\x1e";

static void test_events(void)
{
    size_t n = sizeof stream - 1;
    struct rec r;
    rec_init(&r);
    is_int(parse(stream, n, NULL, 0, 4096, &r), 0, "whole stream parses");
    is_str(r.out.data, want,
           "BOM, CRLF, CR, LF, comments, id/retry, one space stripped, joined data lines, "
           "a name without data dropped, bare \"data\", no dispatch without a blank line");
    buf_free(&r.out);

    /* every split point, and every pair of split points */
    int bad1 = 0, bad2 = 0;
    for (size_t i = 0; i <= n; i++) {
        rec_init(&r);
        size_t cuts[1] = {i};
        if (parse(stream, n, cuts, 1, 4096, &r) != 0 || strcmp(r.out.data, want) != 0)
            bad1++;
        buf_free(&r.out);
        for (size_t j = i; j <= n; j++) {
            rec_init(&r);
            size_t cuts2[2] = {i, j};
            if (parse(stream, n, cuts2, 2, 4096, &r) != 0 || strcmp(r.out.data, want) != 0)
                bad2++;
            buf_free(&r.out);
        }
    }
    is_int(bad1, 0, "the same events at every single split point");
    is_int(bad2, 0, "the same events at every pair of split points");

    /* one byte at a time */
    size_t *cuts = malloc(n * sizeof *cuts);
    for (size_t i = 0; i < n; i++)
        cuts[i] = i;
    rec_init(&r);
    is_int(parse(stream, n, cuts, n, 4096, &r), 0, "byte at a time");
    is_str(r.out.data, want, "byte at a time gives the same events");
    buf_free(&r.out);
    free(cuts);
}

static void test_details(void)
{
    struct rec r;
    static const char crlf_split[] = "data: a\r\n\r\ndata: b\r\n\r\n";
    size_t cut[1] = {8}; /* between \r and \n */
    rec_init(&r);
    is_int(parse(crlf_split, sizeof crlf_split - 1, cut, 1, 64, &r), 0, "CRLF split in two");
    is_str(r.out.data,
           "(null)\x1f"
           "a\x1e(null)\x1f"
           "b\x1e",
           "a \\r\\n split across feeds is one line end");
    buf_free(&r.out);

    static const char cr_cr[] = "data: a\r\rdata: b\r\r";
    rec_init(&r);
    is_int(parse(cr_cr, sizeof cr_cr - 1, NULL, 0, 64, &r), 0, "CR only");
    is_str(r.out.data,
           "(null)\x1f"
           "a\x1e(null)\x1f"
           "b\x1e",
           "\\r\\r ends an event");
    buf_free(&r.out);

    static const char late_bom[] = "data: a\n\n\xEF\xBB\xBF"
                                   "data: b\n\n";
    rec_init(&r);
    is_int(parse(late_bom, sizeof late_bom - 1, NULL, 0, 64, &r), 0, "BOM later");
    is_str(r.out.data,
           "(null)\x1f"
           "a\x1e",
           "a BOM is skipped only at the start of the stream");
    buf_free(&r.out);

    static const char split_bom[] = "\xEF\xBB\xBF"
                                    "data: a\n\n";
    size_t bomcuts[2] = {1, 2};
    rec_init(&r);
    is_int(parse(split_bom, sizeof split_bom - 1, bomcuts, 2, 64, &r), 0, "BOM in pieces");
    is_str(r.out.data,
           "(null)\x1f"
           "a\x1e",
           "a BOM split across feeds is still skipped");
    buf_free(&r.out);

    static const char nul[] = "data: a\0b\n\n";
    rec_init(&r);
    is_int(parse(nul, sizeof nul - 1, NULL, 0, 64, &r), 0, "NUL byte in data");
    ok(r.out.len == 11 && memcmp(r.out.data,
                                 "(null)\x1f"
                                 "a\0b\x1e",
                                 11) == 0,
       "data keeps its length across a NUL");
    buf_free(&r.out);

    static const char two[] = "event: a\ndata: 1\n\nevent: b\ndata: 2\n\nevent: c\ndata: 3\n\n";
    rec_init(&r);
    r.fail_at = 2;
    is_int(parse(two, sizeof two - 1, NULL, 0, 64, &r), -7, "a callback's negative code");
    is_int(r.count, 2, "parsing stops at the failing callback");
    buf_free(&r.out);
}

static void test_limits(void)
{
    struct rec r;
    char big[200];
    memset(big, 'x', sizeof big);
    memcpy(big, "data: ", 6);
    big[sizeof big - 2] = '\n';
    big[sizeof big - 1] = '\n';
    rec_init(&r);
    is_int(parse(big, sizeof big, NULL, 0, 64, &r), OAI_ELIMIT, "a long data line");
    is_int(r.count, 0, "nothing dispatched");
    buf_free(&r.out);

    size_t cuts[3] = {10, 50, 100};
    rec_init(&r);
    is_int(parse(big, sizeof big, cuts, 3, 64, &r), OAI_ELIMIT, "a long data line in pieces");
    buf_free(&r.out);

    static const char comment[] =
        ": a comment longer than the ceiling ...........................\n"
        "data: a\n\n";
    rec_init(&r);
    is_int(parse(comment, sizeof comment - 1, NULL, 0, 32, &r), OAI_ELIMIT,
           "every line is bounded, comments too");
    buf_free(&r.out);

    static const char lines[] = "data: 0123456789\ndata: 0123456789\ndata: 0123456789\n\n";
    rec_init(&r);
    is_int(parse(lines, sizeof lines - 1, NULL, 0, 31, &r), OAI_ELIMIT,
           "data lines that add up past the ceiling");
    buf_free(&r.out);
    rec_init(&r);
    is_int(parse(lines, sizeof lines - 1, NULL, 0, 32, &r), 0, "exactly at the ceiling is fine");
    is_int(r.count, 1, "and dispatched");
    buf_free(&r.out);

    char name[100] = "event: ";
    memset(name + 7, 'n', 70);
    strcpy(name + 77, "\ndata: a\n\n");
    rec_init(&r);
    is_int(parse(name, strlen(name), NULL, 0, 4096, &r), OAI_ELIMIT,
           "an event name longer than its buffer is an error, not cut short");
    buf_free(&r.out);
}

static uint32_t rnd_state;

static uint32_t rnd(void)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 16) & 0x7fff;
}

static void test_fuzz(void)
{
    static const char alphabet[] = "\r\n\r\n::  dataevent\xEF\xBB\xBF{}x\0";
    char bytes[512];
    size_t cuts[16];
    int differ = 0;
    for (uint32_t seed = 1; seed <= 3000; seed++) {
        rnd_state = seed;
        size_t n = rnd() % sizeof bytes;
        for (size_t i = 0; i < n; i++)
            bytes[i] = (rnd() % 4) ? alphabet[rnd() % (sizeof alphabet - 1)] : (char)rnd();
        struct rec whole, split;
        rec_init(&whole);
        rec_init(&split);
        int rc1 = parse(bytes, n, NULL, 0, 48, &whole);
        size_t ncuts = n ? rnd() % 16 : 0;
        for (size_t i = 0; i < ncuts; i++)
            cuts[i] = rnd() % (n + 1);
        for (size_t i = 1; i < ncuts; i++) /* insertion sort: cut points ascend */
            for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
                size_t t = cuts[j];
                cuts[j] = cuts[j - 1];
                cuts[j - 1] = t;
            }
        int rc2 = parse(bytes, n, cuts, ncuts, 48, &split);
        if (rc1 != rc2 || whole.out.len != split.out.len ||
            (whole.out.len && memcmp(whole.out.data, split.out.data, whole.out.len) != 0))
            differ++;
        buf_free(&whole.out);
        buf_free(&split.out);
    }
    is_int(differ, 0, "3000 random byte strings: no crash, same result whole and split");
}

int main(void)
{
    tap_start();
    test_events();
    test_details();
    test_limits();
    test_fuzz();
    is_int(unterminated, 0, "every event's data is NUL-terminated");
    return tap_done();
}
