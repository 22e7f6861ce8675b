/* Server hooks. The objects hooks receive are small Python classes (the source below); the
 * C side decides when a hook runs and what an exception in it means. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "gcorn/hooks.h"
#include "gcorn/log.h"
#include "gcorn/macro.h"
#include "gcorn/python.h"

#define HOOKS_FILENAME "<gcorn hooks>"

static const char hooks_source[] =
        "import inspect, os, sys, traceback\n"
        "\n"
        "def _arity(f):\n"
        "    try:\n"
        "        params = inspect.signature(f).parameters.values()\n"
        "    except (TypeError, ValueError):\n"
        "        return None\n"
        "    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))\n"
        "\n"
        "def check(name, value, want):\n"
        "    '''The callable for hook name taking want arguments, checked as Gunicorn checks it;\n"
        "    raises TypeError with the reason.'''\n"
        "    if isinstance(value, str):\n"
        "        mod_name, dot, obj_name = value.rpartition('.')\n"
        "        if not mod_name:\n"
        "            raise TypeError(f\"Value '{value}' is not import string. \"\n"
        "                            'Format: module[.submodules...].object')\n"
        "        try:\n"
        "            mod = __import__(mod_name, fromlist=[obj_name])\n"
        "        except ImportError as e:\n"
        "            raise TypeError(str(e)) from None\n"
        "        except Exception as e:\n"
        "            raise TypeError(f'{type(e).__name__}: {e}') from None\n"
        "        try:\n"
        "            value = getattr(mod, obj_name)\n"
        "        except AttributeError:\n"
        "            raise TypeError(f\"Can not load '{obj_name}' from '{mod_name}'\") from None\n"
        "    if not callable(value):\n"
        "        raise TypeError(f'Value is not callable: {value}')\n"
        "    arity = _arity(value)\n"
        "    if arity is None:\n"
        "        return value\n"
        "    if name == 'post_request':\n"
        "        f = value\n"
        "        if arity == 3:\n"
        "            return lambda worker, req, environ, resp: f(worker, req, environ)\n"
        "        if arity == 2:\n"
        "            return lambda worker, req, environ, resp: f(worker, req)\n"
        "    if arity != want:\n"
        "        raise TypeError(f'Value must have an arity of: {want}')\n"
        "    return value\n"
        "\n"
        "def _nothing(*args):\n"
        "    pass\n"
        "\n"
        "class Log:\n"
        "    '''server.log and worker.log: entries in gcorn's error log, called as a logging.Logger.'''\n"
        "    def _emit(self, priority, msg, args, exc_info):\n"
        "        if len(args) == 1 and isinstance(args[0], dict) and args[0]:\n"
        "            args = args[0]\n"
        "        text = str(msg)\n"
        "        if args:\n"
        "            try:\n"
        "                text = text % args\n"
        "            except Exception:\n"
        "                text = f'{text} {args!r}'\n"
        "        if exc_info:\n"
        "            if isinstance(exc_info, BaseException):\n"
        "                e = exc_info\n"
        "            elif isinstance(exc_info, tuple):\n"
        "                e = exc_info[1]\n"
        "            else:\n"
        "                e = sys.exc_info()[1]\n"
        "            if e is not None:\n"
        "                text += '\\n' + ''.join(traceback.format_exception(type(e), e, e.__traceback__)).rstrip('\\n')\n"
        "        _log(priority, text)\n"
        "    def critical(self, msg, *args, exc_info=None, **kwargs):\n"
        "        self._emit(2, msg, args, exc_info)\n"
        "    def error(self, msg, *args, exc_info=None, **kwargs):\n"
        "        self._emit(3, msg, args, exc_info)\n"
        "    def exception(self, msg, *args, exc_info=True, **kwargs):\n"
        "        self._emit(3, msg, args, exc_info)\n"
        "    def warning(self, msg, *args, exc_info=None, **kwargs):\n"
        "        self._emit(4, msg, args, exc_info)\n"
        "    warn = warning\n"
        "    def info(self, msg, *args, exc_info=None, **kwargs):\n"
        "        self._emit(6, msg, args, exc_info)\n"
        "    def debug(self, msg, *args, exc_info=None, **kwargs):\n"
        "        self._emit(7, msg, args, exc_info)\n"
        "    def log(self, level, msg, *args, exc_info=None, **kwargs):\n"
        "        priority = 2 if level >= 50 else 3 if level >= 40 else 4 if level >= 30 else 6 if level >= 20 else 7\n"
        "        self._emit(priority, msg, args, exc_info)\n"
        "\n"
        "class Config:\n"
        "    '''server.cfg: the settings by their Gunicorn names, and the hooks.'''\n"
        "    def __init__(self, values):\n"
        "        self.__dict__['_values'] = values\n"
        "    def __getattr__(self, name):\n"
        "        try:\n"
        "            return self.__dict__['_values'][name]\n"
        "        except KeyError:\n"
        "            raise AttributeError(f'No configuration setting for: {name}') from None\n"
        "    def __setattr__(self, name, value):\n"
        "        raise AttributeError('Invalid access!')\n"
        "\n"
        "def make_config(values, hooks, names):\n"
        "    values['worker_class_str'] = values.get('worker_class')\n"
        "    values['is_ssl'] = False\n"
        "    for name in names:\n"
        "        values[name] = hooks.get(name, _nothing)\n"
        "    return Config(values)\n"
        "\n"
        "class Server:\n"
        "    '''The server hooks get: what hooks use of Gunicorn's Arbiter.'''\n"
        "    master_name = 'Master'\n"
        "    def __init__(self):\n"
        "        self.pid = os.getpid()\n"
        "        self.log = Log()\n"
        "        self.cfg = None\n"
        "        self.num_workers = 0\n"
        "        self.worker_age = 0\n"
        "        self.WORKERS = {}\n"
        "    def __str__(self):\n"
        "        return f'<Server {self.pid}>'\n"
        "\n"
        "class Worker:\n"
        "    '''A worker as hooks see it; the same object in pre_fork, post_fork and child_exit.'''\n"
        "    def __init__(self, server):\n"
        "        server.worker_age += 1\n"
        "        self.age = server.worker_age\n"
        "        self.pid = '[booting]'\n"
        "        self.ppid = server.pid\n"
        "        self.cfg = server.cfg\n"
        "        self.log = server.log\n"
        "        self.timeout = server.cfg.timeout\n"
        "        self.booted = False\n"
        "        self.aborted = False\n"
        "        self.alive = True\n"
        "    def __str__(self):\n"
        "        return f'<Worker {self.pid}>'\n"
        "\n"
        "class Request:\n"
        "    '''req: the request head, with the attributes of Gunicorn's Request.'''\n"
        "    scheme = 'http'\n"
        "    def __init__(self, method, uri, path, query, fragment, version, headers, peer_addr):\n"
        "        self.method = method\n"
        "        self.uri = uri\n"
        "        self.path = path\n"
        "        self.query = query\n"
        "        self.fragment = fragment\n"
        "        self.version = version\n"
        "        self.headers = headers\n"
        "        self.peer_addr = self.remote_addr = peer_addr\n"
        "    def __str__(self):\n"
        "        return f'<Request {self.method} {self.uri}>'\n"
        "\n"
        "class Response:\n"
        "    '''resp: what was answered, with the attributes of Gunicorn's Response.'''\n"
        "    def __init__(self, status, status_code, headers, sent):\n"
        "        self.status = status\n"
        "        self.status_code = status_code\n"
        "        self.headers = headers\n"
        "        self.sent = sent\n";

/* Every hook of Gunicorn 23 to 26.1, with the number of arguments it takes. */
static const struct {
        const char *name;
        int arity;
        bool worker;                    /* needs the worker object (pre_fork makes it) */
        const char *inert;              /* accepted but never run: why */
} hook_table[] = {
        { .name = "on_starting", .arity = 1 },
        { .name = "on_reload", .arity = 1 },
        { .name = "when_ready", .arity = 1 },
        { .name = "pre_fork", .arity = 2, .worker = true },
        { .name = "post_fork", .arity = 2, .worker = true },
        { .name = "post_worker_init", .arity = 1, .worker = true },
        { .name = "worker_int", .arity = 1, .worker = true },
        { .name = "worker_abort", .arity = 1, .worker = true },
        { .name = "pre_exec", .arity = 1 },
        { .name = "pre_request", .arity = 2, .worker = true },
        { .name = "post_request", .arity = 4, .worker = true },
        { .name = "child_exit", .arity = 2, .worker = true },
        { .name = "worker_exit", .arity = 2, .worker = true },
        { .name = "nworkers_changed", .arity = 3 },
        { .name = "on_exit", .arity = 1 },
        { .name = "ssl_context", .arity = 2, .inert = "gcorn does not serve TLS yet" },
        /* Gunicorn 25's dirty arbiter. */
        { .name = "on_dirty_starting", .arity = 1, .inert = "gcorn has no dirty workers" },
        { .name = "dirty_post_fork", .arity = 2, .inert = "gcorn has no dirty workers" },
        { .name = "dirty_worker_init", .arity = 1, .inert = "gcorn has no dirty workers" },
        { .name = "dirty_worker_exit", .arity = 2, .inert = "gcorn has no dirty workers" },
};

