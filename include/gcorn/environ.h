/* The WSGI environ: a template dict built once per worker, copied and filled per request.
 *
 * Keys are interned once from one list, so an app's environ["PATH_INFO"] hits on identity;
 * the HTTP_* keys of common headers are prebuilt, others are made per request. All
 * functions need the GIL. */
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "gcorn/accesslog.h"
#include "gcorn/conn.h"
#include "gcorn/request.h"
#include "gcorn/settings.h"

/* Builds the interned keys and the template. SCRIPT_NAME is read from the process
 * environment now, as Gunicorn reads os.environ. s may be NULL (one worker). Returns 0 or
 * -ENOMEM with the Python error cleared. */
int environ_init(const Settings *s);
void environ_done(void);

/* The SCRIPT_NAME every environ carries ("" when unset); static storage. */
const char *environ_script_name(void);

/* Builds the environ of one request. input (wsgi.input) is stored, not stolen.
 * Returns 0 and a new dict in *ret, -EXDEV when the path does not start with SCRIPT_NAME
 * (Gunicorn's ConfigurationProblem, answered with 500; no Python error set), -EPROTO when a
 * trusted peer's secure_scheme_headers contradict each other (answered with 400; no Python
 * error set), or -ENOMEM
 * with the Python error set. */
int environ_build(const Request *r, const ConnInfo *info, PyObject *input, PyObject **ret);

/* What environ_build() refuses, without building anything: 0, -EXDEV or -EPROTO as it
 * returns them (for a request that needs no environ: an ASGI one). */
int environ_check(const Request *r, const ConnInfo *info);

/* Whether secure_scheme_headers from a trusted peer make the request https, as
 * environ_build() decides wsgi.url_scheme (for the ASGI scope). Returns 1, 0, or -EPROTO
 * when they contradict each other. */
int environ_scheme_https(const Request *r, const ConnInfo *info);

/* Percent-decodes src into dst (at least len bytes); "%zz" and a truncated "%4" stay as
 * they are, as urllib.parse.unquote_to_bytes does. Returns the decoded length. */
size_t environ_unquote(const char *src, size_t len, char *dst);

/* The values of the access log's %({var}e)s atoms, kept past the environ for the log line. */
typedef struct EnvironLogValues {
        Slice *values;                  /* by accesslog_environ_name() index */
        size_t *offsets;                /* of each value in text while it grows; SIZE_MAX: none */
        size_t n;
        char *text;                     /* what the values point into */
        size_t text_cap;
} EnvironLogValues;

/* Looks up each %({var}e)s var of l in env as Gunicorn's atoms() do: every key lower-cased,
 * the last one matching winning; a value that is not a str is formatted with str(). The
 * text is UTF-8, as Gunicorn's log stream writes it. Missing keys (and values that fail to
 * format) get a NULL p. Returns 0 or -ENOMEM; never leaves a Python error set. */
int environ_log_values(PyObject *env, const AccessLog *l, EnvironLogValues *v);
void environ_log_values_free(EnvironLogValues *v);
