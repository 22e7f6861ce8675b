/* wsgi.file_wrapper: FileWrapper(filelike, blksize=8192), iterated with read(blksize) when
 * the response cannot go out with sendfile(2). All functions need the GIL. */
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdbool.h>

/* Readies the type; idempotent. Returns 0 or -ENOMEM with the Python error set. */
int filewrapper_init(void);

/* The type object, for the environ template. Borrowed. */
PyObject *filewrapper_type(void);

/* True when o is exactly a FileWrapper (no subclass can exist). */
bool filewrapper_check(PyObject *o);

/* The wrapped file object (borrowed) and the block size of a FileWrapper. */
PyObject *filewrapper_filelike(PyObject *o);
Py_ssize_t filewrapper_blksize(PyObject *o);
