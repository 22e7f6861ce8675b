/* Error and access log sinks. One write(2) per entry so that lines from several workers
 * sharing a file or pipe never interleave mid-line. */
#define SD_JOURNAL_SUPPRESS_LOCATION 1

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "gcorn/log.h"
#include "gcorn/statsd.h"

#define LOG_LINE_MAX 8192

static int error_fd = STDERR_FILENO;
/* A second descriptor for the error log whose number never changes: faulthandler is given a
 * number once, so a reopen re-points this one (dup3()) instead of letting the number go to
 * the next accepted connection. -1 until log_error_fd() is first asked for. */
static int dump_fd = -1;
static int access_fd = -1;
static int max_level = LOG_INFO;
static bool journal;                    /* error log entries go to the journal natively */
static bool level_prefix;               /* text to a journal stream: "<N>" prefixes */
static bool access_to_journal;
static char instance[64] = "";
static unsigned generation;

static const struct {
        const char *name;
        int level;
} level_names[] = {
        { "debug", LOG_DEBUG },
        { "info", LOG_INFO },
        { "warning", LOG_WARNING },
        { "error", LOG_ERR },
        { "critical", LOG_CRIT },
};

int log_level_from_string(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (strcasecmp(s, level_names[i].name) == 0)
                        return level_names[i].level;
        return -EINVAL;
}

void log_set_level(int level) {
        max_level = level;
}

int log_get_level(void) {
        return max_level;
}

static LogForward forward;

void log_set_forward(LogForward f) {
        forward = f;
}

static const char *level_tag(int level) {
        switch (level) {
        case LOG_DEBUG:
                return "DEBUG";
        case LOG_INFO:
        case LOG_NOTICE:
                return "INFO";
        case LOG_WARNING:
                return "WARNING";
        case LOG_ERR:
                return "ERROR";
        default:
                return "CRITICAL";
        }
}

/* Opens path for appending, or returns the given standard fd for NULL/"-". The old fd is
 * replaced only once the new one is open, so a failed reopen (USR1) keeps logging. */
static int reopen(int *fd, const char *path, int std_fd) {
        int nfd;

        if (!path || strcmp(path, "-") == 0)
                nfd = std_fd;
        else {
                nfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644);
                if (nfd < 0)
                        return -errno;
        }
        if (*fd > STDERR_FILENO && *fd != nfd)
                safe_close(*fd);
        *fd = nfd;
        return 0;
}

static int open_error(const char *path) {
        int r = reopen(&error_fd, path, STDERR_FILENO);

        /* On failure the number still refers to the old log, which is safe to write. */
        if (r >= 0 && dump_fd >= 0)
                (void) dup3(error_fd, dump_fd, O_CLOEXEC);
        return r;
}

static int open_access(const char *path) {
        if (!path) {
                if (access_fd > STDERR_FILENO)
                        safe_close(access_fd);
                access_fd = -1;
                return 0;
        }
        return reopen(&access_fd, path, STDOUT_FILENO);
}

/* $JOURNAL_STREAM is "DEV:INODE" of the stream systemd connected; it may be stale after a
 * redirect, so it counts only when it matches what fd 2 really is. */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return st.st_dev == (dev_t) dev && st.st_ino == (ino_t) ino;
}

static void set_target(const char *target) {
        bool on_journal = error_fd == STDERR_FILENO && stderr_is_journal();

        journal = false;
        level_prefix = false;
        if (target && strcmp(target, "journal") == 0)
                journal = error_fd == STDERR_FILENO;
        else if (target && strcmp(target, "stderr") == 0)
                level_prefix = on_journal;
        else
                journal = on_journal;
        /* "-" for the access log means stdout, which systemd connects to the journal too. */
        access_to_journal = journal && access_fd == STDOUT_FILENO;
}

int log_setup(const char *loglevel, const char *errorlog, const char *accesslog, const char *target,
              const char **ret_failed) {
        int level = loglevel ? log_level_from_string(loglevel) : -1, r, k;

        log_errors_flush();
        if (level >= 0)
                log_set_level(level);
        r = open_error(errorlog);
        if (r < 0 && ret_failed)
                *ret_failed = errorlog;
        k = open_access(accesslog);
        if (k < 0 && r >= 0) {
                r = k;
                if (ret_failed)
                        *ret_failed = accesslog;
        }
        /* After the reopen: the target depends on which fds the logs now use. */
        set_target(target);
        return r;
}

void log_set_identity(const char *name, unsigned gen) {
        snprintf(instance, sizeof(instance), "%s", name ? name : "");
        generation = gen;
}

int log_error_fd(void) {
        if (dump_fd < 0)
                dump_fd = fcntl(error_fd, F_DUPFD_CLOEXEC, 3);
        return dump_fd >= 0 ? dump_fd : error_fd;
}

