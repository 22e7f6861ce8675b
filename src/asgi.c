/* The asgi worker's C side: the _gcorn_asgi module its driver (src/py/asgi_worker.py) calls,
 * and the driver's start and run. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcorn/aio.h"
#include "gcorn/asgi.h"
#include "gcorn/conn.h"
#include "gcorn/environ.h"
#include "gcorn/log.h"
#include "gcorn/macro.h"
#include "gcorn/python.h"
#include "gcorn/scope.h"
#include "gcorn/websocket.h"

/* src/py/asgi_worker.py, NUL-terminated (generated at build time) */
extern const char gcorn_asgi_worker_py[];

static PyObject *driver;

/* ---- WebSocket: one session of websocket.c ---- */

typedef struct PyWebSocket {
        PyObject_HEAD
        WebSocket *ws;
} PyWebSocket;

static PyObject *ws_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
        unsigned long long max_message;
        PyWebSocket *self;
        int r;

        (void) kwds;
        if (!PyArg_ParseTuple(args, "K:WebSocket", &max_message))
                return NULL;
        self = (PyWebSocket *) type->tp_alloc(type, 0);
        if (!self)
                return NULL;
        r = websocket_new(max_message, &self->ws);
        if (r < 0) {
                Py_DECREF(self);
                return PyErr_NoMemory();
        }
        return (PyObject *) self;
}

static void ws_dealloc(PyObject *self) {
        websocket_free(((PyWebSocket *) self)->ws);
        Py_TYPE(self)->tp_free(self);
}

/* feed(data) -> [(opcode, payload, close code), ...]; ValueError when the peer broke the
 * protocol (the close frame for it is in output()). */
static PyObject *ws_feed(PyObject *self, PyObject *arg) {
        WebSocket *ws = ((PyWebSocket *) self)->ws;
        Py_buffer b;
        PyObject *l;
        WebSocketMessage m;
        int r;

        if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
                return NULL;
        r = websocket_feed(ws, b.buf, (size_t) b.len);
        PyBuffer_Release(&b);
        if (r == -ENOMEM)
                return PyErr_NoMemory();
        l = PyList_New(0);
        if (!l)
                return NULL;
        while (websocket_next(ws, &m) > 0) {
                PyObject *t = Py_BuildValue("(iy#i)", (int) m.opcode, (const char *) m.data, (Py_ssize_t) m.len,
                                            (int) m.code);

                free(m.data);
                if (!t || PyList_Append(l, t) < 0) {
                        Py_XDECREF(t);
                        Py_DECREF(l);
                        return NULL;
                }
                Py_DECREF(t);
        }
        if (r == -EPROTO) {
                Py_DECREF(l);
                PyErr_SetString(PyExc_ValueError, "the WebSocket peer broke the protocol");
                return NULL;
        }
        return l;
}

static PyObject *ws_result(int r) {
        if (r == -ENOMEM)
                return PyErr_NoMemory();
        if (r == -EPIPE) {
                errno = EPIPE;
                return PyErr_SetFromErrno(PyExc_OSError);
        }
        if (r < 0) {
                PyErr_SetString(PyExc_ValueError, "invalid WebSocket message");
                return NULL;
        }
        Py_RETURN_NONE;
}

static PyObject *ws_send_text(PyObject *self, PyObject *arg) {
        const char *p;
        Py_ssize_t n;

        p = PyUnicode_AsUTF8AndSize(arg, &n);
        if (!p)
                return NULL;
        return ws_result(websocket_send(((PyWebSocket *) self)->ws, WEBSOCKET_TEXT, p, (size_t) n));
}

static PyObject *ws_send_buffer(PyObject *self, PyObject *arg, WebSocketOpcode opcode) {
        Py_buffer b;
        int r;

        if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
                return NULL;
        r = websocket_send(((PyWebSocket *) self)->ws, opcode, b.buf, (size_t) b.len);
        PyBuffer_Release(&b);
        return ws_result(r);
}

static PyObject *ws_send_bytes(PyObject *self, PyObject *arg) {
        return ws_send_buffer(self, arg, WEBSOCKET_BINARY);
}

