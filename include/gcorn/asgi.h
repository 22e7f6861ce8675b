/* The asgi worker (-k asgi, and uvicorn's worker class names): an asyncio event loop is the
 * worker's outer loop, on the aio core (aio.h), with the app's coroutines as its tasks. Its
 * Python side (src/py/asgi_worker.py) is compiled into the binary; this file gives it the C
 * it needs beyond aio.h: the ASGI scope (scope.c), the WebSocket handshake and frames
 * (websocket.c), and the switch of a connection to the WebSocket protocol. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "gcorn/settings.h"

/* The master, at start: 0, or -ENOENT and *ret_error (owned by the caller, one line) when
 * --asgi-loop uvloop is asked for and uvloop cannot be imported. */
int asgi_check(const Settings *s, char **ret_error);

/* In the worker, after the app is imported and before it reports booted: the event loop, and
 * the app's lifespan startup (--asgi-lifespan). 0, or -errno with one line in error: the
 * worker fails to boot. */
int asgi_startup(void *app /* PyObject * */, const Settings *s, char *error, size_t error_size);

/* Runs the event loop as the worker's outer loop until the worker is done, then the
 * lifespan's shutdown. */
void asgi_run(void);
