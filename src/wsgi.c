/* One request through the app: environ, start_response/write, result iteration, framing,
 * sendfile for wsgi.file_wrapper, error answers, access log. PEP 3333, shaped like
 * Gunicorn 23's Response. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gcorn/accesslog.h"
#include "gcorn/gsocket.h"
#include "gcorn/environ.h"
#include "gcorn/filewrapper.h"
#include "gcorn/hooks.h"
#include "gcorn/input.h"
#include "gcorn/log.h"
#include "gcorn/macro.h"
#include "gcorn/python.h"
#include "gcorn/response.h"
#include "gcorn/wsgi.h"
#include "gcorn/strutil.h"

#define SWAP_TWO(a, b) do { typeof(a) _t = (a); (a) = (b); (b) = _t; } while (0)

/* iovecs handed to one conn_send() on the list fast path (sendmsg() in one go) */
#define WSGI_IOV_BATCH 16
/* An item this large whose bytes the connection's queue still refers to is kept until the
 * queue is empty (conn_send()'s keep_from takes parts of 16 KiB and more by reference). */
#define WSGI_KEEP_MIN (16 * 1024)
/* The most body bytes one pull from the loop produces: the loop then turns to the other
 * connections, and comes back as long as the socket is writable. */
#define WSGI_PULL_BUDGET (256 * 1024)

typedef struct Buf {
        char *p;
        size_t len, cap;
} Buf;

/* Where one app header sits in the header-lines buffer, for the access log. */
typedef struct FieldRef {
        size_t name_off, name_len, value_off, value_len;
} FieldRef;

/* State of the request being answered; lives on wsgi_handle()'s stack, reached by the
 * start_response and write objects through a pointer cleared when the request ends. */
typedef struct WsgiState {
        Conn *conn;
        const Request *request;

        bool started;                   /* start_response() accepted a status */
        bool head_sent;
        int status;
        int64_t content_length;         /* the app's, or computed; -1: none */
        bool app_close;                 /* the app sent "Connection: close" */
        bool upgrade;                   /* the app sent "Connection: upgrade" */
        size_t n_fields;

        ResponseFraming framing;        /* decided when the head goes out */
        uint64_t sent;                  /* body bytes sent */
        bool cut_logged;
        bool environ_logged;            /* log_environ holds this request's %({var}e)s values */
        bool own_length;                /* the last field is gcorn's Content-Length, not the app's */
        bool app_answered;              /* the app wrote its answer on gunicorn.socket */
        bool aio;                       /* run by a driver on the loop's thread (wsgi_aio_begin()) */
        int write_error;                /* first failed conn_write(): the connection is gone */
        void *hook_req;                 /* the req of pre_request, for post_request (PyObject *) */

        /* What is left to produce of the answer: the items of result (a list or tuple) from
         * index on, or those of iter (owned); held (owned): an item whose bytes the queue
         * still refers to. */
        PyObject *result, *iter, *held;
        Py_ssize_t index;
        bool produced;                  /* every body byte is queued */
} WsgiState;

/* An answer the app's call left to the loop (the client takes it slowly, or it is longer
 * than --buffer-response): the request's state, moved off wsgi_handle()'s stack, with the
 * objects the end of the request needs. Owned by the connection (conn_stream()). */
typedef struct WsgiStream {
        WsgiState st;
        PyObject *result, *environ, *input;     /* owned */
        PyObject *callbacks[2];                 /* start_response and write, pointing at st */
        struct timespec start_real, start_mono;
        /* The head as the app gave it, for the access log and post_request; swapped with the
         * per-process buffers, which are free whenever the loop runs. */
        Buf status, lines;
        FieldRef *fields;
        size_t fields_cap;
        /* A request a driver in Python runs (wsgi_aio_*()): the iterable is closed here only
         * when wsgi_aio_result() took it (result), else by the driver; what wsgi_handle()
         * would return, once known. */
        bool aio;
        int aio_r;
} WsgiStream;

/* Per-thread buffers reused by every request the thread runs (the worker's loop, or a gthread
 * app thread): no malloc on the hot path once warm. */
static _thread_local_ Buf status_buf;    /* the app's status string */
static _thread_local_ Buf lines_buf;     /* "Name: value\r\n" lines of the app, then "\r\n" */
static _thread_local_ Buf start_buf;     /* status line and gcorn's own headers */
static _thread_local_ FieldRef *fields;
static _thread_local_ size_t fields_cap;
static _thread_local_ HttpHeader *log_fields;
static _thread_local_ size_t log_fields_cap;
static _thread_local_ EnvironLogValues log_environ;

static PyObject *app;
static AccessLog *access_log;
static pid_t worker_pid;                /* set after fork: getpid() is a system call */
static bool use_sendfile;               /* false with --no-sendfile */
/* the thread's callbacks, reused while nobody else holds them */
static _thread_local_ PyObject *start_response_obj, *write_obj;

static int buf_reserve(Buf *b, size_t extra) {
        size_t want = b->len + extra;
        char *p;

        if (want <= b->cap)
                return 0;
        want = MAX(want, MAX(b->cap * 2, (size_t) 256));
        p = realloc(b->p, want);
        if (!p)
                return -ENOMEM;
        b->p = p;
        b->cap = want;
        return 0;
}

static int buf_append(Buf *b, const void *data, size_t len) {
        if (buf_reserve(b, len) < 0)
                return -ENOMEM;
        memcpy(b->p + b->len, data, len);
        b->len += len;
        return 0;
}

static void buf_free(Buf *b) {
        free(b->p);
        *b = (Buf) {};
}

/* While set (wsgi_aio_start_response_bytes()), a head's strings may be bytes, as ASGI's are. */
static bool head_bytes;

/* Latin-1 bytes of a str without copying; NULL (ValueError set) for wider characters,
 * which no HTTP header can carry. */
static const char *str_latin1(PyObject *s, size_t *ret_len, const char *what) {
        if (!PyUnicode_Check(s)) {
                if (head_bytes && PyBytes_Check(s)) {
                        *ret_len = (size_t) PyBytes_GET_SIZE(s);
                        return PyBytes_AS_STRING(s);
                }
                PyErr_Format(PyExc_TypeError, "%s %R is not a string", what, s);
                return NULL;
        }
        if (PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND) {
                PyErr_Format(PyExc_ValueError, "%s %R is not latin-1", what, s);
                return NULL;
        }
        *ret_len = (size_t) PyUnicode_GET_LENGTH(s);
        return (const char *) PyUnicode_1BYTE_DATA(s);
}

static bool lower_eq(const char *s, size_t len, const char *lit) {
        return strlen(lit) == len && ascii_case_equal(s, lit, len);
}

static int add_field(WsgiState *st, const char *name, size_t nlen, const char *value, size_t vlen) {
        FieldRef *f;

        if (st->n_fields == fields_cap) {
                size_t n = fields_cap ? fields_cap * 2 : 32;
                FieldRef *p = realloc(fields, n * sizeof(FieldRef));

                if (!p)
                        return -ENOMEM;
                fields = p;
                fields_cap = n;
        }
        if (buf_reserve(&lines_buf, nlen + vlen + 4) < 0)
                return -ENOMEM;
        f = fields + st->n_fields++;
        f->name_off = lines_buf.len;
        f->name_len = nlen;
        (void) buf_append(&lines_buf, name, nlen);
        (void) buf_append(&lines_buf, ": ", 2);
        f->value_off = lines_buf.len;
        f->value_len = vlen;
        (void) buf_append(&lines_buf, value, vlen);
        (void) buf_append(&lines_buf, "\r\n", 2);
        return 0;
}

