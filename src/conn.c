/* One client connection: buffered reads, request heads through the parser, the small-body
 * preread, blocking body reads and writes for the app, keep-alive and pipelining.
 *
 * Everything here is Python-free so the worker can run it without the GIL. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "gcorn/conn.h"
#include "gcorn/forwarded.h"
#include "gcorn/log.h"
#include "gcorn/macro.h"
#include "gcorn/response.h"

#define RBUF_INITIAL (8 * 1024)
/* Raw bytes of a request head (and what was pipelined behind it) */
#define RBUF_MAX (192 * 1024)
/* A chunked body's buffer may pass --buffer-request-body by this much: decoding consumes no
 * more raw bytes than there is room for decoded ones, and the last chunk and trailers still
 * need room to be read. */
#define BBUF_SLACK 4096
/* A body buffer larger than this is not kept for the connection's next request. */
#define BBUF_KEEP (16 * 1024)
/* What the app leaves of a Content-Length body is read off after the answer, keeping the
 * connection, up to this much; beyond it the answer says "Connection: close". */
#define DRAIN_MAX (256 * 1024)
/* A lingering close discards the client's input for at most this long. */
#define LINGER_MS 5000
/* A blocking wait beats the heartbeat, and looks for a slow reader's progress, this often. */
#define WAIT_SLICE_MS 250

typedef enum ConnState {
        STATE_IDLE,                     /* between requests: no byte of the next one yet */
        STATE_HEAD,                     /* reading a request head */
        STATE_PREREAD,                  /* head done, reading a small body before dispatch */
        STATE_APP,                      /* dispatched to the app */
        STATE_DRAIN,                    /* answered; reading off the body the app left */
        STATE_LINGER,                   /* closing: sending side shut, input discarded */
} ConnState;

struct Conn {
        int fd;
        ConnState state;
        const ConnConfig *cfg;
        HttpParser *parser;
        const Request *req;

        char *rbuf;                     /* owned; [rpos, rlen) are received, unparsed bytes */
        size_t rpos, rlen, rcap;
        /* owned; [bpos, blen) are decoded body bytes received by the loop before the app ran
         * (--buffer-request-body), which the app's reads take first */
        char *bbuf;
        size_t bpos, blen, bcap;

        uint64_t deadline;
        bool must_close;
        bool continue_sent;
        bool body_done;
        bool started;                   /* a byte of the current request has arrived */
        bool peer_closed;               /* read() saw the end of the client's stream */
        bool broken;                    /* a read or write failed: nothing more can be said */
        bool response_started;          /* a byte of the answer has been sent */
        bool proxy_pending;             /* a PROXY header may still be at the front of rbuf */
        int body_error;

        ConnInfo info;
        ConnLink link;
};

/* The worker's idea of "now", refreshed after each wait for events and after each request:
 * deadlines are whole seconds, so a clock_gettime() per event would buy nothing. */
static uint64_t clock_ms;

uint64_t conn_clock_update(void) {
        return clock_ms = now_ms();
}

uint64_t conn_clock(void) {
        return clock_ms;
}

uint64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Decimal, without printf: this runs for every new connection. */
static void format_port(char *buf, size_t cap, unsigned port) {
        char tmp[8];
        size_t n = 0;

        do {
                tmp[n++] = (char) ('0' + port % 10);
                port /= 10;
        } while (port > 0 && n < sizeof(tmp));
        for (size_t i = 0; i < n && i + 1 < cap; i++)
                buf[i] = tmp[n - 1 - i];
        buf[MIN(n, cap - 1)] = 0;
}

/* Whether the peer may send forwarder_headers: the scheme's rule (forwarded_allow_ips, and
 * UNIX-socket peers always). */
static bool peer_is_trusted_forwarder(const void *info) {
        return forwarded_peer_trusted(info);
}

