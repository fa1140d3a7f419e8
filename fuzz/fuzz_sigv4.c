/*
 * fuzz_sigv4.c - SigV4 canonicalisation and signing (auth/sigv4.h) of hostile requests.
 *
 * Input: method NUL path NUL query NUL header lines NUL body. The header lines ("Name: value",
 * separated by "\n", at most SIGV4_MAX_HEADERS) are signed with the request; a missing query
 * field is no query (NULL), the body takes the rest of the input, NULs included. The request is
 * signed at a fixed time with temporary credentials, and its canonical request and string to
 * sign are built with long-term ones.
 */
#include "fuzz/fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "auth/sigv4.h"
#include "common/buf.h"

#define NOW      1440938160 /* 20150830T123600Z, the AWS test-suite date */
#define AMZ_DATE "20150830T123600Z"
#define SCOPE    "20150830/us-east-1/bedrock/aws4_request"
#define AUTH     "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/" SCOPE ", SignedHeaders="
#define STS      "AWS4-HMAC-SHA256\n" AMZ_DATE "\n" SCOPE "\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_fields f;
    fuzz_quiet();
    if (fuzz_fields_split(&f, data, size, 5) != 0)
        return 0;
    struct sigv4_key temporary = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                  "IQoJb3JpZ2luX2VjEXAMPLETOKEN", "us-east-1", "bedrock"};
    struct sigv4_key longterm = temporary;
    longterm.session_token = NULL;
    struct sigv4_request rq = {
        .method = f.v[0],
        .host = "bedrock-runtime.us-east-1.amazonaws.com",
        .path = f.n > 1 ? f.v[1] : "/",
        .query = f.n > 2 ? f.v[2] : NULL,
        .body = f.n > 4 ? f.v[4] : NULL,
        .body_len = f.n > 4 ? f.len[4] : 0,
    };
    int nh = 0;
    for (char *line = f.n > 3 ? f.v[3] : NULL; line && nh < SIGV4_MAX_HEADERS;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        rq.headers[nh++] = line;
        line = nl ? nl + 1 : NULL;
    }

    struct sigv4_result out;
    if (sigv4_sign(&temporary, &rq, NOW, &out) == 0) {
        if (strcmp(out.amz_date, AMZ_DATE) != 0 ||
            strncmp(out.authorization, AUTH, sizeof AUTH - 1) != 0 ||
            strnlen(out.token_header, sizeof out.token_header) == sizeof out.token_header)
            abort();
    }
    struct buf canon, sts;
    buf_init(&canon, 1024 * 1024);
    buf_init(&sts, 1024 * 1024);
    if (sigv4_canonical_request(&longterm, &rq, AMZ_DATE, &canon) == 0 &&
        sigv4_string_to_sign(&longterm, &rq, AMZ_DATE, &sts) == 0 &&
        strncmp(sts.data, STS, sizeof STS - 1) != 0)
        abort();
    buf_free(&canon);
    buf_free(&sts);
    fuzz_fields_free(&f);
    return 0;
}
