/* The worker's loop driven from a Python event loop: the _gcorn_aio module (see aio.h), and
 * the gevent worker built on it, whose Python side (src/py/gevent_worker.py) is compiled into
 * the binary. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcorn/aio.h"
#include "gcorn/log.h"
#include "gcorn/macro.h"
#include "gcorn/python.h"
#include "gcorn/scope.h"
#include "gcorn/websocket.h"

/* src/py/gevent_worker.py, NUL-terminated (generated at build time) */
extern const char gcorn_gevent_worker_py[];

typedef struct AioRequest {
        PyObject_HEAD
        Conn *conn;                     /* NULL once finished */
        WsgiStream *stream;             /* the WSGI request, from begin() to finish() */
        ConnIo io;                      /* the I/O parked for the loop (conn_link()->io) */
        PyObject *waiter;
        PyObject *hangup;               /* watch_hangup()'s callback while the loop watches */
} AioRequest;

static PyObject *on_request, *on_wake, *on_held;
static PyObject *module;
/* gevent: greenlet -> the request it runs (gevent_worker.py's _running), for trace() */
static PyObject *running_by_greenlet;
static PyObject *str_switch, *str_throw;

static bool check_open(AioRequest *a) {
        if (a->conn)
                return true;
        PyErr_SetString(PyExc_RuntimeError, "the request is finished");
        return false;
}

/* begin() and begin_scope() start a request once. */
static bool check_unbegun(AioRequest *a) {
        if (!check_open(a))
                return false;
        if (!a->stream)
                return true;
        PyErr_SetString(PyExc_RuntimeError, "begin() called twice");
        return false;
}

static PyObject *raise_errno(int r) {
        if (!PyErr_Occurred()) {
                errno = -r;
                PyErr_SetFromErrno(PyExc_OSError);
        }
        return NULL;
}

static bool check_stream(AioRequest *a) {
        if (!check_open(a))
                return false;
        if (a->stream)
                return true;
        PyErr_SetString(PyExc_RuntimeError, "begin() was not called");
        return false;
}

static PyObject *req_begin(PyObject *self, PyObject *Py_UNUSED(ignored)) {
        AioRequest *a = (AioRequest *) self;
        PyObject *environ = NULL, *sr = NULL, *t;
        int r;

        if (!check_unbegun(a))
                return NULL;
        r = wsgi_aio_begin(a->conn, &a->stream, &environ, &sr);
        if (r < 0)
                return raise_errno(r);
        if (r > 0)
                Py_RETURN_NONE;
        t = PyTuple_Pack(2, environ, sr);
        Py_DECREF(environ);
        Py_DECREF(sr);
        return t;
}

/* begin_scope(state) -> the http scope to call an ASGI app with (state: the lifespan's dict,
 * copied into it, or None); None when gcorn answered by itself; False for a WebSocket's
 * opening handshake, which is begun with begin() instead (its upgrade reads the environ).
 * No environ is built unless post_request or the access log is to see one. */
static PyObject *req_begin_scope(PyObject *self, PyObject *state) {
        AioRequest *a = (AioRequest *) self;
        PyObject *scope = NULL;
        int r;

        if (!check_unbegun(a))
                return NULL;
        if (websocket_requested(conn_request(a->conn)))
                Py_RETURN_FALSE;
        r = wsgi_aio_begin(a->conn, &a->stream, NULL, NULL);
        if (r < 0)
                return raise_errno(r);
        if (r > 0)
                Py_RETURN_NONE;
        r = scope_build(conn_request(a->conn), conn_info(a->conn), SCOPE_HTTP, state == Py_None ? NULL : state,
                        &scope);
        if (r < 0)
                return raise_errno(r);
        return scope;
}

/* input() -> the request's wsgi.input, for its body */
static PyObject *req_input(PyObject *self, PyObject *Py_UNUSED(ignored)) {
        AioRequest *a = (AioRequest *) self;

        if (!check_stream(a))
                return NULL;
        return Py_NewRef(wsgi_aio_input(a->stream));
}

