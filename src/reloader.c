/* Watching the app's source files for --reload. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <limits.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gcorn/log.h"
#include "gcorn/macro.h"
#include "gcorn/python.h"
#include "gcorn/reloader.h"

/* What a save looks like: written and closed, renamed over, replaced, touched. */
#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB)

typedef struct WatchedFile {
        char *path;
        const char *base;               /* within path */
        int wd;                         /* of its directory; -1 when not watched */
        struct timespec mtime;
        off_t size;
        bool exists;
} WatchedFile;

/* Set by reloader_fail_app(): the app did not import. */
static bool watch_any_py;

struct Reloader {
        int fd;                         /* inotify, or -1 to poll */
        int cwd_wd;                     /* watch_any_py: the working directory's watch */
        char event_path[PATH_MAX];      /* the file an event named */
        WatchedFile *files;
        size_t n_files;
        const char *pending;            /* changed before the watch began */
};

/* The source files of every imported module, compiled ones as their .py, as Gunicorn's
 * reloader lists them. */
static const char files_source[] =
        "import re, sys\n"
        "def files(extra):\n"
        "    names = set(extra)\n"
        "    for m in tuple(sys.modules.values()):\n"
        "        f = getattr(m, '__file__', None)\n"
        "        if isinstance(f, str):\n"
        "            names.add(re.sub(r'\\.py[co]$', '.py', f))\n"
        "    return sorted(names)\n"
        "\n"
        "def fail_app(msg):\n"
        "    body = msg.encode('utf-8', 'replace')\n"
        "    def app(environ, start_response):\n"
        "        start_response('500 Internal Server Error',\n"
        "                       [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])\n"
        "        return [body]\n"
        "    return app\n";

