/* The one table of settings. The command line, the config file (through settings_set()) and
 * --help all walk setting_table, so a setting exists in all three or in none. */
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gcorn/accesslog.h"
#include "gcorn/httpchar.h"
#include "gcorn/log.h"
#include "gcorn/macro.h"
#include "gcorn/settings.h"

#define PROGRAM_NAME "gcorn"
#define REASON_MAX 128

typedef enum SettingType {
        SETTING_STRING,
        SETTING_INT,
        SETTING_INT64,
        SETTING_BOOL,           /* a flag on the command line, True/False in the config file */
        SETTING_LIST,           /* repeatable flag: the first use in one parse replaces the list */
        SETTING_COMMA_LIST,     /* one value split on commas */
        SETTING_HELP,
        SETTING_VERSION,
} SettingType;

/* Checks (and may rewrite, e.g. lowercase) one string value. Returns 0 or -EINVAL with a
 * reason; *ret_value is set only when the value is rewritten. */
typedef int (*SettingCheck)(const char *value, char **ret_value, char *reason, size_t reason_size);

typedef struct SettingDef {
        const char *name;               /* Gunicorn's setting name; NULL for --help/--version */
        char short_flag;
        const char *long_flag;          /* NULL: the positional APP_MODULE */
        const char *alt_flag;           /* a second long spelling */
        SettingType type;
        size_t offset;
        const char *default_value;      /* in string form, applied through the same parser */
        int64_t min;
        int64_t max;
        bool clamp;                     /* larger values are lowered to max, as Gunicorn does */
        bool nullable;                  /* None in the config file resets it to NULL */
        SettingCheck check;
        const char *metavar;
        const char *section;            /* --help heading; NULL: the general options */
        const char *help;
} SettingDef;

static int check_worker_class(const char *value, char **ret_value, char *reason, size_t reason_size);
static int check_loglevel(const char *value, char **ret_value, char *reason, size_t reason_size);
static int check_env(const char *value, char **ret_value, char *reason, size_t reason_size);
static int check_log_target(const char *value, char **ret_value, char *reason, size_t reason_size);
static int check_not_empty(const char *value, char **ret_value, char *reason, size_t reason_size);
static int check_header_map(const char *value, char **ret_value, char *reason, size_t reason_size);
static int check_forwarder_header(const char *value, char **ret_value, char *reason, size_t reason_size);

#define FIELD(f) offsetof(Settings, f)

/* Durations in seconds become int milliseconds in the workers (epoll and poll timeouts). */
#define SECONDS_MAX (INT_MAX / 1000)

