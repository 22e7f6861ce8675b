/* Binary upgrade in place: the handoff memfd, the --check-config run of the new binary, and
 * the execve() with the sockets at fds 3…. */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "gcorn/macro.h"
#include "gcorn/notify.h"
#include "gcorn/upgrade.h"

extern char **environ;

#define UPGRADE_MAGIC UINT64_C(0x67636f726e555047)     /* "gcornUPG" */
#define UPGRADE_ENV "GCORN_UPGRADE_FD"
#define HANDOFF_MAX (16u << 20)

/* The part every layout keeps, followed by n_pids int32 PIDs. */
typedef struct WirePrefix {
        uint64_t magic;
        uint32_t version;
        uint32_t n_pids;
        uint32_t n_fds;                 /* fds passed right after the handoff's own: an image
                                         * that cannot read the rest closes them */
        uint32_t reserved;
} WirePrefix;

/* Layout 1, after the PIDs: this, then the listeners, the workers, the waiters. */
typedef struct WireBody {
        char old_version[32];
        uint32_t generation, last_generation;
        uint64_t requests_done, timeouts, crashes;
        int32_t heartbeat_fd;
        uint32_t n_listeners, n_workers, n_waiters;
} WireBody;

typedef struct WireListener {
        uint32_t inherited;             /* from systemd; else gcorn bound it */
        char fdname[64];
        char bind[256];
        char unix_path[108];            /* the socket file gcorn created, "" for none */
        /* Layout 2 on: the name systemd's fd store keeps a socket gcorn bound under, "" for
         * none. systemd still holds it after the exec (same PID, same unit); a stop of the new
         * image must leave it, and its file, for the next start. */
        char store_name[16];
} WireListener;

/* A listener as layout 1 wrote it: the same, without the store name. */
#define WIRE_LISTENER_V1_SIZE offsetof(WireListener, store_name)

typedef struct Command {
        char *binary;
        char **argv;
        char *start_dir;
} Command;

static UpgradeState *state;
static WireListener *wire_listeners;
static size_t n_wire_listeners;
static Command command;

/* Layout 1 is read as well: an image of it upgrading to this one passes on its workers. */
static bool known_version(uint32_t version) {
        return version == 1 || version == UPGRADE_LAYOUT_VERSION;
}

static int read_all(int fd, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        ssize_t n;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_size < (off_t) sizeof(WirePrefix) || (size_t) st.st_size > HANDOFF_MAX)
                return -EBADMSG;
        buf = malloc((size_t) st.st_size);
        if (!buf)
                return -ENOMEM;
        n = pread(fd, buf, (size_t) st.st_size, 0);
        if (n != st.st_size)
                return n < 0 ? -errno : -EBADMSG;
        *ret = TAKE_PTR(buf);
        *ret_size = (size_t) st.st_size;
        return 0;
}

