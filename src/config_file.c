/* gunicorn.conf.py: executed as Gunicorn does (a fresh namespace named "__config__"), then
 * every module-level name that is a setting is applied through settings_set(). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdio.h>
#include <string.h>

#include "gcorn/config_file.h"
#include "gcorn/hooks.h"
#include "gcorn/log.h"
#include "gcorn/logconfig.h"
#include "gcorn/macro.h"
#include "gcorn/python.h"

static int read_file(const char *path, char **ret) {
        _cleanup_free_ char *buf = NULL;
        FILE *f;
        long size;
        size_t n;
        int r = 0;

        f = fopen(path, "re");
        if (!f)
                return -errno;
        if (fseek(f, 0, SEEK_END) < 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
                r = -errno;
                goto finish;
        }
        buf = malloc((size_t) size + 1);
        if (!buf) {
                r = -ENOMEM;
                goto finish;
        }
        n = fread(buf, 1, (size_t) size, f);
        if (ferror(f)) {
                r = -EIO;
                goto finish;
        }
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
finish:
        fclose(f);
        return r;
}

/* Takes the pending exception, normalized, with its traceback attached. GIL held. */
static PyObject *exception_take(void) {
#if PY_VERSION_HEX >= 0x030C0000
        return PyErr_GetRaisedException();
#else
        PyObject *type = NULL, *value = NULL, *tb = NULL;

        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        if (tb && value)
                PyException_SetTraceback(value, tb);
        Py_XDECREF(tb);
        Py_XDECREF(type);
        return value;
#endif
}

/* Makes value (stolen) the pending exception again. */
static void exception_restore(PyObject *value) {
#if PY_VERSION_HEX >= 0x030C0000
        PyErr_SetRaisedException(value);
#else
        PyErr_Restore(Py_NewRef((PyObject *) Py_TYPE(value)), value, PyException_GetTraceback(value));
#endif
}

/* "SyntaxError: invalid syntax", and in *ret_line the line in path where it happened (0 when
 * no frame of the traceback is in the config file itself). GIL held. */
static char *describe_exception(const char *path, PyObject *value, long *ret_line) {
        PyObject *text = NULL, *lineno = NULL, *tb = NULL, *module = NULL, *frames = NULL, *bytes = NULL;
        PyObject *path_obj = NULL;
        const char *name = Py_TYPE(value)->tp_name, *dot;
        char *ret = NULL;
        long line = 0;

        dot = strrchr(name, '.');
        if (dot)
                name = dot + 1;

        if (PyObject_TypeCheck(value, (PyTypeObject *) PyExc_SyntaxError)) {
                /* str(SyntaxError) repeats the file name and line; msg and lineno do not. */
                text = PyObject_GetAttrString(value, "msg");
                if (!text)
                        goto error;
                lineno = PyObject_GetAttrString(value, "lineno");
                if (!lineno)
                        goto error;
                if (PyLong_Check(lineno))
                        line = PyLong_AsLong(lineno);
        } else {
                Py_ssize_t n;

                text = PyObject_Str(value);
                if (!text)
                        goto error;
                tb = PyException_GetTraceback(value);
                module = PyImport_ImportModule("traceback");
                if (!module)
                        goto error;
                frames = PyObject_CallMethod(module, "extract_tb", "O", tb ? tb : Py_None);
                if (!frames)
                        goto error;
                path_obj = PyUnicode_DecodeFSDefault(path);
                if (!path_obj)
                        goto error;
                n = PyList_Size(frames);
                if (n < 0)
                        goto error;
                /* The innermost frame in the config file: a failing import points at the
                 * import line, not into the imported module. */
                for (Py_ssize_t i = n - 1; i >= 0 && line == 0; i--) {
                        PyObject *frame = PyList_GET_ITEM(frames, i); /* borrowed */
                        PyObject *filename = NULL, *fl = NULL;

                        filename = PyObject_GetAttrString(frame, "filename");
                        fl = filename ? PyObject_GetAttrString(frame, "lineno") : NULL;
                        if (fl && PyUnicode_Check(filename) && PyLong_Check(fl) &&
                            PyUnicode_Compare(filename, path_obj) == 0)
                                line = PyLong_AsLong(fl);
                        Py_XDECREF(fl);
                        Py_XDECREF(filename);
                        if (PyErr_Occurred())
                                goto error;
                }
        }

        if (!PyUnicode_Check(text)) {
                Py_SETREF(text, PyObject_Str(text));
                if (!text)
                        goto error;
        }
        bytes = PyUnicode_AsEncodedString(text, "utf-8", "replace");
        if (!bytes)
                goto error;
        if (PyBytes_GET_SIZE(bytes) > 0) {
                if (asprintf(&ret, "%s: %s", name, PyBytes_AS_STRING(bytes)) < 0)
                        ret = NULL;
        } else
                ret = strdup(name);
        *ret_line = line;
        goto finish;

error:
        PyErr_Clear();
        ret = strdup(name);
        *ret_line = 0;
finish:
        Py_XDECREF(bytes);
        Py_XDECREF(path_obj);
        Py_XDECREF(frames);
        Py_XDECREF(module);
        Py_XDECREF(tb);
        Py_XDECREF(lineno);
        Py_XDECREF(text);
        return ret;
}

