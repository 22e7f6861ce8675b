/* One client connection: buffered reads, request heads through the parser, the body
 * received before dispatch (into memory or a spool file), body reads for the app, the output
 * queue the app fills and the loop drains, keep-alive and pipelining.
 *
 * Everything here is Python-free so the worker can run it without the GIL. */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
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
/* A spooled body is decoded into the body buffer, then written to its file, this much at once */
#define SPOOL_STAGE (64 * 1024)
/* What the app leaves of a Content-Length body is read off after the answer, keeping the
 * connection, up to this much; beyond it the answer says "Connection: close". */
#define DRAIN_MAX (256 * 1024)
/* A lingering close discards the client's input for at most this long. */
#define LINGER_MS 5000
/* A blocking wait beats the heartbeat, and looks for a slow reader's progress, this often. */
#define WAIT_SLICE_MS 250
/* Response bytes the client cannot take at once are copied into blocks of this size, except
 * parts of this size or more whose owner keeps them alive (conn_send()'s keep_from). */
#define OUT_BLOCK (16 * 1024)
#define OUT_KEEP_MIN (16 * 1024)
/* A connection whose answer waits on the client is looked at this often for progress */
#define SEND_PROBE_MS 1000

/* A part of an answer not sent yet: memory (copied, or the caller's) or a file range. */
typedef struct OutPart {
        const char *p;                  /* the next byte of a memory part */
        size_t len;                     /* bytes left */
        char *own;                      /* the block p points into when it is a copy, owned */
        size_t own_cap;
        int fd;                         /* a file part's (the caller's), -1 for memory */
        off_t off;
} OutPart;

typedef enum ConnState {
        STATE_IDLE,                     /* between requests: no byte of the next one yet */
        STATE_HEAD,                     /* reading a request head */
        STATE_PREREAD,                  /* head done, receiving the body before dispatch */
        STATE_APP,                      /* dispatched to the app */
        STATE_SEND,                     /* the app returned; the loop sends the rest of its answer */
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
        /* owned, -1 for none: the unlinked file of a spooled body; its bytes [spool_pos,
         * spool_len) come before those of bbuf */
        int spool_fd;
        uint64_t spool_pos, spool_len;

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

        /* The answer's bytes the client has not taken: parts [ohead, olen) of out, owned */
        OutPart *out;
        size_t ohead, olen, ocap;
        size_t out_mem;                 /* bytes of the memory parts */
        uint64_t out_file;              /* bytes of the file parts */
        void *stream;                   /* the WSGI layer's state of an answer the loop finishes */
        int sent_queued;                /* the kernel's unsent bytes at the last look */
        uint64_t sent_progress;         /* when the client last took bytes */

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

/* A connection from the pool, or a new one, reset for fd. */
static int conn_alloc(int fd, const ConnConfig *cfg, Conn **ret) {
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
                .spool_fd = -1,
                .out = NULL,
                .link.list = -1,
                .link.handoff = -1,
                .state = STATE_HEAD,
                .deadline = clock_ms + (uint64_t) cfg->head_timeout_ms,
                .proxy_pending = cfg->proxy_mode != PROXY_OFF,
        };
        *ret = c;
        return 0;
}

