/* The worker's loop driven from a Python event loop ("aio"): gevent's hub today, an asyncio
 * loop next. The outer loop is Python's; the worker's epoll fd is one reader in it, and a
 * timer calls the worker back when its next deadline is due. Accepting, reading, parsing,
 * deadlines, the heartbeat, response framing and the sending of what is queued all stay in
 * C, in the worker's loop (worker.c), exactly as in the sync and gthread workers; only the
 * app runs in Python, one task (greenlet, coroutine) per request.
 *
 * The rule: no C frame of gcorn's is ever on a task's stack when it yields. Every call below
 * returns at once; where C would wait (a body not here yet, a full output queue) it returns
 * "would block" and the task waits in Python (a gevent Waiter, an asyncio future) for its
 * wake-up, then calls again. A task owns its request's connection from the dispatch to
 * finish(), as an app thread does in gthread (see conn.h): the loop does the socket I/O the
 * task asks for (ConnConfig.offload, conn_io_run()) and leaves the connection alone
 * otherwise.
 *
 * The Python side: the built-in module _gcorn_aio (also in sys.modules once the worker runs)
 *
 *   fd()                  the worker's epoll fd: watch it for reading
 *   step()                runs what is ready, without waiting: accepts, reads, parses,
 *                         expires deadlines, beats, sends queued answers, dispatches complete
 *                         requests (on_request) and wakes tasks whose I/O is done (on_wake).
 *                         Returns the seconds (float) until it must be called again at the
 *                         latest, or None once the worker is done (stop the loop)
 *   trace(event, args)    greenlet.settrace()'s callback: on a switch or throw to a
 *                         greenlet of start()'s running dict, its request's task runs from
 *                         now on (else none does), so that the watchdog's report of a task
 *                         that blocks the loop names its request
 *   retiring()            True once the worker is leaving (a graceful stop, a reload): a
 *                         driver ends what would hold it (an open WebSocket)
 *   start(on_request, on_wake, on_held=None, running=None)
 *                         on_request(req): a request is complete: start a task for it.
 *                         on_wake(req): the I/O req waited for is done: wake its task. Both
 *                         are called from inside step() and finish(): they must not switch
 *                         or run the task (schedule it: gevent.spawn, loop.call_soon).
 *                         on_held(): given, a task's small sends are held in the
 *                         connection's queue and go out at the start of the next step(),
 *                         with the others of the loop's round, back to back; on_held() is
 *                         called (from a send) when the first is held after a step: it must
 *                         have step() called soon (loop.call_soon), without running it.
 *                         running: a dict of greenlet -> req, for trace()
 *
 *   Request (req), one per request, owned by its task until req.finish():
 *     req.waiter          free for the driver (the object its task waits on)
 *     req.wait()          True: the output queue is not empty; wait for on_wake, then call
 *                         again, until False: it is empty (or the connection failed: the
 *                         next send raises OSError). After a False (or 0) from the sends
 *                         below, before producing more.
 *     req.read(n)         up to n body bytes; b"" at the end of the body; None: would block,
 *                         wait for on_wake, call again. Raises OSError (gcorn.InputError's
 *                         errnos: EBADMSG, EFBIG, ETIMEDOUT, ECONNRESET) when the body fails.
 *     req.watch_hangup(cb)
 *                         after the body: the worker's loop watches the socket (already in its
 *                         epoll set) for the client's end, and calls cb() once it comes (or a
 *                         reset), from inside step() as on_wake (so: no switch, no run). A
 *                         next request arriving first ends the watch without a call, as does
 *                         req.watch_hangup(None) (also allowed once finished) and finish().
 *     WSGI (wsgi.h's wsgi_aio_*, which describe each):
 *     req.begin()         (environ, start_response) to call the app with, or None when gcorn
 *                         answered by itself. The app's start_response calls
 *                         req.start_response(status, headers, exc_info=None) (not the one
 *                         returned, which only serves as the request's identity) and returns
 *                         the driver's write(), which calls req.write().
 *                         environ["wsgi.input"]'s reads raise BlockingIOError where they would
 *                         wait: wait for on_wake, read again (nothing is lost).
 *     ASGI: req.begin_scope(state)
 *                         begin() for an ASGI http request: its scope (state copied into it),
 *                         None when gcorn answered by itself, False for a WebSocket handshake
 *                         (begin() that one). No environ unless post_request or the access
 *                         log's environ fields are to see one; req.input() is its wsgi.input.
 *     req.result(r)       1: all queued; 0: wait() then req.more() until not 0; 2: iterate r
 *                         in Python, req.item(x) each (False: wait() first), then
 *                         req.end_body(), and close r; 3: req.fail(None). After 0 or 1 gcorn
 *                         closes r itself once its answer is out.
 *     req.more(), req.item(x), req.write(x), req.end_body()
 *     req.fail(exc)       the app (or the above) raised exc: 500 / cut body, logged
 *     req.close_failed(exc)
 *                         the iterable's close(), called by the driver, raised exc: logged
 *     req.finish()        always last: access log, metrics, keep-alive; req is then inert
 *
 * All of it runs on the worker's main thread, holding the GIL.
 *
 * A worker kind's driver is Python source in src/py/ (gevent_worker.py), compiled into the
 * binary by src/py/embed.py (src/meson.build) and run by its C entry (aio_run() for
 * gevent), which hands it this module and the app. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "gcorn/conn.h"
#include "gcorn/wsgi.h"

/* ---- For the master and the worker (worker.c, main.c) ---- */

