/* The embedded interpreter: PyConfig initialisation, sys.path, the app spec, fork hooks.
 *
 * The master initialises Python (the config file is Python); workers inherit it through
 * fork() with python_before_fork()/python_after_fork_*() around it. After python_init() the
 * calling thread does not hold the GIL; every function here takes it itself. */
#pragma once

#include "gcorn/settings.h"

/* Initialises the interpreter: no signal handlers of its own (gcorn owns signals), argv not
 * parsed, sys.argv = ["gcorn"]. Returns -errno with a logged reason. */
int python_init(void);

/* Puts the (post --chdir) working directory and --pythonpath entries first on sys.path, and
 * applies --env to os.environ. */
int python_setup_paths(const Settings *s);

/* Resolves "module:callable", "module" (-> application), "module:factory()" and
 * "module:factory(args)" (literal arguments only) as Gunicorn 23 does. On failure returns a
 * negative errno and *ret_error (owned by the caller) holds one clear line, e.g.
 * "Failed to find attribute 'app' in 'myapp'." or "No module named 'myapp'"; the traceback,
 * when there is one, is logged at debug level. On success *ret_app is a new reference. */
int python_load_app(const char *spec, void **ret_app /* PyObject ** */, char **ret_error);

/* Around fork(): call python_before_fork() in the parent, then exactly one of the others. */
void python_before_fork(void);
void python_after_fork_parent(void);
void python_after_fork_child(void);

/* The GIL for the calling thread (the worker's main thread, or an attached one): take it before
 * touching Python, drop it before blocking. Calls nest: only the outermost pair takes and
 * drops the lock (code inside may still drop it around blocking calls with
 * Py_BEGIN_ALLOW_THREADS). */
void python_gil_acquire(void);
void python_gil_release(void);

/* A thread other than the main one that runs Python for its whole life (a gthread worker's app
 * thread): attach at its start creates its thread state (not holding the GIL after), detach at
 * its end destroys it. Between them python_gil_acquire()/release() work in it as in the main
 * thread. python_thread_ident() is threading.get_ident() of the calling thread. */
void python_thread_attach(void);
void python_thread_detach(void);
unsigned long python_thread_ident(void);

/* For a blocking call that a signal interrupted while the GIL was released around it: runs
 * the Python signal handlers (PEP 475). Returns 0, or -EINTR when a handler raised; the
 * exception is then set for the caller to raise once it holds the GIL again. Takes and
 * drops the GIL itself. */
int python_check_signals(void);

/* Fetches and clears the current Python exception and formats it as traceback.format_exception
 * does (one string, lines joined by newlines, no trailing newline). Returns NULL (and clears
 * any secondary error) when there is none or formatting failed. GIL held. Caller frees. */
char *python_format_exception(void);

/* A fresh namespace to run source in: a dict holding __builtins__. New reference, or NULL with
 * a Python exception set. GIL held. */
struct _object *python_new_globals(void);       /* PyObject *; this header stays free of Python.h */

/* The current exception's traceback as one log entry under title (then cleared). At LOG_ERR it
 * is what Gunicorn logs with log.exception() (log_exception()). GIL held. */
void python_log_exception(int level, const char *title);

/* SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL dump every thread's Python stack to fd: the
 * master's SIGABRT to a hung worker then shows where it hung. A SIGABRT sent by another
 * process ends the worker without a core file. */
int python_enable_faulthandler(int fd);

/* Moves every object the master made (the preloaded app) out of the collector's sight, so
 * the workers' collections do not write to, and so unshare, the copy-on-write pages. */
void python_gc_freeze(void);

/* Finalises the interpreter (runs atexit handlers). Returns 0 or -EIO when finalisation failed. */
int python_finalize(void);
