/*
 * t_sigv4.c - AWS Signature Version 4 (auth/sigv4.c) against reference/wire-formats.md §5:
 * the official test-suite vectors SV-1…SV-7 and the S3 variant of SV-3 (§5.3), the
 * signing-key derivation vectors (§5.4) and the Bedrock-shaped vectors SV-B1…SV-B3 with and
 * without a session token (§5.6), byte for byte; then canonicalisation rules (header value
 * whitespace, repeated headers, dot segments and "//", query encoding), refusals (CR/LF,
 * reserved headers, bad input), the empty-body hash, limits and determinism.
 */
#include "auth/sigv4.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "tests/unit/tap.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- §5.3 common context ------------------------------------------------------------------ */

#define AKID     "AKIDEXAMPLE"
#define SECRET   "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define REGION   "us-east-1"
#define AMZ_DATE "20150830T123600Z"
#define NOW      1440938160 /* 2015-08-30T12:36:00Z */
#define HOST     "example.amazonaws.com"
#define EMPTY    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

#define STS_TOKEN                                                                                  \
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpS"  \
    "PfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYw" \
    "T7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKm"  \
    "lzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
#define S3_TOKEN "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"

/* ---- §5.6 Bedrock context ----------------------------------------------------------------- */

#define BR_HOST "bedrock-runtime.us-east-1.amazonaws.com"
#define BR_BODY                                                                                    \
    "{\"anthropic_version\":\"bedrock-2023-05-31\",\"max_tokens\":16,\"messages\":[{\"role\":"     \
    "\"user\",\"content\":\"Hi\"}]}"
#define BR_BODY_SHA "4ce463b5c3d9ec921b15bafe17cf28cc4d188c93bf720c68e1dee3905c9fd0f8"
#define BR_TOKEN    "FQoGZXIvYXdzEXAMPLETOKEN"
#define BR_PATH1    "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke"
#define BR_PATH2    "/model/anthropic.claude-3-5-sonnet-20240620-v1:0/invoke"
#define BR_PATH3    "/model/us.anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke-with-response-stream"

struct vec {
    const char *name;
    const char *service;
    const char *token; /* NULL: no session token */
    const char *method;
    const char *host;
    const char *path;
    const char *query;
    const char *headers[4];
    const char *body;
    const char *canonical;      /* the whole canonical request */
    const char *sts_hash;       /* last line of the string to sign; NULL when not published */
    const char *signed_headers; /* SignedHeaders */
    const char *signature;
    const char *authorization; /* the whole Authorization line when published, else NULL */
};