/* The layout after the prefix; fails on anything short or out of range. */
static int parse_body(UpgradeState *s, uint32_t version, const char *p, size_t left) {
        size_t record = version == 1 ? WIRE_LISTENER_V1_SIZE : sizeof(WireListener);
        WireBody b;

        if (left < sizeof(b))
                return -EBADMSG;
        memcpy(&b, p, sizeof(b));
        p += sizeof(b);
        left -= sizeof(b);
        if (b.n_listeners > 4096 || b.n_workers > 65536 || b.n_waiters > UPGRADE_WAITERS_MAX)
                return -EBADMSG;
        if (left != b.n_listeners * record + b.n_workers * sizeof(UpgradeWorker) + b.n_waiters * sizeof(int32_t))
                return -EBADMSG;
        wire_listeners = calloc(MAX(b.n_listeners, 1u), sizeof(WireListener));
        s->workers = calloc(MAX(b.n_workers, 1u), sizeof(UpgradeWorker));
        if (!wire_listeners || !s->workers)
                return -ENOMEM;
        for (size_t i = 0; i < b.n_listeners; i++) {
                memcpy(&wire_listeners[i], p, record);
                p += record;
        }
        n_wire_listeners = b.n_listeners;
        memcpy(s->workers, p, b.n_workers * sizeof(UpgradeWorker));
        p += b.n_workers * sizeof(UpgradeWorker);
        s->n_workers = b.n_workers;
        for (size_t i = 0; i < b.n_waiters; i++) {
                int32_t pid;

                memcpy(&pid, p + i * sizeof(pid), sizeof(pid));
                s->waiters[i] = pid;
        }
        s->n_waiters = b.n_waiters;
        for (size_t i = 0; i < n_wire_listeners; i++) {
                wire_listeners[i].fdname[sizeof(wire_listeners[i].fdname) - 1] = 0;
                wire_listeners[i].bind[sizeof(wire_listeners[i].bind) - 1] = 0;
                wire_listeners[i].unix_path[sizeof(wire_listeners[i].unix_path) - 1] = 0;
                wire_listeners[i].store_name[sizeof(wire_listeners[i].store_name) - 1] = 0;
                /* Only a name gcorn gives: FDSTOREREMOVE=1 of another would drop what is not ours. */
                if (wire_listeners[i].store_name[0] && !notify_fdstore_name_is_ours(wire_listeners[i].store_name))
                        return -EBADMSG;
        }
        memcpy(s->old_version, b.old_version, sizeof(s->old_version));
        s->old_version[sizeof(s->old_version) - 1] = 0;
        s->generation = b.generation;
        s->last_generation = b.last_generation;
        s->requests_done = b.requests_done;
        s->timeouts = b.timeouts;
        s->crashes = b.crashes;
        s->heartbeat_fd = b.heartbeat_fd;
        s->known = true;
        return 0;
}

static int parse(int fd, UpgradeState *s) {
        _cleanup_free_ char *buf = NULL;
        WirePrefix prefix;
        size_t size, pids_size;
        int r;

        r = read_all(fd, &buf, &size);
        if (r < 0)
                return r;
        memcpy(&prefix, buf, sizeof(prefix));
        if (prefix.magic != UPGRADE_MAGIC || prefix.n_pids > 65536)
                return -EBADMSG;
        pids_size = prefix.n_pids * sizeof(int32_t);
        if (size < sizeof(prefix) + pids_size)
                return -EBADMSG;
        s->pids = calloc(MAX(prefix.n_pids, 1u), sizeof(pid_t));
        if (!s->pids)
                return -ENOMEM;
        for (size_t i = 0; i < prefix.n_pids; i++) {
                int32_t pid;

                memcpy(&pid, buf + sizeof(prefix) + i * sizeof(pid), sizeof(pid));
                s->pids[i] = pid;
        }
        s->n_pids = prefix.n_pids;
        s->heartbeat_fd = -1;
        if (!known_version(prefix.version)) {
                /* Inherited without FD_CLOEXEC: the app's subprocesses would get them. */
                for (uint32_t i = 1; i <= MIN(prefix.n_fds, 64u); i++)
                        (void) close(fd + (int) i);
                return 0;
        }
        return parse_body(s, prefix.version, buf + sizeof(prefix) + pids_size, size - sizeof(prefix) - pids_size);
}

int upgrade_take_handoff(void) {
        const char *e = getenv(UPGRADE_ENV);
        _cleanup_close_ int fd = -1;
        char *end;
        long v;
        int r;

        if (!e)
                return 0;
        errno = 0;
        v = strtol(e, &end, 10);
        unsetenv(UPGRADE_ENV);
        if (errno || *end || v < 3 || v > INT_MAX)
                return -EBADF;
        fd = (int) v;
        state = calloc(1, sizeof(UpgradeState));
        if (!state)
                return -ENOMEM;
        r = parse(fd, state);
        if (r < 0) {
                upgrade_state_done();
                return r;
        }
        /* Inherited without FD_CLOEXEC; the app's subprocesses must not get it. */
        if (state->known && fcntl(state->heartbeat_fd, F_SETFD, FD_CLOEXEC) < 0)
                state->known = false;
        return 1;
}

