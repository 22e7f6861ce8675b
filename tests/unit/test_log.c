/* Tests for src/log.c: the shape of multi-line entries in a file, on a journal stream and in
 * the journal, wsgi.errors text, and the fd handed to faulthandler. The journal is this file's
 * sd_journal_send(), which the executable's own definition puts in front of libsystemd's. */
#include <check.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gcorn/log.h"

#define SENT_MAX 8

static struct {
        char *message;
        int priority;
} sent[SENT_MAX];
static size_t n_sent;

/* Reads the fields log.c sends, in its order: MESSAGE (with a length), then PRIORITY. */
int sd_journal_send(const char *format, ...) {
        const char *msg, *f;
        va_list ap;
        int len;

        ck_assert_uint_lt(n_sent, SENT_MAX);
        ck_assert_str_eq(format, "MESSAGE=%.*s");
        va_start(ap, format);
        len = va_arg(ap, int);
        msg = va_arg(ap, const char *);
        f = va_arg(ap, const char *);
        ck_assert_str_eq(f, "PRIORITY=%i");
        sent[n_sent].priority = va_arg(ap, int);
        va_end(ap);
        sent[n_sent].message = strndup(msg, (size_t) len);
        n_sent++;
        return 0;
}

static char dir[] = "/tmp/gcorn-test-log-XXXXXX";

static void setup(void) {
        ck_assert_ptr_nonnull(mkdtemp(dir));
        n_sent = 0;
}

static void teardown(void) {
        static const char *const names[] = { "error.log", "error.log.1", "stream" };
        char p[sizeof(dir) + 32];

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
                (void) unlink(p);
        }
        (void) rmdir(dir);
}

static void log_text(int level, const char *text) {
        log_message(level, text, strlen(text));
}

static void errors_text(const char *text) {
        log_errors_write(text, strlen(text));
}

static char *path_in_dir(const char *name) {
        char *p;

        ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
        return p;
}

static char *slurp(const char *path) {
        static char buf[8192];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        ck_assert_int_ge(fd, 0);
        n = read(fd, buf, sizeof(buf) - 1);
        ck_assert_int_ge(n, 0);
        buf[n] = 0;
        close(fd);
        return buf;
}

/* Skips "[2024-05-01 12:00:00 +0000] [1234] [ERROR] ". */
static const char *after_prefix(const char *line, const char *level) {
        char tag[32];
        const char *p;

        snprintf(tag, sizeof(tag), "] [%s] ", level);
        p = strstr(line, tag);
        ck_assert_ptr_nonnull(p);
        ck_assert(line[0] == '[');
        return p + strlen(tag);
}

START_TEST(test_record_in_a_file_is_one_entry) {
        char *path = path_in_dir("error.log");
        const char *text;

        ck_assert_int_eq(log_setup("info", path, NULL, "stderr", NULL), 0);
        log_text(LOG_ERR, "boom\nTraceback (most recent call last):\n  File \"x.py\", line 1\nValueError: x\n");
        text = slurp(path);
        ck_assert_str_eq(after_prefix(text, "ERROR"),
                         "boom\nTraceback (most recent call last):\n  File \"x.py\", line 1\nValueError: x\n");
        log_close();
        free(path);
}
END_TEST

START_TEST(test_block_has_the_traceback_as_it_is) {
        char *path = path_in_dir("error.log");

        ck_assert_int_eq(log_setup("info", path, NULL, "stderr", NULL), 0);
        log_block(LOG_WARNING, "Title:", "Traceback (most recent call last):\nE: e");
        ck_assert_str_eq(after_prefix(slurp(path), "WARNING"), "Title:\nTraceback (most recent call last):\nE: e\n");
        log_close();
        free(path);
}
END_TEST

START_TEST(test_errors_text_in_a_file_as_it_is) {
        char *path = path_in_dir("error.log");

        ck_assert_int_eq(log_setup("critical", path, NULL, "stderr", NULL), 0);
        errors_text("no newline yet");
        errors_text(", now\nsecond\n");
        /* Gunicorn's wsgi.errors knows no level: the log level does not hold it back. */
        ck_assert_str_eq(slurp(path), "no newline yet, now\nsecond\n");
        log_close();
        free(path);
}
END_TEST