static PyObject *req_start_response(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
        AioRequest *a = (AioRequest *) self;

        if (!check_stream(a))
                return NULL;
        return wsgi_aio_start_response(a->stream, args, (size_t) nargs, kwnames);
}

static PyObject *req_result(PyObject *self, PyObject *result) {
        AioRequest *a = (AioRequest *) self;
        int r;

        if (!check_stream(a))
                return NULL;
        r = wsgi_aio_result(a->stream, result);
        return r < 0 ? NULL : PyLong_FromLong(r);
}

static PyObject *req_more(PyObject *self, PyObject *Py_UNUSED(ignored)) {
        AioRequest *a = (AioRequest *) self;
        int r;

        if (!check_stream(a))
                return NULL;
        r = wsgi_aio_more(a->stream);
        return r < 0 ? NULL : PyLong_FromLong(r);
}

static PyObject *req_item(PyObject *self, PyObject *item) {
        AioRequest *a = (AioRequest *) self;
        int r;

        if (!check_stream(a))
                return NULL;
        r = wsgi_aio_item(a->stream, item);
        return r < 0 ? NULL : PyBool_FromLong(r);
}

static PyObject *req_write(PyObject *self, PyObject *data) {
        AioRequest *a = (AioRequest *) self;
        int r;

        if (!check_stream(a))
                return NULL;
        r = wsgi_aio_write(a->stream, data);
        return r < 0 ? NULL : PyBool_FromLong(r);
}

static PyObject *req_end_body(PyObject *self, PyObject *Py_UNUSED(ignored)) {
        AioRequest *a = (AioRequest *) self;

        if (!check_stream(a) || wsgi_aio_end_body(a->stream) < 0)
                return NULL;
        Py_RETURN_NONE;
}

static bool check_exc(PyObject *exc, bool may_be_none) {
        if (PyExceptionInstance_Check(exc) || (may_be_none && exc == Py_None))
                return true;
        PyErr_SetString(PyExc_TypeError, "an exception instance is needed");
        return false;
}

static PyObject *req_fail(PyObject *self, PyObject *exc) {
        AioRequest *a = (AioRequest *) self;

        if (!check_open(a) || !check_exc(exc, true))
                return NULL;
        if (!a->stream) {
                /* begin() itself failed before the request had a state: nothing can answer */
                if (exc != Py_None) {
                        PyErr_Restore(Py_NewRef((PyObject *) Py_TYPE(exc)), Py_NewRef(exc),
                                      PyException_GetTraceback(exc));
                        python_log_exception(LOG_ERR, "Error handling request");
                }
                conn_set_must_close(a->conn);
                Py_RETURN_NONE;
        }
        wsgi_aio_fail(a->stream, exc == Py_None ? NULL : exc);
        Py_RETURN_NONE;
}

static PyObject *req_close_failed(PyObject *self, PyObject *exc) {
        AioRequest *a = (AioRequest *) self;

        if (!check_stream(a) || !check_exc(exc, false))
                return NULL;
        wsgi_aio_close_failed(a->stream, exc);
        Py_RETURN_NONE;
}

static PyObject *req_finish(PyObject *self, PyObject *Py_UNUSED(ignored)) {
        AioRequest *a = (AioRequest *) self;
        WsgiResult res = {};
        Conn *c = a->conn;
        int r = -EIO;

        if (!check_open(a))
                return NULL;
        Py_CLEAR(a->hangup);
        if (a->stream)
                r = wsgi_aio_finish(c, TAKE_PTR(a->stream), &res);
        else
                conn_set_must_close(c);
        a->conn = NULL;
        worker_aio_done(c, r, &res);
        if (PyErr_Occurred())
                return NULL;
        Py_RETURN_NONE;
}

