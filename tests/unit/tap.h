/*
 * tap.h - a tiny TAP producer for unit tests (one protocol for everything, read by automake's
 * tap-driver.sh). Assertions print the expression and both values on failure.
 *
 *   int main(void) { tap_start(); ok(1 + 1 == 2, "sum"); is_int(f(), 3, "f"); return tap_done(); }
 */
#ifndef OAI_TAP_H
#define OAI_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

static inline void tap_start(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep TAP lines if a sanitizer aborts us */
}

static inline int tap_ok(int cond, const char *name, const char *file, int line)
{
    tap_n++;
    printf("%s %d - %s\n", cond ? "ok" : "not ok", tap_n, name);
    if (!cond) {
        tap_failed++;
        printf("#   failed at %s:%d\n", file, line);
    }
    return cond;
}

#define ok(cond, name) tap_ok(!!(cond), (name), __FILE__, __LINE__)

#define is_int(got, want, name)                                                                    \
    do {                                                                                           \
        long long g_ = (long long)(got), w_ = (long long)(want);                                   \
        if (!tap_ok(g_ == w_, (name), __FILE__, __LINE__))                                         \
            printf("#   %s\n#     got: %lld\n#    want: %lld\n", #got, g_, w_);                    \
    } while (0)

#define is_str(got, want, name)                                                                    \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        int same_ = (g_ == NULL && w_ == NULL) || (g_ && w_ && strcmp(g_, w_) == 0);               \
        if (!tap_ok(same_, (name), __FILE__, __LINE__))                                            \
            printf("#   %s\n#     got: \"%s\"\n#    want: \"%s\"\n", #got, g_ ? g_ : "(null)",     \
                   w_ ? w_ : "(null)");                                                            \
    } while (0)

/* has_str: haystack contains needle. */
#define has_str(hay, needle, name)                                                                 \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (!tap_ok(h_ && strstr(h_, n_) != NULL, (name), __FILE__, __LINE__))                     \
            printf("#   %s\n#     got: \"%s\"\n#    want a string containing: \"%s\"\n", #hay,     \
                   h_ ? h_ : "(null)", n_);                                                        \
    } while (0)

static inline int tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif
