/* The embedded interpreter. Each thread that runs Python (the main one, and a gthread worker's
 * app threads) keeps its thread state in its own main_tstate whenever it does not hold the
 * GIL. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "gcorn/log.h"
#include "gcorn/macro.h"
#include "gcorn/python.h"

#if PY_VERSION_HEX < 0x030B0000
#error "gcorn needs Python 3.11 or newer"
#endif

static _thread_local_ PyThreadState *main_tstate;

/* The helper namespace: sys.path set-up and Gunicorn 23's util.import_app(), kept in Python
 * because it is mostly calls into ast and importlib. load() never raises: it returns
 * (app, None, None, False) or (None, message, traceback or None, serious). */
static PyObject *loader;

#define LOADER_FILENAME "<gcorn loader>"

static const char loader_source[] =
        "import ast, os, sys, traceback\n"
        "\n"
        "class AppImportError(Exception):\n"
        "    pass\n"
        "\n"
        "def setup_paths(cwd, pythonpath, raw_env):\n"
        "    if cwd not in sys.path:\n"
        "        sys.path.insert(0, cwd)\n"
        "    for path in pythonpath:\n"
        "        path = os.path.abspath(path)\n"
        "        if path not in sys.path:\n"
        "            sys.path.insert(0, path)\n"
        "    for entry in raw_env:\n"
        "        key, value = entry.split('=', 1)\n"
        "        os.environ[key] = value\n"
        "\n"
        "def _called_with_wrong_args(f):\n"
        "    tb = sys.exc_info()[2]\n"
        "    code = getattr(f, '__code__', None)\n"
        "    try:\n"
        "        while tb is not None:\n"
        "            if tb.tb_frame.f_code is code:\n"
        "                return False\n"
        "            tb = tb.tb_next\n"
        "        return True\n"
        "    finally:\n"
        "        del tb\n"
        "\n"
        "def _dotted(node):\n"
        "    names = []\n"
        "    while isinstance(node, ast.Attribute):\n"
        "        names.append(node.attr)\n"
        "        node = node.value\n"
        "    if not isinstance(node, ast.Name):\n"
        "        return None\n"
        "    names.append(node.id)\n"
        "    return names[::-1]\n"
        "\n"
        "def import_app(spec):\n"
        "    module, colon, obj = spec.partition(':')\n"
        "    if not colon:\n"
        "        obj = 'application'\n"
        "    try:\n"
        "        __import__(module)\n"
        "        mod = sys.modules[module]\n"
        "    except ImportError:\n"
        "        if module.endswith('.py') and os.path.exists(module):\n"
        "            msg = \"Failed to find application, did you mean '%s:%s'?\"\n"
        "            raise AppImportError(msg % (module.rsplit('.', 1)[0], obj))\n"
        "        raise\n"
        "    try:\n"
        "        expression = ast.parse(obj, mode='eval').body\n"
        "    except SyntaxError:\n"
        "        raise AppImportError(\n"
        "            f'Failed to parse {obj!r} as an attribute name or function call.')\n"
        "    args = kwargs = None\n"
        "    if isinstance(expression, ast.Call):\n"
        "        names = _dotted(expression.func)\n"
        "        if names is None:\n"
        "            raise AppImportError(f'Function reference must be a simple name: {obj!r}')\n"
        "        try:\n"
        "            args = [ast.literal_eval(arg) for arg in expression.args]\n"
        "            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in expression.keywords}\n"
        "        except ValueError:\n"
        "            raise AppImportError(f'Failed to parse arguments as literal values: {obj!r}')\n"
        "    else:\n"
        "        names = _dotted(expression)\n"
        "        if names is None:\n"
        "            raise AppImportError(\n"
        "                f'Failed to parse {obj!r} as an attribute name or function call.')\n"
        "    app = mod\n"
        "    for i, name in enumerate(names):\n"
        "        try:\n"
        "            app = getattr(app, name)\n"
        "        except AttributeError:\n"
        "            path = '.'.join(names[:i + 1])\n"
        "            raise AppImportError(f'Failed to find attribute {path!r} in {module!r}.')\n"
        "    if args is not None:\n"
        "        try:\n"
        "            app = app(*args, **kwargs)\n"
        "        except TypeError as e:\n"
        "            if _called_with_wrong_args(app):\n"
        "                raise AppImportError(\n"
        "                    ''.join(traceback.format_exception_only(TypeError, e)).strip())\n"
        "            raise\n"
        "    if app is None:\n"
        "        raise AppImportError(f'Failed to find application object: {obj!r}')\n"
        "    if not callable(app):\n"
        "        raise AppImportError('Application object must be callable.')\n"
        "    return app\n"
        "\n"
        "def _format(e):\n"
        "    tb = e.__traceback__\n"
        "    while tb is not None and tb.tb_frame.f_code.co_filename == '" LOADER_FILENAME "':\n"
        "        tb = tb.tb_next\n"
        "    return ''.join(traceback.format_exception(type(e), e, tb)).rstrip('\\n')\n"
        "\n"
        "def load(spec):\n"
        "    try:\n"
        "        return (import_app(spec), None, None, False)\n"
        "    except AppImportError as e:\n"
        "        return (None, str(e), _format(e), False)\n"
        "    except ImportError as e:\n"
        "        module = spec.partition(':')[0]\n"
        "        missing = isinstance(e, ModuleNotFoundError) and e.name is not None and \\\n"
        "            (module == e.name or module.startswith(e.name + '.'))\n"
        "        return (None, str(e), _format(e), not missing)\n"
        "    except BaseException as e:\n"
        "        return (None, f'{type(e).__name__}: {e}', _format(e), True)\n";

