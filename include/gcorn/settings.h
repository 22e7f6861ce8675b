/* The one table of settings behind the command line, the Python config file and --help.
 *
 * Names, flags and defaults are Gunicorn 23's. Every string and list is owned by the
 * Settings and freed by settings_done(). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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
        char *worker_class;             /* "sync", "gthread" or "gevent" */
        int timeout;                    /* 30 s; 0 = never; seconds settings are at most INT_MAX / 1000 */
        int graceful_timeout;           /* 30 s */
        int boot_timeout;               /* 120 s: app import, separate from --timeout (gcorn) */
        int keepalive;                  /* 2 s */
        int max_requests;               /* 0 = off */
        int max_requests_jitter;        /* 0 */
        int max_worker_memory;          /* MiB of a worker's own memory before it is replaced; 0 = off (gcorn) */
        int threads;                    /* 1; app threads per gthread worker */
        int worker_connections;         /* 1000: connections per gthread or gevent worker */
        char *asgi_loop;                /* accepted, no effect: the asgi worker settings */
        char *asgi_lifespan;
        int asgi_disconnect_grace_period;
        char *http_parser;
        int64_t websocket_max_message_size; /* 16 MiB: a larger message closes the WebSocket with 1009 (gcorn) */
        int websocket_ping_interval;    /* 20 s between the server's pings on a quiet WebSocket; 0 = none (gcorn) */
        int websocket_ping_timeout;     /* 20 s for the pong, else the WebSocket closes with 1011 (gcorn) */

        /* security limits */
        int limit_request_line;         /* 4094; 0 = unlimited (capped at 8190 as Gunicorn) */
        int limit_request_fields;       /* 100 (max 32768) */
        int limit_request_field_size;   /* 8190; 0 = unlimited */
        int64_t limit_request_body;     /* 0 = unlimited (gcorn) */
        int buffer_request_body;        /* bodies up to this are read before the app runs; 0 = off (gcorn) */
        int buffer_response;            /* response bytes the loop keeps per slow client (gcorn) */
        int64_t spool_request_body;     /* larger bodies up to this go to a temp file first; 0 = off (gcorn) */
        int64_t spool_worker_max;       /* bytes a worker spools at once (gcorn) */

        /* debugging */
        bool reload;                    /* restart workers when their code changes */
        char *reload_engine;            /* "auto", "inotify" or "poll" */
        char **reload_extra_files;      /* NULL-terminated; more files to watch */

        /* server mechanics */
        char *chdir;                    /* default: the working directory at start */
        char **pythonpath;              /* NULL-terminated; from a comma-separated value */
        char **raw_env;                 /* NULL-terminated "KEY=VALUE" entries (-e, repeatable) */
        bool preload_app;
        char *user;                     /* NULL: keep the master's; a name or a uid (workers only) */
        char *group;                    /* NULL: the user's primary group; a name or a gid */
        char *umask;                    /* "0": the mode mask around a UNIX socket's bind(), in decimal */
        bool initgroups;                /* the user's supplementary groups too */
        char **forwarded_allow_ips;     /* "*", addresses, networks: who may set the scheme;
                                         * default "127.0.0.1,::1" or $FORWARDED_ALLOW_IPS */
        char **secure_scheme_headers;   /* NAME, VALUE, NAME, VALUE, ..., NULL: upper-case names */
        char *proxy_protocol;           /* "off" (or NULL), "v1", "v2", "auto" */
        char **proxy_allow_ips;         /* who may send a PROXY header; "127.0.0.1,::1" */
        bool sendfile;                  /* true; --no-sendfile turns wsgi.file_wrapper's sendfile(2) off */
        bool reuse_port;                /* SO_REUSEPORT on the TCP sockets gcorn binds */
        bool daemon;                    /* -D: detach (refused under systemd) */
        char *pidfile;                  /* -p: the master's PID, written atomically, removed on exit */
        char *worker_tmp_dir;           /* accepted, no effect: the heartbeat is in shared memory */
        char *tmp_upload_dir;           /* accepted, no effect */
        char *paste;                    /* refused */
        char **raw_paste_global_conf;   /* accepted, no effect */
        char *protocol;                 /* "http"; "uwsgi" is refused */
        char *uwsgi_allow_ips;          /* accepted, no effect */
        bool permit_unconventional_http_version; /* accepted, no effect: 1.x is served as 1.1 */
        char *root_path;                /* accepted, no effect (ASGI) */

        /* debugging */
        bool spew;                      /* accepted, no effect */
        bool check_config;              /* load the config and import the app, then exit */
        bool print_config;              /* print every setting, import the app, then exit */
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
        bool capture_output;            /* stdout and stderr to the error log file */
        char *logconfig;                /* NULL, or a logging.config.fileConfig() file */
        char *logconfig_json;           /* NULL, or a dictConfig() in a JSON file */
        void *logconfig_dict;           /* NULL, or the config file's dict (PyObject *, owned) */
        bool enable_stdio_inheritance;  /* -R: with -D, stdout and stderr stay as they were */
        bool disable_redirect_access_to_syslog; /* syslog and statsd: accepted, no effect */
        char *logger_class;
        char *syslog_addr;
        bool syslog;
        char *syslog_prefix;
        char *syslog_facility;
        char *statsd_host;
        char *dogstatsd_tags;
        char *statsd_prefix;
        bool enable_backlog_metric;

        /* process naming */
        char *proc_name;                /* NULL: the app spec */
        char *default_proc_name;        /* accepted, no effect */

        /* SSL: certfile and keyfile are refused, the rest has no effect without them */
        char *keyfile;
        char *certfile;
        char *ssl_version;
        int cert_reqs;
        char *ca_certs;
        bool suppress_ragged_eofs;
        bool do_handshake_on_connect;
        char *ciphers;

        /* HTTP/2 (Gunicorn 25): accepted, no effect */
        char *http_protocols;
        int http2_max_concurrent_streams;
        int http2_initial_window_size;
        int http2_max_frame_size;
        int http2_max_header_list_size;

        /* dirty arbiters (Gunicorn 25): dirty_apps is refused, the rest has no effect */
        char **dirty_apps;
        int dirty_workers;
        int dirty_timeout;
        int dirty_threads;
        int dirty_graceful_timeout;

        /* control socket (Gunicorn 25.1): accepted, no effect */
        char *control_socket;
        int control_socket_mode;
        bool control_socket_disable;
        char *metrics_bind;             /* the metrics endpoint's address; NULL: none */

        /* config and app */
        char *config;                   /* -c FILE, or "./gunicorn.conf.py"-style default when present */
        char *wsgi_app;                 /* positional APP_MODULE, or wsgi_app in the config */

        /* Not settings: lines about the config file (names that are not settings) to log
         * once logging is set up. NULL-terminated, owned. */
        char **config_warnings;
} Settings;