/* One (name, value) pair of start_response(); Python error set on failure. */
static int process_header(WsgiState *st, PyObject *item) {
        PyObject *pair = NULL;
        const char *name, *value;
        size_t nlen, vlen;
        int r = -EINVAL;

        pair = PySequence_Fast(item, "response headers must be (name, value) pairs");
        if (!pair)
                return -EINVAL;
        if (PySequence_Fast_GET_SIZE(pair) != 2) {
                PyErr_Format(PyExc_ValueError, "response header %R is not a (name, value) pair", item);
                goto finish;
        }
        name = str_latin1(PySequence_Fast_GET_ITEM(pair, 0), &nlen, "header name");
        if (!name)
                goto finish;
        if (!response_header_name_valid(name, nlen)) {
                PyErr_Format(PyExc_ValueError, "invalid header name %R", PySequence_Fast_GET_ITEM(pair, 0));
                goto finish;
        }
        value = str_latin1(PySequence_Fast_GET_ITEM(pair, 1), &vlen, "header value");
        if (!value)
                goto finish;
        if (!response_header_value_valid(value, vlen)) {
                PyErr_Format(PyExc_ValueError, "invalid header value %R", PySequence_Fast_GET_ITEM(pair, 1));
                goto finish;
        }
        /* RFC 9110 5.5: surrounding blanks are not part of the value. */
        while (vlen > 0 && (value[0] == ' ' || value[0] == '\t'))
                value++, vlen--;
        while (vlen > 0 && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
                vlen--;

        if (lower_eq(name, nlen, "content-length")) {
                int64_t length;

                if (response_parse_content_length(value, vlen, &length) < 0) {
                        PyErr_Format(PyExc_ValueError, "invalid Content-Length %R", PySequence_Fast_GET_ITEM(pair, 1));
                        goto finish;
                }
                /* RFC 9110 8.6: differing lengths leave the body's end unknown. The same one
                 * twice is harmless and goes out once, as a recipient may collapse it. */
                if (st->content_length >= 0) {
                        if (length != st->content_length) {
                                PyErr_Format(PyExc_ValueError, "Content-Length %" PRId64 " and %" PRId64
                                             " both given", st->content_length, length);
                                goto finish;
                        }
                        r = 0;
                        goto finish;
                }
                st->content_length = length;
                /* RFC 9110 8.6: a 204 never carries Content-Length; a 304 may (the length the
                 * 200 would have had), so it goes out. */
                if (st->status == 204) {
                        r = 0;
                        goto finish;
                }
        } else if (lower_eq(name, nlen, "connection")) {
                /* Hop-by-hop: gcorn owns the connection header and only honours the app's
                 * wish to close or upgrade. */
                if (lower_eq(value, vlen, "upgrade"))
                        st->upgrade = true;
                else if (lower_eq(value, vlen, "close"))
                        st->app_close = true;
                r = 0;
                goto finish;
        } else if (lower_eq(name, nlen, "upgrade")) {
                if (!lower_eq(value, vlen, "websocket")) {
                        r = 0;
                        goto finish;
                }
        } else if (lower_eq(name, nlen, "keep-alive") || lower_eq(name, nlen, "proxy-authenticate") ||
                   lower_eq(name, nlen, "proxy-authorization") || lower_eq(name, nlen, "te") ||
                   lower_eq(name, nlen, "trailers") || lower_eq(name, nlen, "transfer-encoding")) {
                /* gcorn frames the body itself (Gunicorn's is_hoppish) */
                r = 0;
                goto finish;
        }
        if (add_field(st, name, nlen, value, vlen) < 0) {
                PyErr_NoMemory();
                goto finish;
        }
        r = 0;
finish:
        Py_XDECREF(pair);
        return r;
}

static void reset_head(WsgiState *st) {
        st->started = false;
        st->status = 0;
        st->content_length = -1;
        st->app_close = st->upgrade = false;
        st->n_fields = 0;
        st->own_length = false;
        status_buf.len = lines_buf.len = 0;
}

/* start_response and write: called through vectorcall, so a call builds no argument tuple. */
typedef struct Callback {
        PyObject_HEAD
        vectorcallfunc vectorcall;
        WsgiState *st;                  /* NULL outside of the request that made it */
} Callback;

/* Binds positional and keyword arguments to names[0..n) (at most 3) as a def with these
 * parameters would; the first n_required must be given. Borrowed references in ret. */
static int bind_args(const char *func, const char *const *names, size_t n, size_t n_required,
                     PyObject *const *args, size_t nargsf, PyObject *kwnames, PyObject **ret) {
        Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);

        if ((size_t) nargs > n) {
                PyErr_Format(PyExc_TypeError, "%s() takes at most %zu arguments (%zd given)", func, n, nargs);
                return -EINVAL;
        }
        for (size_t i = 0; i < n; i++)
                ret[i] = i < (size_t) nargs ? args[i] : NULL;
        if (kwnames)
                for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(kwnames); k++) {
                        PyObject *name = PyTuple_GET_ITEM(kwnames, k); /* borrowed */
                        size_t i;

                        for (i = 0; i < n; i++)
                                if (PyUnicode_CompareWithASCIIString(name, names[i]) == 0)
                                        break;
                        if (i == n) {
                                PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", func,
                                             name);
                                return -EINVAL;
                        }
                        if (ret[i]) {
                                PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", func,
                                             names[i]);
                                return -EINVAL;
                        }
                        ret[i] = args[nargs + k];
                }
        for (size_t i = 0; i < n_required; i++)
                if (!ret[i]) {
                        PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", func, names[i]);
                        return -EINVAL;
                }
        return 0;
}

/* start_response(status, headers, exc_info=None) */
static PyObject *start_response_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                                           PyObject *kwnames) {
        static const char *const names[] = { "status", "headers", "exc_info" };
        WsgiState *st = ((Callback *) self)->st;
        PyObject *a[3], *status, *headers, *exc_info, *seq = NULL;
        const char *s;
        size_t slen;
        int code;

        if (bind_args("start_response", names, 3, 2, args, nargsf, kwnames, a) < 0)
                return NULL;
        status = a[0];
        headers = a[1];
        exc_info = a[2] ? a[2] : Py_None;
        if (!st) {
                PyErr_SetString(PyExc_RuntimeError, "start_response() called after the request ended");
                return NULL;
        }
        if (exc_info != Py_None) {
                /* PEP 3333: too late to change the head, so the error goes back to the app. */
                if (st->head_sent) {
                        if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
                                PyErr_SetString(PyExc_TypeError, "exc_info must be a 3-tuple");
                                return NULL;
                        }
                        PyErr_Restore(Py_NewRef(PyTuple_GET_ITEM(exc_info, 0)),
                                      Py_NewRef(PyTuple_GET_ITEM(exc_info, 1)),
                                      Py_XNewRef(PyTuple_GET_ITEM(exc_info, 2)));
                        return NULL;
                }
        } else if (st->started) {
                PyErr_SetString(PyExc_AssertionError, "Response headers already set!");
                return NULL;
        }

        reset_head(st);
        s = str_latin1(status, &slen, "status");
        if (!s)
                return NULL;
        code = response_parse_status(s, slen);
        if (code < 0) {
                PyErr_Format(PyExc_ValueError, "invalid status %R", status);
                return NULL;
        }
        /* An interim answer would leave the client waiting for a final one that never
         * comes; WSGI has no way to send one. */
        if (code < 200) {
                PyErr_Format(PyExc_ValueError, "status %R: a 1xx status cannot be the final response", status);
                return NULL;
        }
        if (buf_append(&status_buf, s, slen) < 0)
                return PyErr_NoMemory();
        /* process_header() reads it (a 204 drops Content-Length) */
        st->status = code;

        seq = PySequence_Fast(headers, "response headers must be a list");
        if (!seq)
                goto error;
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++)
                if (process_header(st, PySequence_Fast_GET_ITEM(seq, i)) < 0)
                        goto error;
        Py_DECREF(seq);
        st->started = true;
        return Py_NewRef(write_obj);
