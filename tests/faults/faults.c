/*
 * faults.c - fault injection for tests/faults/oai-fcgi-faults, the gateway as the fault tests
 * run it (tests/integration/faults_state.mjs). Linked into that binary only, never into
 * oai-fcgi.
 *
 * Allocation failures. The binary is linked with -Wl,--wrap for malloc, calloc, realloc, strdup
 * and strndup, so every allocation the gateway's own code makes comes here first (libraries
 * allocate on their own and are not counted). A request carrying the header
 *     X-Oai-Fail-Alloc: N
 * gets NULL from the N-th allocation (from 0) made by the thread serving it, counted from
 * app_request_begins on; every other allocation succeeds. When the request is over
 * (app_request_ends, before the web server has the end of the answer) a line on stderr says how
 * it went:
 *     faults: 57 allocations, number 12 failed
 *     faults: 57 allocations, none failed
 * so a test can walk N from 0 until a request passes every allocation point. (Counting the
 * libraries' allocations too, by defining malloc here, was tried: json-c then crashes inside its
 * own tokener, which does not check a failed strdup of an object key.)
 *
 * A broken state store. OAI_FAULT_STATE names a control file; while it holds
 *     full      every write SQLite makes returns SQLITE_FULL (a full disk)
 *     ioerr     every write returns SQLITE_IOERR_WRITE (the disk went read-only or bad)
 *     readonly  files SQLite opens from now on are opened read-only (a read-only directory)
 * and nothing (or no file) means no fault. This is a VFS that wraps the default one and is made
 * the default before main() runs; the control file is read on every open and write.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi/app.h"
#include "fcgi/io.h"

/* ---- allocations ------------------------------------------------------------------------------ */

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

/* The request this thread serves: whether it counts, allocations so far, which one fails,
 * which did (-1: none). */
static _Thread_local int t_on;
static _Thread_local long t_count, t_fail = -1, t_failed = -1;

void app_request_ends(void)
{
    if (!t_on)
        return;
    t_on = 0;
    char line[128];
    int n;
    if (t_failed >= 0)
        n = snprintf(line, sizeof line, "faults: %ld allocations, number %ld failed\n", t_count,
                     t_failed);
    else
        n = snprintf(line, sizeof line, "faults: %ld allocations, none failed\n", t_count);
    fwrite(line, 1, (size_t)n, stderr);
    fflush(stderr);
}

void app_request_begins(struct io *io)
{
    const char *v = io_param(io, "HTTP_X_OAI_FAIL_ALLOC");
    char *end = NULL;
    long n = v ? strtol(v, &end, 10) : -1;
    int on = v && *v && end && !*end && n >= 0;
    t_count = 0;
    t_fail = on ? n : -1;
    t_failed = -1;
    t_on = on; /* last: from here on allocations count */
}

/* Whether this allocation is the one that fails. */
static int fail_now(void)
{
    if (!t_on)
        return 0;
    long k = t_count++;
    if (k != t_fail)
        return 0;
    t_failed = k;
    return 1;
}

void *__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t k, size_t n)
{
    return fail_now() ? NULL : __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fail_now() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return fail_now() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return fail_now() ? NULL : __real_strndup(s, n);
}

/* ---- the state store's disk --------------------------------------------------------------------- */

enum disk { DISK_OK, DISK_FULL, DISK_IOERR, DISK_READONLY };

static enum disk disk_state(void)
{
    const char *path = getenv("OAI_FAULT_STATE");
    if (!path || !*path)
        return DISK_OK;
    FILE *f = fopen(path, "r");
    if (!f)
        return DISK_OK;
    char word[32] = "";
    if (!fgets(word, sizeof word, f))
        word[0] = '\0';
    fclose(f);
    word[strcspn(word, " \t\r\n")] = '\0';
    return strcmp(word, "full") == 0       ? DISK_FULL
           : strcmp(word, "ioerr") == 0    ? DISK_IOERR
           : strcmp(word, "readonly") == 0 ? DISK_READONLY
                                           : DISK_OK;
}

/* A file of the wrapping VFS: the real file follows it in the same allocation. */
struct shim_file {
    sqlite3_file base;
    sqlite3_file *real;
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs shim_vfs;
static sqlite3_io_methods shim_methods;

#define REAL(f) (((struct shim_file *)(f))->real)

static int shim_close(sqlite3_file *f)
{
    return REAL(f)->pMethods->xClose(REAL(f));
}

static int shim_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
    return REAL(f)->pMethods->xRead(REAL(f), p, n, off);
}

static int shim_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
    switch (disk_state()) {
    case DISK_FULL:
        return SQLITE_FULL;
    case DISK_IOERR:
        return SQLITE_IOERR_WRITE;
    default:
        return REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
    }
}

static int shim_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int shim_sync(sqlite3_file *f, int flags)
{
    return disk_state() == DISK_IOERR ? SQLITE_IOERR_FSYNC
                                      : REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int shim_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int shim_lock(sqlite3_file *f, int lock)
{
    return REAL(f)->pMethods->xLock(REAL(f), lock);
}

static int shim_unlock(sqlite3_file *f, int lock)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), lock);
}

static int shim_check_lock(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int shim_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int shim_sector(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int shim_device(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int shim_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

static int shim_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}

static void shim_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int shim_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int shim_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
    return REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}

static int shim_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
    (void)vfs;
    struct shim_file *s = (struct shim_file *)f;
    s->real = (sqlite3_file *)(s + 1);
    if (disk_state() == DISK_READONLY && (flags & SQLITE_OPEN_READWRITE)) {
        /* what the unix VFS does when a read-write open is refused: read-only (a file that
         * does not exist then cannot be opened at all) */
        flags = (flags & ~(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) | SQLITE_OPEN_READONLY;
    }
    int rc = real_vfs->xOpen(real_vfs, name, s->real, flags, out);
    /* a failed open leaves pMethods NULL: SQLite then closes nothing */
    s->base.pMethods = s->real->pMethods ? &shim_methods : NULL;
    return rc;
}

static int shim_delete(sqlite3_vfs *vfs, const char *name, int sync)
{
    (void)vfs;
    return real_vfs->xDelete(real_vfs, name, sync);
}

static int shim_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int shim_fullpath(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}

__attribute__((constructor)) static void shim_register(void)
{
    if (sqlite3_initialize() != SQLITE_OK || !(real_vfs = sqlite3_vfs_find(NULL)))
        return;
    shim_methods = (sqlite3_io_methods){
        3,           shim_close,     shim_read,        shim_write,      shim_truncate,
        shim_sync,   shim_size,      shim_lock,        shim_unlock,     shim_check_lock,
        shim_control, shim_sector,   shim_device,      shim_shm_map,    shim_shm_lock,
        shim_shm_barrier, shim_shm_unmap, shim_fetch,  shim_unfetch,
    };
    shim_vfs = *real_vfs; /* randomness, sleep, time, dlopen...: the real VFS's own */
    shim_vfs.szOsFile = (int)sizeof(struct shim_file) + real_vfs->szOsFile;
    shim_vfs.zName = "oai-faults";
    shim_vfs.pNext = NULL;
    shim_vfs.xOpen = shim_open;
    shim_vfs.xDelete = shim_delete;
    shim_vfs.xAccess = shim_access;
    shim_vfs.xFullPathname = shim_fullpath;
    sqlite3_vfs_register(&shim_vfs, 1);
}
