/* The worker's epoll loop over the listeners and every connection, so accepting, reading
 * and parsing never wait on the app. Sync: the loop runs each request through the app
 * itself, one at a time. Gthread: it hands them to the app threads of gthread.c and does
 * the socket I/O they ask for. Aio (gevent): a Python event loop runs this one a round at a
 * time (aio.c), and the requests run in its greenlets, which ask for the socket I/O as the
 * app threads do, without waiting for it. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "gcorn/aio.h"
#include "gcorn/asgi.h"
#include "gcorn/conn.h"
#include "gcorn/gthread.h"
#include "gcorn/handoff.h"
#include "gcorn/heartbeat.h"
#include "gcorn/hooks.h"
#include "gcorn/log.h"
#include "gcorn/logconfig.h"
#include "gcorn/macro.h"
#include "gcorn/privileges.h"
#include "gcorn/procmem.h"
#include "gcorn/proctitle.h"
#include "gcorn/pylog.h"
#include "gcorn/python.h"
#include "gcorn/reloader.h"
#include "gcorn/statsd.h"
#include "gcorn/worker.h"
#include "gcorn/wsgi.h"

#define EVENTS_MAX 64
/* How often a worker that is done polls for the master's word that its replacement exists. */
#define REPLACEMENT_POLL_MS 20
#define ACCEPT_BATCH 64
/* Accept balancing: a worker holding ACCEPT_SLACK more connections than the least loaded
 * other worker stops listening for up to ACCEPT_YIELD_MS; workers inside one request for
 * ACCEPT_BUSY_MS or more do not count as a place for new connections. */
#define ACCEPT_SLACK 2
#define ACCEPT_YIELD_MS 2
#define ACCEPT_BUSY_MS 5
/* epoll data of a connection: its fd in the low 32 bits, its ConnLink.tag (never 0) in the
 * high ones; the signal pipe and the listeners have small values with no tag. */
#define TAG_SIGNAL 1
#define TAG_RELOAD 2
#define TAG_POOL 3
#define TAG_READY 4
#define TAG_LISTENER_BASE 16
/* gthread: how often the app threads are looked at for one stuck in its request */
#define STUCK_CHECK_MS 250
/* How long accepting pauses after an error that retrying at once would only repeat. */
#define ACCEPT_PAUSE_MS 1000
/* How soon a registration the master's queue had no room for is tried again: the queue is
 * bounded by the socket's send buffer (a few hundred messages), which a burst of new
 * keep-alive connections can fill before the master reads. */
#define HANDOFF_RETRY_MS 2

/* aio: a task's send that leaves less than this queued waits for the round's end (aio_send()) */
#define AIO_HOLD_MAX (16 * 1024)

/* StatsD's durations in microseconds; the connection clock counts milliseconds. */
static uint64_t clock_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

typedef struct TimerList {
        Conn *head, *tail;
} TimerList;

typedef struct Worker {
        const Settings *settings;
        Listener *listeners;
        size_t n_listeners;
        int epfd;
        ConnConfig cfg;
        bool retiring;
        bool await_replacement;         /* retiring by itself: leaves once the master replaced it */
        bool leave_idle;                /* retiring while others serve: idle connections go to the master */
        bool accept_failing;            /* accept() failed and has not worked since: logged once */
        bool take_backlog;              /* retiring: accept what the listeners queued, once */
        bool accepting;
        bool quit;
        TimerList timers[CONN_TIMER_LISTS];
        /* Watched connections by fd: an event is acted on only when its tag matches the
         * connection now at that fd, so an event for one closed earlier in the same batch
         * is dropped, whatever reused its memory or its fd number. */
        Conn **by_fd;
        size_t by_fd_cap;
        uint32_t last_tag;
        size_t n_conns;
        uint64_t requests, max_requests;
        uint64_t beat_every_ms;         /* the longest wait for events */
        uint64_t accept_resume;         /* after EMFILE: when to try accepting again */
        uint64_t stop_deadline;
        pid_t parent;
        uint64_t parent_check;
        HeartbeatSlot *slot;
        Heartbeat *heartbeat;
        bool yielded;                   /* not listening because others hold fewer connections */
        bool arrivals_watched;          /* yielded: the listeners wake it on each new connection */
        Reloader *reloader;             /* --reload */
        uint64_t reload_check;          /* polling: when to stat() the files again */
        /* gthread: the app threads (NULL: sync, the loop runs the app itself) */
        Gthread *pool;
        bool aio;                       /* requests run in a Python event loop's tasks (aio.c) */
        bool offloaded;                 /* pool or aio: requests run elsewhere than the loop */
        Conn *aio_running;              /* aio: the request whose task runs now (NULL: none) */
        uint64_t aio_grace;             /* aio: stopping, the tasks still in requests get until then */
        /* aio: the tasks' small sends wait for the end of the event loop's round (aio_send());
         * the connections holding some, in the order they were held */
        bool aio_hold;
        Conn *held, *held_tail;
        int capacity;                   /* requests that may run at once, elsewhere */
        int in_app;                     /* requests dispatched to them and not done */
        size_t max_conns;               /* --worker-connections */
        uint64_t stuck_check;
        bool all_stuck;                 /* every thread is stuck: the loop stops beating */
        Conn *shown[HEARTBEAT_INFLIGHT_MAX];    /* the requests in the scoreboard's entries */
        uint32_t n_shown, n_unshown;
        size_t n_stuck;                 /* requests stuck past --timeout: a retiring worker
                                         * does not wait for them, unless all are (then the
                                         * watchdog ends it) */
        /* sync: kept-alive connections other workers can take over, and take over theirs
         * (handoff.c); NULL: none */
        Handoff *handoff;
        HandoffFast hf;                 /* its owner words, for the per-request steps */
        bool handoff_full;              /* the table was full once: logged */
        /* Our connection of each entry: a connection taken from us while we were busy can
         * come back to us through the ready queue, and the old Conn must then go. */
        Conn **by_entry;
        bool handoff_retry;             /* a registration found the master's queue full */
        bool handoff_starved;           /* one came without its descriptor, none since: logged */
} Worker;

static int signal_pipe[2] = { -1, -1 };
/* aio: the worker the Python event loop drives */
static Worker *aio_worker;

/* The byte on the signal pipe for the master's TERM with WORKER_TERM_OTHERS_SERVE: no
 * signal has that number. */
#define SIGNAL_TERM_OTHERS_SERVE 0xff

static void on_signal(int sig, siginfo_t *si, void *ctx _unused_) {
        int saved = errno;
        unsigned char b = (unsigned char) sig;

        if (sig == SIGTERM && si && si->si_code == SI_QUEUE && si->si_value.sival_int == WORKER_TERM_OTHERS_SERVE)
                b = SIGNAL_TERM_OTHERS_SERVE;

        (void) !write(signal_pipe[1], &b, 1);
        errno = saved;
}

static void timer_remove(Worker *w, Conn *c) {
        ConnLink *l = conn_link(c);
        TimerList *t;

        if (l->list < 0)
                return;
        t = &w->timers[l->list];
        if (l->prev)
                conn_link(l->prev)->next = l->next;
        else
                t->head = l->next;
        if (l->next)
                conn_link(l->next)->prev = l->prev;
        else
                t->tail = l->prev;
        l->prev = l->next = NULL;
        l->list = -1;
}

/* Files the connection under its current deadline, keeping the list sorted. A connection
 * whose deadline did not change keeps its place (a trickling client does not move). Each
 * list has one timeout for all its members, so a new deadline is nearly always the latest
 * and the walk back from the tail ends at once. */
static void timer_update(Worker *w, Conn *c) {
        ConnLink *l = conn_link(c);
        int which = conn_timer_list(c);
        uint64_t deadline = conn_deadline(c);
        TimerList *t = &w->timers[which];
        Conn *after;

        if (l->list == which && l->filed == deadline)
                return;
        timer_remove(w, c);
        after = t->tail;
        while (after && conn_link(after)->filed > deadline)
                after = conn_link(after)->prev;
        l->list = which;
        l->filed = deadline;
        l->prev = after;
        l->next = after ? conn_link(after)->next : t->head;
        if (l->next)
                conn_link(l->next)->prev = c;
        else
                t->tail = c;
        if (after)
                conn_link(after)->next = c;
        else
                t->head = c;
}

