#include "auth/keycache.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void wipe(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

const void *keycache_get(struct keycache *kc, const char *a, const char *b, char *err, size_t n)
{
    const char *aa = a ? a : "", *bb = b ? b : "";
    void *found = NULL;
    pthread_mutex_lock(&kc->mu);
    for (int i = 0; i < kc->n && !found; i++)
        if (strcmp(kc->e[i].a, aa) == 0 && strcmp(kc->e[i].b, bb) == 0)
            found = kc->e[i].value;
    if (!found && kc->n == KEYCACHE_MAX) {
        snprintf(err, n, "%s: more than %d distinct values in one process", kc->what, KEYCACHE_MAX);
    } else if (!found) {
        char *ca = strdup(aa), *cb = strdup(bb);
        void *v = ca && cb ? kc->parse(aa, bb, err, n) : NULL;
        if (v) {
            kc->e[kc->n].a = ca;
            kc->e[kc->n].b = cb;
            kc->e[kc->n++].value = v;
            found = v;
        } else {
            if (!ca || !cb)
                snprintf(err, n, "%s: out of memory", kc->what);
            wipe(ca);
            wipe(cb);
        }
    }
    pthread_mutex_unlock(&kc->mu);
    return found;
}

void keycache_clear(struct keycache *kc)
{
    pthread_mutex_lock(&kc->mu);
    for (int i = 0; i < kc->n; i++) {
        wipe(kc->e[i].a);
        wipe(kc->e[i].b);
        kc->free(kc->e[i].value);
    }
    kc->n = 0;
    pthread_mutex_unlock(&kc->mu);
}
