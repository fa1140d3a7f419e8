/*
 * limits.h - every ceiling in one place. Going over one is an error (413 or 502),
 * never an unbounded allocation.
 */
#ifndef OAI_LIMITS_H
#define OAI_LIMITS_H

#define LIMIT_BODY_DEFAULT (32L * 1024 * 1024) /* MAX_BODY_BYTES default */
#define LIMIT_BODY_MIN     1024L               /* smallest MAX_BODY_BYTES accepted */
#define LIMIT_JSON_DEPTH   64                  /* nesting depth of client JSON */
#define LIMIT_PATH         4096                /* request path after decoding */
#define LIMIT_HEADER_BLOCK (16 * 1024)         /* response headers we emit */
#define LIMIT_SETTING      65536               /* one configuration value */

#define WORKERS_MAX       2048 /* threads (= concurrent requests) per process */
#define WORKERS_SPARE     4    /* idle threads kept blocked in accept() */
#define SHUTDOWN_GRACE_MS 5000 /* in-flight requests get this long after SIGTERM */

#ifdef OAI_SANITIZERS
#define WORKER_STACK (2L * 1024 * 1024) /* ASan frames are several times larger */
#else
#define WORKER_STACK (256L * 1024)
#endif

#endif
