/* The metrics endpoint: one small HTTP/1.0-style exchange per connection, served from the
 * master's loop with non-blocking sockets and bounded buffers. */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>

#include "gcorn/conn.h"
#include "gcorn/json.h"
#include "gcorn/log.h"
#include "gcorn/macro.h"
#include "gcorn/metrics.h"

#define REQUEST_MAX 8192
/* After an accept() error other than a client gone (out of fds, out of memory) the listener
 * stays readable: polling it again at once would spin the master. */
#define ACCEPT_PAUSE_MS 1000

typedef struct Scrape {
        int fd;
        char in[REQUEST_MAX];
        size_t in_len;
        bool request;                   /* the head is complete */
        JsonBuf out;
        size_t out_sent;
} Scrape;

struct Metrics {
        int fd;
        char *unix_path;
        HeartbeatCounters totals;       /* of the reaped workers */
        Scrape scrapes[METRICS_CLIENTS_MAX];
        size_t n_scrapes;
        uint64_t accept_resume_ms;      /* no accept() before then */
        struct pollfd *pfd;
        size_t n_pfd;
};

typedef struct BindAddress {
        bool is_unix;
        char host[256];
        char port[16];
        char path[108];
} BindAddress;

static int parse_bind(const char *v, BindAddress *ret) {
        const char *colon;
        size_t n;

        *ret = (BindAddress) {};
        if (strncmp(v, "unix:", 5) == 0) {
                v += 5;
                if (strncmp(v, "//", 2) == 0)
                        v += 2;
                if (!*v || strlen(v) >= sizeof(ret->path))
                        return -EINVAL;
                ret->is_unix = true;
                strcpy(ret->path, v);
                return 0;
        }
        if (v[0] == '[') {
                const char *close = strchr(v, ']');

                if (!close || close[1] != ':')
                        return -EINVAL;
                n = (size_t) (close - v - 1);
                v++;
                colon = close + 1;
        } else {
                colon = strrchr(v, ':');
                if (!colon || strchr(v, ':') != colon)
                        return -EINVAL;
                n = (size_t) (colon - v);
        }
        if (n == 0 || n >= sizeof(ret->host) || !colon[1] || strlen(colon + 1) >= sizeof(ret->port) ||
            strspn(colon + 1, "0123456789") != strlen(colon + 1) || atol(colon + 1) > 65535)
                return -EINVAL;
        memcpy(ret->host, v, n);
        strcpy(ret->port, colon + 1);
        return 0;
}

int metrics_check_bind(const char *value, char **ret_value _unused_, char *reason, size_t reason_size) {
        BindAddress a;

        if (parse_bind(value, &a) < 0) {
                snprintf(reason, reason_size, "expected HOST:PORT, [IPV6]:PORT or unix:PATH");
                return -EINVAL;
        }
        return 0;
}

int metrics_new(const Settings *s, Metrics **ret) {
        _cleanup_close_ int fd = -1;
        char url[300];
        BindAddress a;
        Metrics *m;
        int r;

        *ret = NULL;
        if (!s->metrics_bind)
                return 0;
        if (parse_bind(s->metrics_bind, &a) < 0)
                return log_error_errno(EINVAL, "Invalid metrics_bind %s", s->metrics_bind);
        if (a.is_unix) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };

                strcpy(sa.sun_path, a.path);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (fd < 0)
                        return log_error_errno(errno, "Metrics: socket() failed: %m");
                (void) unlink(a.path);
                if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                        return log_error_errno(errno, "Cannot bind the metrics endpoint to %s: %m", s->metrics_bind);
                snprintf(url, sizeof(url), "unix:%s", a.path);
        } else {
                struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai = NULL;
                struct sockaddr_storage ss;
                socklen_t len = sizeof(ss);
                char host[INET6_ADDRSTRLEN], port[16];
                int on = 1;

                r = getaddrinfo(a.host, a.port, &hints, &ai);
                if (r != 0) {
                        log_error("Cannot resolve metrics_bind %s: %s", s->metrics_bind, gai_strerror(r));
                        return -EINVAL;
                }
                fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (fd >= 0)
                        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
                if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                        r = -errno;
                        freeaddrinfo(ai);
                        return log_error_errno(r, "Cannot bind the metrics endpoint to %s: %m", s->metrics_bind);
                }
                freeaddrinfo(ai);
                if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0 ||
                    getnameinfo((struct sockaddr *) &ss, len, host, sizeof(host), port, sizeof(port),
                                NI_NUMERICHOST | NI_NUMERICSERV) != 0)
                        return log_error_errno(errno, "Metrics: getsockname() failed: %m");
                snprintf(url, sizeof(url), ss.ss_family == AF_INET6 ? "http://[%s]:%s" : "http://%s:%s", host, port);
        }
        if (listen(fd, 64) < 0)
                return log_error_errno(errno, "Metrics: listen() failed: %m");
        m = calloc(1, sizeof(Metrics));
        if (!m)
                return log_error_errno(ENOMEM, "Metrics: %m");
        if (a.is_unix) {
                m->unix_path = strdup(a.path);
                if (!m->unix_path) {
                        free(m);
                        return log_error_errno(ENOMEM, "Metrics: %m");
                }
        }
        m->fd = TAKE_FD(fd);
        log_info("Metrics at: %s/metrics", url);
        *ret = m;
        return 0;
}