/* Importing the signal module installs Python's SIGINT handler whenever SIGINT is at its
 * default, install_signal_handlers or not. Import it now, while nothing else owns SIGINT,
 * and put the disposition back, so that an application importing it later changes nothing.
 * GIL held. */
static int signal_module_settle(const struct sigaction *old) {
        PyObject *module = NULL, *dfl = NULL, *result = NULL;
        int r = 0;

        module = PyImport_ImportModule("signal");
        if (!module)
                goto error;
        if (old->sa_handler == SIG_DFL) {
                /* Through signal.signal() so that signal.getsignal() tells the truth too. */
                dfl = PyObject_GetAttrString(module, "SIG_DFL");
                if (!dfl)
                        goto error;
                result = PyObject_CallMethod(module, "signal", "iO", SIGINT, dfl);
                if (!result)
                        goto error;
        }
        if (sigaction(SIGINT, old, NULL) < 0)
                r = log_error_errno(-errno, "Failed to restore the SIGINT disposition: %m");
        goto finish;

error:
        python_log_exception(LOG_ERR, "Failed to import the signal module:");
        r = -EINVAL;
finish:
        Py_XDECREF(result);
        Py_XDECREF(dfl);
        Py_XDECREF(module);
        return r;
}

int python_init(void) {
        char *argv[] = { (char *) "gcorn", NULL };
        _cleanup_free_ char *venv_python = NULL;
        const char *venv = getenv("VIRTUAL_ENV");
        struct sigaction old_sigint;
        PyConfig config;
        PyStatus st;
        int r;

        if (sigaction(SIGINT, NULL, &old_sigint) < 0)
                return log_error_errno(-errno, "Failed to read the SIGINT disposition: %m");

        /* The Python config (not the isolated one) so PYTHONPATH and friends work as they do
         * for gunicorn run by `python`. */
        PyConfig_InitPythonConfig(&config);
        config.install_signal_handlers = 0;     /* the arbiter and workers own every signal */
        config.parse_argv = 0;                  /* argv belongs to gcorn */

        if (venv && asprintf(&venv_python, "%s/bin/python", venv) < 0)
                venv_python = NULL;

        st = PyConfig_SetBytesArgv(&config, 1, argv);
        /* A virtualenv is found through pyvenv.cfg beside the interpreter named here, as
         * running its bin/python would. */
        if (!PyStatus_Exception(st) && venv_python && access(venv_python, X_OK) == 0)
                st = PyConfig_SetBytesString(&config, &config.program_name, venv_python);
        if (!PyStatus_Exception(st))
                st = Py_InitializeFromConfig(&config);
        PyConfig_Clear(&config);
        if (PyStatus_Exception(st))
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Failed to initialize Python: %s",
                                       strna(st.err_msg));

        r = signal_module_settle(&old_sigint);
        main_tstate = PyEval_SaveThread();
        return r;
}