void log_close(void) {
        if (error_fd > STDERR_FILENO)
                safe_close(error_fd);
        if (access_fd > STDERR_FILENO)
                safe_close(access_fd);
        error_fd = STDERR_FILENO;
        access_fd = -1;
}

static void write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return;
                }
                p += k;
                n -= (size_t) k;
        }
}

/* One entry; MESSAGE may hold newlines (the native protocol frames it by length). */
static void journal_send(int level, const char *message, size_t len) {
        (void) sd_journal_send("MESSAGE=%.*s", (int) MIN(len, (size_t) INT_MAX), message, "PRIORITY=%i", level,
                               "SYSLOG_IDENTIFIER=gcorn", "GCORN_INSTANCE=%s", instance, "GCORN_GENERATION=%u",
                               generation, NULL);
}

/* "[2024-05-01 12:00:00 +0000] [1234] [INFO] " as Gunicorn's error log prints it; with a
 * "<N>" in front when the journal reads the stream, so it keeps the priority. */
static size_t format_prefix(char *buf, size_t cap, int level) {
        struct timespec ts;
        struct tm tm;
        size_t n = 0;

        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        if (level_prefix)
                n = (size_t) snprintf(buf, cap, "<%d>", level);
        n += strftime(buf + n, cap - n, "[%Y-%m-%d %H:%M:%S %z] ", &tm);
        n += (size_t) snprintf(buf + n, cap - n, "[%d] [%s] ", (int) getpid(), level_tag(level));
        return MIN(n, cap - 1);
}

static void write_message(int level, const char *text, size_t len);

int log_internalv(int level, int error, const char *fmt, va_list ap) {
        char buf[LOG_LINE_MAX];
        int saved = errno;
        size_t n;
        int k;

        statsd_log(level);
        if (error < 0)
                error = -error;
        if (level > max_level) {
                errno = saved;
                return -error;
        }

        if (forward) {
                errno = error;
                k = vsnprintf(buf, sizeof(buf), fmt, ap);
                n = k >= 0 ? MIN((size_t) k, sizeof(buf) - 1) : 0;
                if (k >= 0 && !forward(level, buf, n))
                        write_message(level, buf, n);
                errno = saved;
                return -error;
        }
        if (journal) {
                errno = error;
                k = vsnprintf(buf, sizeof(buf), fmt, ap);
                if (k >= 0)
                        journal_send(level, buf, MIN((size_t) k, sizeof(buf) - 1));
                errno = saved;
                return -error;
        }
        n = format_prefix(buf, sizeof(buf), level);
        /* %m must print the error we were given, not whatever errno holds now. */
        errno = error;
        k = vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
        if (k > 0)
                n = MIN(n + (size_t) k, sizeof(buf) - 2);
        buf[n++] = '\n';
        write_all(error_fd, buf, n);
        errno = saved;
        return -error;
}

int log_internal(int level, int error, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = log_internalv(level, error, fmt, ap);
        va_end(ap);
        return r;
}

/* Text to a journal stream becomes one entry per line: each line needs its "<N>". */
static size_t count_lines(const char *text, size_t len) {
        size_t n = 1;

        for (const char *p = text; (p = memchr(p, '\n', len - (size_t) (p - text))); p++)
                n++;
        return n;
}

void log_message(int level, const char *text, size_t len) {
        if (level > max_level)
                return;
        /* The entry ends with one newline, whether or not the text had it. */
        if (len > 0 && text[len - 1] == '\n')
                len--;
        if (forward && forward(level, text, len))
                return;
        write_message(level, text, len);
}

static void write_message(int level, const char *text, size_t len) {
        _cleanup_free_ char *buf = NULL;
        char prefix[128], tag[8] = "";
        size_t n, cap, tag_len = 0;

        if (journal) {
                journal_send(level, text, len);
                return;
        }
        n = format_prefix(prefix, sizeof(prefix), level);
        if (level_prefix)
                tag_len = (size_t) snprintf(tag, sizeof(tag), "<%d>", level);
        cap = n + len + 1 + (tag_len ? count_lines(text, len) * tag_len : 0);
        buf = malloc(cap);
        if (!buf) {
                log_internal(level, 0, "%.*s", (int) MIN(len, (size_t) INT_MAX), text);
                return;
        }
        memcpy(buf, prefix, n);
        /* The lines that follow the first are the text's own, as Gunicorn prints a record
         * with its traceback. */
        for (const char *p = text, *end = text + len; p <= end;) {
                const char *e = memchr(p, '\n', (size_t) (end - p));
                size_t l = e ? (size_t) (e - p) : (size_t) (end - p);

                if (p != text) {
                        memcpy(buf + n, tag, tag_len);
                        n += tag_len;
                }
                memcpy(buf + n, p, l);
                n += l;
                buf[n++] = '\n';
                if (!e)
                        break;
                p = e + 1;
        }
        write_all(error_fd, buf, n);
}