static const SettingDef setting_table[] = {
        { .name = "config", .short_flag = 'c', .long_flag = "--config", .type = SETTING_STRING,
          .offset = FIELD(config), .nullable = true, .check = check_not_empty, .metavar = "CONFIG",
          .section = "Config File",
          .help = "Python config file (default: ./gunicorn.conf.py when it exists)." },

        { .name = "bind", .short_flag = 'b', .long_flag = "--bind", .type = SETTING_LIST,
          .offset = FIELD(bind), .default_value = "127.0.0.1:8000", .check = check_not_empty,
          .metavar = "ADDRESS", .section = "Server Socket",
          .help = "The socket to bind: HOST, HOST:PORT, unix:PATH or fd://FD. Repeatable." },
        { .name = "backlog", .long_flag = "--backlog", .type = SETTING_INT, .offset = FIELD(backlog),
          .default_value = "2048", .min = 1, .max = INT_MAX, .metavar = "INT",
          .section = "Server Socket", .help = "The maximum number of pending connections." },

        { .name = "workers", .short_flag = 'w', .long_flag = "--workers", .type = SETTING_INT,
          .offset = FIELD(workers), .default_value = "1", .min = 1, .max = SETTINGS_WORKERS_MAX, .metavar = "INT",
          .section = "Worker Processes",
          .help = "The number of worker processes (default: $WEB_CONCURRENCY or 1)." },
        { .name = "worker_class", .short_flag = 'k', .long_flag = "--worker-class", .type = SETTING_STRING,
          .offset = FIELD(worker_class), .default_value = "sync", .check = check_worker_class,
          .metavar = "STRING", .section = "Worker Processes",
          .help = "The type of workers to use; 'sync' is the one supported." },
        { .name = "timeout", .short_flag = 't', .long_flag = "--timeout", .type = SETTING_INT,
          .offset = FIELD(timeout), .default_value = "30", .min = 0, .max = SECONDS_MAX, .metavar = "INT",
          .section = "Worker Processes",
          .help = "Workers silent for more than this many seconds are restarted (0: never)." },
        { .name = "boot_timeout", .long_flag = "--boot-timeout", .type = SETTING_INT,
          .offset = FIELD(boot_timeout), .default_value = "120", .min = 1, .max = SECONDS_MAX,
          .metavar = "INT", .section = "Worker Processes",
          .help = "Seconds a worker may take to import the app before it is killed (gcorn)." },
        { .name = "graceful_timeout", .long_flag = "--graceful-timeout", .type = SETTING_INT,
          .offset = FIELD(graceful_timeout), .default_value = "30", .min = 0, .max = SECONDS_MAX,
          .metavar = "INT", .section = "Worker Processes",
          .help = "Seconds workers get to finish their requests after a restart signal." },
        { .name = "keepalive", .long_flag = "--keep-alive", .type = SETTING_INT,
          .offset = FIELD(keepalive), .default_value = "2", .min = 0, .max = SECONDS_MAX, .metavar = "INT",
          .section = "Worker Processes",
          .help = "Seconds to wait for the next request on a keep-alive connection." },
        { .name = "max_requests", .long_flag = "--max-requests", .type = SETTING_INT,
          .offset = FIELD(max_requests), .default_value = "0", .min = 0, .max = INT_MAX, .metavar = "INT",
          .section = "Worker Processes",
          .help = "Restart a worker after this many requests (0: never)." },
        { .name = "max_requests_jitter", .long_flag = "--max-requests-jitter", .type = SETTING_INT,
          .offset = FIELD(max_requests_jitter), .default_value = "0", .min = 0, .max = INT_MAX,
          .metavar = "INT", .section = "Worker Processes",
          .help = "Add a random 0..INT to max_requests per worker, so they do not restart together." },

        { .name = "limit_request_line", .long_flag = "--limit-request-line", .type = SETTING_INT,
          .offset = FIELD(limit_request_line), .default_value = "4094", .min = 0, .max = 8190,
          .clamp = true, .metavar = "INT", .section = "Security",
          .help = "The maximum size of the request line in bytes (0: up to 8190)." },
        { .name = "limit_request_fields", .long_flag = "--limit-request-fields", .type = SETTING_INT,
          .offset = FIELD(limit_request_fields), .default_value = "100", .min = 0, .max = 32768,
          .clamp = true, .metavar = "INT", .section = "Security",
          .help = "The maximum number of header fields in a request (at most 32768)." },
        { .name = "limit_request_field_size", .long_flag = "--limit-request-field_size",
          .alt_flag = "--limit-request-field-size", .type = SETTING_INT,
          .offset = FIELD(limit_request_field_size), .default_value = "8190", .min = 0, .max = INT_MAX,
          .metavar = "INT", .section = "Security",
          .help = "The maximum size of one header field in bytes (0: unlimited)." },
        { .name = "limit_request_body", .long_flag = "--limit-request-body", .type = SETTING_INT64,
          .offset = FIELD(limit_request_body), .default_value = "0", .min = 0, .max = INT64_MAX,
          .metavar = "INT", .section = "Security",
          .help = "The maximum size of a request body in bytes (0: unlimited)." },

        { .name = "chdir", .long_flag = "--chdir", .type = SETTING_STRING, .offset = FIELD(chdir),
          .check = check_not_empty, .metavar = "DIR", .section = "Server Mechanics",
          .help = "Change to this directory before loading the application." },
        { .name = "pythonpath", .long_flag = "--pythonpath", .type = SETTING_COMMA_LIST,
          .offset = FIELD(pythonpath), .metavar = "STRING", .section = "Server Mechanics",
          .help = "Comma-separated directories to put first on sys.path." },
        { .name = "raw_env", .short_flag = 'e', .long_flag = "--env", .type = SETTING_LIST,
          .offset = FIELD(raw_env), .check = check_env, .metavar = "ENV", .section = "Server Mechanics",
          .help = "Set an environment variable in the workers: KEY=VALUE. Repeatable." },
        { .name = "preload_app", .long_flag = "--preload", .type = SETTING_BOOL,
          .offset = FIELD(preload_app), .default_value = "false", .section = "Server Mechanics",
          .help = "Load the application before forking the workers." },
        { .name = "strip_header_spaces", .long_flag = "--strip-header-spaces", .type = SETTING_BOOL,
          .offset = FIELD(strip_header_spaces), .default_value = "false", .section = "Server Mechanics",
          .help = "Accept blanks between a header name and its colon (unsafe behind some proxies)." },
        { .name = "permit_obsolete_folding", .long_flag = "--permit-obsolete-folding", .type = SETTING_BOOL,
          .offset = FIELD(permit_obsolete_folding), .default_value = "false", .section = "Server Mechanics",
          .help = "Accept obsolete folded header lines, joining them with a space." },
        { .name = "casefold_http_method", .long_flag = "--casefold-http-method", .type = SETTING_BOOL,
          .offset = FIELD(casefold_http_method), .default_value = "false", .section = "Server Mechanics",
          .help = "Upper-case the methods that --permit-unconventional-http-method lets through." },
        { .name = "permit_unconventional_http_method", .long_flag = "--permit-unconventional-http-method",
          .type = SETTING_BOOL, .offset = FIELD(permit_unconventional_http_method), .default_value = "false",
          .section = "Server Mechanics",
          .help = "Accept any token as a method: lower case, '#', fewer than 3 or more than 20 bytes." },
        { .name = "forwarder_headers", .long_flag = "--forwarder-headers", .type = SETTING_COMMA_LIST,
          .offset = FIELD(forwarder_headers), .default_value = "SCRIPT_NAME,PATH_INFO",
          .check = check_forwarder_header, .metavar = "STRING", .section = "Server Mechanics",
          .help = "Headers with '_' that trusted forwarders may send whatever --header-map says." },
        { .name = "header_map", .long_flag = "--header-map", .type = SETTING_STRING,
          .offset = FIELD(header_map), .default_value = "drop", .check = check_header_map,
          .metavar = "STRING", .section = "Server Mechanics",
          .help = "Header names with '_': drop (leave out), refuse (400) or dangerous (keep)." },

        { .name = "accesslog", .long_flag = "--access-logfile", .type = SETTING_STRING,
          .offset = FIELD(accesslog), .nullable = true, .check = check_not_empty, .metavar = "FILE",
          .section = "Logging", .help = "The access log file ('-': stdout; default: none)." },
        { .name = "errorlog", .long_flag = "--error-logfile", .alt_flag = "--log-file",
          .type = SETTING_STRING, .offset = FIELD(errorlog), .default_value = "-",
          .check = check_not_empty, .metavar = "FILE", .section = "Logging",
          .help = "The error log file ('-': stderr)." },
        { .name = "loglevel", .long_flag = "--log-level", .type = SETTING_STRING,
          .offset = FIELD(loglevel), .default_value = "info", .check = check_loglevel,
          .metavar = "LEVEL", .section = "Logging",
          .help = "The error log level: debug, info, warning, error or critical." },
        { .name = "log_target", .long_flag = "--log-target", .type = SETTING_STRING,
          .offset = FIELD(log_target), .default_value = "auto", .check = check_log_target,
          .metavar = "TARGET", .section = "Logging",
          .help = "auto (the journal when stderr is connected to it), journal or stderr (gcorn)." },
        { .name = "access_log_format", .long_flag = "--access-logformat", .type = SETTING_STRING,
          .offset = FIELD(access_log_format),
          .default_value = ACCESSLOG_DEFAULT_FORMAT,
          .metavar = "STRING", .section = "Logging", .help = "The access log format." },

        { .name = "proc_name", .short_flag = 'n', .long_flag = "--name", .type = SETTING_STRING,
          .offset = FIELD(proc_name), .nullable = true, .check = check_not_empty, .metavar = "STRING",
          .section = "Process Naming", .help = "The process name (default: the application module)." },

        { .name = "wsgi_app", .type = SETTING_STRING, .offset = FIELD(wsgi_app), .nullable = true,
          .check = check_not_empty, .metavar = "APP_MODULE",
          .help = "The WSGI application: MODULE, MODULE:NAME or MODULE:FACTORY(ARGS)." },

        { .short_flag = 'h', .long_flag = "--help", .type = SETTING_HELP,
          .help = "Show this help message and exit." },
        { .short_flag = 'v', .long_flag = "--version", .type = SETTING_VERSION, .help = "Show the version and exit." },
};