static PyObject *ws_ping(PyObject *self, PyObject *arg) {
        return ws_send_buffer(self, arg, WEBSOCKET_PING);
}

static PyObject *ws_close(PyObject *self, PyObject *args) {
        int code;
        const char *reason;
        Py_ssize_t n;

        if (!PyArg_ParseTuple(args, "iy#:close", &code, &reason, &n))
                return NULL;
        if (code < 0 || code > 65535) {
                PyErr_SetString(PyExc_ValueError, "invalid WebSocket close code");
                return NULL;
        }
        return ws_result(websocket_close(((PyWebSocket *) self)->ws, (uint16_t) code, reason, (size_t) n));
}

static PyObject *ws_output(PyObject *self, PyObject *Py_UNUSED(ignored)) {
        const uint8_t *p;
        size_t n;

        websocket_output(((PyWebSocket *) self)->ws, &p, &n);
        return PyBytes_FromStringAndSize((const char *) p, (Py_ssize_t) n);
}

static PyObject *ws_consumed(PyObject *self, PyObject *arg) {
        Py_ssize_t n = PyNumber_AsSsize_t(arg, PyExc_OverflowError);

        if (n < 0) {
                if (!PyErr_Occurred())
                        PyErr_SetString(PyExc_ValueError, "a count of bytes is needed");
                return NULL;
        }
        websocket_output_consumed(((PyWebSocket *) self)->ws, (size_t) n);
        Py_RETURN_NONE;
}

static PyObject *ws_close_code_sent(PyObject *self, PyObject *Py_UNUSED(ignored)) {
        return PyLong_FromLong(websocket_close_code_sent(((PyWebSocket *) self)->ws));
}

static PyMethodDef ws_methods[] = {
        { "feed", ws_feed, METH_O, "feed(bytes) -> [(opcode, payload, code)]" },
        { "send_text", ws_send_text, METH_O, "send_text(str)" },
        { "send_bytes", ws_send_bytes, METH_O, "send_bytes(bytes)" },
        { "ping", ws_ping, METH_O, "ping(bytes): a ping of at most 125 bytes" },
        { "close", ws_close, METH_VARARGS, "close(code, reason: bytes)" },
        { "output", ws_output, METH_NOARGS, "output() -> the bytes to write" },
        { "consumed", ws_consumed, METH_O, "consumed(n): n bytes of output() went out" },
        { "close_code_sent", ws_close_code_sent, METH_NOARGS, "close_code_sent() -> int, 0: none" },
        { NULL, NULL, 0, NULL },
};

static PyTypeObject websocket_type = {
        PyVarObject_HEAD_INIT(NULL, 0)
        .tp_name = "_gcorn_asgi.WebSocket",
        .tp_basicsize = sizeof(PyWebSocket),
        .tp_flags = Py_TPFLAGS_DEFAULT,
        .tp_doc = "One server-side WebSocket session (libwslay), fed and drained through memory.",
        .tp_new = ws_new,
        .tp_dealloc = ws_dealloc,
        .tp_methods = ws_methods,
};

/* ---- Named: a request's coroutine, each step of it marked as the request's ---- */

/* named(coro, req): awaiting it runs coro, telling the core before each of its steps that
 * req's task runs and after it that none does, so the watchdog's report of a coroutine that
 * blocks the loop names its request. Written in C for its cost: a step is one PyIter_Send
 * (a coroutine's return raises no StopIteration), with no wrapper generator around it. */
typedef struct Named {
        PyObject_HEAD
        PyObject *coro;
        PyObject *req;
} Named;

static PyTypeObject named_type;

