/* Python logging configuration for the error log, and stdout/stderr capture. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gcorn/log.h"
#include "gcorn/logconfig.h"
#include "gcorn/macro.h"
#include "gcorn/python.h"

/* Functions from logconfig_source; NULL until first needed. */
static PyObject *apply_func, *emit_func, *reopen_func;
static bool forwarding;

static const char logconfig_source[] =
        "import json, logging, logging.config, os\n"
        "\n"
        "def _defaults():\n"
        "    # Gunicorn's CONFIG_DEFAULTS: a dict or JSON configuration is laid over these.\n"
        "    generic = {'format': '%(asctime)s [%(process)d] [%(levelname)s] %(message)s',\n"
        "               'datefmt': '[%Y-%m-%d %H:%M:%S %z]', 'class': 'logging.Formatter'}\n"
        "    return {\n"
        "        'version': 1, 'disable_existing_loggers': False,\n"
        "        'root': {'level': 'INFO', 'handlers': ['console']},\n"
        "        'loggers': {\n"
        "            'gunicorn.error': {'level': 'INFO', 'handlers': ['error_console'], 'propagate': True,\n"
        "                               'qualname': 'gunicorn.error'},\n"
        "            'gunicorn.access': {'level': 'INFO', 'handlers': ['console'], 'propagate': True,\n"
        "                                'qualname': 'gunicorn.access'}},\n"
        "        'handlers': {\n"
        "            'console': {'class': 'logging.StreamHandler', 'formatter': 'generic',\n"
        "                        'stream': 'ext://sys.stdout'},\n"
        "            'error_console': {'class': 'logging.StreamHandler', 'formatter': 'generic',\n"
        "                              'stream': 'ext://sys.stderr'}},\n"
        "        'formatters': {'generic': generic}}\n"
        "\n"
        "def apply(level, d, json_path, ini_path):\n"
        "    err = logging.getLogger('gunicorn.error')\n"
        "    err.propagate = False\n"
        "    err.setLevel(level)\n"
        "    access = False\n"
        "    if d:\n"
        "        c = _defaults()\n"
        "        c.update(d)\n"
        "        access = 'gunicorn.access' in (d.get('loggers') or {})\n"
        "        logging.config.dictConfig(c)\n"
        "    elif json_path:\n"
        "        with open(json_path, encoding='utf-8') as f:\n"
        "            j = json.load(f)\n"
        "        if not isinstance(j, dict):\n"
        "            raise ValueError('the JSON document is not an object')\n"
        "        c = _defaults()\n"
        "        c.update(j)\n"
        "        access = 'gunicorn.access' in (j.get('loggers') or {})\n"
        "        logging.config.dictConfig(c)\n"
        "    else:\n"
        "        if not os.path.exists(ini_path):\n"
        "            raise FileNotFoundError('log config %r not found' % ini_path)\n"
        "        logging.config.fileConfig(ini_path, defaults={'__file__': ini_path,\n"
        "                                  'here': os.path.dirname(ini_path)}, disable_existing_loggers=False)\n"
        "        access = bool(logging.getLogger('gunicorn.access').handlers)\n"
        "    return err.hasHandlers(), err.getEffectiveLevel(), access\n"
        "\n"
        "_err = logging.getLogger('gunicorn.error')\n"
        "\n"
        "def reopen():\n"
        "    names = list(logging.root.manager.loggerDict)\n"
        "    for log in [logging.root] + [logging.getLogger(n) for n in names]:\n"
        "        for h in getattr(log, 'handlers', ()):\n"
        "            if isinstance(h, logging.FileHandler):\n"
        "                h.acquire()\n"
        "                try:\n"
        "                    if h.stream:\n"
        "                        h.close()\n"
        "                        h.stream = h._open()\n"
        "                finally:\n"
        "                    h.release()\n"
        "\n"
        "def emit(level, text):\n"
        "    # No arguments: the text is not %-formatted again.\n"
        "    _err.log(level, text)\n";

static int py_level(int level) {
        switch (level) {
        case LOG_DEBUG:
                return 10;
        case LOG_INFO:
        case LOG_NOTICE:
                return 20;
        case LOG_WARNING:
                return 30;
        case LOG_ERR:
                return 40;
        default:
                return 50;
        }
}

static int syslog_level(long level) {
        if (level <= 10)
                return LOG_DEBUG;
        if (level <= 20)
                return LOG_INFO;
        if (level <= 30)
                return LOG_WARNING;
        if (level <= 40)
                return LOG_ERR;
        return LOG_CRIT;
}