/* aio: c holds an answer for the end of the round (flush_held()). */
static void hold_link(Worker *w, Conn *c) {
        ConnLink *l = conn_link(c);

        l->held = true;
        l->held_next = NULL;
        l->held_prev = w->held_tail;
        if (w->held_tail)
                conn_link(w->held_tail)->held_next = c;
        else
                w->held = c;
        w->held_tail = c;
}

static void hold_unlink(Worker *w, Conn *c) {
        ConnLink *l = conn_link(c);

        if (l->held_prev)
                conn_link(l->held_prev)->held_next = l->held_next;
        else
                w->held = l->held_next;
        if (l->held_next)
                conn_link(l->held_next)->held_prev = l->held_prev;
        else
                w->held_tail = l->held_prev;
        l->held_prev = l->held_next = NULL;
        l->held = false;
}

/* Adds the connection to epoll (level-triggered: input that arrived before is reported), for
 * events: EPOLLIN, or EPOLLOUT while the loop sends an answer (its next request waits in the
 * socket meanwhile). */
static int watch(Worker *w, Conn *c, uint32_t events) {
        ConnLink *l = conn_link(c);
        int fd = conn_fd(c);
        struct epoll_event ev = { .events = events };

        if (l->watched) {
                if (l->events == events)
                        return 0;
                ev.data.u64 = (uint64_t) l->tag << 32 | (uint32_t) fd;
                if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
                        return -errno;
                l->events = events;
                return 0;
        }
        if ((size_t) fd >= w->by_fd_cap) {
                size_t cap = MAX((size_t) fd + 1, w->by_fd_cap * 2);
                Conn **n = reallocarray(w->by_fd, cap, sizeof(Conn *));

                if (!n)
                        return -ENOMEM;
                memset(n + w->by_fd_cap, 0, (cap - w->by_fd_cap) * sizeof(Conn *));
                w->by_fd = n;
                w->by_fd_cap = cap;
        }
        if (++w->last_tag == 0)
                w->last_tag = 1;
        l->tag = w->last_tag;
        ev.data.u64 = (uint64_t) l->tag << 32 | (uint32_t) fd;
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
                return -errno;
        w->by_fd[fd] = c;
        l->watched = true;
        l->events = events;
        return 0;
}

/* The connection an event is for, or NULL when it is stale. */
static Conn *event_conn(Worker *w, uint64_t data) {
        uint32_t fd = (uint32_t) data, tag = (uint32_t) (data >> 32);
        Conn *c = fd < w->by_fd_cap ? w->by_fd[fd] : NULL;

        return c && conn_link(c)->tag == tag ? c : NULL;
}

/* A worker that yielded still counts as a place for new connections: it is back in a few
 * milliseconds. */
static void publish_load(Worker *w) {
        heartbeat_set_load(w->slot, w->accepting || w->yielded, (uint32_t) MIN(w->n_conns, (size_t) UINT32_MAX));
}

/* The answer the loop was finishing is done (error 0) or abandoned: the request ends, and
 * counts, now. */
static void end_stream(Worker *w, Conn *c, int error) {
        ConnLink *l = conn_link(c);
        WsgiResult res = {};
        uint64_t now = conn_clock();

        wsgi_stream_end(c, error, &res);
        heartbeat_count_request(w->slot, (HeartbeatMethod) l->method, res.status, res.body_bytes, now - l->start_ms);
        if (l->start_us)
                statsd_request(res.status, clock_us() - l->start_us);
}

static void close_conn(Worker *w, Conn *c) {
        ConnLink *l = conn_link(c);

        if (conn_stream(c))
                end_stream(w, c, -ECONNRESET);
        if (l->handoff >= 0) {
                /* The master's duplicate keeps the socket open past our close(): the client
                 * must see the end now. Unless another worker took it meanwhile. */
                if (!l->shared_idle || handoff_claim(&w->hf, l->handoff)) {
                        (void) shutdown(conn_fd(c), SHUT_RDWR);
                        handoff_close(w->handoff, l->handoff);
                }
                w->by_entry[handoff_index(l->handoff)] = NULL;
                l->handoff = -2;
                l->shared_idle = false;
        }

        timer_remove(w, c);
        if (_unlikely_(l->held))
                hold_unlink(w, c);
        if (l->watched) {
                /* Before close(): close() leaves the registration alive while another
                 * descriptor of the same socket exists, such as one an app's fork() left in
                 * a child, and epoll would go on reporting a connection that is gone. */
                (void) epoll_ctl(w->epfd, EPOLL_CTL_DEL, conn_fd(c), NULL);
                w->by_fd[conn_fd(c)] = NULL;
                l->watched = false;
        }
        conn_free(c);
        w->n_conns--;
        publish_load(w);
}

/* Closes the connection, lingering first when the client may still be sending. */
static void end_conn(Worker *w, Conn *c) {
        if (conn_stream(c))
                end_stream(w, c, -ECONNRESET);
        if (conn_close_lingering(c) && watch(w, c, EPOLLIN) >= 0) {
                timer_update(w, c);
                return;
        }
        close_conn(w, c);
}

/* Another worker took the connection: this one lets go of its descriptor without touching
 * the socket (close_conn()'s EPOLL_CTL_DEL matters here: the socket stays open elsewhere). */
static void let_go(Worker *w, Conn *c) {
        ConnLink *l = conn_link(c);

        if (l->handoff >= 0 && w->by_entry[handoff_index(l->handoff)] == c)
                w->by_entry[handoff_index(l->handoff)] = NULL;
        l->handoff = -2;
        l->shared_idle = false;
        close_conn(w, c);
}

/* Before touching a connection whose entry says idle: it is ours again, or it was taken. */
static inline bool reclaim(Worker *w, Conn *c) {
        ConnLink *l = conn_link(c);

        if (_likely_(!l->shared_idle))
                return true;
        l->shared_idle = false;
        if (handoff_claim(&w->hf, l->handoff))
                return true;
        let_go(w, c);
        return false;
}

/* The connection is between requests with nothing buffered: from now on any worker may take
 * it. The first time, the master gets its duplicate (one system call per connection); then
 * it is one store. */
static inline void share_idle(Worker *w, Conn *c) {
        ConnLink *l = conn_link(c);
        int64_t t;

        if (_likely_(l->handoff >= 0)) {
                handoff_idle(&w->hf, l->handoff);
                l->shared_idle = true;
                return;
        }
        if (l->handoff != -1)
                return;
        t = handoff_register(w->handoff, conn_fd(c), conn_info(c));
        if (t >= 0) {
                l->handoff = t;
                l->shared_idle = true;
                w->by_entry[handoff_index(t)] = c;
                return;
        }
        if (t == -EAGAIN) {
                w->handoff_retry = true;        /* the master is behind: see retry_shares() */
                return;
        }
        l->handoff = -2;
        if (t == -ENOSPC && !w->handoff_full) {
                log_warning("The table of kept-alive connections is full: new ones stay with their worker alone");
                w->handoff_full = true;
        }
}

/* A worker that yielded still hears of each connection that arrives, edge-triggered (one
 * wake-up per arrival, whatever stays queued) and not exclusive (the kernel still wakes an
 * accepting worker for it too), so it takes its turn again as soon as the others have caught
 * up (accept_some()). Deaf until its ACCEPT_YIELD_MS were over, two workers taking turns
 * in a burst were both off the listeners most of the time: 500 connections arriving at once
 * took over 100 ms to be accepted, four every 2 ms, and the requests of the last ones waited
 * behind the second requests of the first. Without it (an error) the timer still ends the
 * yield. */
static void watch_arrivals(Worker *w, bool on) {
        size_t i;

        if (w->arrivals_watched == on)
                return;
        for (i = 0; i < w->n_listeners; i++) {
                struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = TAG_LISTENER_BASE + i };

                if (!on)
                        (void) epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->listeners[i].fd, NULL);
                else if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->listeners[i].fd, &ev) < 0)
                        break;
        }
        if (on && i < w->n_listeners) {
                while (i-- > 0)
                        (void) epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->listeners[i].fd, NULL);
                return;
        }
        w->arrivals_watched = on;
}

