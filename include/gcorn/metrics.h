/* The metrics endpoint (--metrics-bind): Prometheus text served by the master from the
 * scoreboard, on its own listener, without asking the workers anything. */
#pragma once

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

#include "gcorn/control.h"
#include "gcorn/heartbeat.h"
#include "gcorn/listener.h"
#include "gcorn/settings.h"

#define METRICS_CLIENTS_MAX 8
#define METRICS_POLLFDS_MAX (1 + METRICS_CLIENTS_MAX)

typedef struct Metrics Metrics;

/* The settings row's check: HOST:PORT, [IPV6]:PORT or unix:PATH. */
int metrics_check_bind(const char *value, char **ret_value, char *reason, size_t reason_size);

/* Binds metrics_bind; *ret is NULL when it is not set. Returns -errno with one logged line. */
int metrics_new(const Settings *s, Metrics **ret);
Metrics *metrics_free(Metrics *m);
/* In a forked worker: its copies of the fds go. */
void metrics_forget(Metrics *m);

/* A worker's counters, added to the totals when it is reaped: counters never go back. */
void metrics_absorb(Metrics *m, const HeartbeatSlot *slot);

/* The connections waiting in a listener's accept queue and the queue's limit: TCP_INFO for
 * TCP, NETLINK_SOCK_DIAG for UNIX (-EAFNOSUPPORT where the unit's RestrictAddressFamilies=
 * leaves AF_NETLINK out). Returns -errno. Either pointer may be NULL. */
int metrics_listen_queue(const Listener *l, unsigned *ret_queued, unsigned *ret_limit);

size_t metrics_pollfds(Metrics *m, struct pollfd *pfd, size_t cap);
/* Returns true when a scrape waits for metrics_answer(). */
bool metrics_io(Metrics *m);
void metrics_answer(Metrics *m, const ControlState *st);