static const struct vec vectors[] = {
    {
        "SV-1 get-vanilla",
        "service",
        NULL,
        "GET",
        HOST,
        "/",
        NULL,
        {NULL},
        NULL,
        "GET\n"
        "/\n"
        "\n"
        "host:example.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "host;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
        "host;x-amz-date",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        "Authorization: AWS4-HMAC-SHA256 "
        "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    {
        "SV-2 post-vanilla",
        "service",
        NULL,
        "POST",
        HOST,
        "/",
        NULL,
        {NULL},
        "",
        "POST\n"
        "/\n"
        "\n"
        "host:example.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "host;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
        "host;x-amz-date",
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        NULL,
    },
    {
        "SV-3 post-x-www-form-urlencoded",
        "service",
        NULL,
        "POST",
        HOST,
        "/",
        NULL,
        {"Content-Type:application/x-www-form-urlencoded", NULL},
        "Param1=value1",
        "POST\n"
        "/\n"
        "\n"
        "content-type:application/x-www-form-urlencoded\n"
        "host:example.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "content-type;host;x-amz-date\n"
        "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
        "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
        "content-type;host;x-amz-date",
        "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        "Authorization: AWS4-HMAC-SHA256 "
        "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
    },
    {
        "SV-3 S3-suite variant (content-length, x-amz-content-sha256)",
        "service",
        NULL,
        "POST",
        HOST,
        "/",
        NULL,
        {"Content-Length:13", "Content-Type:application/x-www-form-urlencoded",
         "X-Amz-Content-SHA256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
         NULL},
        "Param1=value1",
        "POST\n"
        "/\n"
        "\n"
        "content-length:13\n"
        "content-type:application/x-www-form-urlencoded\n"
        "host:example.amazonaws.com\n"
        "x-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "content-length;content-type;host;x-amz-content-sha256;x-amz-date\n"
        "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
        "b1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d16cfb",
        "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
        "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
        NULL,
    },
    {
        "SV-4 post-sts-header-before",
        "service",
        STS_TOKEN,
        "POST",
        HOST,
        "/",
        NULL,
        {NULL},
        NULL,
        "POST\n"
        "/\n"
        "\n"
        "host:example.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "x-amz-security-token:" STS_TOKEN "\n"
        "\n"
        "host;x-amz-date;x-amz-security-token\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
        "host;x-amz-date;x-amz-security-token",
        "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
        NULL,
    },
    {
        "SV-5 get-vanilla-with-session-token",
        "service",
        S3_TOKEN,
        "GET",
        HOST,
        "/",
        NULL,
        {NULL},
        NULL,
        "GET\n"
        "/\n"
        "\n"
        "host:example.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "x-amz-security-token:" S3_TOKEN "\n"
        "\n"
        "host;x-amz-date;x-amz-security-token\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "067b36aa60031588cea4a4cde1f21215227a047690c72247f1d70b32fbbfad2b",
        "host;x-amz-date;x-amz-security-token",
        "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
        NULL,
    },
    {
        "SV-6 get-utf8",
        "service",
        NULL,
        "GET",
        HOST,
        "/\xe1\x88\xb4",
        NULL,
        {NULL},
        NULL,
        "GET\n"
        "/%E1%88%B4\n"
        "\n"
        "host:example.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "host;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
        "host;x-amz-date",
        "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
        NULL,
    },
    {
        "SV-7 get-vanilla-query-order-key-case",
        "service",
        NULL,
        "GET",
        HOST,
        "/",
        "Param2=value2&Param1=value1",
        {NULL},
        NULL,
        "GET\n"
        "/\n"
        "Param1=value1&Param2=value2\n"
        "host:example.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "host;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
        "host;x-amz-date",
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        NULL,
    },
    {
        "SV-B1 InvokeModel, wire %3A",
        "bedrock",
        NULL,
        "POST",
        BR_HOST,
        BR_PATH1,
        NULL,
        {"Accept: application/json", "Content-Type: application/json", NULL},
        BR_BODY,
        "POST\n"
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/invoke\n"
        "\n"
        "accept:application/json\n"
        "content-type:application/json\n"
        "host:bedrock-runtime.us-east-1.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "accept;content-type;host;x-amz-date\n"
        "4ce463b5c3d9ec921b15bafe17cf28cc4d188c93bf720c68e1dee3905c9fd0f8",
        "86208b33ab0651269d65cf9e8295b48a8b0b094fc5f9947a8056b26bbd5cd1d6",
        "accept;content-type;host;x-amz-date",
        "427e568b8eacdc859c7bcaca59782ba8e4559cdf3950cd107544b9f97c99e4ba",
        "Authorization: AWS4-HMAC-SHA256 "
        "Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=accept;content-type;host;x-amz-date, "
        "Signature=427e568b8eacdc859c7bcaca59782ba8e4559cdf3950cd107544b9f97c99e4ba",
    },
    {
        "SV-B1 with session token",
        "bedrock",
        BR_TOKEN,
        "POST",
        BR_HOST,
        BR_PATH1,
        NULL,
        {"Accept: application/json", "Content-Type: application/json", NULL},
        BR_BODY,
        "POST\n"
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/invoke\n"
        "\n"
        "accept:application/json\n"
        "content-type:application/json\n"
        "host:bedrock-runtime.us-east-1.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "x-amz-security-token:FQoGZXIvYXdzEXAMPLETOKEN\n"
        "\n"
        "accept;content-type;host;x-amz-date;x-amz-security-token\n"
        "4ce463b5c3d9ec921b15bafe17cf28cc4d188c93bf720c68e1dee3905c9fd0f8",
        NULL,
        "accept;content-type;host;x-amz-date;x-amz-security-token",
        "a6225a9567d5db11750695889277e6872bbb7884f51af1f3f15f463b3807ba94",
        NULL,
    },
    {
        "SV-B2 InvokeModel, wire literal colon",
        "bedrock",
        NULL,
        "POST",
        BR_HOST,
        BR_PATH2,
        NULL,
        {"Accept: application/json", "Content-Type: application/json", NULL},
        BR_BODY,
        "POST\n"
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke\n"
        "\n"
        "accept:application/json\n"
        "content-type:application/json\n"
        "host:bedrock-runtime.us-east-1.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "accept;content-type;host;x-amz-date\n"
        "4ce463b5c3d9ec921b15bafe17cf28cc4d188c93bf720c68e1dee3905c9fd0f8",
        "8d4172190e426fd7243a83ece43c0bd5e909e0cd08de28dafb5983f36757604d",
        "accept;content-type;host;x-amz-date",
        "7ee92bebe998816c90a34dcf9ca8c6465f841ff84f5d75b4de08bcde95a8b502",
        NULL,
    },
    {
        "SV-B2 with session token",
        "bedrock",
        BR_TOKEN,
        "POST",
        BR_HOST,
        BR_PATH2,
        NULL,
        {"Accept: application/json", "Content-Type: application/json", NULL},
        BR_BODY,
        "POST\n"
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke\n"
        "\n"
        "accept:application/json\n"
        "content-type:application/json\n"
        "host:bedrock-runtime.us-east-1.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "x-amz-security-token:FQoGZXIvYXdzEXAMPLETOKEN\n"
        "\n"
        "accept;content-type;host;x-amz-date;x-amz-security-token\n"
        "4ce463b5c3d9ec921b15bafe17cf28cc4d188c93bf720c68e1dee3905c9fd0f8",
        NULL,
        "accept;content-type;host;x-amz-date;x-amz-security-token",
        "12c12d8f41b697411f0a3b6bf08e327d9241bcfcabadfd4ce4bfaed101d29eaf",
        NULL,
    },
    {
        "SV-B3 InvokeModelWithResponseStream, inference profile",
        "bedrock",
        NULL,
        "POST",
        BR_HOST,
        BR_PATH3,
        NULL,
        {"Accept: application/vnd.amazon.eventstream", "Content-Type: application/json", NULL},
        BR_BODY,
        "POST\n"
        "/model/us.anthropic.claude-3-5-sonnet-20240620-v1%253A0/invoke-with-response-stream\n"
        "\n"
        "accept:application/vnd.amazon.eventstream\n"
        "content-type:application/json\n"
        "host:bedrock-runtime.us-east-1.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "\n"
        "accept;content-type;host;x-amz-date\n"
        "4ce463b5c3d9ec921b15bafe17cf28cc4d188c93bf720c68e1dee3905c9fd0f8",
        "536c9418ca065a5e0f91c2d3435aa8eff37bb44923371f3f5dd8eba098ea7eb6",
        "accept;content-type;host;x-amz-date",
        "9e6ec39744cd2924dabf58efe09e189a3295fee4364e75ece51f4a10491efb19",
        NULL,
    },
    {
        "SV-B3 with session token",
        "bedrock",
        BR_TOKEN,
        "POST",
        BR_HOST,
        BR_PATH3,
        NULL,
        {"Accept: application/vnd.amazon.eventstream", "Content-Type: application/json", NULL},
        BR_BODY,
        "POST\n"
        "/model/us.anthropic.claude-3-5-sonnet-20240620-v1%253A0/invoke-with-response-stream\n"
        "\n"
        "accept:application/vnd.amazon.eventstream\n"
        "content-type:application/json\n"
        "host:bedrock-runtime.us-east-1.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "x-amz-security-token:FQoGZXIvYXdzEXAMPLETOKEN\n"
        "\n"
        "accept;content-type;host;x-amz-date;x-amz-security-token\n"
        "4ce463b5c3d9ec921b15bafe17cf28cc4d188c93bf720c68e1dee3905c9fd0f8",
        NULL,
        "accept;content-type;host;x-amz-date;x-amz-security-token",
        "4e37ecf4937f15544579005ac52a5334e2918e7dc4a63605778658b6fe9efc85",
        NULL,
    },
};

