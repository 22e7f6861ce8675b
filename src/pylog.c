/* A tiny built-in module, _gcorn, with log(priority, message) for logging records and
 * errors_write()/errors_flush() for wsgi.errors, and the Python side of the bridge on top of
 * it. What the text holds (a NUL, a lone surrogate) never makes them raise into the app. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "gcorn/log.h"
#include "gcorn/macro.h"
#include "gcorn/pylog.h"
#include "gcorn/python.h"

static PyObject *errors_stream;

/* The text of s in UTF-8, lone surrogates as \udXXX (backslashreplace) and NUL as \x00: log
 * entries are C strings, and a journal field would end at the NUL. Returns a malloc'd
 * string (length in *ret_len), or NULL with MemoryError set. */
static char *log_text(PyObject *s, size_t *ret_len) {
        PyObject *bytes;
        const char *p;
        size_t len, nuls = 0, n = 0;
        char *buf;

        bytes = PyUnicode_AsEncodedString(s, "utf-8", "backslashreplace");
        if (!bytes)
                return NULL;
        p = PyBytes_AS_STRING(bytes); /* owned by bytes */
        len = (size_t) PyBytes_GET_SIZE(bytes);
        for (const char *q = p; (q = memchr(q, 0, len - (size_t) (q - p))); q++)
                nuls++;
        buf = malloc(len + nuls * 3 + 1);
        if (!buf) {
                Py_DECREF(bytes);
                PyErr_NoMemory();
                return NULL;
        }
        for (size_t i = 0; i < len; i++) {
                if (p[i]) {
                        buf[n++] = p[i];
                        continue;
                }
                memcpy(buf + n, "\\x00", 4);
                n += 4;
        }
        buf[n] = 0;
        Py_DECREF(bytes);
        *ret_len = n;
        return buf;
}

static PyObject *gcorn_log(PyObject *self, PyObject *args) {
        _cleanup_free_ char *text = NULL;
        PyObject *message; /* borrowed from args */
        int priority;
        size_t len;

        (void) self;
        if (!PyArg_ParseTuple(args, "iU:log", &priority, &message))
                return NULL;
        if (priority < LOG_EMERG || priority > LOG_DEBUG)
                priority = LOG_ERR;
        text = log_text(message, &len);
        if (!text)
                return NULL;
        log_message(priority, text, len);
        Py_RETURN_NONE;
}

static PyObject *gcorn_errors_write(PyObject *self, PyObject *arg) {
        _cleanup_free_ char *text = NULL;
        size_t len;

        (void) self;
        if (!PyUnicode_Check(arg))
                return PyErr_Format(PyExc_TypeError, "write() argument must be str, not %.100s",
                                    Py_TYPE(arg)->tp_name);
        text = log_text(arg, &len);
        if (!text)
                return NULL;
        log_errors_write(text, len);
        return PyLong_FromSsize_t(PyUnicode_GET_LENGTH(arg));
}

static PyObject *gcorn_errors_flush(PyObject *self, PyObject *unused) {
        (void) self;
        (void) unused;
        log_errors_flush();
        Py_RETURN_NONE;
}

static PyMethodDef gcorn_methods[] = {
        { "log", gcorn_log, METH_VARARGS, "log(priority, message): one entry in gcorn's error log." },
        { "errors_write", gcorn_errors_write, METH_O, "errors_write(text): wsgi.errors text to the error log." },
        { "errors_flush", gcorn_errors_flush, METH_NOARGS, "errors_flush(): what errors_write() held back." },
        { NULL, NULL, 0, NULL },
};

static struct PyModuleDef gcorn_module = {
        PyModuleDef_HEAD_INIT,
        .m_name = "_gcorn",
        .m_doc = "gcorn's error log.",
        .m_size = -1,
        .m_methods = gcorn_methods,
};

static const char bridge_source[] =
        "import logging, _gcorn\n"
        "\n"
        "class ErrorStream:\n"
        "    '''wsgi.errors: the text goes to gcorn's error log as it is, as with Gunicorn.'''\n"
        "    def write(self, s):\n"
        "        return _gcorn.errors_write(s)\n"
        "    def writelines(self, lines):\n"
        "        for s in lines:\n"
        "            _gcorn.errors_write(s)\n"
        "    def flush(self):\n"
        "        _gcorn.errors_flush()\n"
        "\n"
        "_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))\n"
        "\n"
        "class Handler(logging.Handler):\n"
        "    '''A record, traceback included, is one entry in gcorn's error log.'''\n"
        "    def emit(self, record):\n"
        "        try:\n"
        "            msg = self.format(record)\n"
        "        except Exception:\n"
        "            self.handleError(record)\n"
        "            return\n"
        "        for level, priority in _PRIORITIES:\n"
        "            if record.levelno >= level:\n"
        "                break\n"
        "        else:\n"
        "            priority = 7\n"
        "        _gcorn.log(priority, msg)\n"
        "\n"
        "errors = ErrorStream()\n"
        "logging.lastResort = Handler(logging.WARNING)\n";

int pylog_install(void) {
        PyObject *module = NULL, *modules, *globals = NULL, *result = NULL;
        int r = -EIO;

        python_gil_acquire();
        module = PyModule_Create(&gcorn_module);
        if (!module)
                goto out;
        modules = PyImport_GetModuleDict(); /* borrowed */
        if (PyDict_SetItemString(modules, "_gcorn", module) < 0)
                goto out;
        globals = python_new_globals();
        if (!globals)
                goto out;
        result = PyRun_String(bridge_source, Py_file_input, globals, globals);
        if (!result)
                goto out;
        errors_stream = PyDict_GetItemString(globals, "errors"); /* borrowed */
        if (!errors_stream)
                goto out;
        Py_INCREF(errors_stream);
        r = 0;
out:
        if (r < 0)
                python_log_exception(LOG_WARNING, "Failed to route the app's logging to the error log");
        Py_XDECREF(result);
        Py_XDECREF(globals);
        Py_XDECREF(module);
        python_gil_release();
        return r;
}

void *pylog_errors(void) {
        return errors_stream;
}