bool hooks_per_request;

static PyObject *ns;                    /* the namespace of hooks_source */
static PyObject *active;                /* name -> callable: the hooks in use; NULL: none */
static PyObject *staged;                /* the load under way */
static PyObject *server;
static PyObject *pending_worker;        /* between pre_fork and fork() */
static PyObject *self_worker;           /* in a worker: its own object */
static bool cfg_stale = true;
static bool started;                    /* a worker booted: the start is over */

/* _log(priority, text): one entry in the error log. */
static PyObject *hooks_log(PyObject *self, PyObject *args) {
        const char *text;
        Py_ssize_t len;
        int priority;

        (void) self;
        if (!PyArg_ParseTuple(args, "is#:_log", &priority, &text, &len))
                return NULL;
        if (priority < LOG_EMERG || priority > LOG_DEBUG)
                priority = LOG_ERR;
        log_message(priority, text, (size_t) len);
        Py_RETURN_NONE;
}

static PyMethodDef log_def = { "_log", hooks_log, METH_VARARGS, NULL };

/* The namespace, compiled once. Borrowed, or NULL with an exception set. GIL held. */
static PyObject *ns_get(void) {
        PyObject *code = NULL, *globals = NULL, *result = NULL, *log = NULL;

        if (ns)
                return ns;
        code = Py_CompileString(hooks_source, HOOKS_FILENAME, Py_file_input);
        if (!code)
                goto finish;
        globals = python_new_globals();
        if (!globals || PyDict_SetItemString(globals, "__name__", Py_None) < 0)
                goto finish;
        log = PyCFunction_New(&log_def, NULL);
        if (!log || PyDict_SetItemString(globals, "_log", log) < 0)
                goto finish;
        result = PyEval_EvalCode(code, globals, globals);
        if (!result)
                goto finish;
        ns = TAKE_PTR(globals);
finish:
        Py_XDECREF(result);
        Py_XDECREF(log);
        Py_XDECREF(globals);
        Py_XDECREF(code);
        return ns;
}

