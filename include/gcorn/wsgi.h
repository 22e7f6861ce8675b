/* The WSGI layer: runs one request through the application and sends its response.
 *
 * wsgi_init() is called once per worker process after the app is loaded; wsgi_handle() for
 * each request whose head is complete. The caller does not hold the GIL; wsgi_handle()
 * takes it for the app call and releases it around all socket I/O. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gcorn/conn.h"
#include "gcorn/settings.h"

typedef struct WsgiResult {
        int status;                     /* status sent, 0 when nothing could be sent */
        uint64_t body_bytes;            /* response body bytes sent */
} WsgiResult;

/* app: a new reference is taken. Builds the environ template and interned keys. Called
 * without the GIL, like wsgi_handle(). */
int wsgi_init(void *app /* PyObject * */, const Settings *s);
void wsgi_done(void);

/* Returns 0 when the response went out (the connection may still have to close, see
 * conn_must_close()), or a negative errno when the connection is broken and must be closed
 * at once. Always calls the iterable's close(), writes the access log entry, and logs app
 * errors with their traceback. */
int wsgi_handle(Conn *c, WsgiResult *ret);
