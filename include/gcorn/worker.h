/* A worker process: accepts on the shared listeners, multiplexes its connections with epoll
 * and runs requests through the app one at a time. */
#pragma once

#include <stddef.h>

#include "gcorn/listener.h"
#include "gcorn/settings.h"

/* Exit status of a worker that could not load the app (Gunicorn's WORKER_BOOT_ERROR). */
#define WORKER_BOOT_ERROR 3

/* Runs in the child after fork(). app is the preloaded application (PyObject *) or NULL to
 * import s->wsgi_app here. Returns the process exit status; never returns to the arbiter's
 * loop. */
int worker_run(const Settings *s, Listener *listeners, size_t n_listeners, void *app);
