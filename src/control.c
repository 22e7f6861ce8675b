/* The master's side of the control socket. Each client sends one JSON object per line,
 * {"command": "scale", "args": ["+1"]}, and gets one line back, {"ok": true, "data": {...},
 * "text": "..."} or {"ok": false, "error": "..."}; "reload" answers when the new generation
 * serves. Only the socket's owner and root get in (SO_PEERCRED). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "gcorn/conn.h"
#include "gcorn/control.h"
#include "gcorn/json.h"
#include "gcorn/log.h"
#include "gcorn/macro.h"

/* An answer that does not fit is cut off with the connection: a client that never reads
 * must not make the master hold memory without bound. */
#define ANSWER_MAX (4 * 1024 * 1024)
/* A client gets this long to send its line. */
#define CLIENT_IDLE_MS 10000
/* And this long to read its answer. */
#define CLIENT_ANSWER_MS 60000
/* After an accept() error other than a client gone (out of fds, out of memory) the listener
 * stays readable: polling it again at once would spin the master. */
#define ACCEPT_PAUSE_MS 1000

typedef struct Client {
        int fd;
        uid_t uid;
        pid_t pid;
        char *in;
        size_t in_len;
        JsonBuf out;
        size_t out_sent;
        bool request;                   /* a whole line in in[] waits for control_answer() */
        bool waiting;                   /* a reload it waits for */
        uint32_t wait_generation;       /* 0: the next one to start */
        bool closing;                   /* close once out[] is sent */
        uint64_t since_ms;              /* accepted at */
} Client;

struct Control {
        int fd;
        char *path;
        dev_t dev;                      /* of the socket file, to remove only our own */
        ino_t ino;
        Client clients[CONTROL_CLIENTS_MAX];
        size_t n_clients;
        uint64_t accept_resume_ms;      /* no accept() before then */
        /* Which pollfd is whose, from the last control_pollfds(). */
        struct pollfd *pfd;
        size_t n_pfd;
};

