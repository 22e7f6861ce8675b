/* environ["gunicorn.socket"], attached lazily: see include/gcorn/gsocket.h. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "gcorn/gsocket.h"
#include "gcorn/macro.h"
#include "gcorn/python.h"

static PyObject *sock_obj;              /* the one GcornSocket */
static PyObject *sock_init;             /* socket.socket.__init__ */
static PyObject *sock_settimeout;       /* _socket.socket.settimeout */
static PyObject *sock_close;            /* _socket.socket.close: closes whatever socket.py's _io_refs say */
_thread_local_ GsocketState gsocket_state;

/* Every attribute use goes through _attach() first, so any use makes it a real socket; the
 * send family flags that the app answered by itself (a makefile() writer sends through
 * send() too). */
static const char source[] =
        "import socket as _socket\n"
        "import _gcorn_socket as _g\n"
        "class GcornSocket(_socket.socket):\n"
        "    __slots__ = ()\n"
        "    def __getattribute__(self, name, _get=_socket.socket.__getattribute__, _attach=_g.attach):\n"
        "        _attach(self)\n"
        "        return _get(self, name)\n"
        "    def send(self, *a, **k):\n"
        "        _g.wrote()\n"
        "        return _socket.socket.send(self, *a, **k)\n"
        "    def sendall(self, *a, **k):\n"
        "        _g.wrote()\n"
        "        return _socket.socket.sendall(self, *a, **k)\n"
        "    def sendto(self, *a, **k):\n"
        "        _g.wrote()\n"
        "        return _socket.socket.sendto(self, *a, **k)\n"
        "    def sendmsg(self, *a, **k):\n"
        "        _g.wrote()\n"
        "        return _socket.socket.sendmsg(self, *a, **k)\n"
        "    def sendfile(self, *a, **k):\n"
        "        _g.wrote()\n"
        "        return _socket.socket.sendfile(self, *a, **k)\n"
        "sock = GcornSocket.__new__(GcornSocket)\n"
        "init = _socket.socket.__init__\n"
        "settimeout = _socket._socket.socket.settimeout\n"
        "close = _socket._socket.socket.close\n";

static PyObject *attach(PyObject *mod, PyObject *self) {
        PyObject *r, *kw = NULL, *fdobj = NULL, *args[1] = { self };
        int fd;

        (void) mod;
        /* outside a request, or already done: it stays as it is (closed) */
        if (gsocket_state.attached || !gsocket_state.conn || self != sock_obj)
                Py_RETURN_NONE;
        fd = fcntl(conn_fd(gsocket_state.conn), F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return PyErr_SetFromErrno(PyExc_OSError);
        /* before __init__ runs: nothing in it may attach again */
        gsocket_state.attached = true;
        fdobj = PyLong_FromLong(fd);
        kw = fdobj ? Py_BuildValue("{sO}", "fileno", fdobj) : NULL;
        r = kw ? PyObject_VectorcallDict(sock_init, args, 1, kw) : NULL;
        Py_XDECREF(kw);
        Py_XDECREF(fdobj);
        if (!r) {
                gsocket_state.attached = false;
                (void) close(fd);
                return NULL;
        }
        Py_DECREF(r);
        /* Gunicorn's sync worker hands over a blocking socket; the flag is the connection's
         * too (one open file), and gsocket_end() sets it back */
        r = PyObject_CallFunctionObjArgs(sock_settimeout, self, Py_None, NULL);
        if (!r)
                return NULL;
        Py_DECREF(r);
        Py_RETURN_NONE;
}

static PyObject *wrote(PyObject *mod, PyObject *unused) {
        (void) mod;
        (void) unused;
        gsocket_state.written = true;
        Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
        { "attach", attach, METH_O, NULL },
        { "wrote", wrote, METH_NOARGS, NULL },
        {},
};

static struct PyModuleDef module_def = {
        PyModuleDef_HEAD_INIT, .m_name = "_gcorn_socket", .m_size = -1, .m_methods = methods,
};

int gsocket_init(void) {
        PyObject *module = NULL, *globals = NULL, *result = NULL;
        int r = -ENOMEM;

        if (sock_obj)
                return 0;
        module = PyModule_Create(&module_def);
        if (!module || PyDict_SetItemString(PyImport_GetModuleDict(), "_gcorn_socket", module) < 0)
                goto finish;
        globals = (PyObject *) python_new_globals();
        if (!globals)
                goto finish;
        result = PyRun_String(source, Py_file_input, globals, globals);
        if (!result)
                goto finish;
        sock_obj = Py_XNewRef(PyDict_GetItemString(globals, "sock"));
        sock_init = Py_XNewRef(PyDict_GetItemString(globals, "init"));
        sock_settimeout = Py_XNewRef(PyDict_GetItemString(globals, "settimeout"));
        sock_close = Py_XNewRef(PyDict_GetItemString(globals, "close"));
        if (!sock_obj || !sock_init || !sock_settimeout || !sock_close) {
                gsocket_done();
                PyErr_SetString(PyExc_RuntimeError, "gunicorn.socket setup failed");
                goto finish;
        }
        r = 0;
finish:
        Py_XDECREF(result);
        Py_XDECREF(globals);
        Py_XDECREF(module);
        return r;
}

void gsocket_done(void) {
        gsocket_end();
        Py_CLEAR(sock_obj);
        Py_CLEAR(sock_init);
        Py_CLEAR(sock_settimeout);
        Py_CLEAR(sock_close);
}

PyObject *gsocket_object(void) {
        return sock_obj;
}

void gsocket_detach(void) {
        PyObject *r;
        int flags, fd;

        gsocket_state.attached = false;
        r = PyObject_CallOneArg(sock_close, sock_obj);
        if (!r)
                PyErr_Clear();
        Py_XDECREF(r);
        if (!gsocket_state.conn)
                return;
        fd = conn_fd(gsocket_state.conn);
        flags = fcntl(fd, F_GETFL);
        if (flags >= 0 && !(flags & O_NONBLOCK))
                (void) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}
