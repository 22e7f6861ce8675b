/* gcorn: settings from argv and the config file, listeners, then the arbiter. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gcorn/aio.h"
#include "gcorn/arbiter.h"
#include "gcorn/config_file.h"
#include "gcorn/control.h"
#include "gcorn/daemon.h"
#include "gcorn/hooks.h"
#include "gcorn/listener.h"
#include "gcorn/log.h"
#include "gcorn/logconfig.h"
#include "gcorn/macro.h"
#include "gcorn/notify.h"
#include "gcorn/privileges.h"
#include "gcorn/pidfile.h"
#include "gcorn/proctitle.h"
#include "gcorn/python.h"
#include "gcorn/settings.h"
#include "gcorn/upgrade.h"

/* Kept for HUP, which reads the command line and the config file again. */
static int arg_count;
static char **arg_values;

/* The PID file this master wrote: a reload may name another one, and the one to remove on
 * exit is the last one written. */
static char *pid_path;

/* One line on stderr, whatever the error log is: the user ran a command and it failed. */
static int fail(int status, const char *what) {
        fprintf(stderr, "gcorn: error: %s\n", what);
        return status;
}

/* The options of $GUNICORN_CMD_ARGS and $GCORN_CMD_ARGS, then those of the command line. */
static int parse_options(Settings *s) {
        int r;

        r = settings_parse_env_args(s);
        if (r <= 0)
                return r;
        return settings_parse_argv(s, arg_count, arg_values);
}

/* Defaults, then the options (to find -c), then the config file, then the options again so
 * that they win, as in Gunicorn: config file < environment < command line. Returns 1 to
 * serve, 0 for --help/--version, or -errno: then either *ret_error says why, or the parser
 * already printed its line. */
static int load_settings(Settings *s, char **ret_error) {
        int r;

        r = settings_init(s);
        if (r < 0)
                return r;
        r = parse_options(s);
        if (r <= 0)
                goto fail;
        if (s->config) {
                r = config_file_load(s, s->config, ret_error);
                if (r < 0)
                        goto fail;
                r = parse_options(s);
                if (r <= 0)
                        goto fail;
        }
        r = settings_validate(s, ret_error);
        if (r < 0)
                goto fail;
        r = privileges_validate(s, ret_error);
        if (r < 0)
                goto fail;
        hooks_commit();
        return 1;
fail:
        hooks_discard();
        settings_done(s);
        return r;
}

static void log_config_warnings(const Settings *s) {
        for (size_t i = 0; s->config_warnings && s->config_warnings[i]; i++)
                log_warning("%s", s->config_warnings[i]);
}

static bool is_stdio(const char *log) {
        return log && strcmp(log, "-") == 0;
}

static bool strv_contains(char **l, const char *s) {
        for (size_t i = 0; l && l[i]; i++)
                if (strcmp(l[i], s) == 0)
                        return true;
        return false;
}

/* Each setting the user gave that gcorn accepts but cannot act on, once: at start, and on a
 * reload only the ones that are new. */
static int log_no_effect(const Settings *s) {
        static char **warned;
        _cleanup_strv_free_ char **lines = NULL;
        int r;

        r = settings_no_effect_lines(s, &lines);
        if (r < 0)
                return r;
        for (size_t i = 0; lines[i]; i++)
                if (!strv_contains(warned, lines[i]))
                        log_warning("%s", lines[i]);
        strv_free(warned);
        warned = TAKE_PTR(lines);
        return 0;
}

/* A reload that names another PID file moves it, as Gunicorn does. */
static void pidfile_move(const char *path) {
        _cleanup_free_ char *error = NULL, *copy = NULL;
        int r;

        if (pid_path && path && strcmp(pid_path, path) == 0)
                return;
        if (path) {
                copy = strdup(path);
                r = copy ? pidfile_write(path, getpid(), &error) : -ENOMEM;
                if (r < 0) {
                        log_warning("Keeping the pid file %s: %s", strna(pid_path), error ? error : strerror(-r));
                        return;
                }
        }
        if (pid_path)
                pidfile_remove(pid_path, getpid());
        free(pid_path);
        pid_path = TAKE_PTR(copy);
}

static int reload_settings(Settings *ret, char **ret_error) {
        int r = load_settings(ret, ret_error);

        if (r == 0)
                return -EINVAL;
        if (r < 0 && !*ret_error)
                *ret_error = strdup("invalid command line");
        if (r > 0) {
                log_config_warnings(ret);
                (void) log_no_effect(ret);
                pidfile_move(ret->pidfile);
        }
        return r < 0 ? r : 0;
}