static PyObject *req_wait(PyObject *self, PyObject *Py_UNUSED(ignored)) {
        AioRequest *a = (AioRequest *) self;

        if (!check_open(a))
                return NULL;
        if (a->io.done && a->io.result < 0 && a->io.op == CONN_IO_DRAIN) {
                /* the last wait failed (timed out): the sends say so from now on */
                a->io.done = false;
                Py_RETURN_FALSE;
        }
        return PyBool_FromLong(worker_aio_wait(a->conn, CONN_IO_DRAIN) > 0);
}

static PyObject *req_read(PyObject *self, PyObject *arg) {
        AioRequest *a = (AioRequest *) self;
        Py_ssize_t n = PyNumber_AsSsize_t(arg, PyExc_OverflowError);
        PyObject *b;
        ssize_t k;

        if (n == -1 && PyErr_Occurred())
                return NULL;
        if (!check_open(a))
                return NULL;
        if (n < 0) {
                PyErr_SetString(PyExc_ValueError, "read() needs a count of bytes");
                return NULL;
        }
        b = PyBytes_FromStringAndSize(NULL, n);
        if (!b)
                return NULL;
        k = conn_read_body(a->conn, PyBytes_AS_STRING(b), (size_t) n);
        if (k == -EAGAIN) {
                Py_DECREF(b);
                Py_RETURN_NONE;
        }
        if (k < 0) {
                Py_DECREF(b);
                return raise_errno((int) k);
        }
        if (k != n && _PyBytes_Resize(&b, k) < 0)
                return NULL;
        return b;
}

/* watch_hangup(cb or None) */
static PyObject *req_watch_hangup(PyObject *self, PyObject *cb) {
        AioRequest *a = (AioRequest *) self;
        int r;

        if (cb == Py_None) {
                Py_CLEAR(a->hangup);
                if (a->conn)
                        (void) worker_aio_watch_hangup(a->conn, false);
                Py_RETURN_NONE;
        }
        if (!check_open(a))
                return NULL;
        if (!PyCallable_Check(cb)) {
                PyErr_SetString(PyExc_TypeError, "watch_hangup() needs a callable or None");
                return NULL;
        }
        r = worker_aio_watch_hangup(a->conn, true);
        if (r < 0)
                return raise_errno(r);
        Py_XSETREF(a->hangup, Py_NewRef(cb));
        Py_RETURN_NONE;
}

static void req_dealloc(PyObject *self) {
        AioRequest *a = (AioRequest *) self;

        if (a->conn) {
                /* The driver always finishes; a request dropped unfinished keeps its
                 * connection (the loop never takes it back) but must not leave the link
                 * pointing here. */
                log_error("A request was dropped without being finished");
                if (conn_link(a->conn)->io == &a->io)
                        conn_link(a->conn)->io = NULL;
        }
        Py_XDECREF(a->waiter);
        Py_XDECREF(a->hangup);
        Py_TYPE(self)->tp_free(self);
}

static PyMethodDef req_methods[] = {
        { "begin", req_begin, METH_NOARGS, "begin() -> (environ, start_response) or None" },
        { "begin_scope", req_begin_scope, METH_O, "begin_scope(state) -> the http scope, None or False" },
        { "input", req_input, METH_NOARGS, "input() -> the request's wsgi.input" },
        { "start_response", (PyCFunction) (void (*)(void)) req_start_response, METH_FASTCALL | METH_KEYWORDS,
          "start_response(status, headers, exc_info=None), for the app's" },
        { "result", req_result, METH_O, "result(iterable) -> 0, 1, 2 or 3" },
        { "more", req_more, METH_NOARGS, "more() -> 0 or 1" },
        { "item", req_item, METH_O, "item(bytes) -> bool: room for more" },
        { "write", req_write, METH_O, "write(bytes) -> bool: room for more" },
        { "end_body", req_end_body, METH_NOARGS, "end_body()" },
        { "fail", req_fail, METH_O, "fail(exception or None)" },
        { "close_failed", req_close_failed, METH_O, "close_failed(exception)" },
        { "finish", req_finish, METH_NOARGS, "finish()" },
        { "wait", req_wait, METH_NOARGS, "wait() -> bool: wait for on_wake, then call again" },
        { "read", req_read, METH_O, "read(n) -> bytes, b'' at the end, None: would block" },
        { "watch_hangup", req_watch_hangup, METH_O, "watch_hangup(cb or None): cb() once the client is gone" },
        { NULL, NULL, 0, NULL },
};