/* Nesting depth: the worker holds the GIL across a batch of ready events, and the calls
 * inside that also take it only count. */
static _thread_local_ unsigned gil_depth;

void python_gil_acquire(void) {
        if (gil_depth++ == 0)
                PyEval_RestoreThread(main_tstate);
}

void python_gil_release(void) {
        if (--gil_depth == 0)
                main_tstate = PyEval_SaveThread();
}

void python_thread_attach(void) {
        /* PyGILState makes the thread state the thread's own for the API (PyGILState_Check(),
         * faulthandler, extensions' callbacks) and for threading.local. */
        (void) PyGILState_Ensure();
        gil_depth = 0;
        main_tstate = PyEval_SaveThread();
}

void python_thread_detach(void) {
        PyEval_RestoreThread(main_tstate);
        main_tstate = NULL;
        PyGILState_Release(PyGILState_UNLOCKED);
}

unsigned long python_thread_ident(void) {
        return PyThread_get_thread_ident();
}

int python_check_signals(void) {
        /* PyGILState, not python_gil_acquire(): the caller's thread state was put aside by
         * Py_BEGIN_ALLOW_THREADS, not by python_gil_release(). */
        PyGILState_STATE g = PyGILState_Ensure();
        int r = PyErr_CheckSignals() < 0 ? -EINTR : 0;

        PyGILState_Release(g);
        return r;
}

PyObject *python_new_globals(void) {
        PyObject *globals = PyDict_New();

        if (globals && PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) < 0)
                Py_CLEAR(globals);
        return globals;
}

void python_log_exception(int level, const char *title) {
        _cleanup_free_ char *tb = python_format_exception();

        if (level == LOG_ERR)
                log_exception(title, tb ? tb : "(no traceback)");
        else
                log_block(level, title, tb ? tb : "(no traceback)");
}

char *python_format_exception(void) {
        PyObject *type = NULL, *value = NULL, *tb = NULL, *module = NULL, *lines = NULL;
        PyObject *empty = NULL, *joined = NULL, *bytes = NULL;
        char *ret = NULL;

#if PY_VERSION_HEX >= 0x030C0000
        value = PyErr_GetRaisedException();
        if (!value)
                return NULL;
        type = Py_NewRef((PyObject *) Py_TYPE(value));
        tb = PyException_GetTraceback(value);
#else
        PyErr_Fetch(&type, &value, &tb);
        if (!type)
                return NULL;
        PyErr_NormalizeException(&type, &value, &tb);
        if (tb && value)
                PyException_SetTraceback(value, tb);
#endif

        module = PyImport_ImportModule("traceback");
        if (!module)
                goto finish;
        lines = PyObject_CallMethod(module, "format_exception", "OOO", type, value ? value : Py_None,
                                    tb ? tb : Py_None);
        if (!lines)
                goto finish;
        empty = PyUnicode_FromString("");
        if (!empty)
                goto finish;
        joined = PyUnicode_Join(empty, lines);
        if (!joined)
                goto finish;
        bytes = PyUnicode_AsEncodedString(joined, "utf-8", "replace");
        if (!bytes)
                goto finish;
        ret = strdup(PyBytes_AS_STRING(bytes));
        if (ret) {
                size_t n = strlen(ret);

                while (n > 0 && ret[n - 1] == '\n')
                        ret[--n] = '\0';
        }

finish:
        /* A failure to format is not worth a second report: the caller only wanted text. */
        PyErr_Clear();
        Py_XDECREF(bytes);
        Py_XDECREF(joined);
        Py_XDECREF(empty);
        Py_XDECREF(lines);
        Py_XDECREF(module);
        Py_XDECREF(tb);
        Py_XDECREF(value);
        Py_XDECREF(type);
        return ret;
}