/* ns[name](args...): a new reference or NULL with an exception set. GIL held. */
static PyObject *ns_call(const char *name, const char *format, ...) {
        PyObject *f, *args, *ret;
        va_list ap;

        if (!ns_get())
                return NULL;
        f = PyDict_GetItemString(ns, name); /* borrowed */
        if (!f) {
                PyErr_Format(PyExc_KeyError, "%s", name);
                return NULL;
        }
        va_start(ap, format);
        args = Py_VaBuildValue(format, ap);
        va_end(ap);
        if (!args)
                return NULL;
        if (!PyTuple_Check(args))
                Py_SETREF(args, PyTuple_Pack(1, args));
        ret = args ? PyObject_Call(f, args, NULL) : NULL;
        Py_XDECREF(args);
        return ret;
}

/* The arity of hook name, or -1 when it is not a hook. */
static int hook_arity(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(hook_table); i++)
                if (strcmp(hook_table[i].name, name) == 0)
                        return hook_table[i].arity;
        return -1;
}

int hooks_config_value(const char *name, void *value, char **ret_error) {
        PyObject *checked = NULL, *type = NULL, *exc = NULL, *tb = NULL, *msg = NULL;
        int arity = hook_arity(name), r;
        const char *text;

        if (arity < 0)
                return 0;
        if (!staged) {
                staged = PyDict_New();
                if (!staged)
                        goto python_error;
        }
        checked = ns_call("check", "(sOi)", name, (PyObject *) value, arity);
        if (!checked && PyErr_ExceptionMatches(PyExc_TypeError)) {
                /* The user's mistake: one line, as for any other bad value. */
                PyErr_Fetch(&type, &exc, &tb);
                msg = exc ? PyObject_Str(exc) : NULL;
                text = msg ? PyUnicode_AsUTF8(msg) : NULL;
                PyErr_Clear();
                r = asprintf(ret_error, "Invalid value for %s: %s", name, text ? text : "not a callable");
                Py_XDECREF(msg);
                Py_XDECREF(tb);
                Py_XDECREF(exc);
                Py_XDECREF(type);
                if (r < 0) {
                        *ret_error = NULL;
                        return -ENOMEM;
                }
                return -EINVAL;
        }
        if (!checked || PyDict_SetItemString(staged, name, checked) < 0)
                goto python_error;
        Py_DECREF(checked);
        return 1;

python_error:
        Py_XDECREF(checked);
        python_log_exception(LOG_DEBUG, "Checking a hook failed:");
        if (asprintf(ret_error, "Invalid value for %s: it could not be checked", name) < 0)
                *ret_error = NULL;
        return -EINVAL;
}