/* ---- helpers ------------------------------------------------------------------------------ */

static void make_request(const struct vec *v, struct sigv4_key *k, struct sigv4_request *rq)
{
    memset(k, 0, sizeof *k);
    memset(rq, 0, sizeof *rq);
    k->access_key = AKID;
    k->secret_key = SECRET;
    k->session_token = v->token;
    k->region = REGION;
    k->service = v->service;
    rq->method = v->method;
    rq->host = v->host;
    rq->path = v->path;
    rq->query = v->query;
    for (int i = 0; i < 4 && v->headers[i]; i++)
        rq->headers[i] = v->headers[i];
    rq->body = v->body;
    rq->body_len = v->body ? strlen(v->body) : 0;
}

static void sha256_hex(const char *s, size_t n, char out[65])
{
    unsigned char d[32];
    util_sha256(s, n, d);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check_vector(const struct vec *v)
{
    struct sigv4_key k;
    struct sigv4_request rq;
    struct sigv4_result res;
    struct buf b;
    char want[1024], msg[256];

    make_request(v, &k, &rq);
    buf_init(&b, 1 << 16);

    snprintf(msg, sizeof msg, "%s: canonical request", v->name);
    is_int(sigv4_canonical_request(&k, &rq, AMZ_DATE, &b), 0, msg);
    is_str(b.data, v->canonical, msg);

    buf_reset(&b);
    char canon_hash[65];
    sha256_hex(v->canonical, strlen(v->canonical), canon_hash);
    snprintf(want, sizeof want,
             "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/%s/aws4_request\n%s",
             v->service, v->sts_hash ? v->sts_hash : canon_hash);
    snprintf(msg, sizeof msg, "%s: string to sign", v->name);
    is_int(sigv4_string_to_sign(&k, &rq, AMZ_DATE, &b), 0, msg);
    is_str(b.data, want, msg);

    snprintf(msg, sizeof msg, "%s: sign", v->name);
    is_int(sigv4_sign(&k, &rq, NOW, &res), 0, msg);
    snprintf(want, sizeof want,
             "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/%s/"
             "aws4_request, SignedHeaders=%s, Signature=%s",
             v->service, v->signed_headers, v->signature);
    snprintf(msg, sizeof msg, "%s: Authorization (signature %.8s…)", v->name, v->signature);
    is_str(res.authorization, want, msg);
    if (v->authorization) {
        snprintf(msg, sizeof msg, "%s: Authorization as printed in §5", v->name);
        is_str(res.authorization, v->authorization, msg);
    }
    snprintf(msg, sizeof msg, "%s: amz_date and X-Amz-Date", v->name);
    is_str(res.amz_date, AMZ_DATE, msg);
    is_str(res.date_header, "X-Amz-Date: 20150830T123600Z", msg);
    snprintf(want, sizeof want, "X-Amz-Security-Token: %s", v->token ? v->token : "");
    snprintf(msg, sizeof msg, "%s: token header", v->name);
    is_str(res.token_header, v->token ? want : "", msg);
    buf_free(&b);
}

/* canon_of returns the canonical request of rq (suite context) in a static buffer, or the
 * status code as text. */
static const char *canon_of(const struct sigv4_key *k, const struct sigv4_request *rq)
{
    static char text[4096];
    struct buf b;
    buf_init(&b, 1 << 16);
    int rc = sigv4_canonical_request(k, rq, AMZ_DATE, &b);
    if (rc)
        snprintf(text, sizeof text, "error %s", err_name(rc));
    else
        snprintf(text, sizeof text, "%s", b.data);
    buf_free(&b);
    return text;
}

/* line_of returns line idx (0-based) of s in a static buffer. */
static const char *line_of(const char *s, int idx)
{
    static char line[4096];
    const char *p = s;
    for (int i = 0; i < idx && p; i++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (!p)
        return "(no such line)";
    size_t n = strcspn(p, "\n");
    if (n >= sizeof line)
        n = sizeof line - 1;
    memcpy(line, p, n);
    line[n] = '\0';
    return line;
}

static void suite_key(struct sigv4_key *k)
{
    memset(k, 0, sizeof *k);
    k->access_key = AKID;
    k->secret_key = SECRET;
    k->region = REGION;
    k->service = "service";
}

static void get_root(struct sigv4_request *rq)
{
    memset(rq, 0, sizeof *rq);
    rq->method = "GET";
    rq->host = HOST;
    rq->path = "/";
}

static int unhex(const char *hex, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned int v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    return 0;
}

static void hmac_hex(const unsigned char *key, size_t klen, const char *data, char out[65],
                     unsigned char raw[32])
{
    unsigned int len = 0;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)data, strlen(data), raw, &len);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

/* ---- §5.4 signing key --------------------------------------------------------------------- */

/* The derivation is static in sigv4.c; it is checked through sigv4_sign: the signature must be
 * HMAC(kSigning from §5.4, string to sign from sigv4_string_to_sign). The chain itself is also
 * recomputed here so the vector's intermediate values are pinned. */
static void check_signing_key(const char *secret, const char *date8, int64_t now,
                              const char *amz_date, const char *region, const char *service,
                              const char *ksigning_hex, const char *name)
{
    struct sigv4_key k = {AKID, secret, NULL, region, service};
    struct sigv4_request rq;
    struct sigv4_result res;
    struct buf sts;
    unsigned char ksign[32], sig[32];
    char sig_hex[65], want[640], msg[256];

    get_root(&rq);
    buf_init(&sts, 4096);
    snprintf(msg, sizeof msg, "%s: string to sign", name);
    is_int(sigv4_string_to_sign(&k, &rq, amz_date, &sts), 0, msg);
    ok(unhex(ksigning_hex, ksign, 32) == 0, "kSigning literal is hex");
    hmac_hex(ksign, 32, sts.data, sig_hex, sig);
    snprintf(msg, sizeof msg, "%s: sign", name);
    is_int(sigv4_sign(&k, &rq, now, &res), 0, msg);
    snprintf(want, sizeof want,
             "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/%s/%s/%s/aws4_request, "
             "SignedHeaders=host;x-amz-date, Signature=%s",
             date8, region, service, sig_hex);
    snprintf(msg, sizeof msg, "%s: signature = HMAC(kSigning %.8s…, string to sign)", name,
             ksigning_hex);
    is_str(res.authorization, want, msg);
    buf_free(&sts);
}

static void test_signing_key(void)
{
    /* the §5.4 chain, recomputed with OpenSSL directly */
    const char *secret = "AWS4" SECRET;
    unsigned char k[32];
    char hex[65];
    hmac_hex((const unsigned char *)secret, strlen(secret), "20120215", hex, k);
    is_str(hex, "969fbb94feb542b71ede6f87fe4d5fa29c789342b0f407474670f0c2489e0a0d", "§5.4 kDate");
    hmac_hex(k, 32, "us-east-1", hex, k);
    is_str(hex, "69daa0209cd9c5ff5c8ced464a696fd4252e981430b10e3d3fd8e2f197d7a70c", "§5.4 kRegion");
    hmac_hex(k, 32, "iam", hex, k);
    is_str(hex, "f72cfd46f26bc4643f06a11eabb6c0ba18780c19a8da0c31ace671265e3c87fa",
           "§5.4 kService");
    hmac_hex(k, 32, "aws4_request", hex, k);
    is_str(hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d",
           "§5.4 kSigning");

    /* and through sigv4_sign */
    check_signing_key(SECRET, "20120215", 1329264000, "20120215T000000Z", "us-east-1", "iam",
                      "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d",
                      "§5.4 iam/20120215");
    check_signing_key(SECRET, "20150830", NOW, AMZ_DATE, "us-east-1", "service",
                      "938127b5336810ddb6a5d6af445fcac9e371f9ed418ed386b022aed82901be75",
                      "§5.4 suite context");
}

/* ---- canonicalisation rules --------------------------------------------------------------- */

static void test_header_values(void)
{
    struct sigv4_key k;
    struct sigv4_request rq;
    suite_key(&k);
    get_root(&rq);

    /* suite get-header-value-trim, plus tabs and inner runs */
    rq.headers[0] = "My-Header1: value1";
    rq.headers[1] = "My-Header2: \"a   b   c\"";
    rq.headers[2] = "X-Tabs:\t  lead \t\t inner   trail  \t";
    rq.headers[3] = "X-Empty:   ";
    is_str(canon_of(&k, &rq),
           "GET\n/\n\n"
           "host:example.amazonaws.com\n"
           "my-header1:value1\n"
           "my-header2:\"a b c\"\n"
           "x-amz-date:20150830T123600Z\n"
           "x-empty:\n"
           "x-tabs:lead inner trail\n"
           "\n"
           "host;my-header1;my-header2;x-amz-date;x-empty;x-tabs\n" EMPTY,
           "header values trimmed, inner whitespace runs collapsed, names lower-cased and sorted");
}

static void test_repeated_headers(void)
{
    struct sigv4_key k;
    struct sigv4_request rq;
    suite_key(&k);
    get_root(&rq);

    /* suite get-header-key-duplicate / get-header-value-order: joined in the order sent */
    rq.headers[0] = "My-Header1:value4";
    rq.headers[1] = "X-Other: z";
    rq.headers[2] = "my-header1:  value1 ";
    rq.headers[3] = "MY-HEADER1:value3";
    is_str(canon_of(&k, &rq),
           "GET\n/\n\n"
           "host:example.amazonaws.com\n"
           "my-header1:value4,value1,value3\n"
           "x-amz-date:20150830T123600Z\n"
           "x-other:z\n"
           "\n"
           "host;my-header1;x-amz-date;x-other\n" EMPTY,
           "repeated header names (any case) joined with ',' in order, signed once");
}

static void test_paths(void)
{
    static const struct {
        const char *path, *want;
    } cases[] = {
        {"", "/"},
        {NULL, "/"},
        {"/", "/"},
        {"//", "/"},                       /* suite get-slash */
        {"//example//", "/example/"},      /* suite get-slashes */
        {"/./", "/"},                      /* suite get-slash-dot-slash */
        {"/./example", "/example"},        /* suite get-slash-pointless-dot */
        {"/example/..", "/"},              /* suite get-relative */
        {"/example1/example2/../..", "/"}, /* suite get-relative-relative */
        {"/..", "/"},                      /* cannot climb above the root */
        {"/../../a", "/a"},
        {"/a/b/../c/./d", "/a/c/d"},
        {"/a//b/./../c/", "/a/c/"},
        {"/a/.b/..c/...", "/a/.b/..c/..."},       /* only exact "." and ".." are special */
        {"/example space/", "/example%20space/"}, /* suite get-space */
        {"/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fx/invoke",
         "/model/arn%253Aaws%253Abedrock%253Aus-east-1%253A123456789012%253Ainference-profile%252Fx"
         "/invoke"}, /* an ARN label, %2F re-encoded */
        {"/a:b/c+d/e=f/~x_y-z.w", "/a%3Ab/c%2Bd/e%3Df/~x_y-z.w"},
        {"/%zz%", "/%25zz%25"}, /* the path is taken as bytes */
    };
    struct sigv4_key k;
    struct sigv4_request rq;
    char msg[256];
    suite_key(&k);
    get_root(&rq);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rq.path = cases[i].path;
        snprintf(msg, sizeof msg, "canonical URI of \"%s\"", cases[i].path ? cases[i].path : "");
        is_str(line_of(canon_of(&k, &rq), 1), cases[i].want, msg);
    }
}