static void fill_info(Conn *c, const Listener *l, const struct sockaddr *peer, socklen_t peer_len) {
        c->info.is_unix = l->is_unix;
        strncpy(c->info.server_name, l->host, sizeof(c->info.server_name) - 1);
        c->info.server_name[sizeof(c->info.server_name) - 1] = 0;
        strncpy(c->info.server_port, l->port, sizeof(c->info.server_port) - 1);
        c->info.server_port[sizeof(c->info.server_port) - 1] = 0;
        if (peer_len < sizeof(sa_family_t) || l->is_unix)
                return;
        if (peer->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) peer;

                inet_ntop(AF_INET6, &in6->sin6_addr, c->info.remote_addr, sizeof(c->info.remote_addr));
                format_port(c->info.remote_port, sizeof(c->info.remote_port), ntohs(in6->sin6_port));
        } else if (peer->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) peer;

                inet_ntop(AF_INET, &in->sin_addr, c->info.remote_addr, sizeof(c->info.remote_addr));
                format_port(c->info.remote_port, sizeof(c->info.remote_port), ntohs(in->sin_port));
        }
}

/* Closed connections are kept for reuse, parser and read buffer included, so that a new
 * connection (Connection: close traffic) costs no allocation. The pool is per worker
 * process and bounded; beyond it connections are freed. */
#define POOL_MAX 256
static Conn *pool[POOL_MAX];
static size_t pool_len;

