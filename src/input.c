/* wsgi.input: the request body straight from the connection, without the GIL while blocked. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gcorn/input.h"
#include "gcorn/macro.h"

#define INPUT_CHUNK 16384
/* The most a read() reserves before any byte of the body has arrived */
#define INPUT_FIRST_ALLOC 65536

typedef struct Input {
        PyObject_HEAD
        Conn *conn;                     /* NULL once finished */
        int error;                      /* negative errno of the failed body read */
        bool eof;
        int64_t remaining;              /* body bytes still on the connection; -1: chunked */
        /* readline() lookahead: bytes [pos, len) of buf are read but not yet returned */
        char *buf;
        size_t pos, len, cap;
} Input;

static PyObject *input_error_exc;

static PyObject *raise_read_error(int error) {
        /* An interrupted read: the signal handler's exception is the one to raise. */
        if (error == -EINTR && PyErr_Occurred())
                return NULL;
        /* aio: the driver catches it, waits for the body and calls again */
        if (error == -EAGAIN) {
                errno = EAGAIN;
                return PyErr_SetFromErrno(PyExc_BlockingIOError);
        }
        errno = -error;
        return PyErr_SetFromErrno(input_error_exc);
}

static bool check_open(Input *in) {
        if (in->conn)
                return true;
        PyErr_SetString(PyExc_ValueError, "I/O operation on closed wsgi.input");
        return false;
}

/* Reads from the connection into dst; 0 at the end of the body, or a negative errno that
 * sticks: the connection's body state is unusable after a failure. */
static ssize_t read_raw(Input *in, char *dst, size_t n) {
        ssize_t r;

        if (in->error < 0)
                return in->error;
        if (in->eof || n == 0)
                return 0;
        if (conn_body_ready(in->conn)) {
                /* received by the loop already: a copy, no wait, no reason to let go of the GIL */
                r = conn_read_body(in->conn, dst, n);
        } else {
                Py_BEGIN_ALLOW_THREADS
                r = conn_read_body(in->conn, dst, n);
                Py_END_ALLOW_THREADS
        }
        if (r < 0) {
                /* interrupted, or (aio) the body is not here yet: a later read goes on */
                if (r != -EINTR && r != -EAGAIN)
                        in->error = (int) r;
                return r;
        }
        if (r == 0)
                in->eof = true;
        else if (in->remaining > 0)
                in->remaining -= MIN(in->remaining, (int64_t) r);
        return r;
}

static int parse_size(PyObject *arg, Py_ssize_t *ret) {
        if (!arg || arg == Py_None) {
                *ret = -1;
                return 0;
        }
        *ret = PyNumber_AsSsize_t(arg, PyExc_OverflowError);
        if (*ret == -1 && PyErr_Occurred())
                return -1;
        return 0;
}

/* Moves up to n buffered bytes to dst; returns how many. */
static size_t take_buffered(Input *in, char *dst, size_t n) {
        size_t k = MIN(n, in->len - in->pos);

        if (k == 0)
                return 0;
        memcpy(dst, in->buf + in->pos, k);
        in->pos += k;
        if (in->pos == in->len)
                in->pos = in->len = 0;
        return k;
}

/* Puts n bytes a read took back in front of the lookahead (which the read emptied first): a
 * read that must wait (aio) returns nothing, and the next one starts with them. */
static int unread(Input *in, const char *p, size_t n) {
        size_t have = in->len - in->pos;
        char *b = malloc(MAX(n + have, (size_t) INPUT_CHUNK));

        if (!b)
                return -ENOMEM;
        memcpy(b, p, n);
        if (have > 0)
                memcpy(b + n, in->buf + in->pos, have);
        free(in->buf);
        in->buf = b;
        in->cap = MAX(n + have, (size_t) INPUT_CHUNK);
        in->pos = 0;
        in->len = n + have;
        return 0;
}