static bool python_usable(void) {
#if PY_VERSION_HEX >= 0x030D0000
        return Py_IsInitialized() && !Py_IsFinalizing();
#else
        return Py_IsInitialized() && !_Py_IsFinalizing();
#endif
}

/* The log's forwarder: one gcorn entry as a record of gunicorn.error. Not reentered: what
 * a handler logs through gcorn while emitting goes to the native writer. */
static bool forward(int level, const char *text, size_t len) {
        static bool busy;
        PyGILState_STATE g;
        PyObject *msg, *res = NULL;

        if (busy || !forwarding || !emit_func || !python_usable())
                return false;
        busy = true;
        g = PyGILState_Ensure();
        msg = PyUnicode_DecodeUTF8(text, (Py_ssize_t) len, "backslashreplace");
        if (msg)
                res = PyObject_CallFunction(emit_func, "iO", py_level(level), msg);
        if (!res)
                PyErr_Clear();
        Py_XDECREF(res);
        Py_XDECREF(msg);
        PyGILState_Release(g);
        busy = false;
        return res != NULL;
}

static int load_functions(void) {
        PyObject *globals, *result;

        if (apply_func)
                return 0;
        globals = python_new_globals();
        if (!globals)
                return -EIO;
        result = PyRun_String(logconfig_source, Py_file_input, globals, globals);
        if (result) {
                apply_func = Py_XNewRef(PyDict_GetItemString(globals, "apply"));
                emit_func = Py_XNewRef(PyDict_GetItemString(globals, "emit"));
                reopen_func = Py_XNewRef(PyDict_GetItemString(globals, "reopen"));
        }
        Py_XDECREF(result);
        Py_DECREF(globals);
        return apply_func && emit_func && reopen_func ? 0 : -EIO;
}

/* "ValueError: Unable to configure handler 'x'" from the pending exception. */
static char *exception_line(void) {
        PyObject *type = NULL, *value = NULL, *tb = NULL, *str = NULL;
        const char *text = NULL;
        char *ret = NULL;

        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        if (value) {
                PyObject *cause = PyException_GetCause(value);

                /* dictConfig()'s "Unable to configure root logger" says why in its cause. */
                str = cause ? PyUnicode_FromFormat("%S (%s: %S)", value, Py_TYPE(cause)->tp_name, cause)
                            : PyObject_Str(value);
                Py_XDECREF(cause);
        }
        if (str)
                text = PyUnicode_AsUTF8(str);
        if (asprintf(&ret, "%s%s%s", type ? ((PyTypeObject *) type)->tp_name : "error", text && *text ? ": " : "",
                     text ? text : "") < 0)
                ret = NULL;
        PyErr_Clear();
        Py_XDECREF(str);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        return ret;
}

int logconfig_set_dict(Settings *s, void *value, char **ret_error) {
        PyObject *v = value;

        if (!PyDict_Check(v)) {
                if (asprintf(ret_error, "Invalid value for logconfig_dict: a %s is not allowed (a dict is)",
                             Py_TYPE(v)->tp_name) < 0) {
                        *ret_error = NULL;
                        return -ENOMEM;
                }
                return -EINVAL;
        }
        Py_XSETREF(*(PyObject **) &s->logconfig_dict, Py_NewRef(v));
        return 0;
}

void logconfig_dict_free(void **dict) {
        PyGILState_STATE g;

        if (!*dict)
                return;
        if (python_usable()) {
                g = PyGILState_Ensure();
                Py_DECREF((PyObject *) *dict);
                PyGILState_Release(g);
        }
        *dict = NULL;
}

static bool dict_set(const Settings *s) {
        return s->logconfig_dict && PyDict_Size(s->logconfig_dict) > 0;
}