static void test_queries(void)
{
    static const struct {
        const char *query, *want;
    } cases[] = {
        {"", ""},
        {"Param1=value2&Param1=Value1", "Param1=Value1&Param1=value2"}, /* order-value */
        {"b=2&a=1&a-b=3", "a=1&a-b=3&b=2"},    /* by name, not by "name=value" */
        {"flag&x=", "flag=&x="},               /* empty values */
        {"&&a=1&&", "a=1"},                    /* empty pieces ignored */
        {"\xe1\x88\xb4=bar", "%E1%88%B4=bar"}, /* suite get-vanilla-utf8-query */
        {"k=a b", "k=a%20b"},
        {"k=a%20b", "k=a%20b"},                             /* already encoded: not encoded twice */
        {"k=%7e%41%2f", "k=~A%2F"},                         /* decoded, then the unreserved rule */
        {"k=a=b", "k=a%3Db"},                               /* split at the first '=' */
        {"-._~09AZaz=-._~09AZaz", "-._~09AZaz=-._~09AZaz"}, /* get-vanilla-query-unreserved */
    };
    struct sigv4_key k;
    struct sigv4_request rq;
    char msg[256];
    suite_key(&k);
    get_root(&rq);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rq.query = cases[i].query;
        snprintf(msg, sizeof msg, "canonical query of \"%s\"", cases[i].query);
        is_str(line_of(canon_of(&k, &rq), 2), cases[i].want, msg);
    }
    rq.query = "k=%zz";
    is_str(canon_of(&k, &rq), "error BADREQ", "malformed %-escape in the query refused");
    rq.query = "k=%4";
    is_str(canon_of(&k, &rq), "error BADREQ", "truncated %-escape in the query refused");
}