int control_socket_path(const Settings *s, char **ret, bool *ret_explicit) {
        const char *dir;
        char *p = NULL;

        *ret_explicit = false;
        if (s->control_socket_disable) {
                *ret = NULL;
                return 0;
        }
        if (s->control_socket) {
                *ret_explicit = true;
                p = strdup(s->control_socket);
        } else if ((dir = getenv("RUNTIME_DIRECTORY")) && *dir) {
                /* systemd's RuntimeDirectory= may list several: the first is ours. */
                size_t n = strcspn(dir, ":");

                if (asprintf(&p, "%.*s/ctl", (int) n, dir) < 0)
                        p = NULL;
        } else if ((dir = getenv("XDG_RUNTIME_DIR")) && *dir) {
                if (asprintf(&p, "%s/gunicorn.ctl", dir) < 0)
                        p = NULL;
        } else if ((dir = getenv("HOME")) && *dir) {
                if (asprintf(&p, "%s/.gunicorn/gunicorn.ctl", dir) < 0)
                        p = NULL;
        } else {
                *ret = NULL;
                return 0;
        }
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

static int fill_sockaddr(const char *path, struct sockaddr_un *sa) {
        *sa = (struct sockaddr_un) { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        strcpy(sa->sun_path, path);
        return 0;
}

/* Another live master answers on this path: it is not ours to take. */
static bool path_is_live(const struct sockaddr_un *sa) {
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return false;
        return connect(fd, (const struct sockaddr *) sa, sizeof(*sa)) == 0;
}

int control_new(const Settings *s, Control **ret) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        struct sockaddr_un sa;
        struct stat st;
        bool explicit;
        Control *c;
        int r;

        *ret = NULL;
        r = control_socket_path(s, &path, &explicit);
        if (r < 0)
                return log_error_errno(r, "Control socket: %m");
        if (!path)
                return 0;
        r = fill_sockaddr(path, &sa);
        if (r < 0) {
                log_internal(explicit ? LOG_WARNING : LOG_INFO, 0,
                             "Control socket %s: path too long; running without it", path);
                return 0;
        }
        if (!explicit) {
                /* Gunicorn's default place: its directory is made if needed. */
                char *slash = strrchr(path, '/');

                if (slash && slash != path) {
                        *slash = 0;
                        (void) mkdir(path, 0700);
                        *slash = '/';
                }
        }
        if (path_is_live(&sa)) {
                /* Two servers of one user share the default path: the first keeps it. */
                if (explicit)
                        log_warning("Control socket %s is in use by another server; running without it", path);
                else
                        log_info("Control socket %s is in use by another server; running without one", path);
                return 0;
        }
        (void) unlink(path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(errno, "Control socket: socket() failed: %m");
        {
                /* Never a moment with a wider mode than asked for. */
                mode_t old = umask(0777 & ~(mode_t) s->control_socket_mode);

                r = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
                (void) umask(old);
        }
        if (r < 0 || chmod(path, (mode_t) s->control_socket_mode) < 0 || listen(fd, 16) < 0) {
                /* Only a path the user named is worth a warning; Gunicorn's default places
                 * may simply not be writable (a HOME of /, a read-only file system). */
                log_internal(explicit ? LOG_WARNING : LOG_INFO, 0,
                             "Control socket %s cannot be opened (%s); running without it", path, strerror(errno));
                return 0;
        }
        c = calloc(1, sizeof(Control));
        if (!c)
                return log_error_errno(ENOMEM, "Control socket: %m");
        if (stat(path, &st) == 0) {
                c->dev = st.st_dev;
                c->ino = st.st_ino;
        }
        c->fd = TAKE_FD(fd);
        c->path = TAKE_PTR(path);
        log_info("Control socket at: %s", c->path);
        *ret = c;
        return 0;
}

static void client_close(Control *c, size_t i) {
        Client *cl = &c->clients[i];

        safe_close(cl->fd);
        free(cl->in);
        json_buf_done(&cl->out);
        c->clients[i] = c->clients[--c->n_clients];
}

Control *control_free(Control *c) {
        struct stat st;

        if (!c)
                return NULL;
        while (c->n_clients > 0)
                client_close(c, 0);
        safe_close(c->fd);
        /* A server started since on the same path has its own file there now. */
        if (c->path && stat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
                (void) unlink(c->path);
        free(c->path);
        free(c);
        return NULL;
}

void control_forget(Control *c) {
        if (!c)
                return;
        for (size_t i = 0; i < c->n_clients; i++)
                c->clients[i].fd = safe_close(c->clients[i].fd);
        c->fd = safe_close(c->fd);
}

size_t control_pollfds(Control *c, struct pollfd *pfd, size_t cap) {
        size_t n = 0;

        if (!c || cap == 0)
                return 0;
        /* Answered clients go, and so do the ones that never finished their line: they
         * would hold the few places there are. */
        for (size_t i = c->n_clients; i-- > 0;) {
                Client *cl = &c->clients[i];

                if ((cl->closing && cl->out_sent >= cl->out.len) ||
                    (!cl->request && !cl->waiting && !cl->closing && now_ms() - cl->since_ms > CLIENT_IDLE_MS) ||
                    (cl->closing && now_ms() - cl->since_ms > CLIENT_ANSWER_MS))
                        client_close(c, i);
        }
        c->pfd = pfd;
        pfd[n++] = (struct pollfd) { .fd = c->n_clients < CONTROL_CLIENTS_MAX && now_ms() >= c->accept_resume_ms ?
                                           c->fd : -1,
                                     .events = POLLIN };
        for (size_t i = 0; i < c->n_clients && n < cap; i++) {
                Client *cl = &c->clients[i];
                short ev = 0;

                if (cl->out_sent < cl->out.len)
                        ev |= POLLOUT;
                else if (!cl->request && !cl->waiting && !cl->closing)
                        ev |= POLLIN;
                pfd[n++] = (struct pollfd) { .fd = cl->fd, .events = ev };
        }
        c->n_pfd = n;
        return n;
}

static void answer_error(Client *cl, const char *error) {
        json_append(&cl->out, "{\"ok\":false,\"error\":", 20);
        json_string(&cl->out, error, strlen(error));
        json_append(&cl->out, "}\n", 2);
}

static void accept_client(Control *c) {
        struct ucred cred;
        socklen_t len = sizeof(cred);
        int fd;

        while (c->n_clients < CONTROL_CLIENTS_MAX) {
                fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd < 0 && errno == ECONNABORTED)
                        continue;
                if (fd < 0) {
                        if (errno != EAGAIN && errno != EINTR) {
                                log_warning_errno(errno, "Control socket: accept() failed, pausing it for 1s: %m");
                                c->accept_resume_ms = now_ms() + ACCEPT_PAUSE_MS;
                        }
                        return;
                }
                if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                        safe_close(fd);
                        continue;
                }
                if (cred.uid != 0 && cred.uid != geteuid()) {
                        static const char refusal[] = "{\"ok\":false,\"error\":\"permission denied\"}\n";

                        log_warning("Control socket: refused pid %d of uid %u (only uid %u and root may connect)",
                                    (int) cred.pid, (unsigned) cred.uid, (unsigned) geteuid());
                        (void) !send(fd, refusal, sizeof(refusal) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
                        safe_close(fd);
                        continue;
                }
                c->clients[c->n_clients++] = (Client) { .fd = fd, .uid = cred.uid, .pid = cred.pid,
                                                        .since_ms = now_ms() };
        }
}

/* Returns false when the client is done with. */
static bool client_read(Client *cl) {
        for (;;) {
                char *nl;
                ssize_t n;

                if (!cl->in) {
                        cl->in = malloc(CONTROL_LINE_MAX + 1);
                        if (!cl->in)
                                return false;
                }
                if (cl->in_len == CONTROL_LINE_MAX) {
                        answer_error(cl, "command too long (the limit is 65536 bytes)");
                        cl->closing = true;
                        return true;
                }
                n = recv(cl->fd, cl->in + cl->in_len, CONTROL_LINE_MAX - cl->in_len, MSG_DONTWAIT);
                if (n < 0)
                        return errno == EAGAIN || errno == EINTR;
                if (n == 0)
                        return false;
                cl->in_len += (size_t) n;
                nl = memchr(cl->in, '\n', cl->in_len);
                if (nl) {
                        /* One request per connection: anything after it is ignored. */
                        cl->in_len = (size_t) (nl - cl->in);
                        cl->in[cl->in_len] = 0;
                        cl->request = true;
                        return true;
                }
        }
}

/* Returns false when the client is done with. */
static bool client_write(Client *cl) {
        while (cl->out_sent < cl->out.len) {
                ssize_t n = send(cl->fd, cl->out.p + cl->out_sent, cl->out.len - cl->out_sent,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);

                if (n < 0)
                        return errno == EAGAIN || errno == EINTR;
                cl->out_sent += (size_t) n;
        }
        return !cl->closing;
}

bool control_io(Control *c) {
        bool pending = false;

        if (!c)
                return false;
        for (size_t k = c->n_pfd; k-- > 1;) {
                size_t i = k - 1;
                Client *cl = &c->clients[i];
                short re = c->pfd[k].revents;
                bool keep = true;

                if (re & POLLOUT)
                        keep = client_write(cl);
                else if (re & POLLIN)
                        keep = client_read(cl);
                else if (re & (POLLHUP | POLLERR))
                        keep = false;
                if (keep && cl->out_sent < cl->out.len && !(re & POLLOUT))
                        keep = client_write(cl);
                if (!keep)
                        client_close(c, i);
        }
        if (c->n_pfd > 0 && (c->pfd[0].revents & POLLIN))
                accept_client(c);
        c->n_pfd = 0;
        for (size_t i = 0; i < c->n_clients; i++)
                pending |= c->clients[i].request;
        return pending;
}

typedef struct CtlRequest {
        char *command;
        char *args[4];
        size_t n_args;
        bool bad;
} CtlRequest;

static void request_arg(const JsonSpan *v, void *userdata) {
        CtlRequest *q = userdata;

        if (q->n_args == ELEMENTSOF(q->args)) {
                q->bad = true;
                return;
        }
        if (v->type == '"') {
                if (json_string_decode(v, &q->args[q->n_args]) < 0)
                        q->bad = true;
                else
                        q->n_args++;
        } else if (v->type == 'n') {
                q->args[q->n_args] = strndup(v->p, v->len);
                if (!q->args[q->n_args])
                        q->bad = true;
                else
                        q->n_args++;
        } else
                q->bad = true;
}

static void request_member(const JsonSpan *key, const JsonSpan *value, void *userdata) {
        CtlRequest *q = userdata;

        if (json_key_is(key, "command")) {
                free(q->command);
                q->command = NULL;
                if (json_string_decode(value, &q->command) < 0)
                        q->bad = true;
        } else if (json_key_is(key, "args")) {
                if (json_array_each(value, request_arg, q) < 0)
                        q->bad = true;
        }
}

static void request_done(CtlRequest *q) {
        free(q->command);
        for (size_t i = 0; i < q->n_args; i++)
                free(q->args[i]);
}

/* The snapshot's "now" is read before the table: a request a worker begins while the
 * answer is being built is stamped later than that, and is new rather than of negative age. */
static double age_seconds(uint64_t now, uint64_t since) {
        return now > since ? (double) (now - since) / 1000.0 : 0.0;
}

static const char *worker_state(const ControlWorker *w) {
        if (w->stopping)
                return "stopping";
        if (heartbeat_load(&w->slot->retiring))
                return "retiring";
        switch (heartbeat_load(&w->slot->state)) {
        case SLOT_BOOTING:
                return "booting";
        case SLOT_IDLE:
                return "idle";
        case SLOT_BUSY:
                return "busy";
        default:
                return "unknown";
        }
}

static uint64_t worker_rss(pid_t pid) {
        char path[64];
        unsigned long size, resident;
        FILE *f;
        int n;

        snprintf(path, sizeof(path), "/proc/%d/statm", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return 0;
        n = fscanf(f, "%lu %lu", &size, &resident);
        fclose(f);
        return n == 2 ? (uint64_t) resident * (uint64_t) sysconf(_SC_PAGESIZE) : 0;
}

/* FNV-1a over the settings as --print-config shows them: two masters with one digest run
 * with the same settings. */
static uint64_t fnv1a(const char *text, size_t len) {
        uint64_t h = 0xcbf29ce484222325ULL;

        for (size_t i = 0; i < len; i++)
                h = (h ^ (unsigned char) text[i]) * 0x100000001b3ULL;
        return h;
}

static void status_json(JsonBuf *b, const ControlState *st, uint64_t now) {
        json_printf(b, "{\"pid\":%d,\"version\":", (int) st->pid);
        json_string(b, GCORN_VERSION, strlen(GCORN_VERSION));
        json_printf(b, ",\"generation\":%u,\"target_workers\":%d,\"reloading\":%s,\"stopping\":%s,\"uptime\":%.3f",
                    st->generation, st->target, st->reloading ? "true" : "false", st->stopping ? "true" : "false",
                    age_seconds(now, st->started_ms));
        json_append(b, ",\"listeners\":[", 14);
        for (size_t i = 0; i < st->n_listeners; i++) {
                if (i)
                        json_append(b, ",", 1);
                json_string(b, st->listeners[i].url, strlen(st->listeners[i].url));
        }
        {
                _cleanup_free_ char *text = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&text, &len);
                uint64_t h = 0;

                if (f) {
                        settings_print_config(st->settings, f, NULL);
                        fclose(f);
                }
                if (text)
                        h = fnv1a(text, len);
                json_printf(b, "],\"settings_digest\":\"%016" PRIx64 "\",\"workers\":[", h);
        }
        for (size_t i = 0; i < st->n_workers; i++) {
                const ControlWorker *w = &st->workers[i];
                const HeartbeatSlot *s = w->slot;
                uint32_t inflight = MIN(heartbeat_load(&s->inflight), (uint32_t) HEARTBEAT_INFLIGHT_MAX);

                json_printf(b, "%s{\"pid\":%d,\"generation\":%u,\"state\":\"%s\",\"age\":%.3f,\"requests\":%" PRIu64
                            ",\"rss\":%" PRIu64 ",\"connections\":%u,\"in_flight\":[",
                            i ? "," : "", (int) w->pid, w->generation, worker_state(w),
                            age_seconds(now, w->spawned_ms), heartbeat_load64(&s->requests), worker_rss(w->pid),
                            heartbeat_load(&s->conns));
                for (uint32_t j = 0; j < inflight; j++) {
                        const HeartbeatRequest *q = &s->requests_inflight[j];
                        uint64_t start = heartbeat_load64(&q->start_ms);

                        json_append(b, j ? ",{\"method\":" : "{\"method\":", j ? 11 : 10);
                        json_string(b, q->method, strnlen(q->method, sizeof(q->method)));
                        json_append(b, ",\"path\":", 8);
                        json_string(b, q->path, strnlen(q->path, sizeof(q->path)));
                        json_append(b, ",\"remote_addr\":", 15);
                        json_string(b, q->remote, strnlen(q->remote, sizeof(q->remote)));
                        json_printf(b, ",\"age\":%.3f}", age_seconds(now, start));
                }
                json_printf(b, "],\"in_flight_more\":%u}", heartbeat_load(&s->inflight_more));
        }
        json_append(b, "]}", 2);
}

static void workers_text(JsonBuf *t, const ControlState *st, uint64_t now) {
        json_printf(t, "%-8s %-4s %-9s %9s %9s %10s  %s\n", "PID", "GEN", "STATE", "AGE", "REQUESTS", "RSS", "REQUEST");
        for (size_t i = 0; i < st->n_workers; i++) {
                const ControlWorker *w = &st->workers[i];
                const HeartbeatSlot *s = w->slot;
                uint32_t inflight = MIN(heartbeat_load(&s->inflight), (uint32_t) HEARTBEAT_INFLIGHT_MAX);

                json_printf(t, "%-8d %-4u %-9s %8.1fs %9" PRIu64 " %9.1fM ", (int) w->pid, w->generation,
                            worker_state(w), age_seconds(now, w->spawned_ms), heartbeat_load64(&s->requests),
                            (double) worker_rss(w->pid) / (1024.0 * 1024.0));
                if (inflight == 0)
                        json_append(t, " -\n", 3);
                for (uint32_t j = 0; j < inflight; j++) {
                        const HeartbeatRequest *q = &s->requests_inflight[j];

                        json_printf(t, "%s %.16s %.200s from %.64s for %.1fs\n", j ? "                                                          " : "",
                                    q->method, q->path, q->remote[0] ? q->remote : "unix",
                                    age_seconds(now, heartbeat_load64(&q->start_ms)));
                }
                if (heartbeat_load(&s->inflight_more))
                        json_printf(t, "%58s and %u more\n", "", heartbeat_load(&s->inflight_more));
        }
}

static void status_text(JsonBuf *t, const ControlState *st, uint64_t now) {
        json_printf(t, "gcorn %s, master pid %d, generation %u%s, up %.0f s\n", GCORN_VERSION, (int) st->pid,
                    st->generation, st->stopping ? " (stopping)" : st->reloading ? " (reloading)" : "",
                    age_seconds(now, st->started_ms));
        for (size_t i = 0; i < st->n_listeners; i++)
                json_printf(t, "listening at %s\n", st->listeners[i].url);
        json_printf(t, "workers: %zu running, %d wanted\n\n", st->n_workers, st->target);
        workers_text(t, st, now);
}

/* "3", "+1", "-1": the new worker count, or -EINVAL. */
static int parse_scale(const char *arg, int target) {
        char *end;
        long v;

        errno = 0;
        v = strtol(arg, &end, 10);
        if (errno || end == arg || *end)
                return -EINVAL;
        if (arg[0] == '+' || arg[0] == '-')
                v += target;
        if (v < 1 || v > SETTINGS_WORKERS_MAX)
                return -ERANGE;
        return (int) v;
}

static void answer_one(Client *cl, const ControlState *st, ControlActions *act) {
        _cleanup_(request_done) CtlRequest q = {};
        JsonBuf data = {}, text = {};
        uint64_t now = now_ms();
        const char *cmd;

        cl->request = false;
        cl->closing = true;
        if (json_object_each(cl->in, cl->in_len, request_member, &q) < 0 || q.bad) {
                answer_error(cl, "malformed request: one JSON object per line, {\"command\": \"status\"}");
                return;
        }
        if (!q.command) {
                answer_error(cl, "no \"command\" in the request");
                return;
        }
        cmd = q.command;
        log_info("Control: %s%s%s (pid %d, uid %u)", cmd, q.n_args ? " " : "", q.n_args ? q.args[0] : "",
                 (int) cl->pid, (unsigned) cl->uid);
        if (st->stopping && strcmp(cmd, "status") != 0 && strcmp(cmd, "workers") != 0) {
                answer_error(cl, "the server is stopping");
                return;
        }
        if (strcmp(cmd, "status") == 0 || strcmp(cmd, "workers") == 0) {
                status_json(&data, st, now);
                if (strcmp(cmd, "status") == 0)
                        status_text(&text, st, now);
                else
                        workers_text(&text, st, now);
        } else if (strcmp(cmd, "scale") == 0) {
                int n;

                if (q.n_args != 1) {
                        answer_error(cl, "scale needs one argument: N, +N or -N");
                        return;
                }
                n = parse_scale(q.args[0], st->target);
                if (n < 0) {
                        char why[128];

                        snprintf(why, sizeof(why), "scale: %s is not a worker count from 1 to %d", q.args[0],
                                 SETTINGS_WORKERS_MAX);
                        answer_error(cl, why);
                        return;
                }
                act->scale_to = n;
                json_printf(&data, "{\"workers\":%d,\"previous\":%d}", n, st->target);
                json_printf(&text, "workers: %d (were %d)\n", n, st->target);
        } else if (strcmp(cmd, "kill") == 0) {
                const ControlWorker *w = NULL;
                long pid;
                char *end;

                pid = q.n_args == 1 ? strtol(q.args[0], &end, 10) : 0;
                for (size_t i = 0; pid > 0 && !*end && i < st->n_workers; i++)
                        if (st->workers[i].pid == pid)
                                w = &st->workers[i];
                if (!w) {
                        answer_error(cl, "kill needs the PID of one of the workers");
                        return;
                }
                act->kill_pid = w->pid;
                json_printf(&data, "{\"pid\":%d}", (int) w->pid);
                json_printf(&text, "worker %d told to stop; a new one replaces it\n", (int) w->pid);
        } else if (strcmp(cmd, "reopen-logs") == 0) {
                act->reopen_logs = true;
                json_append(&data, "{}", 2);
                json_append(&text, "logs reopened\n", 14);
        } else if (strcmp(cmd, "stop") == 0) {
                act->stop = true;
                json_printf(&data, "{\"pid\":%d}", (int) st->pid);
                json_append(&text, "stopping\n", 9);
        } else if (strcmp(cmd, "reload") == 0) {
                act->reload = true;
                cl->closing = false;
                cl->waiting = true;
                cl->wait_generation = 0;
                return;
        } else {
                char why[160];

                snprintf(why, sizeof(why), "unknown command \"%.64s\" (status, workers, reload, scale, kill, reopen-logs, stop)",
                         cmd);
                answer_error(cl, why);
                return;
        }
        if (data.oom || text.oom)
                answer_error(cl, "out of memory");
        else {
                json_append(&cl->out, "{\"ok\":true,\"data\":", 18);
                json_append(&cl->out, data.p, data.len);
                json_append(&cl->out, ",\"text\":", 8);
                json_string(&cl->out, text.p, text.len);
                json_append(&cl->out, "}\n", 2);
        }
        json_buf_done(&data);
        json_buf_done(&text);
}

void control_answer(Control *c, const ControlState *st, ControlActions *ret_actions) {
        *ret_actions = (ControlActions) {};
        if (!c)
                return;
        for (size_t i = 0; i < c->n_clients; i++) {
                Client *cl = &c->clients[i];

                if (!cl->request)
                        continue;
                answer_one(cl, st, ret_actions);
                if (cl->out.len > ANSWER_MAX) {
                        json_buf_done(&cl->out);
                        answer_error(cl, "the answer is too large");
                }
                (void) client_write(cl);
        }
}

void control_reload_started(Control *c, uint32_t gen) {
        if (!c)
                return;
        for (size_t i = 0; i < c->n_clients; i++)
                if (c->clients[i].waiting && c->clients[i].wait_generation == 0)
                        c->clients[i].wait_generation = gen;
}

void control_reload_done(Control *c, uint32_t gen, bool ok) {
        if (!c)
                return;
        for (size_t i = 0; i < c->n_clients; i++) {
                Client *cl = &c->clients[i];

                if (!cl->waiting || (gen != 0 && cl->wait_generation != gen))
                        continue;
                cl->waiting = false;
                cl->closing = true;
                if (ok) {
                        json_printf(&cl->out, "{\"ok\":true,\"data\":{\"generation\":%u},\"text\":\"generation %u serving\\n\"}\n",
                                    cl->wait_generation, cl->wait_generation);
                } else
                        answer_error(cl, "reload failed: the new workers did not boot; the old ones keep serving");
                (void) client_write(cl);
        }
}
