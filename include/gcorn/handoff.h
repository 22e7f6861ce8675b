/* Kept-alive connections that any worker can take over (sync workers).
 *
 * A sync worker runs its app inline: while it is inside one request, the next request on
 * another of its kept-alive connections would wait for it even when other workers are idle,
 * and if it dies or is stopped its idle clients go with it. So the master keeps a duplicate
 * of every kept-alive connection, and a shared ownership word per connection decides who
 * may read it:
 *
 *   0               free entry
 *   W               idle in worker W (its heartbeat slot index + 1): nothing buffered, no
 *                   answer pending; anyone who wins a compare-and-swap may take it
 *   W | BUSY        worker W reads or serves it: nobody else touches the socket
 *   HELD            the master holds it alone (its worker died or retired)
 *   TRANSIT         the master sent it to the ready queue; the worker that receives it
 *                   makes it its own W | BUSY, or gives it back (HELD) when the message
 *                   came without its descriptor; the master takes back (HELD) one whose
 *                   message left the queue and was never taken (its worker died)
 *   CLOSING         its worker closed it; the master closes its duplicate and frees it
 *
 * The worker registers a connection the first time it goes idle after a keep-alive answer
 * (one sendmsg() with SCM_RIGHTS per connection); afterwards going idle is a plain store
 * and reading again a compare-and-swap, with no system call. The master watches the idle
 * connections of a worker that is inside one request for a few milliseconds, that stopped
 * beating, or that died, and when one of them becomes readable it takes it (W -> TRANSIT)
 * and passes it on the ready queue, a SOCK_SEQPACKET pair whose receiving end every idle
 * worker watches like a listener. A worker that finds the swap failed for its connection
 * lets go of it without touching the socket. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gcorn/conn.h"
#include "gcorn/heartbeat.h"
#include "gcorn/settings.h"

#define HANDOFF_BUSY 0x10000u
#define HANDOFF_HELD 0x40000000u
#define HANDOFF_TRANSIT 0x40000001u
#define HANDOFF_CLOSING 0x40000002u

/* The master looks at the workers this often while it holds duplicates and there is
 * another worker to take over. */
#define HANDOFF_TICK_MS 5
/* A worker inside one request this long no longer counts as the reader of its idle
 * connections. */
#define HANDOFF_BUSY_MS 5

typedef struct Handoff Handoff;

/* The sync worker only: the other kinds keep their idle connections in a loop that does not
 * wait on the app. */
static inline bool handoff_applies(const Settings *s) {
        return !settings_threaded(s) && strcmp(s->worker_class, "sync") == 0;
}

/* The master, before the first fork: the table sized for the master's descriptor limit. */
int handoff_new(Handoff **ret);
/* The master: closes every duplicate. */
Handoff *handoff_free(Handoff *h);
static inline void handoff_freep(Handoff **h) {
        *h = handoff_free(*h);
}

/* ---- A worker, after fork(): self is its heartbeat slot index + 1. ---- */

/* Drops the master's ends and state. */
void handoff_worker_init(Handoff *h, uint32_t self);
/* The ready queue's receiving end, for the worker's epoll set; -1 once it is gone. */
int handoff_ready_fd(const Handoff *h);

/* A worker's handle on a registered connection's entry is a ticket: its index and the
 * entry's registration count (>= 0). */

/* The entry a ticket names, below handoff_entries(). */
static inline uint32_t handoff_index(int64_t ticket) {
        return (uint32_t) ticket;
}
uint32_t handoff_entries(const Handoff *h);

/* The connection goes idle for the first time: claims an entry and hands the master a
 * duplicate. The ticket, or -ENOSPC (table full), -EAGAIN, -errno: the connection then stays
 * with the worker alone, as without handoff. */
int64_t handoff_register(Handoff *h, int fd, const ConnInfo *info);
/* What the worker's loop needs per request, inline: where the owner words are (entry i's
 * at owner[i * stride]) and the worker's W. An owner word is the state in its low half and
 * the entry's registration count in its high half, as a ticket is the count above the
 * index. */
typedef struct HandoffFast {
        uint64_t *owner;
        size_t stride;
        uint64_t self;
} HandoffFast;
void handoff_fast(const Handoff *h, HandoffFast *ret);

/* The connection (registered, owned W | BUSY) is idle again. */
static inline void handoff_idle(const HandoffFast *f, int64_t ticket) {
        __atomic_store_n(&f->owner[(size_t) handoff_index(ticket) * f->stride],
                         ((uint64_t) ticket & 0xffffffff00000000u) | f->self, __ATOMIC_RELEASE);
}

/* W -> W | BUSY before touching an idle connection's socket; false when someone took it. */
static inline bool handoff_claim(const HandoffFast *f, int64_t ticket) {
        uint64_t expected = ((uint64_t) ticket & 0xffffffff00000000u) | f->self;

        return __atomic_compare_exchange_n(&f->owner[(size_t) handoff_index(ticket) * f->stride], &expected,
                                           expected | HANDOFF_BUSY, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
/* The worker closes the connection it owns (after shutting it down). */
void handoff_close(Handoff *h, int64_t ticket);
/* A retiring worker leaves the idle connection (owned, or shared idle) to the master, which
 * passes it on when its client sends again: no keep-alive close races the client's next
 * request. False when someone else took it meanwhile. */
bool handoff_release(Handoff *h, int64_t ticket);
/* One connection from the ready queue: its ticket (the entry now this worker's W | BUSY),
 * *ret_fd and *ret_info filled. -EAGAIN when there is none, -ESTALE for one that was no longer
 * to be had (the queue may hold more), -EMFILE for one that came without its descriptor (this
 * worker is out of descriptors; the entry went back to the master, which offers it again:
 * stop taking from the queue for a while), -EPIPE when the queue is gone: then take it out of
 * the epoll set and call handoff_ready_gone(). */
int64_t handoff_receive(Handoff *h, int *ret_fd, ConnInfo *ret_info);
void handoff_ready_gone(Handoff *h);

/* ---- The master. ---- */

/* The descriptors the master polls (the registrations, and its epoll set of duplicates). */
size_t handoff_pollfds(const Handoff *h, int *fds, size_t cap);
/* Registrations, closes, readable duplicates. */
void handoff_io(Handoff *h, Heartbeat *hb, uint64_t now);
/* Looks at the workers and the entries: what to watch, what to hand out, keep-alive
 * deadlines of connections the master holds. Returns how long until it wants to look
 * again (ms), or -1 when it has nothing to do. */
int handoff_tick(Handoff *h, Heartbeat *hb, uint64_t now, uint64_t keepalive_ms, size_t n_workers);
/* The worker in slot self - 1 is gone (reaped): its idle connections become the master's,
 * those it was serving are closed. Before the slot is released. */
void handoff_worker_gone(Handoff *h, uint32_t self, uint64_t now);