error:
        Py_XDECREF(seq);
        reset_head(st);
        return NULL;
}

/* Sends iov, or queues what the client cannot take yet; remembers the first failure so every
 * later send fails fast. iovecs from keep_from on are items kept alive until the answer ends:
 * the queue may refer to them, and the call never waits. Otherwise it waits while more than
 * --buffer-response is queued. */
static int send_iov_keep(WsgiState *st, struct iovec *iov, int n, int keep_from) {
        int r;

        if (st->write_error < 0)
                return st->write_error;
        if (keep_from < n)
                r = conn_send(st->conn, iov, n, keep_from, false);
        else {
                Py_BEGIN_ALLOW_THREADS
                r = conn_write(st->conn, iov, n);
                Py_END_ALLOW_THREADS
        }
        if (r < 0)
                st->write_error = r;
        return r;
}

/* The answer's last bytes: as send_iov_keep() without wait, and an app thread only queues
 * them when they fit (conn_send_last()); the loop sends them once the answer is handed over
 * (defer()), and the thread is free for its next request meanwhile. */
static int send_iov_last(WsgiState *st, struct iovec *iov, int n, int keep_from) {
        int r;

        /* post_request runs where the answer ends: on the app's thread, as in Gunicorn. A
         * driver on the loop's thread sends at once, never waiting: nothing to gain there. */
        if (_unlikely_(st->hook_req || st->aio))
                return send_iov_keep(st, iov, n, keep_from);
        if (st->write_error < 0)
                return st->write_error;
        r = conn_send_last(st->conn, iov, n, keep_from);
        if (r < 0)
                st->write_error = r;
        return r;
}

static int send_iov(WsgiState *st, struct iovec *iov, int n) {
        return send_iov_keep(st, iov, n, n);
}

/* Adds the framing Gunicorn would choose and gcorn's own headers; fills two iovecs. */
static int head_prepare(WsgiState *st, struct iovec iov[2]) {
        const Request *r = st->request;
        ResponseConnection connection;
        size_t n;

        st->framing = response_framing(r->http_major, r->http_minor, r->is_head, st->status, st->content_length);
        if (st->framing == RESPONSE_FRAMING_CLOSE || st->app_close || st->upgrade)
                conn_set_must_close(st->conn);
        if (st->upgrade)
                connection = RESPONSE_CONNECTION_UPGRADE;
        else if (conn_must_close(st->conn))
                connection = RESPONSE_CONNECTION_CLOSE;
        else
                connection = RESPONSE_CONNECTION_KEEP_ALIVE;

        for (;;) {
                n = response_format_start(start_buf.p, start_buf.cap, r->http_major, r->http_minor, status_buf.p,
                                          status_buf.len, connection, st->framing == RESPONSE_FRAMING_CHUNKED);
                if (n <= start_buf.cap)
                        break;
                if (buf_reserve(&start_buf, n) < 0)
                        return -ENOMEM;
        }
        if (buf_reserve(&lines_buf, 2) < 0)
                return -ENOMEM;
        memcpy(lines_buf.p + lines_buf.len, "\r\n", 2);
        iov[0] = (struct iovec) { start_buf.p, n };
        iov[1] = (struct iovec) { lines_buf.p, lines_buf.len + 2 };
        return 0;
}

/* How many of len body bytes may go out under the framing; logs a cut once. */
static size_t body_allowance(WsgiState *st, size_t len) {
        uint64_t left;

        switch (st->framing) {
        case RESPONSE_FRAMING_NONE:
                return 0;
        case RESPONSE_FRAMING_LENGTH:
                left = (uint64_t) st->content_length - MIN(st->sent, (uint64_t) st->content_length);
                if (len > left && !st->cut_logged) {
                        st->cut_logged = true;
                        log_warning("Response to %.*s %.*s is longer than its Content-Length (%" PRId64 "), cut",
                                    (int) st->request->method.len, st->request->method.p,
                                    (int) st->request->target.len, st->request->target.p, st->content_length);
                }
                return (size_t) MIN((uint64_t) len, left);
        default:
                return len;
        }
}

/* Sends the head when still due, then data in the chosen framing; last adds the end of a
 * chunked body. keep: data stays alive until the answer ends (see send_iov_keep()). Returns
 * 0 or the negative errno of the write. */
static int send_body(WsgiState *st, const char *data, size_t len, bool last, bool keep) {
        static char crlf[] = "\r\n", crlf_end[] = "\r\n0\r\n\r\n", end[] = "0\r\n\r\n";
        struct iovec iov[5];
        char chunk_line[RESPONSE_CHUNK_LINE_MAX];
        bool chunked;
        size_t n;
        int k = 0, keep_from = 5, r;

        if (!st->head_sent) {
                r = head_prepare(st, iov);
                if (r < 0)
                        return r;
                k = 2;
        }
        chunked = st->framing == RESPONSE_FRAMING_CHUNKED;
        n = body_allowance(st, len);
        if (n > 0) {
                if (chunked)
                        iov[k++] = (struct iovec) { chunk_line, response_chunk_line(chunk_line, n) };
                if (keep)
                        keep_from = k;
                iov[k++] = (struct iovec) { (void *) data, n };
        }
        if (chunked && n > 0 && last)
                iov[k++] = (struct iovec) { crlf_end, sizeof(crlf_end) - 1 };
        else if (chunked && n > 0)
                iov[k++] = (struct iovec) { crlf, 2 };
        else if (chunked && last)
                iov[k++] = (struct iovec) { end, sizeof(end) - 1 };
        if (k == 0)
                return 0;
        st->head_sent = true;
        /* the static CRLFs after the data may be kept as well */
        r = send_iov_keep(st, iov, k, MIN(keep_from, k));
        if (r < 0)
                return r;
        st->sent += n;
        return 0;
}

/* write(data), as returned by start_response(). */
static PyObject *write_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
        static const char *const names[] = { "data" };
        WsgiState *st = ((Callback *) self)->st;
        PyObject *data;
        int r;

        if (bind_args("write", names, 1, 1, args, nargsf, kwnames, &data) < 0)
                return NULL;
        if (!st) {
                PyErr_SetString(PyExc_RuntimeError, "write() called after the request ended");
                return NULL;
        }
        if (!st->started) {
                PyErr_SetString(PyExc_AssertionError, "write() before start_response()");
                return NULL;
        }
        if (!PyBytes_Check(data)) {
                PyErr_Format(PyExc_TypeError, "%R is not a byte", data);
                return NULL;
        }
        r = send_body(st, PyBytes_AS_STRING(data), (size_t) PyBytes_GET_SIZE(data), false, false);
        if (r < 0) {
                errno = -r;
                return PyErr_SetFromErrno(PyExc_OSError);
        }
        Py_RETURN_NONE;
}

