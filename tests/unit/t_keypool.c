/*
 * t_keypool.c - key health in the state store: how upstream answers are classified, which key is
 * picked (healthy first, least recently used, concurrency cap), cooldowns (Retry-After, 1 s
 * doubling to 30 s across requests), quota and revocation, the checker's verdicts, slots and the
 * queue count, and that another process sees the same state.
 */
#include "common/err.h"
#include "common/log.h"
#include "state/state.h"
#include "tests/unit/tap.h"
#include "upstream/keypool.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const hashes[] = {"gcp-aaaaaaaaaaaa", "gcp-bbbbbbbbbbbb", "gcp-cccccccccccc"};

static void test_classify(void)
{
    static const struct {
        long status;
        const char *type, *msg;
        enum keypool_verdict want;
    } cases[] = {
        {200, "", "", KEYPOOL_OK},
        {0, "", "connection refused", KEYPOOL_TRANSIENT},
        {429, "",
         "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model",
         KEYPOOL_COOL},
        {429, "ThrottlingException", "Too many tokens, please wait before trying again.",
         KEYPOOL_COOL},
        {429, "ThrottlingException", "Too many tokens per day, please wait before trying again.",
         KEYPOOL_QUOTA},
        {429, "insufficient_quota", "You exceeded your current quota", KEYPOOL_QUOTA},
        {529, "", "Overloaded", KEYPOOL_COOL},
        {503, "ServiceUnavailableException", "Bedrock is unable to process your request.",
         KEYPOOL_COOL},
        {401, "", "Request had invalid authentication credentials.", KEYPOOL_REVOKED},
        {403, "UnrecognizedClientException",
         "The security token included in the request is invalid.", KEYPOOL_REVOKED},
        {403, "AccessDeniedException",
         "You don't have access to the model with the specified model ID.", KEYPOOL_NOMODEL},
        {404, "", "Publisher Model ... was not found", KEYPOOL_NOMODEL},
        {400, "invalid_request_error", "Your credit balance is too low to access the API.",
         KEYPOOL_QUOTA},
        {400, "invalid_request_error", "This organization has been disabled.", KEYPOOL_REVOKED},
        {400, "invalid_request_error", "prompt is too long: 300000 tokens > 200000 maximum",
         KEYPOOL_FATAL},
        {413, "", "too large", KEYPOOL_FATAL},
        {500, "", "internal", KEYPOOL_TRANSIENT},
        {424, "ModelErrorException", "Received error from model", KEYPOOL_TRANSIENT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[160];
        snprintf(name, sizeof name, "classify %ld %.60s -> %s", cases[i].status, cases[i].msg,
                 keypool_verdict_name(cases[i].want));
        is_str(keypool_verdict_name(keypool_classify(cases[i].status, cases[i].type, cases[i].msg)),
               keypool_verdict_name(cases[i].want), name);
    }
}

static int load(struct keypool *p, struct state *st, const char *family, const char *api_id)
{
    return keypool_load(p, st, "gcp", family, "claude-x@1", api_id, hashes, 3);
}

static void test_pick_and_judge(struct state *st)
{
    struct keypool p;
    int64_t soonest;
    int slot;
    is_int(load(&p, st, "gcp-claude", ""), 0, "load a pool nobody used");
    int64_t now = state_now_ms();
    is_int(keypool_pick(&p, NULL, 0, now, &soonest), 0, "untouched keys: the first");
    is_int(keypool_take(&p, st, 0, 0, "req1", 60000, &slot), 0, "take key 0");
    is_int(slot, -1, "no slot without a cap");
    keypool_free(&p);

    load(&p, st, "gcp-claude", "");
    is_int(keypool_pick(&p, NULL, 0, state_now_ms(), &soonest), 1,
           "key 0 was used: the least recently used is key 1");
    unsigned char allowed[3] = {1, 0, 1};
    is_int(keypool_pick(&p, allowed, 0, state_now_ms(), &soonest), 2, "allowed[] leaves key 1 out");

    /* a 429 without Retry-After cools key 1 for 1 s; the next one doubles */
    int64_t cool = keypool_judge(&p, st, 1, KEYPOOL_COOL, -1, 429, "rate limited");
    is_int(cool, 1000, "first cooldown without Retry-After: 1 s");
    keypool_free(&p);
    load(&p, st, "gcp-claude", "");
    ok(p.k[1].cool_until > state_now_ms(), "another load sees key 1 cooling");
    is_int(p.k[1].streak, 1, "streak 1");
    is_int(keypool_judge(&p, st, 1, KEYPOOL_COOL, -1, 429, "again"), 2000, "second: 2 s");
    is_int(keypool_judge(&p, st, 1, KEYPOOL_COOL, -1, 429, "again"), 4000, "third: 4 s");
    for (int i = 0; i < 5; i++)
        cool = keypool_judge(&p, st, 1, KEYPOOL_COOL, -1, 429, "again");
    is_int(cool, KEYPOOL_COOL_MAX, "capped at 30 s");
    is_int(keypool_judge(&p, st, 1, KEYPOOL_COOL, 5000, 429, "retry-after"), 5000,
           "Retry-After wins");
    keypool_free(&p);

    /* the cooldown is per family */
    load(&p, st, "gcp-claude-opus", "");
    ok(p.k[1].cool_until == 0, "key 1 is not cooling for another family");
    keypool_free(&p);

    /* every key cooling: no pick, soonest is the earliest end */
    load(&p, st, "gcp-claude", "");
    keypool_judge(&p, st, 0, KEYPOOL_COOL, 3000, 429, "");
    keypool_judge(&p, st, 2, KEYPOOL_COOL, 2000, 429, "");
    now = state_now_ms();
    is_int(keypool_pick(&p, NULL, 0, now, &soonest), -1, "all cooling: none");
    ok(soonest >= now + 1900 && soonest <= now + 2100, "soonest: key 2's end (2 s)");
    /* success clears the cooldown and the streak */
    keypool_judge(&p, st, 2, KEYPOOL_OK, -1, 200, "");
    keypool_free(&p);
    load(&p, st, "gcp-claude", "");
    is_int(keypool_pick(&p, NULL, 0, state_now_ms(), &soonest), 2, "key 2 answered: ready again");
    is_int(p.k[2].streak, 0, "streak reset");
    keypool_free(&p);
}

static void test_revoke_quota_models(struct state *st)
{
    struct keypool p;
    int64_t soonest;
    load(&p, st, "gcp-claude-opus", "claude-opus-4-1-20250805");
    keypool_judge(&p, st, 0, KEYPOOL_REVOKED, -1, 401, "refused");
    keypool_judge(&p, st, 1, KEYPOOL_QUOTA, -1, 429, "per day");
    keypool_free(&p);
    load(&p, st, "gcp-claude-opus", "claude-opus-4-1-20250805");
    ok(p.k[0].revoked, "key 0 revoked");
    ok(p.k[1].quota_until > state_now_ms() + KEYPOOL_QUOTA_MS - 60000, "key 1 over quota ~1 h");
    ok(!keypool_usable(&p, 0, state_now_ms()) && !keypool_usable(&p, 1, state_now_ms()),
       "neither is usable");
    is_int(keypool_pick(&p, NULL, 0, state_now_ms(), &soonest), 2, "key 2 is picked");
    keypool_free(&p);

    /* the checker: key 2 serves only sonnet; key 0 works again */
    is_int(keypool_set_checked(st, "gcp", hashes[2], "claude-sonnet-4-5-20250929", 0, NULL), 0,
           "checker: key 2 serves sonnet only");
    is_int(keypool_set_checked(st, "gcp", hashes[0], "claude-opus-4-1-20250805", 0, NULL), 0,
           "checker: key 0 works again");
    is_int(keypool_set_checked(st, "gcp", hashes[1], NULL, 1, "HTTP 403"), 0,
           "checker: key 1 revoked");
    load(&p, st, "gcp-claude-opus", "claude-opus-4-1-20250805");
    ok(!p.k[0].revoked, "key 0 back");
    ok(p.k[1].revoked && p.k[1].quota_until > 0, "key 1 revoked (quota left as it was)");
    ok(!keypool_usable(&p, 2, state_now_ms()), "key 2 lacks opus");
    is_int(keypool_pick(&p, NULL, 0, state_now_ms(), &soonest), 0, "opus goes to key 0");
    keypool_free(&p);
    keypool_load(&p, st, "gcp", "gcp-claude-opus", "x", "", hashes, 3);
    ok(keypool_usable(&p, 2, state_now_ms()), "a model outside the checker's list is not gated");
    keypool_free(&p);
    is_int(keypool_set_checked(st, "gcp", hashes[1], NULL, 0, NULL), 0, "checker: key 1 works");
    load(&p, st, "gcp-claude-opus", "");
    ok(!p.k[1].revoked && p.k[1].quota_until == 0, "working again clears revoked and quota");
    keypool_free(&p);
}

static void test_slots(struct state *st)
{
    struct keypool p;
    int64_t soonest;
    int s1, s2, s3;
    keypool_load(&p, st, "aws", "aws-claude", "m", "", hashes, 1);
    is_int(keypool_take(&p, st, 0, 2, "r1", 60000, &s1), 0, "cap 2: first slot");
    is_int(keypool_take(&p, st, 0, 2, "r2", 60000, &s2), 0, "cap 2: second slot");
    is_int(keypool_take(&p, st, 0, 2, "r3", 60000, &s3), 1, "cap 2: a third is refused");
    ok(s1 == 0 && s2 == 1 && s3 == -1, "slots 0 and 1");
    keypool_free(&p);
    keypool_load(&p, st, "aws", "aws-claude", "m", "", hashes, 1);
    is_int(p.k[0].busy, 2, "a load counts two busy slots");
    int64_t now = state_now_ms();
    is_int(keypool_pick(&p, NULL, 2, now, &soonest), -1, "full: not ready");
    ok(soonest > now, "full: look again soon");
    is_int(keypool_pick(&p, NULL, 0, now, &soonest), 0, "without a cap it is ready");
    keypool_give(&p, st, 0, s1);
    keypool_free(&p);
    keypool_load(&p, st, "aws", "aws-claude", "m", "", hashes, 1);
    is_int(keypool_pick(&p, NULL, 2, state_now_ms(), &soonest), 0, "a slot given back: ready");
    keypool_give(&p, st, 0, s2);
    keypool_free(&p);
}

static void test_queue(struct state *st)
{
    keypool_queue_enter(st, "aws-claude", "r1", 60000);
    keypool_queue_enter(st, "aws-claude", "r2", 60000);
    keypool_queue_enter(st, "aws-claude-opus", "r3", 60000);
    is_int(keypool_queue_length(st, "aws-claude"), 2, "two waiting for aws-claude");
    keypool_queue_leave(st, "aws-claude", "r1");
    is_int(keypool_queue_length(st, "aws-claude"), 1, "one left");
    is_int(keypool_queue_length(st, "aws-claude-opus"), 1, "the other family's own count");
}

/* Another process sees a revocation at once (its own connection to the store). */
static void test_other_process(const char *path, struct state *st)
{
    struct keypool p;
    keypool_load(&p, st, "azure", "azure-gpt4o", "d", "", hashes, 2);
    keypool_judge(&p, st, 1, KEYPOOL_REVOKED, -1, 401, "refused");
    keypool_free(&p);
    pid_t pid = fork();
    if (pid == 0) {
        struct state *s2 = NULL;
        int rc = 1;
        if (state_open(&s2, path) == 0) {
            keypool_load(&p, s2, "azure", "azure-gpt4o", "d", "", hashes, 2);
            int64_t soonest;
            rc = p.k[1].revoked && keypool_pick(&p, NULL, 0, state_now_ms(), &soonest) == 0 ? 0 : 2;
            keypool_free(&p);
            state_close(s2);
        }
        _exit(rc);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "a child process with its own connection sees the revocation");
}

int main(void)
{
    char dir[] = "/tmp/t_keypool.XXXXXX", path[128];
    tap_start();
    log_set_level(LOG_ERROR);
    test_classify();
    if (!mkdtemp(dir)) {
        ok(0, "mkdtemp");
        return tap_done();
    }
    snprintf(path, sizeof path, "%s/state.db", dir);
    struct state *st = NULL;
    is_int(state_open(&st, path), 0, "open a store");
    if (!st)
        return tap_done();
    test_pick_and_judge(st);
    test_revoke_quota_models(st);
    test_slots(st);
    test_queue(st);
    state_close(st);
    st = NULL;
    is_int(state_open(&st, path), 0, "reopen");
    struct keypool p;
    keypool_load(&p, st, "gcp", "gcp-claude", "", "", hashes, 3);
    ok(p.k[1].revoked == 0 && p.k[0].used > 0, "state survives closing the store");
    keypool_free(&p);
    test_other_process(path, st);
    state_close(st);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ok(system(cmd) == 0, "temp dir removed");
    return tap_done();
}
