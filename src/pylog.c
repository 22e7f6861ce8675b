/* A tiny built-in module, _gcorn, with log(priority, message), and the Python side of the
 * bridge on top of it. Lines are buffered until "\n" so that print(..., file=wsgi.errors)
 * and a traceback written piece by piece each make one entry. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "gcorn/log.h"
#include "gcorn/macro.h"
#include "gcorn/pylog.h"
#include "gcorn/python.h"

static PyObject *errors_stream;

static PyObject *gcorn_log(PyObject *self, PyObject *args) {
        const char *message, *nl;
        int priority;

        (void) self;
        if (!PyArg_ParseTuple(args, "is:log", &priority, &message))
                return NULL;
        if (priority < LOG_EMERG || priority > LOG_DEBUG)
                priority = LOG_ERR;
        nl = strchr(message, '\n');
        if (nl) {
                _cleanup_free_ char *title = strndup(message, (size_t) (nl - message));

                log_block(priority, title ? title : "", nl + 1);
        } else
                log_internal(priority, 0, "%s", message);
        Py_RETURN_NONE;
}

static PyMethodDef gcorn_methods[] = {
        { "log", gcorn_log, METH_VARARGS, "log(priority, message): one entry in gcorn's error log." },
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
        "    '''wsgi.errors: text lines to gcorn's error log at error priority.'''\n"
        "    def __init__(self):\n"
        "        self._buf = ''\n"
        "    def write(self, s):\n"
        "        if not isinstance(s, str):\n"
        "            raise TypeError('write() argument must be str, not %s' % type(s).__name__)\n"
        "        self._buf += s\n"
        "        while '\\n' in self._buf:\n"
        "            line, self._buf = self._buf.split('\\n', 1)\n"
        "            _gcorn.log(3, line)\n"
        "        return len(s)\n"
        "    def writelines(self, lines):\n"
        "        for s in lines:\n"
        "            self.write(s)\n"
        "    def flush(self):\n"
        "        if self._buf:\n"
        "            _gcorn.log(3, self._buf)\n"
        "            self._buf = ''\n"
        "\n"
        "_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))\n"
        "\n"
        "class Handler(logging.Handler):\n"
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