#define SETTINGS_COUNT ELEMENTSOF(setting_table)

static void *setting_field(Settings *s, const SettingDef *d) {
        return (char *) s + d->offset;
}

static bool is_settable(const SettingDef *d) {
        return d->name != NULL;
}

static const SettingDef *setting_find(const char *name) {
        for (size_t i = 0; i < SETTINGS_COUNT; i++)
                if (setting_table[i].name && strcmp(setting_table[i].name, name) == 0)
                        return &setting_table[i];
        return NULL;
}

static int check_worker_class(const char *value, char **ret_value, char *reason, size_t reason_size) {
        (void) ret_value;
        if (strcmp(value, "sync") == 0)
                return 0;
        snprintf(reason, reason_size, "not supported yet, only 'sync' is");
        return -EINVAL;
}

static int check_loglevel(const char *value, char **ret_value, char *reason, size_t reason_size) {
        char *lower;

        if (log_level_from_string(value) < 0) {
                snprintf(reason, reason_size, "choose from debug, info, warning, error, critical");
                return -EINVAL;
        }
        lower = strdup(value);
        if (!lower)
                return -ENOMEM;
        for (char *p = lower; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char) (*p - 'A' + 'a');
        *ret_value = lower;
        return 0;
}

static int check_log_target(const char *value, char **ret_value, char *reason, size_t reason_size) {
        (void) ret_value;
        if (strcmp(value, "auto") != 0 && strcmp(value, "journal") != 0 && strcmp(value, "stderr") != 0) {
                snprintf(reason, reason_size, "choose from auto, journal, stderr");
                return -EINVAL;
        }
        return 0;
}

