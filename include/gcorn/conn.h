/* One client connection of a worker: socket, read buffer, keep-alive and pipelining state,
 * timeouts. The worker's epoll loop drives connections until a request head (and its body,
 * up to a bound) is in; the WSGI layer then reads the body and queues the answer through the
 * calls below while it runs the app, and the loop finishes sending what the client has not
 * taken when the app returns.
 *
 * Both ways the bytes go through bounded buffers of the connection: the body buffer (or
 * spool file) the loop fills before dispatch, and the output queue the loop drains. They
 * are the connection's, not the worker kind's: a worker kind that runs the app elsewhere
 * than the loop consumes and produces through the same buffers while the loop owns the
 * socket. Only a body larger than the buffer, and an answer past the queue's bound written
 * with no way to hand the rest to the loop, wait on the client in the app's call.
 *
 * Nothing here touches Python: callers release the GIL around the calls that may wait.
 *
 * Who owns a connection (gthread): the worker's loop owns every connection, except one whose
 * request an app thread runs (CONN_DISPATCH handed to the pool in gthread.c): from the
 * dispatch until the thread hands it back, the thread owns it. The app thread never touches
 * the socket: for the calls below that need it (a body read past what is buffered, a send),
 * it lends the connection back to the loop for that one operation (ConnConfig.offload,
 * conn_io_run()) and waits, GIL released, until the loop is done with it. The last bytes of
 * an answer that fit the output queue are only queued by the thread (conn_send_last()), for
 * the loop to send after the hand-back. So one thread at a
 * time owns a connection and nothing in it needs a lock; the hand-offs themselves go through
 * the pool's mutex, which is held for nothing else. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "gcorn/request.h"

typedef struct Conn Conn;

/* Addresses as the environ wants them, filled in at accept. */
typedef struct ConnInfo {
        char remote_addr[64];           /* "127.0.0.1", "::1"; "" for UNIX sockets */
        char remote_port[8];            /* "54321"; "" for UNIX sockets */
        char server_name[64];           /* the bound address's host, as Gunicorn sets it */
        char server_port[8];            /* "8000"; "" for UNIX sockets */
        bool is_unix;
        /* After a PROXY protocol header (--proxy-protocol): */
        const char *proxy_protocol;     /* "TCP4", "TCP6", "UNKNOWN", "LOCAL", "UNSPEC"; NULL: none */
        char proxy_addr[64];            /* the destination it names ("" when none) */
        char proxy_port[8];
        char peer_addr[64];             /* the socket's peer, when remote_addr is the named client */
} ConnInfo;

const ConnInfo *conn_info(const Conn *c);

/* The request whose head is complete; valid until the response is done. */
const Request *conn_request(const Conn *c);

/* Reads up to n decoded body bytes. Sends "HTTP/1.1 100 Continue" first when the client
 * asked for it, nothing has been read yet and no byte of the response has gone out (an
 * interim response after the final head would land inside the body). Blocks at most
 * --timeout per stall. Returns the count, 0 at the end of the body, or -ETIMEDOUT, -EBADMSG
 * (malformed chunked framing), -EFBIG (over --limit-request-body), -ECONNRESET (client gone);
 * after those the connection will close once the response is done. -EINTR when
 * ConnConfig.interrupted gave up on a signal: nothing was read and the body can still be
 * read later; -EAGAIN likewise when ConnConfig.offload would have to wait (aio). */
ssize_t conn_read_body(Conn *c, void *buf, size_t n);

/* conn_read_body() returns without touching the socket: the loop received the body (or
 * its start) before the app was called (--buffer-request-body), or the body is over. */
bool conn_body_ready(const Conn *c);

/* With ConnConfig.spool_max, a body larger than body_buffer_max and up to spool_max is
 * received the same way into an unlinked temporary file (O_TMPFILE), the app's reads then
 * taking it from there; a larger one is refused with 413. At most spool_worker_max bytes are
 * spooled by a worker at once: a body that would pass that streams to the app. */
