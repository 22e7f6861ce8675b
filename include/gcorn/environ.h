/* The WSGI environ: a template dict built once per worker, copied and filled per request.
 *
 * Keys are interned once from one list, so an app's environ["PATH_INFO"] hits on identity;
 * the HTTP_* keys of common headers are prebuilt, others are made per request. All
 * functions need the GIL. */
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

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

/* Percent-decodes src into dst (at least len bytes); "%zz" and a truncated "%4" stay as
 * they are, as urllib.parse.unquote_to_bytes does. Returns the decoded length. */
size_t environ_unquote(const char *src, size_t len, char *dst);
