/* --reload: a worker watches the files of the modules it imported (sys.modules) and
 * --reload-extra-file, and retires when one changes; the arbiter forks a replacement, which
 * imports the new code. inotify watches the directories (an editor that saves by rename is
 * seen too); the poll engine stat()s every file once a second. */
#pragma once

#include <stdbool.h>
#include <time.h>

#include "gcorn/settings.h"

typedef struct Reloader Reloader;

/* Takes the list of files now, with the app imported. A file modified after since (when
 * the import began) counts as changed already: the watch came too late to see it. Returns
 * -errno (logged). */
int reloader_new(const Settings *s, const struct timespec *since, Reloader **ret);

/* For a worker whose app failed to import: a WSGI app (PyObject *, new reference) that
 * answers 500 with error, as Gunicorn's reloader does, and from now on any .py file saved
 * in a watched directory or the working directory counts as a change (the file at fault may
 * be one no module came from). Returns -EIO when Python failed (logged). */
int reloader_fail_app(const char *error, void **ret_app);
Reloader *reloader_free(Reloader *r);

/* The inotify fd to wait on, or -1: then call reloader_changed() about once a second. */
int reloader_fd(const Reloader *r);

/* Whether a watched file changed since the last call; *ret_path (owned by r) names it. */
bool reloader_changed(Reloader *r, const char **ret_path);