void hooks_commit(void) {
        python_gil_acquire();
        Py_XSETREF(active, staged);
        staged = NULL;
        hooks_per_request = active && (PyDict_GetItemString(active, "pre_request") ||
                                       PyDict_GetItemString(active, "post_request"));
        cfg_stale = true;
        python_gil_release();
}

void hooks_discard(void) {
        python_gil_acquire();
        Py_CLEAR(staged);
        python_gil_release();
}

void hooks_done(void) {
        python_gil_acquire();
        Py_CLEAR(staged);
        Py_CLEAR(active);
        Py_CLEAR(pending_worker);
        Py_CLEAR(self_worker);
        Py_CLEAR(server);
        Py_CLEAR(ns);
        hooks_per_request = false;
        python_gil_release();
}

/* The hook, borrowed, or NULL when it is not set. GIL held. */
static PyObject *hook_get(const char *name) {
        return active ? PyDict_GetItemString(active, name) : NULL;
}

/* Calls the hook (when set) with args (stolen), logging what it raised. Returns 0, or
 * -EINVAL when it raised. GIL held. */
static int hook_call(const char *name, PyObject *args) {
        PyObject *f = hook_get(name), *ret;
        char title[64];

        if (!f || !args) {
                Py_XDECREF(args);
                if (!f)
                        return 0;
                goto error;
        }
        ret = PyObject_Call(f, args, NULL);
        Py_DECREF(args);
        if (ret) {
                Py_DECREF(ret);
                return 0;
        }
error:
        snprintf(title, sizeof(title), "Exception in %s hook", name);
        python_log_exception(LOG_ERR, title);
        return -EINVAL;
}

static int cfg_add(const char *name, SettingValueKind kind, const void *value, void *userdata) {
        PyObject *dict = userdata, *v = NULL;
        int r;

        switch (kind) {
        case SETTING_VALUE_STRING:
                v = value ? PyUnicode_DecodeFSDefault(value) : Py_NewRef(Py_None);
                break;
        case SETTING_VALUE_INT:
                v = PyLong_FromLongLong(*(const int64_t *) value);
                break;
        case SETTING_VALUE_BOOL:
                v = PyBool_FromLong(*(const bool *) value);
                break;
        case SETTING_VALUE_LIST:
                v = PyList_New(0);
                for (char *const *i = value; v && i && *i; i++) {
                        PyObject *item = PyUnicode_DecodeFSDefault(*i);

                        if (!item || PyList_Append(v, item) < 0)
                                Py_CLEAR(v);
                        Py_XDECREF(item);
                }
                break;
        }
        if (!v)
                return -ENOMEM;
        r = PyDict_SetItemString(dict, name, v) < 0 ? -ENOMEM : 0;
        Py_DECREF(v);
        return r;
}

/* The server object with cfg from s and num_workers n: borrowed, or NULL with an exception
 * set. GIL held. */
static PyObject *server_get(const Settings *s, int n) {
        PyObject *values = NULL, *names = NULL, *cfg = NULL, *num = NULL;

        if (!server) {
                server = ns_call("Server", "()");
                if (!server)
                        return NULL;
        }
        if (s && cfg_stale) {
                values = PyDict_New();
                if (!values || settings_foreach(s, cfg_add, values) < 0)
                        goto finish;
                names = PyList_New(0);
                for (size_t i = 0; names && i < ELEMENTSOF(hook_table); i++) {
                        PyObject *name = PyUnicode_FromString(hook_table[i].name);

                        if (!name || PyList_Append(names, name) < 0)
                                Py_CLEAR(names);
                        Py_XDECREF(name);
                }
                if (!names)
                        goto finish;
                cfg = ns_call("make_config", "(OOO)", values, active, names);
                if (!cfg || PyObject_SetAttrString(server, "cfg", cfg) < 0)
                        goto finish;
                cfg_stale = false;
        }
        if (n >= 0) {
                num = PyLong_FromLong(n);
                if (!num || PyObject_SetAttrString(server, "num_workers", num) < 0)
                        goto finish;
        }
finish:
        Py_XDECREF(num);
        Py_XDECREF(cfg);
        Py_XDECREF(names);
        Py_XDECREF(values);
        return PyErr_Occurred() ? NULL : server;
}

/* A master-side hook: hook(server, ...more) where more is a Py_BuildValue format for the
 * arguments after server ("" for none). Returns 0 or -EINVAL when it raised. */
