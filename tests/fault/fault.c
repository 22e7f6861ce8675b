/* Fault injection for the integration tests, loaded with LD_PRELOAD into the server:
 *   GCORN_FAULT_ACCEPT_ERRNO=N GCORN_FAULT_ACCEPT_MS=T
 *           accept4() fails with errno N for T ms from its first call in each process;
 *           with GCORN_FAULT_ACCEPT_TALLY=PATH, each failure it makes appends one byte there;
 *   GCORN_FAULT_WATCH_LISTENER_ERRNO=N
 *           the first epoll_ctl(EPOLL_CTL_ADD) of a listener (EPOLLEXCLUSIVE) in each
 *           process fails with errno N;
 *   GCORN_FAULT_RECV_EXIT=PATH
 *           the first process to receive a descriptor from another process on a
 *           SOCK_SEQPACKET socket (a worker taking a connection from the master's ready
 *           queue; the master's own registrations come from its own socket pair) exits at
 *           once after recvmsg(), having created PATH: the first one that creates it. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int env_int(const char *name) {
        const char *v = getenv(name);

        return v ? atoi(v) : 0;
}

static uint64_t mono_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
        static int (*real)(int, struct sockaddr *, socklen_t *, int);
        static uint64_t first;
        int e = env_int("GCORN_FAULT_ACCEPT_ERRNO");

        if (!real)
                real = (int (*)(int, struct sockaddr *, socklen_t *, int)) dlsym(RTLD_NEXT, "accept4");
        if (e > 0) {
                uint64_t now = mono_ms();

                if (first == 0)
                        first = now;
                if (now - first < (uint64_t) env_int("GCORN_FAULT_ACCEPT_MS")) {
                        const char *tally = getenv("GCORN_FAULT_ACCEPT_TALLY");

                        if (tally) {
                                int t = open(tally, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);

                                if (t >= 0) {
                                        (void) !write(t, "x", 1);
                                        close(t);
                                }
                        }
                        errno = e;
                        return -1;
                }
        }
        return real(fd, addr, len, flags);
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev) {
        static int (*real)(int, int, int, struct epoll_event *);
        static bool failed;
        int e = env_int("GCORN_FAULT_WATCH_LISTENER_ERRNO");

        if (!real)
                real = (int (*)(int, int, int, struct epoll_event *)) dlsym(RTLD_NEXT, "epoll_ctl");
        if (e > 0 && !failed && op == EPOLL_CTL_ADD && ev && (ev->events & EPOLLEXCLUSIVE)) {
                failed = true;
                errno = e;
                return -1;
        }
        return real(epfd, op, fd, ev);
}

/* Whether the message carried a descriptor. */
static bool has_rights(const struct msghdr *mh) {
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR((struct msghdr *) mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                        return true;
        return false;
}

ssize_t recvmsg(int sock, struct msghdr *mh, int flags) {
        static ssize_t (*real)(int, struct msghdr *, int);
        const char *marker = getenv("GCORN_FAULT_RECV_EXIT");
        struct ucred cred;
        socklen_t len = sizeof(cred);
        int type = 0, t;
        socklen_t tlen = sizeof(type);
        ssize_t n;

        if (!real)
                real = (ssize_t (*)(int, struct msghdr *, int)) dlsym(RTLD_NEXT, "recvmsg");
        n = real(sock, mh, flags);
        if (!marker || n <= 0 || !has_rights(mh))
                return n;
        /* A socket pair's peer credentials are its creator's: the master's, in a worker. */
        if (getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_SEQPACKET ||
            getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.pid == getpid())
                return n;
        t = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (t < 0)
                return n;
        close(t);
        _exit(3);
}
