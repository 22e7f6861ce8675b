/* One client connection of a worker: socket, read buffer, keep-alive and pipelining state,
 * timeouts. The worker's epoll loop drives connections until a request head (and a small
 * body) is in; the WSGI layer then uses the blocking calls below while it runs the app.
 *
 * The blocking calls never touch Python: callers release the GIL around them. */
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
} ConnInfo;

const ConnInfo *conn_info(const Conn *c);

/* The request whose head is complete; valid until the response is done. */
const Request *conn_request(const Conn *c);

/* Reads up to n decoded body bytes. Sends "HTTP/1.1 100 Continue" first when the client
 * asked for it and nothing has been read yet. Blocks at most --timeout per stall.
 * Returns the count, 0 at the end of the body, or -ETIMEDOUT, -EBADMSG (malformed chunked
 * framing), -EFBIG (over --limit-request-body), -ECONNRESET (client gone). After an error
 * the connection will close once the response is done. */
ssize_t conn_read_body(Conn *c, void *buf, size_t n);

/* Writes all of iov, blocking at most --timeout per stall. Returns 0 or -errno
 * (-ETIMEDOUT, -EPIPE, -ECONNRESET); the connection then closes. */
int conn_write(Conn *c, const struct iovec *iov, int iovcnt);

/* Sends count bytes of fd from offset with sendfile(2) after the bytes of iov (the response
 * head), all with the same timeout rule. *ret_sent counts file bytes sent. */
int conn_sendfile(Conn *c, const struct iovec *iov, int iovcnt, int fd, off_t offset, size_t count,
                  size_t *ret_sent);

/* The response must carry "Connection: close" and the connection closes after it: the
 * request said so, it was HTTP/1.0 without keep-alive, the worker is retiring, or an error
 * left the body or the response framing unusable. */
bool conn_must_close(const Conn *c);
void conn_set_must_close(Conn *c);

/* The connection's fd, for TCP_CORK-style tuning by the response writer. */
int conn_fd(const Conn *c);

/* ---- The worker's side: creating and driving connections. ---- */

#include <sys/socket.h>

#include "gcorn/http.h"
#include "gcorn/listener.h"

/* Shared by all connections of one worker. */
typedef struct ConnConfig {
        HttpLimits limits;
        int head_timeout_ms;            /* a request head (and small body) must arrive in this */
        int keepalive_ms;               /* idle time allowed between requests; 0 = no keep-alive */
        int io_timeout_ms;              /* one stall while the app reads the body or writes */
        const bool *retiring;           /* the worker stops after the current requests */
} ConnConfig;

typedef enum ConnAction {
        CONN_WAIT,                      /* wait for more input (or the deadline) */
        CONN_DISPATCH,                  /* a request is ready: call wsgi_handle(), then conn_finish_request() */
        CONN_CLOSE,                     /* free the connection */
} ConnAction;

int conn_new(int fd, const Listener *l, const struct sockaddr *peer, socklen_t peer_len, const ConnConfig *cfg,
             Conn **ret);
Conn *conn_free(Conn *c);

/* The socket is readable (level-triggered). */
ConnAction conn_on_readable(Conn *c);

/* The app is done with the current request: drop what is left of its body, reset, and look
 * for a pipelined request already buffered. */
ConnAction conn_finish_request(Conn *c);

/* For an idle keep-alive connection whose deadline passed: true (and a new deadline) when
 * the next request is already waiting in the socket. */
bool conn_idle_has_input(Conn *c);

/* The deadline passed: answers 408 if a request had started, then the connection closes. */
void conn_on_timeout(Conn *c);

/* CLOCK_MONOTONIC milliseconds at which conn_on_timeout() is due. */
uint64_t conn_deadline(const Conn *c);

/* Intrusive links for the worker's timer lists (ordered by deadline within a list). */
typedef struct ConnLink {
        Conn *prev, *next;
        int list;                       /* which list holds it, -1 for none */
} ConnLink;
ConnLink *conn_link(Conn *c);

/* Which timer list the connection belongs on now: 0 = head/body deadline, 1 = keep-alive idle. */
int conn_timer_list(const Conn *c);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t now_ms(void);

/* The time connections use for their deadlines, read from the clock by conn_clock_update()
 * (the worker: after each wait for events and after each request) and returned by both. */
uint64_t conn_clock_update(void);
uint64_t conn_clock(void);