/* The answer goes out through the connection's output queue: what the socket takes at once
 * is sent, the rest is queued for the loop to send as the client reads (EPOLLOUT), so the
 * app's call can return before a slow client has its answer. Memory parts are copied, up to
 * ConnConfig.out_max bytes queued per connection; the producer of a longer answer checks
 * conn_out_room() and hands the rest over later (see conn_set_stream()).
 *
 * conn_send(): queues iov; iovecs from keep_from on are kept by reference rather than copied
 * when they are large, and the caller then keeps that memory unchanged until the queue is
 * empty or the connection is freed. With wait, blocks (at most --timeout per stall) until at
 * most out_max bytes are queued: the way for a producer that cannot hand its rest to the
 * loop (the app's write()). Returns 0 or -errno (-ETIMEDOUT, -EPIPE, -ECONNRESET, -EINTR as
 * for conn_read_body(), when the bytes stay queued); after other errors the connection
 * closes. conn_write() is conn_send() of copies, with wait. */
int conn_send(Conn *c, const struct iovec *iov, int iovcnt, int keep_from, bool wait);
int conn_write(Conn *c, const struct iovec *iov, int iovcnt);
/* Copies iov to the end of the queue without sending anything: the caller sends it later
 * (conn_flush()), with the answers of other connections. 0, or -errno as conn_send(). */
int conn_queue(Conn *c, const struct iovec *iov, int iovcnt);
/* Bytes queued in memory: what a conn_queue() would add to. */
size_t conn_out_mem(const Conn *c);

/* conn_send() without wait, of the last bytes of an answer: when the app runs off the loop
 * (ConnConfig.offload) and they fit the queue's bound, they are queued for the loop to send
 * once the app's call hands the answer over (conn_set_stream()); the caller does not wait on
 * the loop for them. */
int conn_send_last(Conn *c, const struct iovec *iov, int iovcnt, int keep_from);

/* Queues the bytes of iov (the response head, copied) and count bytes of fd from offset,
 * sent with sendfile(2) as the client takes them; the caller keeps fd open until the queue
 * is empty or the connection is freed. Never waits. */
int conn_send_file(Conn *c, const struct iovec *iov, int iovcnt, int fd, off_t offset, size_t count);

/* Sends what the socket takes of the queue now. 0 when the queue is empty, -EAGAIN when bytes
 * remain, or -errno (the connection closes). */
int conn_flush(Conn *c);
bool conn_out_pending(const Conn *c);
/* Drops what is queued: the answer is abandoned (its items may be released). */
void conn_out_discard(Conn *c);
/* Fewer than out_max bytes are queued in memory: a producer may add more. */
bool conn_out_room(const Conn *c);
/* Bytes queued and not yet sent (memory and file parts). */
uint64_t conn_out_queued(const Conn *c);

/* An answer the loop finishes: the WSGI layer's state for it, opaque here, set while the
 * connection waits in the loop for the client to take the rest (see conn_send_later()). */
void *conn_stream(const Conn *c);
void conn_set_stream(Conn *c, void *stream);

/* The response must carry "Connection: close" and the connection closes after it: the
 * request said so, it was HTTP/1.0 without keep-alive, the worker is retiring, an error left
 * the body or the response framing unusable, or what the app leaves of the request body
 * cannot be read off cheaply afterwards (more than a bounded amount, a chunked body of
 * unknown length, or a body the client holds back until 100 Continue). Once false for a
 * response head it stays false unless an I/O error comes. */
bool conn_must_close(const Conn *c);
void conn_set_must_close(Conn *c);

/* A connection that switched protocols (a WebSocket): the bytes the client sent past the
 * request, which are the new protocol's, are handed over (*ret points into the connection's
 * buffer until the next call on it) and no longer the connection's. Returns their count; 0
 * while the request's body is not all read. */
size_t conn_take_unparsed(Conn *c, const char **ret);

/* The connection's fd, for TCP_CORK-style tuning by the response writer. */
int conn_fd(const Conn *c);

/* ---- The worker's side: creating and driving connections. ---- */

#include <sys/socket.h>

#include "gcorn/allowlist.h"
#include "gcorn/heartbeat.h"
#include "gcorn/http.h"
#include "gcorn/listener.h"
#include "gcorn/proxyproto.h"

