/* gcorn: settings from argv and the config file, listeners, then the arbiter. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gcorn/arbiter.h"
#include "gcorn/config_file.h"
#include "gcorn/hooks.h"
#include "gcorn/listener.h"
#include "gcorn/log.h"
#include "gcorn/macro.h"
#include "gcorn/notify.h"
#include "gcorn/proctitle.h"
#include "gcorn/python.h"
#include "gcorn/settings.h"

/* Kept for HUP, which reads the command line and the config file again. */
static int arg_count;
static char **arg_values;

/* One line on stderr, whatever the error log is: the user ran a command and it failed. */
static int fail(int status, const char *what) {
        fprintf(stderr, "gcorn: error: %s\n", what);
        return status;
}

/* Defaults, then the command line (to find -c), then the config file, then the command line
 * again so that it wins, as in Gunicorn. Returns 1 to serve, 0 for --help/--version, or
 * -errno: then either *ret_error says why, or the parser already printed its line. */
static int load_settings(Settings *s, char **ret_error) {
        int r;

        r = settings_init(s);
        if (r < 0)
                return r;
        r = settings_parse_argv(s, arg_count, arg_values);
        if (r <= 0)
                goto fail;
        if (s->config) {
                r = config_file_load(s, s->config, ret_error);
                if (r < 0)
                        goto fail;
                r = settings_parse_argv(s, arg_count, arg_values);
                if (r <= 0)
                        goto fail;
        }
        r = settings_validate(s, ret_error);
        if (r < 0)
                goto fail;
        hooks_commit();
        return 1;
fail:
        hooks_discard();
        settings_done(s);
        return r;
}

static int reload_settings(Settings *ret, char **ret_error) {
        int r = load_settings(ret, ret_error);

        if (r == 0)
                return -EINVAL;
        if (r < 0 && !*ret_error)
                *ret_error = strdup("invalid command line");
        return r < 0 ? r : 0;
}

/* Whether --bind (or bind in the config file) was given: without it, sockets passed by
 * systemd are used instead of the default address. */
static bool bind_given(const Settings *s) {
        Settings defaults;
        bool same;

        if (settings_init(&defaults) < 0)
                return true;
        same = strv_equal(s->bind, defaults.bind);
        settings_done(&defaults);
        return !same;
}

static int run(void) {
        _cleanup_free_ char *error = NULL;
        const InheritedFd *inherited;
        size_t n_inherited;
        Listener *listeners = NULL;
        size_t n_listeners = 0;
        void *app = NULL;
        Settings s;
        const char *failed = NULL;
        int r, status;

        inherited = notify_inherited(&n_inherited);

        /* Ignored here rather than per send(): sendfile() and app code write to sockets too. */
        signal(SIGPIPE, SIG_IGN);

        /* The config file is Python, so the interpreter comes first. */
        r = python_init();
        if (r < 0)
                return fail(1, "Failed to initialize Python.");

        r = load_settings(&s, &error);
        if (r <= 0) {
                (void) python_finalize();
                if (r == 0)
                        return 0;
                if (error)
                        return fail(1, error);
                return r == -ENOMEM ? fail(1, "out of memory") : 2;
        }

        r = log_setup(s.loglevel, s.errorlog, s.accesslog, s.log_target, &failed);
        if (r < 0) {
                fprintf(stderr, "gcorn: error: Cannot open %s log file %s: %s\n",
                        failed == s.errorlog ? "error" : "access", failed, strerror(-r));
                status = 1;
                goto out;
        }
        log_set_identity(s.proc_name, 1);

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

        r = listener_open_all(s.bind, s.backlog, inherited, n_inherited, !bind_given(&s), &listeners, &n_listeners,
                              &error);
        if (r < 0) {
                notify_failure(r, error ? error : "no listening socket");
                status = fail(1, error ? error : "Failed to open the listening sockets.");
                goto out;
        }

        if (s.preload_app) {
                r = python_load_app(s.wsgi_app, &app, &error);
                if (r < 0) {
                        notify_failure(r, error ? error : "the application could not be loaded");
                        status = fail(3, error ? error : "Failed to load the application.");
                        goto out;
                }
                python_gc_freeze();
        }

        status = arbiter_run(&s, listeners, n_listeners, app, reload_settings);
out:
        listener_free_all(listeners, n_listeners, true);
        hooks_done();
        (void) python_finalize();
        settings_done(&s);
        log_close();
        return status;
}

int main(int argc, char **argv) {
        char **args;

        /* ExecReload=: gcorn --reload-and-wait $MAINPID */
        if (argc == 3 && strcmp(argv[1], "--reload-and-wait") == 0) {
                char *end;
                long pid = strtol(argv[2], &end, 10);
                int r;

                if (*end || pid <= 1)
                        return fail(2, "--reload-and-wait needs the master's PID");
                r = notify_reload_and_wait((int) pid);
                if (r == -EIO)
                        return fail(1, "Reload failed: the new workers did not boot; the old ones keep serving");
                if (r == -ETIMEDOUT) {
                        fprintf(stderr, "gcorn: error: Reload of %ld: no answer from the master in time\n", pid);
                        return 1;
                }
                if (r < 0) {
                        fprintf(stderr, "gcorn: error: Reload of %ld failed: %s\n", pid, strerror(-r));
                        return 1;
                }
                return 0;
        }
        /* Before Python copies the environment, so the app never sees LISTEN_*,
         * NOTIFY_SOCKET or WATCHDOG_*, and before the environment is moved for process
         * titles, so the removed entries are not left behind in the moved copy. */
        if (notify_setup() < 0)
                return fail(1, "Failed to read the sockets passed by systemd.");
        args = proctitle_init(argc, argv);

        arg_count = argc;
        arg_values = args ? args : argv;
        return run();
}
