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

#include "gcorn/conn.h"
#include "gcorn/macro.h"

/* The state the inline functions below share with gsocket.c; not for other use. */
typedef struct GsocketState {
        const Conn *conn;               /* of the request running, NULL between requests */
        bool attached;                  /* the object holds a dup of conn's descriptor */
        bool written;                   /* the app sent on it */
} GsocketState;
/* per thread: a gthread worker runs requests side by side (the object itself is one, so only
 * one request at a time may use it as its socket) */
extern _thread_local_ GsocketState gsocket_state;
void gsocket_detach(void);

/* Builds the object. Returns 0 or -ENOMEM with the Python error set. */
int gsocket_init(void);
void gsocket_done(void);

/* The object, borrowed; NULL before gsocket_init(). */
PyObject *gsocket_object(void);

/* The connection of the request about to run. Inline, as every request pays for these. */
static inline void gsocket_begin(const Conn *c) {
        gsocket_state.conn = c;
        gsocket_state.written = false;
}

/* Whether the app sent bytes on it during this request: then it answered by itself
 * (Gunicorn's ALREADY_HANDLED) and the server must add nothing. */
static inline bool gsocket_written(void) {
        return gsocket_state.written;
}

/* Ends the request: the dup (if any) is closed and the connection's descriptor is
 * non-blocking again. */
static inline void gsocket_end(void) {
        if (gsocket_state.attached)
                gsocket_detach();
        gsocket_state.conn = NULL;
}
