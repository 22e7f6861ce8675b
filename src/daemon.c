/* Daemonizing: double fork, setsid, stdio to /dev/null, and a pipe so that the command
 * started from a shell says whether the daemon came up. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gcorn/daemon.h"
#include "gcorn/macro.h"
#include "gcorn/python.h"

static pid_t fork_python(void) {
        pid_t pid;

        python_before_fork();
        pid = fork();
        if (pid == 0)
                python_after_fork_child();
        else
                python_after_fork_parent();
        return pid;
}

int daemon_start(void) {
        int p[2];
        pid_t pid;
        char c;
        ssize_t n;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid = fork_python();
        if (pid < 0) {
                int r = -errno;

                safe_close(p[0]);
                safe_close(p[1]);
                return r;
        }
        if (pid > 0) {
                /* The starting process: its status is the daemon's setup. */
                safe_close(p[1]);
                do
                        n = read(p[0], &c, 1);
                while (n < 0 && errno == EINTR);
                (void) waitpid(pid, NULL, 0);
                _exit(n == 1 ? 0 : 1);
        }

        safe_close(p[0]);
        /* A new session without a controlling terminal; the second fork makes sure the
         * daemon, no session leader, never acquires one again. */
        if (setsid() < 0)
                _exit(1);
        pid = fork_python();
        if (pid < 0)
                _exit(1);
        if (pid > 0)
                _exit(0);
        umask(022);
        return p[1];
}

int daemon_ready(int ready_fd, bool keep_stdout, bool keep_stderr) {
        _cleanup_close_ int null = -1;
        int r = 0;

        null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null < 0)
                r = -errno;
        else if (dup2(null, STDIN_FILENO) < 0 || (!keep_stdout && dup2(null, STDOUT_FILENO) < 0) ||
                 (!keep_stderr && dup2(null, STDERR_FILENO) < 0))
                r = -errno;
        if (r == 0 && write(ready_fd, "", 1) != 1)
                r = -errno;
        safe_close(ready_fd);
        return r;
}