static PyObject *named_new(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs) {
        PyAsyncMethods *am;
        PyObject *coro;
        Named *n;

        if (nargs != 2) {
                PyErr_SetString(PyExc_TypeError, "named() takes a coroutine and a request");
                return NULL;
        }
        am = Py_TYPE(args[0])->tp_as_async;
        if (am && am->am_send)
                /* a coroutine: stepped as it is */
                coro = Py_NewRef(args[0]);
        else if (am && am->am_await) {
                /* any other awaitable: its iterator is */
                coro = am->am_await(args[0]);
                if (!coro)
                        return NULL;
                if (!PyIter_Check(coro)) {
                        PyErr_Format(PyExc_TypeError, "__await__() returned %R, not an iterator", coro);
                        Py_DECREF(coro);
                        return NULL;
                }
        } else {
                PyErr_Format(PyExc_TypeError, "the ASGI app returned %R, which is not awaitable", args[0]);
                return NULL;
        }
        n = PyObject_GC_New(Named, &named_type);
        if (!n) {
                Py_DECREF(coro);
                return NULL;
        }
        n->coro = coro;
        n->req = Py_NewRef(args[1]);
        PyObject_GC_Track(n);
        return (PyObject *) n;
}

static int named_traverse(PyObject *self, visitproc visit, void *arg) {
        Py_VISIT(((Named *) self)->coro);
        Py_VISIT(((Named *) self)->req);
        return 0;
}

static int named_clear(PyObject *self) {
        Py_CLEAR(((Named *) self)->coro);
        Py_CLEAR(((Named *) self)->req);
        return 0;
}

static void named_dealloc(PyObject *self) {
        PyObject_GC_UnTrack(self);
        (void) named_clear(self);
        PyObject_GC_Del(self);
}

static PySendResult named_send(PyObject *self, PyObject *value, PyObject **result) {
        Named *n = (Named *) self;
        PySendResult r;

        if (!n->coro) {
                PyErr_SetString(PyExc_RuntimeError, "the request's coroutine is gone");
                *result = NULL;
                return PYGEN_ERROR;
        }
        aio_running(n->req);
        r = PyIter_Send(n->coro, value, result);
        aio_running(NULL);
        return r;
}

/* The iterator's protocol, for callers that do not send */
static PyObject *named_iternext(PyObject *self) {
        PyObject *result;

        switch (named_send(self, Py_None, &result)) {
        case PYGEN_NEXT:
                return result;
        case PYGEN_RETURN:
                if (result == Py_None)
                        PyErr_SetNone(PyExc_StopIteration);
                else {
                        /* the value is the exception's argument, whatever its type */
                        PyObject *e = PyObject_CallOneArg(PyExc_StopIteration, result);

                        if (e) {
                                PyErr_SetObject(PyExc_StopIteration, e);
                                Py_DECREF(e);
                        }
                }
                Py_DECREF(result);
                return NULL;
        default:
                return NULL;
        }
}

static PyObject *named_send_method(PyObject *self, PyObject *value) {
        PyObject *result;

        switch (named_send(self, value, &result)) {
        case PYGEN_NEXT:
                return result;
        case PYGEN_RETURN:
                PyErr_SetObject(PyExc_StopIteration, result);
                Py_DECREF(result);
                return NULL;
        default:
                return NULL;
        }
}

/* throw() and close(): the coroutine's own, as req's step (cancellation comes this way);
 * args NULL: none */
static PyObject *named_call(PyObject *self, const char *method, PyObject *args) {
        Named *n = (Named *) self;
        PyObject *m, *r;

        if (!n->coro) {
                PyErr_SetString(PyExc_RuntimeError, "the request's coroutine is gone");
                return NULL;
        }
        m = PyObject_GetAttrString(n->coro, method);
        if (!m)
                return NULL;
        aio_running(n->req);
        r = args ? PyObject_Call(m, args, NULL) : PyObject_CallNoArgs(m);
        aio_running(NULL);
        Py_DECREF(m);
        return r;
}

static PyObject *named_throw(PyObject *self, PyObject *args) {
        return named_call(self, "throw", args);
}

static PyObject *named_close(PyObject *self, PyObject *Py_UNUSED(ignored)) {
        return named_call(self, "close", NULL);
}

static PyObject *named_await(PyObject *self) {
        return Py_NewRef(self);
}

static PyMethodDef named_methods[] = {
        { "send", named_send_method, METH_O, "send(value)" },
        { "throw", named_throw, METH_VARARGS, "throw(exc)" },
        { "close", named_close, METH_NOARGS, "close()" },
        { NULL, NULL, 0, NULL },
};

