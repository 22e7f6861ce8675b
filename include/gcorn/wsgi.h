/* The WSGI layer: runs one request through the application and sends its response.
 *
 * wsgi_init() is called once per worker process after the app is loaded; wsgi_handle() for
 * each request whose head is complete. The caller does not hold the GIL; wsgi_handle()
 * takes it for the app call and releases it around all socket I/O. The state of a request
 * is the calling thread's: a gthread worker's app threads run requests side by side. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gcorn/conn.h"
#include "gcorn/settings.h"

typedef struct WsgiResult {
        int status;                     /* status sent, 0 when nothing could be sent */
        uint64_t body_bytes;            /* response body bytes sent */
        bool pending;                   /* the loop finishes the answer: see wsgi_stream_pull() */
} WsgiResult;

/* app: a new reference is taken. Builds the environ template and interned keys. Called
 * without the GIL, like wsgi_handle(). */
int wsgi_init(void *app /* PyObject * */, const Settings *s);
void wsgi_done(void);
/* A gthread app thread's own buffers and callbacks, at its end (wsgi_done() frees the main
 * thread's). */
void wsgi_thread_done(void);

/* Returns 0 when the response went out (the connection may still have to close, see
 * conn_must_close()), or a negative errno when the connection is broken and must be closed
 * at once. Always calls the iterable's close(), writes the access log entry, and logs app
 * errors with their traceback. */
int wsgi_handle(Conn *c, WsgiResult *ret);

/* An answer wsgi_handle() left pending (the client has not taken it all, or it is longer
 * than --buffer-response) is finished by the loop: when the connection is writable and its
 * queue has room, wsgi_stream_pull() produces more of it (pulling the app's iterable; an app
 * error there cuts the body, which closes the connection once the queue is out). Returns 1
 * once everything is produced, 0 while there is more, or a negative errno when the
 * connection is broken. Once the queue is empty after a 1, or on any failure of the
 * connection (error: the reason; the queue is dropped), wsgi_stream_end() ends the request:
 * the iterable's close(), post_request, the access log (the bytes that reached the kernel),
 * and *ret as wsgi_handle()'s. Callers do not hold the GIL (or hold it through
 * python_gil_acquire()). */
int wsgi_stream_pull(Conn *c);
void wsgi_stream_end(Conn *c, int error, WsgiResult *ret);
