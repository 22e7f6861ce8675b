/* wsgi.file_wrapper: a C type so the WSGI layer can spot it by identity and use sendfile(2). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>

#include "gcorn/filewrapper.h"

typedef struct FileWrapper {
        PyObject_HEAD
        PyObject *filelike;
        Py_ssize_t blksize;
} FileWrapper;

static int filewrapper_tp_init(PyObject *self, PyObject *args, PyObject *kwds) {
        static char *kwlist[] = { "filelike", "blksize", NULL };
        FileWrapper *w = (FileWrapper *) self;
        PyObject *filelike;
        Py_ssize_t blksize = 8192;

        if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|n:FileWrapper", kwlist, &filelike, &blksize))
                return -1;
        if (blksize <= 0) {
                PyErr_SetString(PyExc_ValueError, "blksize must be positive");
                return -1;
        }
        Py_XSETREF(w->filelike, Py_NewRef(filelike));
        w->blksize = blksize;
        return 0;
}

static void filewrapper_dealloc(PyObject *self) {
        FileWrapper *w = (FileWrapper *) self;

        PyObject_GC_UnTrack(self);
        Py_CLEAR(w->filelike);
        Py_TYPE(self)->tp_free(self);
}

static int filewrapper_traverse(PyObject *self, visitproc visit, void *arg) {
        Py_VISIT(((FileWrapper *) self)->filelike);
        return 0;
}

static int filewrapper_clear(PyObject *self) {
        Py_CLEAR(((FileWrapper *) self)->filelike);
        return 0;
}

static PyObject *filewrapper_iternext(PyObject *self) {
        FileWrapper *w = (FileWrapper *) self;
        PyObject *data;

        if (!w->filelike)
                return NULL;
        data = PyObject_CallMethod(w->filelike, "read", "n", w->blksize);
        if (!data)
                return NULL;
        /* Gunicorn's FileWrapper.__getitem__: any false value ends the iteration. */
        if (PyObject_IsTrue(data) > 0)
                return data;
        Py_DECREF(data);
        return NULL;
}

static PyObject *filewrapper_close(PyObject *self, PyObject *Py_UNUSED(ignored)) {
        FileWrapper *w = (FileWrapper *) self;
        PyObject *close, *r;

        if (!w->filelike)
                Py_RETURN_NONE;
        close = PyObject_GetAttrString(w->filelike, "close");
        if (!close) {
                /* Gunicorn only forwards close() when the file has one. */
                if (!PyErr_ExceptionMatches(PyExc_AttributeError))
                        return NULL;
                PyErr_Clear();
                Py_RETURN_NONE;
        }
        r = PyObject_CallNoArgs(close);
        Py_DECREF(close);
        return r;
}

static PyMethodDef filewrapper_methods[] = {
        { "close", filewrapper_close, METH_NOARGS, "Closes the wrapped file." },
        { NULL, NULL, 0, NULL },
};

static PyMemberDef filewrapper_members[] = {
        { "filelike", T_OBJECT, offsetof(FileWrapper, filelike), READONLY, NULL },
        { "blksize", T_PYSSIZET, offsetof(FileWrapper, blksize), READONLY, NULL },
        { NULL, 0, 0, 0, NULL },
};

static PyTypeObject filewrapper_typeobj = {
        PyVarObject_HEAD_INIT(NULL, 0)
        .tp_name = "gcorn.FileWrapper",
        .tp_basicsize = sizeof(FileWrapper),
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
        .tp_doc = "wsgi.file_wrapper: FileWrapper(filelike, blksize=8192)",
        .tp_new = PyType_GenericNew,
        .tp_init = filewrapper_tp_init,
        .tp_dealloc = filewrapper_dealloc,
        .tp_traverse = filewrapper_traverse,
        .tp_clear = filewrapper_clear,
        .tp_iter = PyObject_SelfIter,
        .tp_iternext = filewrapper_iternext,
        .tp_methods = filewrapper_methods,
        .tp_members = filewrapper_members,
};

int filewrapper_init(void) {
        if (filewrapper_typeobj.tp_flags & Py_TPFLAGS_READY)
                return 0;
        return PyType_Ready(&filewrapper_typeobj) < 0 ? -ENOMEM : 0;
}

PyObject *filewrapper_type(void) {
        return (PyObject *) &filewrapper_typeobj;
}

bool filewrapper_check(PyObject *o) {
        return Py_IS_TYPE(o, &filewrapper_typeobj);
}

PyObject *filewrapper_filelike(PyObject *o) {
        return ((FileWrapper *) o)->filelike;
}

Py_ssize_t filewrapper_blksize(PyObject *o) {
        return ((FileWrapper *) o)->blksize;
}