static void callback_dealloc(PyObject *self) {
        Py_TYPE(self)->tp_free(self);
}

static PyTypeObject start_response_type = {
        PyVarObject_HEAD_INIT(NULL, 0)
        .tp_name = "gcorn.StartResponse",
        .tp_basicsize = sizeof(Callback),
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
        .tp_dealloc = callback_dealloc,
        .tp_vectorcall_offset = offsetof(Callback, vectorcall),
        .tp_call = PyVectorcall_Call,
};

static PyTypeObject write_type = {
        PyVarObject_HEAD_INIT(NULL, 0)
        .tp_name = "gcorn.Write",
        .tp_basicsize = sizeof(Callback),
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
        .tp_dealloc = callback_dealloc,
        .tp_vectorcall_offset = offsetof(Callback, vectorcall),
        .tp_call = PyVectorcall_Call,
};

/* The cached callback, or a fresh one when an app kept the old one (it stays detached). */
static PyObject *callback_for(PyObject **cache, PyTypeObject *type, WsgiState *st) {
        if (!*cache || Py_REFCNT(*cache) > 1) {
                Callback *o = PyObject_New(Callback, type);

                if (!o)
                        return NULL;
                o->vectorcall = type == &start_response_type ? start_response_vectorcall : write_vectorcall;
                Py_XSETREF(*cache, (PyObject *) o);
        }
        ((Callback *) *cache)->st = st;
        return *cache;
}

/* Adds Content-Length for a body whose size is known before the head goes out. */
static int set_content_length(WsgiState *st, uint64_t len) {
        char v[24];
        int n;

        if (st->content_length >= 0 || st->head_sent || !response_status_allows_body(st->status))
                return 0;
        n = snprintf(v, sizeof(v), "%" PRIu64, len);
        if (add_field(st, "Content-Length", 14, v, (size_t) n) < 0)
                return -ENOMEM;
        st->content_length = (int64_t) len;
        st->own_length = true;
        return 0;
}

/* Produces body items while the connection's queue has room, from the list or tuple st->result
 * at st->index or from st->iter, and ends the body after the last; at most budget bytes.
 * Items go by reference (kept alive by the list, or held), so a large one costs no copy.
 * Returns 1 once all is produced, 0 when the queue is full (or the budget spent), or a
 * negative errno (a Python error set when the app failed). */
static int produce(WsgiState *st, size_t budget) {
        size_t made = 0;
        int r;

        while (!st->produced) {
                PyObject *item;
                size_t len;

                if (st->held) {
                        if (conn_out_pending(st->conn))
                                return 0;
                        Py_CLEAR(st->held);
                }
                if (!conn_out_room(st->conn) || made >= budget)
                        return 0;
                if (!st->iter)
                        item = st->index < PySequence_Fast_GET_SIZE(st->result) ?
                               Py_NewRef(PySequence_Fast_GET_ITEM(st->result, st->index++)) : NULL;
                else {
                        item = PyIter_Next(st->iter);
                        if (!item && PyErr_Occurred())
                                return -EINVAL;
                }
                if (!item) {
                        if (!st->started) {
                                PyErr_SetString(PyExc_AssertionError,
                                                "the app returned without calling start_response()");
                                return -EINVAL;
                        }
                        r = send_body(st, NULL, 0, true, false);
                        if (r < 0)
                                return r;
                        st->produced = true;
                        break;
                }
                if (!st->started || !PyBytes_Check(item)) {
                        if (!st->started)
                                PyErr_SetString(PyExc_AssertionError,
                                                "the app yielded before calling start_response()");
                        else
                                PyErr_Format(PyExc_TypeError, "%R is not a byte", item);
                        Py_DECREF(item);
                        return -EINVAL;
                }
                len = (size_t) PyBytes_GET_SIZE(item);
                r = send_body(st, PyBytes_AS_STRING(item), len, false, true);
                if (r < 0) {
                        Py_DECREF(item);
                        return r;
                }
                made += len;
                if (len >= WSGI_KEEP_MIN && conn_out_pending(st->conn))
                        st->held = item;
                else
                        Py_DECREF(item);
        }
        return 1;
}

/* The fast path for a list or tuple of bytes: Content-Length from the sum, and the head with
 * every item in as few writes as possible (one for small responses). Python error set on a
 * non-bytes item. Returns as produce(). */
/* Inlined into send_result(): the hot path of every list answer pays no call for it. */
static inline __attribute__((always_inline)) int send_sequence(WsgiState *st, PyObject *seq) {
        struct iovec iov[WSGI_IOV_BATCH];
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        uint64_t total = 0;
        int k = 0, keep_from, r;

        for (Py_ssize_t i = 0; i < n; i++) {
                PyObject *item = PySequence_Fast_GET_ITEM(seq, i); /* borrowed */

                if (!PyBytes_Check(item)) {
                        PyErr_Format(PyExc_TypeError, "%R is not a byte", item);
                        return -EINVAL;
                }
                total += (uint64_t) PyBytes_GET_SIZE(item);
        }
        if (st->head_sent)
                return produce(st, SIZE_MAX);

        if (set_content_length(st, total) < 0) {
                PyErr_NoMemory();
                return -ENOMEM;
        }
        r = head_prepare(st, iov);
        if (r < 0) {
                PyErr_NoMemory();
                return r;
        }
        k = keep_from = 2;
        st->head_sent = true;
        for (Py_ssize_t i = 0; i < n; i++) {
                PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
                size_t len = body_allowance(st, (size_t) PyBytes_GET_SIZE(item));

                if (len == 0)
                        continue;
                iov[k++] = (struct iovec) { PyBytes_AS_STRING(item), len };
                st->sent += len;
                if (k == WSGI_IOV_BATCH) {
                        r = send_iov_keep(st, iov, k, keep_from);
                        if (r < 0)
                                return r;
                        k = keep_from = 0;
                        if (!conn_out_room(st->conn) && i + 1 < n) {
                                /* the loop sends the rest as the client takes it */
                                st->index = i + 1;
                                return 0;
                        }
                }
        }
        /* Content-Length is now known, so the framing is never chunked here. */
        st->produced = true;
        r = k > 0 ? send_iov_last(st, iov, k, keep_from) : 0;
        return r < 0 ? r : 1;
}

/* wsgi.file_wrapper over a regular file: the head, then the file's bytes with sendfile(2),
 * from the loop as far as the client does not take them at once (the wrapper, and so the
 * file, stays alive until the answer ends). Returns 1 when queued (or failed), 0 when the
 * file does not qualify. */