static PyObject *read_bytes(Input *in, Py_ssize_t size) {
        PyObject *result = NULL;
        size_t want = size < 0 ? SIZE_MAX : (size_t) size, got = 0, alloc;
        ssize_t r;

        /* A declared length is only a promise: memory follows the bytes that arrive, never
         * what a huge Content-Length or size asks for. The first share is bounded, so a small
         * body still takes one exact allocation. */
        alloc = in->remaining >= 0 ? (size_t) MIN(in->remaining, (int64_t) INPUT_FIRST_ALLOC) : INPUT_CHUNK;
        alloc = MIN(in->len - in->pos + alloc, want);

        result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t) alloc);
        if (!result)
                return NULL;
        got = take_buffered(in, PyBytes_AS_STRING(result), alloc);
        while (got < want) {
                if (got == alloc) {
                        /* doubling keeps the copies of a long read linear in its length */
                        size_t more = MAX(alloc, (size_t) INPUT_CHUNK);

                        if (in->eof || in->remaining == 0)
                                break;
                        if (in->remaining > 0)
                                more = (size_t) MIN((int64_t) more, in->remaining);
                        alloc += MIN(more, want - alloc);
                        if (_PyBytes_Resize(&result, (Py_ssize_t) alloc) < 0)
                                return NULL;
                }
                r = read_raw(in, PyBytes_AS_STRING(result) + got, alloc - got);
                if (r == -EAGAIN && got > 0 && unread(in, PyBytes_AS_STRING(result), got) < 0) {
                        Py_DECREF(result);
                        return PyErr_NoMemory();
                }
                if (r < 0) {
                        Py_DECREF(result);
                        return raise_read_error((int) r);
                }
                if (r == 0)
                        break;
                got += (size_t) r;
        }
        if (got != alloc && _PyBytes_Resize(&result, (Py_ssize_t) got) < 0)
                return NULL;
        return result;
}

static bool check_nargs(const char *name, Py_ssize_t nargs) {
        if (nargs <= 1)
                return true;
        PyErr_Format(PyExc_TypeError, "%s expected at most 1 argument, got %zd", name, nargs);
        return false;
}

static PyObject *input_read(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
        Input *in = (Input *) self;
        Py_ssize_t size;

        if (!check_nargs("read", nargs))
                return NULL;
        if (!check_open(in) || parse_size(nargs ? args[0] : NULL, &size) < 0)
                return NULL;
        return read_bytes(in, size);
}

/* Grows the lookahead so a read can append; returns -ENOMEM. */
static int make_room(Input *in) {
        char *n;

        if (in->pos > 0) {
                memmove(in->buf, in->buf + in->pos, in->len - in->pos);
                in->len -= in->pos;
                in->pos = 0;
        }
        if (in->len < in->cap)
                return 0;
        n = realloc(in->buf, in->cap ? in->cap * 2 : INPUT_CHUNK);
        if (!n)
                return -ENOMEM;
        in->buf = n;
        in->cap = in->cap ? in->cap * 2 : INPUT_CHUNK;
        return 0;
}

static PyObject *read_line(Input *in, Py_ssize_t size) {
        size_t limit = size < 0 ? SIZE_MAX : (size_t) size, scanned = 0, n;
        PyObject *line;
        ssize_t r;

        for (;;) {
                size_t avail = in->len - in->pos, lim = MIN(avail, limit);
                const char *nl = NULL;

                if (scanned < lim)
                        nl = memchr(in->buf + in->pos + scanned, '\n', lim - scanned);
                if (nl) {
                        n = (size_t) (nl - (in->buf + in->pos)) + 1;
                        break;
                }
                if (avail >= limit || in->eof || in->error < 0) {
                        n = MIN(avail, limit);
                        if (n == 0 && in->error < 0)
                                return raise_read_error(in->error);
                        break;
                }
                scanned = avail;
                if (make_room(in) < 0)
                        return PyErr_NoMemory();
                r = read_raw(in, in->buf + in->len, in->cap - in->len);
                /* what was read stays in the lookahead for the call after the wait */
                if (r < 0 && (in->len == in->pos || r == -EAGAIN))
                        return raise_read_error((int) r);
                if (r > 0)
                        in->len += (size_t) r;
        }
        line = PyBytes_FromStringAndSize(in->buf ? in->buf + in->pos : "", (Py_ssize_t) n);
        if (!line)
                return NULL;
        in->pos += n;
        if (in->pos == in->len)
                in->pos = in->len = 0;
        return line;
}

