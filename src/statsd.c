/* StatsD client, Gunicorn's metric names and formats. */
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "gcorn/log.h"
#include "gcorn/macro.h"
#include "gcorn/metrics.h"
#include "gcorn/statsd.h"

#define PACKET_MAX 512
/* Gunicorn's master sends the backlog each time round its loop, which sleeps a second. */
#define BACKLOG_INTERVAL_MS 1000

int statsd_socket = -1;
/* Each packet goes out as three pieces: the prefix, the metric, the tags. Neither is cut. */
static char *prefix;                    /* "" or "PREFIX." */
static char *tags;                      /* "" or "|#TAGS" */
static int last_workers = -1;
static bool backlog_metric;
static uint64_t backlog_next_ms;

typedef struct Address {
        bool is_unix;
        char host[256];
        char port[16];
        char path[108];
} Address;

static int parse_address(const char *v, Address *ret) {
        const char *colon;
        unsigned long port;
        char *end;

        *ret = (Address) {};
        /* Gunicorn keeps "unix:8125" meaning the host "unix". */
        if (strncmp(v, "unix:", 5) == 0 && v[5] && strspn(v + 5, "0123456789") != strlen(v + 5)) {
                const char *path = v + 5;

                if (strncmp(path, "//", 2) == 0)
                        path += 2;
                if (!*path || strlen(path) >= sizeof(ret->path))
                        return -EINVAL;
                ret->is_unix = true;
                strcpy(ret->path, path);
                return 0;
        }
        /* Gunicorn's parse_address() drops it (the packets are UDP all the same). */
        if (strncmp(v, "tcp://", 6) == 0)
                v += 6;
        if (v[0] == '[') {
                const char *close = strchr(v, ']');

                if (!close || (size_t) (close - v - 1) >= sizeof(ret->host) || close == v + 1)
                        return -EINVAL;
                memcpy(ret->host, v + 1, (size_t) (close - v - 1));
                colon = close[1] == ':' ? close + 1 : close[1] ? v : NULL;
                if (colon == v)
                        return -EINVAL;
        } else {
                colon = strrchr(v, ':');
                if (colon && strchr(v, ':') != colon)
                        return -EINVAL;         /* a bare IPv6 address needs its brackets */
                if ((colon ? (size_t) (colon - v) : strlen(v)) >= sizeof(ret->host))
                        return -EINVAL;
                memcpy(ret->host, v, colon ? (size_t) (colon - v) : strlen(v));
        }
        if (!ret->host[0])
                strcpy(ret->host, "localhost");
        if (!colon) {
                strcpy(ret->port, "8125");
                return 0;
        }
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (!colon[1] || *end || errno || port == 0 || port > 65535)
                return -EINVAL;
        snprintf(ret->port, sizeof(ret->port), "%lu", port);
        return 0;
}

int statsd_check_host(const char *value, char **ret_value _unused_, char *reason, size_t reason_size) {
        Address a;

        if (parse_address(value, &a) < 0) {
                snprintf(reason, reason_size, "expected HOST:PORT, [IPV6]:PORT or unix://PATH");
                return -EINVAL;
        }
        return 0;
}

/* Gunicorn's rule (^(.+[^.]+)\.*$ -> \1.): one dot after a prefix of two characters or more. */
static char *make_prefix(const char *p) {
        size_t n = strlen(p);
        char *ret;

        while (n > 0 && p[n - 1] == '.')
                n--;
        if (n < 2)
                return strdup(p);
        return asprintf(&ret, "%.*s.", (int) n, p) < 0 ? NULL : ret;
}

int statsd_open(const Settings *s) {
        _cleanup_close_ int fd = -1;
        Address a;
        int r;

        statsd_close();
        if (!s->statsd_host)
                return 0;
        if (parse_address(s->statsd_host, &a) < 0)
                return log_error_errno(EINVAL, "Invalid statsd_host %s", s->statsd_host);
        if (a.is_unix) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };

                strcpy(sa.sun_path, a.path);
                fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (fd < 0)
                        return log_error_errno(errno, "statsd: socket() failed: %m");
                /* Like Gunicorn, a server not there yet is no error: its packets are lost. */
                (void) connect(fd, (struct sockaddr *) &sa, sizeof(sa));
        } else {
                struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai = NULL;

                r = getaddrinfo(a.host, a.port, &hints, &ai);
                if (r != 0) {
                        log_error("Cannot resolve statsd_host %s: %s", s->statsd_host, gai_strerror(r));
                        return -EINVAL;
                }
                fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                        r = -errno;
                        freeaddrinfo(ai);
                        return log_error_errno(r, "statsd: cannot reach %s: %m", s->statsd_host);
                }
                freeaddrinfo(ai);
        }
        prefix = make_prefix(s->statsd_prefix ? s->statsd_prefix : "");
        if (s->dogstatsd_tags && s->dogstatsd_tags[0]) {
                if (asprintf(&tags, "|#%s", s->dogstatsd_tags) < 0)
                        tags = NULL;
        } else
                tags = strdup("");
        if (!prefix || !tags) {
                statsd_close();
                return log_error_errno(ENOMEM, "statsd: %m");
        }
        last_workers = -1;
        backlog_metric = s->enable_backlog_metric;
        backlog_next_ms = 0;
        statsd_socket = TAKE_FD(fd);
        return 0;
}

