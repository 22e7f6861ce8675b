/* Error log and access log sinks.
 *
 * The error log goes to stderr ("-", the default) or a file, in Gunicorn's shape:
 *   [2024-05-01 12:00:00 +0000] [1234] [INFO] Listening at: http://127.0.0.1:8000 (1234)
 * The access log goes to stdout ("-"), a file, or nowhere (NULL, Gunicorn's default).
 * All functions are async-signal-unsafe but fork-safe: no locks, one write(2) per entry. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <syslog.h>

#include "gcorn/accesslog.h"
#include "gcorn/macro.h"

/* Levels are syslog's (LOG_DEBUG .. LOG_CRIT), so journal priorities map 1:1 later. */
int log_level_from_string(const char *s);      /* "debug", "info", "warning", "error", "critical"; -EINVAL otherwise */
void log_set_level(int level);
int log_get_level(void);

/* A second writer for error log entries (logconfig: Python's gunicorn.error logger). It
 * returns true when it took the entry; false sends it to the native writer. */
typedef bool (*LogForward)(int level, const char *text, size_t len);
void log_set_forward(LogForward f);

/* Opens (or reopens, for HUP and USR1) the error and access logs, NULL or "-" meaning
 * stderr/stdout, then picks how the error log is written: target "auto" uses the journal's
 * native protocol when $JOURNAL_STREAM names fd 2, "journal" forces it, "stderr" forces text
 * (with "<N>" level prefixes when stderr is the journal anyway). loglevel NULL keeps the
 * level. Returns -errno with *ret_failed the path that could not be opened; what did open is
 * in use either way. */
int log_setup(const char *loglevel, const char *errorlog, const char *accesslog, const char *target,
              const char **ret_failed);
void log_close(void);

/* An fd for writers outside this module that keep it (faulthandler dumps): its number
 * stays the same and refers to the current error log after every reopen. The log keeps it
 * open for the life of the process. */
int log_error_fd(void);

/* Writes one entry; returns -abs(error) (or -EINVAL-free 0 when error == 0) so callers can
 * `return log_error_errno(r, "...")`. "%m" in fmt expands to strerror(abs(error)). */
int log_internal(int level, int error, const char *fmt, ...) _printf_(3, 4);
int log_internalv(int level, int error, const char *fmt, va_list ap);

/* One entry whose text may span lines (a formatted log record and its traceback): to the
 * journal as one entry, to a file or stderr as the prefixed first line followed by the text's
 * other lines as they are, the way Gunicorn's error log prints a record. len bytes of text,
 * which holds no NUL; one trailing newline is dropped. */
void log_message(int level, const char *text, size_t len);

/* log_message() of title, a newline and text (a Python traceback). */
void log_block(int level, const char *title, const char *text);
/* log_block() at error level of what Gunicorn reports with log.exception(): a traceback of
 * the app or of the worker's own Python code. StatsD counts it as gunicorn.log.exception. */
void log_exception(const char *title, const char *text);

/* wsgi.errors: the app's text goes to the error log as it is, without prefix or level and
 * whatever the log level, as Gunicorn's wsgi.errors writes to its error log stream. For the
 * journal, text is held until a newline and all complete lines become one entry (error
 * priority); log_errors_flush() sends what is held. */
void log_errors_write(const char *text, size_t len);
void log_errors_flush(void);

/* Fields every journal entry carries: GCORN_INSTANCE and GCORN_GENERATION. */
void log_set_identity(const char *instance, unsigned generation);

/* One access-log entry: the rendered line (no trailing newline) to a file or stdout, or to
 * the journal with the entry's structured fields. */
void log_access(const AccessEntry *e, const char *line, size_t len);
bool log_access_enabled(void);

#define log_debug(...) log_internal(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_internal(LOG_ERR, 0, __VA_ARGS__)
#define log_crit(...) log_internal(LOG_CRIT, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_internal(LOG_DEBUG, (e), __VA_ARGS__)
#define log_info_errno(e, ...) log_internal(LOG_INFO, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_internal(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_internal(LOG_ERR, (e), __VA_ARGS__)

/* For made-up errors: log_error_errno(SYNTHETIC_ERRNO(EINVAL), ...) */
#define SYNTHETIC_ERRNO(e) (-(e))