static PyMemberDef req_members[] = {
        { "waiter", T_OBJECT, offsetof(AioRequest, waiter), 0, "free for the driver" },
        { NULL, 0, 0, 0, NULL },
};

static PyTypeObject request_type = {
        PyVarObject_HEAD_INIT(NULL, 0)
        .tp_name = "_gcorn_aio.Request",
        .tp_basicsize = sizeof(AioRequest),
        .tp_flags = Py_TPFLAGS_DEFAULT,
        .tp_doc = "One request, run by a task of the Python event loop.",
        .tp_dealloc = req_dealloc,
        .tp_methods = req_methods,
        .tp_members = req_members,
};

Conn *aio_request_conn(PyObject *req) {
        if (!PyObject_TypeCheck(req, &request_type)) {
                PyErr_SetString(PyExc_TypeError, "a _gcorn_aio.Request is needed");
                return NULL;
        }
        return check_open((AioRequest *) req) ? ((AioRequest *) req)->conn : NULL;
}

WsgiStream *aio_request_stream(PyObject *req) {
        Conn *c = aio_request_conn(req);

        return c && check_stream((AioRequest *) req) ? ((AioRequest *) req)->stream : NULL;
}

static PyObject *mod_fd(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored)) {
        return PyLong_FromLong(worker_aio_fd());
}

static PyObject *mod_step(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored)) {
        int ms = worker_aio_step();

        if (PyErr_Occurred())
                return NULL;
        if (ms < 0)
                Py_RETURN_NONE;
        return PyFloat_FromDouble(ms / 1000.0);
}

void aio_running(PyObject *req) {
        AioRequest *a = req && Py_IS_TYPE(req, &request_type) ? (AioRequest *) req : NULL;

        worker_aio_running(a ? a->conn : NULL);
}

/* greenlet.settrace()'s callback, called on every switch between greenlets: the request of
 * the greenlet switched to runs now (none: the hub). In C, as a Python function it cost a
 * tenth of a request that waits once (four switches). */
static PyObject *mod_trace(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs) {
        PyObject *event, *target, *req = NULL;

        if (nargs != 2) {
                PyErr_SetString(PyExc_TypeError, "trace(event, args)");
                return NULL;
        }
        event = args[0];
        if (event != str_switch && event != str_throw) {
                /* greenlet's own strings are interned as ours are: anything else is
                 * another event, unless a caller made its own "switch" */
                if (!PyUnicode_Check(event) ||
                    (PyUnicode_Compare(event, str_switch) != 0 && PyUnicode_Compare(event, str_throw) != 0))
                        Py_RETURN_NONE;
        }
        if (!PyTuple_Check(args[1]) || PyTuple_GET_SIZE(args[1]) != 2) {
                PyErr_SetString(PyExc_TypeError, "trace(): args is (origin, target)");
                return NULL;
        }
        target = PyTuple_GET_ITEM(args[1], 1);
        if (running_by_greenlet) {
                req = PyDict_GetItemWithError(running_by_greenlet, target);
                if (!req && PyErr_Occurred())
                        return NULL;
        }
        aio_running(req);
        Py_RETURN_NONE;
}

static PyObject *mod_retiring(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored)) {
        return PyBool_FromLong(worker_aio_retiring());
}