static void set_accepting(Worker *w, bool on) {
        size_t i;

        watch_arrivals(w, false);
        if (w->accepting == on)
                return;
        for (i = 0; i < w->n_listeners; i++) {
                struct epoll_event ev = {
                        .events = EPOLLIN | EPOLLEXCLUSIVE,
                        .data.u64 = TAG_LISTENER_BASE + i,
                };

                if (!on)
                        (void) epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->listeners[i].fd, NULL);
                else if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->listeners[i].fd, &ev) < 0)
                        break;
        }
        if (i == w->n_listeners && w->handoff && handoff_ready_fd(w->handoff) >= 0) {
                /* Connections other workers could not read come like new ones. */
                struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = TAG_READY };

                if (!on)
                        (void) epoll_ctl(w->epfd, EPOLL_CTL_DEL, handoff_ready_fd(w->handoff), NULL);
                else
                        (void) epoll_ctl(w->epfd, EPOLL_CTL_ADD, handoff_ready_fd(w->handoff), &ev);
        }
        if (on && i < w->n_listeners) {
                /* All or none: a listener left in the set while "not accepting" would wake
                 * the loop forever. Tried again after a pause. */
                log_error_errno(errno, "Failed to watch listener %s, pausing accepts for 1s: %m",
                                w->listeners[i].url);
                while (i-- > 0)
                        (void) epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->listeners[i].fd, NULL);
                w->accept_resume = conn_clock() + ACCEPT_PAUSE_MS;
                return;
        }
        w->accepting = on;
        publish_load(w);
}

/* After an accept() error that retrying at once would only repeat. */
static void pause_accepting(Worker *w) {
        set_accepting(w, false);
        w->yielded = false;
        w->accept_resume = now_ms() + ACCEPT_PAUSE_MS;
}

/* The kernel wakes the worker that has waited on the listener the longest, and a worker
 * that is awake takes every connection queued, so a burst of new keep-alive connections can
 * leave one worker with most of them for their whole life. A sync worker inside a long
 * request is no place for a new connection; a gthread or aio worker whose threads or tasks
 * are all busy still reads its connections' requests and runs them in order, so there the
 * wait grows with the connections a worker holds, and only an even split of them evens it:
 * being busy does not take such a worker out of the balance. */
static bool holds_more_than_share(Worker *w, uint64_t now) {
        uint64_t busy_ms = w->offloaded ? (uint64_t) INT64_MAX : ACCEPT_BUSY_MS;
        uint32_t least = heartbeat_least_conns(w->heartbeat, w->slot, now, busy_ms);

        return least != UINT32_MAX && w->n_conns >= (size_t) least + ACCEPT_SLACK;
}

/* Leaves new connections to the others for a moment. Re-adding the listener puts this worker
 * last in the kernel's wake-up order; level-triggered, it still sees what is queued then. */
static void yield_accepting(Worker *w, uint64_t now) {
        w->yielded = true;
        set_accepting(w, false);
        w->accept_resume = now + ACCEPT_YIELD_MS;
        watch_arrivals(w, true);
}

/* A worker that yielded listens again once it no longer holds more than its share. */
static bool may_resume(Worker *w, uint64_t now) {
        return !w->accepting && !w->retiring && w->accept_resume && (!w->max_conns || w->n_conns < w->max_conns) &&
                (now >= w->accept_resume || (w->yielded && !holds_more_than_share(w, now)));
}

static void resume_accepting(Worker *w) {
        w->accept_resume = 0;
        w->yielded = false;
        set_accepting(w, true);
}

static int accept_one(Worker *w, size_t idx, Conn **ret);
static void serve(Worker *w, Conn *c, ConnAction a);

/* The worker stops after its current connections. Called from anywhere, even in the middle
 * of serving a client: what it implies for other clients (taking the backlog) is done by
 * the loop, in take_backlog(). */
static void retire(Worker *w, uint32_t word) {
        if (w->retiring)
                return;
        w->retiring = true;
        w->take_backlog = true;
        __atomic_store_n(&w->slot->retiring, word, __ATOMIC_RELAXED);
        w->stop_deadline = now_ms() + (uint64_t) w->settings->graceful_timeout * 1000;
}

static void start_retiring(Worker *w) {
        retire(w, SLOT_RETIRING);
}

/* Retiring of the worker's own accord rather than on the master's word: it must not leave
 * before its replacement exists (within --graceful-timeout, like the rest of its retiring).
 * The cause goes into the same word, in one store: the master may mark it replaced at once. */
static void retire_for_replacement(Worker *w, RetireCause cause) {
        if (w->retiring)
                return;
        w->await_replacement = true;
        w->leave_idle = true;
        retire(w, SLOT_RETIRING | ((uint32_t) cause << 8));
}

/* Done: no connection left but those of stuck threads (gthread; unless every thread is stuck,
 * which is the watchdog's to end), and replaced if it waits for that. */
static bool may_leave(const Worker *w) {
        return w->retiring && w->n_conns <= w->n_stuck && !w->all_stuck &&
                (!w->await_replacement || SLOT_RETIRING_STATE(heartbeat_load(&w->slot->retiring)) == SLOT_REPLACED);
}

/* A worker that retires while others go on serving (of its own accord, or on the master's
 * TERM for a reload or TTOU) leaves its idle kept-alive connections to the master for the
 * others, rather than keep them until it leaves and then close them under a client that may
 * be sending its next request. On a plain TERM (a stop) they stay: nobody would take them. */
static void release_idle(Worker *w) {
        for (Conn *c = w->timers[1].head, *next; c; c = next) {
                ConnLink *l = conn_link(c);

                next = l->next;
                if (l->handoff < 0 || !conn_idle(c))
                        continue;
                (void) handoff_release(w->handoff, l->handoff);
                let_go(w, c);
        }
}

/* Stops accepting, after taking what the kernel already queued on the listeners: those
 * clients were told the connection is established and must get an answer. */
static void take_backlog(Worker *w) {
        _cleanup_free_ Conn **taken = NULL;
        size_t n = 0, cap = (size_t) MAX(w->settings->backlog, 1);

        w->take_backlog = false;
        if (w->handoff && w->leave_idle)
                release_idle(w);
        /* Only what is queued now, all taken before any is served: serving one at a time
         * would let a client that reconnects as fast as it is answered keep a retiring
         * worker serving for as long as it likes. At most a backlog's worth. */
        taken = calloc(cap, sizeof(Conn *));
        for (size_t i = 0; taken && i < w->n_listeners && w->accepting; i++)
                while (n < cap && w->accepting && accept_one(w, i, &taken[n]) > 0)
                        n++;
        set_accepting(w, false);
        listener_close_bound(w->listeners, w->n_listeners);
        for (size_t i = 0; i < n; i++)
                serve(w, taken[i], conn_on_readable(taken[i]));
}

/* The scoreboard copies the client's address in one move of its full size. */
_Static_assert(sizeof(((ConnInfo *) NULL)->remote_addr) == HEARTBEAT_REMOTE_SIZE, "remote_addr size");

/* The request is done (wsgi_handle() returned r): it counts now, or when the loop has sent
 * the rest of its answer. Returns what the connection does next. */
static inline ConnAction request_end(Worker *w, Conn *c, int r, const WsgiResult *res, HeartbeatMethod method,
                                     uint64_t start, uint64_t start_us, uint64_t now) {
        if (res->pending) {
                /* the loop sends the rest as the client takes it; the request counts when it
                 * is out */
                ConnLink *l = conn_link(c);

                l->method = (int) method;
                l->start_ms = start;
                l->start_us = start_us;
                conn_send_later(c);
                return CONN_WAIT;
        }
        heartbeat_count_request(w->slot, method, res->status, res->body_bytes, now - start);
        if (start_us)
                statsd_request(res->status, clock_us() - start_us);
        if (r < 0)
                return CONN_CLOSE;
        return conn_finish_request(c);
}

static void dispatch(Worker *w, Conn *c, HeartbeatMethod method, uint64_t start, uint64_t start_us);

/* A new connection is added to epoll only when it outlives its first request, so one that
 * sends a request and closes costs no epoll_ctl() at all. */