static PyAsyncMethods named_async = {
        .am_await = named_await,
        .am_send = named_send,
};

static PyTypeObject named_type = {
        PyVarObject_HEAD_INIT(NULL, 0)
        .tp_name = "_gcorn_asgi.Named",
        .tp_basicsize = sizeof(Named),
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
        .tp_doc = "A request's coroutine, each step of it marked as the request's (named()).",
        .tp_dealloc = named_dealloc,
        .tp_traverse = named_traverse,
        .tp_clear = named_clear,
        .tp_as_async = &named_async,
        .tp_iter = named_await,
        .tp_iternext = named_iternext,
        .tp_methods = named_methods,
};

/* ---- DONE: an awaitable that is complete, for a send() that had nothing to wait for ---- */

static PySendResult done_send(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(value), PyObject **result) {
        *result = Py_NewRef(Py_None);
        return PYGEN_RETURN;
}

/* StopIteration (None): no exception set */
static PyObject *done_iternext(PyObject *Py_UNUSED(self)) {
        return NULL;
}

static PyObject *done_close(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored)) {
        Py_RETURN_NONE;
}

static PyMethodDef done_methods[] = {
        { "close", done_close, METH_NOARGS, "close()" },
        { NULL, NULL, 0, NULL },
};

static PyAsyncMethods done_async = {
        .am_await = named_await,
        .am_send = done_send,
};

static PyTypeObject done_type = {
        PyVarObject_HEAD_INIT(NULL, 0)
        .tp_name = "_gcorn_asgi.Done",
        .tp_basicsize = sizeof(PyObject),
        .tp_flags = Py_TPFLAGS_DEFAULT,
        .tp_doc = "Awaiting it returns None at once: what a send() with nothing to wait for returns.",
        .tp_as_async = &done_async,
        .tp_iter = named_await,
        .tp_iternext = done_iternext,
        .tp_methods = done_methods,
};

/* Static, as CPython's None is: PyObject_HEAD_INIT() spells the header for each version
 * (a plain refcount in 3.11, an immortal one from 3.12). */
static struct {
        PyObject_HEAD
} done_object = { PyObject_HEAD_INIT(&done_type) };
#define DONE ((PyObject *) &done_object)

/* ---- Http: the state of one http request's send(), and its common cases ---- */

/* The driver's _Http derives from it: its send() handles in C the messages of a response
 * given whole (http.response.start, then one http.response.body without more_body), with the
 * same rules and results as the driver's _send(), which takes every other case (and every
 * failure, whose message it words). */
typedef struct Http {
        PyObject_HEAD
        PyObject *req;
        PyObject *gone;                 /* NULL (None), True, or a future to resolve */
        Py_ssize_t chunks;
        int status;
        char started, complete, disconnected;
} Http;

static PyObject *key_type, *key_status, *key_headers, *key_body, *key_more_body;
static PyObject *kind_start, *kind_body, *status_lines, *name_send, *name_mark_gone, *name_client_gone,
        *name_ending;

static int http_traverse(PyObject *self, visitproc visit, void *arg) {
        Py_VISIT(((Http *) self)->req);
        Py_VISIT(((Http *) self)->gone);
        return 0;
}

static int http_clear(PyObject *self) {
        Py_CLEAR(((Http *) self)->req);
        Py_CLEAR(((Http *) self)->gone);
        return 0;
}

static void http_dealloc(PyObject *self) {
        PyObject_GC_UnTrack(self);
        (void) http_clear(self);
        Py_TYPE(self)->tp_free(self);
}

static bool is_kind(PyObject *kind, PyObject *interned) {
        return kind == interned || (PyUnicode_CheckExact(kind) && PyUnicode_Compare(kind, interned) == 0);
}

