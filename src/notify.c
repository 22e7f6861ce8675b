/* sd_notify() is reimplemented here instead of called from libsystemd because libsystemd
 * reads NOTIFY_SOCKET from the environment on every call, and gcorn removes it from the
 * environment at start so that the app's subprocesses cannot talk to PID 1 as us. */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "gcorn/macro.h"
#include "gcorn/notify.h"

static char *notify_socket;             /* $NOTIFY_SOCKET as given, for a binary upgrade */
static struct sockaddr_un notify_addr;
static socklen_t notify_addr_len;
static uint64_t watchdog_usec;
static InheritedFd *inherited;
static size_t n_inherited;
static InheritedFd *stored;
static size_t n_stored;
static unsigned fdstore_max;

static void remember_notify_socket(void) {
        const char *e = getenv("NOTIFY_SOCKET");
        size_t len;

        if (!e || (e[0] != '/' && e[0] != '@'))
                return;
        len = strlen(e);
        if (len >= sizeof(notify_addr.sun_path))
                return;
        notify_socket = strdup(e);
        if (!notify_socket)
                return;
        notify_addr.sun_family = AF_UNIX;
        memcpy(notify_addr.sun_path, e, len);
        /* A leading '@' names the abstract namespace: a NUL byte on the wire. */
        if (e[0] == '@')
                notify_addr.sun_path[0] = 0;
        notify_addr_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len);
}

/* $FDSTORE: FileDescriptorStoreMax=, set by systemd 254 and later when it is above 0; the
 * standalone unit sets it too, for systemd 252. */
static void remember_fdstore(void) {
        const char *e = getenv("FDSTORE");
        char *end;
        unsigned long v;

        if (!e || !*e)
                return;
        errno = 0;
        v = strtoul(e, &end, 10);
        if (errno || *end || v > 4096)
                return;
        fdstore_max = (unsigned) v;
}

int notify_setup(void) {
        char **names = NULL;
        int n;

        remember_notify_socket();
        remember_fdstore();
        if (sd_watchdog_enabled(1, &watchdog_usec) <= 0)
                watchdog_usec = 0;

        n = sd_listen_fds_with_names(1, &names);
        if (n < 0)
                return n;
        if (n > 0) {
                inherited = calloc((size_t) n, sizeof(InheritedFd));
                stored = calloc((size_t) n, sizeof(InheritedFd));
                if (!inherited || !stored) {
                        strv_free(names);
                        return -ENOMEM;
                }
                /* What the fd store gives back carries the names gcorn stored it under; the
                 * rest comes from socket units. */
                for (int i = 0; i < n; i++) {
                        InheritedFd f = {
                                .fd = SD_LISTEN_FDS_START + i,
                                .name = names && names[i] ? TAKE_PTR(names[i]) : strdup("unknown"),
                        };

                        if (f.name && notify_fdstore_name_is_ours(f.name))
                                stored[n_stored++] = f;
                        else
                                inherited[n_inherited++] = f;
                }
        }
        strv_free(names);

        unsetenv("NOTIFY_SOCKET");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDNAMES");
        unsetenv("LISTEN_PIDFDID");
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
        unsetenv("FDSTORE");
        return (int) n_inherited;
}

const InheritedFd *notify_inherited(size_t *ret_n) {
        *ret_n = n_inherited;
        return inherited;
}

const InheritedFd *notify_stored(size_t *ret_n) {
        *ret_n = n_stored;
        return stored;
}

bool notify_fdstore_name_is_ours(const char *name) {
        size_t len = strlen(NOTIFY_FDSTORE_PREFIX);

        return strncmp(name, NOTIFY_FDSTORE_PREFIX, len) == 0 && name[len] >= '0' && name[len] <= '9' &&
               name[len + strspn(name + len, "0123456789")] == 0;
}

bool notify_fdstore_enabled(void) {
        return notify_addr_len > 0 && (fdstore_max > 0 || n_stored > 0);
}