static PyObject *mod_start(PyObject *Py_UNUSED(self), PyObject *args) {
        PyObject *req, *wake, *held = Py_None, *running = Py_None;

        if (!PyArg_ParseTuple(args, "OO|OO:start", &req, &wake, &held, &running))
                return NULL;
        if (running != Py_None && !PyDict_Check(running)) {
                PyErr_SetString(PyExc_TypeError, "start(): running must be a dict");
                return NULL;
        }
        Py_XSETREF(running_by_greenlet, running == Py_None ? NULL : Py_NewRef(running));
        Py_XSETREF(on_request, Py_NewRef(req));
        Py_XSETREF(on_wake, Py_NewRef(wake));
        Py_XSETREF(on_held, held == Py_None ? NULL : Py_NewRef(held));
        worker_aio_hold(on_held != NULL);
        Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
        { "fd", mod_fd, METH_NOARGS, "fd() -> the worker's epoll fd" },
        { "step", mod_step, METH_NOARGS, "step() -> seconds until the next call, or None: done" },
        { "start", mod_start, METH_VARARGS, "start(on_request, on_wake, on_held=None, running=None)" },
        { "trace", (PyCFunction) (void (*)(void)) mod_trace, METH_FASTCALL,
          "trace(event, (origin, target)): greenlet.settrace()'s callback; names start()'s running[target]" },
        { "retiring", mod_retiring, METH_NOARGS, "retiring() -> the worker is leaving: end long-lived requests" },
        { NULL, NULL, 0, NULL },
};

static struct PyModuleDef module_def = {
        PyModuleDef_HEAD_INIT,
        .m_name = "_gcorn_aio",
        .m_doc = "The worker's loop, driven from a Python event loop.",
        .m_size = -1,
        .m_methods = module_methods,
};

/* The module, made once and put in sys.modules. Borrowed, or NULL with a Python error. */
PyObject *aio_module(void) {
        if (module)
                return module;
        if (PyType_Ready(&request_type) < 0)
                return NULL;
        if (!str_switch && !(str_switch = PyUnicode_InternFromString("switch")))
                return NULL;
        if (!str_throw && !(str_throw = PyUnicode_InternFromString("throw")))
                return NULL;
        module = PyModule_Create(&module_def);
        if (!module)
                return NULL;
        if (PyModule_AddObjectRef(module, "Request", (PyObject *) &request_type) < 0 ||
            PyDict_SetItemString(PyImport_GetModuleDict(), "_gcorn_aio", module) < 0) {
                Py_CLEAR(module);
                return NULL;
        }
        return module;
}

/* Calls cb(req); a failure is logged (a callback must not fail: the request would hang). */
static int call_back(PyObject *cb, AioRequest *a) {
        PyObject *r;

        if (!cb) {
                PyErr_SetString(PyExc_RuntimeError, "_gcorn_aio.start() was not called");
                python_log_exception(LOG_ERR, "The event loop cannot take a request");
                return -EINVAL;
        }
        r = PyObject_CallOneArg(cb, (PyObject *) a);
        if (!r) {
                python_log_exception(LOG_ERR, "The event loop cannot take a request");
                return -EINVAL;
        }
        Py_DECREF(r);
        return 0;
}

void aio_dispatch(Conn *c) {
        AioRequest *a;

        python_gil_acquire();
        a = PyObject_New(AioRequest, &request_type);
        if (a) {
                a->conn = c;
                a->stream = NULL;
                a->io = (ConnIo) { .owner = a };
                a->waiter = NULL;
                a->hangup = NULL;
                conn_link(c)->io = &a->io;
                if (call_back(on_request, a) < 0) {
                        /* nobody runs it: the connection goes */
                        a->conn = NULL;
                        conn_link(c)->io = NULL;
                        conn_set_must_close(c);
                        worker_aio_done(c, -EIO, &(WsgiResult) {});
                }
                Py_DECREF(a);
        } else {
                python_log_exception(LOG_ERR, "Failed to take a request");
                conn_set_must_close(c);
                worker_aio_done(c, -ENOMEM, &(WsgiResult) {});
        }
        python_gil_release();
}

void aio_held(void) {
        /* PyGILState: a task's call, but some sends drop the GIL around conn_write()
         * (Py_BEGIN_ALLOW_THREADS) */
        PyGILState_STATE g = PyGILState_Ensure();
        PyObject *r = PyObject_CallNoArgs(on_held);

        if (!r)
                python_log_exception(LOG_ERR, "The event loop cannot take a held answer");
        Py_XDECREF(r);
        PyGILState_Release(g);
}

