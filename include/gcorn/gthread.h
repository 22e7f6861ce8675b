/* The gthread worker's app threads: a pool of threads, started once per worker, each with its
 * own Python thread state for its whole life, that run the requests the worker's loop hands
 * them (wsgi_handle()).
 *
 * The loop stays the one owner of every socket (see conn.h): it dispatches a connection
 * whose request is complete (gthread_dispatch()), does the I/O an app thread asks for on it
 * (gthread_offload() on the thread, conn_io_run() on the loop) and takes it back when the
 * request is done. Messages from the threads to the loop (an I/O to do, a request done) wait
 * in an inbox and wake the loop through an eventfd in its epoll set.
 *
 * Locking: one mutex per pool, held only to move a connection between the job queue, a
 * thread and the inbox, and to wake a waiting thread; never around the app, a system call
 * on a socket, or Python. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gcorn/conn.h"

typedef struct Gthread Gthread;

/* Starts n threads. Returns 0 or -errno (nothing started). */
int gthread_new(unsigned n, Gthread **ret);

/* Ends the threads: idle ones at once, busy ones when their request ends, waiting at most
 * wait_ms. Returns true once every thread has ended (and the pool is freed); false when some
 * are still inside a request (stuck): the process must then exit without finalising Python. */
bool gthread_stop(Gthread *p, unsigned wait_ms);

/* The eventfd the loop watches: readable when gthread_next() has something. */
int gthread_fd(const Gthread *p);

/* Threads not inside a request. */
unsigned gthread_idle(const Gthread *p);

/* The loop hands over a connection whose request is ready: an app thread runs it. */
void gthread_dispatch(Gthread *p, Conn *c);

/* The next connection an app thread handed back (after clearing the eventfd), or NULL. With
 * conn_link(c)->io set, its thread waits for that I/O (conn_io_run(), then gthread_io_done());
 * without, its request is done, with wsgi_handle()'s results in the link's app_* fields. */
Conn *gthread_next(Gthread *p);

/* The loop did the I/O: its thread goes on. */
void gthread_io_done(ConnIo *io);

/* ConnConfig.offload for the app threads. */
void gthread_offload(Conn *c, ConnIo *io);

/* Threads inside one request for timeout_ms or more. Each is logged once, with its request
 * line and Python stack (takes the GIL); *ret_new counts those logged now. */
unsigned gthread_stuck(Gthread *p, uint64_t now_ms, uint64_t timeout_ms, unsigned *ret_new);