static int master_call(const Settings *s, int n, const char *name, const char *more, ...) {
        PyObject *srv, *rest = NULL, *args = NULL;
        char format[32];
        va_list ap;
        int r = 0;

        if (!active)
                return 0;
        python_gil_acquire();
        if (!hook_get(name))
                goto finish;
        srv = server_get(s, n);
        if (!srv) {
                r = hook_call(name, NULL);
                goto finish;
        }
        snprintf(format, sizeof(format), "(%s)", more);
        va_start(ap, more);
        rest = Py_VaBuildValue(format, ap);
        va_end(ap);
        if (rest) {
                PyObject *first = PyTuple_Pack(1, srv);

                args = first ? PySequence_Concat(first, rest) : NULL;
                Py_XDECREF(first);
        }
        r = hook_call(name, args);
finish:
        Py_XDECREF(rest);
        python_gil_release();
        return r;
}

/* The line that stops the start, in the log and in error. */
static int start_failed(const char *hook, char *error, size_t size) {
        snprintf(error, size, "The %s hook raised an exception; not starting.", hook);
        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "%s", error);
}

static void report_inert(void) {
        if (!active)
                return;
        python_gil_acquire();
        for (size_t i = 0; i < ELEMENTSOF(hook_table); i++)
                if (hook_table[i].inert && hook_get(hook_table[i].name))
                        log_warning("The %s hook has no effect: %s", hook_table[i].name, hook_table[i].inert);
        python_gil_release();
}

int hooks_on_starting(const Settings *s, int n) {
        (void) master_call(s, n, "nworkers_changed", "iO", n, Py_None);
        report_inert();
        char error[64];

        if (master_call(s, n, "on_starting", "") < 0)
                return start_failed("on_starting", error, sizeof(error));
        return 0;
}

int hooks_when_ready(const Settings *s, int n) {
        char error[64];

        if (master_call(s, n, "when_ready", "") < 0)
                return start_failed("when_ready", error, sizeof(error));
        return 0;
}

void hooks_on_reload(const Settings *s, int n) {
        report_inert();
        (void) master_call(s, n, "on_reload", "");
}

void hooks_nworkers_changed(const Settings *s, int new_value, int old_value) {
        (void) master_call(s, new_value, "nworkers_changed", "ii", new_value, old_value);
}

/* In the master, just before a binary upgrade executes the new image. */
void hooks_pre_exec(const Settings *s, int n) {
        (void) master_call(s, n, "pre_exec", "");
}

void hooks_on_exit(const Settings *s, int n) {
        (void) master_call(s, n, "on_exit", "");
}

/* Whether any hook needs a worker object. GIL held. */
static bool needs_worker(void) {
        for (size_t i = 0; i < ELEMENTSOF(hook_table); i++)
                if (hook_table[i].worker && hook_get(hook_table[i].name))
                        return true;
        return false;
}

void hooks_pre_fork(const Settings *s, int n) {
        PyObject *srv;

        if (!active)
                return;
        python_gil_acquire();
        Py_CLEAR(pending_worker);
        if (!needs_worker())
                goto finish;
        srv = server_get(s, n);
        pending_worker = srv ? ns_call("Worker", "(O)", srv) : NULL;
        if (!pending_worker) {
                python_log_exception(LOG_ERR, "Failed to make the worker object for the hooks");
                goto finish;
        }
        (void) hook_call("pre_fork", PyTuple_Pack(2, srv, pending_worker));
finish:
        python_gil_release();
}

void hooks_forked(pid_t pid) {
        PyObject *workers = NULL, *key = NULL;

        if (!pending_worker)
                return;
        python_gil_acquire();
        key = PyLong_FromLong(pid);
        workers = server ? PyObject_GetAttrString(server, "WORKERS") : NULL;
        if (!key || !workers || PyObject_SetAttrString(pending_worker, "pid", key) < 0 ||
            PyObject_SetItem(workers, key, pending_worker) < 0)
                python_log_exception(LOG_ERR, "Failed to file the worker object for the hooks");
        Py_CLEAR(pending_worker);
        Py_XDECREF(workers);
        Py_XDECREF(key);
        python_gil_release();
}

void hooks_child_exit(const Settings *s, int n, pid_t pid) {
        PyObject *workers = NULL, *key = NULL, *worker = NULL, *srv;

        if (!active || !server)
                return;
        python_gil_acquire();
        key = PyLong_FromLong(pid);
        workers = PyObject_GetAttrString(server, "WORKERS");
        worker = key && workers ? PyObject_CallMethod(workers, "pop", "OO", key, Py_None) : NULL;
        srv = worker ? server_get(s, n) : NULL;
        if (!srv)
                python_log_exception(LOG_ERR, "Failed to find the worker object for the hooks");
        else if (worker != Py_None)
                (void) hook_call("child_exit", PyTuple_Pack(2, srv, worker));
        Py_XDECREF(worker);
        Py_XDECREF(workers);
        Py_XDECREF(key);
        python_gil_release();
}