static int send_file(WsgiState *st, PyObject *wrapper, int *ret_error) {
        PyObject *filelike = filewrapper_filelike(wrapper), *pos; /* borrowed */
        struct iovec iov[2];
        struct stat sb;
        off_t offset;
        uint64_t count;
        int fd, r;

        *ret_error = 0;
        if (!use_sendfile || !filelike || st->head_sent)
                return 0;
        fd = PyObject_AsFileDescriptor(filelike);
        if (fd < 0) {
                PyErr_Clear();
                return 0;
        }
        if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
                return 0;
        /* tell(), not lseek(): Python's buffering moves the fd ahead of the file position. */
        pos = PyObject_CallMethod(filelike, "tell", NULL);
        if (pos) {
                offset = (off_t) PyLong_AsLongLong(pos);
                Py_DECREF(pos);
                if (offset == -1 && PyErr_Occurred()) {
                        PyErr_Clear();
                        return 0;
                }
        } else {
                PyErr_Clear();
                offset = lseek(fd, 0, SEEK_CUR);
                if (offset < 0)
                        return 0;
        }
        count = sb.st_size > offset ? (uint64_t) (sb.st_size - offset) : 0;
        if (set_content_length(st, count) < 0)
                return 0;
        r = head_prepare(st, iov);
        if (r < 0)
                return 0;
        st->head_sent = true;
        count = body_allowance(st, (size_t) count);
        if (count == 0) {
                *ret_error = send_iov(st, iov, 2);
                return 1;
        }
        if (st->write_error < 0) {
                *ret_error = st->write_error;
                return 1;
        }
        r = conn_send_file(st->conn, iov, 2, fd, offset, (size_t) count);
        if (r >= 0)
                st->sent += count;
        else
                st->write_error = r;
        *ret_error = r < 0 ? r : 0;
        return 1;
}

/* Returns 1 when the whole answer is produced (sent or queued), 0 when the rest is to be
 * pulled as the client drains the queue (produce()), or a negative errno (a Python error
 * set when the app failed). Any other iterable than a list or a file goes item by item, so
 * streaming works; its head waits for the first item, since a lazy app calls
 * start_response() in it. */
static int send_result(WsgiState *st, PyObject *result) {
        int r, error;

        st->result = result;
        if (PyList_CheckExact(result) || PyTuple_CheckExact(result)) {
                if (!st->started) {
                        PyErr_SetString(PyExc_AssertionError, "the app returned without calling start_response()");
                        return -EINVAL;
                }
                return send_sequence(st, result);
        }
        if (filewrapper_check(result) && st->started) {
                r = send_file(st, result, &error);
                if (r > 0) {
                        st->produced = true;
                        return error < 0 ? error : 1;
                }
        }
        st->iter = PyObject_GetIter(result);
        if (!st->iter)
                return -EINVAL;
        return produce(st, SIZE_MAX);
}

static void close_result(PyObject *result) {
        PyObject *close, *r;

        if (PyList_CheckExact(result) || PyTuple_CheckExact(result) || PyBytes_CheckExact(result))
                return;
        close = PyObject_GetAttrString(result, "close");
        if (!close) {
                if (PyErr_ExceptionMatches(PyExc_AttributeError))
                        PyErr_Clear();
                return;
        }
        r = PyObject_CallNoArgs(close);
        Py_DECREF(close);
        Py_XDECREF(r);
}

/* Sends gcorn's own error answer when the head has not gone out yet. */
static void send_error(WsgiState *st, int status) {
        char buf[RESPONSE_ERROR_MAX];
        struct iovec iov;

        conn_set_must_close(st->conn);
        if (st->head_sent)
                return;
        iov = (struct iovec) { buf, response_build_error(buf, sizeof(buf), status, st->request->is_head, NULL) };
        st->head_sent = true;
        st->status = status;
        st->framing = RESPONSE_FRAMING_NONE;
        (void) send_iov(st, &iov, 1);
}

/* An exception is set: decides what the client gets and what the log says. Returns the
 * value for wsgi_handle(): negative when the connection must close at once. */
static int handle_app_error(WsgiState *st, PyObject *input) {
        const Request *r = st->request;
        char title[256];
        int e = input_error(input), status;

        if (st->write_error < 0 && st->write_error != -EINTR) {
                /* The client went away; the app's exception is only the echo of that. */
                PyErr_Clear();
                log_debug_errno(st->write_error, "Client gone while answering %.*s %.*s: %m", (int) r->method.len,
                                r->method.p, (int) MIN(r->target.len, (size_t) 200), r->target.p);
                return st->write_error;
        }
        if (e < 0) {
                /* The body could not be read: the client's fault, not an app bug. */
                PyErr_Clear();
                status = e == -EFBIG ? 413 : e == -ETIMEDOUT ? 408 : 400;
                log_internal(e == -ECONNRESET ? LOG_DEBUG : LOG_INFO, e, "Failed to read the body of %.*s %.*s: %m",
                             (int) r->method.len, r->method.p, (int) MIN(r->target.len, (size_t) 200), r->target.p);
                if (e == -ECONNRESET) {
                        /* Nobody is left to answer. */
                        conn_set_must_close(st->conn);
                        return e;
                }
                send_error(st, status);
                return st->write_error;
        }

        snprintf(title, sizeof(title), "Error handling request %.*s %.*s", (int) r->method.len, r->method.p,
                 (int) MIN(r->target.len, (size_t) 200), r->target.p);
        python_log_exception(LOG_ERR, title);
        if (st->head_sent) {
                /* The framing is broken: only closing tells the client the body is cut. */
                conn_set_must_close(st->conn);
                return -EIO;
        }
        send_error(st, 500);
        return st->write_error;
}

/* Puts the app's headers in log_fields as HttpHeaders. Returns 0 or -ENOMEM. */
static int app_headers(WsgiState *st) {
        if (st->n_fields > log_fields_cap) {
                HttpHeader *p = realloc(log_fields, st->n_fields * sizeof(HttpHeader));

                if (!p)
                        return -ENOMEM;
                log_fields = p;
                log_fields_cap = st->n_fields;
        }
        for (size_t i = 0; i < st->n_fields; i++)
                log_fields[i] = (HttpHeader) {
                        .name = { lines_buf.p + fields[i].name_off, fields[i].name_len },
                        .value = { lines_buf.p + fields[i].value_off, fields[i].value_len },
                };
        return 0;
}

static void write_access_log(WsgiState *st, const struct timespec *start_real, const struct timespec *start_mono) {
        char stack[2048];
        _cleanup_free_ char *heap = NULL;
        struct timespec now;
        AccessEntry e;
        /* %({name}o)s sees the app's headers, as Gunicorn's resp.headers */
        size_t n, n_fields;

        if (!access_log || !log_access_enabled() || st->app_answered)
                return;
        if (app_headers(st) < 0)
                return;
        n_fields = st->n_fields - (st->own_length ? 1 : 0);
        clock_gettime(CLOCK_MONOTONIC, &now);
        e = (AccessEntry) {
                .request = st->request,
                .remote_addr = conn_info(st->conn)->remote_addr,
                .status = st->status,
                .body_bytes = st->sent,
                .response_headers = log_fields,
                .n_response_headers = n_fields,
                .start = *start_real,
                .duration_usec = (uint64_t) ((now.tv_sec - start_mono->tv_sec) * 1000000LL +
                                             (now.tv_nsec - start_mono->tv_nsec) / 1000),
                .pid = worker_pid,
                .environ_values = st->environ_logged ? log_environ.values : NULL,
                .n_environ_values = accesslog_environ_count(access_log),
        };
        n = accesslog_render(access_log, &e, stack, sizeof(stack));
        if (n < sizeof(stack)) {
                log_access(&e, stack, n);
                return;
        }
        heap = malloc(n + 1);
        if (!heap)
                return;
        n = accesslog_render(access_log, &e, heap, n + 1);
        log_access(&e, heap, n);
}

/* post_request(worker, req, environ, resp) once the request is done. */
static void post_request(WsgiState *st, PyObject *environ) {
        size_t n = app_headers(st) < 0 ? 0 : st->n_fields;

        hooks_post_request(TAKE_PTR(st->hook_req), environ, st->started ? status_buf.p : NULL, status_buf.len,
                           st->status, log_fields, n, st->sent);
}