UpgradeState *upgrade_state(void) {
        return state;
}

void upgrade_state_done(void) {
        if (!state)
                return;
        free(state->workers);
        free(state->pids);
        state = mfree(state);
        wire_listeners = mfree(wire_listeners);
        n_wire_listeners = 0;
}

/* The binary as it was started: argv[0] with a '/' is taken as given (against the start
 * directory), without one it is looked up in $PATH. Not /proc/self/exe: after the file is
 * replaced, that is the old inode. */
static int resolve_binary(const char *argv0, const char *start_dir, char **ret) {
        const char *path = getenv("PATH");

        if (strchr(argv0, '/')) {
                if (argv0[0] == '/')
                        *ret = strdup(argv0);
                else if (asprintf(ret, "%s/%s", start_dir, argv0) < 0)
                        *ret = NULL;
                return *ret ? 0 : -ENOMEM;
        }
        for (const char *p = path ? path : "/usr/local/bin:/usr/bin:/bin"; *p;) {
                size_t len = strcspn(p, ":");
                _cleanup_free_ char *candidate = NULL;

                if (asprintf(&candidate, "%.*s/%s", (int) len, len ? p : ".", argv0) < 0)
                        return -ENOMEM;
                if (access(candidate, X_OK) == 0) {
                        if (candidate[0] != '/') {
                                if (asprintf(ret, "%s/%s", start_dir, candidate) < 0)
                                        return -ENOMEM;
                        } else
                                *ret = TAKE_PTR(candidate);
                        return 0;
                }
                p += len + (p[len] == ':');
        }
        return -ENOENT;
}

int upgrade_remember_command(int argc, char **argv) {
        int r;

        /* A directory removed since gives "/": the upgrade then needs absolute paths. */
        command.start_dir = getcwd(NULL, 0);
        if (!command.start_dir)
                command.start_dir = strdup("/");
        if (!command.start_dir)
                return -ENOMEM;
        command.argv = calloc((size_t) argc + 2, sizeof(char *));
        if (!command.argv)
                return -ENOMEM;
        for (int i = 0; i < argc; i++) {
                command.argv[i] = strdup(argv[i]);
                if (!command.argv[i])
                        return -ENOMEM;
        }
        /* Without the binary, a USR2 is refused and says so; serving goes on. */
        r = resolve_binary(argv[0], command.start_dir, &command.binary);
        return r == -ENOENT ? 0 : r;
}

const char *upgrade_binary(void) {
        return command.binary;
}

int upgrade_adopt_listeners(int backlog, Listener **ret, size_t *ret_n, char **ret_error) {
        const InheritedFd *inherited;
        Listener *l = NULL;
        size_t n_inherited, n = 0;
        int r;

        inherited = notify_inherited(&n_inherited);
        if (state->known && n_inherited != n_wire_listeners)
                return asprintf(ret_error, "The upgrade passed %zu sockets, its handoff describes %zu", n_inherited,
                                n_wire_listeners) < 0 ? -ENOMEM : -EBADMSG;
        r = listener_open_all(NULL, backlog, inherited, n_inherited, true, &l, &n, ret_error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                Listener *x = &l[i];
                bool bound = state->known ? !wire_listeners[i].inherited
                                          : strcmp(inherited[i].name, UPGRADE_BOUND_NAME) == 0;
                const char *path = NULL;
                char *bind = NULL;

                if (state->known)
                        bind = strdup(wire_listeners[i].bind);
                if (state->known && !bind) {
                        listener_free_all(l, n, false);
                        return -ENOMEM;
                }
                if (bind) {
                        free(x->bind);
                        x->bind = bind;
                }
                if (!bound)
                        continue;
                /* Bound by gcorn: closed at the start of a stop, its socket file removed,
                 * unless the fd store keeps it for the next start. */
                x->inherited = false;
                x->origin[0] = 0;
                x->fdname[0] = 0;
                if (state->known && wire_listeners[i].store_name[0]) {
                        snprintf(x->store_name, sizeof(x->store_name), "%s", wire_listeners[i].store_name);
                        snprintf(x->origin, sizeof(x->origin), " (stored as \"%s\")", x->store_name);
                }
                if (state->known && wire_listeners[i].unix_path[0])
                        path = wire_listeners[i].unix_path;
                else if (!state->known && x->is_unix && strncmp(x->url, "unix:", 5) == 0)
                        path = x->url + 5;
                if (path) {
                        x->unix_path = strdup(path);
                        if (!x->unix_path) {
                                listener_free_all(l, n, false);
                                return -ENOMEM;
                        }
                }
        }
        *ret = l;
        *ret_n = n;
        return 0;
}

