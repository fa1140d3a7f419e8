/* Unit tests for common/buf (ceilings), common/util (strict JSON, UTF-8 repair, numbers, ids) and
 * err. */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "tests/unit/tap.h"

static void test_buf(void)
{
    struct buf b;
    buf_init(&b, 10);
    is_int(buf_adds(&b, "hello"), 0, "append within the ceiling");
    is_int(buf_printf(&b, "%d", 12345), 0, "printf fills up to exactly the ceiling");
    is_str(b.data, "hello12345", "contents are NUL-terminated");
    is_int(buf_adds(&b, "x"), OAI_ELIMIT, "one byte over the ceiling fails");
    is_int((long long)b.len, 10, "a failed append leaves the contents unchanged");
    size_t len;
    char *p = buf_take(&b, &len);
    is_int((long long)len, 10, "take hands over the length");
    ok(b.data == NULL && b.len == 0, "take resets the buffer");
    free(p);
    buf_free(&b);
}

static void test_json(void)
{
    json_object *o = NULL;
    static const char good[] = "{\"a\":[1,2,{\"b\":\"\xc3\xa9\"}]}  \n";
    is_int(util_parse_json(good, sizeof good - 1, &o), 0, "valid JSON with trailing space");
    json_object_put(o);
    static const char bad_utf8[] = "{\"a\":\"\xff\xfe\"}";
    is_int(util_parse_json(bad_utf8, sizeof bad_utf8 - 1, &o), OAI_EBADJSON, "invalid UTF-8");
    ok(o == NULL, "no object on failure");
    is_int(util_parse_json("{} x", 4, &o), OAI_EBADJSON, "trailing garbage");
    is_int(util_parse_json("{\"a\":1,}", 8, &o), OAI_EBADJSON, "trailing comma (strict)");
    is_int(util_parse_json("", 0, &o), OAI_EBADJSON, "empty body");
    is_int(util_parse_json("{\"a\":1", 6, &o), OAI_EBADJSON, "truncated object");
    static const char nul[] = "{\"a\":1}\0{}";
    is_int(util_parse_json(nul, sizeof nul - 1, &o), OAI_EBADJSON, "embedded NUL after value");
    char deep[300];
    for (int i = 0; i < 150; i++) {
        deep[i] = '[';
        deep[299 - i] = ']';
    }
    is_int(util_parse_json(deep, 300, &o), OAI_EBADJSON, "nesting deeper than the limit");
    is_int(util_parse_json("\"str\"", 5, &o), 0, "a scalar parses (callers check the type)");
    json_object_put(o);
}

/* util_utf8_repair(in) must equal want; util_utf8_prefix(in) must be the index of the first
 * ill-formed byte. */
static void utf8_case(const char *in, size_t n, size_t prefix, const char *want, const char *name)
{
    struct buf b;
    buf_init(&b, 1024);
    is_int((long long)util_utf8_prefix(in, n), (long long)prefix, name);
    is_int(util_utf8_repair(in, n, &b), 0, name);
    is_str(b.data ? b.data : "", want, name);
    buf_free(&b);
}

