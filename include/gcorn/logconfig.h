/* logconfig, logconfig_json, logconfig_dict and capture_output: Python's logging
 * configuration for the error log, as Gunicorn applies it. With a configuration whose
 * gunicorn.error logger has handlers, gcorn's own entries become records of that logger,
 * like the app's; without one they keep going to the native writer (the journal with its
 * fields, a file, or stderr). The master applies it; workers inherit it through fork(). */
#pragma once

#include "gcorn/settings.h"

/* The config file's logconfig_dict (a PyObject *), GIL held: s takes a new reference.
 * Returns 0, or -EINVAL with *ret_error (owned by the caller) when it is not a dict. */
int logconfig_set_dict(Settings *s, void *value, char **ret_error);

/* Drops the reference settings hold (none is kept once the interpreter is gone). */
void logconfig_dict_free(void **dict);

/* Applies the configuration that s names, after log_setup() (which sets the level), or stops
 * routing to Python when s names none. Returns 0, or -errno with *ret_error one line. */
int logconfig_apply(const Settings *s, char **ret_error);

/* capture_output: points stdout and stderr at the error log file. */
void logconfig_capture_output(const Settings *s);

/* USR1, after log_setup(): as Gunicorn's reopen_files(), every logging.FileHandler opens its
 * file again (logrotate moved it), then capture_output follows the new error log. */
void logconfig_reopen(const Settings *s);

/* Warnings for settings that are set but have no effect; once at start. */
void logconfig_warn_unused(const Settings *s);

/* logconfig_dict, which the settings table does not hold: its README row and man page entry. */
void logconfig_print_markdown(FILE *f);
void logconfig_print_man(FILE *f);

/* repr() of logconfig_dict, "{}" when unset; NULL without memory. Takes the GIL itself. */
char *logconfig_dict_repr(const Settings *s);