/* ---- refusals ----------------------------------------------------------------------------- */

static void expect_refused(const struct sigv4_key *k, const struct sigv4_request *rq, int want,
                           const char *name)
{
    struct sigv4_result res;
    memset(&res, 'x', sizeof res);
    int rc = sigv4_sign(k, rq, NOW, &res);
    is_int(rc, want, name);
    ok(res.authorization[0] == '\0' && res.date_header[0] == '\0' && res.token_header[0] == '\0' &&
           res.amz_date[0] == '\0',
       "  and the result is left empty");
}

static void test_refusals(void)
{
    struct sigv4_key k;
    struct sigv4_request rq;

    suite_key(&k);
    get_root(&rq);
    rq.headers[0] = "X-Injected: a\r\nX-Evil: b";
    expect_refused(&k, &rq, OAI_EBADREQ, "CR/LF in a header value");
    rq.headers[0] = "X-Injected: a\nb";
    expect_refused(&k, &rq, OAI_EBADREQ, "LF in a header value");
    rq.headers[0] = "X-Injected: a\rb";
    expect_refused(&k, &rq, OAI_EBADREQ, "CR in a header value");
    rq.headers[0] = "X-Inj\r\nected: a";
    expect_refused(&k, &rq, OAI_EBADREQ, "CR/LF in a header name");
    rq.headers[0] = "X Bad: a";
    expect_refused(&k, &rq, OAI_EBADREQ, "space in a header name");
    rq.headers[0] = "NoColon";
    expect_refused(&k, &rq, OAI_EBADREQ, "header without ':'");
    rq.headers[0] = ": empty name";
    expect_refused(&k, &rq, OAI_EBADREQ, "empty header name");
    rq.headers[0] = "Host: other.example.com";
    expect_refused(&k, &rq, OAI_EBADREQ, "Host in rq->headers (added by the signer)");
    rq.headers[0] = "x-amz-date: 20150830T123600Z";
    expect_refused(&k, &rq, OAI_EBADREQ, "X-Amz-Date in rq->headers");
    rq.headers[0] = "X-Amz-Security-Token: t";
    expect_refused(&k, &rq, OAI_EBADREQ, "X-Amz-Security-Token in rq->headers");
    rq.headers[0] = "Authorization: x";
    expect_refused(&k, &rq, OAI_EBADREQ, "Authorization in rq->headers");
    rq.headers[0] = NULL;

    rq.host = "example.amazonaws.com\r\nX-Evil: 1";
    expect_refused(&k, &rq, OAI_EBADREQ, "CR/LF in the host");
    rq.host = "";
    expect_refused(&k, &rq, OAI_EBADREQ, "empty host");
    rq.host = HOST;

    rq.path = "/a\r\nb";
    expect_refused(&k, &rq, OAI_EBADREQ, "CR/LF in the path");
    rq.path = "/a?b=c";
    expect_refused(&k, &rq, OAI_EBADREQ, "'?' in the path (the query goes in rq->query)");
    rq.path = "relative";
    expect_refused(&k, &rq, OAI_EBADREQ, "path without a leading '/'");
    rq.path = "/";
    rq.query = "a=1\r\nX: y";
    expect_refused(&k, &rq, OAI_EBADREQ, "CR/LF in the query");
    rq.query = NULL;

    rq.method = "get";
    expect_refused(&k, &rq, OAI_EBADREQ, "lower-case method");
    rq.method = "GET\n";
    expect_refused(&k, &rq, OAI_EBADREQ, "LF in the method");
    rq.method = "GET";

    k.session_token = "tok\r\nX-Evil: 1";
    expect_refused(&k, &rq, OAI_EBADREQ, "CR/LF in the session token");
    k.session_token = NULL;
    k.region = "us-east-1/x";
    expect_refused(&k, &rq, OAI_EBADREQ, "'/' in the region");
    k.region = REGION;
    k.service = "";
    expect_refused(&k, &rq, OAI_EBADREQ, "empty service");
    k.service = "service";
    k.access_key = "AKID EXAMPLE";
    expect_refused(&k, &rq, OAI_EBADREQ, "space in the access key id");
    k.access_key = AKID;
    k.secret_key = "";
    expect_refused(&k, &rq, OAI_EBADREQ, "empty secret key");
    k.secret_key = SECRET;

    rq.body = NULL;
    rq.body_len = 3;
    expect_refused(&k, &rq, OAI_EBADREQ, "NULL body with a length");
    rq.body_len = 0;

    struct buf b;
    buf_init(&b, 4096);
    is_int(sigv4_canonical_request(&k, &rq, "2015-08-30T12:36:00Z", &b), OAI_EBADREQ,
           "amz_date not in YYYYMMDDTHHMMSSZ form refused");
    is_int(sigv4_string_to_sign(&k, &rq, "20150830T123600", &b), OAI_EBADREQ,
           "amz_date without Z refused");
    is_int((long long)b.len, 0, "nothing appended on failure");
    buf_free(&b);
}