static int list_files(const Settings *s, char ***ret) {
        PyObject *globals = NULL, *res = NULL, *func, *extra = NULL, *list = NULL;
        _cleanup_strv_free_ char **l = NULL;
        size_t n_extra = 0;
        int r = -EIO;

        while (s->reload_extra_files && s->reload_extra_files[n_extra])
                n_extra++;
        python_gil_acquire();
        globals = python_new_globals();
        if (!globals)
                goto out;
        res = PyRun_String(files_source, Py_file_input, globals, globals);
        if (!res)
                goto out;
        func = PyDict_GetItemString(globals, "files"); /* borrowed */
        extra = PyList_New((Py_ssize_t) n_extra);
        if (!func || !extra)
                goto out;
        for (size_t i = 0; i < n_extra; i++) {
                PyObject *p = PyUnicode_DecodeFSDefault(s->reload_extra_files[i]);

                if (!p)
                        goto out;
                PyList_SET_ITEM(extra, (Py_ssize_t) i, p);
        }
        list = PyObject_CallFunctionObjArgs(func, extra, NULL);
        if (!list || !PyList_Check(list))
                goto out;
        l = calloc((size_t) PyList_GET_SIZE(list) + 1, sizeof(char *));
        if (!l) {
                r = -ENOMEM;
                goto out;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
                PyObject *b = PyUnicode_EncodeFSDefault(PyList_GET_ITEM(list, i));

                if (!b)
                        goto out;
                l[i] = strdup(PyBytes_AS_STRING(b));
                Py_DECREF(b);
                if (!l[i]) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        *ret = TAKE_PTR(l);
        r = 0;
out:
        if (r == -EIO)
                python_log_exception(LOG_WARNING, "Cannot list the app's modules for --reload");
        Py_XDECREF(list);
        Py_XDECREF(extra);
        Py_XDECREF(res);
        Py_XDECREF(globals);
        python_gil_release();
        return r;
}

static void stat_file(WatchedFile *f) {
        struct stat st;

        f->exists = stat(f->path, &st) == 0;
        f->mtime = f->exists ? st.st_mtim : (struct timespec) {};
        f->size = f->exists ? st.st_size : 0;
}

/* Watches the directory of f, or reuses the watch of a file before it in the same one. */
static int watch_dir(Reloader *r, WatchedFile *f) {
        _cleanup_free_ char *dir = strndup(f->path, (size_t) (f->base - f->path));

        if (!dir)
                return -ENOMEM;
        f->wd = inotify_add_watch(r->fd, dir[0] ? dir : ".", WATCH_MASK);
        if (f->wd < 0)
                return log_warning_errno(errno, "Cannot watch %s for --reload: %m", dir);
        return 0;
}

static bool newer(const struct timespec *a, const struct timespec *b) {
        return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

int reloader_new(const Settings *s, const struct timespec *since, Reloader **ret) {
        _cleanup_strv_free_ char **paths = NULL;
        Reloader *r;
        size_t n = 0;
        int k;

        k = list_files(s, &paths);
        if (k < 0)
                return k;
        while (paths[n])
                n++;
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->fd = -1;
        r->files = calloc(MAX(n, (size_t) 1), sizeof(WatchedFile));
        if (!r->files) {
                reloader_free(r);
                return -ENOMEM;
        }
        if (strcmp(s->reload_engine, "poll") != 0) {
                r->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
                if (r->fd < 0 && strcmp(s->reload_engine, "inotify") == 0) {
                        k = log_error_errno(errno, "inotify_init1() failed (reload_engine = inotify): %m");
                        reloader_free(r);
                        return k;
                }
                if (r->fd < 0)
                        log_info_errno(errno, "inotify is not available (%m); --reload polls instead");
        }
        for (size_t i = 0; i < n; i++) {
                WatchedFile *f = &r->files[r->n_files++];
                const char *slash = strrchr(paths[i], '/');
                size_t base = slash ? (size_t) (slash - paths[i]) + 1 : 0;

                f->path = TAKE_PTR(paths[i]);
                f->base = f->path + base;
                f->wd = -1;
                stat_file(f);
                if (!r->pending && f->exists && newer(&f->mtime, since))
                        r->pending = f->path;
                if (r->fd >= 0)
                        (void) watch_dir(r, f);
        }
        r->cwd_wd = -1;
        if (watch_any_py && r->fd >= 0)
                r->cwd_wd = inotify_add_watch(r->fd, ".", WATCH_MASK);
        log_debug("--reload watches %zu files (%s)", r->n_files, r->fd >= 0 ? "inotify" : "poll");
        *ret = r;
        return 0;
}

Reloader *reloader_free(Reloader *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_files; i++)
                free(r->files[i].path);
        free(r->files);
        safe_close(r->fd);
        free(r);
        return NULL;
}

int reloader_fd(const Reloader *r) {
        return r->fd;
}

static bool is_py(const char *name) {
        size_t n = strlen(name);

        return n > 3 && strcmp(name + n - 3, ".py") == 0;
}

static const char *match_event(Reloader *r, const struct inotify_event *e) {
        bool any = watch_any_py && is_py(e->name);

        if (e->len == 0)
                return NULL;
        if (any && e->wd == r->cwd_wd) {
                snprintf(r->event_path, sizeof(r->event_path), "%s", e->name);
                return r->event_path;
        }
        for (size_t i = 0; i < r->n_files; i++) {
                const WatchedFile *f = &r->files[i];

                if (f->wd != e->wd)
                        continue;
                if (strcmp(f->base, e->name) == 0)
                        return f->path;
                if (any) {
                        snprintf(r->event_path, sizeof(r->event_path), "%.*s%s", (int) (f->base - f->path), f->path,
                                 e->name);
                        return r->event_path;
                }
        }
        return NULL;
}

int reloader_fail_app(const char *error, void **ret_app) {
        PyObject *globals = NULL, *res = NULL, *app = NULL;

        python_gil_acquire();
        globals = python_new_globals();
        if (globals)
                res = PyRun_String(files_source, Py_file_input, globals, globals);
        if (res)
                app = PyObject_CallFunction(PyDict_GetItemString(globals, "fail_app"), "s", error);
        if (!app)
                python_log_exception(LOG_ERR, "Cannot make the --reload error app");
        Py_XDECREF(res);
        Py_XDECREF(globals);
        python_gil_release();
        if (!app)
                return -EIO;
        watch_any_py = true;
        *ret_app = app;
        return 0;
}

bool reloader_changed(Reloader *r, const char **ret_path) {
        if (r->pending) {
                *ret_path = r->pending;
                r->pending = NULL;
                return true;
        }
        if (r->fd >= 0) {
                char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
                const char *found = NULL;
                ssize_t n;

                while ((n = read(r->fd, buf, sizeof(buf))) > 0)
                        for (char *p = buf; p < buf + n;) {
                                const struct inotify_event *e = (const struct inotify_event *) p;

                                if (!found)
                                        found = match_event(r, e);
                                p += sizeof(*e) + e->len;
                        }
                *ret_path = found;
                return found != NULL;
        }
        for (size_t i = 0; i < r->n_files; i++) {
                WatchedFile *f = &r->files[i], old = *f;

                stat_file(f);
                if (f->exists != old.exists || f->size != old.size || f->mtime.tv_sec != old.mtime.tv_sec ||
                    f->mtime.tv_nsec != old.mtime.tv_nsec) {
                        *ret_path = f->path;
                        return true;
                }
        }
        return false;
}