/* Compiles the helper namespace once. GIL held. Returns a borrowed reference or NULL with
 * a Python exception set. */
static PyObject *loader_get(void) {
        PyObject *code = NULL, *globals = NULL, *result = NULL;

        if (loader)
                return loader;

        code = Py_CompileString(loader_source, LOADER_FILENAME, Py_file_input);
        if (!code)
                goto error;
        globals = python_new_globals();
        if (!globals)
                goto error;
        if (PyDict_SetItemString(globals, "__name__", Py_None) < 0)
                goto error;
        result = PyEval_EvalCode(code, globals, globals);
        if (!result)
                goto error;

        Py_DECREF(result);
        Py_DECREF(code);
        loader = globals;
        return loader;

error:
        Py_XDECREF(result);
        Py_XDECREF(globals);
        Py_XDECREF(code);
        return NULL;
}

static PyObject *strv_to_pylist(char *const *v) {
        PyObject *list = PyList_New(0), *item = NULL;

        if (!list)
                return NULL;
        for (char *const *i = v; i && *i; i++) {
                item = PyUnicode_DecodeFSDefault(*i);
                if (!item || PyList_Append(list, item) < 0)
                        goto error;
                Py_CLEAR(item);
        }
        return list;

error:
        Py_XDECREF(item);
        Py_DECREF(list);
        return NULL;
}

int python_setup_paths(const Settings *s) {
        PyObject *cwd = NULL, *pythonpath = NULL, *raw_env = NULL, *result = NULL;
        PyObject *func; /* borrowed from the loader namespace */
        _cleanup_free_ char *dir = NULL;
        int r = 0;

        dir = getcwd(NULL, 0);
        if (!dir)
                return log_error_errno(-errno, "Failed to get the working directory: %m");

        python_gil_acquire();
        if (!loader_get())
                goto error;
        func = PyDict_GetItemString(loader, "setup_paths");
        if (!func)
                goto error;
        cwd = PyUnicode_DecodeFSDefault(dir);
        if (!cwd)
                goto error;
        pythonpath = strv_to_pylist(s->pythonpath);
        if (!pythonpath)
                goto error;
        raw_env = strv_to_pylist(s->raw_env);
        if (!raw_env)
                goto error;
        result = PyObject_CallFunctionObjArgs(func, cwd, pythonpath, raw_env, NULL);
        if (!result)
                goto error;
        goto finish;

error:
        python_log_exception(LOG_ERR, "Failed to set up sys.path and the environment:");
        r = -EINVAL;
finish:
        Py_XDECREF(result);
        Py_XDECREF(raw_env);
        Py_XDECREF(pythonpath);
        Py_XDECREF(cwd);
        python_gil_release();
        return r;
}

int python_load_app(const char *spec, void **ret_app, char **ret_error) {
        PyObject *result = NULL, *app, *message, *traceback, *serious; /* the last four borrowed from result */
        PyObject *func; /* borrowed from the loader namespace */
        int r = 0;

        python_gil_acquire();
        if (!loader_get())
                goto error;
        func = PyDict_GetItemString(loader, "load");
        if (!func)
                goto error;
        result = PyObject_CallFunction(func, "s", spec);
        if (!result)
                goto error;
        if (!PyArg_ParseTuple(result, "OOOO", &app, &message, &traceback, &serious))
                goto error;

        if (app != Py_None) {
                *ret_app = Py_NewRef(app);
                goto finish;
        }

        if (traceback != Py_None) {
                const char *text = PyUnicode_AsUTF8(traceback);

                if (!text)
                        goto error;
                /* Gunicorn's "Exception in worker process" (log.exception), or its AppImportError
                 * (debug). */
                if (PyObject_IsTrue(serious))
                        log_exception("Failed to load the application:", text);
                else
                        log_block(LOG_DEBUG, "Failed to load the application:", text);
        }
        {
                const char *text = PyUnicode_AsUTF8(message);

                if (!text)
                        goto error;
                *ret_error = strdup(text);
                r = *ret_error ? -EINVAL : -ENOMEM;
        }
        goto finish;

error:
        /* Only reached when the loader itself failed, not the application. */
        python_log_exception(LOG_ERR, "Failed to run the application loader:");
        *ret_error = strdup("Failed to run the application loader.");
        r = -EINVAL;
finish:
        Py_XDECREF(result);
        python_gil_release();
        return r;
}