/* A stream the journal reads: every line of an entry carries its priority. */
START_TEST(test_journal_stream_prefixes_every_line) {
        char *path = path_in_dir("stream"), env[64];
        const char *text, *second;
        struct stat st;
        int fd, saved;

        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fstat(fd, &st), 0);
        saved = dup(STDERR_FILENO);
        ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
        snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long) st.st_dev, (unsigned long long) st.st_ino);
        setenv("JOURNAL_STREAM", env, 1);

        ck_assert_int_eq(log_setup("info", "-", NULL, "stderr", NULL), 0);
        log_text(LOG_ERR, "one\ntwo\n");
        dup2(saved, STDERR_FILENO);
        unsetenv("JOURNAL_STREAM");

        text = slurp(path);
        ck_assert(strncmp(text, "<3>[", 4) == 0);
        second = strchr(text, '\n');
        ck_assert_ptr_nonnull(second);
        ck_assert_str_eq(second, "\n<3>two\n");
        ck_assert_uint_eq(n_sent, 0);
        close(fd);
        free(path);
}
END_TEST

START_TEST(test_journal_record_is_one_entry) {
        ck_assert_int_eq(log_setup("info", "-", NULL, "journal", NULL), 0);
        log_text(LOG_ERR, "boom\nTraceback (most recent call last):\nValueError: x\n");
        ck_assert_uint_eq(n_sent, 1);
        ck_assert_str_eq(sent[0].message, "boom\nTraceback (most recent call last):\nValueError: x");
        ck_assert_int_eq(sent[0].priority, LOG_ERR);
}
END_TEST

/* What is written together (logging's StreamHandler writes a record and its newline in one
 * write()) is one entry; a line written in pieces waits for its end. */
START_TEST(test_journal_errors_text) {
        ck_assert_int_eq(log_setup("info", "-", NULL, "journal", NULL), 0);
        errors_text("[x] ERROR in app: boom\nTraceback:\n  File\nE: e\n");
        ck_assert_uint_eq(n_sent, 1);
        ck_assert_str_eq(sent[0].message, "[x] ERROR in app: boom\nTraceback:\n  File\nE: e");
        ck_assert_int_eq(sent[0].priority, LOG_ERR);

        errors_text("printed");
        errors_text("\n");
        ck_assert_uint_eq(n_sent, 2);
        ck_assert_str_eq(sent[1].message, "printed");

        errors_text("tail");
        ck_assert_uint_eq(n_sent, 2);
        log_errors_flush();
        ck_assert_uint_eq(n_sent, 3);
        ck_assert_str_eq(sent[2].message, "tail");
        log_errors_flush();
        ck_assert_uint_eq(n_sent, 3);
}
END_TEST

/* faulthandler keeps the number it was given: after a reopen (USR1) that number must be the
 * new log, not free for the next accept(). */
START_TEST(test_dump_fd_follows_reopen) {
        char *old = path_in_dir("error.log"), *rotated = path_in_dir("error.log.1");
        int fd;

        ck_assert_int_eq(log_setup("info", old, NULL, "stderr", NULL), 0);
        fd = log_error_fd();
        ck_assert_int_gt(fd, STDERR_FILENO);
        ck_assert_int_eq(rename(old, rotated), 0);
        ck_assert_int_eq(log_setup(NULL, old, NULL, "stderr", NULL), 0);
        ck_assert_int_eq(log_error_fd(), fd);
        ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        ck_assert_int_eq(write(fd, "dump\n", 5), 5);
        ck_assert_str_eq(slurp(old), "dump\n");
        ck_assert_str_eq(slurp(rotated), "");
        log_close();
        free(old);
        free(rotated);
}
END_TEST

int main(void) {
        Suite *s = suite_create("log");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_record_in_a_file_is_one_entry);
        tcase_add_test(tc, test_block_has_the_traceback_as_it_is);
        tcase_add_test(tc, test_errors_text_in_a_file_as_it_is);
        tcase_add_test(tc, test_journal_stream_prefixes_every_line);
        tcase_add_test(tc, test_journal_record_is_one_entry);
        tcase_add_test(tc, test_journal_errors_text);
        tcase_add_test(tc, test_dump_fd_follows_reopen);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
