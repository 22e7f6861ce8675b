/* wsgi.input: a C type reading the request body from the connection.
 *
 * Constructed once per request by the WSGI layer, which owns it for the duration of the
 * request and tears it down with input_finish(). After that the object is detached from the
 * connection: an app that kept it gets ValueError("I/O operation on closed wsgi.input") and
 * can never read the next request on a reused connection.
 *
 * Reads release the GIL while they block. A failed body read raises gcorn.InputError, an
 * OSError subclass whose errno is EBADMSG (malformed chunked body), EFBIG (body over
 * --limit-request-body), ETIMEDOUT or ECONNRESET; the object also remembers the failure so
 * the WSGI layer can answer 400/413/408 even when the app turned it into another exception.
 * All functions need the GIL. */
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "gcorn/conn.h"

/* Readies the type and the exception. Idempotent. Returns 0 or -ENOMEM (Python error set). */
int input_init(void);

/* A new reference reading from c, or NULL with a Python error set. */
PyObject *input_new(Conn *c);

/* Detaches from the connection. */
void input_finish(PyObject *input);

/* 0, or the negative errno of the body read that failed. */
int input_error(PyObject *input);