static PyObject *input_readline(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
        Input *in = (Input *) self;
        Py_ssize_t size;

        if (!check_nargs("readline", nargs))
                return NULL;
        if (!check_open(in) || parse_size(nargs ? args[0] : NULL, &size) < 0)
                return NULL;
        return read_line(in, size);
}

static PyObject *input_readlines(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
        Input *in = (Input *) self;
        PyObject *lines = NULL, *line = NULL;
        Py_ssize_t hint, total = 0;

        if (!check_nargs("readlines", nargs))
                return NULL;
        if (!check_open(in) || parse_size(nargs ? args[0] : NULL, &hint) < 0)
                return NULL;
        lines = PyList_New(0);
        if (!lines)
                return NULL;
        for (;;) {
                line = read_line(in, -1);
                if (!line)
                        goto error;
                if (PyBytes_GET_SIZE(line) == 0)
                        break;
                if (PyList_Append(lines, line) < 0)
                        goto error;
                total += PyBytes_GET_SIZE(line);
                Py_CLEAR(line);
                if (hint > 0 && total >= hint)
                        break;
        }
        Py_XDECREF(line);
        return lines;
error:
        Py_XDECREF(line);
        Py_XDECREF(lines);
        return NULL;
}

static PyObject *input_iternext(PyObject *self) {
        Input *in = (Input *) self;
        PyObject *line;

        if (!check_open(in))
                return NULL;
        line = read_line(in, -1);
        if (line && PyBytes_GET_SIZE(line) == 0)
                Py_CLEAR(line);
        return line;
}

static PyObject *input_close(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored)) {
        /* The server owns the connection; an app closing its input changes nothing. */
        Py_RETURN_NONE;
}

static void input_dealloc(PyObject *self) {
        Input *in = (Input *) self;

        free(in->buf);
        Py_TYPE(self)->tp_free(self);
}

static PyMethodDef input_methods[] = {
        { "read", (PyCFunction) (void (*)(void)) input_read, METH_FASTCALL, "read([size]) -> bytes" },
        { "readline", (PyCFunction) (void (*)(void)) input_readline, METH_FASTCALL, "readline([size]) -> bytes" },
        { "readlines", (PyCFunction) (void (*)(void)) input_readlines, METH_FASTCALL, "readlines([hint]) -> list" },
        { "close", input_close, METH_NOARGS, "Does nothing: the server closes the body." },
        { NULL, NULL, 0, NULL },
};

static PyTypeObject input_typeobj = {
        PyVarObject_HEAD_INIT(NULL, 0)
        .tp_name = "gcorn.Input",
        .tp_basicsize = sizeof(Input),
        .tp_flags = Py_TPFLAGS_DEFAULT,
        .tp_doc = "wsgi.input",
        .tp_dealloc = input_dealloc,
        .tp_iter = PyObject_SelfIter,
        .tp_iternext = input_iternext,
        .tp_methods = input_methods,
};

int input_init(void) {
        if (input_error_exc)
                return 0;
        if (PyType_Ready(&input_typeobj) < 0)
                return -ENOMEM;
        input_error_exc = PyErr_NewExceptionWithDoc("gcorn.InputError",
                                                    "The request body could not be read.",
                                                    PyExc_OSError, NULL);
        return input_error_exc ? 0 : -ENOMEM;
}

PyObject *input_new(Conn *c) {
        const Request *r = conn_request(c);
        Input *in;

        in = PyObject_New(Input, &input_typeobj);
        if (!in)
                return NULL;
        in->conn = c;
        in->error = 0;
        in->eof = false;
        in->remaining = r->chunked ? -1 : MAX(r->content_length, (int64_t) 0);
        in->buf = NULL;
        in->pos = in->len = in->cap = 0;
        return (PyObject *) in;
}

void input_finish(PyObject *input) {
        Input *in = (Input *) input;

        if (!input)
                return;
        in->conn = NULL;
        free(in->buf);
        in->buf = NULL;
        in->pos = in->len = in->cap = 0;
}

int input_error(PyObject *input) {
        return input ? ((Input *) input)->error : 0;
}