void hooks_booted(void) {
        started = true;
}

/* A worker-side hook: hook(worker) or hook(server, worker). GIL held. */
static int worker_call(const char *name, bool with_server) {
        if (!self_worker || !hook_get(name))
                return 0;
        if (with_server)
                return hook_call(name, PyTuple_Pack(2, server, self_worker));
        return hook_call(name, PyTuple_Pack(1, self_worker));
}

int hooks_post_fork(char *error, size_t size) {
        PyObject *pid = NULL;
        int r = 0;

        if (!pending_worker)
                return 0;
        python_gil_acquire();
        self_worker = TAKE_PTR(pending_worker);
        pid = PyLong_FromLong(getpid());
        if (!pid || PyObject_SetAttrString(self_worker, "pid", pid) < 0)
                python_log_exception(LOG_ERR, "Failed to set up the worker object for the hooks");
        if (worker_call("post_fork", true) < 0 && !started)
                r = start_failed("post_fork", error, size);
        Py_XDECREF(pid);
        python_gil_release();
        return r;
}

/* Calls the handler in a, as the kernel would have. */
static void chain(const struct sigaction *a, int sig, siginfo_t *si, void *ctx) {
        if (a->sa_flags & SA_SIGINFO)
                a->sa_sigaction(sig, si, ctx);
        else if (a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN)
                a->sa_handler(sig);
        else if (a->sa_handler == SIG_DFL) {
                (void) signal(sig, SIG_DFL);
                (void) raise(sig);
        }
}

/* SIGABRT from another process (the master's, to a worker that timed out) while worker_abort
 * is set: the handler only asks Python to run abort_handler() in the main thread at its
 * next check, which is async-signal-safe; the rest goes on to the handler found before. */
static struct sigaction abort_chained;
static siginfo_t abort_info;
static volatile sig_atomic_t abort_pending;

static void on_abort(int sig, siginfo_t *si, void *ctx) {
        if (si->si_code <= 0 && si->si_pid != getpid() && !abort_pending) {
                abort_pending = 1;
                abort_info = *si;
                (void) PyErr_SetInterruptEx(SIGABRT);
                return;
        }
        chain(&abort_chained, sig, si, ctx);
}

/* Python's handler for SIGABRT: the hook, then what SIGABRT does without it (the stacks to
 * the log, death by the signal). A worker stuck in C never gets here: the master's SIGKILL
 * ends it. Called by Python with the GIL. */
static PyObject *abort_handler(PyObject *self, PyObject *args) {
        (void) self;
        (void) args;
        if (self_worker) {
                if (PyObject_SetAttrString(self_worker, "alive", Py_False) < 0 ||
                    PyObject_SetAttrString(self_worker, "aborted", Py_True) < 0)
                        PyErr_Clear();
                (void) worker_call("worker_abort", false);
                /* Gunicorn's worker leaves through sys.exit() here, which runs worker_exit. */
                (void) worker_call("worker_exit", true);
        }
        (void) sigaction(SIGABRT, &abort_chained, NULL);
        on_abort(SIGABRT, &abort_info, NULL);
        (void) signal(SIGABRT, SIG_DFL);
        (void) raise(SIGABRT);
        Py_RETURN_NONE;
}

/* SIGINT and SIGQUIT while worker_int is set: the worker's own handler still tells its loop
 * to quit, and Python runs int_handler() at its next check, so that the hook runs at once
 * (Gunicorn's moment) even inside a long request: its classic use is to dump the stacks of
 * a worker that hangs. The loop runs it when no Python runs before (an idle worker). */
static struct sigaction int_chained, quit_chained;
static volatile sig_atomic_t int_pending;
static bool int_done;

static void on_int(int sig, siginfo_t *si, void *ctx) {
        int saved = errno;

        chain(sig == SIGQUIT ? &quit_chained : &int_chained, sig, si, ctx);
        if (!int_pending) {
                int_pending = 1;
                (void) PyErr_SetInterruptEx(sig);
        }
        errno = saved;
}

/* GIL held. */
static void run_worker_int(void) {
        if (int_done || !self_worker)
                return;
        int_done = true;
        if (PyObject_SetAttrString(self_worker, "alive", Py_False) < 0)
                PyErr_Clear();
        (void) worker_call("worker_int", false);
}