/* ---- limits, empty body, determinism, time ------------------------------------------------ */

static void test_limits(void)
{
    struct sigv4_key k;
    struct sigv4_request rq;
    static char path[5000], token[2300];
    suite_key(&k);
    get_root(&rq);

    path[0] = '/';
    memset(path + 1, 'a', sizeof path - 2);
    path[sizeof path - 1] = '\0';
    rq.path = path;
    expect_refused(&k, &rq, OAI_ELIMIT, "path longer than LIMIT_PATH");
    rq.path = "/";

    memset(token, 'T', sizeof token - 1);
    token[sizeof token - 1] = '\0';
    k.session_token = token;
    expect_refused(&k, &rq, OAI_ELIMIT, "session token too long for token_header");
    k.session_token = "";
    struct sigv4_result res;
    is_int(sigv4_sign(&k, &rq, NOW, &res), 0, "empty session token = no token");
    has_str(res.authorization, "SignedHeaders=host;x-amz-date, ", "  not signed");
    is_str(res.token_header, "", "  and no token header");

    /* all SIGV4_MAX_HEADERS slots used (no NULL terminator needed when full) */
    static char names[SIGV4_MAX_HEADERS][32];
    for (int i = 0; i < SIGV4_MAX_HEADERS; i++) {
        snprintf(names[i], sizeof names[i], "X-H%02d: %d", i, i);
        rq.headers[i] = names[i];
    }
    is_int(sigv4_sign(&k, &rq, NOW, &res), 0, "SIGV4_MAX_HEADERS extra headers");
    has_str(res.authorization, ";x-h14;x-h15, Signature=", "  all signed");

    /* a SignedHeaders list that does not fit in authorization[] */
    static char longnames[SIGV4_MAX_HEADERS][64];
    for (int i = 0; i < SIGV4_MAX_HEADERS; i++) {
        snprintf(longnames[i], sizeof longnames[i], "X-A-Rather-Long-Header-Name-Number-%02d: v",
                 i);
        rq.headers[i] = longnames[i];
    }
    expect_refused(&k, &rq, OAI_ELIMIT, "Authorization longer than authorization[]");
}

