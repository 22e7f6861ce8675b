/* The master's PID file (-p/--pid), as Gunicorn keeps it: "PID\n", mode 0644, written to a
 * temporary file in the same directory and renamed over the name, so a reader never sees a
 * half-written file; removed on exit only while it still holds our PID. */
#pragma once

#include <sys/types.h>

/* Refuses a file that names another live process ("Already running on PID ..."). Returns
 * -errno with one clear line in *ret_error (owned by the caller). */
int pidfile_write(const char *path, pid_t pid, char **ret_error);

/* Removes path if it still holds pid (a newer master may have taken the name over). */
void pidfile_remove(const char *path, pid_t pid);