static void serve(Worker *w, Conn *c, ConnAction a) {
        int r;

        while (a == CONN_DISPATCH) {
                WsgiResult res = {};
                const Request *req = conn_request(c);
                uint64_t now = conn_clock(), start = now, start_us = statsd_enabled() ? clock_us() : 0;
                HeartbeatMethod method = heartbeat_method(req->method.p, req->method.len);

                /* The last request before the limit must already answer "Connection: close":
                 * closing a keep-alive connection after a keep-alive answer races with the
                 * client's next request. */
                if (w->max_requests > 0 && w->requests + 1 >= w->max_requests && !w->retiring) {
                        log_info("Autorestarting worker after current request.");
                        retire_for_replacement(w, RETIRE_MAX_REQUESTS);
                        conn_set_must_close(c);
                }
                log_debug("%.*s %.*s", (int) req->method.len, req->method.p, (int) req->target.len, req->target.p);
                if (w->offloaded) {
                        dispatch(w, c, method, start, start_us);
                        return;
                }
                heartbeat_request_begin(w->slot, req->method.p, req->method.len, req->target.p, req->target.len,
                                        conn_info(c)->remote_addr, now);
                r = wsgi_handle(c, &res);
                now = conn_clock_update();
                heartbeat_request_end(w->slot, now);
                w->requests++;
                a = request_end(w, c, r, &res, method, start, start_us, now);
        }
        if (a == CONN_CLOSE) {
                end_conn(w, c);
                return;
        }
        r = watch(w, c, conn_sending(c) ? EPOLLOUT : EPOLLIN);
        if (r < 0) {
                log_error_errno(r, "Failed to watch a connection: %m");
                close_conn(w, c);
                return;
        }
        timer_update(w, c);
        if (w->handoff && conn_idle(c))
                share_idle(w, c);
}

/* gthread: an app thread runs the request and owns the connection meanwhile (conn.h); the
 * loop leaves it alone, apart from the I/O the thread asks for. It stays in the epoll set
 * (no system call per request): an event for it then is dropped in on_app_event(). Aio: the
 * same, with a task of the Python event loop for the thread. */
static void dispatch(Worker *w, Conn *c, HeartbeatMethod method, uint64_t start, uint64_t start_us) {
        ConnLink *l = conn_link(c);
        const Request *req = conn_request(c);

        timer_remove(w, c);
        l->parked = NULL;
        l->method = (int) method;
        l->start_ms = start;
        l->start_us = start_us;
        l->io = NULL;
        w->requests++;
        if (w->n_shown < HEARTBEAT_INFLIGHT_MAX) {
                l->shown = (int) w->n_shown;
                w->shown[w->n_shown++] = c;
                heartbeat_inflight_set(w->slot, (uint32_t) l->shown, req->method.p, req->method.len, req->target.p,
                                       req->target.len, conn_info(c)->remote_addr, start);
        } else {
                l->shown = -1;
                w->n_unshown++;
        }
        heartbeat_inflight_count(w->slot, w->n_shown, w->n_unshown);
        /* The worker shows as busy (no place for new connections) once every thread is. */
        if (++w->in_app == w->capacity) {
                __atomic_store_n(&w->slot->request_start_ms, start, __ATOMIC_RELAXED);
                heartbeat_set_state(w->slot, SLOT_BUSY);
        }
        if (w->aio)
                aio_dispatch(c);
        else
                gthread_dispatch(w->pool, c);
}

/* Its scoreboard entry goes: the last one takes its place. */
static void unshow(Worker *w, Conn *c) {
        ConnLink *l = conn_link(c);
        uint32_t last = w->n_shown - 1;

        if (l->shown < 0) {
                w->n_unshown--;
        } else {
                if ((uint32_t) l->shown != last) {
                        heartbeat_inflight_move(w->slot, last, (uint32_t) l->shown);
                        w->shown[l->shown] = w->shown[last];
                        conn_link(w->shown[l->shown])->shown = l->shown;
                }
                w->n_shown--;
                l->shown = -1;
        }
        heartbeat_inflight_count(w->slot, w->n_shown, w->n_unshown);
}

/* gthread: the app thread is done with the request; the connection is the loop's again. */
static void app_done(Worker *w, Conn *c) {
        ConnLink *l = conn_link(c);
        WsgiResult res = { .status = l->app_status, .body_bytes = l->app_bytes, .pending = l->app_pending };
        uint64_t now = conn_clock_update();

        unshow(w, c);
        heartbeat_add(&w->slot->requests, 1);
        if (w->in_app-- == w->capacity)
                heartbeat_set_state(w->slot, SLOT_IDLE);
        if (_unlikely_(l->held)) {
                if (res.pending) {
                        /* aio: the answer goes out at the round's end, with the others;
                         * flush_held() goes on from there */
                        l->held_done = true;
                        return;
                }
                /* a failed request's answer (its 500) goes before the close */
                hold_unlink(w, c);
                (void) conn_flush(c);
        }
        serve(w, c, request_end(w, c, l->app_r, &res, (HeartbeatMethod) l->method, l->start_ms, l->start_us, now));
}

/* The I/O an app thread (or a task, aio) waits for is done: it goes on. */
static void io_done(Worker *w, ConnIo *io) {
        if (w->aio)
                aio_io_done(io);
        else
                gthread_io_done(io);
}

/* gthread: the loop does the I/O an app thread waits for, now or when the socket is ready. */
static void app_io(Worker *w, Conn *c, ConnIo *io) {
        ConnLink *l = conn_link(c);
        uint32_t events = conn_io_run(c, io);
        int r = 0;

        if (events != 0) {
                r = watch(w, c, _unlikely_(l->hangup) ? events | EPOLLIN : events);
                if (r >= 0) {
                        l->parked = io;
                        timer_update(w, c);
                        return;
                }
                log_error_errno(r, "Failed to watch a connection: %m");
                io->result = r;
        }
        timer_remove(w, c);
        l->parked = NULL;
        io_done(w, io);
}

/* The deadline of the I/O an app thread waits for passed. */
static void app_io_expired(Worker *w, Conn *c) {
        ConnLink *l = conn_link(c);
        ConnIo *io = l->parked;

        if (conn_io_expired(c, io)) {
                timer_update(w, c);
                return;
        }
        timer_remove(w, c);
        l->parked = NULL;
        io_done(w, io);
}

/* aio: input (or its end) on a connection whose task waits for its client to hang up. A look
 * at the socket, nothing taken, tells the end (or a reset) from the next request: either
 * ends the watch, and only the end is the task's news. Nothing there yet: it goes on. */
