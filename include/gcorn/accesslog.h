/* Access log: Gunicorn's access_log_format compiled once into an element array, rendered per
 * request. Pure C, never logs.
 *
 * Atoms (Gunicorn's): h l u t r s m U q H b B f a T M D L p {header}i {header}o {var}e.
 * %({var}e)s is a key of the request's WSGI environ as the app left it (Gunicorn's atoms()
 * take the environ, not os.environ): the caller looks the values up and hands them over. */
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
        /* The %({var}e)s values, by accesslog_environ_name() index; a NULL p (or a NULL
         * array) renders "-". */
        const Slice *environ_values;
        size_t n_environ_values;
} AccessEntry;

typedef struct AccessLog AccessLog;

/* Returns -EINVAL for a malformed format ("%(" without ")s"). */
int accesslog_compile(const char *format, AccessLog **ret);
AccessLog *accesslog_free(AccessLog *l);

/* How many %({var}e)s atoms the format has (0 for a NULL log), and the var of each, as
 * written in the format (Gunicorn matches it case-insensitively). */
size_t accesslog_environ_count(const AccessLog *l);
const char *accesslog_environ_name(const AccessLog *l, size_t i);

/* Renders one line (no newline) into buf; returns the length it needed, which may exceed
 * cap (then the output is cut at cap-1 and NUL-terminated, like snprintf). */
size_t accesslog_render(const AccessLog *l, const AccessEntry *e, char *buf, size_t cap);

#define ACCESSLOG_DEFAULT_FORMAT "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\""
