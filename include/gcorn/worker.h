/* A worker process: accepts on the shared listeners, multiplexes its connections with epoll
 * and runs requests through the app, one at a time (sync) or on its app threads (gthread). */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "gcorn/heartbeat.h"
#include "gcorn/listener.h"
#include "gcorn/settings.h"

/* Exit status of a worker that could not load the app (Gunicorn's WORKER_BOOT_ERROR). */
#define WORKER_BOOT_ERROR 3

/* The value (sigqueue()) of the master's TERM when other workers go on serving (a reload,
 * TTOU, one worker stopped): the worker leaves its idle kept-alive connections to the master,
 * which hands each to another worker when its client sends again. A plain TERM (a stop) has
 * nobody to leave them to. */
#define WORKER_TERM_OTHERS_SERVE 1

typedef struct WorkerContext {
        pid_t parent;                   /* the master, read before fork(): it may die before the
                                         * worker looks */
        const Settings *settings;
        Listener *listeners;
        size_t n_listeners;
        void *app;                      /* the preloaded app (PyObject *), or NULL to import it */
        HeartbeatSlot *slot;            /* this worker's scoreboard slot */
        Heartbeat *heartbeat;           /* everyone's, to compare loads */
        int boot_fd;                    /* written to once the app is loaded (wakes the master) */
        uint32_t generation;
        struct Handoff *handoff;        /* kept-alive connections any worker can take; NULL: none */
} WorkerContext;

/* Runs in the child after fork(). Returns the process exit status. */
int worker_run(const WorkerContext *ctx);