static void write_block(int level, const char *title, const char *text) {
        _cleanup_free_ char *buf = NULL;
        int k;

        if (level > max_level)
                return;
        k = asprintf(&buf, "%s\n%s", title, text ? text : "");
        if (k < 0) {
                log_message(level, title, strlen(title));
                return;
        }
        log_message(level, buf, (size_t) k);
}

void log_block(int level, const char *title, const char *text) {
        /* Tracebacks come here, not through log_internalv(). */
        statsd_log(level);
        write_block(level, title, text);
}

void log_exception(const char *title, const char *text) {
        /* Gunicorn's log.exception() counts under its own name, not as an error. */
        statsd_exception();
        write_block(LOG_ERR, title, text);
}

/* wsgi.errors text waiting for the end of its line, when each line goes to the journal as an
 * entry; written text never waits. */
static char *errors_buf;
static size_t errors_len, errors_cap;

#define ERRORS_PENDING_MAX (64 * 1024)

static void errors_send(const char *text, size_t len) {
        if (len > 0 && text[len - 1] == '\n')
                len--;
        journal_send(LOG_ERR, text, len);
}

void log_errors_flush(void) {
        if (errors_len == 0)
                return;
        if (journal)
                errors_send(errors_buf, errors_len);
        else
                write_all(error_fd, errors_buf, errors_len);
        errors_len = 0;
}

void log_errors_write(const char *text, size_t len) {
        const char *last;
        size_t done;

        if (!journal) {
                log_errors_flush();
                write_all(error_fd, text, len);
                return;
        }
        if (errors_len + len > errors_cap) {
                size_t cap = MAX(errors_len + len, (size_t) 256) * 2;
                char *b = realloc(errors_buf, cap);

                if (!b) {
                        /* Out of memory: what is here goes out as it is rather than not at all. */
                        log_errors_flush();
                        errors_send(text, len);
                        return;
                }
                errors_buf = b;
                errors_cap = cap;
        }
        memcpy(errors_buf + errors_len, text, len);
        errors_len += len;

        last = memrchr(errors_buf, '\n', errors_len);
        if (!last) {
                if (errors_len >= ERRORS_PENDING_MAX)
                        log_errors_flush();
                return;
        }
        /* Everything up to the last newline is one entry: a record written in one go
         * (logging's StreamHandler) stays together. */
        done = (size_t) (last - errors_buf) + 1;
        errors_send(errors_buf, done);
        memmove(errors_buf, errors_buf + done, errors_len - done);
        errors_len -= done;
}

bool log_access_enabled(void) {
        return access_fd >= 0;
}

static void log_access_line(const char *line, size_t len);

static void access_journal(const AccessEntry *e, const char *line, size_t len) {
        const Request *r = e->request;
        const HttpHeader *ua = r ? request_find_header(r, "User-Agent") : NULL;

        (void) sd_journal_send("MESSAGE=%.*s", (int) len, line, "PRIORITY=%i", LOG_INFO, "SYSLOG_IDENTIFIER=gcorn",
                               "REQUEST_METHOD=%.*s", r ? (int) r->method.len : 0, r ? r->method.p : "",
                               "REQUEST_URI=%.*s", r ? (int) r->target.len : 0, r ? r->target.p : "",
                               "HTTP_STATUS=%d", e->status, "RESPONSE_BYTES=%" PRIu64, e->body_bytes,
                               "DURATION_USEC=%" PRIu64, e->duration_usec, "REMOTE_ADDR=%s",
                               e->remote_addr && e->remote_addr[0] ? e->remote_addr : "-", "USER_AGENT=%.*s",
                               ua ? (int) ua->value.len : 1, ua ? ua->value.p : "-", "GCORN_INSTANCE=%s", instance,
                               "GCORN_GENERATION=%u", generation, NULL);
}

void log_access(const AccessEntry *e, const char *line, size_t len) {
        if (access_to_journal) {
                access_journal(e, line, len);
                return;
        }
        log_access_line(line, len);
}

static void log_access_line(const char *line, size_t len) {
        struct iovec iov[2] = { { (char *) line, len }, { (char *) "\n", 1 } };
        ssize_t k;

        if (access_fd < 0)
                return;
        /* One writev(): line and newline land together without copying the line. */
        do
                k = writev(access_fd, iov, 2);
        while (k < 0 && errno == EINTR);
        if (k < 0 || (size_t) k > len)
                return;
        write_all(access_fd, line + k, len - (size_t) k);
        write_all(access_fd, "\n", 1);
}
