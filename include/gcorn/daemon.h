/* -D/--daemon for users outside systemd: the classic double fork. The command returns once
 * the daemon is set up (its PID file written), with status 0, or 1 when it failed first (its
 * error line went to the terminal). */
#pragma once

#include <stdbool.h>

/* Forks twice with a new session in between. Returns, in the daemon only, the fd to pass to
 * daemon_ready(); the starting process waits for that and exits. -errno when the first fork
 * fails. */
int daemon_start(void);

/* Points stdin, and stdout and stderr unless kept, at /dev/null, then tells the starting
 * process to exit 0. Closes ready_fd. */
int daemon_ready(int ready_fd, bool keep_stdout, bool keep_stderr);
