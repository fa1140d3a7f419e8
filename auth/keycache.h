/*
 * keycache.h - credentials parsed once per process for each distinct value of their settings.
 *
 * Settings can differ per request (FastCGI params), so each provider keeps a small table from
 * the settings' text (one or two strings) to the parsed keys. The text holds secrets: it is
 * wiped when the table is cleared.
 */
#ifndef OAI_KEYCACHE_H
#define OAI_KEYCACHE_H

#include <pthread.h>
#include <stddef.h>

#define KEYCACHE_MAX 16

/* parse returns a new parsed value for settings a and b (b may be NULL), or NULL with a message
 * in err; free releases such a value. */
typedef void *(*keycache_parse_fn)(const char *a, const char *b, char *err, size_t n);
typedef void (*keycache_free_fn)(void *value);

struct keycache {
    pthread_mutex_t mu;
    const char *what; /* the settings, for the "too many values" message */
    keycache_parse_fn parse;
    keycache_free_fn free;
    int n;
    struct {
        char *a, *b;
        void *value;
    } e[KEYCACHE_MAX];
};

#define KEYCACHE_INIT(what, parse, free)                                                           \
    {                                                                                              \
        PTHREAD_MUTEX_INITIALIZER, what, parse, free, 0,                                           \
        {                                                                                          \
            {                                                                                      \
                0                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

/* keycache_get returns the value parsed from (a, b), parsing it on first use; it lives until
 * keycache_clear. NULL (with a message in err) when parsing fails or the table is full. NULL
 * strings count as "". */
const void *keycache_get(struct keycache *kc, const char *a, const char *b, char *err, size_t n);
/* keycache_clear frees every value and wipes the settings' text (at exit, for leak checkers). */
void keycache_clear(struct keycache *kc);

#endif
