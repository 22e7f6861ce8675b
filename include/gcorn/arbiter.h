/* The master process: forks the workers, replaces the ones that die, and turns signals into
 * graceful or fast shutdowns. It never serves requests and never daemonizes. */
#pragma once

#include <stddef.h>

#include "gcorn/listener.h"
#include "gcorn/settings.h"

/* app: the preloaded application (PyObject *) or NULL. Returns the exit status for main(). */
int arbiter_run(Settings *s, Listener *listeners, size_t n_listeners, void *app);
