/* Access log: Gunicorn's access_log_format compiled once into an element array, rendered per
 * request. Pure C, never logs.
 *
 * Atoms (Gunicorn's): h l u t r s m U q H b B f a T M D L p {header}i {header}o {var}e.
 * %({var}e)s has no environ here and renders "-". */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "gcorn/request.h"

typedef struct AccessEntry {
        const Request *request;
        const char *remote_addr;        /* "" or NULL renders "-" */
        int status;
        uint64_t body_bytes;
        const HttpHeader *response_headers;
        size_t n_response_headers;
        struct timespec start;          /* CLOCK_REALTIME when the head was complete */
        uint64_t duration_usec;
        pid_t pid;
} AccessEntry;

typedef struct AccessLog AccessLog;

/* Returns -EINVAL for a malformed format ("%(" without ")s"). */
int accesslog_compile(const char *format, AccessLog **ret);
AccessLog *accesslog_free(AccessLog *l);

/* Renders one line (no newline) into buf; returns the length it needed, which may exceed
 * cap (then the output is cut at cap-1 and NUL-terminated, like snprintf). */
size_t accesslog_render(const AccessLog *l, const AccessEntry *e, char *buf, size_t cap);

#define ACCESSLOG_DEFAULT_FORMAT "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\""
