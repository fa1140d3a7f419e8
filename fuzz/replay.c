/*
 * replay.c - runs a fuzz harness over its corpus as a TAP test (no libFuzzer needed).
 *
 *   replay_<name> [file-or-directory...]
 *
 * Without arguments it runs every regular file of $OAI_FUZZ_CORPUS/<name>/ (make check sets
 * OAI_FUZZ_CORPUS to $(top_srcdir)/fuzz/corpus; <name> is the program's name without
 * "replay_"), in name order. Each file is one "ok N - <file>" line once
 * LLVMFuzzerTestOneInput returned: a crash, or a sanitizer report in a sanitizer build, is the
 * only way to fail. An unreadable corpus is "Bail out!".
 */
#include "fuzz/fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPLAY_MAX_INPUT (16L * 1024 * 1024) /* larger corpus files are refused, not truncated */
#define REPLAY_MAX_FILES 4096

/* read_file returns a new buffer of the whole file (one spare byte, never NULL on success). */
static uint8_t *read_file(const char *path, size_t *size)
{
    uint8_t *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size > REPLAY_MAX_INPUT)
        goto fail;
    data = malloc((size_t)st.st_size + 1);
    if (!data)
        goto fail;
    *size = fread(data, 1, (size_t)st.st_size, f);
    if (ferror(f))
        goto fail;
    fclose(f);
    return data;
fail:
    free(data);
    fclose(f);
    return NULL;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* add_path appends path (a file) or the regular files of path (a directory) to list. */
static int add_path(const char *path, char **list, int *n)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        printf("Bail out! %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        list[*n] = *n < REPLAY_MAX_FILES ? strdup(path) : NULL;
        if (!list[*n]) {
            printf("Bail out! %s: too many files or out of memory\n", path);
            return -1;
        }
        (*n)++;
        return 0;
    }
    DIR *d = opendir(path);
    if (!d) {
        printf("Bail out! %s: %s\n", path, strerror(errno));
        return -1;
    }
    int first = *n, rc = 0;
    for (;;) {
        char full[4096];
        struct dirent *e = readdir(d);
        if (!e)
            break;
        if (e->d_name[0] == '.')
            continue;
        snprintf(full, sizeof full, "%s/%s", path, e->d_name);
        if (stat(full, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        list[*n] = *n < REPLAY_MAX_FILES ? strdup(full) : NULL;
        if (!list[*n]) {
            printf("Bail out! %s: too many files or out of memory\n", path);
            rc = -1;
            break;
        }
        (*n)++;
    }
    closedir(d);
    qsort(list + first, (size_t)(*n - first), sizeof *list, by_name);
    return rc;
}

int main(int argc, char **argv)
{
    static char *list[REPLAY_MAX_FILES + 1]; /* one spare slot for the NULL of a full list */
    int n = 0, rc = 1;
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep the TAP lines if a sanitizer aborts us */
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            if (add_path(argv[i], list, &n))
                goto done;
    } else {
        const char *root = getenv("OAI_FUZZ_CORPUS");
        const char *prog = strrchr(argv[0], '/');
        prog = prog ? prog + 1 : argv[0];
        if (strncmp(prog, "replay_", 7) == 0)
            prog += 7;
        if (!root || !*root) {
            printf("Bail out! set OAI_FUZZ_CORPUS to the fuzz/corpus directory, or name files\n");
            goto done;
        }
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", root, prog);
        if (add_path(dir, list, &n))
            goto done;
    }
    if (n == 0) {
        printf("1..0 # SKIP empty corpus\n");
        rc = 0;
        goto done;
    }
    printf("1..%d\n", n);
    for (int i = 0; i < n; i++) {
        size_t size = 0;
        uint8_t *data = read_file(list[i], &size);
        if (!data) {
            printf("not ok %d - %s (unreadable)\n", i + 1, list[i]);
            continue;
        }
        LLVMFuzzerTestOneInput(data, size);
        free(data);
        const char *base = strrchr(list[i], '/');
        printf("ok %d - %s\n", i + 1, base ? base + 1 : list[i]);
    }
    rc = 0;
done:
    for (int i = 0; i < n; i++)
        free(list[i]);
    return rc;
}
