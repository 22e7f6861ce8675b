/* Tests for src/settings.c (command line, defaults, settings_set), src/config_file.c and the
 * application loader in src/python.c. Check forks every test, so each one may set
 * environment variables, chdir and initialise Python freely. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gcorn/config_file.h"
#include "gcorn/macro.h"
#include "gcorn/python.h"
#include "gcorn/settings.h"

#define ARGV_MAX 32

static Settings s;
static char captured[8192];

static void setup(void) {
        unsetenv("PORT");
        unsetenv("WEB_CONCURRENCY");
        ck_assert_int_eq(settings_init(&s), 0);
}

static void teardown(void) {
        settings_done(&s);
}

/* Runs settings_parse_argv over "gcorn" and the NULL-terminated arguments, with stderr and
 * stdout captured into `captured`. */
static int parse(const char *first, ...) {
        char *argv[ARGV_MAX] = { (char *) "gcorn" };
        int argc = 1, saved_out, saved_err, fd, r;
        ssize_t n;
        va_list ap;

        va_start(ap, first);
        for (const char *a = first; a; a = va_arg(ap, const char *)) {
                ck_assert_int_lt(argc, ARGV_MAX - 1);
                argv[argc++] = (char *) a;
        }
        va_end(ap);

        fd = fileno(tmpfile());
        ck_assert_int_ge(fd, 0);
        fflush(stdout);
        fflush(stderr);
        saved_out = dup(STDOUT_FILENO);
        saved_err = dup(STDERR_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);

        r = settings_parse_argv(&s, argc, argv);

        fflush(stdout);
        fflush(stderr);
        dup2(saved_out, STDOUT_FILENO);
        dup2(saved_err, STDERR_FILENO);
        close(saved_out);
        close(saved_err);

        n = pread(fd, captured, sizeof(captured) - 1, 0);
        ck_assert_int_ge(n, 0);
        captured[n] = '\0';
        return r;
}

static size_t strv_len(char **v) {
        size_t n = 0;

        while (v && v[n])
                n++;
        return n;
}

static size_t count_lines(const char *text) {
        size_t n = 0;

        for (const char *p = text; *p; p++)
                if (*p == '\n')
                        n++;
        return n;
}

/* settings_parse_env_args() with stdout and stderr captured into `captured`. */
static int capture_env_args(void) {
        int saved_err, fd, r;
        ssize_t n;

        fd = fileno(tmpfile());
        ck_assert_int_ge(fd, 0);
        fflush(stderr);
        saved_err = dup(STDERR_FILENO);
        dup2(fd, STDERR_FILENO);
        r = settings_parse_env_args(&s);
        fflush(stderr);
        dup2(saved_err, STDERR_FILENO);
        close(saved_err);
        n = pread(fd, captured, sizeof(captured) - 1, 0);
        captured[n > 0 ? n : 0] = '\0';
        close(fd);
        return r;
}

