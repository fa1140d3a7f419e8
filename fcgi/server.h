/*
 * server.h - the FastCGI accept loop: one thread per in-flight request.
 *
 * Threads are started on demand: WORKERS_SPARE of them wait in accept(); when one takes a
 * connection and no spare is left, it starts another (up to WORKERS_MAX), and a thread that
 * finishes while enough spares wait retires. A slow request therefore never delays another.
 * Stacks are WORKER_STACK bytes of virtual memory, of which a request touches a few pages.
 *
 * SIGTERM, SIGINT, SIGHUP and SIGUSR1 stop the server: no new connections are accepted,
 * threads blocked in accept() are interrupted (libfcgi's threaded shutdown hang: a signal hits
 * one thread while another stays in accept), and in-flight requests get SHUTDOWN_GRACE_MS.
 */
#ifndef OAI_SERVER_H
#define OAI_SERVER_H

#include <fcgiapp.h>

typedef void (*server_handler_fn)(void *ctx, FCGX_Request *req);

/* server_run serves listen_fd until a stop signal. FCGX_Init() must have been called. Returns
 * 0 when every request finished, 1 when some were still running at the end of the grace
 * period (the caller should _exit), or -1 if no thread could be started. */
int server_run(int listen_fd, server_handler_fn fn, void *ctx);

/* server_block_signals blocks the stop signals in the calling thread (call before starting
 * any thread, so that every thread inherits the mask and only server_run receives them). */
void server_block_signals(void);

#endif
