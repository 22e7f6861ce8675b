/* The one table of settings behind the command line, the Python config file and --help.
 *
 * Names, flags and defaults are Gunicorn 23's. Every string and list is owned by the
 * Settings and freed by settings_done(). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gcorn/heartbeat.h"

/* A reload runs the old and the new generation side by side, each in its own scoreboard
 * slot: at most half the slots can be one generation's workers (also the TTIN ceiling). */
#define SETTINGS_WORKERS_MAX (HEARTBEAT_SLOTS_MAX / 2)

typedef struct Settings {
        /* server socket */
        char **bind;                    /* NULL-terminated; default {"127.0.0.1:8000"} (or 0.0.0.0:$PORT) */
        int backlog;                    /* 2048 */

        /* worker processes */
        int workers;                    /* 1, or $WEB_CONCURRENCY; at most SETTINGS_WORKERS_MAX */
        char *worker_class;             /* "sync" */
        int timeout;                    /* 30 s; 0 = never; seconds settings are at most INT_MAX / 1000 */
        int graceful_timeout;           /* 30 s */
        int boot_timeout;               /* 120 s: app import, separate from --timeout (gcorn) */
        int keepalive;                  /* 2 s */
        int max_requests;               /* 0 = off */
        int max_requests_jitter;        /* 0 */

        /* security limits */
        int limit_request_line;         /* 4094; 0 = unlimited (capped at 8190 as Gunicorn) */
        int limit_request_fields;       /* 100 (max 32768) */
        int limit_request_field_size;   /* 8190; 0 = unlimited */
        int64_t limit_request_body;     /* 0 = unlimited (gcorn) */

        /* server mechanics */
        char *chdir;                    /* default: the working directory at start */
        char **pythonpath;              /* NULL-terminated; from a comma-separated value */
        char **raw_env;                 /* NULL-terminated "KEY=VALUE" entries (-e, repeatable) */
        bool preload_app;
        bool strip_header_spaces;       /* false: "Name :" is a 400 */
        bool permit_obsolete_folding;   /* false: continuation lines are a 400 */
        bool casefold_http_method;      /* false */
        bool permit_unconventional_http_method; /* false */
        char *header_map;               /* "drop", "refuse" or "dangerous" */
        char **forwarder_headers;       /* NULL-terminated; default {"SCRIPT_NAME", "PATH_INFO"} */

        /* logging */
        char *accesslog;                /* NULL = off; "-" = stdout */
        char *errorlog;                 /* "-" = stderr */
        char *loglevel;                 /* "info" */
        char *log_target;               /* "auto", "journal" or "stderr" (gcorn) */
        char *access_log_format;        /* Gunicorn's default format */

        /* process naming */
        char *proc_name;                /* NULL: the app spec */

        /* config and app */
        char *config;                   /* -c FILE, or "./gunicorn.conf.py"-style default when present */
        char *wsgi_app;                 /* positional APP_MODULE, or wsgi_app in the config */
} Settings;

/* Fills in the defaults (reads PORT and WEB_CONCURRENCY as Gunicorn does). Returns -errno. */
int settings_init(Settings *s);
void settings_done(Settings *s);

/* Parses argv over s. Returns 1 to go on serving, 0 when --help/--version was printed
 * (exit 0), or a negative errno after printing one clear line to stderr. */
int settings_parse_argv(Settings *s, int argc, char **argv);

/* Sets one setting by its Gunicorn name from a string value, as the config file does.
 * Returns 0, -ENOENT for an unknown name, -EINVAL for a bad value (message in *ret_error,
 * owned by the caller). */
int settings_set(Settings *s, const char *name, const char *value, char **ret_error);

/* Replaces a list setting (bind, raw_env, pythonpath) with the NULL-terminated values, as a
 * list or tuple in the config file does; a value of NULL for settings_set() is the config
 * file's None, allowed for settings that may be unset (accesslog, proc_name, ...). Same
 * returns as settings_set(). */
int settings_set_list(Settings *s, const char *name, const char *const *values, char **ret_error);

/* Whether name is a setting (the config file ignores other module-level names). */
bool settings_has(const char *name);

/* Checks cross-field rules after argv and the config file are both applied. */
int settings_validate(const Settings *s, char **ret_error);

void settings_print_help(FILE *f);
