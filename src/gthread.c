/* The gthread worker's app threads (see gthread.h): a job queue of connections from the loop,
 * an inbox of connections back to it, and the stuck-thread report. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "gcorn/gthread.h"
#include "gcorn/log.h"
#include "gcorn/macro.h"
#include "gcorn/python.h"
#include "gcorn/wsgi.h"

/* What the report shows of a request line */
#define LINE_MAX_SHOWN 256

typedef struct AppThread {
        Gthread *pool;
        pthread_t id;
        unsigned long ident;            /* threading.get_ident() */
        pthread_cond_t done;            /* its I/O was done by the loop */
        /* under the pool's mutex: */
        Conn *conn;                     /* the request it runs; NULL while idle */
        uint64_t start_ms;
        bool reported;                  /* logged as stuck */
        char line[LINE_MAX_SHOWN];      /* the request line, for the report */
} AppThread;

struct Gthread {
        pthread_mutex_t lock;
        pthread_cond_t work;            /* a job was queued, or the pool stops */
        Conn *jobs_head, *jobs_tail;    /* via ConnLink.queue_next */
        Conn *inbox_head, *inbox_tail;
        int efd;
        bool stopping;
        unsigned n, started, ended;
        pthread_cond_t ended_cond;
        AppThread threads[];
};

static _Thread_local AppThread *self;

static void queue_push(Conn **head, Conn **tail, Conn *c) {
        conn_link(c)->queue_next = NULL;
        if (*tail)
                conn_link(*tail)->queue_next = c;
        else
                *head = c;
        *tail = c;
}

static Conn *queue_pop(Conn **head, Conn **tail) {
        Conn *c = *head;

        if (!c)
                return NULL;
        *head = conn_link(c)->queue_next;
        if (!*head)
                *tail = NULL;
        conn_link(c)->queue_next = NULL;
        return c;
}

/* Hands c to the loop; the pool's mutex is held. The eventfd is written only when the inbox
 * was empty: the loop takes everything there after each wake-up. */
static void inbox_push(Gthread *p, Conn *c) {
        bool was_empty = !p->inbox_head;
        uint64_t one = 1;

        queue_push(&p->inbox_head, &p->inbox_tail, c);
        if (was_empty)
                (void) !write(p->efd, &one, sizeof(one));
}

static void *thread_main(void *arg) {
        AppThread *t = arg;
        Gthread *p = t->pool;

        self = t;
        python_thread_attach();
        t->ident = python_thread_ident();
        pthread_mutex_lock(&p->lock);
        for (;;) {
                const Request *q;
                WsgiResult res = {};
                ConnLink *l;
                Conn *c;
                int r;

                while (!p->jobs_head && !p->stopping)
                        pthread_cond_wait(&p->work, &p->lock);
                c = queue_pop(&p->jobs_head, &p->jobs_tail);
                if (!c)
                        break;
                q = conn_request(c);
                t->conn = c;
                t->start_ms = now_ms();
                t->reported = false;
                snprintf(t->line, sizeof(t->line), "%.*s %.*s", (int) MIN(q->method.len, (size_t) 32), q->method.p,
                         (int) MIN(q->target.len, (size_t) 200), q->target.p);
                pthread_mutex_unlock(&p->lock);

                r = wsgi_handle(c, &res);

                pthread_mutex_lock(&p->lock);
                t->conn = NULL;
                l = conn_link(c);
                l->io = NULL;
                l->app_r = r;
                l->app_status = res.status;
                l->app_bytes = res.body_bytes;
                l->app_pending = res.pending;
                inbox_push(p, c);
        }
        p->ended++;
        pthread_cond_broadcast(&p->ended_cond);
        pthread_mutex_unlock(&p->lock);
        wsgi_thread_done();
        python_thread_detach();
        return NULL;
}

int gthread_new(unsigned n, Gthread **ret) {
        Gthread *p;
        sigset_t all, old;
        int r = 0;

        p = calloc(1, sizeof(Gthread) + n * sizeof(AppThread));
        if (!p)
                return -ENOMEM;
        p->n = n;
        p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (p->efd < 0) {
                free(p);
                return -errno;
        }
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->work, NULL);
        pthread_cond_init(&p->ended_cond, NULL);
        /* The loop's thread takes the process's signals (its signal pipe): app threads start
         * with every signal blocked, so no handler interrupts them and Python runs its
         * handlers in the main thread, where it would anyway. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        for (unsigned i = 0; i < n; i++) {
                AppThread *t = &p->threads[i];

                t->pool = p;
                pthread_cond_init(&t->done, NULL);
                r = -pthread_create(&t->id, NULL, thread_main, t);
                if (r < 0)
                        break;
                p->started++;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                (void) gthread_stop(p, 1000);
                return r;
        }
        *ret = p;
        return 0;
}

bool gthread_stop(Gthread *p, unsigned wait_ms) {
        struct timespec until;
        bool all;

        if (!p)
                return true;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += wait_ms / 1000;
        until.tv_nsec += (long) (wait_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        pthread_cond_broadcast(&p->work);
        while (p->ended < p->started)
                if (pthread_cond_timedwait(&p->ended_cond, &p->lock, &until) == ETIMEDOUT)
                        break;
        all = p->ended == p->started;
        pthread_mutex_unlock(&p->lock);
        if (!all)
                return false;   /* a stuck thread still refers to the pool: it stays */
        for (unsigned i = 0; i < p->started; i++) {
                pthread_join(p->threads[i].id, NULL);
                pthread_cond_destroy(&p->threads[i].done);
        }
        pthread_cond_destroy(&p->ended_cond);
        pthread_cond_destroy(&p->work);
        pthread_mutex_destroy(&p->lock);
        safe_close(p->efd);
        free(p);
        return true;
}