int upgrade_check_start(UpgradeCheck *c, uint64_t now_ms, int timeout_s) {
        _cleanup_close_ int rd = -1, wr = -1;
        size_t argc = 0;
        int p[2];
        pid_t pid;

        if (!command.binary)
                return -ENOENT;
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        rd = p[0];
        wr = p[1];
        while (command.argv[argc])
                argc++;
        command.argv[argc] = (char *) "--check-config";
        pid = fork();
        if (pid < 0) {
                command.argv[argc] = NULL;
                return -errno;
        }
        if (pid == 0) {
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
                sigset_t none;

                sigemptyset(&none);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
                if (null >= 0)
                        (void) dup2(null, 0);
                (void) dup2(wr, 1);
                (void) dup2(wr, 2);
                if (chdir(command.start_dir) < 0)
                        _exit(126);
                execve(command.binary, command.argv, environ);
                dprintf(2, "cannot execute %s: %m\n", command.binary);
                _exit(127);
        }
        command.argv[argc] = NULL;
        (void) fcntl(rd, F_SETFL, O_NONBLOCK);
        *c = (UpgradeCheck) {
                .pid = pid,
                .fd = TAKE_FD(rd),
                .deadline_ms = now_ms + (uint64_t) timeout_s * 1000,
        };
        return 0;
}

int upgrade_check_poll(UpgradeCheck *c, uint64_t now_ms) {
        char buf[512];
        ssize_t n;
        pid_t pid;

        while ((n = read(c->fd, buf, sizeof(buf))) > 0) {
                size_t take = MIN((size_t) n, sizeof(c->output) - 1 - c->output_len);

                memcpy(c->output + c->output_len, buf, take);
                c->output_len += take;
                c->output[c->output_len] = 0;
        }
        if (now_ms >= c->deadline_ms)
                (void) kill(c->pid, SIGKILL);
        pid = waitpid(c->pid, &c->status, WNOHANG);
        if (pid == 0)
                return 0;
        if (pid < 0)
                c->status = W_EXITCODE(127, 0);
        while ((n = read(c->fd, buf, sizeof(buf))) > 0) {
                size_t take = MIN((size_t) n, sizeof(c->output) - 1 - c->output_len);

                memcpy(c->output + c->output_len, buf, take);
                c->output_len += take;
                c->output[c->output_len] = 0;
        }
        c->fd = safe_close(c->fd);
        c->pid = 0;
        return 1;
}

void upgrade_check_summary(const UpgradeCheck *c, char *buf, size_t cap) {
        size_t j = 0;
        bool space = false;

        for (size_t i = 0; i < c->output_len && j + 1 < cap; i++) {
                unsigned char ch = (unsigned char) c->output[i];

                if (ch == '\n' || ch == '\r' || ch == '\t' || ch == ' ') {
                        space = j > 0;
                        continue;
                }
                if (space && j + 2 < cap)
                        buf[j++] = ' ';
                space = false;
                buf[j++] = ch < 0x20 || ch == 0x7f ? '?' : (char) ch;
        }
        buf[j] = 0;
}

