/* The PID file: written atomically, removed on exit. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gcorn/macro.h"
#include "gcorn/pidfile.h"

/* The PID in path, 0 when the file is missing or holds no number, or -errno. */
static pid_t pidfile_read(const char *path) {
        char buf[32];
        _cleanup_close_ int fd = -1;
        ssize_t n;
        char *end;
        long v;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        errno = 0;
        v = strtol(buf, &end, 10);
        if (errno != 0 || end == buf || v <= 0 || (*end && *end != '\n'))
                return 0;
        return (pid_t) v;
}

static int error_line(char **ret_error, int r, const char *what, const char *path) {
        if (asprintf(ret_error, "Cannot %s the pid file %s: %s", what, path, strerror(-r)) < 0)
                *ret_error = NULL;
        return r;
}

int pidfile_write(const char *path, pid_t pid, char **ret_error) {
        _cleanup_free_ char *copy = NULL, *tmp = NULL;
        _cleanup_close_ int fd = -1;
        char line[32];
        pid_t old;
        int n, r;

        old = pidfile_read(path);
        if (old < 0)
                return error_line(ret_error, old, "read", path);
        /* EPERM: alive, only not ours to signal. */
        if (old > 0 && old != pid && (kill(old, 0) == 0 || errno == EPERM)) {
                if (asprintf(ret_error, "Already running on PID %d (or pid file '%s' is stale)", (int) old, path) < 0)
                        *ret_error = NULL;
                return -EEXIST;
        }

        copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        if (asprintf(&tmp, "%s/.gcorn-pid-XXXXXX", dirname(copy)) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return error_line(ret_error, -errno, "create", path);
        n = snprintf(line, sizeof(line), "%d\n", (int) pid);
        if (write(fd, line, (size_t) n) != n || fchmod(fd, 0644) < 0) {
                r = errno ? -errno : -EIO;
                (void) unlink(tmp);
                return error_line(ret_error, r, "write", path);
        }
        if (rename(tmp, path) < 0) {
                r = -errno;
                (void) unlink(tmp);
                return error_line(ret_error, r, "create", path);
        }
        return 0;
}

void pidfile_remove(const char *path, pid_t pid) {
        if (pidfile_read(path) == pid)
                (void) unlink(path);
}