int conn_new(int fd, const Listener *l, const struct sockaddr *peer, socklen_t peer_len, const ConnConfig *cfg,
             Conn **ret) {
        Conn *c;
        int r;

        r = conn_alloc(fd, cfg, &c);
        if (r < 0)
                return r;
        if (!l->is_unix && !l->nodelay) {
                int one = 1;

                /* Responses go out in one write; Nagle would only delay them. */
                (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        fill_info(c, l, peer, peer_len);
        http_parser_set_peer(c->parser, peer_is_trusted_forwarder, &c->info);
        *ret = c;
        return 0;
}

int conn_adopt(int fd, const ConnInfo *info, const ConnConfig *cfg, Conn **ret) {
        Conn *c;
        int r;

        r = conn_alloc(fd, cfg, &c);
        if (r < 0)
                return r;
        /* Between requests, its PROXY header (if any) long read, socket options set by the
         * worker that accepted it. */
        c->info = *info;
        c->state = STATE_IDLE;
        c->proxy_pending = false;
        c->deadline = clock_ms + (uint64_t) cfg->keepalive_ms;
        http_parser_set_peer(c->parser, peer_is_trusted_forwarder, &c->info);
        *ret = c;
        return 0;
}

bool conn_idle(const Conn *c) {
        return c->state == STATE_IDLE && c->rpos == c->rlen && !c->peer_closed;
}

static void part_drop(OutPart *p);
static void spool_end(Conn *c);

Conn *conn_free(Conn *c) {
        if (!c)
                return NULL;
        c->fd = safe_close(c->fd);
        c->bbuf = mfree(c->bbuf);
        c->bcap = 0;
        spool_end(c);
        conn_out_discard(c);
        c->out = mfree(c->out);
        c->ocap = 0;
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
        return c->state == STATE_IDLE ? 1 : c->state == STATE_LINGER ? 2 : c->state == STATE_SEND ? 3 : 0;
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
        spool_end(c);
        if (!c->req->keep_alive || c->cfg->keepalive_ms <= 0 || *c->cfg->retiring)
                c->must_close = true;
}

/* Body bytes the worker's connections hold in spool files now. */
static uint64_t spooled;

static void spool_end(Conn *c) {
        if (c->spool_fd < 0)
                return;
        c->spool_fd = safe_close(c->spool_fd);
        spooled -= c->spool_len;
        c->spool_pos = c->spool_len = 0;
}

/* Writes the decoded bytes of the body buffer to the spool file. 0, -ENOSPC when the worker's
 * share is spent (nothing written: the rest streams), or -errno. */
static int spool_flush(Conn *c) {
        size_t done = 0;

        if (c->blen == 0)
                return 0;
        if (spooled + c->blen > c->cfg->spool_worker_max)
                return -ENOSPC;
        while (done < c->blen) {
                ssize_t k = pwrite(c->spool_fd, c->bbuf + done, c->blen - done, (off_t) (c->spool_len + done));

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? -errno : -EIO;
                done += (size_t) k;
        }
        c->spool_len += c->blen;
        spooled += c->blen;
        c->blen = c->bpos = 0;
        return 0;
}

/* Whether to spool a body of which total bytes are known (a Content-Length, or what a chunked
 * one has decoded so far): 1 when spooling now (what the body buffer holds is in the file), 0
 * to stream it to the app instead, -EFBIG when it is over --spool-request-body. */
static int spool_start(Conn *c, uint64_t total) {
        int fd;

        if (c->cfg->spool_max == 0)
                return 0;
        if (total > c->cfg->spool_max)
                return -EFBIG;
        if (spooled + total > c->cfg->spool_worker_max)
                return 0;
        fd = open(c->cfg->spool_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0) {
                log_debug_errno(errno, "Failed to make a spool file in %s, streaming the body: %m", c->cfg->spool_dir);
                return 0;
        }
        c->spool_fd = fd;
        if (spool_flush(c) < 0) {
                spool_end(c);
                return 0;
        }
        return 1;
}

/* Room for more decoded body bytes: a Content-Length body gets its size at once (the pages
 * of a large one are only touched as bytes arrive), a chunked one doubles up to the limit. */
static int bbuf_grow(Conn *c) {
        size_t max = c->cfg->body_buffer_max, want;
        char *n;

        if (c->spool_fd >= 0)
                want = SPOOL_STAGE;
        else if (!c->req->chunked)
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
        int r;

        for (;;) {
                size_t consumed = 0, out = 0;

                if (c->spool_fd < 0 && c->blen > c->cfg->body_buffer_max) {
                        /* a chunked body larger than the buffer */
                        r = spool_start(c, c->blen);
                        if (r < 0)
                                goto too_large;
                        if (r == 0)
                                break;
                }
                if (c->spool_fd >= 0 && c->blen == c->bcap && c->bcap > 0) {
                        if (c->spool_len + c->blen > c->cfg->spool_max)
                                goto too_large;
                        r = spool_flush(c);
                        if (r == -ENOSPC)
                                break;
                        if (r < 0)
                                goto fail;
                }
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
                /* A spooled body may be long: its upload has --timeout per stall, as a read
                 * of the app's, rather than one deadline for all of it. */
                if (c->spool_fd >= 0)
                        c->deadline = clock_ms + (uint64_t) c->cfg->io_timeout_ms;
        }
        /* the app reads the file first, then the buffer, in the body's order */
        if (c->spool_fd >= 0) {
                if (c->spool_len + c->blen > c->cfg->spool_max)
                        goto too_large;
                r = spool_flush(c);
                if (r < 0 && r != -ENOSPC)
                        goto fail;
        }
        c->state = STATE_APP;
        return CONN_DISPATCH;

too_large:
        send_error_message(c, 413, "Request body too large");
        return CONN_CLOSE;
fail:
        log_error_errno(r, "Failed to write a request body to its spool file: %m");
        send_error_message(c, 500, NULL);
        return CONN_CLOSE;
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
                        /* Gunicorn's line and level (StatsD counts it in gunicorn.log.warning). */
                        log_warning("Invalid request from ip=%s: %s", c->info.remote_addr,
                                    http_parser_error_reason(c->parser));
                        send_error(c, http_parser_error_status(c->parser));
                        return CONN_CLOSE;
                }
                if (r == 0)
                        return CONN_WAIT;
                start_request(c);
                /* A client that expects 100 Continue holds its body back until the app asks
                 * for it, and one with a larger body streams it to the app. */
                if (!c->req->has_body || c->req->expect_continue || c->cfg->body_buffer_max == 0) {
                        c->state = STATE_APP;
                        return CONN_DISPATCH;
                }
                if (!c->req->chunked && c->req->content_length > (int64_t) c->cfg->body_buffer_max) {
                        r = spool_start(c, (uint64_t) c->req->content_length);
                        if (r < 0) {
                                send_error_message(c, 413, "Request body too large");
                                return CONN_CLOSE;
                        }
                        if (r == 0) {
                                c->state = STATE_APP;
                                return CONN_DISPATCH;
                        }
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
        /* a client that stopped taking its answer: the answer is cut, nothing more is said */
        if (c->state == STATE_SEND)
                c->must_close = c->broken = true;
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
        case STATE_APP:
        case STATE_SEND: {
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

size_t conn_take_unparsed(Conn *c, const char **ret) {
        size_t n = c->body_done ? c->rlen - c->rpos : 0;

        *ret = c->rbuf + c->rpos;
        c->rpos += n;
        return n;
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
        spool_end(c);
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

/* The loop does io and returns its result (gthread): see conn_io_run(). */
static ssize_t offload(Conn *c, ConnIo *io) {
        c->cfg->offload(c, io);
        return io->result;
}

static int send_continue(Conn *c) {
        static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
        struct iovec iov = { .iov_base = (void *) msg, .iov_len = sizeof(msg) - 1 };

        c->continue_sent = true;
        return conn_write(c, &iov, 1);
}

bool conn_body_ready(const Conn *c) {
        return c->spool_pos < c->spool_len || c->bpos < c->blen || c->body_done || c->body_error;
}

ssize_t conn_read_body(Conn *c, void *buf, size_t n) {
        int r;

        if (c->spool_pos < c->spool_len && n > 0) {
                ssize_t k;

                do
                        k = pread(c->spool_fd, buf, (size_t) MIN((uint64_t) n, c->spool_len - c->spool_pos),
                                  (off_t) c->spool_pos);
                while (k < 0 && errno == EINTR);
                if (k <= 0) {
                        r = k < 0 ? -errno : -EIO;
                        log_error_errno(r, "Failed to read a request body from its spool file: %m");
                        goto fail;
                }
                c->spool_pos += (uint64_t) k;
                return k;
        }

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

                if (_unlikely_(c->cfg->offload)) {
                        k = offload(c, &(ConnIo) { .op = CONN_IO_FILL });
                        /* aio: the loop reads on when the client sends; the caller waits for
                         * that without a C frame of ours and calls again */
                        if (k == -EAGAIN)
                                return -EAGAIN;
                } else
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

/* Sends iov at once, as far as the socket takes it without waiting. Returns the count of
 * bytes sent (0 when none could be), or -errno. */
static ssize_t send_now(Conn *c, const struct iovec *iov, int iovcnt, int flags) {
        struct msghdr mh = { .msg_iov = (struct iovec *) iov, .msg_iovlen = (size_t) iovcnt };
        ssize_t k;

        /* never blocking, whatever the app did to gunicorn.socket (see fill()) */
        do
                k = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT | flags);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return errno == EAGAIN ? 0 : -errno;
        return k;
}

static void part_drop(OutPart *p) {
        free(p->own);
        *p = (OutPart) {};
}

/* A new part at the end of the queue. */
static OutPart *out_push(Conn *c) {
        if (c->ohead > 0 && c->ohead == c->olen)
                c->ohead = c->olen = 0;
        if (c->olen == c->ocap) {
                size_t cap = c->ocap ? c->ocap * 2 : 8;
                OutPart *n;

                if (c->ohead > 0) {
                        /* room at the front: move the live parts there */
                        memmove(c->out, c->out + c->ohead, (c->olen - c->ohead) * sizeof(OutPart));
                        c->olen -= c->ohead;
                        c->ohead = 0;
                } else {
                        n = reallocarray(c->out, cap, sizeof(OutPart));
                        if (!n)
                                return NULL;
                        c->out = n;
                        c->ocap = cap;
                }
        }
        c->out[c->olen] = (OutPart) { .fd = -1 };
        return &c->out[c->olen++];
}

/* Queues len bytes: a reference to them when keep (the caller keeps them alive), else a copy,
 * appended to the last copy's block while it has room. */
static int out_append(Conn *c, const char *data, size_t len, bool keep) {
        OutPart *last = c->olen > c->ohead ? &c->out[c->olen - 1] : NULL;

        if (len == 0)
                return 0;
        if (keep && len >= OUT_KEEP_MIN) {
                OutPart *p = out_push(c);

                if (!p)
                        return -ENOMEM;
                p->p = data;
                p->len = len;
                c->out_mem += len;
                return 0;
        }
        if (last && last->own) {
                size_t used = (size_t) (last->p - last->own) + last->len, k = MIN(len, last->own_cap - used);

                memcpy(last->own + used, data, k);
                last->len += k;
                c->out_mem += k;
                data += k;
                len -= k;
        }
        if (len > 0) {
                size_t cap = MAX(len, (size_t) OUT_BLOCK);
                OutPart *p;
                char *own = malloc(cap);

                if (!own)
                        return -ENOMEM;
                p = out_push(c);
                if (!p) {
                        free(own);
                        return -ENOMEM;
                }
                memcpy(own, data, len);
                *p = (OutPart) { .p = own, .len = len, .own = own, .own_cap = cap, .fd = -1 };
                c->out_mem += len;
        }
        return 0;
}

/* Drops k sent bytes from the front of the queue's memory parts. */
static void out_consume(Conn *c, size_t k) {
        while (k > 0) {
                OutPart *p = &c->out[c->ohead];
                size_t n = MIN(k, p->len);

                p->p += n;
                p->len -= n;
                c->out_mem -= n;
                k -= n;
                if (p->len == 0) {
                        part_drop(p);
                        c->ohead++;
                }
        }
}

static void send_deadline(Conn *c);

int conn_flush(Conn *c) {
        bool moved = false;
        int r = 0;

        while (c->ohead < c->olen) {
                OutPart *p = &c->out[c->ohead];
                ssize_t k;

                if (p->fd >= 0) {
                        do
                                k = sendfile(c->fd, p->fd, &p->off, MIN(p->len, (size_t) 1 << 30));
                        while (k < 0 && errno == EINTR);
                        if (k < 0) {
                                r = errno == EAGAIN ? -EAGAIN : -errno;
                                break;
                        }
                        if (k == 0) {
                                /* The file shrank under us: the promised length cannot be met. */
                                r = -EIO;
                                break;
                        }
                        p->len -= (size_t) k;
                        c->out_file -= (size_t) k;
                        if (p->len == 0) {
                                part_drop(p);
                                c->ohead++;
                        }
                } else {
                        struct iovec iov[16];
                        size_t i = c->ohead;
                        int n = 0;

                        for (; i < c->olen && n < (int) ELEMENTSOF(iov) && c->out[i].fd < 0; i++)
                                iov[n++] = (struct iovec) { (void *) c->out[i].p, c->out[i].len };
                        /* MSG_MORE before a file part: the head waits for the file's first bytes
                         * and leaves in the same segment, despite TCP_NODELAY. */
                        k = send_now(c, iov, n, i < c->olen && c->out[i].fd >= 0 ? MSG_MORE : 0);
                        if (k < 0) {
                                r = (int) k;
                                break;
                        }
                        if (k == 0) {
                                r = -EAGAIN;
                                break;
                        }
                        out_consume(c, (size_t) k);
                }
                moved = true;
        }
        if (c->ohead == c->olen)
                c->ohead = c->olen = 0;
        /* --timeout counts a stall, not the whole answer */
        if (moved && c->state == STATE_SEND)
                send_deadline(c);
        if (r < 0 && r != -EAGAIN)
                c->must_close = c->broken = true;
        return r;
}

void conn_out_discard(Conn *c) {
        for (size_t i = c->ohead; i < c->olen; i++)
                part_drop(&c->out[i]);
        c->ohead = c->olen = c->out_mem = 0;
        c->out_file = 0;
}

/* A socket turns writable only once a good part of its send buffer is free; a client that
 * reads slowly frees it a little at a time, and that is progress too: the kernel's queue is
 * looked at every SEND_PROBE_MS (conn_send_moving()), and the connection is cut after
 * --timeout without progress of either kind. */
static void send_deadline(Conn *c) {
        int q;

        c->sent_progress = clock_ms;
        c->sent_queued = ioctl(c->fd, SIOCOUTQ, &q) == 0 ? q : INT_MAX;
        c->deadline = clock_ms + MIN((uint64_t) c->cfg->io_timeout_ms, (uint64_t) SEND_PROBE_MS);
}

bool conn_out_pending(const Conn *c) {
        return c->ohead < c->olen;
}

bool conn_out_room(const Conn *c) {
        return c->out_mem < c->cfg->out_max;
}

uint64_t conn_out_queued(const Conn *c) {
        return (uint64_t) c->out_mem + c->out_file;
}

/* Blocks until the bytes queued in memory are back within ConnConfig.out_max. */
static int out_wait_room(Conn *c) {
        int r;

        while (c->out_mem > c->cfg->out_max) {
                r = conn_flush(c);
                if (r == -EAGAIN)
                        r = wait_fd(c, POLLOUT);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int send_direct(Conn *c, const struct iovec *iov, int iovcnt, int keep_from, bool wait) {
        size_t skip = 0;
        int i = 0, r;

        c->response_started = true;
        if (c->broken)
                return -EPIPE;
        if (c->ohead == c->olen) {
                ssize_t k = send_now(c, iov, iovcnt, 0);

                if (k < 0) {
                        r = (int) k;
                        goto fail;
                }
                skip = (size_t) k;
                while (i < iovcnt && skip >= iov[i].iov_len)
                        skip -= iov[i++].iov_len;
        }
        for (; i < iovcnt; i++, skip = 0) {
                r = out_append(c, (const char *) iov[i].iov_base + skip, iov[i].iov_len - skip, i >= keep_from);
                if (r < 0)
                        goto fail;
        }
        if (wait) {
                r = out_wait_room(c);
                if (r < 0)
                        goto fail;
        }
        return 0;
fail:
        /* -EINTR from the wait: the bytes are queued and go out later, the app's handler runs */
        if (r == -EINTR)
                return r;
        c->must_close = c->broken = true;
        return r;
}

int conn_send(Conn *c, const struct iovec *iov, int iovcnt, int keep_from, bool wait) {
        if (_unlikely_(c->cfg->offload && c->state == STATE_APP))
                return (int) offload(c, &(ConnIo) {
                        .op = CONN_IO_SEND, .iov = iov, .iovcnt = iovcnt, .keep_from = keep_from, .wait = wait,
                });
        return send_direct(c, iov, iovcnt, keep_from, wait);
}

int conn_send_last(Conn *c, const struct iovec *iov, int iovcnt, int keep_from) {
        size_t total = 0;
        int r;

        if (_likely_(!c->cfg->offload || c->state != STATE_APP))
                return send_direct(c, iov, iovcnt, keep_from, false);
        for (int i = 0; i < iovcnt; i++)
                total += iov[i].iov_len;
        /* Past the bound, or once the socket failed, as any send: the loop's, waited for. */
        if (c->broken || c->out_mem + total > c->cfg->out_max)
                return conn_send(c, iov, iovcnt, keep_from, false);
        /* The thread owns the connection (conn.h): the queue is its to fill, the socket is
         * left to the loop, which flushes the queue as soon as the answer is handed over. */
        c->response_started = true;
        for (int i = 0; i < iovcnt; i++) {
                r = out_append(c, iov[i].iov_base, iov[i].iov_len, i >= keep_from);
                if (r < 0) {
                        c->must_close = c->broken = true;
                        return r;
                }
        }
        return 0;
}

int conn_write(Conn *c, const struct iovec *iov, int iovcnt) {
        return conn_send(c, iov, iovcnt, iovcnt, true);
}

int conn_queue(Conn *c, const struct iovec *iov, int iovcnt) {
        OutPart *last = c->olen > c->ohead ? &c->out[c->olen - 1] : NULL;
        size_t len = 0;
        char *to;

        c->response_started = true;
        if (c->broken)
                return -EPIPE;
        for (int i = 0; i < iovcnt; i++)
                len += iov[i].iov_len;
        if (len == 0)
                return 0;
        if (last && last->own && last->own_cap - ((size_t) (last->p - last->own) + last->len) >= len) {
                to = (char *) last->p + last->len;
                last->len += len;
        } else {
                /* One part of the answer's size, not an OUT_BLOCK: these are small, and
                 * malloc() serves small sizes from its per-thread cache. */
                OutPart *p;
                char *own = malloc(len);

                if (!own) {
                        c->must_close = c->broken = true;
                        return -ENOMEM;
                }
                p = out_push(c);
                if (!p) {
                        free(own);
                        c->must_close = c->broken = true;
                        return -ENOMEM;
                }
                *p = (OutPart) { .p = own, .len = len, .own = own, .own_cap = len, .fd = -1 };
                to = own;
        }
        for (int i = 0; i < iovcnt; i++)
                if (iov[i].iov_len > 0) {
                        memcpy(to, iov[i].iov_base, iov[i].iov_len);
                        to += iov[i].iov_len;
                }
        c->out_mem += len;
        return 0;
}

size_t conn_out_mem(const Conn *c) {
        return c->out_mem;
}

static int send_file_direct(Conn *c, const struct iovec *iov, int iovcnt, int fd, off_t offset, size_t count) {
        OutPart *p;
        int r;

        /* The head waits for the file's first bytes and leaves in the same segment, despite
         * TCP_NODELAY: both go out through the queue, the head first. */
        c->response_started = true;
        if (c->broken)
                return -EPIPE;
        for (int i = 0; i < iovcnt; i++) {
                r = out_append(c, iov[i].iov_base, iov[i].iov_len, false);
                if (r < 0)
                        goto fail;
        }
        if (count > 0) {
                p = out_push(c);
                if (!p) {
                        r = -ENOMEM;
                        goto fail;
                }
                p->fd = fd;
                p->off = offset;
                p->len = count;
                c->out_file += count;
        }
        r = conn_flush(c);
        if (r < 0 && r != -EAGAIN)
                return r;
        return 0;
fail:
        c->must_close = c->broken = true;
        return r;
}

int conn_send_file(Conn *c, const struct iovec *iov, int iovcnt, int fd, off_t offset, size_t count) {
        if (_unlikely_(c->cfg->offload && c->state == STATE_APP))
                return (int) offload(c, &(ConnIo) {
                        .op = CONN_IO_FILE, .iov = iov, .iovcnt = iovcnt, .fd = fd, .offset = offset, .count = count,
                });
        return send_file_direct(c, iov, iovcnt, fd, offset, count);
}

void conn_send_later(Conn *c) {
        c->state = STATE_SEND;
        send_deadline(c);
}

/* For a wait for the client to take bytes whose deadline passed: see conn_send_moving(). */
static bool send_moving(Conn *c) {
        uint64_t stall = (uint64_t) c->cfg->io_timeout_ms;
        int q;

        if (c->broken || ioctl(c->fd, SIOCOUTQ, &q) < 0)
                return false;
        if (q < c->sent_queued)
                c->sent_progress = clock_ms;
        c->sent_queued = q;
        if (clock_ms >= c->sent_progress + stall)
                return false;
        c->deadline = MIN(c->sent_progress + stall, clock_ms + SEND_PROBE_MS);
        return true;
}

bool conn_send_moving(Conn *c) {
        return c->state == STATE_SEND && send_moving(c);
}

bool conn_in_app(const Conn *c) {
        return c->state == STATE_APP;
}

/* The app thread waits meanwhile, so what it lent (iov, the items of keep_from) stays put;
 * the waits are those conn_read_body() and conn_send() would do, in the loop. */
uint32_t conn_io_run(Conn *c, ConnIo *io) {
        size_t before;
        ssize_t k;
        int r;

        switch (io->op) {
        case CONN_IO_FILL:
                k = fill(c);
                if (k == -EAGAIN) {
                        c->deadline = clock_ms + (uint64_t) c->cfg->io_timeout_ms;
                        return EPOLLIN;
                }
                io->result = k;
                return 0;
        case CONN_IO_SEND:
                r = send_direct(c, io->iov, io->iovcnt, io->keep_from, false);
                if (r < 0 || !io->wait || c->out_mem <= c->cfg->out_max) {
                        io->result = r;
                        return 0;
                }
                io->op = CONN_IO_ROOM;
                io->iov = NULL;
                send_deadline(c);
                return EPOLLOUT;
        case CONN_IO_ROOM:
                before = c->out_mem;
                r = conn_flush(c);
                if ((r < 0 && r != -EAGAIN) || c->out_mem <= c->cfg->out_max) {
                        io->result = r == -EAGAIN ? 0 : r;
                        return 0;
                }
                if (c->out_mem < before)
                        send_deadline(c);
                return EPOLLOUT;
        case CONN_IO_FILE:
                io->result = send_file_direct(c, io->iov, io->iovcnt, io->fd, io->offset, io->count);
                return 0;
        case CONN_IO_DRAIN:
                before = c->out_mem + (size_t) MIN(c->out_file, (uint64_t) SIZE_MAX / 2);
                r = conn_flush(c);
                if ((r < 0 && r != -EAGAIN) || !conn_out_pending(c)) {
                        io->result = r == -EAGAIN ? 0 : r;
                        return 0;
                }
                /* --timeout counts a stall, from the first wait on */
                if (!io->started || c->out_mem + (size_t) MIN(c->out_file, (uint64_t) SIZE_MAX / 2) < before)
                        send_deadline(c);
                io->started = true;
                return EPOLLOUT;
        }
        io->result = -EINVAL;
        return 0;
}

bool conn_io_expired(Conn *c, ConnIo *io) {
        if ((io->op == CONN_IO_ROOM || io->op == CONN_IO_DRAIN) && send_moving(c))
                return true;
        /* as conn_send()'s own wait: what is queued cannot go out in time */
        if (io->op == CONN_IO_ROOM || io->op == CONN_IO_DRAIN)
                c->must_close = c->broken = true;
        io->result = -ETIMEDOUT;
        return false;
}

bool conn_sending(const Conn *c) {
        return c->state == STATE_SEND;
}

void *conn_stream(const Conn *c) {
        return c->stream;
}

void conn_set_stream(Conn *c, void *stream) {
        c->stream = stream;
}