/* Turns the pending exception into the one-line error, and logs the traceback at debug. */
static int exec_error(const char *path, char **ret_error) {
        _cleanup_free_ char *what = NULL, *traceback = NULL;
        PyObject *value = exception_take();
        long line = 0;
        int r;

        if (value) {
                what = describe_exception(path, value, &line);
                exception_restore(value);
                traceback = python_format_exception();
                if (traceback)
                        log_block(LOG_DEBUG, "Config file traceback:", traceback);
        }

        if (line > 0)
                r = asprintf(ret_error, "Error in config file %s: line %ld: %s", path, line, strna(what));
        else
                r = asprintf(ret_error, "Error in config file %s: %s", path, strna(what));
        if (r < 0) {
                *ret_error = NULL;
                return -ENOMEM;
        }
        return -EINVAL;
}

static int invalid_type_error(const char *name, PyObject *value, char **ret_error) {
        PyObject *repr = PyObject_Repr(value);
        const char *text = repr ? PyUnicode_AsUTF8(repr) : NULL;
        int r;

        PyErr_Clear();
        r = asprintf(ret_error, "Invalid value for %s: %s (a %s is not allowed)", name, strna(text),
                     Py_TYPE(value)->tp_name);
        Py_XDECREF(repr);
        if (r < 0) {
                *ret_error = NULL;
                return -ENOMEM;
        }
        return -EINVAL;
}

/* An owned C string for a str (encoded as file names are, so odd bytes survive), or NULL
 * with no exception set when value is not a str. */
static char *str_to_c(PyObject *value) {
        PyObject *bytes;
        char *ret;

        if (!PyUnicode_Check(value))
                return NULL;
        bytes = PyUnicode_EncodeFSDefault(value);
        if (!bytes) {
                PyErr_Clear();
                return NULL;
        }
        ret = strdup(PyBytes_AS_STRING(bytes));
        Py_DECREF(bytes);
        return ret;
}

static int apply_list(Settings *s, const char *name, PyObject *value, char **ret_error) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(value);
        PyObject **items = PySequence_Fast_ITEMS(value); /* borrowed */
        _cleanup_strv_free_ char **l = NULL;

        l = calloc((size_t) n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (Py_ssize_t i = 0; i < n; i++) {
                l[i] = str_to_c(items[i]);
                if (!l[i])
                        return invalid_type_error(name, value, ret_error);
        }
        return settings_set_list(s, name, (const char *const *) l, ret_error);
}