static void scrape_close(Metrics *m, size_t i) {
        safe_close(m->scrapes[i].fd);
        json_buf_done(&m->scrapes[i].out);
        m->scrapes[i] = m->scrapes[--m->n_scrapes];
}

Metrics *metrics_free(Metrics *m) {
        if (!m)
                return NULL;
        while (m->n_scrapes > 0)
                scrape_close(m, 0);
        safe_close(m->fd);
        if (m->unix_path)
                (void) unlink(m->unix_path);
        free(m->unix_path);
        free(m);
        return NULL;
}

void metrics_forget(Metrics *m) {
        if (!m)
                return;
        for (size_t i = 0; i < m->n_scrapes; i++)
                m->scrapes[i].fd = safe_close(m->scrapes[i].fd);
        m->fd = safe_close(m->fd);
}

static void add_counters(HeartbeatCounters *to, const HeartbeatCounters *from) {
        const uint64_t *f = (const uint64_t *) from;
        uint64_t *t = (uint64_t *) to;

        /* All fields are uint64_t. */
        for (size_t i = 0; i < sizeof(HeartbeatCounters) / sizeof(uint64_t); i++)
                t[i] += __atomic_load_n(&f[i], __ATOMIC_RELAXED);
}

void metrics_absorb(Metrics *m, const HeartbeatSlot *slot) {
        if (m)
                add_counters(&m->totals, &slot->counters);
}

size_t metrics_pollfds(Metrics *m, struct pollfd *pfd, size_t cap) {
        size_t n = 0;

        if (!m || cap == 0)
                return 0;
        m->pfd = pfd;
        pfd[n++] = (struct pollfd) { .fd = m->n_scrapes < METRICS_CLIENTS_MAX && now_ms() >= m->accept_resume_ms ?
                                           m->fd : -1,
                                     .events = POLLIN };
        for (size_t i = 0; i < m->n_scrapes && n < cap; i++) {
                Scrape *sc = &m->scrapes[i];

                pfd[n++] = (struct pollfd) { .fd = sc->fd, .events = sc->out.len > 0 ? POLLOUT : POLLIN };
        }
        m->n_pfd = n;
        return n;
}

static bool scrape_write(Scrape *sc) {
        while (sc->out_sent < sc->out.len) {
                ssize_t n = send(sc->fd, sc->out.p + sc->out_sent, sc->out.len - sc->out_sent,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);

                if (n < 0)
                        return errno == EAGAIN || errno == EINTR;
                sc->out_sent += (size_t) n;
        }
        return false;
}

static void reply(Scrape *sc, const char *status, const char *body) {
        json_printf(&sc->out, "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
                    "Connection: close\r\n\r\n%s", status, strlen(body), body);
}

