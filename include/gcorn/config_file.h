/* Gunicorn-style Python config file (gunicorn.conf.py): executed in the master, its
 * module-level names that are settings are applied (bind, workers, wsgi_app, ...). Modules,
 * classes, functions and private names are the file's own; a name within two edits of a
 * setting ("wokers") is an error with the suggestion; any other name that is not a setting
 * gets a line in Settings.config_warnings. Server hooks go to hooks.c. */
#pragma once

#include <stdbool.h>

#include "gcorn/settings.h"

/* Python must be initialised (python_init()). Returns -errno; on failure *ret_error (owned
 * by the caller) holds one clear line: "Config file not found: /x.conf.py", "Error in config
 * file /x.conf.py: line 3: SyntaxError: ...", "Invalid value for workers: 'x'". */
int config_file_load(Settings *s, const char *path, char **ret_error);

