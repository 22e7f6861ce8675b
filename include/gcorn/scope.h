/* Request -> ASGI 3 connection scope ("http" or "websocket"), from what the environ code
 * already computes: the percent-decoding, the trusted scheme headers and SCRIPT_NAME.
 *
 * The path is decoded and kept whole (no root_path stripping), as Gunicorn 24+, uvicorn and
 * Starlette expect. All functions need the GIL; scope_init() needs environ_init() first. */
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>

#include "gcorn/conn.h"
#include "gcorn/request.h"
#include "gcorn/settings.h"

typedef enum ScopeType {
        SCOPE_HTTP,
        SCOPE_WEBSOCKET,
} ScopeType;

/* Interns the keys and fixes root_path: --root-path, else the SCRIPT_NAME environment
 * variable. s may be NULL. Returns 0 or -ENOMEM with the Python error cleared. */
int scope_init(const Settings *s);
void scope_done(void);

/* Builds the scope of one request. state (the lifespan's dict, or NULL) is copied into
 * scope["state"] shallowly, as the ASGI spec asks. Returns 0 and a new dict in *ret,
 * -EPROTO when trusted scheme headers contradict each other (a 400; no Python error set),
 * or -ENOMEM with the Python error set. */
int scope_build(const Request *r, const ConnInfo *info, ScopeType type, PyObject *state, PyObject **ret);
