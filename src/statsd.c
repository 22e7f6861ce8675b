/* StatsD client, Gunicorn's metric names and formats. */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
static char prefix[256];
static char tags[256];                  /* "|#TAGS" or "" */
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
static void set_prefix(const char *p) {
        size_t n = strlen(p);

        while (n > 0 && p[n - 1] == '.')
                n--;
        if (n >= 2)
                snprintf(prefix, sizeof(prefix), "%.*s.", (int) n, p);
        else
                snprintf(prefix, sizeof(prefix), "%s", p);
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
        set_prefix(s->statsd_prefix ? s->statsd_prefix : "");
        if (s->dogstatsd_tags && s->dogstatsd_tags[0])
                snprintf(tags, sizeof(tags), "|#%s", s->dogstatsd_tags);
        else
                tags[0] = 0;
        last_workers = -1;
        backlog_metric = s->enable_backlog_metric;
        backlog_next_ms = 0;
        statsd_socket = TAKE_FD(fd);
        return 0;
}

void statsd_close(void) {
        statsd_socket = safe_close(statsd_socket);
}

_printf_(1, 2)
static void send_metric(const char *fmt, ...) {
        char buf[PACKET_MAX];
        va_list ap;
        int n, m;

        n = snprintf(buf, sizeof(buf), "%s", prefix);
        va_start(ap, fmt);
        m = vsnprintf(buf + n, sizeof(buf) - (size_t) n, fmt, ap);
        va_end(ap);
        if (m < 0 || (size_t) (n + m) >= sizeof(buf))
                return;
        n += m;
        m = snprintf(buf + n, sizeof(buf) - (size_t) n, "%s", tags);
        if ((size_t) (n + m) >= sizeof(buf))
                return;
        /* Never waits: a full socket or an absent server loses the packet. */
        (void) send(statsd_socket, buf, (size_t) (n + m), MSG_DONTWAIT | MSG_NOSIGNAL);
}

void statsd_request(int status, uint64_t duration_us) {
        if (statsd_socket < 0)
                return;
        send_metric("gunicorn.request.duration:%llu.%03llu|ms", (unsigned long long) (duration_us / 1000),
                    (unsigned long long) (duration_us % 1000));
        send_metric("gunicorn.requests:1|c|@1.0");
        if (status > 0)
                send_metric("gunicorn.request.status.%d:1|c|@1.0", status);
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