static PyObject *int_handler(PyObject *self, PyObject *args) {
        (void) self;
        (void) args;
        run_worker_int();
        Py_RETURN_NONE;
}

static PyMethodDef abort_def = { "_abort_handler", abort_handler, METH_VARARGS, NULL };
static PyMethodDef int_def = { "_int_handler", int_handler, METH_VARARGS, NULL };

/* Puts def in Python's signal table for sig, where PyErr_SetInterruptEx() finds it, and
 * handler in the kernel's, after saving the one there in *chained. GIL held. */
static int handler_install(int sig, PyMethodDef *def, void (*handler)(int, siginfo_t *, void *), int flags,
                           struct sigaction *chained) {
        struct sigaction sa = { .sa_sigaction = handler, .sa_flags = SA_SIGINFO | flags };
        PyObject *module = NULL, *f = NULL, *ret = NULL;
        int r = 0;

        if (sigaction(sig, NULL, chained) < 0)
                return log_error_errno(errno, "Failed to read the handler of signal %d: %m", sig);
        module = PyImport_ImportModule("signal");
        f = module ? PyCFunction_New(def, NULL) : NULL;
        ret = f ? PyObject_CallMethod(module, "signal", "iO", sig, f) : NULL;
        if (!ret) {
                /* The signal keeps the handler it had: gcorn's behaviour without the hook. */
                python_log_exception(LOG_ERR, "Failed to set up the hook's signal handler");
                (void) sigaction(sig, chained, NULL);
                r = -EINVAL;
                goto finish;
        }
        /* The C handler Python put in place gives way to ours. */
        sigemptyset(&sa.sa_mask);
        if (sigaction(sig, &sa, NULL) < 0)
                r = log_error_errno(errno, "Failed to set the handler of signal %d: %m", sig);
finish:
        Py_XDECREF(ret);
        Py_XDECREF(f);
        Py_XDECREF(module);
        return r;
}

int hooks_post_worker_init(char *error, size_t size) {
        int r = 0;

        if (!self_worker)
                return 0;
        python_gil_acquire();
        if (hook_get("worker_abort"))
                (void) handler_install(SIGABRT, &abort_def, on_abort, SA_NODEFER, &abort_chained);
        if (hook_get("worker_int")) {
                (void) handler_install(SIGINT, &int_def, on_int, SA_RESTART, &int_chained);
                (void) handler_install(SIGQUIT, &int_def, on_int, SA_RESTART, &quit_chained);
        }
        if (worker_call("post_worker_init", false) < 0 && !started)
                r = start_failed("post_worker_init", error, size);
        if (PyObject_SetAttrString(self_worker, "booted", Py_True) < 0)
                PyErr_Clear();
        python_gil_release();
        return r;
}

void hooks_worker_int(void) {
        if (!self_worker)
                return;
        python_gil_acquire();
        run_worker_int();
        python_gil_release();
}

void hooks_worker_exit(void) {
        if (self_worker) {
                python_gil_acquire();
                if (PyObject_SetAttrString(self_worker, "alive", Py_False) < 0)
                        PyErr_Clear();
                (void) worker_call("worker_exit", true);
                python_gil_release();
        }
        if (active)
                hooks_done();
}

static const char *strempty(const char *s) {
        return s ? s : "";
}

/* A header field's bytes as Gunicorn's request has them: latin-1 text. */
static PyObject *latin1(Slice s) {
        return PyUnicode_DecodeLatin1(s.p, (Py_ssize_t) s.len, "replace");
}

