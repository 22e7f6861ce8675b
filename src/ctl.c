/* `gcorn ctl`: sends one command to a master's control socket and shows the answer. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "gcorn/control.h"
#include "gcorn/json.h"
#include "gcorn/macro.h"

/* A reload answers once the new workers serve, which boot_timeout bounds on the server. */
#define ANSWER_TIMEOUT_MS 10000
#define RELOAD_TIMEOUT_MS (900 * 1000)

static int usage(void) {
        fputs("usage: gcorn ctl [--socket PATH | --instance NAME | --pid PID] [--json] COMMAND [ARG]\n"
              "commands: status, workers, reload, scale N|+N|-N, kill PID, reopen-logs, stop\n",
              stderr);
        return 2;
}

static int fail(const char *fmt, const char *arg) {
        fputs("gcorn ctl: error: ", stderr);
        fprintf(stderr, fmt, arg);
        fputc('\n', stderr);
        return 1;
}

/* The listening UNIX socket of process pid whose path ends in "ctl". */
static char *socket_of_pid(const char *pid) {
        char dir[64], link[64], line[512];
        unsigned long inodes[256];
        size_t n = 0;
        struct dirent *de;
        DIR *d;
        FILE *f;

        snprintf(dir, sizeof(dir), "/proc/%s/fd", pid);
        d = opendir(dir);
        if (!d)
                return NULL;
        while ((de = readdir(d)) && n < ELEMENTSOF(inodes)) {
                char path[384];
                ssize_t len;

                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                len = readlink(path, link, sizeof(link) - 1);
                if (len <= 0)
                        continue;
                link[len] = 0;
                if (sscanf(link, "socket:[%lu]", &inodes[n]) == 1)
                        n++;
        }
        closedir(d);
        f = fopen("/proc/net/unix", "re");
        if (!f)
                return NULL;
        while (fgets(line, sizeof(line), f)) {
                unsigned long flags, inode;
                char path[256] = "";
                size_t len;

                if (sscanf(line, "%*s %*s %*s %lx %*s %*s %lu %255s", &flags, &inode, path) < 2 || !path[0])
                        continue;
                len = strlen(path);
                /* __SO_ACCEPTCON: listening. */
                if (!(flags & 0x10000) || len < 3 || strcmp(path + len - 3, "ctl") != 0)
                        continue;
                for (size_t i = 0; i < n; i++)
                        if (inodes[i] == inode) {
                                fclose(f);
                                return strdup(path);
                        }
        }
        fclose(f);
        return NULL;
}

static char *default_socket(void) {
        const char *dir;
        char *p = NULL;

        if ((dir = getenv("XDG_RUNTIME_DIR")) && *dir) {
                if (asprintf(&p, "%s/gunicorn.ctl", dir) < 0)
                        return NULL;
        } else if ((dir = getenv("HOME")) && *dir) {
                if (asprintf(&p, "%s/.gunicorn/gunicorn.ctl", dir) < 0)
                        return NULL;
        }
        return p;
}

typedef struct Answer {
        bool ok;
        char *error;
        char *text;
} Answer;

static void answer_member(const JsonSpan *key, const JsonSpan *value, void *userdata) {
        Answer *a = userdata;

        if (json_key_is(key, "ok"))
                a->ok = value->type == 't';
        else if (json_key_is(key, "error") && !a->error)
                (void) json_string_decode(value, &a->error);
        else if (json_key_is(key, "text") && !a->text)
                (void) json_string_decode(value, &a->text);
}

/* Reads the one answer line. */
static int read_answer(int fd, int timeout_ms, JsonBuf *ret) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                char buf[65536];
                ssize_t n;
                int r;

                r = poll(&p, 1, timeout_ms);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -ETIMEDOUT;
                n = read(fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return ret->len > 0 ? 0 : -ECONNRESET;
                json_append(ret, buf, (size_t) n);
                if (ret->oom)
                        return -ENOMEM;
                if (memchr(buf, '\n', (size_t) n))
                        return 0;
        }
}

