/* environ["gunicorn.socket"]: the connection as a socket.socket, as Gunicorn hands it over.
 *
 * One object per worker sits in the environ template, so a request whose app never touches
 * it costs nothing: the object gets a socket (a dup of the connection's descriptor) on its
 * first attribute use within a request, and loses it when the request ends. While attached
 * the socket blocks, as Gunicorn's sync worker's does. All functions need the GIL. */
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>

/* Builds the object. Returns 0 or -ENOMEM with the Python error set. */
int gsocket_init(void);
void gsocket_done(void);

/* The object, borrowed; NULL before gsocket_init(). */
PyObject *gsocket_object(void);

/* The connection of the request about to run (-1: none). */
void gsocket_begin(int fd);

/* Whether the app sent bytes on it during this request: then it answered by itself
 * (Gunicorn's ALREADY_HANDLED) and the server must add nothing. */
bool gsocket_written(void);

/* Ends the request: the dup (if any) is closed and the connection's descriptor is
 * non-blocking again. */
void gsocket_end(void);