int gthread_fd(const Gthread *p) {
        return p->efd;
}

void gthread_dispatch(Gthread *p, Conn *c) {
        pthread_mutex_lock(&p->lock);
        queue_push(&p->jobs_head, &p->jobs_tail, c);
        pthread_cond_signal(&p->work);
        pthread_mutex_unlock(&p->lock);
}

Conn *gthread_next(Gthread *p) {
        Conn *c;

        pthread_mutex_lock(&p->lock);
        c = queue_pop(&p->inbox_head, &p->inbox_tail);
        pthread_mutex_unlock(&p->lock);
        return c;
}

void gthread_io_done(ConnIo *io) {
        AppThread *t = io->owner;

        pthread_mutex_lock(&t->pool->lock);
        io->done = true;
        pthread_cond_signal(&t->done);
        pthread_mutex_unlock(&t->pool->lock);
}

void gthread_offload(Conn *c, ConnIo *io) {
        AppThread *t = self;
        Gthread *p = t->pool;
        /* Never wait on the loop holding the GIL: the loop may need it (an answer it
         * finishes) before it can do this I/O. */
        PyThreadState *ts = PyGILState_Check() ? PyEval_SaveThread() : NULL;

        io->owner = t;
        io->done = false;
        pthread_mutex_lock(&p->lock);
        conn_link(c)->io = io;
        inbox_push(p, c);
        while (!io->done)
                pthread_cond_wait(&t->done, &p->lock);
        pthread_mutex_unlock(&p->lock);
        if (ts)
                PyEval_RestoreThread(ts);
}

/* Appends one frame's line as faulthandler writes it; 0, or -1 with a Python error set. */
static int append_frame(PyObject *frame, FILE *f) {
        PyObject *code = PyObject_GetAttrString(frame, "f_code"), *file = NULL, *name = NULL, *line = NULL;
        const char *fs, *ns;
        int r = -1;

        if (code)
                file = PyObject_GetAttrString(code, "co_filename");
        if (file)
                name = PyObject_GetAttrString(code, "co_name");
        if (name)
                line = PyObject_GetAttrString(frame, "f_lineno");
        fs = file ? PyUnicode_AsUTF8(file) : NULL;
        ns = name ? PyUnicode_AsUTF8(name) : NULL;
        if (fs && ns && line) {
                fprintf(f, "  File \"%s\", line %ld in %s\n", fs, PyLong_AsLong(line), ns);
                r = 0;
        }
        Py_XDECREF(line);
        Py_XDECREF(name);
        Py_XDECREF(file);
        Py_XDECREF(code);
        return r;
}

/* The thread's Python stack in faulthandler's words (as in the dump of a worker the watchdog
 * ends), or NULL. */
static char *python_stack(unsigned long ident) {
        PyObject *sys = NULL, *frames = NULL, *key = NULL, *frame, *next;
        char *buf = NULL;
        size_t len = 0;
        FILE *f;

        f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        fprintf(f, "Thread 0x%016lx (most recent call first):\n", ident);
        python_gil_acquire();
        sys = PyImport_ImportModule("sys");
        frames = sys ? PyObject_CallMethod(sys, "_current_frames", NULL) : NULL;
        key = PyLong_FromUnsignedLong(ident);
        frame = frames && key ? Py_XNewRef(PyDict_GetItemWithError(frames, key)) : NULL;
        for (unsigned depth = 0; frame && frame != Py_None && depth < 100; depth++) {
                if (append_frame(frame, f) < 0)
                        break;
                next = PyObject_GetAttrString(frame, "f_back");
                Py_DECREF(frame);
                frame = next;
        }
        Py_XDECREF(frame);
        PyErr_Clear();
        Py_XDECREF(key);
        Py_XDECREF(frames);
        Py_XDECREF(sys);
        python_gil_release();
        if (fclose(f) != 0)
                return mfree(buf);
        if (len > 0 && buf[len - 1] == '\n')
                buf[len - 1] = 0;
        return buf;
}

unsigned gthread_stuck(Gthread *p, uint64_t now, uint64_t timeout_ms, unsigned *ret_new) {
        struct {
                unsigned long ident;
                uint64_t age;
                char line[LINE_MAX_SHOWN];
        } *report;
        unsigned stuck = 0, n_new = 0;

        report = calloc(p->n, sizeof(*report));
        pthread_mutex_lock(&p->lock);
        for (unsigned i = 0; i < p->started; i++) {
                AppThread *t = &p->threads[i];

                if (!t->conn || now < t->start_ms + timeout_ms)
                        continue;
                stuck++;
                if (t->reported || !report)
                        continue;
                t->reported = true;
                report[n_new].ident = t->ident;
                report[n_new].age = now - t->start_ms;
                memcpy(report[n_new].line, t->line, sizeof(t->line));
                n_new++;
        }
        pthread_mutex_unlock(&p->lock);
        /* Logged without the pool's lock: the stack needs the GIL, which a thread waiting for
         * the lock may hold. */
        for (unsigned i = 0; i < n_new; i++) {
                _cleanup_free_ char *stack = python_stack(report[i].ident);

                log_crit("WORKER TIMEOUT (pid:%d) serving %s for %.1f s in thread %lu; the worker is replaced "
                         "after its other requests\n%s", (int) getpid(), report[i].line,
                         (double) report[i].age / 1000.0, report[i].ident, stack ? stack : "(no Python stack)");
        }
        free(report);
        if (ret_new)
                *ret_new = n_new;
        return stuck;
}
