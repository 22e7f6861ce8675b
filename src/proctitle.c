/* Process titles. Linux shows /proc/PID/cmdline from the memory argv[] points at, so the
 * title goes there; environ strings that follow argv contiguously are moved to the heap to
 * make room for a title longer than the command line. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "gcorn/proctitle.h"

extern char **environ;

static char *area;
static size_t area_len;
/* The moved environment lives as long as the process; setenv() may later replace the array
 * environ points at, so this keeps our copy reachable. */
static char **moved_environ;

char **proctitle_init(int argc, char **argv) {
        char **args, **env;
        char *end, *argv_end;
        size_t n_env = 0;

        if (argc <= 0 || !argv[0])
                return NULL;
        args = calloc((size_t) argc + 1, sizeof(char *));
        if (!args)
                return NULL;
        for (int i = 0; i < argc; i++) {
                args[i] = strdup(argv[i]);
                if (!args[i]) {
                        strv_free(args);
                        return NULL;
                }
        }

        argv_end = argv[0] + strlen(argv[0]) + 1;
        for (int i = 1; i < argc; i++)
                if (argv[i] == argv_end)
                        argv_end = argv[i] + strlen(argv[i]) + 1;
        end = argv_end;
        for (char **e = environ; *e; e++)
                n_env++;
        env = calloc(n_env + 1, sizeof(char *));
        if (env) {
                for (size_t i = 0; i < n_env; i++) {
                        if (environ[i] == end)
                                end = environ[i] + strlen(environ[i]) + 1;
                        env[i] = strdup(environ[i]);
                        if (!env[i]) {
                                strv_free(env);
                                env = NULL;
                                break;
                        }
                }
        }
        area = argv[0];
        /* Without a moved environ only argv's own bytes may be reused. */
        if (env)
                environ = moved_environ = env;
        else
                end = argv_end;
        area_len = (size_t) (end - area);
        return args;
}

void proctitle_set(const char *fmt, ...) {
        char buf[256];
        va_list ap;
        size_t n;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        (void) prctl(PR_SET_NAME, buf);
        if (!area || area_len < 2)
                return;
        n = MIN(strlen(buf), area_len - 1);
        memset(area, 0, area_len);
        memcpy(area, buf, n);
}