/* The end of a request, once its answer is produced (or abandoned): the iterable's close(),
 * post_request, the environ values the access log wants, and wsgi.input detached. */
static void end_request(WsgiState *st, PyObject *result, PyObject *environ, PyObject *input) {
        Py_CLEAR(st->held);
        Py_CLEAR(st->iter);
        if (result) {
                close_result(result);
                if (PyErr_Occurred())
                        python_log_exception(LOG_ERR, "Error closing the response iterable");
        }
        if (_unlikely_(st->hook_req))
                post_request(st, environ);
        input_finish(input);
        /* the environ as the app left it, as Gunicorn's access log sees it */
        if (access_log && environ && accesslog_environ_count(access_log) > 0 && log_access_enabled())
                st->environ_logged = environ_log_values(environ, access_log, &log_environ) >= 0;
}

static void swap_head(WsgiStream *s) {
        SWAP_TWO(status_buf, s->status);
        SWAP_TWO(lines_buf, s->lines);
        SWAP_TWO(fields, s->fields);
        SWAP_TWO(fields_cap, s->fields_cap);
}

/* Moves the request to the connection, for the loop to finish: 0, or -ENOMEM. */
static int defer(WsgiState *st, PyObject *result, PyObject *environ, PyObject *input,
                 const struct timespec *start_real, const struct timespec *start_mono) {
        WsgiStream *s = calloc(1, sizeof(WsgiStream));
        PyObject *cb[2] = { start_response_obj, write_obj };

        if (!s)
                return -ENOMEM;
        s->st = *st;
        /* The queue may refer to a list's items: a tuple of them keeps each alive, whatever
         * the app does to its list while the client reads. */
        s->result = result && PyList_CheckExact(result) ? PyList_AsTuple(result) : Py_XNewRef(result);
        if (result && !s->result) {
                PyErr_Clear();
                free(s);
                return -ENOMEM;
        }
        if (s->st.result)
                s->st.result = s->result;
        s->environ = Py_XNewRef(environ);
        s->input = Py_XNewRef(input);
        s->start_real = *start_real;
        s->start_mono = *start_mono;
        /* A generator may still call write() or start_response(exc_info); the next request
         * gets callbacks of its own, since these now have two owners. */
        for (size_t i = 0; i < ELEMENTSOF(cb); i++)
                if (cb[i]) {
                        s->callbacks[i] = Py_NewRef(cb[i]);
                        ((Callback *) cb[i])->st = &s->st;
                }
        swap_head(s);
        conn_set_stream(st->conn, s);
        *st = (WsgiState) {};
        return 0;
}