static PyObject *http_start(Http *h, PyObject *message) {
        PyObject *status, *headers, *line, *args[2], *r;
        WsgiStream *st;
        long code;

        status = PyDict_GetItemWithError(message, key_status);
        if (!status || !PyLong_CheckExact(status))
                return NULL;
        code = PyLong_AsLong(status);
        if (code < 200 || code > 599) {
                PyErr_Clear();
                return NULL;
        }
        headers = PyDict_GetItemWithError(message, key_headers);
        if (!headers) {
                if (PyErr_Occurred())
                        return NULL;
                headers = Py_None;
        } else if (!PyList_CheckExact(headers) && !PyTuple_CheckExact(headers))
                return NULL;
        line = PyDict_GetItemWithError(status_lines, status);
        if (!line)
                return NULL;
        st = aio_request_stream(h->req);
        if (!st)
                return NULL;
        args[0] = line;
        args[1] = headers == Py_None ? PyTuple_New(0) : Py_NewRef(headers);
        if (!args[1])
                return NULL;
        r = wsgi_aio_start_response_bytes(st, args, 2);
        Py_DECREF(args[1]);
        if (!r) {
                /* headers of other buffers than bytes: _send() converts them */
                if (PyErr_ExceptionMatches(PyExc_TypeError))
                        PyErr_Clear();
                return NULL;
        }
        Py_DECREF(r);
        h->started = 1;
        h->status = (int) code;
        return Py_NewRef(DONE);
}

static PyObject *http_body(Http *h, PyObject *message) {
        PyObject *body, *more, *t;
        WsgiStream *st;
        int code;

        body = PyDict_GetItemWithError(message, key_body);
        if (!body || !PyBytes_CheckExact(body))
                return NULL;
        more = PyDict_GetItemWithError(message, key_more_body);
        if (more ? more != Py_False : PyErr_Occurred() != NULL)
                return NULL;
        st = aio_request_stream(h->req);
        if (!st)
                return NULL;
        /* the whole body at once: its length goes in the head */
        h->complete = 1;
        t = PyTuple_Pack(1, body);
        if (!t)
                return NULL;
        code = wsgi_aio_result(st, t);
        Py_DECREF(t);
        if (code < 0) {
                if (!PyErr_ExceptionMatches(PyExc_OSError))
                        return NULL;
                PyErr_Clear();
                t = PyObject_CallMethodNoArgs((PyObject *) h, name_client_gone);
                if (!t)
                        return NULL;
                Py_DECREF(t);
                return Py_NewRef(DONE);
        }
        if (code != 1) {
                PyObject *c = PyLong_FromLong(code);

                t = c ? PyObject_CallMethodOneArg((PyObject *) h, name_ending, c) : NULL;
                Py_XDECREF(c);
                return t;
        }
        if (!h->gone || h->gone == Py_None) {
                Py_XSETREF(h->gone, Py_NewRef(Py_True));
                return Py_NewRef(DONE);
        }
        t = PyObject_CallMethodNoArgs((PyObject *) h, name_mark_gone);
        if (!t)
                return NULL;
        Py_DECREF(t);
        return Py_NewRef(DONE);
}

/* send(message): an awaitable, as the driver's _send() returns */
static PyObject *http_send(PyObject *self, PyObject *message) {
        Http *h = (Http *) self;
        PyObject *kind, *r = NULL;

        /* each case returns NULL without an error for what it leaves to _send() (which words
         * the refusal of a bad message), with one for a failure _send() would raise as well */
        if (PyDict_CheckExact(message) && h->req && status_lines) {
                kind = PyDict_GetItemWithError(message, key_type);
                if (kind && !h->started && is_kind(kind, kind_start))
                        r = http_start(h, message);
                else if (kind && h->started && !h->complete && !h->disconnected && h->chunks == 0 &&
                         is_kind(kind, kind_body))
                        r = http_body(h, message);
                if (r || PyErr_Occurred())
                        return r;
        }
        return PyObject_CallMethodOneArg(self, name_send, message);
}

static PyMethodDef http_methods[] = {
        { "send", http_send, METH_O, "send(message) -> an awaitable" },
        { NULL, NULL, 0, NULL },
};