void aio_io_done(ConnIo *io) {
        AioRequest *a = io->owner;

        io->done = true;
        python_gil_acquire();
        (void) call_back(on_wake, a);
        python_gil_release();
}

void aio_hung_up(ConnIo *io) {
        AioRequest *a = io->owner;
        PyObject *cb, *r;

        python_gil_acquire();
        cb = TAKE_PTR(a->hangup);
        if (cb) {
                r = PyObject_CallNoArgs(cb);
                if (!r)
                        python_log_exception(LOG_ERR, "The event loop cannot take a client's hang-up");
                Py_XDECREF(r);
                Py_DECREF(cb);
        }
        python_gil_release();
}

int aio_gevent_check(bool preload, char **ret_error) {
        PyObject *gevent;
        int r = 0;

        python_gil_acquire();
        /* Imported, as Gunicorn's master imports its worker class (which imports gevent);
         * nothing of it runs before a worker patches. */
        gevent = PyImport_ImportModule("gevent");
        if (!gevent) {
                PyObject *type, *value, *tb, *str = NULL;
                const char *why = NULL;

                PyErr_Fetch(&type, &value, &tb);
                if (value)
                        str = PyObject_Str(value);
                if (str)
                        why = PyUnicode_AsUTF8(str);
                if (asprintf(ret_error, "The gevent worker needs gevent, which cannot be imported: %s "
                             "(Debian: apt install python3-gevent)", why ? why : "unknown error") < 0)
                        *ret_error = NULL;
                PyErr_Clear();
                Py_XDECREF(str);
                Py_XDECREF(type);
                Py_XDECREF(value);
                Py_XDECREF(tb);
                r = -ENOENT;
        } else if (preload)
                log_warning("--preload with the gevent worker: the app is imported in the master, before each "
                            "worker patches the standard library with gevent.monkey.patch_all(), so what it bound "
                            "at import time (from time import sleep) stays blocking; patch at the top of the "
                            "config file to have it done first");
        Py_XDECREF(gevent);
        python_gil_release();
        return r;
}

/* The driver (src/py/gevent_worker.py) as the module _gcorn_gevent, made once: the worker
 * sets gevent up with it before the app is imported, then runs the hub with it. Borrowed, or
 * NULL with a Python error. */
static PyObject *driver;

static PyObject *gevent_driver(void) {
        PyObject *code;

        if (driver)
                return driver;
        code = Py_CompileString(gcorn_gevent_worker_py, "gcorn/gevent_worker.py", Py_file_input);
        if (code)
                driver = PyImport_ExecCodeModule("_gcorn_gevent", code);
        Py_XDECREF(code);
        return driver;
}

int aio_gevent_patch(char *error, size_t error_size) {
        PyObject *d, *r = NULL;
        int ret = 0;

        python_gil_acquire();
        /* The hub's libev backend, gevent.monkey.patch_all() and gevent.reinit() (a hub the
         * master made for a preloaded app is not this process's): the driver's setup(). */
        d = gevent_driver();
        if (d)
                r = PyObject_CallMethod(d, "setup", NULL);
        if (!r) {
                _cleanup_free_ char *why = python_format_exception();

                snprintf(error, error_size, "Failed to set up gevent: %s", why ? why : "unknown error");
                log_error("%s", error);
                ret = -EINVAL;
        }
        Py_XDECREF(r);
        python_gil_release();
        return ret;
}

void aio_run(void *app) {
        PyObject *core, *d = NULL, *r = NULL;

        python_gil_acquire();
        core = aio_module();
        if (core)
                d = gevent_driver();
        if (d)
                r = PyObject_CallMethod(d, "run", "OO", core, (PyObject *) app);
        if (!r)
                python_log_exception(LOG_ERR, "The gevent worker's loop failed");
        Py_XDECREF(r);
        Py_CLEAR(driver);
        Py_CLEAR(on_request);
        Py_CLEAR(on_wake);
        python_gil_release();
}