/* Gunicorn lower-cases and strips the value before it compares. */
static int check_header_map(const char *value, char **ret_value, char *reason, size_t reason_size) {
        static const char *const maps[] = { "drop", "refuse", "dangerous" };
        const char *s = value, *e;

        while (*s == ' ' || *s == '\t' || *s == '\n')
                s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n'))
                e--;
        for (size_t i = 0; i < ELEMENTSOF(maps); i++)
                if ((size_t) (e - s) == strlen(maps[i]) && strncasecmp(s, maps[i], (size_t) (e - s)) == 0) {
                        *ret_value = strdup(maps[i]);
                        return *ret_value ? 0 : -ENOMEM;
                }
        snprintf(reason, reason_size, "choose from drop, refuse, dangerous");
        return -EINVAL;
}

/* Gunicorn strips each name and compares it with upper-cased header names: one with a
 * lower-case letter, a byte no header name has, or no '_' would never match, and would be
 * silently without effect. */
static int check_forwarder_header(const char *value, char **ret_value, char *reason, size_t reason_size) {
        const char *s = value, *e;
        bool ok = true;

        while (*s == ' ' || *s == '\t')
                s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
        if (!(e - s == 1 && *s == '*')) {
                ok = e > s && memchr(s, '_', (size_t) (e - s));
                for (const char *p = s; p < e; p++)
                        if ((*p >= 'a' && *p <= 'z') || !http_is_tchar((unsigned char) *p))
                                ok = false;
        }
        if (!ok) {
                snprintf(reason, reason_size, "expected upper-case header names with '_' such as SCRIPT_NAME, or *");
                return -EINVAL;
        }
        *ret_value = strndup(s, (size_t) (e - s));
        return *ret_value ? 0 : -ENOMEM;
}

static int check_env(const char *value, char **ret_value, char *reason, size_t reason_size) {
        const char *eq = strchr(value, '=');

        (void) ret_value;
        if (!eq || eq == value) {
                snprintf(reason, reason_size, "expected KEY=VALUE");
                return -EINVAL;
        }
        return 0;
}

static int check_not_empty(const char *value, char **ret_value, char *reason, size_t reason_size) {
        (void) ret_value;
        if (*value)
                return 0;
        snprintf(reason, reason_size, "must not be empty");
        return -EINVAL;
}

static size_t strv_length(char *const *v) {
        size_t n = 0;

        while (v && v[n])
                n++;
        return n;
}

/* Parses a whole base-10 integer; leading blanks are fine (as Python's int()), trailing junk
 * is not. */