int notify_fdstore_add(int fd, const char *name) {
        char buf[128];
        union {
                struct cmsghdr h;
                char space[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = buf };
        struct msghdr mh = {
                .msg_name = &notify_addr,
                .msg_namelen = notify_addr_len,
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        struct cmsghdr *cmsg;
        _cleanup_close_ int sock = -1;
        int n;

        if (!notify_addr_len)
                return -ENOTCONN;
        n = snprintf(buf, sizeof(buf), "FDSTORE=1\nFDNAME=%s", name);
        if (n < 0 || (size_t) n >= sizeof(buf))
                return -EINVAL;
        iov.iov_len = (size_t) n;
        cmsg = CMSG_FIRSTHDR(&mh);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
        sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (sock < 0)
                return -errno;
        if (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0)
                return -errno;
        return 0;
}

void notify_fdstore_remove(const char *name) {
        notify_send("FDSTOREREMOVE=1\nFDNAME=%s", name);
}

bool notify_enabled(void) {
        return notify_addr_len > 0;
}

uint64_t notify_watchdog_interval_ms(void) {
        return watchdog_usec / 2000;
}

void notify_send(const char *fmt, ...) {
        char buf[1024];
        va_list ap;
        int fd, n;

        if (!notify_addr_len)
                return;
        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        /* A fresh socket per message: one left connected across an exec confuses PID 1. */
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return;
        (void) sendto(fd, buf, MIN((size_t) n, sizeof(buf) - 1), MSG_NOSIGNAL, (struct sockaddr *) &notify_addr,
                      notify_addr_len);
        safe_close(fd);
}

void notify_ready(const char *status) {
        notify_send("READY=1\nSTATUS=%s", status);
}

void notify_reloading(uint64_t extend_usec) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        notify_send("RELOADING=1\nMONOTONIC_USEC=%llu\nEXTEND_TIMEOUT_USEC=%llu\nSTATUS=reloading",
                    (unsigned long long) ts.tv_sec * 1000000ULL + (unsigned long long) ts.tv_nsec / 1000,
                    (unsigned long long) extend_usec);
}

void notify_stopping(const char *status) {
        notify_send("STOPPING=1\nSTATUS=%s", status);
}

void notify_watchdog(void) {
        notify_send("WATCHDOG=1");
}

void notify_status(const char *status) {
        notify_send("STATUS=%s", status);
}

void notify_extend_timeout(uint64_t usec) {
        notify_send("EXTEND_TIMEOUT_USEC=%llu", (unsigned long long) usec);
}

void notify_failure(int error, const char *status) {
        notify_send("STATUS=Failed: %s\nERRNO=%d", status, error < 0 ? -error : error);
}

static uint64_t monotonic_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Without word from the master, the HUP goes again this often, for at most this long. */
#define RELOAD_RESEND_MS 2000
#define RELOAD_NO_WORD_MS 30000

const char *notify_socket_path(void) {
        return notify_socket;
}

uint64_t notify_watchdog_usec(void) {
        return watchdog_usec;
}

int notify_reload_and_wait(int pid) {
        return notify_signal_and_wait(pid, SIGHUP);
}

/* The effective UID of process pid, from /proc, or -1. */
static uid_t effective_uid_of(int pid) {
        _cleanup_close_ int fd = -1;
        char path[64], buf[2048];
        const char *line;
        unsigned ruid, euid;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/status", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return (uid_t) -1;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return (uid_t) -1;
        buf[n] = 0;
        line = strstr(buf, "\nUid:");
        if (!line || sscanf(line + 1, "Uid: %u %u", &ruid, &euid) != 2)
                return (uid_t) -1;
        return (uid_t) euid;
}

/* The master answers with a signal, which the kernel lets through only when its user is the
 * waiting process's real or saved one (or it has CAP_KILL, which a hardened unit drops). Run
 * by root against a master of another user (DynamicUser=), the answer would be refused and
 * the wait would end in a timeout: root takes the master's user as its real one, keeping the
 * effective and saved ones, and with them its privileges. */
static void let_the_master_answer(int pid) {
        uid_t uid;

        if (geteuid() != 0)
                return;
        uid = effective_uid_of(pid);
        if (uid == (uid_t) -1 || uid == 0 || uid == getuid())
                return;
        (void) setresuid(uid, (uid_t) -1, (uid_t) -1);
}

int notify_signal_and_wait(int pid, int signo) {
        union sigval v = { .sival_int = NOTIFY_RELOAD_COOKIE };
        struct timespec tick = { .tv_nsec = 200 * 1000 * 1000 };
        uint64_t start = monotonic_ms(), sent = start, deadline = 0;
        sigset_t mask;
        siginfo_t si;

        sigemptyset(&mask);
        sigaddset(&mask, SIGRTMIN);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        let_the_master_answer(pid);
        if (sigqueue(pid, signo, v) < 0)
                return -errno;
        for (;;) {
                int sig = sigtimedwait(&mask, &si, &tick);
                uint64_t now = monotonic_ms();

                if (sig == SIGRTMIN && si.si_pid == pid) {
                        int answer = si.si_value.sival_int;

                        if ((answer & 0xff) != NOTIFY_RELOAD_WAIT)
                                return answer == NOTIFY_RELOAD_OK ? 0 : -EIO;
                        deadline = now + (uint64_t) ((unsigned) answer >> 8) * 1000;
                        continue;
                }
                if (sig < 0 && errno != EAGAIN && errno != EINTR)
                        return -errno;
                if (deadline && now >= deadline)
                        return -ETIMEDOUT;
                if (!deadline && now - start >= RELOAD_NO_WORD_MS)
                        return -ETIMEDOUT;
                if (!deadline && now - sent >= RELOAD_RESEND_MS) {
                        v.sival_int = NOTIFY_RELOAD_COOKIE_AGAIN;
                        if (sigqueue(pid, signo, v) < 0)
                                return -errno;
                        sent = now;
                }
                /* The master died: no answer will come. */
                if (kill(pid, 0) < 0 && errno == ESRCH)
                        return -ESRCH;
        }
}