static int handle(WsgiState *st, const struct timespec *start_real, const struct timespec *start_mono) {
        PyObject *input = NULL, *environ = NULL, *sr, *result = NULL, *args[3] = {};
        int r = 0;

        input = input_new(st->conn);
        if (!input)
                goto app_error;
        if (_unlikely_(hooks_per_request) &&
            hooks_pre_request(st->request, conn_info(st->conn), &st->hook_req) < 0)
                goto app_error;
        r = environ_build(st->request, conn_info(st->conn), input, &environ);
        if (r == -EXDEV) {
                log_warning("Request path %.*s does not start with SCRIPT_NAME %s",
                            (int) MIN(st->request->path.len, (size_t) 200), st->request->path.p,
                            environ_script_name());
                send_error(st, 500);
                r = st->write_error;
                goto finish;
        }
        if (r == -EPROTO) {
                log_warning("Invalid request from ip=%s: Contradictory scheme headers", conn_info(st->conn)->remote_addr);
                send_error(st, 400);
                r = st->write_error;
                goto finish;
        }
        if (r < 0)
                goto app_error;
        sr = callback_for(&start_response_obj, &start_response_type, st);
        if (!sr || !callback_for(&write_obj, &write_type, st))
                goto app_error;

        /* args[0] is free for the callee to use (PY_VECTORCALL_ARGUMENTS_OFFSET) */
        args[1] = environ;
        args[2] = sr;
        gsocket_begin(st->conn);
        result = PyObject_Vectorcall(app, args + 1, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        if (gsocket_written()) {
                /* Gunicorn's ALREADY_HANDLED: the app answered on the socket by itself, so
                 * nothing of gcorn's may follow, and the connection ends with the request */
                st->app_answered = true;
                conn_set_must_close(st->conn);
                if (!result)
                        python_log_exception(LOG_ERR, "Error handling request (answered on gunicorn.socket)");
                goto finish;
        }
        if (!result || (input_error(input) < 0 && !st->head_sent))
                /* A framework turns a failed body read into an answer of its own (a 500):
                 * the client is owed the status of what went wrong with its body. */
                goto app_error;
        r = send_result(st, result);
        if (r < 0 && PyErr_Occurred())
                goto app_error;
        if (r < 0)
                goto finish;
        if (_unlikely_(r == 0 || conn_out_pending(st->conn)))
                goto deferred;
        r = 0;
        if (st->framing == RESPONSE_FRAMING_LENGTH && st->sent < (uint64_t) st->content_length) {
                /* The client waits for bytes that will never come: only a close ends it. */
                conn_set_must_close(st->conn);
        }
        goto finish;

app_error:
        r = handle_app_error(st, input);
        /* A body cut by an app error still gets what was queued of it before the close. */
        if (r == -EIO && conn_out_pending(st->conn)) {
                st->produced = true;
                goto deferred;
        }
        goto finish;

deferred:
        /* The client has not taken it all: the loop finishes the answer, the worker is free
         * for others. */
        if (defer(st, result, environ, input, start_real, start_mono) >= 0) {
                gsocket_end();
                Py_XDECREF(result);
                Py_XDECREF(environ);
                Py_XDECREF(input);
                return 1;
        }
        log_error_errno(-ENOMEM, "Failed to hand an answer to the loop: %m");
        conn_set_must_close(st->conn);
        r = -ENOMEM;
finish:
        end_request(st, result, environ, input);
        if (start_response_obj)
                ((Callback *) start_response_obj)->st = NULL;
        if (write_obj)
                ((Callback *) write_obj)->st = NULL;
        gsocket_end();
        Py_XDECREF(result);
        Py_XDECREF(environ);
        Py_XDECREF(input);
        return r;
}

int wsgi_handle(Conn *c, WsgiResult *ret) {
        struct timespec start_real = {}, start_mono = {};
        WsgiState st = {
                .conn = c,
                .request = conn_request(c),
                .content_length = -1,
        };
        int r;

        /* Only the access log reads the clocks. */
        if (access_log && log_access_enabled()) {
                clock_gettime(CLOCK_REALTIME, &start_real);
                clock_gettime(CLOCK_MONOTONIC, &start_mono);
        }
        status_buf.len = lines_buf.len = 0;

        python_gil_acquire();
        r = handle(&st, &start_real, &start_mono);
        python_gil_release();

        if (r > 0) {
                if (ret)
                        *ret = (WsgiResult) { .pending = true };
                return 0;
        }
        write_access_log(&st, &start_real, &start_mono);
        if (ret)
                *ret = (WsgiResult) {
                        .status = st.head_sent ? st.status : 0,
                        .body_bytes = st.sent,
                };
        return r < 0 ? r : 0;
}

int wsgi_stream_pull(Conn *c) {
        WsgiStream *s = conn_stream(c);
        const Request *q = s->st.request;
        char title[256];
        int r;

        if (s->st.produced)
                return 1;
        python_gil_acquire();
        r = produce(&s->st, WSGI_PULL_BUDGET);
        if (r < 0 && PyErr_Occurred()) {
                /* The head is out: the body is cut, and only a close tells the client. What is
                 * queued still goes out first. */
                snprintf(title, sizeof(title), "Error handling request %.*s %.*s", (int) q->method.len, q->method.p,
                         (int) MIN(q->target.len, (size_t) 200), q->target.p);
                python_log_exception(LOG_ERR, title);
                conn_set_must_close(c);
                s->st.produced = true;
                r = 1;
        }
        python_gil_release();
        return r;
}

void wsgi_stream_end(Conn *c, int error, WsgiResult *ret) {
        WsgiStream *s = conn_stream(c);
        WsgiState *st;

        if (!s)
                return;
        st = &s->st;
        conn_set_stream(c, NULL);
        if (error < 0) {
                /* The access log counts what reached the kernel. */
                st->sent -= MIN(st->sent, conn_out_queued(c));
                log_debug_errno(error, "Client gone while answering %.*s %.*s: %m", (int) st->request->method.len,
                                st->request->method.p, (int) MIN(st->request->target.len, (size_t) 200),
                                st->request->target.p);
                /* the queue may refer to the items released below */
                conn_out_discard(c);
                conn_set_must_close(c);
        } else if (!st->produced || (st->framing == RESPONSE_FRAMING_LENGTH &&
                                     st->sent < (uint64_t) st->content_length))
                conn_set_must_close(c);

        python_gil_acquire();
        swap_head(s);
        for (size_t i = 0; i < ELEMENTSOF(s->callbacks); i++)
                if (s->callbacks[i]) {
                        ((Callback *) s->callbacks[i])->st = NULL;
                        Py_CLEAR(s->callbacks[i]);
                }
        end_request(st, s->result, s->environ, s->input);
        Py_CLEAR(s->result);
        Py_CLEAR(s->environ);
        Py_CLEAR(s->input);
        python_gil_release();

        write_access_log(st, &s->start_real, &s->start_mono);
        if (ret)
                *ret = (WsgiResult) {
                        .status = st->head_sent ? st->status : 0,
                        .body_bytes = st->sent,
                };
        buf_free(&s->status);
        buf_free(&s->lines);
        free(s->fields);
        free(s);
}

/* ---- A request run by a driver in Python (see wsgi.h) ---- */

/* Every call works on the request's own head buffers: other requests run between its calls. */
#define AIO_ENTER(s) swap_head(s)
#define AIO_LEAVE(s) swap_head(s)

static PyObject *aio_raise(int r) {
        if (!PyErr_Occurred()) {
                errno = -r;
                PyErr_SetFromErrno(PyExc_OSError);
        }
        return NULL;
}

int wsgi_aio_begin(Conn *c, WsgiStream **ret, PyObject **ret_environ, PyObject **ret_start_response) {
        WsgiStream *s = calloc(1, sizeof(WsgiStream));
        WsgiState *st;
        Callback *sr = NULL;
        int r = 0;

        *ret = s;
        if (!s) {
                PyErr_NoMemory();
                return -ENOMEM;
        }
        s->aio = true;
        st = &s->st;
        *st = (WsgiState) { .conn = c, .request = conn_request(c), .content_length = -1, .aio = true };
        if (access_log && log_access_enabled()) {
                clock_gettime(CLOCK_REALTIME, &s->start_real);
                clock_gettime(CLOCK_MONOTONIC, &s->start_mono);
        }
        /* start_response() returns the thread's write object, which the driver replaces by
         * its own (this one stays detached) */
        if (!callback_for(&write_obj, &write_type, NULL))
                return -ENOMEM;
        AIO_ENTER(s);
        status_buf.len = lines_buf.len = 0;
        s->input = input_new(c);
        if (!s->input) {
                r = -ENOMEM;
                goto finish;
        }
        if (_unlikely_(hooks_per_request) && hooks_pre_request(st->request, conn_info(c), &st->hook_req) < 0) {
                r = -EINVAL;
                goto finish;
        }
        /* an ASGI request (no ret_environ) is refused as its environ would be, and gets none
         * unless post_request or the access log's environ fields are to see one */
        if (ret_environ || _unlikely_(st->hook_req) || (access_log && accesslog_environ_count(access_log) > 0))
                r = environ_build(st->request, conn_info(c), s->input, &s->environ);
        else
                r = environ_check(st->request, conn_info(c));
        if (r == -EXDEV || r == -EPROTO) {
                if (r == -EXDEV)
                        log_warning("Request path %.*s does not start with SCRIPT_NAME %s",
                                    (int) MIN(st->request->path.len, (size_t) 200), st->request->path.p,
                                    environ_script_name());
                else
                        log_warning("Invalid request from ip=%s: Contradictory scheme headers", conn_info(c)->remote_addr);
                send_error(st, r == -EXDEV ? 500 : 400);
                s->aio_r = st->write_error;
                /* the refusal is the whole answer, and may wait in the queue (a held send) */
                if (s->aio_r >= 0)
                        st->produced = true;
                r = 1;
                goto finish;
        }
        if (r < 0)
                goto finish;
        sr = PyObject_New(Callback, &start_response_type);
        if (!sr) {
                r = -ENOMEM;
                goto finish;
        }
        sr->vectorcall = start_response_vectorcall;
        sr->st = st;
        s->callbacks[0] = (PyObject *) sr;
        if (ret_environ) {
                *ret_environ = Py_NewRef(s->environ);
                *ret_start_response = Py_NewRef((PyObject *) sr);
        }
        r = 0;
finish:
        AIO_LEAVE(s);
        return r;
}

PyObject *wsgi_aio_input(WsgiStream *s) {
        return s->input;
}

PyObject *wsgi_aio_start_response(WsgiStream *s, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
        PyObject *r;

        AIO_ENTER(s);
        r = start_response_vectorcall(s->callbacks[0], args, nargsf, kwnames);
        AIO_LEAVE(s);
        return r;
}

PyObject *wsgi_aio_start_response_bytes(WsgiStream *s, PyObject *const *args, size_t nargsf) {
        PyObject *r;

        head_bytes = true;
        r = wsgi_aio_start_response(s, args, nargsf, NULL);
        head_bytes = false;
        return r;
}

int wsgi_aio_result(WsgiStream *s, PyObject *result) {
        WsgiState *st = &s->st;
        int r, error;

        if (input_error(s->input) < 0 && !st->head_sent)
                return 3;
        if (!PyList_CheckExact(result) && !PyTuple_CheckExact(result) &&
            !(filewrapper_check(result) && st->started && use_sendfile))
                return 2;
        AIO_ENTER(s);
        /* The queue may refer to a list's items while the client reads: a tuple of them keeps
         * each alive, whatever the app does to its list. */
        s->result = PyList_CheckExact(result) ? PyList_AsTuple(result) : Py_NewRef(result);
        if (!s->result) {
                r = -ENOMEM;
                goto finish;
        }
        st->result = s->result;
        if (!PyTuple_CheckExact(s->result)) {
                r = send_file(st, s->result, &error);
                if (r > 0) {
                        st->produced = true;
                        r = error < 0 ? error : 1;
                        goto finish;
                }
                /* not a regular file after all: the driver iterates it (and closes it) */
                st->result = NULL;
                Py_CLEAR(s->result);
                r = 2;
                goto finish;
        }
        if (!st->started) {
                PyErr_SetString(PyExc_AssertionError, "the app returned without calling start_response()");
                r = -EINVAL;
                goto finish;
        }
        r = send_sequence(st, s->result);
finish:
        AIO_LEAVE(s);
        if (r < 0)
                aio_raise(r);
        return r;
}

int wsgi_aio_more(WsgiStream *s) {
        int r;

        AIO_ENTER(s);
        r = produce(&s->st, SIZE_MAX);
        AIO_LEAVE(s);
        if (r < 0)
                aio_raise(r);
        return r;
}

static int aio_body(WsgiStream *s, PyObject *data, bool write) {
        WsgiState *st = &s->st;
        size_t len;
        bool keep;
        int r;

        if (!st->started) {
                PyErr_SetString(PyExc_AssertionError, write ? "write() before start_response()" :
                                "the app yielded before calling start_response()");
                return -EINVAL;
        }
        if (!PyBytes_Check(data)) {
                PyErr_Format(PyExc_TypeError, "%R is not a byte", data);
                return -EINVAL;
        }
        /* As produce(): a large item goes by reference and is held until the queue is empty,
         * which the driver waits for (0) before the next. */
        if (st->held && !conn_out_pending(st->conn))
                Py_CLEAR(st->held);
        len = (size_t) PyBytes_GET_SIZE(data);
        keep = !st->held && len >= WSGI_KEEP_MIN;
        AIO_ENTER(s);
        r = send_body(st, PyBytes_AS_STRING(data), len, false, keep);
        AIO_LEAVE(s);
        if (r < 0)
                return aio_raise(r), r;
        if (keep && conn_out_pending(st->conn)) {
                st->held = Py_NewRef(data);
                return 0;
        }
        return conn_out_room(st->conn) ? 1 : 0;
}

int wsgi_aio_item(WsgiStream *s, PyObject *item) {
        return aio_body(s, item, false);
}

int wsgi_aio_write(WsgiStream *s, PyObject *data) {
        return aio_body(s, data, true);
}

int wsgi_aio_end_body(WsgiStream *s) {
        WsgiState *st = &s->st;
        int r;

        if (!st->started) {
                PyErr_SetString(PyExc_AssertionError, "the app returned without calling start_response()");
                return -EINVAL;
        }
        AIO_ENTER(s);
        r = send_body(st, NULL, 0, true, false);
        AIO_LEAVE(s);
        if (r < 0)
                return aio_raise(r), r;
        st->produced = true;
        return 0;
}

/* exc becomes the current exception again, with its traceback, for the log. */
static void aio_restore(PyObject *exc) {
        PyErr_Restore(Py_NewRef((PyObject *) Py_TYPE(exc)), Py_NewRef(exc), PyException_GetTraceback(exc));
}

void wsgi_aio_fail(WsgiStream *s, PyObject *exc) {
        if (exc)
                aio_restore(exc);
        AIO_ENTER(s);
        s->aio_r = handle_app_error(&s->st, s->input);
        AIO_LEAVE(s);
        /* A body cut by an app error still gets what was queued of it before the close. */
        if (s->aio_r == -EIO && conn_out_pending(s->st.conn)) {
                s->st.produced = true;
                s->aio_r = 0;
        }
        /* The error answer (500, or the status of a failed body) is the whole answer, and
         * may wait in the queue (a held send): the loop has nothing more to produce. */
        if (s->aio_r >= 0)
                s->st.produced = true;
}

int wsgi_aio_upgrade(WsgiStream *s, const void *head, size_t len) {
        WsgiState *st = &s->st;
        struct iovec iov = { (void *) head, len };
        int r;

        if (st->head_sent) {
                PyErr_SetString(PyExc_RuntimeError, "the answer has started: too late to switch protocols");
                return -EINVAL;
        }
        /* the head goes out as it is; the access log sees the switch, and the connection
         * is the new protocol's until it closes */
        st->status = 101;
        st->started = st->head_sent = st->produced = true;
        st->framing = RESPONSE_FRAMING_NONE;
        conn_set_must_close(st->conn);
        r = send_iov(st, &iov, 1);
        if (r < 0)
                return aio_raise(r), r;
        return 0;
}

void wsgi_aio_close_failed(WsgiStream *s, PyObject *exc) {
        (void) s;
        aio_restore(exc);
        python_log_exception(LOG_ERR, "Error closing the response iterable");
}

int wsgi_aio_finish(Conn *c, WsgiStream *s, WsgiResult *ret) {
        int r = s->aio_r;

        if (r >= 0 && s->st.framing == RESPONSE_FRAMING_LENGTH && s->st.produced &&
            s->st.sent < (uint64_t) s->st.content_length)
                /* The client waits for bytes that will never come: only a close ends it. */
                conn_set_must_close(c);
        conn_set_stream(c, s);
        if (r >= 0 && conn_out_pending(c)) {
                /* the loop sends the rest as the client takes it */
                *ret = (WsgiResult) { .pending = true };
                return 0;
        }
        /* wsgi_stream_end() takes and releases the GIL through the nesting calls */
        python_gil_acquire();
        wsgi_stream_end(c, r < 0 ? r : 0, ret);
        python_gil_release();
        return r;
}

int wsgi_init(void *app_obj, const Settings *s) {
        int r;

        use_sendfile = s->sendfile;
        python_gil_acquire();
        if (PyType_Ready(&start_response_type) < 0 || PyType_Ready(&write_type) < 0) {
                PyErr_Clear();
                r = log_error_errno(SYNTHETIC_ERRNO(ENOMEM), "Failed to set up the WSGI types");
                goto finish;
        }
        r = input_init();
        if (r >= 0)
                r = environ_init(s);
        if (r < 0) {
                PyErr_Clear();
                r = log_error_errno(r, "Failed to build the WSGI environ template: %m");
                goto finish;
        }
        app = Py_NewRef((PyObject *) app_obj);
        r = 0;
finish:
        python_gil_release();
        if (r < 0)
                return r;

        worker_pid = getpid();
        if (s && s->accesslog) {
                r = accesslog_compile(s->access_log_format, &access_log);
                if (r < 0)
                        return log_error_errno(r, "Invalid access_log_format '%s'", strna(s->access_log_format));
        }
        return 0;
}

void wsgi_thread_done(void) {
        python_gil_acquire();
        Py_CLEAR(start_response_obj);
        Py_CLEAR(write_obj);
        python_gil_release();
        buf_free(&status_buf);
        buf_free(&lines_buf);
        buf_free(&start_buf);
        fields = mfree(fields);
        fields_cap = 0;
        log_fields = mfree(log_fields);
        log_fields_cap = 0;
        environ_log_values_free(&log_environ);
}

void wsgi_done(void) {
        access_log = accesslog_free(access_log);
        python_gil_acquire();
        Py_CLEAR(app);
        Py_CLEAR(start_response_obj);
        Py_CLEAR(write_obj);
        environ_done();
        python_gil_release();
        buf_free(&status_buf);
        buf_free(&lines_buf);
        buf_free(&start_buf);
        free(fields);
        fields = NULL;
        fields_cap = 0;
        free(log_fields);
        log_fields = NULL;
        environ_log_values_free(&log_environ);
        log_fields_cap = 0;
}