void python_before_fork(void) {
        python_gil_acquire();
        PyOS_BeforeFork();
}

void python_after_fork_parent(void) {
        PyOS_AfterFork_Parent();
        python_gil_release();
}

void python_after_fork_child(void) {
        /* Runs os.register_at_fork() hooks (random reseeding, lock resets) and makes this
         * thread the interpreter's main thread. */
        PyOS_AfterFork_Child();
        python_gil_release();
}

int python_finalize(void) {
        int r;

        python_gil_acquire();
        Py_CLEAR(loader);
        r = Py_FinalizeEx();
        main_tstate = NULL;
        gil_depth = 0;
        return r < 0 ? -EIO : 0;
}

/* Runs a few statements with the GIL held; returns -EIO when they raised (logged). */
static int run_statements(const char *code, PyObject *locals) {
        PyObject *globals = NULL, *result = NULL;
        int r = 0;

        globals = python_new_globals();
        if (!globals)
                goto error;
        result = PyRun_String(code, Py_file_input, globals, locals ? locals : globals);
        if (!result)
                goto error;
        goto out;
error:
        python_log_exception(LOG_WARNING, "Python statements failed");
        r = -EIO;
out:
        Py_XDECREF(result);
        Py_XDECREF(globals);
        return r;
}

/* The SIGABRT handler faulthandler installed, which ours calls. */
static struct sigaction faulthandler_abort;

/* A SIGABRT from another process is the master's verdict on a hung worker (or an operator's
 * kill -ABRT): the stack goes to the log, and the worker dies of the signal without a core
 * file, one the size of the worker per timeout. Gunicorn's worker exits on it and dumps
 * nothing. abort() within the worker (a failed assertion in C) keeps its core. */
static void on_abort(int sig, siginfo_t *si, void *ctx) {
        if (si->si_code <= 0 && si->si_pid != getpid())
                (void) prctl(PR_SET_DUMPABLE, 0);
        /* faulthandler dumps the stacks, puts back the default action and raises again. */
        if (faulthandler_abort.sa_flags & SA_SIGINFO)
                faulthandler_abort.sa_sigaction(sig, si, ctx);
        else if (faulthandler_abort.sa_handler != SIG_DFL && faulthandler_abort.sa_handler != SIG_IGN)
                faulthandler_abort.sa_handler(sig);
        else {
                (void) signal(sig, SIG_DFL);
                (void) raise(sig);
        }
}

int python_enable_faulthandler(int fd) {
        PyObject *locals = NULL, *v = NULL;
        int r = -ENOMEM;

        python_gil_acquire();
        locals = PyDict_New();
        v = PyLong_FromLong(fd);
        if (!locals || !v || PyDict_SetItemString(locals, "fd", v) < 0) {
                PyErr_Clear();
                goto out;
        }
        r = run_statements("import faulthandler\nfaulthandler.enable(file=fd, all_threads=True)\n", locals);
        if (r >= 0) {
                struct sigaction sa = { .sa_sigaction = on_abort, .sa_flags = SA_SIGINFO | SA_NODEFER };

                sigemptyset(&sa.sa_mask);
                if (sigaction(SIGABRT, &sa, &faulthandler_abort) < 0)
                        r = -errno;
        }
out:
        Py_XDECREF(v);
        Py_XDECREF(locals);
        python_gil_release();
        return r;
}

void python_gc_freeze(void) {
        python_gil_acquire();
        (void) run_statements("import gc\ngc.freeze()\n", NULL);
        python_gil_release();
}
