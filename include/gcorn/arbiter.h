/* The master process: forks the workers, watches their heartbeats, replaces the ones that
 * die or hang, and turns Gunicorn's signals into reloads and shutdowns. It never serves
 * requests and never daemonizes. */
#pragma once

#include <stddef.h>

#include "gcorn/listener.h"
#include "gcorn/settings.h"

/* Reads the settings again for a HUP reload (argv and the config file). Returns -errno with
 * one line in *ret_error (owned by the caller); *ret is initialised only on success. */
typedef int (*ArbiterReloadSettings)(Settings *ret, char **ret_error);

/* s stays owned by the caller, but a reload replaces its contents (the old ones are freed).
 * app: the preloaded application (PyObject *) or NULL. Returns the exit status for main(). */
int arbiter_run(Settings *s, Listener *listeners, size_t n_listeners, void *app, ArbiterReloadSettings reload);