int control_client_main(int argc, char **argv) {
        _cleanup_free_ char *path = NULL;
        const char *command = NULL, *arg = NULL;
        JsonBuf req = {}, ans = {};
        Answer a = {};
        bool json = false;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = -1, r, status = 1, send_error;

        for (int i = 0; i < argc; i++) {
                const char *o = argv[i];

                if ((strcmp(o, "--socket") == 0 || strcmp(o, "--instance") == 0 || strcmp(o, "--pid") == 0)) {
                        if (i + 1 >= argc || path)
                                return usage();
                        if (strcmp(o, "--socket") == 0)
                                path = strdup(argv[++i]);
                        else if (strcmp(o, "--instance") == 0) {
                                if (asprintf(&path, "/run/gcorn/%s/ctl", argv[++i]) < 0)
                                        path = NULL;
                        } else {
                                path = socket_of_pid(argv[++i]);
                                if (!path)
                                        return fail("no control socket found for pid %s", argv[i]);
                        }
                        if (!path)
                                return fail("%s", "out of memory");
                } else if (strcmp(o, "--json") == 0)
                        json = true;
                else if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
                        (void) usage();
                        return 0;
                } else if (o[0] == '-' && o[1] == '-')
                        return usage();
                else if (!command)
                        command = o;
                else if (!arg)
                        arg = o;
                else
                        return usage();
        }
        if (!command)
                return usage();
        if (!path)
                path = default_socket();
        if (!path)
                return fail("%s", "no control socket: give --socket, --instance or --pid");
        if (strlen(path) >= sizeof(sa.sun_path))
                return fail("socket path too long: %s", path);
        strcpy(sa.sun_path, path);

        json_append(&req, "{\"command\":", 11);
        json_string(&req, command, strlen(command));
        if (arg) {
                json_append(&req, ",\"args\":[", 9);
                json_string(&req, arg, strlen(arg));
                json_append(&req, "]", 1);
        }
        json_append(&req, "}\n", 2);
        if (req.oom) {
                status = fail("%s", "out of memory");
                goto out;
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                fprintf(stderr, "gcorn ctl: error: cannot connect to %s: %s\n", path, strerror(errno));
                goto out;
        }
        /* A master that refuses us answers and closes at once, maybe before the request is
         * sent: its answer is still there to read. */
        send_error = send(fd, req.p, req.len, MSG_NOSIGNAL) == (ssize_t) req.len ? 0 : errno ? errno : EIO;
        r = read_answer(fd, strcmp(command, "reload") == 0 ? RELOAD_TIMEOUT_MS : ANSWER_TIMEOUT_MS, &ans);
        if (r < 0 && send_error) {
                fprintf(stderr, "gcorn ctl: error: cannot send to %s: %s\n", path, strerror(send_error));
                goto out;
        }
        if (r < 0) {
                fprintf(stderr, "gcorn ctl: error: no answer from %s: %s\n", path, strerror(-r));
                goto out;
        }
        while (ans.len > 0 && ans.p[ans.len - 1] == '\n')
                ans.p[--ans.len] = 0;
        if (json_object_each(ans.p, ans.len, answer_member, &a) < 0) {
                fprintf(stderr, "gcorn ctl: error: the answer is not JSON\n");
                goto out;
        }
        if (json)
                printf("%s\n", ans.p);
        else if (a.ok)
                fputs(a.text ? a.text : "", stdout);
        if (!a.ok)
                fprintf(stderr, "gcorn ctl: error: %s\n", a.error ? a.error : "the command failed");
        status = a.ok ? 0 : 1;
        if (fflush(stdout) != 0)
                status = 1;
out:
        safe_close(fd);
        json_buf_done(&req);
        json_buf_done(&ans);
        free(a.error);
        free(a.text);
        return status;
}