void statsd_close(void) {
        statsd_socket = safe_close(statsd_socket);
        prefix = mfree(prefix);
        tags = mfree(tags);
}

/* Sends n packets, each the prefix, one metric and the tags, in one system call. Never
 * waits: a full socket or an absent server loses them. */
static void send_packets(const char *const *metrics, const size_t *lens, size_t n) {
        struct iovec iov[3 * 3];
        struct mmsghdr msgs[3] = {};
        size_t p = strlen(prefix), t = strlen(tags);

        assert(n <= ELEMENTSOF(msgs));
        for (size_t i = 0; i < n; i++) {
                iov[3 * i] = (struct iovec) { .iov_base = prefix, .iov_len = p };
                iov[3 * i + 1] = (struct iovec) { .iov_base = (char *) metrics[i], .iov_len = lens[i] };
                iov[3 * i + 2] = (struct iovec) { .iov_base = tags, .iov_len = t };
                msgs[i].msg_hdr = (struct msghdr) { .msg_iov = &iov[3 * i], .msg_iovlen = 3 };
        }
        (void) sendmmsg(statsd_socket, msgs, (unsigned) n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

_printf_(1, 2)
static void send_metric(const char *fmt, ...) {
        char buf[PACKET_MAX];
        const char *metric = buf;
        size_t len;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t) n >= sizeof(buf))
                return;
        len = (size_t) n;
        send_packets(&metric, &len, 1);
}

/* Decimal digits of v at p; returns their number (at most 20). */
static size_t put_u64(char *p, uint64_t v) {
        char t[20];
        size_t n = 0;

        do
                t[n++] = (char) ('0' + v % 10);
        while ((v /= 10) > 0);
        for (size_t i = 0; i < n; i++)
                p[i] = t[n - 1 - i];
        return n;
}

#define PUT_LITERAL(p, s) (memcpy((p), (s), sizeof(s) - 1), sizeof(s) - 1)

/* Per request, so without printf: the three packets Gunicorn's access() sends. */
void statsd_request(int status, uint64_t duration_us) {
        static const char requests[] = "gunicorn.requests:1|c|@1.0";
        char duration[64], code[64];
        const char *metrics[3] = { duration, requests, code };
        size_t lens[3] = { 0, sizeof(requests) - 1, 0 }, n = 0, frac = 3;
        char digits[3];

        if (statsd_socket < 0)
                return;
        /* Milliseconds as Python prints Gunicorn's float: "12.0", "0.523", "1000.25". */
        n += PUT_LITERAL(duration + n, "gunicorn.request.duration:");
        n += put_u64(duration + n, duration_us / 1000);
        duration[n++] = '.';
        for (size_t i = 0, us = duration_us % 1000; i < 3; i++, us /= 10)
                digits[2 - i] = (char) ('0' + us % 10);
        while (frac > 1 && digits[frac - 1] == '0')
                frac--;
        memcpy(duration + n, digits, frac);
        n += frac;
        n += PUT_LITERAL(duration + n, "|ms");
        lens[0] = n;
        if (status <= 0) {
                send_packets(metrics, lens, 2);
                return;
        }
        n = PUT_LITERAL(code, "gunicorn.request.status.");
        n += put_u64(code + n, (uint64_t) status);
        n += PUT_LITERAL(code + n, ":1|c|@1.0");
        lens[2] = n;
        send_packets(metrics, lens, 3);
}

void statsd_workers(int n) {
        if (statsd_socket < 0 || n == last_workers)
                return;
        last_workers = n;
        send_metric("gunicorn.workers:%d|g", n);
}

void statsd_log(int level) {
        if (statsd_socket < 0 || level > LOG_WARNING)
                return;
        send_metric("gunicorn.log.%s:1|c|@1.0", level <= LOG_CRIT ? "critical" : level == LOG_ERR ? "error" : "warning");
}

void statsd_exception(void) {
        if (statsd_socket >= 0)
                send_metric("gunicorn.log.exception:1|c|@1.0");
}

void statsd_backlog(const Listener *listeners, size_t n, uint64_t now) {
        unsigned total = 0, queued;
        bool any = false;

        if (statsd_socket < 0 || !backlog_metric || now < backlog_next_ms)
                return;
        backlog_next_ms = now + BACKLOG_INTERVAL_MS;
        /* UNIX listeners have no queue length to add, as in Gunicorn; with none but them
         * nothing is sent (Gunicorn's sum is negative then, and it sends nothing either). */
        for (size_t i = 0; i < n; i++)
                if (!listeners[i].is_unix && metrics_listen_queue(&listeners[i], &queued, NULL) == 0) {
                        total += queued;
                        any = true;
                }
        if (any)
                send_metric("gunicorn.backlog:%u|h", total);
}