int conn_new(int fd, const Listener *l, const struct sockaddr *peer, socklen_t peer_len, const ConnConfig *cfg,
             Conn **ret) {
        HttpParser *parser = NULL;
        char *rbuf = NULL;
        size_t rcap = 0;
        Conn *c;
        int r;

        if (pool_len > 0) {
                c = pool[--pool_len];
                parser = c->parser;
                rbuf = c->rbuf;
                rcap = c->rcap;
        } else {
                c = malloc(sizeof(Conn));
                if (!c)
                        return -ENOMEM;
                r = http_parser_new(&parser, &cfg->limits);
                if (r < 0) {
                        free(c);
                        return r;
                }
        }
        *c = (Conn) {
                .fd = fd,
                .cfg = cfg,
                .parser = parser,
                .rbuf = rbuf,
                .rcap = rcap,
                .bbuf = NULL,
                .link.list = -1,
                .state = STATE_HEAD,
                .deadline = clock_ms + (uint64_t) cfg->head_timeout_ms,
                .proxy_pending = cfg->proxy_mode != PROXY_OFF,
        };
        if (!l->is_unix && !l->nodelay) {
                int one = 1;

                /* Responses go out in one write; Nagle would only delay them. */
                (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        fill_info(c, l, peer, peer_len);
        http_parser_set_peer(parser, peer_is_trusted_forwarder, &c->info);
        *ret = c;
        return 0;
}

Conn *conn_free(Conn *c) {
        if (!c)
                return NULL;
        c->fd = safe_close(c->fd);
        c->bbuf = mfree(c->bbuf);
        c->bcap = 0;
        /* Buffers grown for a large head or body go back to the allocator. */
        if (pool_len < POOL_MAX && c->rcap <= RBUF_INITIAL) {
                http_parser_reset(c->parser);
                pool[pool_len++] = c;
                return NULL;
        }
        http_parser_free(c->parser);
        free(c->rbuf);
        free(c);
        return NULL;
}

const ConnInfo *conn_info(const Conn *c) {
        return &c->info;
}

const Request *conn_request(const Conn *c) {
        return c->req;
}

int conn_fd(const Conn *c) {
        return c->fd;
}

void conn_set_must_close(Conn *c) {
        c->must_close = true;
}

uint64_t conn_deadline(const Conn *c) {
        return c->deadline;
}

ConnLink *conn_link(Conn *c) {
        return &c->link;
}

int conn_timer_list(const Conn *c) {
        return c->state == STATE_IDLE ? 1 : c->state == STATE_LINGER ? 2 : 0;
}

/* Makes room for at least want more bytes, moving unparsed bytes to the front first. */
static int rbuf_reserve(Conn *c, size_t want) {
        size_t need;
        char *n;

        if (c->rpos > 0) {
                memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
                c->rlen -= c->rpos;
                c->rpos = 0;
        }
        if (c->rcap - c->rlen >= want)
                return 0;
        need = c->rlen + want;
        if (need > RBUF_MAX)
                return -ENOBUFS;
        need = MAX(need, c->rcap ? c->rcap * 2 : (size_t) RBUF_INITIAL);
        need = MIN(need, (size_t) RBUF_MAX);
        n = realloc(c->rbuf, need);
        if (!n)
                return -ENOMEM;
        c->rbuf = n;
        c->rcap = need;
        return 0;
}

/* Reads what the socket has without blocking. Returns bytes read, 0 on EOF, -EAGAIN, -errno.
 * MSG_DONTWAIT rather than the descriptor's O_NONBLOCK, which is shared with the app's
 * gunicorn.socket (a dup) and blocking while the app has it. */
static ssize_t fill(Conn *c) {
        ssize_t n;
        int r;

        r = rbuf_reserve(c, 4096);
        if (r < 0)
                return r;
        do
                n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
                if (errno != EAGAIN)
                        c->broken = true;
                return -errno;
        }
        if (n == 0)
                c->peer_closed = true;
        c->rlen += (size_t) n;
        return n;
}

/* A best-effort canned error answer: the connection closes right after it. */
static void send_error_message(Conn *c, int status, const char *message) {
        char buf[RESPONSE_ERROR_MAX];
        size_t n = response_build_error(buf, sizeof(buf), status, http_parser_is_head(c->parser), message);

        c->response_started = true;
        (void) send(c->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void send_error(Conn *c, int status) {
        send_error_message(c, status, http_parser_error_reason(c->parser));
}

/* The client a PROXY header names becomes REMOTE_ADDR/PORT; the socket's peer is kept for
 * the trust checks, which are about who sent the header. */
static void apply_proxy_header(Conn *c, const ProxyHeader *h) {
        ConnInfo *i = &c->info;

        i->proxy_protocol = h->protocol;
        if (!h->has_addresses)
                return;
        memcpy(i->peer_addr, i->remote_addr, sizeof(i->peer_addr));
        snprintf(i->remote_addr, sizeof(i->remote_addr), "%s", h->src_addr);
        format_port(i->remote_port, sizeof(i->remote_port), h->src_port);
        snprintf(i->proxy_addr, sizeof(i->proxy_addr), "%s", h->dst_addr);
        format_port(i->proxy_port, sizeof(i->proxy_port), h->dst_port);
}

/* The PROXY header at the very start of the connection, when one may come (never again on
 * it). Returns 1 once it is read, or there is none; 0 to wait for more bytes; -1 after an
 * error answer (Gunicorn's: 403 for a peer not in --proxy-allow-from, 400 for a malformed
 * header), when the connection must close. */
static int read_proxy_header(Conn *c) {
        const char *reason = NULL;
        ProxyHeader h;
        int r;

        r = proxy_scan(c->cfg->proxy_mode, c->rbuf + c->rpos, c->rlen - c->rpos, &h, &reason);
        if (r == PROXY_SCAN_MAYBE)
                return 0;
        if (r == PROXY_SCAN_NOT) {
                c->proxy_pending = false;
                return 1;
        }
        if (!c->info.is_unix && !allowlist_contains(c->cfg->proxy_allow, c->info.remote_addr)) {
                log_warning("Invalid request from ip=%s: Proxy request from '%s' not allowed", c->info.remote_addr,
                            c->info.remote_addr);
                send_error_message(c, 403, "Request forbidden");
                return -1;
        }
        if (r < 0) {
                log_warning("Invalid request from ip=%s: %s", c->info.remote_addr, reason);
                send_error_message(c, 400, reason);
                return -1;
        }
        if (r == PROXY_SCAN_PARTIAL)
                return 0;
        c->proxy_pending = false;
        c->rpos += h.length;
        apply_proxy_header(c, &h);
        return 1;
}

static void start_request(Conn *c) {
        c->req = http_parser_request(c->parser);
        c->continue_sent = false;
        c->response_started = false;
        c->body_done = !c->req->has_body;
        c->body_error = 0;
        c->bpos = c->blen = 0;
        if (!c->req->keep_alive || c->cfg->keepalive_ms <= 0 || *c->cfg->retiring)
                c->must_close = true;
}

/* Room for more decoded body bytes: a Content-Length body gets its size at once (the pages
 * of a large one are only touched as bytes arrive), a chunked one doubles up to the limit. */
static int bbuf_grow(Conn *c) {
        size_t max = c->cfg->body_buffer_max, want;
        char *n;

        if (!c->req->chunked)
                want = (size_t) c->req->content_length;
        else
                want = MIN(MAX(c->bcap * 2, (size_t) BBUF_KEEP), max + BBUF_SLACK);
        if (want <= c->bcap)
                return -ENOBUFS;
        n = realloc(c->bbuf, want);
        if (!n)
                return -ENOMEM;
        c->bbuf = n;
        c->bcap = want;
        return 0;
}

/* Decodes what has arrived of a body the loop receives before the app runs. The app is
 * called once the body is complete, once it proves larger than --buffer-request-body (the
 * rest streams), or once its framing fails (the app's read reports it after the bytes before
 * the fault). */
static ConnAction preread(Conn *c) {
        for (;;) {
                size_t consumed = 0, out = 0;
                int r;

                if (c->blen > c->cfg->body_buffer_max)
                        break;
                if (c->blen == c->bcap) {
                        r = bbuf_grow(c);
                        if (r == -ENOBUFS)
                                break;
                        if (r < 0) {
                                send_error_message(c, 500, NULL);
                                return CONN_CLOSE;
                        }
                }
                r = http_parser_feed_body(c->parser, c->rbuf + c->rpos, c->rlen - c->rpos, &consumed,
                                          c->bbuf + c->blen, c->bcap - c->blen, &out);
                c->rpos += consumed;
                c->blen += out;
                if (r < 0) {
                        c->body_error = r;
                        c->must_close = true;
                        break;
                }
                if (r == 1) {
                        c->body_done = true;
                        break;
                }
                if (consumed == 0 && out == 0)
                        return CONN_WAIT;
        }
        c->state = STATE_APP;
        return CONN_DISPATCH;
}

/* Parses buffered bytes. Returns the action for the worker. */
static ConnAction advance(Conn *c) {
        size_t consumed = 0;
        int r;

        if (c->state == STATE_IDLE || c->state == STATE_HEAD) {
                if (c->rpos == c->rlen)
                        return CONN_WAIT;
                if (c->state == STATE_IDLE) {
                        c->state = STATE_HEAD;
                        c->deadline = clock_ms + (uint64_t) c->cfg->head_timeout_ms;
                }
                c->started = true;
                if (_unlikely_(c->proxy_pending)) {
                        r = read_proxy_header(c);
                        if (r < 0)
                                return CONN_CLOSE;
                        /* a header alone starts no request: its timeout closes quietly */
                        c->started = c->rpos < c->rlen;
                        if (r == 0 || !c->started)
                                return CONN_WAIT;
                }
                r = http_parser_feed_head(c->parser, c->rbuf + c->rpos, c->rlen - c->rpos, &consumed);
                c->rpos += consumed;
                if (r < 0) {
                        send_error(c, http_parser_error_status(c->parser));
                        return CONN_CLOSE;
                }
                if (r == 0)
                        return CONN_WAIT;
                start_request(c);
                /* A client that expects 100 Continue holds its body back until the app asks
                 * for it, and one with a larger body streams it to the app. */
                if (!c->req->has_body || c->req->expect_continue || c->cfg->body_buffer_max == 0 ||
                    (!c->req->chunked && c->req->content_length > (int64_t) c->cfg->body_buffer_max)) {
                        c->state = STATE_APP;
                        return CONN_DISPATCH;
                }
                c->state = STATE_PREREAD;
        }
        if (c->state == STATE_PREREAD)
                return preread(c);
        return CONN_WAIT;
}

/* Discards what a lingering connection receives; CONN_CLOSE once the client is done. */
static ConnAction linger_read(Conn *c) {
        static char sink[65536];
        ssize_t n;

        do
                n = read(c->fd, sink, sizeof(sink));
        while (n < 0 && errno == EINTR);
        return n == 0 || (n < 0 && errno != EAGAIN) ? CONN_CLOSE : CONN_WAIT;
}

static ConnAction drain(Conn *c);

ConnAction conn_on_readable(Conn *c) {
        ConnAction a;
        ssize_t n;

        if (c->state == STATE_LINGER)
                return linger_read(c);

        /* One read per readable event: epoll is level-triggered and says when there is more,
         * so no read() is spent just to see EAGAIN, and a full buffer is parsed before more
         * is read, which bounds memory by the parser's limits rather than by the client. */
        n = fill(c);
        if (n == -ENOBUFS) {
                send_error(c, 431);
                return CONN_CLOSE;
        }
        if (n < 0 && n != -EAGAIN)
                return CONN_CLOSE;
        if (c->state == STATE_DRAIN)
                return drain(c);
        /* A client that half-closes after its request (nc -N, health checkers) still gets
         * its answers: what arrived before the end is served first. */
        a = advance(c);
        if (a == CONN_WAIT && c->peer_closed)
                return CONN_CLOSE;
        return a;
}

bool conn_idle_has_input(Conn *c) {
        char b;

        if (c->state != STATE_IDLE || c->cfg->keepalive_ms <= 0 ||
            recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) <= 0)
                return false;
        /* Its request came in while the worker was busy elsewhere: it is served on the next
         * loop turn, not closed under the client's feet. */
        c->deadline = clock_ms + (uint64_t) c->cfg->keepalive_ms;
        return true;
}

void conn_on_timeout(Conn *c) {
        if (c->state == STATE_PREREAD || (c->state == STATE_HEAD && c->started))
                send_error(c, 408);
}

/* Whether the client may still send bytes that nobody will read. */
static bool client_may_send(const Conn *c) {
        switch (c->state) {
        case STATE_IDLE:
                return c->rpos < c->rlen;
        case STATE_HEAD:
                return c->started;
        case STATE_PREREAD:
        case STATE_DRAIN:
                return true;
        case STATE_APP: {
                int pending = 0;

                if (c->rpos < c->rlen || !c->body_done)
                        return true;
                /* A client that asked for keep-alive may have sent its next request already;
                 * one that said "close" sends nothing more, and its close stays a plain close(). */
                return c->req->keep_alive && ioctl(c->fd, FIONREAD, &pending) == 0 && pending > 0;
        }
        default:
                return false;
        }
}

bool conn_close_lingering(Conn *c) {
        /* A lingering connection that reports CONN_CLOSE is done. */
        if (c->state == STATE_LINGER || c->peer_closed || c->broken || !client_may_send(c))
                return false;
        /* The FIN goes out after the answer; what the client sends meanwhile is read and
         * dropped, so the kernel has no unread data to answer with a reset. */
        if (shutdown(c->fd, SHUT_WR) < 0)
                return false;
        c->state = STATE_LINGER;
        c->deadline = clock_ms + LINGER_MS;
        c->rpos = c->rlen = 0;
        return true;
}

/* What is left of the body can be read off without the client's help or a long wait. */
static bool body_drainable(const Conn *c) {
        int64_t left;

        if (!c->req || c->body_done)
                return true;
        if (c->body_error)
                return false;
        /* The client may hold the body back until it hears 100 Continue, which never comes
         * once the app has not asked for the body. */
        if (c->req->expect_continue && !c->continue_sent)
                return false;
        left = http_parser_body_remaining(c->parser);
        return left >= 0 && left <= (int64_t) (c->rlen - c->rpos) + DRAIN_MAX;
}

bool conn_must_close(const Conn *c) {
        return c->must_close || !body_drainable(c);
}

static ConnAction next_request(Conn *c);

/* Discards the rest of the body from what is buffered; waits in the loop for more. */
static ConnAction drain(Conn *c) {
        char scratch[4096];

        while (!c->body_done) {
                size_t consumed = 0, out = 0;
                int r;

                r = http_parser_feed_body(c->parser, c->rbuf + c->rpos, c->rlen - c->rpos, &consumed, scratch,
                                          sizeof(scratch), &out);
                c->rpos += consumed;
                if (r < 0) {
                        c->must_close = true;
                        return CONN_CLOSE;
                }
                if (r == 1)
                        c->body_done = true;
                else if (consumed == 0)
                        break;
        }
        if (c->body_done)
                return next_request(c);
        if (c->peer_closed)
                return CONN_CLOSE;
        if (c->state != STATE_DRAIN) {
                c->state = STATE_DRAIN;
                c->deadline = clock_ms + (uint64_t) c->cfg->head_timeout_ms;
        }
        return CONN_WAIT;
}

ConnAction conn_finish_request(Conn *c) {
        /* The answer promised keep-alive only if the rest of the body was cheap to read off
         * (conn_must_close()); the same test now decides. */
        if (conn_must_close(c)) {
                c->must_close = true;
                return CONN_CLOSE;
        }
        return drain(c);
}

static ConnAction next_request(Conn *c) {
        ConnAction a;

        http_parser_reset(c->parser);
        c->req = NULL;
        c->bpos = c->blen = 0;
        if (c->bcap > BBUF_KEEP) {
                c->bbuf = mfree(c->bbuf);
                c->bcap = 0;
        }
        c->started = false;
        c->state = STATE_IDLE;
        c->deadline = clock_ms + (uint64_t) c->cfg->keepalive_ms;
        if (c->rpos == c->rlen) {
                c->rpos = c->rlen = 0;
                return c->peer_closed ? CONN_CLOSE : CONN_WAIT;
        }
        a = advance(c);
        if (a == CONN_WAIT && c->peer_closed)
                return CONN_CLOSE;
        return a;
}

/* Waits until fd is ready for events, at most the I/O timeout without progress. The worker
 * beats meanwhile: a client that takes its time is no hung app, and the I/O timeout bounds
 * the wait. A signal goes to ConnConfig.interrupted, so that the app's handlers run
 * (PEP 475). */
static int wait_fd(Conn *c, short events) {
        struct pollfd p = { .fd = c->fd, .events = events };
        uint64_t now = now_ms(), stall = c->cfg->io_timeout_ms > 0 ? (uint64_t) c->cfg->io_timeout_ms : UINT64_MAX;
        uint64_t limit = stall == UINT64_MAX ? UINT64_MAX : now + stall;
        int queued = -1, q, r;

        /* A socket turns writable only once a good part of its send buffer is free; a client
         * that reads slowly frees it a little at a time, and that is progress too. */
        if ((events & POLLOUT) && ioctl(c->fd, SIOCOUTQ, &q) == 0)
                queued = q;
        for (;;) {
                if (now >= limit)
                        return -ETIMEDOUT;
                if (c->cfg->slot)
                        heartbeat_beat(c->cfg->slot, now);
                r = poll(&p, 1, (int) MIN(limit - now, (uint64_t) WAIT_SLICE_MS));
                if (r > 0)
                        return 0;
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r < 0 && c->cfg->interrupted) {
                        r = c->cfg->interrupted();
                        if (r < 0)
                                return r;
                }
                now = now_ms();
                if (queued >= 0 && ioctl(c->fd, SIOCOUTQ, &q) == 0) {
                        if (q < queued && stall != UINT64_MAX)
                                limit = now + stall;
                        queued = q;
                }
        }
}

/* After a failed send: 0 when it is worth retrying (interrupted, or the socket became
 * writable again within the I/O timeout), else -errno. */
static int write_retry(Conn *c) {
        if (errno == EINTR)
                return 0;
        if (errno == EAGAIN)
                return wait_fd(c, POLLOUT);
        return -errno;
}

static int send_continue(Conn *c) {
        static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
        struct iovec iov = { .iov_base = (void *) msg, .iov_len = sizeof(msg) - 1 };

        c->continue_sent = true;
        return conn_write(c, &iov, 1);
}

bool conn_body_ready(const Conn *c) {
        return c->bpos < c->blen || c->body_done || c->body_error;
}

ssize_t conn_read_body(Conn *c, void *buf, size_t n) {
        int r;

        if (c->bpos < c->blen && n > 0) {
                size_t k = MIN(n, c->blen - c->bpos);

                memcpy(buf, c->bbuf + c->bpos, k);
                c->bpos += k;
                return (ssize_t) k;
        }
        if (c->body_error)
                return c->body_error;
        if (c->body_done || n == 0)
                return 0;
        if (c->req->expect_continue && !c->continue_sent && !c->response_started) {
                r = send_continue(c);
                if (r < 0)
                        goto fail;
        }
        for (;;) {
                size_t consumed = 0, out = 0;
                ssize_t k;

                r = http_parser_feed_body(c->parser, c->rbuf + c->rpos, c->rlen - c->rpos, &consumed, buf, n, &out);
                c->rpos += consumed;
                if (r < 0)
                        goto fail;
                if (r == 1)
                        c->body_done = true;
                if (out > 0)
                        return (ssize_t) out;
                if (c->body_done)
                        return 0;
                if (consumed > 0 && c->rpos < c->rlen)
                        continue;

                k = fill(c);
                if (k == -EAGAIN) {
                        r = wait_fd(c, POLLIN);
                        if (r < 0)
                                goto fail;
                        continue;
                }
                if (k == 0) {
                        r = -ECONNRESET;
                        goto fail;
                }
                if (k < 0) {
                        r = (int) k;
                        goto fail;
                }
        }
fail:
        /* An interrupted wait read nothing: the body is intact for a later read. */
        if (r == -EINTR)
                return r;
        c->body_error = r;
        c->must_close = true;
        return r;
}

static int write_iov(Conn *c, const struct iovec *iov, int iovcnt, int flags) {
        struct iovec local[16];
        struct msghdr mh = {};
        int r;

        if (iovcnt > (int) ELEMENTSOF(local))
                return -EINVAL;
        c->response_started = true;
        memcpy(local, iov, sizeof(struct iovec) * (size_t) iovcnt);
        mh.msg_iov = local;
        mh.msg_iovlen = (size_t) iovcnt;
        while (mh.msg_iovlen > 0) {
                /* never blocking, whatever the app did to gunicorn.socket (see fill()) */
                ssize_t k = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT | flags);

                if (k < 0) {
                        r = write_retry(c);
                        if (r < 0)
                                goto fail;
                        continue;
                }
                while (mh.msg_iovlen > 0 && (size_t) k >= mh.msg_iov->iov_len) {
                        k -= (ssize_t) mh.msg_iov->iov_len;
                        mh.msg_iov++;
                        mh.msg_iovlen--;
                }
                if (mh.msg_iovlen > 0) {
                        mh.msg_iov->iov_base = (char *) mh.msg_iov->iov_base + k;
                        mh.msg_iov->iov_len -= (size_t) k;
                }
        }
        return 0;
fail:
        c->must_close = true;
        c->broken = true;
        return r;
}

int conn_write(Conn *c, const struct iovec *iov, int iovcnt) {
        return write_iov(c, iov, iovcnt, 0);
}

int conn_sendfile(Conn *c, const struct iovec *iov, int iovcnt, int fd, off_t offset, size_t count,
                  size_t *ret_sent) {
        size_t sent = 0;
        int r = 0;

        *ret_sent = 0;
        if (iovcnt > 0) {
                /* MSG_MORE: the head waits for the file's first bytes and leaves in the same
                 * segment, despite TCP_NODELAY. */
                r = write_iov(c, iov, iovcnt, count > 0 ? MSG_MORE : 0);
                if (r < 0)
                        return r;
        }
        while (sent < count) {
                ssize_t k = sendfile(c->fd, fd, &offset, count - sent);

                if (k < 0) {
                        r = write_retry(c);
                        if (r < 0)
                                break;
                        continue;
                }
                if (k == 0) {
                        /* The file shrank under us: the promised length cannot be met. */
                        r = -EIO;
                        break;
                }
                sent += (size_t) k;
        }
        *ret_sent = sent;
        if (r < 0)
                c->must_close = c->broken = true;
        return r;
}
