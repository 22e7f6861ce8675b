/* StatsD as Gunicorn sends it (--statsd-host, --statsd-prefix, --dogstatsd-tags): per request
 * gunicorn.request.duration, gunicorn.requests and gunicorn.request.status.NNN from the
 * worker, gunicorn.workers (and gunicorn.backlog with --enable-backlog-metric) from the
 * master, gunicorn.log.* from every warning or worse. One UDP (or UNIX datagram) socket opened
 * by the master and shared by the workers; sends never block and are dropped when the socket
 * is full. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gcorn/listener.h"
#include "gcorn/settings.h"

/* The settings row's check: "HOST:PORT" (port 8125 when left out), "[V6]:PORT", "unix:PATH"
 * or "unix://PATH". */
int statsd_check_host(const char *value, char **ret_value, char *reason, size_t reason_size);

/* Opens the socket when statsd_host is set. Returns -errno with one logged line. */
int statsd_open(const Settings *s);
void statsd_close(void);
extern int statsd_socket;
static inline bool statsd_enabled(void) {
        return statsd_socket >= 0;
}

/* duration_us: the time the request took. */
void statsd_request(int status, uint64_t duration_us);
/* The number of workers: sent when it changes. */
void statsd_workers(int n);
/* --enable-backlog-metric: the connections waiting in the TCP listeners' accept queues, summed,
 * as Gunicorn's gunicorn.backlog histogram; at most once a second. Called by the master only:
 * no worker spends a syscall on it. */
void statsd_backlog(const Listener *listeners, size_t n, uint64_t now);
/* A log line at this syslog level was written. */
void statsd_log(int level);
/* A traceback was logged where Gunicorn calls log.exception(). */
void statsd_exception(void);