#define FFFD "\xef\xbf\xbd"
static void test_utf8(void)
{
    static const char ok_text[] = "plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";
    utf8_case(ok_text, sizeof ok_text - 1, sizeof ok_text - 1, ok_text, "well-formed text unchanged");
    utf8_case("", 0, 0, "", "empty");
    /* The example of Unicode's "U+FFFD Substitution of Maximal Subparts" (chapter 3): one
     * replacement per maximal subpart, so F1 80 80 and E1 80 are one each. */
    static const char uni[] = "\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64";
    utf8_case(uni, sizeof uni - 1, 1, "a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d",
              "Unicode's maximal-subpart example");
    utf8_case("\xed\xa0\x80x", 4, 0, FFFD FFFD FFFD "x", "an encoded surrogate: three");
    utf8_case("\xc0\xafx", 3, 0, FFFD FFFD "x", "overlong '/': two");
    utf8_case("\xe0\x80\x80", 3, 0, FFFD FFFD FFFD, "overlong 3-byte form");
    utf8_case("\xf4\x90\x80\x80", 4, 0, FFFD FFFD FFFD FFFD, "above U+10FFFF");
    utf8_case("ab\xe2\x82", 4, 2, "ab" FFFD, "a sequence cut short at the end: one");
    utf8_case("\xff\xfe", 2, 0, FFFD FFFD, "bytes that never occur");
    /* random bytes: the repair is always well-formed, and leaves well-formed input alone */
    unsigned seed = 12345;
    int bad_out = 0, changed_good = 0;
    for (int round = 0; round < 20000; round++) {
        unsigned char in[24];
        size_t n = (size_t)(round % 24);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = (unsigned char)(seed >> 16);
        }
        struct buf b;
        buf_init(&b, 256);
        if (util_utf8_repair((const char *)in, n, &b) != 0 ||
            util_utf8_prefix(b.data ? b.data : "", b.len) != b.len)
            bad_out++;
        if (util_utf8_prefix((const char *)in, n) == n &&
            (b.len != n || (n && memcmp(b.data, in, n) != 0)))
            changed_good++;
        buf_free(&b);
    }
    is_int(bad_out, 0, "20000 random inputs: every repair is well-formed UTF-8");
    is_int(changed_good, 0, "and well-formed inputs come out unchanged");
    struct buf small;
    buf_init(&small, 4);
    is_int(util_utf8_repair("\xff\xff", 2, &small), OAI_ELIMIT, "the buffer's ceiling holds");
    buf_free(&small);
}

static void test_numbers_and_ids(void)
{
    long long v = 0;
    is_int(util_parse_long("42", 0, 100, &v), 0, "in range");
    is_int(v, 42, "value");
    is_int(util_parse_long("101", 0, 100, &v), OAI_EBADREQ, "above max");
    is_int(util_parse_long("4x", 0, 100, &v), OAI_EBADREQ, "trailing junk");
    is_int(util_parse_long(" 4", 0, 100, &v), OAI_EBADREQ, "leading space");
    is_int(util_parse_long("", 0, 100, &v), OAI_EBADREQ, "empty");
    is_int(util_parse_long("99999999999999999999", 0, 100, &v), OAI_EBADREQ, "overflow");
    char a[25], b[25];
    util_random_hex(a, 24);
    util_random_hex(b, 24);
    is_int((long long)strlen(a), 24, "id length");
    ok(strspn(a, "0123456789abcdef") == 24, "id is hex");
    ok(strcmp(a, b) != 0, "ids differ");
    ok(util_ct_equal("secret", "secret") && !util_ct_equal("secret", "secreT") &&
           !util_ct_equal("secret", "secret2"),
       "constant-time equality");
    is_int(err_http(OAI_ETOOBIG), 413, "TOOBIG maps to 413");
    is_int(err_http(OAI_ENOKEYS), 503, "NOKEYS maps to 503");
    is_str(err_name(OAI_EBADJSON), "BADJSON", "error names");
}

static void test_lists(void)
{
    const char *cur = " a , b\t,,c ,", *e;
    size_t len;
    char got[64] = "";
    int n = 0;
    while (util_list_next(&cur, &e, &len) && n < 10) {
        snprintf(got + strlen(got), sizeof got - strlen(got), "[%.*s]", (int)len, e);
        n++;
    }
    is_str(got, "[a][b][][c][]", "entries trimmed; empty ones reported, trailing comma too");
    cur = NULL;
    ok(!util_list_next(&cur, &e, &len), "a NULL list has no entry");
    ok(util_list_has("x, gcp-claude ,y", "gcp-claude", 10), "membership, trimmed");
    ok(!util_list_has("gcp-claude-opus", "gcp-claude", 10), "no prefix match");
    ok(!util_list_has(NULL, "a", 1), "NULL list holds nothing");
}

int main(void)
{
    tap_start();
    test_buf();
    test_lists();
    test_json();
    test_utf8();
    test_numbers_and_ids();
    return tap_done();
}