static int write_handoff(const Listener *listeners, size_t n_listeners, int heartbeat_fd, const UpgradeState *s,
                         int *ret) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        WirePrefix prefix = {
                .magic = UPGRADE_MAGIC,
                .version = UPGRADE_LAYOUT_VERSION,
                .n_pids = (uint32_t) s->n_workers,
                .n_fds = 1,
        };
        WireBody body = {
                .generation = s->generation,
                .last_generation = s->last_generation,
                .requests_done = s->requests_done,
                .timeouts = s->timeouts,
                .crashes = s->crashes,
                .heartbeat_fd = heartbeat_fd,
                .n_listeners = (uint32_t) n_listeners,
                .n_workers = (uint32_t) s->n_workers,
                .n_waiters = (uint32_t) s->n_waiters,
        };
        size_t size = sizeof(prefix) + s->n_workers * sizeof(int32_t) + sizeof(body) +
                      n_listeners * sizeof(WireListener) + s->n_workers * sizeof(UpgradeWorker) +
                      s->n_waiters * sizeof(int32_t);
        char *p;

        snprintf(body.old_version, sizeof(body.old_version), "%s", GCORN_VERSION);
        buf = calloc(1, size);
        if (!buf)
                return -ENOMEM;
        p = buf;
        memcpy(p, &prefix, sizeof(prefix));
        p += sizeof(prefix);
        for (size_t i = 0; i < s->n_workers; i++) {
                int32_t pid = s->workers[i].pid;

                memcpy(p, &pid, sizeof(pid));
                p += sizeof(pid);
        }
        memcpy(p, &body, sizeof(body));
        p += sizeof(body);
        for (size_t i = 0; i < n_listeners; i++) {
                WireListener w = { .inherited = listeners[i].inherited };

                snprintf(w.fdname, sizeof(w.fdname), "%s", listeners[i].fdname);
                snprintf(w.bind, sizeof(w.bind), "%s", listeners[i].bind ? listeners[i].bind : "");
                snprintf(w.unix_path, sizeof(w.unix_path), "%s", listeners[i].unix_path ? listeners[i].unix_path : "");
                snprintf(w.store_name, sizeof(w.store_name), "%s", listeners[i].store_name);
                memcpy(p, &w, sizeof(w));
                p += sizeof(w);
        }
        memcpy(p, s->workers, s->n_workers * sizeof(UpgradeWorker));
        p += s->n_workers * sizeof(UpgradeWorker);
        for (size_t i = 0; i < s->n_waiters; i++) {
                int32_t pid = s->waiters[i];

                memcpy(p, &pid, sizeof(pid));
                p += sizeof(pid);
        }
        fd = memfd_create("gcorn-upgrade", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (write(fd, buf, size) != (ssize_t) size)
                return errno ? -errno : -EIO;
        *ret = TAKE_FD(fd);
        return 0;
}

static int strv_push_format(char **l, size_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int strv_push_format(char **l, size_t *n, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&l[*n], fmt, ap);
        va_end(ap);
        if (r < 0) {
                l[*n] = NULL;
                return -ENOMEM;
        }
        (*n)++;
        return 0;
}

static bool passed_by_us(const char *e) {
        static const char *const prefixes[] = {
                "LISTEN_", "NOTIFY_SOCKET=", "WATCHDOG_", UPGRADE_ENV "=",
        };

        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
                if (strncmp(e, prefixes[i], strlen(prefixes[i])) == 0)
                        return true;
        return false;
}

/* The environment of the new image: ours, with what systemd gave at start put back and the
 * sockets described as systemd would. */