/* Fills in the defaults (reads PORT and WEB_CONCURRENCY as Gunicorn does). Returns -errno. */
int settings_init(Settings *s);

/* The gevent worker (its app runs in greenlets; --threads means nothing to it, as in
 * Gunicorn). */
static inline bool settings_gevent(const Settings *s) {
        return s->worker_class && strcmp(s->worker_class, "gevent") == 0;
}

/* The asgi worker: -k asgi, or one of uvicorn's worker classes, kept as given for the log. */
static inline bool settings_asgi(const Settings *s) {
        return s->worker_class && (strcmp(s->worker_class, "asgi") == 0 || strncmp(s->worker_class, "uvicorn", 7) == 0);
}

/* The gthread worker: asked for by name, or by more than one thread with sync, as in
 * Gunicorn. */
static inline bool settings_threaded(const Settings *s) {
        return !settings_gevent(s) && !settings_asgi(s) && (s->threads > 1 || (s->worker_class && strcmp(s->worker_class, "gthread") == 0));
}
void settings_done(Settings *s);

/* Parses argv over s. Returns 1 to go on serving, 0 when --help/--version was printed
 * (exit 0), or a negative errno after printing one clear line to stderr. */
int settings_parse_argv(Settings *s, int argc, char **argv);

/* Parses the options in $GUNICORN_CMD_ARGS, then those in $GCORN_CMD_ARGS (so gcorn's own
 * variable wins), split as a POSIX shell does. They rank above the config file and below
 * the command line. Same returns as settings_parse_argv(). */