/* The master, at start with -k gevent: imports gevent (nothing of it runs yet). 0, or
 * -ENOENT and *ret_error (owned by the caller, one line) when it cannot be imported. With
 * --preload it warns that the app is imported before gevent patches the standard library
 * (in each worker, as Gunicorn does). */
int aio_gevent_check(bool preload, char **ret_error);

/* In the worker, before the app is imported: chooses the hub's libev backend (io_uring, for
 * timers that fire when due, unless the user chose one; see gevent_worker.py), then
 * gevent.monkey.patch_all() and gevent.reinit(). 0, or -errno with one line in error. */
int aio_gevent_patch(char *error, size_t error_size);

/* Runs gevent's hub as the worker's outer loop until worker_aio_step() says it is done.
 * app: the WSGI app (PyObject *). */
void aio_run(void *app);

/* The worker's loop dispatches a complete request to a task (on_request); the connection's
 * link io (conn_link()->io) is then the request's own ConnIo, owned by it. */
void aio_dispatch(Conn *c);

/* The I/O a task waited for is done (io is its request's): on_wake. */
void aio_io_done(ConnIo *io);

/* A task's send was held for the next step (see start()'s on_held): on_held(). */
void aio_held(void);

/* The client of the request whose ConnIo io is went away while its task watched for that
 * (req.watch_hangup()): its callback, once. */
void aio_hung_up(ConnIo *io);

/* ---- For the drivers' own C helpers (asgi.c); the GIL held ---- */

/* The _gcorn_aio module, made once and put in sys.modules. Borrowed, or NULL with a Python
 * error. (struct _object is PyObject: this header stays free of Python.h.) */
struct _object *aio_module(void);

/* The connection of an unfinished Request, and its WSGI state once begin() was called; NULL
 * with a Python error otherwise. */
Conn *aio_request_conn(struct _object *req);
WsgiStream *aio_request_stream(struct _object *req);

/* req's task runs from now on (NULL or anything not a Request: none does). */
void aio_running(struct _object *req);

/* ---- The worker's side, for aio.c (worker.c) ---- */

/* One round of the worker's loop without waiting: milliseconds until the next call is due at
 * the latest, or -1 once the worker is done. */
int worker_aio_step(void);
int worker_aio_fd(void);
/* The worker is leaving (a graceful stop, a reload, --max-requests): it takes no new
 * connections and waits for those it has. */
bool worker_aio_retiring(void);

/* Does op (CONN_IO_FILL, CONN_IO_DRAIN) for the task that owns c, now if it can: 0 when done
 * (result in conn_link(c)->io), 1 when parked: aio_io_done() comes when it is. */
int worker_aio_wait(Conn *c, ConnIoOp op);

/* The task of c's request runs now; NULL: none does (the event loop runs). */
void worker_aio_running(Conn *c);

/* req.watch_hangup(): on, the loop watches c's socket for its client's hang-up (it adds it
 * to its epoll set if it is not there yet) and calls aio_hung_up() when it comes; off, no
 * longer. 0, or -errno when the socket cannot be watched. */
int worker_aio_watch_hangup(Conn *c, bool on);

/* The task is done with c's request: the loop takes the connection back. */
void worker_aio_done(Conn *c, int r, const WsgiResult *res);

/* Hold the tasks' small sends until the next worker_aio_step() (see start()'s on_held). */
void worker_aio_hold(bool on);