static int build_env(const Listener *listeners, size_t n_listeners, int handoff_fd, char ***ret) {
        _cleanup_strv_free_ char **env = NULL;
        _cleanup_free_ char *names = NULL;
        size_t n = 0, count = 0, len = 1;
        int r;

        for (char **e = environ; e && *e; e++)
                count++;
        env = calloc(count + 8, sizeof(char *));
        if (!env)
                return -ENOMEM;
        for (char **e = environ; e && *e; e++) {
                if (passed_by_us(*e))
                        continue;
                env[n] = strdup(*e);
                if (!env[n])
                        return -ENOMEM;
                n++;
        }
        for (size_t i = 0; i < n_listeners; i++)
                len += strlen(listeners[i].fdname) + sizeof(UPGRADE_BOUND_NAME) + 1;
        names = calloc(1, len);
        if (!names)
                return -ENOMEM;
        for (size_t i = 0; i < n_listeners; i++) {
                const char *name = listeners[i].inherited ? listeners[i].fdname : UPGRADE_BOUND_NAME;

                if (i > 0)
                        strcat(names, ":");
                strcat(names, name[0] ? name : "unknown");
        }
        r = strv_push_format(env, &n, "LISTEN_FDS=%zu", n_listeners);
        if (r >= 0)
                r = strv_push_format(env, &n, "LISTEN_PID=%d", (int) getpid());
        if (r >= 0)
                r = strv_push_format(env, &n, "LISTEN_FDNAMES=%s", names);
        if (r >= 0)
                r = strv_push_format(env, &n, UPGRADE_ENV "=%d", handoff_fd);
        if (r >= 0 && notify_socket_path())
                r = strv_push_format(env, &n, "NOTIFY_SOCKET=%s", notify_socket_path());
        if (r >= 0 && notify_watchdog_usec()) {
                r = strv_push_format(env, &n, "WATCHDOG_USEC=%llu", (unsigned long long) notify_watchdog_usec());
                if (r >= 0)
                        r = strv_push_format(env, &n, "WATCHDOG_PID=%d", (int) getpid());
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(env);
        return 0;
}

int upgrade_exec(const Listener *listeners, size_t n_listeners, int heartbeat_fd, const UpgradeState *s) {
        _cleanup_strv_free_ char **env = NULL;
        _cleanup_close_ int handoff = -1, cwd = -1;
        size_t n = n_listeners + 2;
        int floor = SD_LISTEN_FDS_START + (int) n;
        int src[n], tmp[n], saved[n], saved_flags[n];
        int r;

        /* Past the listeners: the handoff, then the heartbeat table it names. */
        r = write_handoff(listeners, n_listeners, SD_LISTEN_FDS_START + (int) n_listeners + 1, s, &handoff);
        if (r < 0)
                return r;
        r = build_env(listeners, n_listeners, SD_LISTEN_FDS_START + (int) n_listeners, &env);
        if (r < 0)
                return r;
        cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cwd < 0)
                return -errno;
        for (size_t i = 0; i < n_listeners; i++)
                src[i] = listeners[i].fd;
        src[n_listeners] = handoff;
        src[n_listeners + 1] = heartbeat_fd;

        /* Copies above fds 3…n+2 first, and whatever holds those numbers now put aside, so
         * that a failed execve() can put everything back. */
        for (size_t i = 0; i < n; i++) {
                tmp[i] = saved[i] = -1;
                saved_flags[i] = fcntl(SD_LISTEN_FDS_START + (int) i, F_GETFD);
        }
        for (size_t i = 0; i < n && r >= 0; i++) {
                tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, floor);
                if (tmp[i] < 0)
                        r = -errno;
                if (r >= 0 && saved_flags[i] >= 0) {
                        saved[i] = fcntl(SD_LISTEN_FDS_START + (int) i, F_DUPFD_CLOEXEC, floor);
                        if (saved[i] < 0)
                                r = -errno;
                }
        }
        if (r >= 0) {
                for (size_t i = 0; i < n; i++)
                        (void) dup2(tmp[i], SD_LISTEN_FDS_START + (int) i);
                /* Relative paths on the command line are relative to where it was run. */
                if (chdir(command.start_dir) < 0)
                        r = -errno;
                else {
                        execve(command.binary, command.argv, env);
                        r = -errno;
                        (void) fchdir(cwd);
                }
                for (size_t i = 0; i < n; i++) {
                        int fd = SD_LISTEN_FDS_START + (int) i;

                        if (saved[i] >= 0)
                                (void) dup3(saved[i], fd, (saved_flags[i] & FD_CLOEXEC) ? O_CLOEXEC : 0);
                        else
                                (void) close(fd);
                }
        }
        for (size_t i = 0; i < n; i++) {
                safe_close(tmp[i]);
                safe_close(saved[i]);
        }
        return r;
}
