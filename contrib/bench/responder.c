/* The benchmark's physical-limit reference: no Python, no parser, no headers beyond the
 * minimum. N processes, each with its own SO_REUSEPORT listener and epoll loop, find the end
 * of each request head ("\r\n\r\n", so pipelined and keep-alive requests work) and answer
 * every head with one fixed "Hello, World!" response. A head that carries
 * "Connection: close" gets the response with that header and the connection is closed, so
 * that workload makes clients reconnect as it does with the real servers.
 *
 *   responder HOST PORT PROCESSES
 *
 * The parent forks the workers, waits for SIGTERM/SIGINT, passes it on and reaps them. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define IN_MAX 16384
#define EVENTS_MAX 256

static const char RESPONSE[] =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
static const char RESPONSE_CLOSE[] =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
        "Connection: close\r\n\r\nHello, World!";

typedef struct Conn {
        int fd;
        size_t in_len;
        char *out;
        size_t out_len, out_off, out_cap;
        int closing;
        char in[IN_MAX + 1];
} Conn;

static volatile sig_atomic_t stop;

static void on_term(int sig) {
        (void) sig;
        stop = 1;
}

static int listen_on(const char *host, int port) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
        int one = 1, fd;

        if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
                return -1;
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        /* Inherited by accepted sockets; and accept() only once the request is there. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *) &a, sizeof a) < 0 || listen(fd, 4096) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

static void conn_free(Conn *c) {
        close(c->fd);
        free(c->out);
        free(c);
}

static int out_append(Conn *c, const char *p, size_t n) {
        if (c->out_len + n > c->out_cap) {
                size_t cap = c->out_cap ? c->out_cap * 2 : 4096;
                char *b;

                while (cap < c->out_len + n)
                        cap *= 2;
                b = realloc(c->out, cap);
                if (!b)
                        return -1;
                c->out = b;
                c->out_cap = cap;
        }
        memcpy(c->out + c->out_len, p, n);
        c->out_len += n;
        return 0;
}

/* Returns 1 when everything queued went out, 0 when the socket is full, -1 on error. */
static int flush(Conn *c) {
        while (c->out_off < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN ? 0 : -1;
                }
                c->out_off += (size_t) n;
        }
        c->out_off = c->out_len = 0;
        return 1;
}

/* Answers every complete head in the input buffer; keeps a partial one for the next read. */
static int answer(Conn *c) {
        size_t start = 0;

        c->in[c->in_len] = '\0';
        while (!c->closing) {
                char *end = memmem(c->in + start, c->in_len - start, "\r\n\r\n", 4);
                size_t head_len;
                int close_it;

                if (!end)
                        break;
                head_len = (size_t) (end - (c->in + start)) + 4;
                end[2] = '\0';
                close_it = strcasestr(c->in + start, "\r\nconnection: close") != NULL;
                end[2] = '\r';
                if (close_it) {
                        c->closing = 1;
                        if (out_append(c, RESPONSE_CLOSE, sizeof RESPONSE_CLOSE - 1) < 0)
                                return -1;
                } else if (out_append(c, RESPONSE, sizeof RESPONSE - 1) < 0)
                        return -1;
                start += head_len;
        }
        memmove(c->in, c->in + start, c->in_len - start);
        c->in_len -= start;
        if (c->in_len == IN_MAX)
                return -1;      /* a head larger than the buffer: not a benchmark request */
        return 0;
}

/* Returns -1 when the connection is gone (freed), 0 when it waits for input, 1 when it
 * waits for the socket to take more output. */
static int on_readable(Conn *c) {
        for (;;) {
                ssize_t n = recv(c->fd, c->in + c->in_len, IN_MAX - c->in_len, 0);
                int r;

                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                        goto dead;
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return 0;
                }
                c->in_len += (size_t) n;
                if (answer(c) < 0)
                        goto dead;
                r = flush(c);
                if (r < 0)
                        goto dead;
                if (r == 0)
                        return 1;
                if (c->closing)
                        goto dead;
                if ((size_t) n < IN_MAX)
                        return 0;
        }
dead:
        conn_free(c);
        return -1;
}

static void on_writable(int ep, Conn *c) {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        int r = flush(c);

        if (r < 0 || (r > 0 && c->closing)) {
                conn_free(c);
                return;
        }
        if (r > 0)
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void accept_all(int ep, int lfd) {
        for (;;) {
                int r, fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                struct epoll_event ev = { .events = EPOLLIN };
                Conn *c;

                if (fd < 0)
                        return;
                c = calloc(1, sizeof *c);
                if (!c) {
                        close(fd);
                        continue;
                }
                c->fd = fd;
                /* The listener defers accept() until the request arrives: answer it now, and
                 * watch the connection only if it stays open. */
                r = on_readable(c);
                if (r < 0)
                        continue;
                if (r == 1)
                        ev.events = EPOLLOUT;
                ev.data.ptr = c;
                if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
                        conn_free(c);
        }
}

static int serve(const char *host, int port) {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL }, events[EVENTS_MAX];
        int lfd = listen_on(host, port), ep = epoll_create1(EPOLL_CLOEXEC);

        if (lfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
                perror("responder: listen");
                return 1;
        }
        while (!stop) {
                int n = epoll_wait(ep, events, EVENTS_MAX, 1000);

                for (int i = 0; i < n; i++) {
                        Conn *c = events[i].data.ptr;

                        if (!c)
                                accept_all(ep, lfd);
                        else if (events[i].events & EPOLLOUT)
                                on_writable(ep, c);
                        else if (on_readable(c) == 1) {
                                struct epoll_event out = { .events = EPOLLOUT, .data.ptr = c };

                                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &out);
                        }
                }
        }
        return 0;
}

int main(int argc, char **argv) {
        struct sigaction sa = { .sa_handler = on_term };
        int n, port, probe;
        pid_t *kids;

        if (argc != 4) {
                fprintf(stderr, "usage: responder HOST PORT PROCESSES\n");
                return 2;
        }
        port = atoi(argv[2]);
        n = atoi(argv[3]);
        if (port <= 0 || n <= 0)
                return 2;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        /* Fail in the parent when the port is taken, before any worker starts; the probe is
         * closed before the workers listen, so no connection is queued on it. */
        probe = listen_on(argv[1], port);
        if (probe < 0) {
                perror("responder: bind");
                return 1;
        }
        close(probe);
        kids = calloc((size_t) n, sizeof *kids);
        if (!kids)
                return 1;
        for (int i = 0; i < n; i++) {
                kids[i] = fork();
                if (kids[i] == 0)
                        return serve(argv[1], port);
        }
        fprintf(stderr, "responder: listening at http://%s:%d (%d processes)\n", argv[1], port, n);
        while (!stop)
                pause();
        for (int i = 0; i < n; i++)
                if (kids[i] > 0)
                        kill(kids[i], SIGTERM);
        for (int i = 0; i < n; i++)
                if (kids[i] > 0)
                        waitpid(kids[i], NULL, 0);
        free(kids);
        return 0;
}