/* An operation an app thread asks the loop to do on its connection (gthread). */
typedef enum ConnIoOp {
        CONN_IO_FILL,                   /* receive more request bytes (conn_read_body()) */
        CONN_IO_SEND,                   /* conn_send() */
        CONN_IO_ROOM,                   /* conn_send() with wait: the queue drains to out_max */
        CONN_IO_FILE,                   /* conn_send_file() */
        CONN_IO_DRAIN,                  /* the queue empties (aio: the driver waits for it) */
} ConnIoOp;

typedef struct ConnIo {
        ConnIoOp op;
        const struct iovec *iov;        /* the caller's, valid while it waits */
        int iovcnt, keep_from;
        bool wait;
        int fd;
        off_t offset;
        size_t count;
        ssize_t result;                 /* what the call returns */
        void *owner;                    /* the waiting thread (gthread.c), request (aio.c) */
        bool done;
        bool started;                   /* CONN_IO_DRAIN: its stall deadline is set */
} ConnIo;

/* Shared by all connections of one worker. */
typedef struct ConnConfig {
        HttpLimits limits;
        int head_timeout_ms;            /* a request head (and small body) must arrive in this; also
                                         * the time to read off a body the app left */
        int keepalive_ms;               /* idle time allowed between requests; 0 = no keep-alive */
        int io_timeout_ms;              /* one stall while the app reads the body or writes */
        size_t body_buffer_max;         /* bodies up to this are received before dispatch; 0: none */
        size_t out_max;                 /* answer bytes queued in memory per connection */
        uint64_t spool_max;             /* larger bodies up to this are spooled to a file; 0: off */
        uint64_t spool_worker_max;      /* bytes spooled by all connections of the worker at once */
        const char *spool_dir;          /* where the unlinked files are made (O_TMPFILE) */
        const bool *retiring;           /* the worker stops after the current requests */
        /* Beaten while a blocking call waits on the client: a slow but moving client is not a
         * hung worker. NULL for none. */
        HeartbeatSlot *slot;
        /* Called when a blocking wait is interrupted by a signal: 0 to go on waiting, or a
         * negative errno to give up (the app's signal handler raised). NULL: go on. */
        int (*interrupted)(void);
        ProxyMode proxy_mode;           /* a PROXY header may come first (--proxy-protocol) */
        const AllowList *proxy_allow;   /* peers that may send one (--proxy-allow-from) */
        /* gthread: called on an app thread for I/O on the connection it owns; returns once
         * the loop has done io (conn_io_run()). NULL: the calls do their own I/O.
         * aio (a Python event loop drives the worker's): called on the loop's own thread, it
         * never waits; a body read that would wait returns -EAGAIN from conn_read_body(),
         * nothing lost, and is tried again once the loop has more of the body. */
        void (*offload)(Conn *c, ConnIo *io);
} ConnConfig;

typedef enum ConnAction {
        CONN_WAIT,                      /* wait for more input (or the deadline) */
        CONN_DISPATCH,                  /* a request is ready: call wsgi_handle(), then conn_finish_request() */
        CONN_CLOSE,                     /* close: conn_close_lingering(), then conn_free() */
} ConnAction;

int conn_new(int fd, const Listener *l, const struct sockaddr *peer, socklen_t peer_len, const ConnConfig *cfg,
             Conn **ret);
Conn *conn_free(Conn *c);
/* A kept-alive connection another worker served (handoff.c): between requests, with the
 * addresses that worker saw. */
int conn_adopt(int fd, const ConnInfo *info, const ConnConfig *cfg, Conn **ret);
/* Between requests with nothing buffered and no answer pending: another worker could take
 * the connection over and lose nothing. */
bool conn_idle(const Conn *c);

/* The socket is readable (level-triggered). */
ConnAction conn_on_readable(Conn *c);

/* The app returned with its answer still queued or still to be pulled: the connection waits
 * in the loop for the socket to be writable (EPOLLOUT), under --timeout per stall, with its
 * input left in the socket. When the answer is out, conn_finish_request(). */
void conn_send_later(Conn *c);
bool conn_sending(const Conn *c);

/* For a sending connection whose deadline passed: true (and a new deadline) when the client
 * took bytes from the kernel's queue since the deadline was set. */
bool conn_send_moving(Conn *c);