/* --check-config and --print-config: the settings are loaded; the app must import. */
static int check_config(const Settings *s) {
        _cleanup_free_ char *error = NULL;
        void *app = NULL;
        int r;

        if (s->print_config) {
                _cleanup_strv_free_ char **extra = hooks_config_strv();
                char *dict = logconfig_dict_repr(s);

                /* the settings other modules keep: the hooks, then logconfig_dict */
                if (extra && dict) {
                        size_t n = 0;
                        char **l;

                        while (extra[n])
                                n++;
                        l = reallocarray(extra, n + 3, sizeof(char *));
                        if (l) {
                                extra = l;
                                extra[n] = strdup("logconfig_dict");
                                extra[n + 1] = TAKE_PTR(dict);
                                extra[n + 2] = NULL;
                        }
                }
                free(dict);
                settings_print_config(s, stdout, extra);
                fflush(stdout);
        }
        /* The reference goes with the interpreter, as a preloaded app's does. */
        r = python_load_app(s->wsgi_app, &app, &error);
        if (r < 0)
                return fail(1, error ? error : "Failed to load the application.");
        return 0;
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

/* Whether the sockets passed by an upgrade are the ones --bind names now. */
static bool binds_match(const Settings *s, const Listener *l, size_t n) {
        size_t count = 0;

        for (char **b = s->bind; b && *b; b++) {
                bool found = false;

                for (size_t i = 0; i < n && !found; i++)
                        found = l[i].bind && strcmp(l[i].bind, *b) == 0;
                if (!found)
                        return false;
                count++;
        }
        return count == n;
}

static int run(void) {
        _cleanup_free_ char *error = NULL;
        const InheritedFd *inherited, *stored;
        size_t n_inherited, n_stored;
        Listener *listeners = NULL;
        size_t n_listeners = 0;
        void *app = NULL;
        Settings s;
        const char *failed = NULL;
        mode_t old_mask;
        _cleanup_close_ int ready_fd = -1;
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

        /* systemd supervises the process it started: one that forks away and exits looks dead
         * to it, and the service would be stopped or restarted. */
        if (s.daemon && notify_enabled()) {
                status = fail(1, "--daemon is refused under systemd (NOTIFY_SOCKET is set): the service "
                              "manager would see the process it started exit; run in the foreground");
                goto out;
        }

        r = log_setup(s.loglevel, s.errorlog, s.accesslog, s.log_target, &failed);
        if (r < 0) {
                fprintf(stderr, "gcorn: error: Cannot open %s log file %s: %s\n",
                        failed == s.errorlog ? "error" : "access", failed, strerror(-r));
                status = 1;
                goto out;
        }
        log_set_identity(s.proc_name, 1);
        log_config_warnings(&s);
        r = log_no_effect(&s);
        if (r < 0) {
                status = fail(1, "out of memory");
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
        /* After sys.path: the configuration may name handler classes of the app's. */
        r = logconfig_apply(&s, &error);
        if (r < 0) {
                status = fail(1, error ? error : "Failed to configure logging.");
                goto out;
        }
        logconfig_capture_output(&s);
        logconfig_warn_unused(&s);
        if (settings_gevent(&s)) {
                r = aio_gevent_check(s.preload_app, &error);
                if (r < 0) {
                        status = fail(1, error ? error : "The gevent worker needs gevent.");
                        goto out;
                }
        }
        if (s.reload && s.preload_app)
                log_warning("reload with preload_app: workers restart on a change, but run the code the master "
                            "loaded at start");

        if (s.check_config || s.print_config) {
                status = check_config(&s);
                goto out;
        }

        listener_set_reuse_port(s.reuse_port);
        /* The only file bind() creates is a UNIX socket's: umask is for it alone, never for
         * the process (the unit's UMask= stays in force for the app's files). */
        old_mask = umask(privileges_umask(&s));
        /* After a binary upgrade the sockets are the previous image's, whatever --bind says
         * now: binding them again would fail, and clients queued on them would be lost. */
        if (upgrade_state())
                r = upgrade_adopt_listeners(s.backlog, &listeners, &n_listeners, &error);
        else {
                stored = notify_stored(&n_stored);
                listener_set_stored(stored, n_stored);
                r = listener_open_all(s.bind, s.backlog, inherited, n_inherited, !bind_given(&s), &listeners,
                                      &n_listeners, &error);
        }
        (void) umask(old_mask);
        if (r >= 0 && upgrade_state() && bind_given(&s) && !binds_match(&s, listeners, n_listeners))
                log_warning("bind changed in the configuration; an upgrade keeps the sockets it was passed");
        if (r < 0) {
                notify_failure(r, error ? error : "no listening socket");
                status = fail(1, error ? error : "Failed to open the listening sockets.");
                goto out;
        }
        /* systemd's fd store (gcorn-standalone@.service) keeps them over a restart; after an
         * upgrade it still holds what the previous image stored. */
        if (!upgrade_state())
                listener_sync_store(listeners, n_listeners);

        privileges_prepare(&s, listeners, n_listeners);
        /* After the sockets are bound, so that a failure to bind is still seen at the terminal;
         * the PID file after, for the daemon's PID. */
        /* An upgraded image is the daemon already: forking again would change the PID. */
        if (s.daemon && !upgrade_state()) {
                ready_fd = daemon_start();
                if (ready_fd < 0) {
                        status = fail(1, "Failed to fork the daemon.");
                        goto out;
                }
        }
        if (s.pidfile) {
                pid_path = strdup(s.pidfile);
                if (!pid_path) {
                        status = fail(1, "out of memory");
                        goto out;
                }
                r = pidfile_write(s.pidfile, getpid(), &error);
                if (r < 0) {
                        pid_path = mfree(pid_path);
                        status = fail(1, error ? error : "Failed to write the pid file.");
                        goto out;
                }
        }
        if (ready_fd >= 0) {
                r = daemon_ready(TAKE_FD(ready_fd), s.enable_stdio_inheritance || is_stdio(s.accesslog),
                                 s.enable_stdio_inheritance || is_stdio(s.errorlog));
                if (r < 0) {
                        log_error_errno(r, "Failed to detach the daemon: %m");
                        status = 1;
                        goto out;
                }
        }

        if (s.preload_app) {
                r = python_load_app(s.wsgi_app, &app, &error);
                if (r < 0) {
                        notify_failure(r, error ? error : "the application could not be loaded");
                        /* 3 says that starting again would fail again, and the units do not
                         * restart on it. An image a binary upgrade started loaded the app once
                         * already, in its --check-config: a fresh start may well succeed, and
                         * the old image is gone, so the service manager should try it. */
                        status = fail(upgrade_state() ? 1 : 3, error ? error : "Failed to load the application.");
                        goto out;
                }
                python_gc_freeze();
        }

        status = arbiter_run(&s, listeners, n_listeners, app, reload_settings);
out:
        if (pid_path)
                pidfile_remove(pid_path, getpid());
        pid_path = mfree(pid_path);
        listener_free_all(listeners, n_listeners, true);
        hooks_done();
        (void) python_finalize();
        settings_done(&s);
        log_close();
        return status;
}

/* The settings other modules keep, in the generated documentation. */
static void doc_markdown_rows(FILE *f) {
        logconfig_print_markdown(f);
        hooks_print_markdown(f);
}

static void doc_man_section(FILE *f) {
        logconfig_print_man(f);
        hooks_print_man(f);
}

int main(int argc, char **argv) {
        char **args;
        int r;

        settings_set_doc_extras(doc_markdown_rows, doc_man_section);

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
        /* gcorn --upgrade $MAINPID: USR2, then wait until the upgraded image serves. */
        if (argc == 3 && strcmp(argv[1], "--upgrade") == 0) {
                char *end;
                long pid = strtol(argv[2], &end, 10);
                int r;

                if (*end || pid <= 1)
                        return fail(2, "--upgrade needs the master's PID");
                r = notify_signal_and_wait((int) pid, SIGUSR2);
                if (r == -EIO)
                        return fail(1, "Upgrade failed: the new binary or its workers did not start; the old ones keep "
                                    "serving (see the log)");
                if (r == -ETIMEDOUT) {
                        fprintf(stderr, "gcorn: error: Upgrade of %ld: no answer from the master in time\n", pid);
                        return 1;
                }
                if (r < 0) {
                        fprintf(stderr, "gcorn: error: Upgrade of %ld failed: %s\n", pid, strerror(-r));
                        return 1;
                }
                return 0;
        }
        /* gcorn ctl: a client of a running master's control socket. */
        if (argc >= 2 && strcmp(argv[1], "ctl") == 0)
                return control_client_main(argc - 2, argv + 2);
        /* Generated documentation, at build time: no interpreter needed. */
        if (argc == 2 && strcmp(argv[1], "--man-page") == 0) {
                settings_print_man(stdout);
                return fflush(stdout) == 0 ? 0 : 1;
        }
        if (argc == 2 && strcmp(argv[1], "--settings-table-markdown") == 0) {
                settings_print_markdown(stdout);
                return fflush(stdout) == 0 ? 0 : 1;
        }
        /* Before Python copies the environment, so the app never sees LISTEN_*,
         * NOTIFY_SOCKET or WATCHDOG_*, and before the environment is moved for process
         * titles, so the removed entries are not left behind in the moved copy. */
        r = upgrade_take_handoff();
        if (r < 0) {
                fprintf(stderr, "gcorn: error: Failed to read the handoff of the binary upgrade ($GCORN_UPGRADE_FD): %s\n",
                        strerror(-r));
                return 1;
        }
        if (notify_setup() < 0)
                return fail(1, "Failed to read the sockets passed by systemd.");
        args = proctitle_init(argc, argv);

        arg_count = argc;
        arg_values = args ? args : argv;
        if (upgrade_remember_command(arg_count, arg_values) < 0)
                return fail(1, "Failed to find the gcorn binary for binary upgrades.");
        return run();
}