static void look_for_hangup(Conn *c) {
        ConnLink *l = conn_link(c);
        ssize_t n;
        char b;

        n = recv(conn_fd(c), &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        l->hangup = false;
        if (n <= 0)
                aio_hung_up(l->io);
}

/* An event for a connection an app thread owns: for the I/O it waits for, if any; else the
 * connection leaves the epoll set until the thread is done (a client that pipelines or
 * closes would otherwise wake the loop again and again). Aio: unless the task waits for
 * the client to hang up, which this loop watches for, in its epoll set. */
static void on_app_event(Worker *w, Conn *c, uint32_t events) {
        ConnLink *l = conn_link(c);

        if (_unlikely_(l->hangup) && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                look_for_hangup(c);
        if (l->parked) {
                app_io(w, c, l->parked);
                return;
        }
        if (_unlikely_(l->hangup)) {
                /* still watched: a finished wait's EPOLLOUT is all that woke the loop */
                if (l->events != EPOLLIN && watch(w, c, EPOLLIN) < 0) {
                        log_error("Failed to watch a connection for its client's hang-up");
                        l->hangup = false;
                } else
                        return;
        }
        (void) epoll_ctl(w->epfd, EPOLL_CTL_DEL, conn_fd(c), NULL);
        w->by_fd[conn_fd(c)] = NULL;
        l->watched = false;
}

/* Messages from the app threads: I/O to do, requests done. */
static void on_pool(Worker *w) {
        uint64_t v;
        Conn *c;

        (void) !read(gthread_fd(w->pool), &v, sizeof(v));
        while ((c = gthread_next(w->pool))) {
                if (conn_link(c)->io)
                        app_io(w, c, conn_link(c)->io);
                else
                        app_done(w, c);
        }
}

/* A connection whose answer the loop finishes can take more: sends, pulls more of the
 * answer from the app while the queue has room, and once all is out ends the request and
 * goes on with the connection's next one. */
/* The loop's turn at an answer whose app is done with it: sends what the socket takes, pulls
 * more from the app's iterable, and ends the request once all is out (the connection goes
 * on to its next request, or closes). True while the answer still waits for the client. */
static bool send_answer(Worker *w, Conn *c) {
        int r;

        r = conn_flush(c);
        if (r == 0 || r == -EAGAIN)
                r = wsgi_stream_pull(c);
        if (r < 0) {
                end_stream(w, c, r);
                end_conn(w, c);
                return false;
        }
        if (r == 1 && !conn_out_pending(c)) {
                end_stream(w, c, 0);
                serve(w, c, conn_finish_request(c));
                return false;
        }
        return true;
}

static void on_writable(Worker *w, Conn *c) {
        if (send_answer(w, c))
                timer_update(w, c);
}

/* Takes one connection off listener idx: 1 and *ret, or 0 when there is none to take now
 * (the queue is empty, or accepting is paused after an error). */
static int accept_one(Worker *w, size_t idx, Conn **ret) {
        const Listener *l = &w->listeners[idx];

        for (;;) {
                struct sockaddr_storage ss;
                socklen_t len = sizeof(ss);
                Conn *c = NULL;
                int fd, r;

                fd = accept4(l->fd, (struct sockaddr *) &ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        if (errno == ECONNABORTED || errno == EPROTO)
                                continue;
                        /* Out of fds or memory, or anything unexpected: the listener stays
                         * readable, and retrying at once would spin and starve the rest. */
                        if (!w->accept_failing)
                                log_error_errno(errno, "accept() failed on %s, pausing accepts for 1s "
                                                "and then each second until it works: %m", l->url);
                        w->accept_failing = true;
                        pause_accepting(w);
                        return 0;
                }
                if (_unlikely_(w->accept_failing)) {
                        log_info("accept() works again on %s", l->url);
                        w->accept_failing = false;
                }
                r = conn_new(fd, l, (struct sockaddr *) &ss, len, &w->cfg, &c);
                if (r < 0) {
                        safe_close(fd);
                        log_error_errno(r, "Failed to set up connection: %m");
                        continue;
                }
                w->n_conns++;
                heartbeat_add(&w->slot->counters.accepted, 1);
                publish_load(w);
                if (_unlikely_(w->max_conns) && w->n_conns >= w->max_conns) {
                        /* --worker-connections: accepting resumes in expire() once one closes */
                        set_accepting(w, false);
                        w->accept_resume = conn_clock();
                }
                *ret = c;
                return 1;
        }
}

static void accept_some(Worker *w, size_t idx, int max) {
        /* yielded, and a connection arrived (watch_arrivals()): its turn again? */
        if (_unlikely_(!w->accepting)) {
                if (!w->yielded || !may_resume(w, conn_clock()))
                        return;
                resume_accepting(w);
        }
        for (int i = 0; i < max && w->accepting && !w->retiring; i++) {
                Conn *c;

                if (accept_one(w, idx, &c) <= 0)
                        return;
                /* Serve what the client already sent before taking the next connection:
                 * connections still in the kernel's queue can go to an idle worker, rather
                 * than wait here behind a slow request (or die with this worker). */
                serve(w, c, conn_on_readable(c));
                if (!w->retiring && w->accepting && holds_more_than_share(w, conn_clock()))
                        yield_accepting(w, conn_clock());
        }
}

/* One kept-alive connection from the ready queue, served now: 1, or 0 when the queue had none
 * for this worker. */
static int take_ready(Worker *w) {
        ConnInfo info;
        Conn *c;
        int fd, r;
        int64_t t;

        t = handoff_receive(w->handoff, &fd, &info);
        if (t == -EPIPE) {
                (void) epoll_ctl(w->epfd, EPOLL_CTL_DEL, handoff_ready_fd(w->handoff), NULL);
                handoff_ready_gone(w->handoff);
                return 0;
        }
        if (t == -ESTALE)
                return 1;       /* one the queue held that was no longer to be had */
        if (t == -EMFILE) {
                /* Given back to the master, which offers it again. Until this worker has
                 * descriptors again it would win that offer too and give it back in a loop,
                 * and accept() would fail all the same: it steps aside as after a failed
                 * accept(), and tries again in a second. */
                if (!w->handoff_starved) {
                        struct rlimit rl = {};

                        (void) getrlimit(RLIMIT_NOFILE, &rl);
                        log_error("Worker out of file descriptors (RLIMIT_NOFILE %llu): a kept-alive "
                                  "connection passed on to it came without its descriptor; it goes back "
                                  "to the master for another worker, and this worker takes no connection "
                                  "for 1s and then each second until it can",
                                  (unsigned long long) rl.rlim_cur);
                }
                w->handoff_starved = true;
                pause_accepting(w);
                return 0;
        }
        if (t < 0)
                return 0;
        if (_unlikely_(w->handoff_starved)) {
                log_info("Worker takes kept-alive connections from the others again");
                w->handoff_starved = false;
        }
        c = w->by_entry[handoff_index(t)];
        if (c)
                let_go(w, c);   /* ours before: the entry says it is ours again, through c */
        r = conn_adopt(fd, &info, &w->cfg, &c);
        if (r < 0) {
                log_error_errno(r, "Failed to take over a connection: %m");
                (void) shutdown(fd, SHUT_RDWR);
                handoff_close(w->handoff, t);
                safe_close(fd);
                return 1;
        }
        conn_link(c)->handoff = t;
        w->by_entry[handoff_index(t)] = c;
        w->n_conns++;
        publish_load(w);
        serve(w, c, conn_on_readable(c));
        return 1;
}

/* Kept-alive connections whose worker could not read them (busy, stopped, dead): their next
 * requests wait in their sockets, and have waited longest of all. The queue is taken until it
 * is empty, each connection served before the next is taken (as accept_some()): one per round
 * drained it slower than a worker's own connections refill its rounds, and a worker that
 * enters a slow request leaves the rest in the queue for the other workers. */
static void on_ready(Worker *w) {
        for (int i = 0; i < ACCEPT_BATCH && !w->retiring && !w->quit; i++)
                if (!take_ready(w))
                        return;
}

static void handle_signals(Worker *w) {
        unsigned char buf[32];
        ssize_t n;

        while ((n = read(signal_pipe[0], buf, sizeof(buf))) > 0)
                for (ssize_t i = 0; i < n; i++)
                        switch (buf[i]) {
                        case SIGTERM:
                        case SIGNAL_TERM_OTHERS_SERVE:
                                /* The master's word: no replacement comes (stop, reload, TTOU). */
                                start_retiring(w);
                                w->await_replacement = false;
                                w->leave_idle = buf[i] == SIGNAL_TERM_OTHERS_SERVE;
                                break;
                        case SIGINT:
                        case SIGQUIT:
                                hooks_worker_int();
                                w->quit = true;
                                break;
                        case SIGUSR1:
                                (void) log_setup(NULL, w->settings->errorlog, w->settings->accesslog,
                                                 w->settings->log_target, NULL);
                                logconfig_reopen(w->settings);
                                break;
                        default:
                                break;
                        }
}

/* A watched file changed: this worker retires, and its replacement imports the new code. */
static void check_reload(Worker *w) {
        const char *path;

        if (!reloader_changed(w->reloader, &path))
                return;
        log_info("Worker reloading: %s modified", path);
        if (reloader_fd(w->reloader) >= 0)
                (void) epoll_ctl(w->epfd, EPOLL_CTL_DEL, reloader_fd(w->reloader), NULL);
        w->reloader = reloader_free(w->reloader);
        retire_for_replacement(w, RETIRE_RELOAD);
}

/* --max-worker-memory: a worker past it finishes its requests and goes; the master counts
 * a retiring worker out and forks its replacement at once. */
static void check_memory(Worker *w) {
        uint64_t own;

        if (w->settings->max_worker_memory <= 0 || w->retiring || procmem_own_kib(0, &own) < 0)
                return;
        if (own <= (uint64_t) w->settings->max_worker_memory * 1024)
                return;
        log_warning("Worker (pid:%d) holds %" PRIu64 " MiB of its own memory, over --max-worker-memory %d MiB: "
                    "replacing it after its requests", (int) getpid(), own / 1024, w->settings->max_worker_memory);
        retire_for_replacement(w, RETIRE_MEMORY);
}

/* gthread: a request stuck longer than --timeout is logged with its thread's stack, and the
 * worker is replaced after its other requests (the master forks the replacement first, as
 * for --max-requests). The loop goes on beating for the threads still working; once every
 * thread is stuck it stops, and the master's watchdog ends the worker as it would a sync
 * worker stuck in its one request. */
static void check_stuck(Worker *w, uint64_t now) {
        unsigned fresh = 0, stuck;

        w->stuck_check = now + STUCK_CHECK_MS;
        stuck = gthread_stuck(w->pool, now, (uint64_t) w->settings->timeout * 1000, &fresh);
        w->all_stuck = stuck >= (unsigned) w->settings->threads;
        w->n_stuck = stuck;
        if (fresh > 0)
                retire_for_replacement(w, RETIRE_STUCK);
}

/* Registrations the master's queue had no room for, again: the idle connections are on the
 * keep-alive timer list. */
static void retry_shares(Worker *w) {
        w->handoff_retry = false;
        for (Conn *c = w->timers[1].head, *next; c && !w->handoff_retry; c = next) {
                next = conn_link(c)->next;
                if (conn_link(c)->handoff == -1 && conn_idle(c))
                        share_idle(w, c);
        }
}

static void expire(Worker *w) {
        uint64_t now = conn_clock();

        if (_unlikely_(w->handoff_retry))
                retry_shares(w);

        for (size_t i = 0; i < ELEMENTSOF(w->timers); i++)
                while (w->timers[i].head && conn_deadline(w->timers[i].head) <= now) {
                        Conn *c = w->timers[i].head;

                        if (w->offloaded && conn_in_app(c)) {
                                app_io_expired(w, c);
                                continue;
                        }
                        if (!reclaim(w, c))
                                continue;
                        /* A long request elsewhere in this worker can outlast the keep-alive
                         * time of a connection whose next request is already here; a slow
                         * reader that took some of its answer is not stalled. */
                        if (conn_idle_has_input(c) || conn_send_moving(c)) {
                                timer_update(w, c);
                                if (w->handoff && conn_idle(c))
                                        share_idle(w, c);
                                continue;
                        }
                        conn_on_timeout(c);
                        if (conn_stream(c))
                                end_stream(w, c, -ETIMEDOUT);
                        if (i == 2)
                                close_conn(w, c);
                        else
                                end_conn(w, c);
                }
        if (w->pool && w->settings->timeout > 0 && now >= w->stuck_check)
                check_stuck(w, now);
        if (may_resume(w, now))
                resume_accepting(w);
        if (w->retiring && now >= w->stop_deadline)
                w->quit = true;
        if (w->reloader && reloader_fd(w->reloader) < 0 && now >= w->reload_check) {
                w->reload_check = now + 1000;
                check_reload(w);
        }
        /* Orphaned: the master is gone, nobody would ever stop us. Checked once a second;
         * PR_SET_PDEATHSIG covers the common case at once. */
        if (now >= w->parent_check) {
                w->parent_check = now + 1000;
                if (getppid() != w->parent) {
                        start_retiring(w);
                        w->await_replacement = false;
                }
                check_memory(w);
        }
}

static int next_timeout(const Worker *w) {
        /* An idle worker still wakes to beat, at least twice per --timeout, or a short
         * timeout would let the watchdog take a scheduling delay for a hang. */
        uint64_t now = conn_clock(), next = now + w->beat_every_ms;

        for (size_t i = 0; i < ELEMENTSOF(w->timers); i++)
                if (w->timers[i].head)
                        next = MIN(next, conn_deadline(w->timers[i].head));
        if (w->accept_resume)
                next = MIN(next, w->accept_resume);
        if (w->handoff_retry)
                next = MIN(next, now + HANDOFF_RETRY_MS);
        /* Done, and waiting for the master to fork the replacement (its next tick). */
        if (w->retiring && w->n_conns <= w->n_stuck)
                next = MIN(next, now + REPLACEMENT_POLL_MS);
        return next > now ? (int) (next - now) : 0;
}

static int setup_signals(void) {
        struct sigaction sa = { .sa_sigaction = on_signal, .sa_flags = SA_RESTART | SA_SIGINFO };
        static const int sigs[] = { SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGHUP, SIGUSR2, SIGTTIN, SIGTTOU, SIGWINCH };
        sigset_t all;

        if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                if (sigaction(sigs[i], &sa, NULL) < 0)
                        return -errno;
        signal(SIGCHLD, SIG_DFL);
        /* The arbiter blocks everything for its signalfd; the app (and what it spawns) must
         * not inherit that mask. */
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        return 0;
}

/* One round of the loop: waits for events at most timeout_ms (0: only looks), handles
 * them, then the deadlines. False when the loop cannot go on. */
/* Inlined into the sync and gthread loop: their rounds cost no call. */
static inline __attribute__((always_inline)) bool loop_round(Worker *w, int timeout_ms) {
        struct epoll_event events[EVENTS_MAX];
        int n;

        if (!w->all_stuck)
                heartbeat_beat(w->slot, conn_clock());
        n = epoll_wait(w->epfd, events, EVENTS_MAX, timeout_ms);
        (void) conn_clock_update();

        if (n < 0 && errno != EINTR) {
                log_error_errno(errno, "epoll_wait() failed: %m");
                return false;
        }
        /* One GIL round trip per batch of ready events rather than per request; it
         * is dropped again before epoll_wait() and around every blocking call. With
         * app threads the loop takes it only where it runs Python. */
        if (n > 0 && !w->pool)
                python_gil_acquire();
        for (int i = 0; i < n; i++) {
                uint64_t tag = events[i].data.u64;

                if (tag == TAG_SIGNAL) {
                        python_gil_acquire();
                        handle_signals(w);
                        python_gil_release();
                } else if (tag == TAG_RELOAD) {
                        python_gil_acquire();
                        check_reload(w);
                        python_gil_release();
                } else if (tag >= TAG_LISTENER_BASE && tag < TAG_LISTENER_BASE + w->n_listeners)
                        accept_some(w, (size_t) (tag - TAG_LISTENER_BASE), ACCEPT_BATCH);
                else if (tag == TAG_POOL)
                        on_pool(w);
                else if (tag == TAG_READY)
                        on_ready(w);
                else {
                        Conn *c = event_conn(w, tag);

                        if (c && !reclaim(w, c))
                                ;
                        else if (c && w->offloaded && conn_in_app(c))
                                on_app_event(w, c, events[i].events);
                        else if (c && conn_sending(c))
                                on_writable(w, c);
                        else if (c)
                                serve(w, c, conn_on_readable(c));
                }
                if (w->quit)
                        break;
        }
        if (n > 0 && !w->pool)
                python_gil_release();
        expire(w);
        if (w->take_backlog) {
                python_gil_acquire();
                take_backlog(w);
                python_gil_release();
        }
        return true;
}

static void worker_loop(Worker *w) {
        while (!w->quit && !may_leave(w))
                if (!loop_round(w, next_timeout(w)))
                        break;
}

/* aio: the worker is done. As gthread's threads, the tasks still inside a request when the
 * worker must go (the graceful timeout, a fast stop) get a moment more. */
static bool aio_done(Worker *w) {
        if (!w->quit)
                return may_leave(w);
        if (w->in_app == 0)
                return true;
        if (!w->aio_grace)
                w->aio_grace = conn_clock() + 1000;
        return conn_clock() >= w->aio_grace;
}

/* aio: the start of a step is the end of the event loop's round, whose tasks have run: the
 * answers they held (aio_send()) go out now, one connection after the other, in the order
 * they were held. */
static void flush_held(Worker *w) {
        Conn *c;
        int r;

        while ((c = w->held)) {
                ConnLink *l = conn_link(c);

                hold_unlink(w, c);
                if (!l->held_done) {
                        /* its task goes on: what the socket does not take now waits for the
                         * task's next send, wait or end, as any queued answer does */
                        (void) conn_flush(c);
                        continue;
                }
                /* its task ended: app_done() left the rest here */
                l->held_done = false;
                if (!send_answer(w, c))
                        continue;
                /* the client takes its time: the loop sends the rest as it does */
                conn_send_later(c);
                timer_update(w, c);
                r = watch(w, c, EPOLLOUT);
                if (r < 0) {
                        log_error_errno(r, "Failed to watch a connection: %m");
                        close_conn(w, c);
                }
        }
}

/* aio: the Python event loop's call, when the epoll fd is readable or the time it was told
 * has come. */
int worker_aio_step(void) {
        Worker *w = aio_worker;

        /* The round beats with the clock of the last wait's end, which for the sync loop is
         * now; here the wait was the event loop's. */
        (void) conn_clock_update();
        flush_held(w);
        if (aio_done(w) || !loop_round(w, 0) || aio_done(w))
                return -1;
        return w->quit ? 10 : next_timeout(w);
}

/* A task runs c's request now (NULL: the event loop itself runs). A task that keeps the loop
 * from running (a busy loop, a call gevent did not patch) stops the heartbeat, and the
 * master's watchdog then names its request, as for a stuck sync worker. */
void worker_aio_running(Conn *c) {
        Worker *w = aio_worker;
        ConnLink *l;

        if (!c) {
                if (w->aio_running)
                        heartbeat_set_state(w->slot, SLOT_IDLE);
                w->aio_running = NULL;
                return;
        }
        l = conn_link(c);
        if (l->shown > 0) {
                /* the watchdog names the first entry in flight: this one goes there */
                Conn *first = w->shown[0];
                ConnLink *fl = conn_link(first);
                const Request *q = conn_request(c), *fq = conn_request(first);

                heartbeat_inflight_set(w->slot, (uint32_t) l->shown, fq->method.p, fq->method.len, fq->target.p,
                                       fq->target.len, conn_info(first)->remote_addr, fl->start_ms);
                heartbeat_inflight_set(w->slot, 0, q->method.p, q->method.len, q->target.p, q->target.len,
                                       conn_info(c)->remote_addr, l->start_ms);
                w->shown[l->shown] = first;
                fl->shown = l->shown;
                w->shown[0] = c;
                l->shown = 0;
        }
        __atomic_store_n(&w->slot->request_start_ms, l->start_ms, __ATOMIC_RELAXED);
        if (!w->aio_running)
                heartbeat_set_state(w->slot, SLOT_BUSY);
        w->aio_running = c;
}

bool worker_aio_retiring(void) {
        return aio_worker->retiring;
}

int worker_aio_fd(void) {
        return aio_worker->epfd;
}

void worker_aio_hold(bool on) {
        aio_worker->aio_hold = on;
}

/* aio: a task's send, with worker_aio_hold(). A small one (the head and body of most
 * answers) is held in the connection's queue until the event loop's round ends, when
 * flush_held() sends what the round's tasks answered, back to back: still one sendmsg() per
 * answer, but not each between two requests' Python. Each send wakes its client, and on
 * loopback (or a LAN with fast clients) the client's next request comes back at once: sends
 * spread over the round cost a wake-up of the client and the processing of its answer in the
 * middle of the next request's Python each time (under load, about 7 µs more system time per
 * FastAPI hello than uvicorn, whose transports queue their writes for the end of the loop's
 * iteration just so). A larger answer goes at once, behind what its connection held. */
static void aio_send(Worker *w, Conn *c, ConnIo *io) {
        ConnLink *l = conn_link(c);
        size_t len = conn_out_mem(c);
        bool first;
        int r;

        for (int i = 0; i < io->iovcnt && len < AIO_HOLD_MAX; i++)
                len += io->iov[i].iov_len;
        if (len < AIO_HOLD_MAX) {
                io->result = conn_queue(c, io->iov, io->iovcnt);
                if (io->result < 0 || l->held)
                        return;
                first = !w->held;
                hold_link(w, c);
                if (first)
                        aio_held();
                return;
        }
        io->wait = false;
        (void) conn_io_run(c, io);
        if (l->held && io->result >= 0) {
                r = conn_flush(c);
                if (r < 0 && r != -EAGAIN)
                        io->result = r;
        }
}

/* aio: on the loop's thread, in a task's call: I/O done now, never waited for. A body read
 * that would wait parks the request's own ConnIo (conn_link()->io) for the loop and returns
 * -EAGAIN; the task waits for its wake-up (aio_io_done()) and reads again. */
static void aio_offload(Conn *c, ConnIo *io) {
        ConnIo *mine = conn_link(c)->io;

        if (io->op == CONN_IO_SEND && aio_worker->aio_hold) {
                aio_send(aio_worker, c, io);
                return;
        }
        if (io->op != CONN_IO_FILL) {
                /* a send queues what the socket does not take; the task waits for the
                 * queue to drain itself (worker_aio_wait()) */
                io->wait = false;
                (void) conn_io_run(c, io);
                return;
        }
        if (mine->done && mine->result < 0 && mine->op == CONN_IO_FILL) {
                /* the wait failed (timed out): that is the read's result */
                mine->done = false;
                io->result = mine->result;
                return;
        }
        io->result = worker_aio_wait(c, CONN_IO_FILL) > 0 ? -EAGAIN : mine->result;
}

/* aio: the connection is in the epoll set from its last request on (or from now, for its
 * first), watched for input: its client's hang-up wakes this loop, which looks at it
 * (on_app_event()), rather than a registration of the socket in the Python event loop per
 * request (each an epoll_ctl() there to add it and more to take it out). */
int worker_aio_watch_hangup(Conn *c, bool on) {
        ConnLink *l = conn_link(c);
        int r;

        l->hangup = on;
        if (!on || (l->watched && (l->events & EPOLLIN)))
                return 0;
        r = watch(aio_worker, c, l->parked ? l->events | EPOLLIN : EPOLLIN);
        if (r < 0)
                l->hangup = false;
        return r;
}

int worker_aio_wait(Conn *c, ConnIoOp op) {
        Worker *w = aio_worker;
        ConnLink *l = conn_link(c);
        ConnIo *io = l->io;
        uint32_t events;
        int r;

        *io = (ConnIo) { .op = op, .owner = io->owner };
        events = conn_io_run(c, io);
        if (events == 0)
                return 0;
        r = watch(w, c, _unlikely_(l->hangup) ? events | EPOLLIN : events);
        if (r < 0) {
                log_error_errno(r, "Failed to watch a connection: %m");
                io->result = r;
                return 0;
        }
        l->parked = io;
        timer_update(w, c);
        return 1;
}

void worker_aio_done(Conn *c, int r, const WsgiResult *res) {
        ConnLink *l = conn_link(c);

        l->hangup = false;
        if (l->parked) {
                timer_remove(aio_worker, c);
                l->parked = NULL;
        }
        if (aio_worker->aio_running == c)
                worker_aio_running(NULL);
        l->io = NULL;
        l->app_r = r;
        l->app_status = res->status;
        l->app_bytes = res->body_bytes;
        l->app_pending = res->pending;
        app_done(aio_worker, c);
}

static void free_timers(Worker *w) {
        for (size_t i = 0; i < ELEMENTSOF(w->timers); i++)
                while (w->timers[i].head) {
                        Conn *c = w->timers[i].head;

                        /* an app thread's, waiting for the client: the thread still owns it */
                        if (w->offloaded && conn_in_app(c))
                                timer_remove(w, c);
                        else
                                close_conn(w, c);
                }
}

int worker_run(const WorkerContext *ctx) {
        const Settings *s = ctx->settings;
        Worker w = {
                .settings = s,
                .listeners = ctx->listeners,
                .n_listeners = ctx->n_listeners,
                .epfd = -1,
                .parent = ctx->parent,
                .slot = ctx->slot,
                .heartbeat = ctx->heartbeat,
        };
        void *app = ctx->app;
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_SIGNAL };
        void *loaded = NULL;
        struct timespec import_start;
        _cleanup_(allowlist_freep) AllowList *proxy_allow = NULL;
        int r;

        /* At once: the master's duplicates of other workers' connections go. */
        if (ctx->handoff)
                handoff_worker_init(ctx->handoff, (uint32_t) heartbeat_slot_index(ctx->heartbeat, ctx->slot) + 1);
        log_set_identity(s->proc_name, ctx->generation);
        /* Before PR_SET_PDEATHSIG, which a change of user clears, and before the app runs. */
        r = privileges_drop(s);
        if (r < 0) {
                snprintf(w.slot->error, sizeof(w.slot->error), "Failed to switch to user %s: %s", strna(s->user),
                         strerror(-r));
                return WORKER_BOOT_ERROR;
        }
        (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != w.parent)
                return 0;       /* the master died before PR_SET_PDEATHSIG could tell */
        r = setup_signals();
        if (r < 0)
                return log_error_errno(r, "Failed to set up signal handling: %m"), WORKER_BOOT_ERROR;
        proctitle_set("gcorn: worker [%s]", s->proc_name ? s->proc_name : s->wsgi_app);
        log_info("Booting worker with pid: %d", (int) getpid());
        if (hooks_post_fork(w.slot->error, sizeof(w.slot->error)) < 0)
                return WORKER_BOOT_ERROR;

        /* Before the import, so that what the app logs while loading is routed too. */
        (void) pylog_install();
        /* Before the import too, so that the app's blocking calls are gevent's (with
         * --preload the master imported it: see aio_gevent_check()). */
        if (settings_gevent(s) && aio_gevent_patch(w.slot->error, sizeof(w.slot->error)) < 0)
                return WORKER_BOOT_ERROR;
        clock_gettime(CLOCK_REALTIME, &import_start);
        if (!app) {
                _cleanup_free_ char *error = NULL;

                r = python_load_app(s->wsgi_app, &loaded, &error);
                if (r < 0 && s->reload && reloader_fail_app(error ? error : "Failed to load the application.",
                                                            &loaded) >= 0) {
                        log_error("%s", error ? error : "Failed to load the application.");
                        log_warning("--reload: answering 500 until a file changes");
                        r = 0;
                }
                if (r < 0) {
                        const char *why = error ? error : "Failed to load the application.";

                        log_error("%s", why);
                        snprintf(w.slot->error, sizeof(w.slot->error), "%s", why);
                        return WORKER_BOOT_ERROR;
                }
                app = loaded;
        }
        r = wsgi_init(app, s);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the WSGI layer: %m");
                return WORKER_BOOT_ERROR;
        }

        r = allowlist_new(s->proxy_allow_ips, &proxy_allow);
        if (r < 0) {
                log_error_errno(r, "Failed to read proxy_allow_ips: %m");
                return WORKER_BOOT_ERROR;
        }
        w.cfg = (ConnConfig) {
                .limits = {
                        .request_line = (size_t) s->limit_request_line,
                        .fields = (size_t) s->limit_request_fields,
                        .field_size = (size_t) s->limit_request_field_size,
                        .body = s->limit_request_body,
                        .strip_header_spaces = s->strip_header_spaces,
                        .permit_obsolete_folding = s->permit_obsolete_folding,
                        .casefold_http_method = s->casefold_http_method,
                        .permit_unconventional_http_method = s->permit_unconventional_http_method,
                        .header_map = strcmp(s->header_map, "refuse") == 0 ? HEADER_MAP_REFUSE :
                                      strcmp(s->header_map, "dangerous") == 0 ? HEADER_MAP_DANGEROUS :
                                      HEADER_MAP_DROP,
                        .forwarder_headers = s->forwarder_headers,
                },
                .head_timeout_ms = (s->timeout > 0 ? s->timeout : 30) * 1000,
                .keepalive_ms = s->keepalive * 1000,
                .io_timeout_ms = (s->timeout > 0 ? s->timeout : 30) * 1000,
                .body_buffer_max = (size_t) s->buffer_request_body,
                .out_max = (size_t) s->buffer_response,
                .spool_max = (uint64_t) s->spool_request_body,
                .spool_worker_max = (uint64_t) s->spool_worker_max,
                .spool_dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
                .retiring = &w.retiring,
                .slot = ctx->slot,
                .interrupted = python_check_signals,
                .proxy_mode = s->proxy_protocol ? proxy_mode_from_string(s->proxy_protocol) : PROXY_OFF,
                .proxy_allow = proxy_allow,
        };
        w.beat_every_ms = s->timeout > 0 ? MIN((uint64_t) 1000, (uint64_t) s->timeout * 1000 / 2) : 1000;
        if (s->max_requests > 0) {
                unsigned jitter = 0;

                if (s->max_requests_jitter > 0) {
                        struct timespec ts;

                        clock_gettime(CLOCK_MONOTONIC, &ts);
                        srandom((unsigned) (ts.tv_nsec ^ getpid()));
                        jitter = (unsigned) random() % ((unsigned) s->max_requests_jitter + 1);
                }
                w.max_requests = (uint64_t) s->max_requests + jitter;
        }

        w.epfd = epoll_create1(EPOLL_CLOEXEC);
        if (w.epfd < 0) {
                log_error_errno(errno, "epoll_create1() failed: %m");
                return WORKER_BOOT_ERROR;
        }
        if (epoll_ctl(w.epfd, EPOLL_CTL_ADD, signal_pipe[0], &ev) < 0) {
                log_error_errno(errno, "epoll_ctl() failed: %m");
                return WORKER_BOOT_ERROR;
        }
        if (s->reload) {
                struct epoll_event rev = { .events = EPOLLIN, .data.u64 = TAG_RELOAD };

                /* With the app imported: its modules are the files to watch. */
                r = reloader_new(s, &import_start, &w.reloader);
                if (r < 0)
                        return WORKER_BOOT_ERROR;
                if (reloader_fd(w.reloader) >= 0 &&
                    epoll_ctl(w.epfd, EPOLL_CTL_ADD, reloader_fd(w.reloader), &rev) < 0) {
                        log_error_errno(errno, "epoll_ctl() failed: %m");
                        w.reloader = reloader_free(w.reloader);
                        return WORKER_BOOT_ERROR;
                }
        }
        /* Dumps every thread's Python stack when the master sends SIGABRT to a hung worker. */
        (void) python_enable_faulthandler(log_error_fd());
        if (hooks_post_worker_init(w.slot->error, sizeof(w.slot->error)) < 0)
                return WORKER_BOOT_ERROR;
        if (settings_threaded(s)) {
                struct epoll_event pev = { .events = EPOLLIN, .data.u64 = TAG_POOL };

                r = gthread_new((unsigned) s->threads, &w.pool);
                if (r < 0) {
                        log_error_errno(r, "Failed to start the app threads: %m");
                        return WORKER_BOOT_ERROR;
                }
                if (epoll_ctl(w.epfd, EPOLL_CTL_ADD, gthread_fd(w.pool), &pev) < 0) {
                        log_error_errno(errno, "epoll_ctl() failed: %m");
                        return WORKER_BOOT_ERROR;
                }
                w.cfg.offload = gthread_offload;
                w.max_conns = (size_t) s->worker_connections;
                w.capacity = s->threads;
        } else if (settings_gevent(s) || settings_asgi(s)) {
                w.aio = true;
                w.cfg.offload = aio_offload;
                w.max_conns = (size_t) s->worker_connections;
                /* busy is shown while a task runs (worker_aio_running()), not by count */
                w.capacity = INT_MAX;
                aio_worker = &w;
        }
        w.offloaded = w.pool || w.aio;
        /* The app's lifespan startup comes before the worker counts as booted: a failed
         * one fails the boot. */
        if (settings_asgi(s) && asgi_startup(app, s, w.slot->error, sizeof(w.slot->error)) < 0)
                return WORKER_BOOT_ERROR;
        if (ctx->handoff && handoff_applies(s)) {
                w.by_entry = calloc(handoff_entries(ctx->handoff), sizeof(Conn *));
                if (w.by_entry) {
                        w.handoff = ctx->handoff;
                        handoff_fast(w.handoff, &w.hf);
                }
        }
        heartbeat_beat(w.slot, conn_clock_update());
        heartbeat_set_state(w.slot, SLOT_IDLE);
        (void) !write(ctx->boot_fd, "", 1);
        set_accepting(&w, true);
        if (w.reloader)
                check_reload(&w);

        if (w.aio && settings_asgi(s))
                asgi_run();
        else if (w.aio)
                aio_run(app);
        else
                worker_loop(&w);

        if (w.aio && w.in_app > 0) {
                /* Tasks are still inside requests (the graceful timeout ran out): their
                 * connections are theirs, and Python cannot be finalised under them. */
                log_warning("Worker exiting (pid: %d) with requests still running in its greenlets", (int) getpid());
                hooks_worker_exit();
                log_errors_flush();
                _exit(0);
        }
        free_timers(&w);
        /* Requests known to be stuck are not waited for (the watchdog would take the wait
         * for a hang); after a fast stop, the others get a moment. */
        if (!gthread_stop(w.pool, w.n_stuck > 0 ? 0 : 1000)) {
                /* A thread is still inside a request (stuck, or the stop was fast): Python
                 * cannot be finalised under it, nor its connection freed. */
                log_warning("Worker exiting (pid: %d) with requests still running in its threads", (int) getpid());
                hooks_worker_exit();
                _exit(0);
        }
        w.pool = NULL;
        w.reloader = reloader_free(w.reloader);
        free(w.by_fd);
        free(w.by_entry);
        safe_close(w.epfd);
        wsgi_done();
        log_info("Worker exiting (pid: %d)", (int) getpid());
        hooks_worker_exit();
        /* Graceful exits run atexit handlers and logging.shutdown(); a fast one does not. */
        if (!w.quit || w.retiring)
                (void) python_finalize();
        /* wsgi.errors text still waiting for the rest of its line would die with the process. */
        log_errors_flush();
        return 0;
}