static PyMemberDef http_members[] = {
        { "req", T_OBJECT, offsetof(Http, req), 0, "the request (_gcorn_aio.Request)" },
        { "gone", T_OBJECT, offsetof(Http, gone), 0, "None, True, or a future" },
        { "chunks", T_PYSSIZET, offsetof(Http, chunks), 0, "body chunks sent" },
        { "status", T_INT, offsetof(Http, status), 0, "the response's status" },
        { "started", T_BOOL, offsetof(Http, started), 0, "http.response.start was sent" },
        { "complete", T_BOOL, offsetof(Http, complete), 0, "the response is complete" },
        { "disconnected", T_BOOL, offsetof(Http, disconnected), 0, "the client is gone" },
        { NULL, 0, 0, 0, NULL },
};

static PyTypeObject http_type = {
        PyVarObject_HEAD_INIT(NULL, 0)
        .tp_name = "_gcorn_asgi.Http",
        .tp_basicsize = sizeof(Http),
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
        .tp_doc = "The send() state of one http request; the driver's _Http derives from it.",
        .tp_new = PyType_GenericNew,
        .tp_dealloc = http_dealloc,
        .tp_traverse = http_traverse,
        .tp_clear = http_clear,
        .tp_methods = http_methods,
        .tp_members = http_members,
};

static int http_init_names(void) {
        if (key_type)
                return 0;
        key_type = PyUnicode_InternFromString("type");
        key_status = PyUnicode_InternFromString("status");
        key_headers = PyUnicode_InternFromString("headers");
        key_body = PyUnicode_InternFromString("body");
        key_more_body = PyUnicode_InternFromString("more_body");
        kind_start = PyUnicode_InternFromString("http.response.start");
        kind_body = PyUnicode_InternFromString("http.response.body");
        name_send = PyUnicode_InternFromString("_send");
        name_mark_gone = PyUnicode_InternFromString("_mark_gone");
        name_client_gone = PyUnicode_InternFromString("_client_gone");
        name_ending = PyUnicode_InternFromString("_ending");
        if (!key_type || !key_status || !key_headers || !key_body || !key_more_body || !kind_start || !kind_body ||
            !name_send || !name_mark_gone || !name_client_gone || !name_ending)
                return -ENOMEM;
        return 0;
}

/* status_lines(dict): {status: "200 OK", ...}, the lines send() takes its statuses from */
static PyObject *mod_status_lines(PyObject *Py_UNUSED(self), PyObject *d) {
        if (!PyDict_CheckExact(d)) {
                PyErr_SetString(PyExc_TypeError, "a dict is needed");
                return NULL;
        }
        Py_XSETREF(status_lines, Py_NewRef(d));
        Py_RETURN_NONE;
}

/* ---- the request's side ---- */

/* websocket_scope(req, state) -> the websocket scope of an opening handshake (an http
 * request's comes with req.begin_scope()) */
static PyObject *mod_websocket_scope(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs) {
        PyObject *scope = NULL;
        Conn *c;
        int r;

        if (nargs != 2) {
                PyErr_SetString(PyExc_TypeError, "websocket_scope() takes req and state");
                return NULL;
        }
        c = aio_request_conn(args[0]);
        if (!c)
                return NULL;
        r = scope_build(conn_request(c), conn_info(c), SCOPE_WEBSOCKET, args[1] == Py_None ? NULL : args[1], &scope);
        if (r == -EPROTO) {
                /* begin() refused contradictory scheme headers already */
                PyErr_SetString(PyExc_ValueError, "contradictory scheme headers");
                return NULL;
        }
        return r < 0 ? NULL : scope;
}

/* start(req, status, headers): req.start_response() with ASGI's headers as they come, byte
 * pairs (fast-called: one per response) */
static PyObject *mod_start(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs) {
        WsgiStream *st;
        PyObject *r;

        if (nargs != 3) {
                PyErr_SetString(PyExc_TypeError, "start() takes req, status and headers");
                return NULL;
        }
        st = aio_request_stream(args[0]);
        if (!st)
                return NULL;
        r = wsgi_aio_start_response_bytes(st, args + 1, 2);
        if (!r)
                return NULL;
        Py_DECREF(r);
        Py_RETURN_NONE;
}