START_TEST(test_defaults) {
        char cwd[PATH_MAX];

        ck_assert_int_eq(strv_len(s.bind), 1);
        ck_assert_str_eq(s.bind[0], "127.0.0.1:8000");
        ck_assert_int_eq(s.backlog, 2048);
        ck_assert_int_eq(s.workers, 1);
        ck_assert_str_eq(s.worker_class, "sync");
        ck_assert_int_eq(s.timeout, 30);
        ck_assert_int_eq(s.graceful_timeout, 30);
        ck_assert_int_eq(parse("--keep-alive", "0", NULL), 1);
        ck_assert_int_eq(s.keepalive, 0);
        ck_assert_int_eq(s.max_requests, 0);
        ck_assert_int_eq(s.max_requests_jitter, 0);
        ck_assert_int_eq(s.limit_request_line, 4094);
        ck_assert_int_eq(s.limit_request_fields, 100);
        ck_assert_int_eq(s.limit_request_field_size, 8190);
        ck_assert_int_eq(s.limit_request_body, 0);
        ck_assert_ptr_nonnull(s.pythonpath);
        ck_assert_int_eq(strv_len(s.pythonpath), 0);
        ck_assert_ptr_nonnull(s.raw_env);
        ck_assert_int_eq(strv_len(s.raw_env), 0);
        ck_assert(!s.preload_app);
        ck_assert_ptr_null(s.accesslog);
        ck_assert_str_eq(s.errorlog, "-");
        ck_assert_str_eq(s.loglevel, "info");
        ck_assert_str_eq(s.access_log_format, "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"");
        ck_assert_ptr_null(s.proc_name);
        ck_assert_ptr_null(s.wsgi_app);
        ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
        ck_assert_ptr_nonnull(s.chdir);
        {
                struct stat a, b;

                ck_assert_int_eq(stat(s.chdir, &a), 0);
                ck_assert_int_eq(stat(cwd, &b), 0);
                ck_assert(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
        }
}
END_TEST

START_TEST(test_env_defaults) {
        settings_done(&s);
        setenv("PORT", "5000", 1);
        setenv("WEB_CONCURRENCY", "7", 1);
        ck_assert_int_eq(settings_init(&s), 0);
        ck_assert_int_eq(strv_len(s.bind), 1);
        ck_assert_str_eq(s.bind[0], "0.0.0.0:5000");
        ck_assert_int_eq(s.workers, 7);

        /* An explicit -b still replaces the $PORT default. */
        ck_assert_int_eq(parse("-b", "127.0.0.1:1", NULL), 1);
        ck_assert_int_eq(strv_len(s.bind), 1);
        ck_assert_str_eq(s.bind[0], "127.0.0.1:1");

        settings_done(&s);
        setenv("WEB_CONCURRENCY", "lots", 1);
        ck_assert_int_eq(settings_init(&s), -EINVAL);
}
END_TEST

START_TEST(test_default_config_file) {
        char dir[] = "/tmp/gcorn-test-XXXXXX", cwd[PATH_MAX], *expected;
        int fd;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(chdir(dir), 0);
        settings_done(&s);
        ck_assert_int_eq(settings_init(&s), 0);
        ck_assert_ptr_null(s.config);

        fd = open("gunicorn.conf.py", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        close(fd);
        settings_done(&s);
        ck_assert_int_eq(settings_init(&s), 0);
        ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
        ck_assert_int_ge(asprintf(&expected, "%s/gunicorn.conf.py", cwd), 0);
        ck_assert_str_eq(s.config, expected);

        ck_assert_int_eq(parse("-c", "other.py", NULL), 1);
        ck_assert_str_eq(s.config, "other.py");
        free(expected);
        unlink("gunicorn.conf.py");
        rmdir(dir);
}
END_TEST

START_TEST(test_bind_replace_then_append) {
        ck_assert_int_eq(parse("-b", "127.0.0.1:1", "--bind", "127.0.0.1:2", "--bind=unix:/tmp/s", "-b[::1]:4",
                               "app:app", NULL), 1);
        ck_assert_int_eq(strv_len(s.bind), 4);
        ck_assert_str_eq(s.bind[0], "127.0.0.1:1");
        ck_assert_str_eq(s.bind[1], "127.0.0.1:2");
        ck_assert_str_eq(s.bind[2], "unix:/tmp/s");
        ck_assert_str_eq(s.bind[3], "[::1]:4");
        ck_assert_str_eq(s.wsgi_app, "app:app");
}
END_TEST

START_TEST(test_value_forms) {
        ck_assert_int_eq(parse("-w3", "--timeout=0", "--backlog", "10", "-k", "sync", "-n=web", "--keep-alive", "5",
                               "--max-requests", "1000", "--max-requests-jitter=50", "--limit-request-body",
                               "10000000000", "--preload", "--access-logfile", "-", "--log-file", "/tmp/err.log",
                               "--log-level", "DEBUG", "--access-logformat", "%(h)s", "--chdir", "/tmp",
                               "--graceful-timeout", "7", NULL), 1);
        ck_assert_int_eq(s.workers, 3);
        ck_assert_int_eq(s.timeout, 0);
        ck_assert_int_eq(s.backlog, 10);
        ck_assert_str_eq(s.proc_name, "web");
        ck_assert_int_eq(s.keepalive, 5);
        ck_assert_int_eq(s.max_requests, 1000);
        ck_assert_int_eq(s.max_requests_jitter, 50);
        ck_assert(s.limit_request_body == 10000000000LL);
        ck_assert(s.preload_app);
        ck_assert_str_eq(s.accesslog, "-");
        ck_assert_str_eq(s.errorlog, "/tmp/err.log");
        ck_assert_str_eq(s.loglevel, "debug");
        ck_assert_str_eq(s.access_log_format, "%(h)s");
        ck_assert_str_eq(s.chdir, "/tmp");
        ck_assert_int_eq(s.graceful_timeout, 7);
        ck_assert_ptr_null(s.wsgi_app);
}
END_TEST

START_TEST(test_abbreviations_and_double_dash) {
        ck_assert_int_eq(parse("--backl", "5", "--graceful=9", "--", "-odd-module:app", NULL), 1);
        ck_assert_int_eq(s.backlog, 5);
        ck_assert_int_eq(s.graceful_timeout, 9);
        ck_assert_str_eq(s.wsgi_app, "-odd-module:app");

        ck_assert_int_eq(parse("--worke", "3", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(captured, "ambiguous option: --worke could match --workers, --worker-class"));
        ck_assert_int_eq(parse("--max-req", "3", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(captured, "ambiguous option: --max-req could match"));
        ck_assert_int_eq(count_lines(captured), 1);
}
END_TEST

START_TEST(test_field_size_spellings) {
        ck_assert_int_eq(parse("--limit-request-field_size", "100", NULL), 1);
        ck_assert_int_eq(s.limit_request_field_size, 100);
        ck_assert_int_eq(parse("--limit-request-field-size=200", NULL), 1);
        ck_assert_int_eq(s.limit_request_field_size, 200);
        ck_assert_int_eq(parse("--limit-request-line", "0", "--limit-request-fields", "40000", NULL), 1);
        ck_assert_int_eq(s.limit_request_line, 0);
        /* Gunicorn lowers too-large limits to its maximum instead of refusing them. */
        ck_assert_int_eq(s.limit_request_fields, 32768);
        ck_assert_int_eq(parse("--limit-request-line", "9000", NULL), 1);
        ck_assert_int_eq(s.limit_request_line, 8190);
}
END_TEST

START_TEST(test_bad_int) {
        ck_assert_int_eq(parse("-w", "x", NULL), -EINVAL);
        ck_assert_str_eq(captured, "gcorn: error: argument -w/--workers: invalid int value: 'x'\n");
        ck_assert_int_eq(parse("--timeout", "3x", NULL), -EINVAL);
        ck_assert_str_eq(captured, "gcorn: error: argument -t/--timeout: invalid int value: '3x'\n");
        ck_assert_int_eq(parse("--backlog=", NULL), -EINVAL);
        ck_assert_int_eq(parse("-w", "99999999999", NULL), -EINVAL);
        ck_assert_int_eq(count_lines(captured), 1);
}
END_TEST

START_TEST(test_out_of_range) {
        ck_assert_int_eq(parse("-w", "0", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(captured, "argument -w/--workers: invalid value: '0' (must be from 1 to 512)"));
        ck_assert_int_eq(parse("-w", "-2", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(captured, "'-2'"));
        ck_assert_int_eq(parse("--timeout", "-1", NULL), -EINVAL);
        ck_assert_int_eq(parse("--limit-request-field_size", "-5", NULL), -EINVAL);
        ck_assert_int_eq(count_lines(captured), 1);
        ck_assert_int_eq(s.limit_request_field_size, 8190);
}
END_TEST

/* Seconds become int milliseconds in the workers, and each worker needs a scoreboard slot
 * (two during a reload): larger values are refused with the range, not wrapped. */
START_TEST(test_overflowing_values) {
        static const char *const seconds[] = { "--timeout", "--graceful-timeout", "--keep-alive", "--boot-timeout" };
        char *err = NULL;

        for (size_t i = 0; i < ELEMENTSOF(seconds); i++) {
                ck_assert_int_eq(parse(seconds[i], "2147483", NULL), 1);
                ck_assert_int_eq(parse(seconds[i], "2147484", NULL), -EINVAL);
                ck_assert_ptr_nonnull(strstr(captured, seconds[i]));
                ck_assert_ptr_nonnull(strstr(captured, "invalid value: '2147484' (must be from "));
                ck_assert_ptr_nonnull(strstr(captured, " to 2147483)\n"));
                ck_assert_int_eq(count_lines(captured), 1);
                ck_assert_int_eq(parse(seconds[i], "99999999999999999999999", NULL), -EINVAL);
                ck_assert_ptr_nonnull(strstr(captured, " to 2147483)\n"));
        }
        ck_assert_int_eq(parse("-t", "3000000", NULL), -EINVAL);
        ck_assert_str_eq(captured,
                         "gcorn: error: argument -t/--timeout: invalid value: '3000000' (must be from 0 to 2147483)\n");
        /* 0 stays Gunicorn's "no timeout". */
        ck_assert_int_eq(parse("-t", "0", NULL), 1);
        ck_assert_int_eq(s.timeout, 0);
        ck_assert_int_eq(parse("--keep-alive", "0", NULL), 1);
        ck_assert_int_eq(s.keepalive, 0);

        ck_assert_int_eq(parse("-w", "512", NULL), 1);
        ck_assert_int_eq(s.workers, 512);
        ck_assert_int_eq(parse("-w", "513", NULL), -EINVAL);
        ck_assert_str_eq(captured, "gcorn: error: argument -w/--workers: invalid value: '513' (must be from 1 to 512)\n");
        ck_assert_int_eq(s.workers, 512);

        ck_assert_int_eq(settings_set(&s, "timeout", "99999999999999999999", &err), -EINVAL);
        ck_assert_str_eq(err, "Invalid value for timeout: '99999999999999999999' (must be from 0 to 2147483)");
        free(err);
        err = NULL;
        ck_assert_int_eq(settings_set(&s, "keepalive", "5000000", &err), -EINVAL);
        ck_assert_str_eq(err, "Invalid value for keepalive: '5000000' (must be from 0 to 2147483)");
        free(err);

        /* Limits Gunicorn clamps stay clamped, however large. */
        ck_assert_int_eq(parse("--limit-request-fields", "99999999999999999999999", NULL), 1);
        ck_assert_int_eq(s.limit_request_fields, 32768);
}
END_TEST

START_TEST(test_unknown_option_before_app) {
        /* "4" is the unknown option's value, not the app; the app is not an extra argument. */
        ck_assert_int_eq(parse("--fibers", "4", "-w", "2", "app:app", NULL), -EINVAL);
        ck_assert_str_eq(captured, "gcorn: error: unrecognized arguments: --fibers\n");
        ck_assert_int_eq(parse("-X", "4", "app:app", NULL), -EINVAL);
        ck_assert_str_eq(captured, "gcorn: error: unrecognized arguments: -X\n");
        /* Reported ahead of a bad APP_MODULE, which it may have displaced. */
        ck_assert_int_eq(parse("", "--fibers", "4", NULL), -EINVAL);
        ck_assert_str_eq(captured, "gcorn: error: unrecognized arguments: --fibers\n");
        ck_assert_int_eq(parse("--fibers=4", "app:app", "x", NULL), -EINVAL);
        ck_assert_str_eq(captured, "gcorn: error: unrecognized arguments: --fibers=4 x\n");
        ck_assert_int_eq(parse("-w", "2", "app:app", NULL), 1);
        ck_assert_str_eq(s.wsgi_app, "app:app");
}
END_TEST

START_TEST(test_unknown_flag) {
        ck_assert_int_eq(parse("--frob", "app:app", NULL), -EINVAL);
        ck_assert_str_eq(captured, "gcorn: error: unrecognized arguments: --frob\n");
        ck_assert_int_eq(parse("app:app", "extra", "-Z", NULL), -EINVAL);
        ck_assert_str_eq(captured, "gcorn: error: unrecognized arguments: extra -Z\n");
}
END_TEST

START_TEST(test_missing_argument) {
        ck_assert_int_eq(parse("-b", NULL), -EINVAL);
        ck_assert_str_eq(captured, "gcorn: error: argument -b/--bind: expected one argument\n");
        ck_assert_int_eq(parse("-w", "--preload", NULL), -EINVAL);
        ck_assert_str_eq(captured, "gcorn: error: argument -w/--workers: expected one argument\n");
        ck_assert_int_eq(parse("--preload=yes", NULL), -EINVAL);
        ck_assert_int_eq(count_lines(captured), 1);
}
END_TEST

START_TEST(test_worker_class) {
        ck_assert_int_eq(parse("-k", "tornado", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(captured, "argument -k/--worker-class"));
        ck_assert_ptr_nonnull(strstr(captured, "not available yet"));
        ck_assert_int_eq(count_lines(captured), 1);
        ck_assert_str_eq(s.worker_class, "sync");
}
END_TEST

START_TEST(test_log_level) {
        ck_assert_int_eq(parse("--log-level", "loud", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(captured, "argument --log-level: invalid value: 'loud'"));
        ck_assert_int_eq(parse("--log-level", "Warning", NULL), 1);
        ck_assert_str_eq(s.loglevel, "warning");
}
END_TEST

START_TEST(test_env) {
        ck_assert_int_eq(parse("-e", "A=1", "--env", "B=x=y", "-eC=", NULL), 1);
        ck_assert_int_eq(strv_len(s.raw_env), 3);
        ck_assert_str_eq(s.raw_env[0], "A=1");
        ck_assert_str_eq(s.raw_env[1], "B=x=y");
        ck_assert_str_eq(s.raw_env[2], "C=");

        ck_assert_int_eq(parse("-e", "NOEQUALS", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(captured, "argument -e/--env: invalid value: 'NOEQUALS'"));
        ck_assert_int_eq(parse("-e", "=1", NULL), -EINVAL);
}
END_TEST

START_TEST(test_pythonpath) {
        ck_assert_int_eq(parse("--pythonpath", "/a,b,,/c", NULL), 1);
        ck_assert_int_eq(strv_len(s.pythonpath), 3);
        ck_assert_str_eq(s.pythonpath[0], "/a");
        ck_assert_str_eq(s.pythonpath[1], "b");
        ck_assert_str_eq(s.pythonpath[2], "/c");
        ck_assert_int_eq(parse("--pythonpath", "/d", NULL), 1);
        ck_assert_int_eq(strv_len(s.pythonpath), 1);
        ck_assert_str_eq(s.pythonpath[0], "/d");
}
END_TEST

START_TEST(test_reparse_idempotent) {
        char *err = NULL;

        /* As main does: parse, apply the config file, parse again. */
        ck_assert_int_eq(parse("-b", "127.0.0.1:1", "-b", "127.0.0.1:2", "-e", "A=1", "-e", "B=2", "-w", "3",
                               "app:app", NULL), 1);
        ck_assert_int_eq(settings_set(&s, "bind", "0.0.0.0:9", &err), 0);
        ck_assert_int_eq(settings_set(&s, "workers", "8", &err), 0);
        ck_assert_int_eq(settings_set(&s, "timeout", "99", &err), 0);
        ck_assert_int_eq(parse("-b", "127.0.0.1:1", "-b", "127.0.0.1:2", "-e", "A=1", "-e", "B=2", "-w", "3",
                               "app:app", NULL), 1);

        ck_assert_int_eq(strv_len(s.bind), 2);
        ck_assert_str_eq(s.bind[0], "127.0.0.1:1");
        ck_assert_str_eq(s.bind[1], "127.0.0.1:2");
        ck_assert_int_eq(strv_len(s.raw_env), 2);
        ck_assert_str_eq(s.raw_env[0], "A=1");
        ck_assert_str_eq(s.raw_env[1], "B=2");
        ck_assert_int_eq(s.workers, 3);
        /* Not on the command line: the config file's value stays. */
        ck_assert_int_eq(s.timeout, 99);
        ck_assert_str_eq(s.wsgi_app, "app:app");
}
END_TEST

START_TEST(test_help_version) {
        ck_assert_int_eq(parse("--help", NULL), 0);
        ck_assert_ptr_nonnull(strstr(captured, "usage: gcorn"));
        ck_assert_ptr_nonnull(strstr(captured, "--bind ADDRESS"));
        ck_assert_ptr_nonnull(strstr(captured, "--limit-request-field_size"));
        ck_assert_ptr_nonnull(strstr(captured, "APP_MODULE"));
        ck_assert_ptr_nonnull(strstr(captured, "The number of worker processes"));

        ck_assert_int_eq(parse("-w", "2", "-h", "--frob", NULL), 0);
        ck_assert_ptr_nonnull(strstr(captured, "usage: gcorn"));

        ck_assert_int_eq(parse("--version", NULL), 0);
        ck_assert_str_eq(captured, "gcorn (version " GCORN_VERSION ")\n");
        ck_assert_int_eq(parse("-v", NULL), 0);
        ck_assert_str_eq(captured, "gcorn (version " GCORN_VERSION ")\n");
}
END_TEST

START_TEST(test_settings_set) {
        char *err = NULL;

        ck_assert_int_eq(settings_set(&s, "no_such_setting", "1", &err), -ENOENT);
        ck_assert_ptr_null(err);

        ck_assert_int_eq(settings_set(&s, "workers", "x", &err), -EINVAL);
        ck_assert_str_eq(err, "Invalid value for workers: 'x'");
        free(err);
        err = NULL;

        ck_assert_int_eq(settings_set(&s, "workers", "0", &err), -EINVAL);
        ck_assert_str_eq(err, "Invalid value for workers: '0' (must be from 1 to 512)");
        free(err);
        err = NULL;

        ck_assert_int_eq(settings_set(&s, "worker_class", "tornado", &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "Invalid value for worker_class: 'tornado'"));
        free(err);
        err = NULL;

        ck_assert_int_eq(settings_set(&s, "preload_app", "maybe", &err), -EINVAL);
        free(err);
        err = NULL;
        ck_assert_int_eq(settings_set(&s, "preload_app", "True", &err), 0);
        ck_assert(s.preload_app);

        ck_assert_int_eq(settings_set(&s, "wsgi_app", "m:app", &err), 0);
        ck_assert_str_eq(s.wsgi_app, "m:app");
        ck_assert_int_eq(settings_set(&s, "accesslog", "-", &err), 0);
        ck_assert_int_eq(settings_set(&s, "accesslog", NULL, &err), 0);
        ck_assert_ptr_null(s.accesslog);
        ck_assert_int_eq(settings_set(&s, "loglevel", NULL, &err), -EINVAL);
        free(err);
        err = NULL;
        ck_assert_str_eq(s.loglevel, "info");

        ck_assert_int_eq(settings_set_list(&s, "raw_env", (const char *const[]) { "A=1", "B", NULL }, &err),
                         -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "'B'"));
        free(err);
        err = NULL;
        ck_assert_int_eq(strv_len(s.raw_env), 0);
        ck_assert_int_eq(settings_set_list(&s, "workers", (const char *const[]) { "1", NULL }, &err), -EINVAL);
        free(err);
        err = NULL;

        ck_assert(settings_has("limit_request_field_size"));
        ck_assert(!settings_has("on_starting"));
}
END_TEST

START_TEST(test_validate) {
        char *err = NULL;

        ck_assert_int_eq(settings_validate(&s, &err), -EINVAL);
        ck_assert_str_eq(err, "No application module specified.");
        free(err);
        err = NULL;
        ck_assert_int_eq(parse("app:app", NULL), 1);
        ck_assert_int_eq(settings_validate(&s, &err), 0);
        ck_assert_ptr_null(err);
}
END_TEST

START_TEST(test_worker_class_kinds) {
        ck_assert_int_eq(parse("-k", "gunicorn.workers.sync.SyncWorker", NULL), 1);
        ck_assert_str_eq(s.worker_class, "sync");
        ck_assert_int_eq(parse("-k", "egg:gunicorn#sync", NULL), 1);
        ck_assert_str_eq(s.worker_class, "sync");
        /* gthread by each of Gunicorn's spellings, and by --threads above 1 with sync */
        ck_assert_int_eq(parse("-k", "gunicorn.workers.gthread.ThreadWorker", NULL), 1);
        ck_assert_str_eq(s.worker_class, "gthread");
        ck_assert(settings_threaded(&s));
        ck_assert_int_eq(parse("-k", "egg:gunicorn#gthread", NULL), 1);
        ck_assert_str_eq(s.worker_class, "gthread");
        ck_assert_int_eq(parse("--threads", "4", NULL), 1);
        ck_assert(settings_threaded(&s));
        ck_assert_int_eq(parse("-k", "sync", "--threads", "1", NULL), 1);
        ck_assert(!settings_threaded(&s));
        /* gevent by each of Gunicorn's spellings; --threads means nothing to it */
        ck_assert_int_eq(parse("-k", "gunicorn.workers.ggevent.GeventWorker", NULL), 1);
        ck_assert_str_eq(s.worker_class, "gevent");
        ck_assert(settings_gevent(&s));
        ck_assert_int_eq(parse("-k", "egg:gunicorn#gevent", "--threads", "4", NULL), 1);
        ck_assert_str_eq(s.worker_class, "gevent");
        ck_assert(settings_gevent(&s));
        ck_assert(!settings_threaded(&s));
        /* Removed by Gunicorn 26: the line points at what replaces it. */
        ck_assert_int_eq(parse("-k", "eventlet", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(captured, "use gevent or gthread, or sync"));
        ck_assert_int_eq(count_lines(captured), 1);
        ck_assert_int_eq(parse("-k", "uvicorn.workers.UvicornWorker", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(captured, "not available yet"));
        ck_assert_int_eq(parse("-k", "nosuch", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(captured, "unknown worker class"));
}
END_TEST

START_TEST(test_shell_split) {
        char **w = NULL;

        ck_assert_int_eq(settings_shell_split("  -w 3  --name 'my app' -e \"A=\\\"b c\\\"\" x\\ y '' ", &w), 0);
        ck_assert_int_eq(strv_len(w), 8);
        ck_assert_str_eq(w[0], "-w");
        ck_assert_str_eq(w[1], "3");
        ck_assert_str_eq(w[3], "my app");
        ck_assert_str_eq(w[5], "A=\"b c\"");
        ck_assert_str_eq(w[6], "x y");
        ck_assert_str_eq(w[7], "");
        strv_free(w);
        w = NULL;
        ck_assert_int_eq(settings_shell_split("", &w), 0);
        ck_assert_int_eq(strv_len(w), 0);
        strv_free(w);
        ck_assert_int_eq(settings_shell_split("--name 'open", &w), -EINVAL);
        ck_assert_int_eq(settings_shell_split("a\\", &w), -EINVAL);
}
END_TEST

/* Config file < GUNICORN_CMD_ARGS < GCORN_CMD_ARGS < command line. */
START_TEST(test_env_args) {
        setenv("GUNICORN_CMD_ARGS", "-w 3 --timeout 7 --name 'from env'", 1);
        ck_assert_int_eq(settings_parse_env_args(&s), 1);
        ck_assert_int_eq(s.workers, 3);
        ck_assert_int_eq(s.timeout, 7);
        ck_assert_str_eq(s.proc_name, "from env");

        setenv("GCORN_CMD_ARGS", "-w 5", 1);
        ck_assert_int_eq(settings_parse_env_args(&s), 1);
        ck_assert_int_eq(s.workers, 5);
        ck_assert_int_eq(parse("-w", "6", NULL), 1);
        ck_assert_int_eq(s.workers, 6);
        ck_assert_int_eq(s.timeout, 7);

        /* Errors name the variable; the app is not an option. */
        setenv("GCORN_CMD_ARGS", "--nope", 1);
        ck_assert_int_eq(capture_env_args(), -EINVAL);
        ck_assert_str_eq(captured, "gcorn: error: in $GCORN_CMD_ARGS: unrecognized arguments: --nope\n");
        setenv("GCORN_CMD_ARGS", "app:app", 1);
        ck_assert_int_eq(capture_env_args(), -EINVAL);
        ck_assert_ptr_nonnull(strstr(captured, "in $GCORN_CMD_ARGS: the application cannot be given here"));
        setenv("GCORN_CMD_ARGS", "--name 'x", 1);
        ck_assert_int_eq(capture_env_args(), -EINVAL);
        ck_assert_str_eq(captured, "gcorn: error: in $GCORN_CMD_ARGS: no closing quotation\n");
        /* The command line's own errors do not blame the variable. */
        ck_assert_int_eq(parse("--nope", NULL), -EINVAL);
        ck_assert_str_eq(captured, "gcorn: error: unrecognized arguments: --nope\n");
}
END_TEST

START_TEST(test_suggest) {
        ck_assert_str_eq(settings_suggest("wokers"), "workers");
        ck_assert_str_eq(settings_suggest("workres"), "workers");
        ck_assert_str_eq(settings_suggest("keep_alive"), "keepalive");
        ck_assert_str_eq(settings_suggest("acesslog"), "accesslog");
        ck_assert_ptr_null(settings_suggest("cores"));
        ck_assert_ptr_null(settings_suggest("workers_count_total"));
        ck_assert_ptr_null(settings_suggest("ip"));
}
END_TEST

START_TEST(test_no_effect_lines) {
        char **lines = NULL;

        /* Defaults, and values equal to them, are not reported. */
        ck_assert_int_eq(parse("--spew", "--worker-connections", "1000", NULL), 1);
        s.spew = false;
        ck_assert_int_eq(settings_no_effect_lines(&s, &lines), 0);
        ck_assert_int_eq(strv_len(lines), 0);
        strv_free(lines);

        ck_assert_int_eq(parse("--worker-tmp-dir", "/dev/shm", "--log-syslog", NULL), 1);
        ck_assert_int_eq(settings_no_effect_lines(&s, &lines), 0);
        ck_assert_int_eq(strv_len(lines), 2);
        ck_assert_str_eq(lines[0], "Setting worker_tmp_dir = /dev/shm has no effect in gcorn: the worker heartbeat "
                                   "is in shared memory, not in files");
        ck_assert_ptr_nonnull(strstr(lines[1], "Setting syslog = True has no effect in gcorn: "));
        strv_free(lines);
}
END_TEST

START_TEST(test_refused) {
        char *err = NULL;

        ck_assert_int_eq(parse("--threads", "1", "--protocol", "http", "app:app", NULL), 1);
        ck_assert_int_eq(settings_validate(&s, &err), 0);
        ck_assert_int_eq(parse("--threads", "4", NULL), 1);
        ck_assert_int_eq(settings_validate(&s, &err), 0);
        ck_assert_int_eq(settings_set(&s, "certfile", "/etc/ssl/x.pem", &err), 0);
        ck_assert_int_eq(settings_validate(&s, &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "Setting certfile = /etc/ssl/x.pem is refused: TLS is not available"));
        free(err);
        ck_assert_int_eq(parse("--protocol", "uwsgi2", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(captured, "choose from http, uwsgi"));
}
END_TEST

START_TEST(test_print_config) {
        char buf[16384], prev[64] = "";
        FILE *f = fmemopen(buf, sizeof(buf), "w");
        size_t n = 0;

        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(parse("-b", "127.0.0.1:1", "-b", "[::1]:2", "--no-sendfile", "-p", "/run/x.pid",
                               "--pythonpath", "/a,/b", "app:app", NULL), 1);
        /* Settings other modules keep (the hooks) are sorted in with the rest. */
        settings_print_config(&s, f, (char *const[]) { "on_exit", "<function on_exit>", NULL });
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_ptr_nonnull(strstr(buf, "\non_exit                            = <function on_exit>\n"));
        ck_assert_ptr_nonnull(strstr(buf, "\nbind                               = ['127.0.0.1:1', '[::1]:2']\n"));
        ck_assert_ptr_nonnull(strstr(buf, "\nsendfile                           = False\n"));
        ck_assert_ptr_nonnull(strstr(buf, "\npidfile                            = /run/x.pid\n"));
        ck_assert_ptr_nonnull(strstr(buf, "\npythonpath                         = /a,/b\n"));
        ck_assert_ptr_nonnull(strstr(buf, "\nraw_env                            = []\n"));
        ck_assert_ptr_nonnull(strstr(buf, "\naccesslog                          = None\n"));
        ck_assert_ptr_nonnull(strstr(buf, "\nwsgi_app                           = app:app\n"));
        /* Sorted, each name once, all padded to the longest. */
        for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
                char *eq = strstr(line, " = ");

                ck_assert_ptr_nonnull(eq);
                ck_assert_int_eq(eq - line, strlen("permit_unconventional_http_version"));
                *strchrnul(line, ' ') = '\0';
                ck_assert_int_lt(strcmp(prev, line), 0);
                snprintf(prev, sizeof(prev), "%s", line);
                n++;
        }
        ck_assert_int_gt(n, 70);
}
END_TEST

START_TEST(test_doc_outputs) {
        char buf[65536];
        FILE *f = fmemopen(buf, sizeof(buf), "w");

        ck_assert_ptr_nonnull(f);
        settings_print_man(f);
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_ptr_nonnull(strstr(buf, ".TH GCORN 1"));
        ck_assert_ptr_nonnull(strstr(buf, "Setting: \\fBworker_tmp_dir\\fR"));
        ck_assert_ptr_nonnull(strstr(buf, "\\fB\\-p, \\-\\-pid\\fR \\fIFILE\\fR"));
        /* Hidden flags stay out of the documentation. */
        ck_assert_ptr_null(strstr(buf, "markdown"));

        f = fmemopen(buf, sizeof(buf), "w");
        settings_print_markdown(f);
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_ptr_nonnull(strstr(buf, "| `certfile` | `--certfile` |  | refused | TLS is not available"));
        ck_assert_ptr_nonnull(strstr(buf, "| `sendfile` | `--no-sendfile` | on | implemented |"));
}
END_TEST

/* What settings_foreach() handed over, by name. */
typedef struct Seen {
        int64_t workers, limit_request_body;
        bool preload_app, proc_name_null;
        const char *worker_class, *bind0;
        size_t count;
} Seen;

static int seen_add(const char *name, SettingValueKind kind, const void *value, void *userdata) {
        Seen *seen = userdata;

        seen->count++;
        if (strcmp(name, "workers") == 0 && kind == SETTING_VALUE_INT)
                seen->workers = *(const int64_t *) value;
        else if (strcmp(name, "limit_request_body") == 0 && kind == SETTING_VALUE_INT)
                seen->limit_request_body = *(const int64_t *) value;
        else if (strcmp(name, "preload_app") == 0 && kind == SETTING_VALUE_BOOL)
                seen->preload_app = *(const bool *) value;
        else if (strcmp(name, "proc_name") == 0 && kind == SETTING_VALUE_STRING)
                seen->proc_name_null = value == NULL;
        else if (strcmp(name, "worker_class") == 0 && kind == SETTING_VALUE_STRING)
                seen->worker_class = value;
        else if (strcmp(name, "bind") == 0 && kind == SETTING_VALUE_LIST)
                seen->bind0 = ((char *const *) value)[0];
        return strcmp(name, "wsgi_app") == 0 ? -ECANCELED : 0;
}

START_TEST(test_foreach) {
        Seen seen = {};

        ck_assert_int_eq(parse("-w", "3", "--preload", "--limit-request-body", "5000000000", "-b", "unix:/x", "a:b",
                               NULL), 1);
        ck_assert_int_eq(settings_foreach(&s, seen_add, &seen), -ECANCELED);
        ck_assert_int_eq(seen.workers, 3);
        ck_assert_int_eq(seen.limit_request_body, 5000000000LL);
        ck_assert(seen.preload_app);
        ck_assert(seen.proc_name_null);
        ck_assert_str_eq(seen.worker_class, "sync");
        ck_assert_str_eq(seen.bind0, "unix:/x");
        ck_assert_int_gt(seen.count, 10);
}
END_TEST

/* Python: each test runs in its own forked child with a fresh interpreter. */

static char tmpdir[64];

static void write_file(const char *name, const char *content) {
        char path[256];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        fputs(content, f);
        fclose(f);
}

static void py_setup(void) {
        setup();
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/gcorn-test-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
        setenv("PYTHONDONTWRITEBYTECODE", "1", 1);
        ck_assert_int_eq(python_init(), 0);
}

static void py_teardown(void) {
        char cmd[128];

        teardown();
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        ck_assert_int_eq(system(cmd), 0);
}

static int load_config(const char *content, char **err) {
        char path[256];

        write_file("conf.py", content);
        snprintf(path, sizeof(path), "%s/conf.py", tmpdir);
        return config_file_load(&s, path, err);
}

START_TEST(test_config_values) {
        char *err = NULL;

        ck_assert_int_eq(load_config("import os\n"
                                     "bind = ['127.0.0.1:9000', 'unix:/tmp/x.sock']\n"
                                     "workers = 2 * 2\n"
                                     "wsgi_app = 'm:app'\n"
                                     "preload_app = True\n"
                                     "raw_env = 'A=1'\n"
                                     "pythonpath = '/x,/y'\n"
                                     "timeout = '45'\n"
                                     "accesslog = None\n"
                                     "loglevel = 'ERROR'\n"
                                     "something_else = object()\n"
                                     "_private = 1.5\n"
                                     "def on_starting(server):\n"
                                     "    pass\n",
                                     &err),
                         0);
        ck_assert_ptr_null(err);
        ck_assert_int_eq(strv_len(s.bind), 2);
        ck_assert_str_eq(s.bind[0], "127.0.0.1:9000");
        ck_assert_str_eq(s.bind[1], "unix:/tmp/x.sock");
        ck_assert_int_eq(s.workers, 4);
        ck_assert_str_eq(s.wsgi_app, "m:app");
        ck_assert(s.preload_app);
        ck_assert_int_eq(strv_len(s.raw_env), 1);
        ck_assert_str_eq(s.raw_env[0], "A=1");
        ck_assert_int_eq(strv_len(s.pythonpath), 2);
        ck_assert_str_eq(s.pythonpath[1], "/y");
        ck_assert_int_eq(s.timeout, 45);
        ck_assert_ptr_null(s.accesslog);
        ck_assert_str_eq(s.loglevel, "error");

        /* The command line, parsed again afterwards, wins. */
        ck_assert_int_eq(parse("-b", "127.0.0.1:1", "-w", "1", NULL), 1);
        ck_assert_int_eq(strv_len(s.bind), 1);
        ck_assert_str_eq(s.bind[0], "127.0.0.1:1");
        ck_assert_int_eq(s.workers, 1);
        ck_assert(s.preload_app);
}
END_TEST

START_TEST(test_config_namespace) {
        char *err = NULL;

        ck_assert_int_eq(load_config("proc_name = __name__ + ':' + __file__.rsplit('/', 1)[1]\n"
                                     "bind = ('127.0.0.1:1',)\n"
                                     "max_requests = False\n",
                                     &err),
                         -EINVAL);
        /* False is not an int here: bool is checked before int. */
        ck_assert_str_eq(err, "Invalid value for max_requests: 'False'");
        ck_assert_str_eq(s.proc_name, "__config__:conf.py");
        ck_assert_str_eq(s.bind[0], "127.0.0.1:1");
        free(err);
}
END_TEST

START_TEST(test_config_errors) {
        char *err = NULL, path[256];

        ck_assert_int_eq(load_config("workers = 2\nworkers = = 3\n", &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "Error in config file "));
        ck_assert_ptr_nonnull(strstr(err, "conf.py: line 2: SyntaxError: invalid syntax"));
        ck_assert_ptr_null(strchr(err, '\n'));
        ck_assert_int_eq(s.workers, 1);
        free(err);
        err = NULL;

        ck_assert_int_eq(load_config("workers = 2\n\nbind = undefined_name\n", &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "conf.py: line 3: NameError: name 'undefined_name' is not defined"));
        free(err);
        err = NULL;

        write_file("helper_mod.py", "raise RuntimeError('from helper')\n");
        snprintf(path, sizeof(path), "import sys\nsys.path.insert(0, %s%s%s)\nimport helper_mod\n", "'", tmpdir,
                 "'");
        ck_assert_int_eq(load_config(path, &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "line 3: RuntimeError: from helper"));
        free(err);
        err = NULL;

        ck_assert_int_eq(load_config("raise SystemExit(3)\n", &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "line 1: SystemExit: 3"));
        free(err);
        err = NULL;

        ck_assert_int_eq(config_file_load(&s, "/nonexistent/gunicorn.conf.py", &err), -ENOENT);
        ck_assert_str_eq(err, "Config file not found: /nonexistent/gunicorn.conf.py");
        free(err);
}
END_TEST

START_TEST(test_config_wrong_types) {
        char *err = NULL;

        ck_assert_int_eq(load_config("workers = 'x'\n", &err), -EINVAL);
        ck_assert_str_eq(err, "Invalid value for workers: 'x'");
        free(err);
        err = NULL;

        ck_assert_int_eq(load_config("workers = 2.5\n", &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "Invalid value for workers: 2.5"));
        free(err);
        err = NULL;

        ck_assert_int_eq(load_config("bind = ['127.0.0.1:1', 2]\n", &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "Invalid value for bind"));
        ck_assert_str_eq(s.bind[0], "127.0.0.1:8000");
        free(err);
        err = NULL;

        ck_assert_int_eq(load_config("worker_class = 'tornado'\n", &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "Invalid value for worker_class: 'tornado'"));
        free(err);
        err = NULL;

        ck_assert_int_eq(load_config("timeout = [1]\n", &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "Invalid value for timeout"));
        free(err);
}
END_TEST

static const char app_module[] = "import sys\n"
                                 "def app(environ, start_response):\n"
                                 "    return [b'app']\n"
                                 "application = app\n"
                                 "def create(*args, **kwargs):\n"
                                 "    def inner(environ, start_response):\n"
                                 "        return [b'inner']\n"
                                 "    inner.args = args\n"
                                 "    inner.kwargs = kwargs\n"
                                 "    return inner\n"
                                 "def broken():\n"
                                 "    raise TypeError('inside factory')\n"
                                 "def none():\n"
                                 "    return None\n"
                                 "class Holder:\n"
                                 "    wsgi = staticmethod(app)\n"
                                 "holder = Holder()\n"
                                 "notcallable = 42\n";

/* Loads spec with the temp dir on sys.path (through --pythonpath), and returns the result of
 * evaluating expr with the app bound to `a` (or NULL on failure, *err set). */
static char *load_and_eval(const char *spec, const char *expr, char **err) {
        PyObject *globals = NULL, *result = NULL, *str = NULL;
        void *app = NULL;
        char *ret = NULL;
        int r;

        r = python_load_app(spec, &app, err);
        if (r < 0) {
                ck_assert_ptr_nonnull(*err);
                return NULL;
        }
        ck_assert_ptr_null(*err);
        python_gil_acquire();
        globals = PyDict_New();
        ck_assert_ptr_nonnull(globals);
        ck_assert_int_eq(PyDict_SetItemString(globals, "a", app), 0);
        result = PyRun_String(expr, Py_eval_input, globals, globals);
        ck_assert_ptr_nonnull(result);
        str = PyObject_Str(result);
        ck_assert_ptr_nonnull(str);
        ret = strdup(PyUnicode_AsUTF8(str));
        Py_DECREF(str);
        Py_DECREF(result);
        Py_DECREF(globals);
        Py_DECREF((PyObject *) app);
        python_gil_release();
        return ret;
}

static void app_setup(void) {
        char *err = NULL;

        py_setup();
        write_file("m.py", app_module);
        write_file("failing.py", "import no_such_dependency_xyz\n");
        write_file("raising.py", "raise RuntimeError('boom')\n");
        ck_assert_int_eq(settings_set(&s, "pythonpath", tmpdir, &err), 0);
        ck_assert_int_eq(python_setup_paths(&s), 0);
}

START_TEST(test_load_app_forms) {
        char *err = NULL, *v;

        v = load_and_eval("m:app", "a(None, None)", &err);
        ck_assert_str_eq(v, "[b'app']");
        free(v);

        v = load_and_eval("m", "a.__name__", &err);
        ck_assert_str_eq(v, "app");
        free(v);

        v = load_and_eval("m:create()", "(a(None, None), a.args, a.kwargs)", &err);
        ck_assert_str_eq(v, "([b'inner'], (), {})");
        free(v);

        v = load_and_eval("m:create('x', n=2)", "(a.args, a.kwargs)", &err);
        ck_assert_str_eq(v, "(('x',), {'n': 2})");
        free(v);

        v = load_and_eval("m:holder.wsgi", "a.__name__", &err);
        ck_assert_str_eq(v, "app");
        free(v);
}
END_TEST

static void expect_load_error(const char *spec, const char *message) {
        void *app = NULL;
        char *err = NULL;

        ck_assert_int_lt(python_load_app(spec, &app, &err), 0);
        ck_assert_ptr_null(app);
        ck_assert_ptr_nonnull(err);
        ck_assert_msg(strcmp(err, message) == 0, "%s: expected \"%s\", got \"%s\"", spec, message, err);
        free(err);
}

START_TEST(test_load_app_errors) {
        expect_load_error("m:nope", "Failed to find attribute 'nope' in 'm'.");
        expect_load_error("m:holder.nope", "Failed to find attribute 'holder.nope' in 'm'.");
        expect_load_error("m:notcallable", "Application object must be callable.");
        expect_load_error("m:create(1, 2", "Failed to parse 'create(1, 2' as an attribute name or function call.");
        expect_load_error("m:app[0]", "Failed to parse 'app[0]' as an attribute name or function call.");
        expect_load_error("m:create(x)", "Failed to parse arguments as literal values: 'create(x)'");
        expect_load_error("m:none()", "Failed to find application object: 'none()'");
        expect_load_error("m:app()",
                          "TypeError: app() missing 2 required positional arguments: 'environ' and 'start_response'");
        expect_load_error("m:broken()", "TypeError: inside factory");
        expect_load_error("nosuchmodule_xyz:app", "No module named 'nosuchmodule_xyz'");
        expect_load_error("failing:app", "No module named 'no_such_dependency_xyz'");
        expect_load_error("raising", "RuntimeError: boom");
}
END_TEST

START_TEST(test_config_unknown_names) {
        char *err = NULL;

        /* Helpers, hooks and private names are the file's own; other names get a line. */
        ck_assert_int_eq(load_config("import multiprocessing\n"
                                     "from os import getcwd\n"
                                     "class Helper: pass\n"
                                     "def post_fork(server, worker): pass\n"
                                     "def helper(): pass\n"
                                     "_hidden = 1\n"
                                     "cores = multiprocessing.cpu_count()\n"
                                     "workers = 2\n",
                                     &err),
                         0);
        ck_assert_ptr_null(err);
        ck_assert_int_eq(s.workers, 2);
        ck_assert_int_eq(strv_len(s.config_warnings), 1);
        ck_assert_ptr_nonnull(strstr(s.config_warnings[0], "'cores' is not a setting; ignored"));

        /* Loading again starts the list over. */
        ck_assert_int_eq(load_config("workers = 3\n", &err), 0);
        ck_assert_int_eq(strv_len(s.config_warnings), 0);

        ck_assert_int_eq(load_config("wokers = 4\n", &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "Unknown setting 'wokers' in config file "));
        ck_assert_ptr_nonnull(strstr(err, ": did you mean 'workers'?"));
        free(err);
}
END_TEST

START_TEST(test_setup_paths) {
        char *err = NULL, *v;

        ck_assert_int_eq(settings_set(&s, "pythonpath", "/gcorn-a,/gcorn-b", &err), 0);
        ck_assert_int_eq(settings_set_list(&s, "raw_env", (const char *const[]) { "GCORN_T=x=1", NULL }, &err),
                         0);
        ck_assert_int_eq(chdir(tmpdir), 0);
        ck_assert_int_eq(python_setup_paths(&s), 0);
        ck_assert_str_eq(getenv("GCORN_T"), "x=1");

        write_file("probe.py", "import os, sys\n"
                               "def application(environ, start_response):\n"
                               "    return []\n"
                               "application.path = sys.path[:3]\n"
                               "application.cwd = os.getcwd()\n");
        v = load_and_eval("probe", "a.path == ['/gcorn-b', '/gcorn-a', a.cwd]", &err);
        ck_assert_str_eq(v, "True");
        free(v);
}
END_TEST

START_TEST(test_python_signals_and_format) {
        struct sigaction sa;
        PyObject *globals, *result;
        char *text;

        /* Python must leave SIGINT alone, even once the application imports signal (its
         * import installs a handler when SIGINT is at the default). */
        ck_assert(signal(SIGINT, SIG_DFL) != SIG_ERR);
        ck_assert_int_eq(python_init(), 0);
        ck_assert_int_eq(sigaction(SIGINT, NULL, &sa), 0);
        ck_assert(sa.sa_handler == SIG_DFL);
        python_gil_acquire();
        globals = PyDict_New();
        ck_assert_ptr_nonnull(globals);
        result = PyRun_String("import signal\nsig = signal.getsignal(signal.SIGINT)\n", Py_file_input, globals,
                              globals);
        ck_assert_ptr_nonnull(result);
        Py_DECREF(result);
        result = PyRun_String("sig == signal.SIG_DFL", Py_eval_input, globals, globals);
        ck_assert_ptr_eq(result, Py_True);
        Py_DECREF(result);
        ck_assert_int_eq(sigaction(SIGINT, NULL, &sa), 0);
        ck_assert(sa.sa_handler == SIG_DFL);

        ck_assert_ptr_null(python_format_exception());
        result = PyRun_String("def f():\n    1 / 0\nf()\n", Py_file_input, globals, globals);
        ck_assert_ptr_null(result);
        text = python_format_exception();
        ck_assert_ptr_nonnull(text);
        ck_assert_ptr_null(PyErr_Occurred());
        ck_assert_ptr_nonnull(strstr(text, "Traceback (most recent call last):\n"));
        ck_assert_ptr_nonnull(strstr(text, "in f\n"));
        ck_assert_ptr_nonnull(strstr(text, "ZeroDivisionError: division by zero"));
        ck_assert(text[strlen(text) - 1] != '\n');
        free(text);
        Py_DECREF(globals);
        python_gil_release();
        ck_assert_int_eq(python_finalize(), 0);
}
END_TEST

START_TEST(test_privilege_settings) {
        char *err = NULL;

        ck_assert_ptr_null(s.user);
        ck_assert_ptr_null(s.group);
        ck_assert_str_eq(s.umask, "0");
        ck_assert(!s.initgroups);

        /* Gunicorn's int(value, 0), with "0" and a digit as octal. */
        ck_assert_int_eq(parse("-m", "0o22", NULL), 1);
        ck_assert_str_eq(s.umask, "18");
        ck_assert_int_eq(parse("--umask", "022", NULL), 1);
        ck_assert_str_eq(s.umask, "18");
        ck_assert_int_eq(parse("--umask", "18", NULL), 1);
        ck_assert_str_eq(s.umask, "18");
        ck_assert_int_eq(parse("--umask", "0x1f", NULL), 1);
        ck_assert_str_eq(s.umask, "31");
        ck_assert_int_eq(parse("--umask", "0", NULL), 1);
        ck_assert_str_eq(s.umask, "0");
        ck_assert_int_eq(parse("--umask", "08", NULL), -EINVAL);
        ck_assert_int_eq(parse("--umask", "0o1000", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(captured, "argument -m/--umask: invalid value: '0o1000'"));
        ck_assert_int_eq(parse("--umask", "", NULL), -EINVAL);

        ck_assert_int_eq(parse("-u", "root", "-g", "0", "--initgroups", NULL), 1);
        ck_assert_str_eq(s.user, "root");
        ck_assert_str_eq(s.group, "0");
        ck_assert(s.initgroups);
        ck_assert_int_eq(parse("-u", "no-such-user-xyz", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(captured, "(no such user)"));
        ck_assert_int_eq(parse("-g", "no-such-group-xyz", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(captured, "(no such group)"));

        /* None in the config file: the master's own. */
        ck_assert_int_eq(settings_set(&s, "user", NULL, &err), 0);
        ck_assert_ptr_null(s.user);
        ck_assert_int_eq(settings_set(&s, "umask", "18", &err), 0);
        ck_assert_str_eq(s.umask, "18");
}
END_TEST

START_TEST(test_reload_and_log_settings) {
        ck_assert(!s.reload);
        ck_assert_str_eq(s.reload_engine, "auto");
        ck_assert_ptr_null(s.reload_extra_files[0]);
        ck_assert_int_eq(parse("--reload", "--reload-engine", "poll", "--reload-extra-file", "/dev/null",
                               "--reload-extra-file", "/", NULL), 1);
        ck_assert(s.reload);
        ck_assert_str_eq(s.reload_engine, "poll");
        ck_assert_str_eq(s.reload_extra_files[0], "/dev/null");
        ck_assert_str_eq(s.reload_extra_files[1], "/");
        ck_assert_int_eq(parse("--reload-engine", "fsevents", NULL), -EINVAL);
        ck_assert_int_eq(parse("--reload-extra-file", "/no/such/file", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(captured, "No such file or directory"));

        ck_assert(!s.capture_output);
        ck_assert_ptr_null(s.logconfig);
        ck_assert_ptr_null(s.logconfig_json);
        ck_assert_ptr_null(s.logconfig_dict);
        ck_assert_int_eq(parse("--capture-output", "--log-config", "a.ini", "--log-config-json", "b.json", NULL), 1);
        ck_assert(s.capture_output);
        ck_assert_str_eq(s.logconfig, "a.ini");
        ck_assert_str_eq(s.logconfig_json, "b.json");
}
END_TEST

START_TEST(test_config_logconfig_dict) {
        char *err = NULL;

        ck_assert_int_eq(load_config("logconfig_dict = {'version': 1}\nuser = None\numask = 0o22\n", &err), 0);
        ck_assert_ptr_nonnull(s.logconfig_dict);
        ck_assert_str_eq(s.umask, "18");
        ck_assert_int_eq(load_config("logconfig_dict = ['version']\n", &err), -EINVAL);
        ck_assert_str_eq(err, "Invalid value for logconfig_dict: a list is not allowed (a dict is)");
        free(err);
}
END_TEST

START_TEST(test_proxy_settings) {
        ck_assert_int_eq(strv_len(s.forwarded_allow_ips), 2);
        ck_assert_str_eq(s.forwarded_allow_ips[0], "127.0.0.1");
        ck_assert_str_eq(s.forwarded_allow_ips[1], "::1");
        ck_assert_int_eq(strv_len(s.proxy_allow_ips), 2);
        ck_assert_str_eq(s.proxy_protocol, "off");
        ck_assert_int_eq(strv_len(s.secure_scheme_headers), 6);
        ck_assert_str_eq(s.secure_scheme_headers[0], "X-FORWARDED-PROTOCOL");
        ck_assert_str_eq(s.secure_scheme_headers[1], "ssl");
        ck_assert_str_eq(s.secure_scheme_headers[3], "https");
        ck_assert_str_eq(s.secure_scheme_headers[5], "on");

        /* the flag alone is auto, and the word after it stays the app unless it is a mode */
        ck_assert_int_eq(parse("--proxy-protocol", "m:app", NULL), 1);
        ck_assert_str_eq(s.proxy_protocol, "auto");
        ck_assert_str_eq(s.wsgi_app, "m:app");
        ck_assert_int_eq(parse("--proxy-protocol", "V2", "m:app", NULL), 1);
        ck_assert_str_eq(s.proxy_protocol, "v2");
        ck_assert_int_eq(parse("--proxy-protocol", "--workers", "2", NULL), 1);
        ck_assert_str_eq(s.proxy_protocol, "auto");
        ck_assert_int_eq(parse("--proxy-protocol=false", NULL), 1);
        ck_assert_str_eq(s.proxy_protocol, "off");
        ck_assert_int_eq(parse("--proxy-protocol=yes", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(captured, "choose from off, v1, v2, auto"));

        /* entries are stripped and checked */
        ck_assert_int_eq(parse("--forwarded-allow-ips", " 10.0.0.0/8 , *", "--proxy-allow-from", "", NULL), 1);
        ck_assert_int_eq(strv_len(s.forwarded_allow_ips), 2);
        ck_assert_str_eq(s.forwarded_allow_ips[0], "10.0.0.0/8");
        ck_assert_str_eq(s.forwarded_allow_ips[1], "*");
        ck_assert_int_eq(strv_len(s.proxy_allow_ips), 0);
        ck_assert_int_eq(parse("--forwarded-allow-ips", "10.0.0.1/8", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(captured, "host bits"));
}
END_TEST

START_TEST(test_forwarded_allow_ips_env) {
        settings_done(&s);
        setenv("FORWARDED_ALLOW_IPS", "10.1.2.3,fd00::/8", 1);
        ck_assert_int_eq(settings_init(&s), 0);
        ck_assert_int_eq(strv_len(s.forwarded_allow_ips), 2);
        ck_assert_str_eq(s.forwarded_allow_ips[1], "fd00::/8");
        settings_done(&s);
        setenv("FORWARDED_ALLOW_IPS", "nope", 1);
        ck_assert_int_eq(settings_init(&s), -EINVAL);
        unsetenv("FORWARDED_ALLOW_IPS");
        ck_assert_int_eq(settings_init(&s), 0);
}
END_TEST

START_TEST(test_config_proxy) {
        char *err = NULL;

        ck_assert_int_eq(load_config("secure_scheme_headers = {'X-SCHEME': 'secure', 'X_SSL': 'on'}\n"
                                     "proxy_protocol = True\n"
                                     "forwarded_allow_ips = '*'\n",
                                     &err),
                         0);
        ck_assert_int_eq(strv_len(s.secure_scheme_headers), 4);
        ck_assert_str_eq(s.secure_scheme_headers[0], "X-SCHEME");
        ck_assert_str_eq(s.secure_scheme_headers[1], "secure");
        ck_assert_str_eq(s.secure_scheme_headers[2], "X_SSL");
        ck_assert_str_eq(s.proxy_protocol, "auto");
        ck_assert_str_eq(s.forwarded_allow_ips[0], "*");
        ck_assert_int_eq(load_config("proxy_protocol = None\n", &err), 0);
        ck_assert_ptr_null(s.proxy_protocol);

        ck_assert_int_eq(load_config("secure_scheme_headers = {'x-scheme': 'secure'}\n", &err), -EINVAL);
        ck_assert_str_eq(err, "Invalid value for secure_scheme_headers: 'x-scheme' "
                              "(header names must be upper case, as Gunicorn compares them)");
        free(err);
        err = NULL;
        ck_assert_int_eq(load_config("secure_scheme_headers = {'X': 1}\n", &err), -EINVAL);
        ck_assert_str_eq(err, "Invalid value for secure_scheme_headers: keys and values must be str");
        free(err);
        err = NULL;
        ck_assert_int_eq(load_config("secure_scheme_headers = None\n", &err), -EINVAL);
        ck_assert_str_eq(err, "Invalid value for secure_scheme_headers: None (a dict is expected)");
        free(err);
        err = NULL;
        ck_assert_int_eq(load_config("workers = {'a': 'b'}\n", &err), -EINVAL);
        ck_assert_str_eq(err, "Invalid value for workers: a dict is not allowed");
        free(err);
}
END_TEST

static Suite *settings_suite(void) {
        Suite *suite = suite_create("settings");
        TCase *tc = tcase_create("argv");
        TCase *py = tcase_create("python");
        TCase *app = tcase_create("app");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_env_defaults);
        tcase_add_test(tc, test_default_config_file);
        tcase_add_test(tc, test_bind_replace_then_append);
        tcase_add_test(tc, test_value_forms);
        tcase_add_test(tc, test_abbreviations_and_double_dash);
        tcase_add_test(tc, test_field_size_spellings);
        tcase_add_test(tc, test_bad_int);
        tcase_add_test(tc, test_out_of_range);
        tcase_add_test(tc, test_unknown_flag);
        tcase_add_test(tc, test_overflowing_values);
        tcase_add_test(tc, test_unknown_option_before_app);
        tcase_add_test(tc, test_missing_argument);
        tcase_add_test(tc, test_worker_class);
        tcase_add_test(tc, test_worker_class_kinds);
        tcase_add_test(tc, test_shell_split);
        tcase_add_test(tc, test_env_args);
        tcase_add_test(tc, test_suggest);
        tcase_add_test(tc, test_no_effect_lines);
        tcase_add_test(tc, test_refused);
        tcase_add_test(tc, test_print_config);
        tcase_add_test(tc, test_doc_outputs);
        tcase_add_test(tc, test_log_level);
        tcase_add_test(tc, test_env);
        tcase_add_test(tc, test_pythonpath);
        tcase_add_test(tc, test_reparse_idempotent);
        tcase_add_test(tc, test_help_version);
        tcase_add_test(tc, test_settings_set);
        tcase_add_test(tc, test_validate);
        tcase_add_test(tc, test_foreach);
        tcase_add_test(tc, test_python_signals_and_format);
        tcase_add_test(tc, test_privilege_settings);
        tcase_add_test(tc, test_reload_and_log_settings);
        tcase_add_test(tc, test_proxy_settings);
        tcase_add_test(tc, test_forwarded_allow_ips_env);
        suite_add_tcase(suite, tc);

        tcase_add_checked_fixture(py, py_setup, py_teardown);
        tcase_add_test(py, test_config_values);
        tcase_add_test(py, test_config_namespace);
        tcase_add_test(py, test_config_errors);
        tcase_add_test(py, test_config_wrong_types);
        tcase_add_test(py, test_config_unknown_names);
        tcase_add_test(py, test_setup_paths);
        tcase_add_test(py, test_config_logconfig_dict);
        tcase_add_test(py, test_config_proxy);
        suite_add_tcase(suite, py);

        tcase_add_checked_fixture(app, app_setup, py_teardown);
        tcase_add_test(app, test_load_app_forms);
        tcase_add_test(app, test_load_app_errors);
        suite_add_tcase(suite, app);
        return suite;
}

int main(void) {
        SRunner *runner = srunner_create(settings_suite());
        int failed;

        srunner_run_all(runner, CK_NORMAL);
        failed = srunner_ntests_failed(runner);
        srunner_free(runner);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