int settings_parse_env_args(Settings *s);

/* Splits a string into words as shlex.split() does (quotes, backslashes, no comments).
 * Returns 0 and a NULL-terminated list, or -EINVAL for an unclosed quote. */
int settings_shell_split(const char *line, char ***ret);

/* Sets one setting by its Gunicorn name from a string value, as the config file does.
 * Returns 0, -ENOENT for an unknown name, -EINVAL for a bad value (message in *ret_error,
 * owned by the caller). */
int settings_set(Settings *s, const char *name, const char *value, char **ret_error);

/* Replaces a list setting (bind, raw_env, pythonpath) with the NULL-terminated values, as a
 * list or tuple in the config file does; a value of NULL for settings_set() is the config
 * file's None, allowed for settings that may be unset (accesslog, proc_name, ...). Same
 * returns as settings_set(). */
int settings_set_list(Settings *s, const char *name, const char *const *values, char **ret_error);

/* Replaces a dict setting (secure_scheme_headers) with the NULL-terminated NAME, VALUE
 * pairs of a dict in the config file. Same returns as settings_set(). */
int settings_set_dict(Settings *s, const char *name, const char *const *pairs, char **ret_error);

/* Whether name is a setting (the config file ignores other module-level names). */
bool settings_has(const char *name);

/* The setting name closest to name, when it is at most 2 edits away (a likely typo), or
 * NULL. */
const char *settings_suggest(const char *name);

/* Checks cross-field rules after argv and the config file are both applied, and refuses a
 * setting gcorn cannot honour where running without it would be wrong (certfile, threads
 * above 1, ...). */
int settings_validate(const Settings *s, char **ret_error);

/* One line per setting the user changed from its default that has no effect in gcorn, with
 * the reason: "worker_tmp_dir has no effect in gcorn: ...". NULL-terminated, owned. */
int settings_no_effect_lines(const Settings *s, char ***ret);

void settings_print_help(FILE *f);

/* --print-config: "name = value" for every setting, sorted, names padded, as Gunicorn.
 * extra: NAME, VALUE, ..., NULL of the settings other modules keep (hooks), or NULL. */
void settings_print_config(const Settings *s, FILE *f, char *const *extra);

/* The settings table as Markdown (README) and the gcorn(1) man page (roff). */
void settings_print_markdown(FILE *f);
void settings_print_man(FILE *f);

/* Settings the table does not hold, because other modules keep them as Python objects (the
 * server hooks, logconfig_dict): their rows for the Markdown table, and a section of their own
 * for the man page. Registered once at start; NULL for none. */
void settings_set_doc_extras(void (*markdown_rows)(FILE *f), void (*man_section)(FILE *f));
/* What settings_foreach() hands over for one setting. */
typedef enum SettingValueKind {
        SETTING_VALUE_STRING,           /* const char * (NULL when unset) */
        SETTING_VALUE_INT,              /* int64_t */
        SETTING_VALUE_BOOL,             /* bool */
        SETTING_VALUE_LIST,             /* char *const * (NULL-terminated) */
} SettingValueKind;

/* Calls f for every setting by its Gunicorn name, with a pointer to its value (server hooks
 * show them as server.cfg). Stops at, and returns, f's first negative return. */
int settings_foreach(const Settings *s,
                     int (*f)(const char *name, SettingValueKind kind, const void *value, void *userdata),
                     void *userdata);