/* handshake(req) -> None when the opening handshake is good, else (status, reason) */
static PyObject *mod_handshake(PyObject *Py_UNUSED(self), PyObject *req) {
        Conn *c = aio_request_conn(req);
        const char *key, *why = NULL;
        int r;

        if (!c)
                return NULL;
        r = websocket_handshake_check(conn_request(c), &key, &why);
        if (r == 0)
                Py_RETURN_NONE;
        return Py_BuildValue("(is)", r == -EPROTONOSUPPORT ? 426 : 400, why);
}

/* upgrade(req, head) -> (fd, bytes the client sent past the request): the head goes out,
 * and the socket is the WebSocket's from then on */
static PyObject *mod_upgrade(PyObject *Py_UNUSED(self), PyObject *args) {
        PyObject *req;
        const char *head, *rest;
        Py_ssize_t len;
        WsgiStream *st;
        size_t n;
        Conn *c;

        if (!PyArg_ParseTuple(args, "Oy#:upgrade", &req, &head, &len))
                return NULL;
        st = aio_request_stream(req);
        if (!st)
                return NULL;
        c = aio_request_conn(req);
        if (wsgi_aio_upgrade(st, head, (size_t) len) < 0)
                return NULL;
        n = conn_take_unparsed(c, &rest);
        return Py_BuildValue("(iy#)", conn_fd(c), rest, (Py_ssize_t) n);
}

/* body_ready(req) -> whether Request.read() would return without touching the socket */
static PyObject *mod_body_ready(PyObject *Py_UNUSED(self), PyObject *req) {
        Conn *c = aio_request_conn(req);

        return c ? PyBool_FromLong(conn_body_ready(c)) : NULL;
}

/* log_exception(exc, title): exc with its traceback in the error log, under title */
static PyObject *mod_log_exception(PyObject *Py_UNUSED(self), PyObject *args) {
        PyObject *exc;
        const char *title;

        if (!PyArg_ParseTuple(args, "Os:log_exception", &exc, &title))
                return NULL;
        if (!PyExceptionInstance_Check(exc)) {
                PyErr_SetString(PyExc_TypeError, "an exception instance is needed");
                return NULL;
        }
        PyErr_Restore(Py_NewRef((PyObject *) Py_TYPE(exc)), Py_NewRef(exc), PyException_GetTraceback(exc));
        python_log_exception(LOG_ERR, title);
        Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
        { "log_exception", mod_log_exception, METH_VARARGS, "log_exception(exc, title)" },
        { "body_ready", mod_body_ready, METH_O, "body_ready(req) -> bool" },
        { "websocket_scope", (PyCFunction) (void (*)(void)) mod_websocket_scope, METH_FASTCALL,
          "websocket_scope(req, state) -> dict" },
        { "named", (PyCFunction) (void (*)(void)) named_new, METH_FASTCALL, "named(coro, req) -> awaitable" },
        { "start", (PyCFunction) (void (*)(void)) mod_start, METH_FASTCALL, "start(req, status, headers)" },
        { "handshake", mod_handshake, METH_O, "handshake(req) -> None or (status, reason)" },
        { "upgrade", mod_upgrade, METH_VARARGS, "upgrade(req, head) -> (fd, rest)" },
        { "status_lines", mod_status_lines, METH_O, "status_lines({status: line}) for Http.send()" },
        { NULL, NULL, 0, NULL },
};

static struct PyModuleDef module_def = {
        PyModuleDef_HEAD_INIT,
        .m_name = "_gcorn_asgi",
        .m_doc = "The asgi worker's C helpers.",
        .m_size = -1,
        .m_methods = module_methods,
};

static PyObject *module_new(void) {
        PyObject *m;

        if (PyType_Ready(&websocket_type) < 0 || PyType_Ready(&named_type) < 0 || PyType_Ready(&done_type) < 0 ||
            PyType_Ready(&http_type) < 0)
                return NULL;
        if (http_init_names() < 0)
                return PyErr_NoMemory();
        m = PyModule_Create(&module_def);
        if (m && (PyModule_AddObjectRef(m, "WebSocket", (PyObject *) &websocket_type) < 0 ||
                  PyModule_AddObjectRef(m, "Http", (PyObject *) &http_type) < 0 ||
                  PyModule_AddObjectRef(m, "DONE", DONE) < 0))
                Py_CLEAR(m);
        return m;
}