int hooks_pre_request(const Request *r, const ConnInfo *info, void **ret_req) {
        PyObject *headers = NULL, *peer = NULL, *req = NULL, *name = NULL, *upper = NULL, *value = NULL;
        Slice fragment = {}, path = r->path, query = r->query;
        const char *hash;

        headers = PyList_New((Py_ssize_t) r->n_headers);
        if (!headers)
                goto finish;
        for (size_t i = 0; i < r->n_headers; i++) {
                name = latin1(r->headers[i].name);
                upper = name ? PyObject_CallMethod(name, "upper", NULL) : NULL;
                value = upper ? latin1(r->headers[i].value) : NULL;
                if (!value)
                        goto finish;
                PyList_SET_ITEM(headers, (Py_ssize_t) i, PyTuple_Pack(2, upper, value));
                if (!PyList_GET_ITEM(headers, (Py_ssize_t) i))
                        goto finish;
                Py_CLEAR(name);
                Py_CLEAR(upper);
                Py_CLEAR(value);
        }
        hash = memchr(r->target.p, '#', r->target.len);
        if (hash)
                fragment = (Slice) { hash + 1, r->target.len - (size_t) (hash + 1 - r->target.p) };
        if (info->is_unix)
                peer = PyUnicode_FromString("");
        else
                peer = Py_BuildValue("(si)", info->remote_addr, atoi(info->remote_port));
        if (!peer)
                goto finish;
        /* "s#" makes None of a NULL pointer: an empty part is "" in Gunicorn. */
        req = ns_call("Request", "(s#s#s#s#s#(ii)OO)", strempty(r->method.p), (Py_ssize_t) r->method.len,
                      strempty(r->target.p), (Py_ssize_t) r->target.len, strempty(path.p), (Py_ssize_t) path.len,
                      strempty(query.p), (Py_ssize_t) query.len, strempty(fragment.p), (Py_ssize_t) fragment.len,
                      r->http_major, r->http_minor, headers, peer);
        if (!req)
                goto finish;
        if (self_worker && hook_get("pre_request")) {
                PyObject *f = hook_get("pre_request"), *ret = PyObject_CallFunctionObjArgs(f, self_worker, req, NULL);

                if (!ret)
                        goto finish;
                Py_DECREF(ret);
        }
        *ret_req = TAKE_PTR(req);
finish:
        Py_XDECREF(req);
        Py_XDECREF(peer);
        Py_XDECREF(value);
        Py_XDECREF(upper);
        Py_XDECREF(name);
        Py_XDECREF(headers);
        return PyErr_Occurred() ? -EINVAL : 0;
}

void hooks_post_request(void *req, void *environ, const char *status, size_t status_len, int status_code,
                        const HttpHeader *headers, size_t n_headers, uint64_t sent) {
        PyObject *list = NULL, *resp = NULL, *env = NULL;

        if (!self_worker)
                goto finish;
        env = environ ? Py_NewRef((PyObject *) environ) : PyDict_New();
        list = PyList_New((Py_ssize_t) n_headers);
        for (size_t i = 0; list && i < n_headers; i++) {
                PyObject *t = Py_BuildValue("(NN)", latin1(headers[i].name), latin1(headers[i].value));

                if (!t) {
                        Py_CLEAR(list);
                        break;
                }
                PyList_SET_ITEM(list, (Py_ssize_t) i, t);
        }
        if (list && env) {
                if (status)
                        resp = ns_call("Response", "(s#iOK)", status, (Py_ssize_t) status_len, status_code, list,
                                       (unsigned long long) sent);
                else
                        resp = ns_call("Response", "(OiOK)", Py_None, status_code, list, (unsigned long long) sent);
        }
        (void) hook_call("post_request", resp ? PyTuple_Pack(4, self_worker, (PyObject *) req, env, resp) : NULL);
finish:
        Py_XDECREF(resp);
        Py_XDECREF(list);
        Py_XDECREF(env);
        Py_DECREF((PyObject *) req);
}

void hooks_print_markdown(FILE *f) {
        for (size_t i = 0; i < ELEMENTSOF(hook_table); i++)
                fprintf(f, "| `%s` | config file |  | %s | Server hook: %s. |\n", hook_table[i].name,
                        hook_table[i].inert ? "no effect" : "implemented",
                        hook_table[i].inert ? hook_table[i].inert : "called as in Gunicorn");
}

/* In the shape of the man page's other settings. */
void hooks_print_man(FILE *f) {
        fputs(".SS \"Server Hooks\"\n", f);
        for (size_t i = 0; i < ELEMENTSOF(hook_table); i++)
                fprintf(f, ".TP\n(config file only)\nServer hook: %s.\n.br\nSetting: \\fB%s\\fR. Status: %s.\n",
                        hook_table[i].inert ? hook_table[i].inert : "called as in Gunicorn", hook_table[i].name,
                        hook_table[i].inert ? "no effect" : "implemented");
}

char **hooks_config_strv(void) {
        size_t n = ELEMENTSOF(hook_table);
        _cleanup_strv_free_ char **l = calloc(2 * n + 1, sizeof(char *));

        if (!l)
                return NULL;
        python_gil_acquire();
        for (size_t i = 0; i < n; i++) {
                PyObject *f = hook_get(hook_table[i].name), *repr = f ? PyObject_Repr(f) : NULL;
                const char *text = repr ? PyUnicode_AsUTF8(repr) : NULL;

                PyErr_Clear();
                l[2 * i] = strdup(hook_table[i].name);
                l[2 * i + 1] = strdup(text ? text : "None");
                Py_XDECREF(repr);
                if (!l[2 * i] || !l[2 * i + 1]) {
                        python_gil_release();
                        return NULL;
                }
        }
        python_gil_release();
        return TAKE_PTR(l);
}
