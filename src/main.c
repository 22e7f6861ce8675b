/* gcorn: settings from argv and the config file, listeners, then the arbiter. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gcorn/arbiter.h"
#include "gcorn/config_file.h"
#include "gcorn/listener.h"
#include "gcorn/log.h"
#include "gcorn/macro.h"
#include "gcorn/python.h"
#include "gcorn/settings.h"

/* One line on stderr, whatever the error log is: the user ran a command and it failed. */
static int fail(int status, const char *what) {
        fprintf(stderr, "gcorn: error: %s\n", what);
        return status;
}

static int run(int argc, char **argv) {
        _cleanup_free_ char *error = NULL;
        Listener *listeners = NULL;
        size_t n_listeners = 0;
        void *app = NULL;
        Settings s;
        int r, level, status;

        /* settings_init() prints its own line (a bad PORT or WEB_CONCURRENCY). */
        r = settings_init(&s);
        if (r < 0)
                return r == -ENOMEM ? fail(1, "out of memory") : 2;
        r = settings_parse_argv(&s, argc, argv);
        if (r <= 0) {
                settings_done(&s);
                return r == 0 ? 0 : 2;
        }

        /* Ignored here rather than per send(): sendfile() and app code write to sockets too. */
        signal(SIGPIPE, SIG_IGN);

        r = python_init();
        if (r < 0) {
                settings_done(&s);
                return fail(1, "Failed to initialize Python.");
        }
        if (s.config) {
                r = config_file_load(&s, s.config, &error);
                if (r < 0) {
                        status = fail(1, error ? error : "Failed to load the config file.");
                        goto out;
                }
                /* The command line wins over the file, as in Gunicorn. */
                r = settings_parse_argv(&s, argc, argv);
                if (r <= 0) {
                        status = r == 0 ? 0 : 2;
                        goto out;
                }
        }
        r = settings_validate(&s, &error);
        if (r < 0) {
                status = fail(1, error ? error : "Invalid settings.");
                goto out;
        }

        level = log_level_from_string(s.loglevel);
        log_set_level(level < 0 ? LOG_INFO : level);
        r = log_open_error(s.errorlog);
        if (r < 0) {
                fprintf(stderr, "gcorn: error: Cannot open error log file %s: %s\n", s.errorlog, strerror(-r));
                status = 1;
                goto out;
        }
        r = log_open_access(s.accesslog);
        if (r < 0) {
                fprintf(stderr, "gcorn: error: Cannot open access log file %s: %s\n", s.accesslog, strerror(-r));
                status = 1;
                goto out;
        }

        if (s.chdir && chdir(s.chdir) < 0) {
                fprintf(stderr, "gcorn: error: Cannot change directory to %s: %m\n", s.chdir);
                status = 1;
                goto out;
        }
        r = python_setup_paths(&s);
        if (r < 0) {
                status = fail(1, "Failed to set up sys.path.");
                goto out;
        }

        r = listener_open_all(s.bind, s.backlog, &listeners, &n_listeners, &error);
        if (r < 0) {
                status = fail(1, error ? error : "Failed to open the listening sockets.");
                goto out;
        }

        if (s.preload_app) {
                r = python_load_app(s.wsgi_app, &app, &error);
                if (r < 0) {
                        status = fail(3, error ? error : "Failed to load the application.");
                        goto out;
                }
        }

        status = arbiter_run(&s, listeners, n_listeners, app);
out:
        listener_free_all(listeners, n_listeners, true);
        (void) python_finalize();
        settings_done(&s);
        log_close();
        return status;
}

int main(int argc, char **argv) {
        return run(argc, argv);
}