static int parse_int64(const char *value, int64_t *ret) {
        char *end;
        long long v;

        errno = 0;
        v = strtoll(value, &end, 10);
        if (end == value)
                return -EINVAL;
        while (*end == ' ' || *end == '\t')
                end++;
        if (*end)
                return -EINVAL;
        if (errno == ERANGE)
                return -ERANGE;
        if (errno != 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_bool(const char *value, bool *ret) {
        static const char *const yes[] = { "true", "1", "yes", "on" };
        static const char *const no[] = { "false", "0", "no", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(value, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(value, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

/* Runs d->check and returns an owned copy of the (possibly rewritten) value. */
static int value_checked_dup(const SettingDef *d, const char *value, char **ret, char *reason,
                             size_t reason_size) {
        char *rewritten = NULL;
        int r;

        if (d->check) {
                r = d->check(value, &rewritten, reason, reason_size);
                if (r < 0)
                        return r;
        }
        if (!rewritten) {
                rewritten = strdup(value);
                if (!rewritten)
                        return -ENOMEM;
        }
        *ret = rewritten;
        return 0;
}

/* Appends owned copies of values (n of them) to *list, or replaces it. On -EINVAL,
 * *ret_bad points at the rejected value. */
static int list_add(const SettingDef *d, char ***list, const char *const *values, size_t n, bool append,
                    const char **ret_bad, char *reason, size_t reason_size) {
        _cleanup_strv_free_ char **l = NULL;
        size_t old = append ? strv_length(*list) : 0;
        int r;

        l = calloc(old + n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < old; i++) {
                l[i] = strdup((*list)[i]);
                if (!l[i])
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                r = value_checked_dup(d, values[i], &l[old + i], reason, reason_size);
                if (r == -EINVAL && ret_bad)
                        *ret_bad = values[i];
                if (r < 0)
                        return r;
        }
        strv_free(*list);
        *list = TAKE_PTR(l);
        return 0;
}

/* Splits a comma-separated value, skipping empty entries. */
static int comma_split(const char *value, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0, max = 1;
        const char *p = value;

        for (const char *c = value; *c; c++)
                if (*c == ',')
                        max++;
        l = calloc(max + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (;;) {
                size_t len = strcspn(p, ",");

                if (len > 0) {
                        l[n] = strndup(p, len);
                        if (!l[n])
                                return -ENOMEM;
                        n++;
                }
                if (!p[len])
                        break;
                p += len + 1;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* The reason for a number outside [min, max]: the whole range, so one try is enough. A max
 * that is only the type's limit is not worth stating. */
static int out_of_range(const SettingDef *d, char *reason, size_t reason_size) {
        if (d->max == INT_MAX || d->max == INT64_MAX)
                snprintf(reason, reason_size, "must be at least %lld", (long long) d->min);
        else
                snprintf(reason, reason_size, "must be from %lld to %lld", (long long) d->min, (long long) d->max);
        return -EINVAL;
}

/* Applies one string value to one setting. Returns 0, -ENOMEM, or -EINVAL with *reason set to
 * why, or left empty when the value is not of the setting's type at all. */
static int setting_apply(Settings *s, const SettingDef *d, const char *value, bool append, char *reason,
                         size_t reason_size) {
        void *field = setting_field(s, d);
        int64_t v;
        bool b;
        int r;

        reason[0] = '\0';
        switch (d->type) {
        case SETTING_STRING: {
                char *copy;

                r = value_checked_dup(d, value, &copy, reason, reason_size);
                if (r < 0)
                        return r;
                free(*(char **) field);
                *(char **) field = copy;
                return 0;
        }
        case SETTING_INT:
        case SETTING_INT64:
                r = parse_int64(value, &v);
                if (r == -ERANGE && !d->clamp)
                        return out_of_range(d, reason, reason_size);
                if (r == -ERANGE)
                        v = value[strspn(value, " \t")] == '-' ? INT64_MIN : INT64_MAX;
                else if (r < 0)
                        return r;
                if (v < d->min)
                        return out_of_range(d, reason, reason_size);
                if (v > d->max) {
                        if (!d->clamp)
                                return out_of_range(d, reason, reason_size);
                        v = d->max;
                }
                if (d->type == SETTING_INT)
                        *(int *) field = (int) v;
                else
                        *(int64_t *) field = v;
                return 0;
        case SETTING_BOOL:
                r = parse_bool(value, &b);
                if (r < 0)
                        return r;
                *(bool *) field = b;
                return 0;
        case SETTING_LIST:
                return list_add(d, (char ***) field, (const char *const[]) { value }, 1, append, NULL,
                                reason, reason_size);
        case SETTING_COMMA_LIST: {
                _cleanup_strv_free_ char **l = NULL;

                r = comma_split(value, &l);
                if (r < 0)
                        return r;
                return list_add(d, (char ***) field, (const char *const *) l, strv_length(l), false,
                                NULL, reason, reason_size);
        }
        default:
                return -EINVAL;
        }
}

static int setting_reset_null(Settings *s, const SettingDef *d) {
        void *field = setting_field(s, d);

        if (d->type != SETTING_STRING || !d->nullable)
                return -EINVAL;
        free(*(char **) field);
        *(char **) field = NULL;
        return 0;
}

static int empty_list(char ***list) {
        char **l = calloc(1, sizeof(char *));

        if (!l)
                return -ENOMEM;
        strv_free(*list);
        *list = l;
        return 0;
}

/* The working directory, spelled as $PWD when that names the same directory (keeps the
 * symlinked path the user sees), as Gunicorn's util.getcwd() does. */
static char *current_dir(void) {
        const char *pwd = getenv("PWD");
        char *cwd = getcwd(NULL, 0);
        struct stat a, b;

        if (cwd && pwd && pwd[0] == '/' && stat(pwd, &a) == 0 && stat(cwd, &b) == 0 &&
            a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
                char *p = strdup(pwd);

                if (p) {
                        free(cwd);
                        return p;
                }
        }
        return cwd;
}

int settings_init(Settings *s) {
        char reason[REASON_MAX];
        _cleanup_free_ char *cwd = NULL;
        const char *e;
        int r;

        *s = (Settings) {};

        for (size_t i = 0; i < SETTINGS_COUNT; i++) {
                const SettingDef *d = &setting_table[i];

                if (!is_settable(d))
                        continue;
                if (d->type == SETTING_LIST || d->type == SETTING_COMMA_LIST) {
                        /* Lists are never NULL, so users can walk them without a check. */
                        r = empty_list((char ***) setting_field(s, d));
                        if (r < 0)
                                goto fail;
                }
                if (!d->default_value)
                        continue;
                r = setting_apply(s, d, d->default_value, false, reason, sizeof(reason));
                if (r < 0)
                        goto fail;
        }

        e = getenv("PORT");
        if (e) {
                _cleanup_free_ char *addr = NULL;

                if (asprintf(&addr, "0.0.0.0:%s", e) < 0) {
                        r = -ENOMEM;
                        goto fail;
                }
                r = setting_apply(s, setting_find("bind"), addr, false, reason, sizeof(reason));
                if (r < 0)
                        goto fail;
        }

        e = getenv("WEB_CONCURRENCY");
        if (e) {
                r = setting_apply(s, setting_find("workers"), e, false, reason, sizeof(reason));
                if (r == -EINVAL) {
                        fprintf(stderr, PROGRAM_NAME ": error: invalid WEB_CONCURRENCY value: '%s'%s%s%s\n", e,
                                reason[0] ? " (" : "", reason, reason[0] ? ")" : "");
                        goto fail;
                }
                if (r < 0)
                        goto fail;
        }

        cwd = current_dir();
        if (!cwd) {
                r = -errno;
                goto fail;
        }
        s->chdir = strdup(cwd);
        if (!s->chdir) {
                r = -ENOMEM;
                goto fail;
        }

        {
                _cleanup_free_ char *conf = NULL;

                if (asprintf(&conf, "%s/gunicorn.conf.py", cwd) < 0) {
                        r = -ENOMEM;
                        goto fail;
                }
                if (access(conf, F_OK) == 0)
                        s->config = TAKE_PTR(conf);
        }
        return 0;

fail:
        settings_done(s);
        return r;
}

void settings_done(Settings *s) {
        for (size_t i = 0; i < SETTINGS_COUNT; i++) {
                const SettingDef *d = &setting_table[i];
                void *field;

                if (!is_settable(d))
                        continue;
                field = setting_field(s, d);
                switch (d->type) {
                case SETTING_STRING:
                        free(*(char **) field);
                        *(char **) field = NULL;
                        break;
                case SETTING_LIST:
                case SETTING_COMMA_LIST:
                        strv_freep((char ***) field);
                        break;
                default:
                        break;
                }
        }
}

static int invalid_value_error(const SettingDef *d, const char *value, const char *reason, char **ret_error) {
        int r;

        if (reason[0])
                r = asprintf(ret_error, "Invalid value for %s: '%s' (%s)", d->name, value, reason);
        else
                r = asprintf(ret_error, "Invalid value for %s: '%s'", d->name, value);
        if (r < 0) {
                *ret_error = NULL;
                return -ENOMEM;
        }
        return -EINVAL;
}

int settings_set(Settings *s, const char *name, const char *value, char **ret_error) {
        char reason[REASON_MAX];
        const SettingDef *d = setting_find(name);
        int r;

        if (!d)
                return -ENOENT;
        if (!value) {
                r = setting_reset_null(s, d);
                if (r < 0)
                        return invalid_value_error(d, "None", "", ret_error);
                return 0;
        }
        r = setting_apply(s, d, value, false, reason, sizeof(reason));
        if (r == -EINVAL)
                return invalid_value_error(d, value, reason, ret_error);
        return r;
}

int settings_set_list(Settings *s, const char *name, const char *const *values, char **ret_error) {
        char reason[REASON_MAX] = "";
        const SettingDef *d = setting_find(name);
        const char *bad = NULL;
        size_t n = 0;
        int r;

        if (!d)
                return -ENOENT;
        if (d->type != SETTING_LIST && d->type != SETTING_COMMA_LIST) {
                if (asprintf(ret_error, "Invalid value for %s: a list is not allowed", d->name) < 0) {
                        *ret_error = NULL;
                        return -ENOMEM;
                }
                return -EINVAL;
        }
        while (values[n])
                n++;
        r = list_add(d, (char ***) setting_field(s, d), values, n, false, &bad, reason, sizeof(reason));
        if (r == -EINVAL)
                return invalid_value_error(d, bad, reason, ret_error);
        return r;
}

/* "-w/--workers", as argparse names an option in its errors. */
static void format_flags(const SettingDef *d, char *buf, size_t size) {
        int n = 0;

        buf[0] = '\0';
        if (d->short_flag)
                n = snprintf(buf, size, "-%c", d->short_flag);
        if (d->long_flag && (size_t) n < size)
                n += snprintf(buf + n, size - n, "%s%s", n > 0 ? "/" : "", d->long_flag);
        if (d->alt_flag && (size_t) n < size)
                snprintf(buf + n, size - n, "/%s", d->alt_flag);
}

_printf_(1, 2)
static int argv_error(const char *fmt, ...) {
        va_list ap;

        fputs(PROGRAM_NAME ": error: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return -EINVAL;
}

static int argument_error(const SettingDef *d, const char *fmt, const char *value, const char *reason) {
        char flags[128];

        format_flags(d, flags, sizeof(flags));
        if (reason && reason[0])
                return argv_error("argument %s: %s: '%s' (%s)", flags, fmt, value, reason);
        return argv_error("argument %s: %s: '%s'", flags, fmt, value);
}

/* A negative number is a value, not an option, as argparse decides when no option looks
 * like one. */
static bool looks_like_negative_number(const char *arg) {
        if (arg[0] != '-' || !arg[1])
                return false;
        for (const char *p = arg + 1; *p; p++)
                if ((*p < '0' || *p > '9') && *p != '.')
                        return false;
        return true;
}

static bool looks_like_option(const char *arg) {
        return arg[0] == '-' && arg[1] && !looks_like_negative_number(arg);
}

/* Finds a long option by its exact spelling or, as argparse allows, an unambiguous prefix.
 * Returns 0 and *ret (NULL when unknown), or -EINVAL after printing the ambiguity. */
static int find_long(const char *opt, size_t len, const SettingDef **ret) {
        const SettingDef *match = NULL;
        char candidates[512] = "";
        size_t n = 0;

        for (size_t i = 0; i < SETTINGS_COUNT; i++) {
                const SettingDef *d = &setting_table[i];
                const char *spellings[] = { d->long_flag, d->alt_flag };

                for (size_t j = 0; j < ELEMENTSOF(spellings); j++)
                        if (spellings[j] && strlen(spellings[j]) == len && strncmp(spellings[j], opt, len) == 0) {
                                *ret = d;
                                return 0;
                        }
        }

        for (size_t i = 0; i < SETTINGS_COUNT; i++) {
                const SettingDef *d = &setting_table[i];
                const char *spellings[] = { d->long_flag, d->alt_flag };

                for (size_t j = 0; j < ELEMENTSOF(spellings); j++) {
                        size_t used = strlen(candidates);

                        if (!spellings[j] || strncmp(spellings[j], opt, len) != 0)
                                continue;
                        snprintf(candidates + used, sizeof(candidates) - used, "%s%s", used ? ", " : "",
                                 spellings[j]);
                        if (match != d)
                                n++;
                        match = d;
                }
        }
        if (n > 1)
                return argv_error("ambiguous option: %.*s could match %s", (int) len, opt, candidates);
        *ret = match;
        return 0;
}

static const SettingDef *find_short(char c) {
        for (size_t i = 0; i < SETTINGS_COUNT; i++)
                if (setting_table[i].short_flag == c)
                        return &setting_table[i];
        return NULL;
}

static int append_word(char **words, const char *w) {
        char *n;

        if (asprintf(&n, "%s%s%s", *words ? *words : "", *words ? " " : "", w) < 0)
                return -ENOMEM;
        free(*words);
        *words = n;
        return 0;
}

int settings_parse_argv(Settings *s, int argc, char **argv) {
        _cleanup_free_ char *unrecognized = NULL;
        bool seen[SETTINGS_COUNT] = {};
        bool only_positional = false, maybe_value = false;
        const char *app = NULL;
        char reason[REASON_MAX];
        int r;

        for (int i = 1; i < argc; i++) {
                const char *arg = argv[i], *value = NULL;
                const SettingDef *d = NULL;
                size_t idx;

                if (!only_positional && strcmp(arg, "--") == 0) {
                        only_positional = true;
                        maybe_value = false;
                        continue;
                }

                if (only_positional || !looks_like_option(arg)) {
                        /* The word after an unknown option may be its value ("--threads 4"):
                         * it is neither the app nor an extra argument to blame. */
                        if (maybe_value) {
                                maybe_value = false;
                                continue;
                        }
                        if (app) {
                                r = append_word(&unrecognized, arg);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        app = arg;
                        continue;
                }
                maybe_value = false;

                if (arg[1] == '-') {
                        const char *eq = strchr(arg, '=');

                        r = find_long(arg, eq ? (size_t) (eq - arg) : strlen(arg), &d);
                        if (r < 0)
                                return r;
                        if (eq)
                                value = eq + 1;
                } else {
                        d = find_short(arg[1]);
                        if (arg[2])
                                value = arg[2] == '=' ? arg + 3 : arg + 2;
                }
                if (!d) {
                        r = append_word(&unrecognized, arg);
                        if (r < 0)
                                return r;
                        maybe_value = !value;
                        continue;
                }

                if (d->type == SETTING_HELP || d->type == SETTING_VERSION || d->type == SETTING_BOOL) {
                        if (value)
                                return argument_error(d, "ignored explicit argument", value, NULL);
                        if (d->type == SETTING_HELP) {
                                settings_print_help(stdout);
                                return 0;
                        }
                        if (d->type == SETTING_VERSION) {
                                printf(PROGRAM_NAME " (version %s)\n", GCORN_VERSION);
                                return 0;
                        }
                        *(bool *) setting_field(s, d) = true;
                        continue;
                }

                if (!value) {
                        if (i + 1 >= argc || looks_like_option(argv[i + 1])) {
                                char flags[128];

                                format_flags(d, flags, sizeof(flags));
                                return argv_error("argument %s: expected one argument", flags);
                        }
                        value = argv[++i];
                }

                idx = (size_t) (d - setting_table);
                r = setting_apply(s, d, value, seen[idx], reason, sizeof(reason));
                if (r == -EINVAL) {
                        if (!reason[0] && (d->type == SETTING_INT || d->type == SETTING_INT64))
                                return argument_error(d, "invalid int value", value, NULL);
                        return argument_error(d, "invalid value", value, reason);
                }
                if (r < 0)
                        return r;
                seen[idx] = true;
        }

        /* Unknown options come first, ahead of the checks of the app they might have
         * displaced. */
        if (unrecognized)
                return argv_error("unrecognized arguments: %s", unrecognized);
        if (app) {
                r = setting_apply(s, setting_find("wsgi_app"), app, false, reason, sizeof(reason));
                if (r == -EINVAL)
                        return argv_error("argument APP_MODULE: invalid value: '%s' (%s)", app, reason);
                if (r < 0)
                        return r;
        }
        return 1;
}

int settings_validate(const Settings *s, char **ret_error) {
        const char *msg = NULL;

        if (!s->wsgi_app)
                msg = "No application module specified.";
        else if (!s->bind || !s->bind[0])
                msg = "No address to bind to.";
        if (!msg)
                return 0;
        *ret_error = strdup(msg);
        if (!*ret_error)
                return -ENOMEM;
        return -EINVAL;
}

static void print_option(FILE *f, const SettingDef *d) {
        char left[128];
        int n = 0;

        if (!d->long_flag)
                n = snprintf(left, sizeof(left), "%s", d->metavar);
        else {
                if (d->short_flag)
                        n = snprintf(left, sizeof(left), "-%c, ", d->short_flag);
                n += snprintf(left + n, sizeof(left) - n, "%s", d->long_flag);
                if (d->alt_flag)
                        n += snprintf(left + n, sizeof(left) - n, ", %s", d->alt_flag);
                if (d->metavar)
                        snprintf(left + n, sizeof(left) - n, " %s", d->metavar);
        }

        if (strlen(left) <= 22)
                fprintf(f, "  %-22s  %s\n", left, d->help);
        else
                fprintf(f, "  %s\n  %-22s  %s\n", left, "", d->help);
}

void settings_print_help(FILE *f) {
        const char *section = NULL;

        fputs("usage: " PROGRAM_NAME " [OPTIONS] [APP_MODULE]\n\npositional arguments:\n", f);
        for (size_t i = 0; i < SETTINGS_COUNT; i++)
                if (!setting_table[i].long_flag)
                        print_option(f, &setting_table[i]);

        fputs("\noptions:\n", f);
        for (size_t i = 0; i < SETTINGS_COUNT; i++)
                if (setting_table[i].long_flag && !setting_table[i].section)
                        print_option(f, &setting_table[i]);

        /* Each section's settings are contiguous in the table. */
        for (size_t i = 0; i < SETTINGS_COUNT; i++) {
                const SettingDef *d = &setting_table[i];

                if (!d->long_flag || !d->section)
                        continue;
                if (!section || strcmp(section, d->section) != 0) {
                        section = d->section;
                        fprintf(f, "\n%s:\n", section);
                }
                print_option(f, d);
        }
}

bool settings_has(const char *name) {
        return setting_find(name) != NULL;
}