/* ---- the worker ---- */

int asgi_check(const Settings *s, char **ret_error) {
        PyObject *uvloop;
        int r = 0;

        if (strcmp(s->asgi_loop, "uvloop") != 0)
                return 0;
        python_gil_acquire();
        /* imported, not only found: a uvloop that cannot load is as missing */
        uvloop = PyImport_ImportModule("uvloop");
        if (!uvloop) {
                PyObject *type, *exc, *tb, *why;
                const char *text;

                PyErr_Fetch(&type, &exc, &tb);
                PyErr_NormalizeException(&type, &exc, &tb);
                why = exc ? PyObject_Str(exc) : NULL;
                text = why ? PyUnicode_AsUTF8(why) : NULL;
                PyErr_Clear();
                Py_XDECREF(type);
                Py_XDECREF(tb);
                if (asprintf(ret_error, "--asgi-loop uvloop: uvloop cannot be imported (%s: %s); install it "
                             "(Debian: apt install python3-uvloop) or use --asgi-loop asyncio",
                             exc ? Py_TYPE(exc)->tp_name : "ImportError", text ? text : "unknown error") < 0)
                        *ret_error = NULL;
                Py_XDECREF(why);
                Py_XDECREF(exc);
                r = -ENOENT;
        }
        Py_XDECREF(uvloop);
        python_gil_release();
        return r;
}

static void error_line(char *error, size_t error_size, const char *what) {
        _cleanup_free_ char *why = python_format_exception();

        snprintf(error, error_size, "%s: %s", what, why ? why : "unknown error");
        log_error("%s", error);
}

int asgi_startup(void *app, const Settings *s, char *error, size_t error_size) {
        PyObject *code = NULL, *core, *asgi = NULL, *config = NULL, *r = NULL;
        int ret = -EINVAL;

        python_gil_acquire();
        core = aio_module();
        asgi = core ? module_new() : NULL;
        if (asgi && (environ_init(s) < 0 || scope_init(s) < 0)) {
                PyErr_NoMemory();
                Py_CLEAR(asgi);
        }
        /* the driver's classes derive from the module's */
        if (asgi && PyDict_SetItemString(PyImport_GetModuleDict(), "_gcorn_asgi", asgi) < 0)
                Py_CLEAR(asgi);
        if (asgi)
                code = Py_CompileString(gcorn_asgi_worker_py, "gcorn/asgi_worker.py", Py_file_input);
        if (code)
                driver = PyImport_ExecCodeModule("_gcorn_asgi_worker", code);
        if (driver)
                config = Py_BuildValue("{s:s,s:s,s:L,s:i,s:i,s:i}", "loop", s->asgi_loop, "lifespan", s->asgi_lifespan,
                                       "websocket_max_message_size", (long long) s->websocket_max_message_size,
                                       "disconnect_grace_period", s->asgi_disconnect_grace_period,
                                       "websocket_ping_interval", s->websocket_ping_interval,
                                       "websocket_ping_timeout", s->websocket_ping_timeout);
        if (config)
                r = PyObject_CallMethod(driver, "startup", "OOOO", core, asgi, (PyObject *) app, config);
        if (!r) {
                error_line(error, error_size, "Failed to start the asgi worker");
                goto finish;
        }
        if (r != Py_None) {
                const char *why = PyUnicode_Check(r) ? PyUnicode_AsUTF8(r) : NULL;

                snprintf(error, error_size, "%s", why ? why : "ASGI lifespan startup failed");
                PyErr_Clear();
                log_error("%s", error);
                goto finish;
        }
        ret = 0;
finish:
        Py_XDECREF(r);
        Py_XDECREF(config);
        Py_XDECREF(code);
        Py_XDECREF(asgi);
        python_gil_release();
        return ret;
}

void asgi_run(void) {
        PyObject *r;

        python_gil_acquire();
        r = driver ? PyObject_CallMethod(driver, "run", NULL) : NULL;
        if (!r)
                python_log_exception(LOG_ERR, "The asgi worker's loop failed");
        Py_XDECREF(r);
        Py_CLEAR(driver);
        python_gil_release();
}