static bool scrape_read(Scrape *sc) {
        ssize_t n;

        if (sc->in_len == sizeof(sc->in) - 1) {
                reply(sc, "431 Request Header Fields Too Large", "request too large\n");
                return true;
        }
        n = recv(sc->fd, sc->in + sc->in_len, sizeof(sc->in) - 1 - sc->in_len, MSG_DONTWAIT);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR;
        if (n == 0)
                return false;
        sc->in_len += (size_t) n;
        sc->in[sc->in_len] = 0;
        if (strstr(sc->in, "\r\n\r\n") || strstr(sc->in, "\n\n"))
                sc->request = true;
        return true;
}

bool metrics_io(Metrics *m) {
        bool pending = false;

        if (!m)
                return false;
        for (size_t k = m->n_pfd; k-- > 1;) {
                size_t i = k - 1;
                Scrape *sc = &m->scrapes[i];
                short re = m->pfd[k].revents;
                bool keep = true;

                if (re & POLLOUT)
                        keep = scrape_write(sc);
                else if (re & POLLIN)
                        keep = scrape_read(sc);
                else if (re & (POLLHUP | POLLERR))
                        keep = false;
                if (keep && sc->out.len > 0 && !(re & POLLOUT))
                        keep = scrape_write(sc);
                if (!keep)
                        scrape_close(m, i);
        }
        if (m->n_pfd > 0 && (m->pfd[0].revents & POLLIN))
                while (m->n_scrapes < METRICS_CLIENTS_MAX) {
                        int fd = accept4(m->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

                        if (fd < 0 && errno == ECONNABORTED)
                                continue;
                        if (fd < 0) {
                                if (errno != EAGAIN && errno != EINTR) {
                                        log_warning_errno(errno, "Metrics: accept() failed, pausing it for 1s: %m");
                                        m->accept_resume_ms = now_ms() + ACCEPT_PAUSE_MS;
                                }
                                break;
                        }
                        m->scrapes[m->n_scrapes++] = (Scrape) { .fd = fd };
                }
        m->n_pfd = 0;
        for (size_t i = 0; i < m->n_scrapes; i++)
                pending |= m->scrapes[i].request && m->scrapes[i].out.len == 0;
        return pending;
}

/* A UNIX listener's queue, asked of the kernel by the socket's inode over NETLINK_SOCK_DIAG:
 * for a listening socket, UNIX_DIAG_RQLEN holds the connections waiting and the limit. */
static int unix_listen_queue(int fd, unsigned *ret_queued, unsigned *ret_limit) {
        _cleanup_close_ int nl = -1;
        struct {
                struct nlmsghdr nlh;
                struct unix_diag_req req;
        } msg = {
                .nlh = { .nlmsg_len = sizeof(msg), .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_flags = NLM_F_REQUEST },
                .req = { .sdiag_family = AF_UNIX, .udiag_states = 1U << TCP_LISTEN, .udiag_show = UDIAG_SHOW_RQLEN,
                         .udiag_cookie = { INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE } },
        };
        union {
                struct nlmsghdr nlh;
                char buf[512];
        } ans;
        struct stat st;
        ssize_t n;

        if (fstat(fd, &st) < 0)
                return -errno;
        msg.req.udiag_ino = (uint32_t) st.st_ino;
        /* Fails where the unit's RestrictAddressFamilies= leaves AF_NETLINK out. */
        nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (nl < 0)
                return -errno;
        if (send(nl, &msg, sizeof(msg), MSG_NOSIGNAL) < 0)
                return -errno;
        /* The kernel answers within send(): nothing to wait for. */
        n = recv(nl, &ans, sizeof(ans), MSG_DONTWAIT);
        if (n < 0)
                return -errno;
        for (struct nlmsghdr *h = &ans.nlh; NLMSG_OK(h, (size_t) n); h = NLMSG_NEXT(h, n)) {
                struct unix_diag_msg *m = NLMSG_DATA(h);
                struct rtattr *a = (struct rtattr *) (m + 1);
                size_t len;

                if (h->nlmsg_type == NLMSG_ERROR) {
                        const struct nlmsgerr *e = NLMSG_DATA(h);

                        return e->error < 0 ? e->error : -EIO;
                }
                if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
                        continue;
                len = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
                for (; RTA_OK(a, len); a = RTA_NEXT(a, len))
                        if (a->rta_type == UNIX_DIAG_RQLEN && RTA_PAYLOAD(a) >= sizeof(struct unix_diag_rqlen)) {
                                const struct unix_diag_rqlen *q = RTA_DATA(a);

                                *ret_queued = q->udiag_rqueue;
                                *ret_limit = q->udiag_wqueue;
                                return 0;
                        }
        }
        return -ENODATA;
}

int metrics_listen_queue(const Listener *l, unsigned *ret_queued, unsigned *ret_limit) {
        struct tcp_info ti;
        socklen_t len = sizeof(ti);
        unsigned queued = 0, limit = 0;
        int r;

        if (l->fd < 0)
                return -EBADF;
        if (l->is_unix) {
                r = unix_listen_queue(l->fd, &queued, &limit);
                if (r < 0)
                        return r;
        } else {
                if (getsockopt(l->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
                        return -errno;
                /* A listening socket's tcpi_unacked is its accept queue, tcpi_sacked the limit. */
                queued = ti.tcpi_unacked;
                limit = ti.tcpi_sacked;
        }
        if (ret_queued)
                *ret_queued = queued;
        if (ret_limit)
                *ret_limit = limit;
        return 0;
}

static const char *const method_names[_HB_METHOD_MAX] = {
        [HB_GET] = "GET", [HB_HEAD] = "HEAD", [HB_POST] = "POST", [HB_PUT] = "PUT", [HB_DELETE] = "DELETE",
        [HB_PATCH] = "PATCH", [HB_OPTIONS] = "OPTIONS", [HB_OTHER_METHOD] = "other",
};

static void family(JsonBuf *b, const char *name, const char *type, const char *help) {
        json_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render(JsonBuf *b, Metrics *m, const ControlState *st) {
        static const uint16_t bounds[] = { HB_DURATION_BOUNDS };
        HeartbeatCounters c = m->totals;
        uint64_t open_conns = 0, cumulative = 0, count = 0;
        unsigned by_state[4] = {}, queued, limit;
        static const char *const state_names[] = { "booting", "idle", "busy", "stopping" };

        for (size_t i = 0; i < st->n_workers; i++) {
                const ControlWorker *w = &st->workers[i];
                uint32_t s = heartbeat_load(&w->slot->state);

                add_counters(&c, &w->slot->counters);
                open_conns += heartbeat_load(&w->slot->conns);
                by_state[w->stopping ? 3 : s == SLOT_BUSY ? 2 : s == SLOT_IDLE ? 1 : 0]++;
        }
        family(b, "gcorn_build_info", "gauge", "The gcorn version serving.");
        json_printf(b, "gcorn_build_info{version=\"%s\"} 1\n", GCORN_VERSION);
        family(b, "gcorn_generation", "gauge", "The generation of workers serving (a reload starts the next).");
        json_printf(b, "gcorn_generation %u\n", st->generation);
        family(b, "gcorn_reloads_total", "counter", "Reloads started.");
        json_printf(b, "gcorn_reloads_total %u\n", st->reloads);
        family(b, "gcorn_workers", "gauge", "Worker processes by state.");
        for (size_t i = 0; i < ELEMENTSOF(state_names); i++)
                json_printf(b, "gcorn_workers{state=\"%s\"} %u\n", state_names[i], by_state[i]);
        family(b, "gcorn_workers_wanted", "gauge", "The number of workers the master keeps.");
        json_printf(b, "gcorn_workers_wanted %d\n", st->target);
        family(b, "gcorn_worker_restarts_total", "counter",
               "Workers replaced after they ended unasked, by cause (the planned causes count from this image's start).");
        json_printf(b, "gcorn_worker_restarts_total{cause=\"crash\"} %" PRIu64 "\n", st->crashes);
        json_printf(b, "gcorn_worker_restarts_total{cause=\"timeout\"} %" PRIu64 "\n", st->timeouts);
        json_printf(b, "gcorn_worker_restarts_total{cause=\"max_requests\"} %" PRIu64 "\n", st->retired_max_requests);
        json_printf(b, "gcorn_worker_restarts_total{cause=\"max_worker_memory\"} %" PRIu64 "\n", st->retired_memory);
        json_printf(b, "gcorn_worker_restarts_total{cause=\"reload\"} %" PRIu64 "\n", st->retired_reload);
        family(b, "gcorn_http_requests_total", "counter", "Requests answered, by method and status class.");
        for (size_t i = 0; i < _HB_METHOD_MAX; i++)
                for (size_t k = 0; k < HB_STATUS_CLASSES; k++)
                        if (c.requests[i][k])
                                json_printf(b, "gcorn_http_requests_total{method=\"%s\",status=\"%s\"} %" PRIu64 "\n",
                                            method_names[i],
                                            (const char *const[]) { "none", "1xx", "2xx", "3xx", "4xx", "5xx" }[k],
                                            c.requests[i][k]);
        family(b, "gcorn_http_request_duration_seconds", "histogram", "Time from the request's head to the end of its answer.");
        for (size_t i = 0; i < HB_DURATION_BUCKETS; i++) {
                cumulative += c.duration[i];
                if (i < ELEMENTSOF(bounds))
                        json_printf(b, "gcorn_http_request_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                                    bounds[i] / 1000.0, cumulative);
                else
                        json_printf(b, "gcorn_http_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cumulative);
        }
        count = cumulative;
        json_printf(b, "gcorn_http_request_duration_seconds_sum %.3f\n", (double) c.duration_ms_sum / 1000.0);
        json_printf(b, "gcorn_http_request_duration_seconds_count %" PRIu64 "\n", count);
        family(b, "gcorn_http_response_body_bytes_total", "counter", "Response body bytes sent.");
        json_printf(b, "gcorn_http_response_body_bytes_total %" PRIu64 "\n", c.bytes_out);
        family(b, "gcorn_connections_accepted_total", "counter", "Connections accepted by the workers.");
        json_printf(b, "gcorn_connections_accepted_total %" PRIu64 "\n", c.accepted);
        family(b, "gcorn_connections_open", "gauge", "Connections the workers hold open.");
        json_printf(b, "gcorn_connections_open %" PRIu64 "\n", open_conns);
        family(b, "gcorn_listen_queue_length", "gauge", "Connections waiting in a listener's accept queue.");
        for (size_t i = 0; i < st->n_listeners; i++)
                if (metrics_listen_queue(&st->listeners[i], &queued, NULL) == 0)
                        json_printf(b, "gcorn_listen_queue_length{listener=\"%s\"} %u\n", st->listeners[i].url, queued);
        family(b, "gcorn_listen_queue_limit", "gauge", "The accept queue's limit of a listener (the backlog).");
        for (size_t i = 0; i < st->n_listeners; i++)
                if (metrics_listen_queue(&st->listeners[i], NULL, &limit) == 0)
                        json_printf(b, "gcorn_listen_queue_limit{listener=\"%s\"} %u\n", st->listeners[i].url, limit);
}

void metrics_answer(Metrics *m, const ControlState *st) {
        if (!m)
                return;
        for (size_t i = 0; i < m->n_scrapes; i++) {
                Scrape *sc = &m->scrapes[i];
                JsonBuf body = {};
                bool head;

                if (!sc->request || sc->out.len > 0)
                        continue;
                head = strncmp(sc->in, "HEAD ", 5) == 0;
                if (strncmp(sc->in, "GET /metrics ", 13) != 0 && strncmp(sc->in, "HEAD /metrics ", 14) != 0 &&
                    strncmp(sc->in, "GET /metrics?", 13) != 0) {
                        reply(sc, "404 Not Found", "the metrics are at /metrics\n");
                        continue;
                }
                render(&body, m, st);
                if (body.oom) {
                        reply(sc, "500 Internal Server Error", "out of memory\n");
                        json_buf_done(&body);
                        continue;
                }
                json_printf(&sc->out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                            "Content-Length: %zu\r\nConnection: close\r\n\r\n", body.len);
                if (!head)
                        json_append(&sc->out, body.p, body.len);
                json_buf_done(&body);
        }
}