static void test_empty_body(void)
{
    struct sigv4_key k;
    struct sigv4_request rq;
    suite_key(&k);
    get_root(&rq);
    rq.method = "POST";
    rq.body = NULL;
    rq.body_len = 0;
    is_str(line_of(canon_of(&k, &rq), 7), EMPTY, "payload hash of a NULL body");
    rq.body = "";
    is_str(line_of(canon_of(&k, &rq), 7), EMPTY, "payload hash of an empty body");
    rq.body = "Param1=value1";
    rq.body_len = 13;
    is_str(line_of(canon_of(&k, &rq), 7),
           "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
           "payload hash of Param1=value1");
    rq.body = BR_BODY;
    rq.body_len = strlen(BR_BODY);
    is_int((long long)rq.body_len, 102, "§5.6 body is 102 bytes");
    is_str(line_of(canon_of(&k, &rq), 7), BR_BODY_SHA, "payload hash of the §5.6 body");
    /* a body with a NUL inside is hashed by length, not as a string */
    static const char nul_body[3] = {'a', '\0', 'b'};
    char want[65];
    sha256_hex(nul_body, 3, want);
    rq.body = nul_body;
    rq.body_len = 3;
    is_str(line_of(canon_of(&k, &rq), 7), want, "payload hash covers bytes after a NUL");
}