int logconfig_apply(const Settings *s, char **ret_error) {
        PyObject *res = NULL, *dict;
        const char *what;
        int has = 0, access = 0, r = 0;
        long level = 0;
        PyGILState_STATE g;

        forwarding = false;
        log_set_forward(NULL);
        if (!python_usable())
                return 0;
        g = PyGILState_Ensure();
        if (!dict_set(s) && !s->logconfig_json && !s->logconfig)
                goto out;
        what = dict_set(s) ? "logconfig_dict" : s->logconfig_json ? "logconfig_json" : "logconfig";
        if (load_functions() < 0)
                goto python_error;
        dict = dict_set(s) ? s->logconfig_dict : Py_None;
        res = PyObject_CallFunction(apply_func, "iOzz", py_level(log_get_level()), dict,
                                    dict == Py_None ? s->logconfig_json : NULL,
                                    dict == Py_None && !s->logconfig_json ? s->logconfig : NULL);
        if (!res || !PyArg_ParseTuple(res, "plp", &has, &level, &access))
                goto python_error;
        if (access)
                log_warning("%s configures the gunicorn.access logger, which gets no records: gcorn writes the "
                            "access log itself (accesslog, access_log_format)", what);
        if (has) {
                log_set_level(syslog_level(level));
                forwarding = true;
                log_set_forward(forward);
        }
        goto out;

python_error: {
        _cleanup_free_ char *line = exception_line();

        if (asprintf(ret_error, "Cannot configure logging from %s: %s", what, strna(line)) < 0)
                *ret_error = NULL;
        r = -EINVAL;
}
out:
        Py_XDECREF(res);
        PyGILState_Release(g);
        return r;
}

void logconfig_capture_output(const Settings *s) {
        int fd;

        if (!s->capture_output || !s->errorlog || strcmp(s->errorlog, "-") == 0)
                return;
        /* What Python and stdio hold goes where it was meant to go before the switch. */
        if (python_usable()) {
                PyGILState_STATE g = PyGILState_Ensure();
                PyObject *globals = python_new_globals(), *r = NULL;

                if (globals)
                        r = PyRun_String("import sys\nfor _s in (sys.stdout, sys.stderr):\n"
                                         "    _s is not None and _s.flush()\n",
                                         Py_file_input, globals, globals);
                if (!r)
                        PyErr_Clear();
                Py_XDECREF(r);
                Py_XDECREF(globals);
                PyGILState_Release(g);
        }
        fflush(stdout);
        fflush(stderr);
        fd = log_error_fd();
        if (dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
                log_warning_errno(errno, "Cannot send stdout and stderr to %s: %m", s->errorlog);
}

void logconfig_reopen(const Settings *s) {
        if (python_usable()) {
                PyGILState_STATE g = PyGILState_Ensure();
                PyObject *res = NULL;

                if (load_functions() >= 0)
                        res = PyObject_CallNoArgs(reopen_func);
                if (!res)
                        python_log_exception(LOG_WARNING, "Cannot reopen the logging module's files");
                Py_XDECREF(res);
                PyGILState_Release(g);
        }
        logconfig_capture_output(s);
}

void logconfig_warn_unused(const Settings *s) {
        if (s->capture_output && (!s->errorlog || strcmp(s->errorlog, "-") == 0))
                log_warning("capture_output has no effect: the error log is stderr already (set errorlog to a file)");
        if (dict_set(s) && (s->logconfig_json || s->logconfig))
                log_warning("logconfig_dict takes precedence: %s %s is not used",
                            s->logconfig_json ? "logconfig_json" : "logconfig",
                            s->logconfig_json ? s->logconfig_json : s->logconfig);
        else if (s->logconfig_json && s->logconfig)
                log_warning("logconfig_json takes precedence: logconfig %s is not used", s->logconfig);
}

void logconfig_print_markdown(FILE *f) {
        fputs("| `logconfig_dict` | config file |  | implemented | Python logging configuration as a dict "
              "(dictConfig), laid over Gunicorn's defaults; it wins over logconfig_json and logconfig. |\n", f);
}

void logconfig_print_man(FILE *f) {
        fputs(".SS \"Logging (config file only)\"\n"
              ".TP\n(config file only)\n"
              "Python logging configuration as a dict (dictConfig), laid over Gunicorn's defaults; it wins "
              "over logconfig_json and logconfig.\n.br\nSetting: \\fBlogconfig_dict\\fR. Status: implemented.\n", f);
}

/* repr() of logconfig_dict for --print-config ("{}" when unset, Gunicorn's default). */
char *logconfig_dict_repr(const Settings *s) {
        PyObject *repr;
        char *ret = NULL;

        if (!s->logconfig_dict)
                return strdup("{}");
        python_gil_acquire();
        repr = PyObject_Repr(s->logconfig_dict);
        if (repr && PyUnicode_AsUTF8(repr))
                ret = strdup(PyUnicode_AsUTF8(repr));
        PyErr_Clear();
        Py_XDECREF(repr);
        python_gil_release();
        return ret;
}
