/*
 * fuzz_config.c - configuration parsing and validation (fcgi/config.h config_load and
 * config_summary).
 *
 * Input: "NAME=value" lines separated by "\n", the environment the settings are read from (any
 * name of the table, TOKEN_QUOTA_* and others; the first line naming a variable wins, as with
 * getenv). The lines are also the extra list config_load checks for TOKEN_QUOTA_*, as the
 * gateway passes environ. Checks the contract that a problem report or the summary never holds
 * a secret's value (tested for values of 8 bytes or more holding a "~", which no message of the
 * gateway's own contains, and found nowhere else in the input).
 */
#include "fuzz/fuzz.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi/config.h"

#define MAX_LINES 256

static const char *const secrets[] = {"GCP_CREDENTIALS", "AWS_CREDENTIALS", "AZURE_CREDENTIALS",
                                      "PROXY_KEY",       "ADMIN_KEY",       "HTTPS_PROXY",
                                      "STATE_URL"};
#define NSECRETS (sizeof secrets / sizeof secrets[0])

struct env {
    char *lines[MAX_LINES + 1]; /* "NAME=value", NULL-ended (borrowed from the copy) */
    int n;
};

static const char *lookup(void *ctx, const char *name)
{
    struct env *e = ctx;
    size_t len = strlen(name);
    for (int i = 0; i < e->n; i++)
        if (strncmp(e->lines[i], name, len) == 0 && e->lines[i][len] == '=')
            return e->lines[i] + len + 1;
    return NULL;
}

/* secret_of returns the value of secret i when it is worth looking for: 8 bytes or more, holding a
 * "~", and found in no other line of the input (which a report or the summary may quote). */
static const char *secret_of(struct env *e, size_t i)
{
    const char *v = lookup(e, secrets[i]);
    if (!v || strlen(v) < 8 || !strchr(v, '~'))
        return NULL;
    for (int k = 0; k < e->n; k++)
        if (e->lines[k] + strlen(secrets[i]) + 1 != v && strstr(e->lines[k], v))
            return NULL;
    return v;
}

static void report(void *ctx, const char *line)
{
    struct env *e = ctx;
    for (size_t i = 0; i < NSECRETS; i++) {
        size_t len = strlen(secrets[i]);
        const char *v = secret_of(e, i);
        if (v && strncmp(line, secrets[i], len) == 0 && line[len] == ':' && strstr(line + len, v))
            abort(); /* a secret's value in a problem report */
    }
}

static void check_summary(struct env *e, json_object *summary)
{
    json_object_object_foreach(summary, key, val)
    {
        const char *s = json_object_get_string(val);
        (void)key;
        for (size_t i = 0; s && i < NSECRETS; i++) {
            const char *v = secret_of(e, i);
            if (v && strstr(s, v))
                abort(); /* a secret's value in the info page */
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct env e;
    struct config cfg;
    fuzz_quiet();
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    e.n = 0;
    for (char *line = copy; line && e.n < MAX_LINES;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        e.lines[e.n++] = line;
        line = nl ? nl + 1 : NULL;
    }
    e.lines[e.n] = NULL;

    int problems = config_load(&cfg, lookup, &e, e.lines, report, &e);
    if (strnlen(cfg.base, sizeof cfg.base) == sizeof cfg.base)
        abort();
    if (problems == 0) { /* the gateway summarises only a valid configuration */
        json_object *summary = config_summary(&cfg);
        check_summary(&e, summary);
        json_object_put(summary);
    }
    free(copy);
    return 0;
}