/* A dict of str to str, as NAME, VALUE pairs; anything else in it is refused. */
static int apply_dict(Settings *s, const char *name, PyObject *value, char **ret_error) {
        _cleanup_strv_free_ char **l = NULL;
        PyObject *k, *v; /* borrowed */
        Py_ssize_t pos = 0, i = 0;

        l = calloc(2 * (size_t) PyDict_GET_SIZE(value) + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        while (PyDict_Next(value, &pos, &k, &v)) {
                if (i >= 2 * PyDict_GET_SIZE(value))
                        break;
                l[i] = str_to_c(k);
                l[i + 1] = l[i] ? str_to_c(v) : NULL;
                if (!l[i + 1]) {
                        if (asprintf(ret_error, "Invalid value for %s: keys and values must be str", name) < 0) {
                                *ret_error = NULL;
                                return -ENOMEM;
                        }
                        return -EINVAL;
                }
                i += 2;
        }
        return settings_set_dict(s, name, (const char *const *) l, ret_error);
}

static int add_warning(Settings *s, char *line) {
        size_t n = 0;
        char **l;

        while (s->config_warnings && s->config_warnings[n])
                n++;
        l = realloc(s->config_warnings, (n + 2) * sizeof(char *));
        if (!l) {
                free(line);
                return -ENOMEM;
        }
        l[n] = line;
        l[n + 1] = NULL;
        s->config_warnings = l;
        return 0;
}

/* A module-level name that is neither a setting nor a server hook (hooks.c took those): a
 * helper (module, class, function) or a private name is the file's own business; a near miss of a setting is a typo that would silently
 * lose the setting, so it is an error; anything else is named in one warning line. */
static int check_unknown(Settings *s, const char *path, const char *name, PyObject *value, char **ret_error) {
        const char *suggestion;
        char *line;

        if (name[0] == '_' || PyModule_Check(value) || PyType_Check(value) ||
            PyFunction_Check(value) || PyCFunction_Check(value))
                return 0;
        suggestion = settings_suggest(name);
        if (suggestion) {
                if (asprintf(ret_error, "Unknown setting '%s' in config file %s: did you mean '%s'?", name, path,
                             suggestion) < 0) {
                        *ret_error = NULL;
                        return -ENOMEM;
                }
                return -EINVAL;
        }
        if (asprintf(&line, "Config file %s: '%s' is not a setting; ignored", path, name) < 0)
                return -ENOMEM;
        return add_warning(s, line);
}

/* Applies one module-level value. Returns 0 also for names that are not settings. */
static int apply_value(Settings *s, const char *path, const char *name, PyObject *value, char **ret_error) {
        _cleanup_free_ char *text = NULL;
        int r;

        /* The one setting whose value stays a Python object. */
        if (strcmp(name, "logconfig_dict") == 0)
                return logconfig_set_dict(s, value, ret_error);
        /* Server hooks are callables, not settings: hooks.c keeps them. */
        r = hooks_config_value(name, value, ret_error);
        if (r != 0)
                return MIN(r, 0);

        if (name[0] == '_' || !settings_has(name))
                return check_unknown(s, path, name, value, ret_error);

        if (value == Py_None)
                return settings_set(s, name, NULL, ret_error);

        /* bool first: True is also an int. */
        if (PyBool_Check(value))
                return settings_set(s, name, value == Py_True ? "True" : "False", ret_error);

        if (PyLong_Check(value)) {
                PyObject *str = PyObject_Str(value);
                const char *t = str ? PyUnicode_AsUTF8(str) : NULL;

                if (!t) {
                        PyErr_Clear();
                        Py_XDECREF(str);
                        return -ENOMEM;
                }
                r = settings_set(s, name, t, ret_error);
                Py_DECREF(str);
                return r;
        }

        if (PyUnicode_Check(value)) {
                text = str_to_c(value);
                if (!text)
                        return invalid_type_error(name, value, ret_error);
                return settings_set(s, name, text, ret_error);
        }

        if (PyList_Check(value) || PyTuple_Check(value)) {
                PyObject *seq = PySequence_Fast(value, "");

                if (!seq) {
                        PyErr_Clear();
                        return -ENOMEM;
                }
                r = apply_list(s, name, seq, ret_error);
                Py_DECREF(seq);
                return r;
        }

        if (PyDict_Check(value))
                return apply_dict(s, name, value, ret_error);

        return invalid_type_error(name, value, ret_error);
}

static int config_exec(Settings *s, const char *path, const char *source, char **ret_error) {
        PyObject *code = NULL, *globals = NULL, *result = NULL, *item = NULL, *items = NULL;
        Py_ssize_t n;
        int r = 0;

        code = Py_CompileStringExFlags(source, path, Py_file_input, NULL, -1);
        if (!code)
                goto python_error;
        globals = python_new_globals();
        if (!globals)
                goto python_error;
        item = PyUnicode_FromString("__config__");
        if (!item || PyDict_SetItemString(globals, "__name__", item) < 0)
                goto python_error;
        Py_CLEAR(item);
        item = PyUnicode_DecodeFSDefault(path);
        if (!item || PyDict_SetItemString(globals, "__file__", item) < 0)
                goto python_error;
        Py_CLEAR(item);

        result = PyEval_EvalCode(code, globals, globals);
        if (!result)
                goto python_error;

        /* A snapshot, in definition order: applying settings must not depend on the dict
         * staying unchanged. */
        items = PyDict_Items(globals);
        if (!items)
                goto python_error;
        n = PyList_GET_SIZE(items);
        for (Py_ssize_t i = 0; i < n; i++) {
                PyObject *pair = PyList_GET_ITEM(items, i); /* borrowed */
                PyObject *key = PyTuple_GET_ITEM(pair, 0);  /* borrowed */
                const char *name;

                if (!PyUnicode_Check(key))
                        continue;
                name = PyUnicode_AsUTF8(key);
                if (!name)
                        goto python_error;
                r = apply_value(s, path, name, PyTuple_GET_ITEM(pair, 1), ret_error);
                if (r < 0)
                        goto finish;
        }
        goto finish;

python_error:
        r = exec_error(path, ret_error);
finish:
        Py_XDECREF(items);
        Py_XDECREF(item);
        Py_XDECREF(result);
        Py_XDECREF(globals);
        Py_XDECREF(code);
        return r;
}

int config_file_load(Settings *s, const char *path, char **ret_error) {
        _cleanup_free_ char *source = NULL;
        int r;

        /* The file is read again (with -c, after the command line): one warning per name. */
        strv_freep(&s->config_warnings);

        r = read_file(path, &source);
        if (r == -ENOENT || r == -ENOTDIR) {
                if (asprintf(ret_error, "Config file not found: %s", path) < 0)
                        *ret_error = NULL;
                return -ENOENT;
        }
        if (r < 0) {
                if (asprintf(ret_error, "Failed to read config file %s: %s", path, strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }

        python_gil_acquire();
        r = config_exec(s, path, source, ret_error);
        python_gil_release();
        return r;
}