static void test_determinism(void)
{
    struct sigv4_key k;
    struct sigv4_request rq;
    struct sigv4_result a, b;
    make_request(&vectors[9], &k, &rq); /* SV-B1 with token */
    memset(&a, 0x55, sizeof a);
    memset(&b, 0xaa, sizeof b);
    is_int(sigv4_sign(&k, &rq, NOW, &a), 0, "determinism: first sign");
    is_int(sigv4_sign(&k, &rq, NOW, &b), 0, "determinism: second sign");
    ok(strcmp(a.authorization, b.authorization) == 0 && strcmp(a.date_header, b.date_header) == 0 &&
           strcmp(a.token_header, b.token_header) == 0 && strcmp(a.amz_date, b.amz_date) == 0,
       "same inputs twice give the same output");
    is_int(sigv4_sign(&k, &rq, NOW + 1, &b), 0, "one second later");
    is_str(b.amz_date, "20150830T123601Z", "  amz_date follows the clock");
    ok(strcmp(a.authorization, b.authorization) != 0, "  and the signature changes");
    is_int(sigv4_sign(&k, &rq, 0, &b), 0, "the epoch");
    is_str(b.date_header, "X-Amz-Date: 19700101T000000Z", "  X-Amz-Date at the epoch");
}

int main(void)
{
    tap_start();
    util_init();
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++)
        check_vector(&vectors[i]);
    test_signing_key();
    test_header_values();
    test_repeated_headers();
    test_paths();
    test_queries();
    test_refusals();
    test_limits();
    test_empty_body();
    test_determinism();
    return tap_done();
}
