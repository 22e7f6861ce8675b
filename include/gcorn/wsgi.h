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

/* ---- The steps of wsgi_handle() for a driver in Python (aio.c) ----
 *
 * A worker whose outer loop is a Python event loop runs the app from Python frames (a
 * greenlet, a task), so that no C frame of gcorn's is on its stack when it yields: these
 * calls never wait, and each returns before the app or its iterable runs. The request's
 * state (WsgiStream) is its own, not the thread's, since requests interleave on one thread.
 * The GIL is held around all of them; struct _object is PyObject (this header stays free of
 * Python.h). */
typedef struct WsgiStream WsgiStream;
struct _object;

/* Starts the request of c: 0 with *ret_environ and *ret_start_response (new references) to
 * call the app with, or 1 when gcorn answered by itself (the environ was refused) and the app
 * is not called; *ret is the request's state either way, to end with wsgi_aio_finish().
 * Negative errno (Python error set) on failure, *ret then set or NULL. */
int wsgi_aio_begin(Conn *c, WsgiStream **ret, struct _object **ret_environ, struct _object **ret_start_response);
/* ret_environ and ret_start_response NULL: a request without an environ (ASGI), refused as
 * its environ would be; its body is read through wsgi_aio_input(). */

/* The request's wsgi.input (borrowed): its reads raise BlockingIOError where they would wait,
 * and it keeps a body error for the status the client is owed. */
struct _object *wsgi_aio_input(WsgiStream *s);

/* The app's call of start_response (the *ret_start_response of wsgi_aio_begin() is for the
 * driver's own start_response to call through this: the head goes into the request's own
 * buffers). Returns what start_response returns, or NULL with a Python error. */
struct _object *wsgi_aio_start_response(WsgiStream *s, struct _object *const *args, size_t nargsf,
                                        struct _object *kwnames);

/* The same for ASGI's http.response.start: args are (status, headers), whose names and
 * values may be bytes as well as str. */
struct _object *wsgi_aio_start_response_bytes(WsgiStream *s, struct _object *const *args, size_t nargsf);

/* The app returned result. A list, tuple or file wrapper is sent from here: 1 when it all is
 * queued, 0 when the queue is full (wait for it to drain: conn.h CONN_IO_DRAIN, then
 * wsgi_aio_more()). 2: any other iterable, for the driver to iterate, passing each item to
 * wsgi_aio_item() and then calling wsgi_aio_end_body(). 3: the body read failed and the
 * client is owed its status: wsgi_aio_fail(NULL). Negative errno with a Python error set
 * (a bad item, or the client is gone: OSError): wsgi_aio_fail() with it. */
int wsgi_aio_result(WsgiStream *s, struct _object *result);
int wsgi_aio_more(WsgiStream *s);

/* One body item (bytes), or the app's write(data): 1 when the queue has room for more, 0
 * when the driver must wait for it to drain first (a large item is queued by reference and
 * held until then); negative errno with
 * a Python error set as for wsgi_aio_result(). */
int wsgi_aio_item(WsgiStream *s, struct _object *item);
int wsgi_aio_write(WsgiStream *s, struct _object *data);
/* The iterable is exhausted: the end of the body. 0, or negative errno with a Python error. */
int wsgi_aio_end_body(WsgiStream *s);

/* The app switches protocols (a WebSocket): head, a whole "101 Switching Protocols" head, is
 * queued as it is, the access log records 101, and the connection closes once the driver is
 * done with the new protocol (finish()). 0, or negative errno with a Python error set. */
int wsgi_aio_upgrade(WsgiStream *s, const void *head, size_t len);

/* The app, its iterable, or one of the calls above raised exc (a new exception instance;
 * NULL after wsgi_aio_result()'s 3): the error answer and log line wsgi_handle() gives. */
void wsgi_aio_fail(WsgiStream *s, struct _object *exc);
/* The iterable's close() raised exc: logged. */
void wsgi_aio_close_failed(WsgiStream *s, struct _object *exc);

/* The driver is done with the request (the iterable closed): post_request, and either the
 * access log and *ret now, or, with ret->pending, the loop sends what is queued and ends the
 * request (wsgi_stream_end()). Takes s. Returns as wsgi_handle(). */
int wsgi_aio_finish(Conn *c, WsgiStream *s, WsgiResult *ret);