/* The app is done with the current request: drop what is left of its body (what is buffered
 * now, the rest as it arrives, within the head timeout), reset, and look for a pipelined
 * request already buffered. */
ConnAction conn_finish_request(Conn *c);

/* Before closing: when the client may still be sending (a body nobody read, a request after
 * a refused keep-alive, a head cut by an error answer), closing now would make the kernel
 * reset the connection and destroy the answer still in flight. Then this shuts down the
 * sending side and returns true: the connection stays watched, its input is discarded by
 * conn_on_readable() until the client closes (CONN_CLOSE) or a short deadline passes.
 * False when it can be freed at once. */
bool conn_close_lingering(Conn *c);

/* For an idle keep-alive connection whose deadline passed: true (and a new deadline) when
 * the next request is already waiting in the socket. */
bool conn_idle_has_input(Conn *c);

/* The deadline passed: answers 408 if a request head or a small body was still arriving;
 * the connection then closes (lingering after a 408). */
void conn_on_timeout(Conn *c);

/* CLOCK_MONOTONIC milliseconds at which conn_on_timeout() is due. */
uint64_t conn_deadline(const Conn *c);

/* A request runs on an app thread (gthread): the thread owns the connection. */
bool conn_in_app(const Conn *c);

/* gthread, on the loop: does io for the app thread that owns c, without waiting. Returns 0
 * once io is done (io->result set: the thread may go on), or the epoll events to wait for
 * (EPOLLIN, EPOLLOUT), c's deadline then being that of the wait: call it again when they
 * come. */
uint32_t conn_io_run(Conn *c, ConnIo *io);
/* The wait's deadline passed: true (and a new deadline) when a slow reader took bytes
 * meanwhile; else false, io done with -ETIMEDOUT. */
bool conn_io_expired(Conn *c, ConnIo *io);

/* The worker's bookkeeping of a connection: its timer list links (ordered by deadline within
 * a list) and its epoll registration. */
typedef struct ConnLink {
        Conn *prev, *next;
        int list;                       /* which list holds it, -1 for none */
        uint64_t filed;                 /* the deadline it was filed under */
        uint32_t tag;                   /* tells its epoll events from a closed predecessor's */
        uint32_t events;                /* what epoll watches for: EPOLLIN, or EPOLLOUT while sending */
        bool watched;                   /* in the worker's epoll set */
        /* the request whose answer the loop finishes, for its metrics at the end */
        int method;
        uint64_t start_ms, start_us;
        /* gthread hand-offs (gthread.c), under the pool's mutex: the next in the pool's job
         * queue or the loop's inbox; the I/O its app thread waits for (NULL: none); what
         * wsgi_handle() returned once the thread is done */
        Conn *queue_next;
        ConnIo *io;
        ConnIo *parked;                 /* the loop's: that I/O, waiting for the socket */
        int shown;                      /* its entry in the scoreboard's requests in flight, -1: none */
        int app_r, app_status;
        bool app_pending;
        uint64_t app_bytes;
        /* handoff.c: its ticket (-1: not registered yet, -2: never), and whether the entry
         * says idle (anyone may take it: the worker claims it back before reading) */
        int64_t handoff;
        bool shared_idle;
        /* aio: on the worker's list of connections whose queued answer goes out when the
         * round of the event loop ends (worker.c, flush_held()) */
        Conn *held_prev, *held_next;
        bool held;
        bool held_done;                 /* its task ended meanwhile: the rest is the loop's */
        /* aio: its task waits for the client to hang up (worker_aio_watch_hangup()) */
        bool hangup;
} ConnLink;
ConnLink *conn_link(Conn *c);

/* Which timer list the connection belongs on now: 0 = head, small-body and body-drain
 * deadlines (the head timeout) and an app thread's wait for the client, 1 = keep-alive idle, 2 = lingering close, 3 = a stalled
 * answer (the I/O timeout). */
#define CONN_TIMER_LISTS 4
int conn_timer_list(const Conn *c);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t now_ms(void);

/* The time connections use for their deadlines, read from the clock by conn_clock_update()
 * (the worker: after each wait for events and after each request) and returned by both. */
uint64_t conn_clock_update(void);
uint64_t conn_clock(void);
