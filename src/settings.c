/* The one table of settings. The command line, the config file (through settings_set()) and
 * --help all walk setting_table, so a setting exists in all three or in none. */
#include <ctype.h>
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
#include "gcorn/metrics.h"
#include "gcorn/statsd.h"
#include "gcorn/allowlist.h"
#include "gcorn/httpchar.h"
#include "gcorn/log.h"
#include "gcorn/logconfig.h"
#include "gcorn/macro.h"
#include "gcorn/privileges.h"
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
        SETTING_DICT,           /* a dict in the config file: NAME, VALUE pairs; no flag */
        SETTING_HELP,
        SETTING_VERSION,
        SETTING_MARKDOWN,       /* hidden: the README's settings table */
        SETTING_MAN,            /* hidden: the gcorn(1) man page */
} SettingType;

/* What gcorn does with a setting. A setting that is not implemented is still parsed and
 * checked like the others, so a Gunicorn config keeps loading; what happens when it differs
 * from its default is the table's to say, with the reason. */
typedef enum SettingStatus {
        SETTING_IMPLEMENTED,
        SETTING_NO_EFFECT,      /* accepted; one warning line at start */
        SETTING_REFUSED,        /* an error: running without it would be wrong */
} SettingStatus;

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
        bool auto_int;                  /* an INT read as Gunicorn's auto_int: int(x, 0), 0NNN octal */
        bool nullable;                  /* None in the config file resets it to NULL */
        SettingCheck check;
        const char *bare_value;         /* the value of the flag given alone (argparse's nargs="?") */
        const char *metavar;
        const char *section;            /* --help heading; NULL: the general options */
        const char *help;
        bool negate;                    /* a BOOL whose flag turns it off (--no-sendfile) */
        bool positional;                /* APP_MODULE; other rows without a flag are config-only */
        bool hidden;                    /* not in --help, the man page or the README */
        SettingStatus status;
        const char *reason;             /* why a setting has no effect or is refused */
        bool gcorn_only;                /* not a Gunicorn setting */
} SettingDef;

static int check_worker_class(const char *value, char **ret_value, char *reason, size_t reason_size);
static int check_loglevel(const char *value, char **ret_value, char *reason, size_t reason_size);
static int check_env(const char *value, char **ret_value, char *reason, size_t reason_size);
static int check_log_target(const char *value, char **ret_value, char *reason, size_t reason_size);
static int check_not_empty(const char *value, char **ret_value, char *reason, size_t reason_size);
static int check_reload_engine(const char *value, char **ret_value, char *reason, size_t reason_size);
static int check_file_exists(const char *value, char **ret_value, char *reason, size_t reason_size);
static int check_allow_entry(const char *value, char **ret_value, char *reason, size_t reason_size);
static int check_proxy_protocol(const char *value, char **ret_value, char *reason, size_t reason_size);
static int check_scheme_header_name(const char *value, char **ret_value, char *reason, size_t reason_size);
static int check_protocol(const char *value, char **ret_value, char *reason, size_t reason_size);
static int check_asgi_loop(const char *value, char **ret_value, char *reason, size_t reason_size);
static int check_asgi_lifespan(const char *value, char **ret_value, char *reason, size_t reason_size);

#define NO_EFFECT(why) .status = SETTING_NO_EFFECT, .reason = (why)
#define REFUSED(why) .status = SETTING_REFUSED, .reason = (why)

#define WHY_ASGI "only the asgi worker uses it (-k asgi)"
#define WHY_SYSLOG "gcorn does not send logs to syslog; --log-target journal sends them to the journal"
#define WHY_TLS "TLS is not available (see certfile)"
#define WHY_HTTP2 "HTTP/2 is not available (Gunicorn needs TLS for it); connections speak HTTP/1.1"
#define WHY_DIRTY "dirty arbiters are not available (see dirty_apps)"
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
          .help = "The socket to bind: HOST, HOST:PORT, unix:PATH or fd://FD. Repeatable "
                  "(default: 0.0.0.0:$PORT when PORT is set)." },
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
          .help = "The type of workers to use: 'sync', 'gthread', 'gevent' or 'asgi'." },
        { .name = "threads", .long_flag = "--threads", .type = SETTING_INT, .offset = FIELD(threads),
          .default_value = "1", .min = 1, .max = INT_MAX, .metavar = "INT", .section = "Worker Processes",
          .help = "The number of threads per worker; more than 1 with 'sync' means 'gthread'." },
        { .name = "worker_connections", .long_flag = "--worker-connections", .type = SETTING_INT,
          .offset = FIELD(worker_connections), .default_value = "1000", .min = 0, .max = INT_MAX,
          .metavar = "INT", .section = "Worker Processes",
          .help = "The maximum number of simultaneous clients per worker (gthread, gevent and asgi workers)." },
        { .name = "timeout", .short_flag = 't', .long_flag = "--timeout", .type = SETTING_INT,
          .offset = FIELD(timeout), .default_value = "30", .min = 0, .max = SECONDS_MAX, .metavar = "INT",
          .section = "Worker Processes",
          .help = "Workers silent for more than this many seconds are restarted (0: never)." },
        { .name = "boot_timeout", .long_flag = "--boot-timeout", .type = SETTING_INT,
          .offset = FIELD(boot_timeout), .default_value = "120", .min = 1, .max = SECONDS_MAX,
          .metavar = "INT", .section = "Worker Processes",
          .help = "Seconds a worker may take to import the app before it is killed (gcorn).", .gcorn_only = true },
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
        { .name = "max_worker_memory", .long_flag = "--max-worker-memory", .type = SETTING_INT,
          .offset = FIELD(max_worker_memory), .default_value = "0", .min = 0, .max = INT_MAX, .metavar = "MIB",
          .section = "Worker Processes",
          .help = "Replace a worker whose own memory (USS) passes this many MiB, after its requests (0: never).",
          .gcorn_only = true },
        { .name = "asgi_loop", .long_flag = "--asgi-loop", .type = SETTING_STRING, .offset = FIELD(asgi_loop),
          .default_value = "auto", .check = check_asgi_loop, .metavar = "STRING", .section = "Worker Processes",
          .help = "The event loop of ASGI workers: auto (uvloop when importable), asyncio or uvloop." },
        { .name = "asgi_lifespan", .long_flag = "--asgi-lifespan", .type = SETTING_STRING,
          .offset = FIELD(asgi_lifespan), .default_value = "auto", .check = check_asgi_lifespan,
          .metavar = "STRING", .section = "Worker Processes",
          .help = "ASGI lifespan events: auto (when the app supports them), on or off." },
        { .name = "asgi_disconnect_grace_period", .long_flag = "--asgi-disconnect-grace-period",
          .type = SETTING_INT, .offset = FIELD(asgi_disconnect_grace_period), .default_value = "3", .min = 0,
          .max = INT_MAX, .metavar = "INT", .section = "Worker Processes",
          .help = "Seconds an ASGI app gets after a client disconnects before its request is cancelled." },
        { .name = "http_parser", .long_flag = "--http-parser", .type = SETTING_STRING,
          .offset = FIELD(http_parser), .default_value = "auto", .metavar = "STRING",
          .section = "Worker Processes", .help = "The HTTP parser of ASGI workers.",
          NO_EFFECT("only the asgi worker uses it; gcorn always parses HTTP in C") },
        { .name = "websocket_max_message_size", .long_flag = "--websocket-max-message-size",
          .type = SETTING_INT64, .offset = FIELD(websocket_max_message_size), .default_value = "16777216",
          .min = 1, .max = INT64_MAX, .metavar = "BYTES", .section = "Worker Processes",
          .help = "The largest WebSocket message an ASGI app receives; a larger one closes with 1009.",
          .gcorn_only = true },
        { .name = "websocket_ping_interval", .long_flag = "--websocket-ping-interval", .type = SETTING_INT,
          .offset = FIELD(websocket_ping_interval), .default_value = "20", .min = 0, .max = INT_MAX / 1000,
          .metavar = "INT", .section = "Worker Processes",
          .help = "Seconds between the server's pings on an open WebSocket, as uvicorn's (0: none).",
          .gcorn_only = true },
        { .name = "websocket_ping_timeout", .long_flag = "--websocket-ping-timeout", .type = SETTING_INT,
          .offset = FIELD(websocket_ping_timeout), .default_value = "20", .min = 1, .max = INT_MAX / 1000,
          .metavar = "INT", .section = "Worker Processes",
          .help = "Seconds a ping waits for its pong before the WebSocket closes with 1011.",
          .gcorn_only = true },

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
          .help = "The maximum size of a request body in bytes (0: unlimited).", .gcorn_only = true },
        { .name = "buffer_request_body", .long_flag = "--buffer-request-body", .type = SETTING_INT,
          .offset = FIELD(buffer_request_body), .default_value = "1048576", .min = 0, .max = INT_MAX,
          .metavar = "BYTES", .section = "Security",
          .help = "Request bodies up to this size are received before the app is called, so a slow "
                  "uploader holds no worker (0: the app reads every body from the socket).",
          .gcorn_only = true },
        { .name = "buffer_response", .long_flag = "--buffer-response", .type = SETTING_INT,
          .offset = FIELD(buffer_response), .default_value = "1048576", .min = 4096, .max = INT_MAX,
          .metavar = "BYTES", .section = "Security",
          .help = "Response bytes a slow client cannot take yet are kept for it up to this size per "
                  "connection; past it the response iterable is read only as the client drains it.",
          .gcorn_only = true },
        { .name = "spool_request_body", .long_flag = "--spool-request-body", .type = SETTING_INT64,
          .offset = FIELD(spool_request_body), .default_value = "0", .min = 0, .max = INT64_MAX,
          .metavar = "BYTES", .section = "Security",
          .help = "Request bodies larger than --buffer-request-body and up to this size are received into "
                  "an unlinked temporary file before the app is called; larger ones get 413 (0: off).",
          .gcorn_only = true },
        { .name = "spool_worker_max", .long_flag = "--spool-worker-max", .type = SETTING_INT64,
          .offset = FIELD(spool_worker_max), .default_value = "268435456", .min = 0, .max = INT64_MAX,
          .metavar = "BYTES", .section = "Security",
          .help = "The most request body bytes a worker holds in temporary files at once; a body that "
                  "would pass it streams to the app.",
          .gcorn_only = true },

        { .name = "spew", .long_flag = "--spew", .type = SETTING_BOOL, .offset = FIELD(spew),
          .default_value = "false", .section = "Debugging",
          .help = "Trace every Python line the server executes.",
          NO_EFFECT("it traces the server's Python lines, and gcorn's server is written in C") },
        { .name = "check_config", .long_flag = "--check-config", .type = SETTING_BOOL,
          .offset = FIELD(check_config), .default_value = "false", .section = "Debugging",
          .help = "Check the configuration and that the app imports, then exit (0 when fine, 1 otherwise)." },
        { .name = "print_config", .long_flag = "--print-config", .type = SETTING_BOOL,
          .offset = FIELD(print_config), .default_value = "false", .section = "Debugging",
          .help = "Print every setting and its value, check that the app imports, then exit." },

        { .name = "reload", .long_flag = "--reload", .type = SETTING_BOOL, .offset = FIELD(reload),
          .default_value = "false", .section = "Debugging",
          .help = "Restart workers when a module they imported or a --reload-extra-file changes." },
        { .name = "reload_engine", .long_flag = "--reload-engine", .type = SETTING_STRING,
          .offset = FIELD(reload_engine), .default_value = "auto", .check = check_reload_engine,
          .metavar = "STRING", .section = "Debugging",
          .help = "How --reload notices changes: auto or inotify (inotify), or poll (stat() once a second)." },
        { .name = "reload_extra_files", .long_flag = "--reload-extra-file", .type = SETTING_LIST,
          .offset = FIELD(reload_extra_files), .check = check_file_exists, .metavar = "FILES",
          .section = "Debugging", .help = "Another file --reload watches. Repeatable." },

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
        { .name = "user", .short_flag = 'u', .long_flag = "--user", .type = SETTING_STRING,
          .offset = FIELD(user), .nullable = true, .check = privileges_check_user, .metavar = "USER",
          .section = "Server Mechanics",
          .help = "Run the workers as this user (a name or a uid); the master keeps its own." },
        { .name = "group", .short_flag = 'g', .long_flag = "--group", .type = SETTING_STRING,
          .offset = FIELD(group), .nullable = true, .check = privileges_check_group, .metavar = "GROUP",
          .section = "Server Mechanics",
          .help = "Run the workers as this group (a name or a gid; default: the user's group)." },
        { .name = "umask", .short_flag = 'm', .long_flag = "--umask", .type = SETTING_STRING,
          .offset = FIELD(umask), .default_value = "0", .check = privileges_check_umask, .metavar = "INT",
          .section = "Server Mechanics",
          .help = "The file mode mask for UNIX sockets gcorn creates (0, 0o22, 022 or 18)." },
        { .name = "initgroups", .long_flag = "--initgroups", .type = SETTING_BOOL, .offset = FIELD(initgroups),
          .default_value = "false", .section = "Server Mechanics",
          .help = "Give the workers all the groups of --user as well." },
        { .name = "proxy_protocol", .long_flag = "--proxy-protocol", .type = SETTING_STRING,
          .offset = FIELD(proxy_protocol), .default_value = "off", .nullable = true,
          .check = check_proxy_protocol, .bare_value = "auto", .metavar = "MODE",
          .section = "Server Mechanics",
          .help = "Accept a PROXY protocol header first: off, v1, v2 or auto (the flag alone)." },
        { .name = "proxy_allow_ips", .long_flag = "--proxy-allow-from", .type = SETTING_COMMA_LIST,
          .offset = FIELD(proxy_allow_ips), .default_value = "127.0.0.1,::1", .check = check_allow_entry,
          .metavar = "PROXY_ALLOW_IPS", .section = "Server Mechanics",
          .help = "Comma-separated addresses or networks allowed to send a PROXY header ('*': any)." },
        { .name = "secure_scheme_headers", .type = SETTING_DICT, .offset = FIELD(secure_scheme_headers),
          .default_value = "X-FORWARDED-PROTOCOL,ssl,X-FORWARDED-PROTO,https,X-FORWARDED-SSL,on",
          .check = check_scheme_header_name, .section = "Server Mechanics",
          .help = "Headers and values by which a trusted front end marks HTTPS requests (config file)." },
        { .name = "forwarded_allow_ips", .long_flag = "--forwarded-allow-ips", .type = SETTING_COMMA_LIST,
          .offset = FIELD(forwarded_allow_ips), .default_value = "127.0.0.1,::1", .check = check_allow_entry,
          .metavar = "STRING", .section = "Server Mechanics",
          .help = "Comma-separated addresses or networks trusted to set the scheme ('*': any)." },
        { .name = "sendfile", .long_flag = "--no-sendfile", .type = SETTING_BOOL, .negate = true,
          .offset = FIELD(sendfile), .default_value = "true", .section = "Server Mechanics",
          .help = "Do not send wsgi.file_wrapper files with sendfile(2)." },
        { .name = "reuse_port", .long_flag = "--reuse-port", .type = SETTING_BOOL, .offset = FIELD(reuse_port),
          .default_value = "false", .section = "Server Mechanics",
          .help = "Set SO_REUSEPORT on the listening sockets gcorn binds." },
        { .name = "daemon", .short_flag = 'D', .long_flag = "--daemon", .type = SETTING_BOOL,
          .offset = FIELD(daemon), .default_value = "false", .section = "Server Mechanics",
          .help = "Detach from the terminal and run in the background (not under systemd)." },
        { .name = "pidfile", .short_flag = 'p', .long_flag = "--pid", .type = SETTING_STRING,
          .offset = FIELD(pidfile), .nullable = true, .check = check_not_empty, .metavar = "FILE",
          .section = "Server Mechanics", .help = "Write the master's PID to this file; it is removed on exit." },
        { .name = "worker_tmp_dir", .long_flag = "--worker-tmp-dir", .type = SETTING_STRING,
          .offset = FIELD(worker_tmp_dir), .nullable = true, .metavar = "DIR", .section = "Server Mechanics",
          .help = "The directory of the workers' heartbeat files.",
          NO_EFFECT("the worker heartbeat is in shared memory, not in files") },
        { .name = "tmp_upload_dir", .type = SETTING_STRING, .offset = FIELD(tmp_upload_dir), .nullable = true,
          .metavar = "DIR", .section = "Server Mechanics",
          .help = "A directory for temporary request data.",
          NO_EFFECT("request bodies are never spooled to disk (Gunicorn does not use it either)") },
        { .name = "paste", .long_flag = "--paste", .alt_flag = "--paster", .type = SETTING_STRING,
          .offset = FIELD(paste), .nullable = true, .metavar = "STRING", .section = "Server Mechanics",
          .help = "Load a PasteDeploy config file.",
          REFUSED("PasteDeploy apps are not available; name the WSGI app as MODULE:NAME") },
        { .name = "raw_paste_global_conf", .long_flag = "--paste-global", .type = SETTING_LIST,
          .offset = FIELD(raw_paste_global_conf), .metavar = "CONF", .section = "Server Mechanics",
          .help = "Set a PasteDeploy global config variable: KEY=VALUE. Repeatable.",
          NO_EFFECT("it only applies to paste, which is refused") },
        { .name = "protocol", .long_flag = "--protocol", .type = SETTING_STRING, .offset = FIELD(protocol),
          .default_value = "http", .check = check_protocol, .metavar = "STRING", .section = "Server Mechanics",
          .help = "The protocol of incoming connections: http or uwsgi.",
          REFUSED("only 'http' is served; the uwsgi protocol is not available") },
        { .name = "uwsgi_allow_ips", .long_flag = "--uwsgi-allow-from", .type = SETTING_STRING,
          .offset = FIELD(uwsgi_allow_ips), .default_value = "127.0.0.1,::1", .metavar = "STRING",
          .section = "Server Mechanics", .help = "Addresses allowed to send uwsgi requests.",
          NO_EFFECT("it only applies to protocol 'uwsgi', which is refused") },
        { .name = "permit_unconventional_http_version", .long_flag = "--permit-unconventional-http-version",
          .type = SETTING_BOOL, .offset = FIELD(permit_unconventional_http_version), .default_value = "false",
          .section = "Server Mechanics", .help = "Permit HTTP versions other than 1.0 and 1.1.",
          NO_EFFECT("gcorn serves any HTTP/1.x request as HTTP/1.1 (RFC 9110 2.5) and answers other versions 505") },
        { .name = "root_path", .long_flag = "--root-path", .type = SETTING_STRING, .offset = FIELD(root_path),
          .default_value = "", .metavar = "STRING", .section = "Server Mechanics",
          .help = "The root_path of ASGI scopes (default: SCRIPT_NAME from the environment)." },
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
          .help = "auto (the journal when stderr is connected to it), journal or stderr (gcorn).", .gcorn_only = true },
        { .name = "access_log_format", .long_flag = "--access-logformat", .type = SETTING_STRING,
          .offset = FIELD(access_log_format),
          .default_value = ACCESSLOG_DEFAULT_FORMAT,
          .metavar = "STRING", .section = "Logging", .help = "The access log format." },
        { .name = "capture_output", .long_flag = "--capture-output", .type = SETTING_BOOL,
          .offset = FIELD(capture_output), .default_value = "false", .section = "Logging",
          .help = "Send the app's stdout and stderr to the error log file." },
        { .name = "logconfig", .long_flag = "--log-config", .type = SETTING_STRING, .offset = FIELD(logconfig),
          .nullable = true, .check = check_not_empty, .metavar = "FILE", .section = "Logging",
          .help = "Configure Python logging (and so the error log) from this fileConfig() file." },
        { .name = "logconfig_json", .long_flag = "--log-config-json", .type = SETTING_STRING,
          .offset = FIELD(logconfig_json), .nullable = true, .check = check_not_empty, .metavar = "FILE",
          .section = "Logging", .help = "Configure Python logging from this dictConfig() JSON file." },
        { .name = "disable_redirect_access_to_syslog", .long_flag = "--disable-redirect-access-to-syslog",
          .type = SETTING_BOOL, .offset = FIELD(disable_redirect_access_to_syslog), .default_value = "false",
          .section = "Logging", .help = "Do not send the access log to syslog.", NO_EFFECT(WHY_SYSLOG) },
        { .name = "logger_class", .long_flag = "--logger-class", .type = SETTING_STRING,
          .offset = FIELD(logger_class), .default_value = "gunicorn.glogging.Logger", .metavar = "STRING",
          .section = "Logging", .help = "The Python logger class.",
          NO_EFFECT("gcorn's logging is written in C; a Python logger class is not loaded") },
        { .name = "syslog_addr", .long_flag = "--log-syslog-to", .type = SETTING_STRING,
          .offset = FIELD(syslog_addr), .default_value = "udp://localhost:514", .metavar = "SYSLOG_ADDR",
          .section = "Logging", .help = "The syslog address.", NO_EFFECT(WHY_SYSLOG) },
        { .name = "syslog", .long_flag = "--log-syslog", .type = SETTING_BOOL, .offset = FIELD(syslog),
          .default_value = "false", .section = "Logging", .help = "Send the error log to syslog.",
          NO_EFFECT(WHY_SYSLOG) },
        { .name = "syslog_prefix", .long_flag = "--log-syslog-prefix", .type = SETTING_STRING,
          .offset = FIELD(syslog_prefix), .nullable = true, .metavar = "SYSLOG_PREFIX", .section = "Logging",
          .help = "The program name in syslog entries.", NO_EFFECT(WHY_SYSLOG) },
        { .name = "syslog_facility", .long_flag = "--log-syslog-facility", .type = SETTING_STRING,
          .offset = FIELD(syslog_facility), .default_value = "user", .metavar = "SYSLOG_FACILITY",
          .section = "Logging", .help = "The syslog facility.", NO_EFFECT(WHY_SYSLOG) },
        { .name = "enable_stdio_inheritance", .short_flag = 'R', .long_flag = "--enable-stdio-inheritance",
          .type = SETTING_BOOL, .offset = FIELD(enable_stdio_inheritance), .default_value = "false",
          .section = "Logging", .help = "With --daemon, keep stdout and stderr instead of /dev/null." },
        { .name = "statsd_host", .long_flag = "--statsd-host", .type = SETTING_STRING,
          .offset = FIELD(statsd_host), .nullable = true, .check = statsd_check_host, .metavar = "STATSD_ADDR",
          .section = "Logging", .help = "The statsd server: HOST:PORT (port 8125 when left out) or unix://PATH." },
        { .name = "dogstatsd_tags", .long_flag = "--dogstatsd-tags", .type = SETTING_STRING,
          .offset = FIELD(dogstatsd_tags), .default_value = "", .metavar = "DOGSTATSD_TAGS",
          .section = "Logging", .help = "Tags of the statsd metrics (DogStatsD: key:value,...)." },
        { .name = "statsd_prefix", .long_flag = "--statsd-prefix", .type = SETTING_STRING,
          .offset = FIELD(statsd_prefix), .default_value = "", .metavar = "STATSD_PREFIX",
          .section = "Logging", .help = "The prefix of the statsd metrics." },
        { .name = "enable_backlog_metric", .long_flag = "--enable-backlog-metric", .type = SETTING_BOOL,
          .offset = FIELD(enable_backlog_metric), .default_value = "false", .section = "Logging",
          .help = "Send the connections waiting in the TCP listeners' accept queues to statsd "
                  "(gunicorn.backlog, a histogram; the master sends it once a second)." },

        { .name = "proc_name", .short_flag = 'n', .long_flag = "--name", .type = SETTING_STRING,
          .offset = FIELD(proc_name), .nullable = true, .check = check_not_empty, .metavar = "STRING",
          .section = "Process Naming", .help = "The process name (default: the application module)." },
        { .name = "default_proc_name", .type = SETTING_STRING, .offset = FIELD(default_proc_name),
          .default_value = "gunicorn", .metavar = "STRING", .section = "Process Naming",
          .help = "The process name when proc_name is not set.",
          NO_EFFECT("processes are named after proc_name, or the application module") },

        { .name = "keyfile", .long_flag = "--keyfile", .type = SETTING_STRING, .offset = FIELD(keyfile),
          .nullable = true, .metavar = "FILE", .section = "SSL", .help = "The TLS key file.",
          REFUSED("TLS is not available: gcorn would serve plain HTTP where HTTPS was configured; "
                  "terminate TLS in a proxy") },
        { .name = "certfile", .long_flag = "--certfile", .type = SETTING_STRING, .offset = FIELD(certfile),
          .nullable = true, .metavar = "FILE", .section = "SSL", .help = "The TLS certificate file.",
          REFUSED("TLS is not available: gcorn would serve plain HTTP where HTTPS was configured; "
                  "terminate TLS in a proxy") },
        { .name = "ssl_version", .long_flag = "--ssl-version", .type = SETTING_STRING,
          .offset = FIELD(ssl_version), .default_value = "2", .metavar = "STRING",
          .section = "SSL", .help = "The TLS protocol version.", NO_EFFECT(WHY_TLS) },
        { .name = "cert_reqs", .long_flag = "--cert-reqs", .type = SETTING_INT, .offset = FIELD(cert_reqs),
          .default_value = "0", .min = 0, .max = 2, .metavar = "INT", .section = "SSL",
          .help = "Whether a client certificate is required.", NO_EFFECT(WHY_TLS) },
        { .name = "ca_certs", .long_flag = "--ca-certs", .type = SETTING_STRING, .offset = FIELD(ca_certs),
          .nullable = true, .metavar = "FILE", .section = "SSL", .help = "The CA certificates file.",
          NO_EFFECT(WHY_TLS) },
        { .name = "suppress_ragged_eofs", .long_flag = "--suppress-ragged-eofs", .type = SETTING_BOOL,
          .offset = FIELD(suppress_ragged_eofs), .default_value = "true", .section = "SSL",
          .help = "Suppress ragged EOFs (see the ssl module).", NO_EFFECT(WHY_TLS) },
        { .name = "do_handshake_on_connect", .long_flag = "--do-handshake-on-connect", .type = SETTING_BOOL,
          .offset = FIELD(do_handshake_on_connect), .default_value = "false", .section = "SSL",
          .help = "Do the TLS handshake when the socket is accepted.", NO_EFFECT(WHY_TLS) },
        { .name = "ciphers", .long_flag = "--ciphers", .type = SETTING_STRING, .offset = FIELD(ciphers),
          .nullable = true, .metavar = "STRING", .section = "SSL", .help = "The TLS ciphers.",
          NO_EFFECT(WHY_TLS) },

        { .name = "http_protocols", .long_flag = "--http-protocols", .type = SETTING_STRING,
          .offset = FIELD(http_protocols), .default_value = "h1", .metavar = "STRING", .section = "HTTP/2",
          .help = "The HTTP versions to offer: h1, h2.", NO_EFFECT(WHY_HTTP2) },
        { .name = "http2_max_concurrent_streams", .long_flag = "--http2-max-concurrent-streams",
          .type = SETTING_INT, .offset = FIELD(http2_max_concurrent_streams), .default_value = "100", .min = 0,
          .max = INT_MAX, .metavar = "INT", .section = "HTTP/2", .help = "HTTP/2 streams per connection.",
          NO_EFFECT(WHY_HTTP2) },
        { .name = "http2_initial_window_size", .long_flag = "--http2-initial-window-size", .type = SETTING_INT,
          .offset = FIELD(http2_initial_window_size), .default_value = "65535", .min = 0, .max = INT_MAX,
          .metavar = "INT", .section = "HTTP/2", .help = "The HTTP/2 initial window size.",
          NO_EFFECT(WHY_HTTP2) },
        { .name = "http2_max_frame_size", .long_flag = "--http2-max-frame-size", .type = SETTING_INT,
          .offset = FIELD(http2_max_frame_size), .default_value = "16384", .min = 16384, .max = 16777215,
          .metavar = "INT", .section = "HTTP/2", .help = "The HTTP/2 maximum frame size.",
          NO_EFFECT(WHY_HTTP2) },
        { .name = "http2_max_header_list_size", .long_flag = "--http2-max-header-list-size",
          .type = SETTING_INT, .offset = FIELD(http2_max_header_list_size), .default_value = "65536", .min = 0,
          .max = INT_MAX, .metavar = "INT", .section = "HTTP/2", .help = "The HTTP/2 maximum header list size.",
          NO_EFFECT(WHY_HTTP2) },

        { .name = "dirty_apps", .long_flag = "--dirty-app", .type = SETTING_LIST, .offset = FIELD(dirty_apps),
          .metavar = "STRING", .section = "Dirty Arbiters", .help = "An app of the dirty worker pool. Repeatable.",
          REFUSED("dirty arbiters are not available: the application's calls to them would fail") },
        { .name = "dirty_workers", .long_flag = "--dirty-workers", .type = SETTING_INT,
          .offset = FIELD(dirty_workers), .default_value = "0", .min = 0, .max = INT_MAX, .metavar = "INT",
          .section = "Dirty Arbiters", .help = "The number of dirty worker processes.", NO_EFFECT(WHY_DIRTY) },
        { .name = "dirty_timeout", .long_flag = "--dirty-timeout", .type = SETTING_INT,
          .offset = FIELD(dirty_timeout), .default_value = "300", .min = 0, .max = INT_MAX, .metavar = "INT",
          .section = "Dirty Arbiters", .help = "The dirty task timeout in seconds.", NO_EFFECT(WHY_DIRTY) },
        { .name = "dirty_threads", .long_flag = "--dirty-threads", .type = SETTING_INT,
          .offset = FIELD(dirty_threads), .default_value = "1", .min = 0, .max = INT_MAX, .metavar = "INT",
          .section = "Dirty Arbiters", .help = "Threads per dirty worker.", NO_EFFECT(WHY_DIRTY) },
        { .name = "dirty_graceful_timeout", .long_flag = "--dirty-graceful-timeout", .type = SETTING_INT,
          .offset = FIELD(dirty_graceful_timeout), .default_value = "30", .min = 0, .max = INT_MAX,
          .metavar = "INT", .section = "Dirty Arbiters", .help = "Seconds dirty workers get to stop.",
          NO_EFFECT(WHY_DIRTY) },

        { .name = "control_socket", .long_flag = "--control-socket", .type = SETTING_STRING,
          .offset = FIELD(control_socket), .nullable = true, .metavar = "PATH", .section = "Control",
          .help = "The control socket of gcorn ctl (default: $RUNTIME_DIRECTORY/ctl under systemd, else "
                  "$XDG_RUNTIME_DIR/gunicorn.ctl or $HOME/.gunicorn/gunicorn.ctl)." },
        { .name = "control_socket_mode", .long_flag = "--control-socket-mode", .type = SETTING_INT,
          .offset = FIELD(control_socket_mode), .default_value = "384", .min = 0, .max = 07777, .auto_int = true,
          .metavar = "INT", .section = "Control", .help = "The control socket's file mode (0o600, 0600 or 384)." },
        { .name = "control_socket_disable", .long_flag = "--no-control-socket", .type = SETTING_BOOL,
          .offset = FIELD(control_socket_disable), .default_value = "false", .section = "Control",
          .help = "Do not open the control socket." },
        { .name = "metrics_bind", .long_flag = "--metrics-bind", .type = SETTING_STRING,
          .offset = FIELD(metrics_bind), .nullable = true, .check = metrics_check_bind, .metavar = "ADDRESS",
          .section = "Control", .gcorn_only = true,
          .help = "Serve Prometheus metrics at http://ADDRESS/metrics (HOST:PORT, [IPV6]:PORT or unix:PATH), "
                  "from the master (gcorn)." },

        { .name = "wsgi_app", .type = SETTING_STRING, .offset = FIELD(wsgi_app), .nullable = true,
          .check = check_not_empty, .metavar = "APP_MODULE", .positional = true,
          .help = "The WSGI application: MODULE, MODULE:NAME or MODULE:FACTORY(ARGS)." },

        { .short_flag = 'h', .long_flag = "--help", .type = SETTING_HELP,
          .help = "Show this help message and exit." },
        { .short_flag = 'v', .long_flag = "--version", .type = SETTING_VERSION, .help = "Show the version and exit." },
        { .long_flag = "--settings-table-markdown", .type = SETTING_MARKDOWN, .hidden = true,
          .help = "Print the README's settings table and exit." },
        { .long_flag = "--man-page", .type = SETTING_MAN, .hidden = true,
          .help = "Print the gcorn(1) man page and exit." },
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

/* Gunicorn's names for its worker classes: the short one, the egg entry point and the class
 * path all mean the same worker. */
static bool worker_class_is(const char *value, const char *kind, const char *class_path) {
        return strcmp(value, kind) == 0 ||
                (strncmp(value, "egg:gunicorn#", 13) == 0 && strcmp(value + 13, kind) == 0) ||
                (class_path && strcmp(value, class_path) == 0);
}

static int check_worker_class(const char *value, char **ret_value, char *reason, size_t reason_size) {
        /* uvicorn's classes are the asgi worker, kept as given for the log's word on it */
        static const char *const uvicorn[] = {
                "uvicorn.workers.UvicornWorker",
                "uvicorn.workers.UvicornH11Worker",
                "uvicorn_worker.UvicornWorker",
                "uvicorn_worker.UvicornH11Worker",
        };

        if (worker_class_is(value, "sync", "gunicorn.workers.sync.SyncWorker")) {
                *ret_value = strdup("sync");
                return *ret_value ? 0 : -ENOMEM;
        }
        if (worker_class_is(value, "gthread", "gunicorn.workers.gthread.ThreadWorker")) {
                *ret_value = strdup("gthread");
                return *ret_value ? 0 : -ENOMEM;
        }
        if (worker_class_is(value, "gevent", "gunicorn.workers.ggevent.GeventWorker")) {
                *ret_value = strdup("gevent");
                return *ret_value ? 0 : -ENOMEM;
        }
        if (worker_class_is(value, "asgi", "gunicorn.workers.gasgi.ASGIWorker")) {
                *ret_value = strdup("asgi");
                return *ret_value ? 0 : -ENOMEM;
        }
        for (size_t i = 0; i < ELEMENTSOF(uvicorn); i++)
                if (strcmp(value, uvicorn[i]) == 0) {
                        *ret_value = strdup(value);
                        return *ret_value ? 0 : -ENOMEM;
                }
        if (worker_class_is(value, "eventlet", "gunicorn.workers.geventlet.EventletWorker")) {
                snprintf(reason, reason_size, "Gunicorn 26 removed the eventlet worker: use gevent or gthread, or sync");
                return -EINVAL;
        }
        if (worker_class_is(value, "tornado", "gunicorn.workers.gtornado.TornadoWorker")) {
                snprintf(reason, reason_size, "this worker is not available, only 'sync', 'gthread', 'gevent' and "
                         "'asgi' are");
                return -EINVAL;
        }
        snprintf(reason, reason_size, "unknown worker class, only 'sync', 'gthread', 'gevent' and 'asgi' are available");
        return -EINVAL;
}

/* value is one of choices (NULL-terminated); else the reason lists them. */
static int check_choice(const char *value, const char *const *choices, char *reason, size_t reason_size) {
        size_t n;

        for (const char *const *c = choices; *c; c++)
                if (strcmp(value, *c) == 0)
                        return 0;
        n = (size_t) snprintf(reason, reason_size, "choose from");
        for (const char *const *c = choices; *c && n < reason_size; c++)
                n += (size_t) snprintf(reason + n, reason_size - n, "%s %s", c == choices ? "" : ",", *c);
        return -EINVAL;
}

static int check_protocol(const char *value, char **ret_value, char *reason, size_t reason_size) {
        static const char *const choices[] = { "http", "uwsgi", NULL };

        (void) ret_value;
        return check_choice(value, choices, reason, reason_size);
}

/* Gunicorn's validators for the asgi settings take any case and surrounding blanks. */
static int check_choice_folded(const char *value, const char *const *choices, char **ret_value, char *reason,
                               size_t reason_size) {
        _cleanup_free_ char *v = NULL;
        size_t n;
        int r;

        while (*value == ' ' || *value == '\t')
                value++;
        v = strdup(value);
        if (!v)
                return -ENOMEM;
        n = strlen(v);
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
                v[--n] = 0;
        for (char *p = v; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char) (*p - 'A' + 'a');
        r = check_choice(v, choices, reason, reason_size);
        if (r < 0)
                return r;
        *ret_value = TAKE_PTR(v);
        return 0;
}

static int check_asgi_loop(const char *value, char **ret_value, char *reason, size_t reason_size) {
        static const char *const choices[] = { "auto", "asyncio", "uvloop", NULL };

        return check_choice_folded(value, choices, ret_value, reason, reason_size);
}

static int check_asgi_lifespan(const char *value, char **ret_value, char *reason, size_t reason_size) {
        static const char *const choices[] = { "auto", "on", "off", NULL };

        return check_choice_folded(value, choices, ret_value, reason, reason_size);
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
        static const char *const choices[] = { "auto", "journal", "stderr", NULL };

        (void) ret_value;
        return check_choice(value, choices, reason, reason_size);
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

static int check_reload_engine(const char *value, char **ret_value, char *reason, size_t reason_size) {
        static const char *const choices[] = { "auto", "inotify", "poll", NULL };

        (void) ret_value;
        return check_choice(value, choices, reason, reason_size);
}

static int check_file_exists(const char *value, char **ret_value, char *reason, size_t reason_size) {
        (void) ret_value;
        if (access(value, F_OK) == 0)
                return 0;
        snprintf(reason, reason_size, "%s", strerror(errno));
        return -EINVAL;
}

static int check_allow_entry(const char *value, char **ret_value, char *reason, size_t reason_size) {
        /* entries are stripped, as Gunicorn's list splitting does */
        size_t start = strspn(value, " \t\n\r\f\v"), end = strlen(value);
        _cleanup_free_ char *entry = NULL;
        int r;

        while (end > start && strchr(" \t\n\r\f\v", value[end - 1]))
                end--;
        entry = strndup(value + start, end - start);
        if (!entry)
                return -ENOMEM;
        r = allowlist_check_entry(entry, reason, reason_size);
        if (r < 0)
                return r;
        *ret_value = TAKE_PTR(entry);
        return 0;
}

/* Gunicorn 25's values: off, v1, v2, auto, and the spellings of true and false. */
static int check_proxy_protocol(const char *value, char **ret_value, char *reason, size_t reason_size) {
        static const char *const map[][2] = {
                { "off", "off" }, { "false", "off" }, { "0", "off" }, { "none", "off" },
                { "auto", "auto" }, { "true", "auto" }, { "1", "auto" }, { "v1", "v1" }, { "v2", "v2" },
        };
        size_t start = strspn(value, " \t"), len = strlen(value + start);

        while (len > 0 && (value[start + len - 1] == ' ' || value[start + len - 1] == '\t'))
                len--;
        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (strlen(map[i][0]) == len && strncasecmp(value + start, map[i][0], len) == 0) {
                        *ret_value = strdup(map[i][1]);
                        return *ret_value ? 0 : -ENOMEM;
                }
        snprintf(reason, reason_size, "choose from off, v1, v2, auto");
        return -EINVAL;
}

/* Gunicorn compares the upper-cased name of each request header with these keys, so a key
 * with a lower-case letter or a non-token byte would never match: refused, not ignored. */
static int check_scheme_header_name(const char *value, char **ret_value, char *reason, size_t reason_size) {
        (void) ret_value;
        if (!*value) {
                snprintf(reason, reason_size, "an empty header name");
                return -EINVAL;
        }
        for (const char *p = value; *p; p++) {
                if (*p >= 'a' && *p <= 'z') {
                        snprintf(reason, reason_size, "header names must be upper case, as Gunicorn compares them");
                        return -EINVAL;
                }
                if (!strchr("!#$%&'*+-.^_`|~", *p) && !(*p >= '0' && *p <= '9') && !(*p >= 'A' && *p <= 'Z')) {
                        snprintf(reason, reason_size, "not a header name");
                        return -EINVAL;
                }
        }
        return 0;
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

/* Digits in base (2, 8, 10 or 16), each one after at most one '_', as Python's int() reads
 * them; leading_underscore: the first digit may have one too (after 0x, 0o or 0b). */
static int parse_digits(const char *p, const char *end, unsigned base, bool leading_underscore, uint64_t *ret) {
        uint64_t v = 0;
        bool overflow = false, any = false;

        for (; p < end; p++) {
                unsigned d;

                if (*p == '_') {
                        if ((!any && !leading_underscore) || p + 1 == end || p[1] == '_')
                                return -EINVAL;
                        continue;
                }
                d = isdigit((unsigned char) *p) ? (unsigned) (*p - '0') :
                    isxdigit((unsigned char) *p) ? (unsigned) (tolower((unsigned char) *p) - 'a' + 10) : 99;
                if (d >= base)
                        return -EINVAL;
                if (v > (UINT64_MAX - d) / base)
                        overflow = true;
                v = v * base + d;
                any = true;
        }
        if (!any)
                return -EINVAL;
        *ret = v;
        return overflow ? -ERANGE : 0;
}

/* Gunicorn's auto_int (umask, control_socket_mode on its command line): a leading 0 followed
 * by a digit makes the rest octal, then Python's int(x, 0) reads it: blanks around, a sign,
 * 0x/0o/0b prefixes in either case, '_' between digits, and no other leading zero. */
static int parse_auto_int(const char *value, int64_t *ret) {
        const char *p = value, *end = value + strlen(value);
        bool negative = false, octal = value[0] == '0' && isdigit((unsigned char) value[1]);
        unsigned base = 10;
        uint64_t v;
        int r;

        if (octal) {
                p++;
                base = 8;
        } else {
                p += strspn(p, " \t\n\r\f\v");
                if (*p == '+' || *p == '-')
                        negative = *p++ == '-';
        }
        while (end > p && strchr(" \t\n\r\f\v", end[-1]))
                end--;
        if (!octal && p[0] == '0' && p + 1 < end && strchr("xXoObB", p[1])) {
                base = strchr("xX", p[1]) ? 16 : strchr("oO", p[1]) ? 8 : 2;
                r = parse_digits(p + 2, end, base, true, &v);
        } else {
                r = parse_digits(p, end, base, octal, &v);
                /* Decimal has no leading zeros but in zero itself. */
                if (r == 0 && base == 10 && p[0] == '0' && v != 0)
                        r = -EINVAL;
        }
        if (r == 0 && v > (uint64_t) INT64_MAX)
                r = -ERANGE;
        if (r < 0)
                return r;
        *ret = negative ? -(int64_t) v : (int64_t) v;
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

/* Replaces a dict with owned copies of n NAME, VALUE pairs (names checked). On -EINVAL,
 * *ret_bad points at the rejected name. */
static int dict_set(const SettingDef *d, char ***dict, const char *const *pairs, size_t n, const char **ret_bad,
                    char *reason, size_t reason_size) {
        _cleanup_strv_free_ char **l = NULL;
        int r;

        l = calloc(2 * n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < 2 * n; i++) {
                if (i % 2 == 0) {
                        r = value_checked_dup(d, pairs[i], &l[i], reason, reason_size);
                        if (r == -EINVAL && ret_bad)
                                *ret_bad = pairs[i];
                        if (r < 0)
                                return r;
                } else {
                        l[i] = strdup(pairs[i]);
                        if (!l[i])
                                return -ENOMEM;
                }
        }
        strv_free(*dict);
        *dict = TAKE_PTR(l);
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
                r = d->auto_int ? parse_auto_int(value, &v) : parse_int64(value, &v);
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
        case SETTING_DICT: {
                /* only the built-in default comes as a string: "NAME,VALUE,NAME,VALUE" */
                _cleanup_strv_free_ char **l = NULL;

                r = comma_split(value, &l);
                if (r < 0)
                        return r;
                if (strv_length(l) % 2 != 0)
                        return -EINVAL;
                return dict_set(d, (char ***) field, (const char *const *) l, strv_length(l) / 2, NULL, reason,
                                reason_size);
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

/* A default that Gunicorn takes from the environment (WEB_CONCURRENCY for workers). A bad
 * value is one line on stderr and -EINVAL. */
static int default_from_env(Settings *s, const char *var, const char *name) {
        char reason[REASON_MAX];
        const char *e = getenv(var);
        int r;

        if (!e)
                return 0;
        r = setting_apply(s, setting_find(name), e, false, reason, sizeof(reason));
        if (r == -EINVAL)
                fprintf(stderr, PROGRAM_NAME ": error: invalid %s value: '%s'%s%s%s\n", var, e,
                        reason[0] ? " (" : "", reason, reason[0] ? ")" : "");
        return r;
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
                if (d->type == SETTING_LIST || d->type == SETTING_COMMA_LIST || d->type == SETTING_DICT) {
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

        r = default_from_env(s, "WEB_CONCURRENCY", "workers");
        if (r < 0)
                goto fail;
        /* Gunicorn reads it for forwarded_allow_ips's default. */
        r = default_from_env(s, "FORWARDED_ALLOW_IPS", "forwarded_allow_ips");
        if (r < 0)
                goto fail;

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
        logconfig_dict_free(&s->logconfig_dict);
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
                case SETTING_DICT:
                        strv_freep((char ***) field);
                        break;
                default:
                        break;
                }
        }
        strv_freep(&s->config_warnings);
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
        if (d->type == SETTING_DICT) {
                if (asprintf(ret_error, "Invalid value for %s: %s (a dict is expected)", d->name,
                             value ? value : "None") < 0) {
                        *ret_error = NULL;
                        return -ENOMEM;
                }
                return -EINVAL;
        }
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

int settings_set_dict(Settings *s, const char *name, const char *const *pairs, char **ret_error) {
        char reason[REASON_MAX] = "";
        const SettingDef *d = setting_find(name);
        const char *bad = NULL;
        size_t n = 0;
        int r;

        if (!d)
                return -ENOENT;
        if (d->type != SETTING_DICT) {
                if (asprintf(ret_error, "Invalid value for %s: a dict is not allowed", d->name) < 0) {
                        *ret_error = NULL;
                        return -ENOMEM;
                }
                return -EINVAL;
        }
        while (pairs[n])
                n++;
        r = dict_set(d, (char ***) setting_field(s, d), pairs, n / 2, &bad, reason, sizeof(reason));
        if (r == -EINVAL)
                return invalid_value_error(d, bad, reason, ret_error);
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

/* Where the options being parsed come from, for errors: NULL for the command line, or the
 * name of the environment variable. */
static const char *arg_origin;

_printf_(1, 2)
static int argv_error(const char *fmt, ...) {
        va_list ap;

        fputs(PROGRAM_NAME ": error: ", stderr);
        if (arg_origin)
                fprintf(stderr, "in $%s: ", arg_origin);
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

static int parse_args(Settings *s, int argc, char **argv) {
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
                        *(bool *) setting_field(s, d) = !d->negate;
                        continue;
                }
                if (d->type == SETTING_MARKDOWN || d->type == SETTING_MAN) {
                        if (value)
                                return argument_error(d, "ignored explicit argument", value, NULL);
                        if (d->type == SETTING_MARKDOWN)
                                settings_print_markdown(stdout);
                        else
                                settings_print_man(stdout);
                        return 0;
                }

                /* A flag with an optional value takes the next word only when it is one (so
                 * "--proxy-protocol app:app" still names the app, as Gunicorn 23's flag did). */
                if (!value && d->bare_value) {
                        _cleanup_free_ char *checked = NULL;

                        if (i + 1 < argc && !looks_like_option(argv[i + 1]) &&
                            (!d->check || d->check(argv[i + 1], &checked, reason, sizeof(reason)) == 0))
                                value = argv[++i];
                        else
                                value = d->bare_value;
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
        if (app && arg_origin)
                return argv_error("the application cannot be given here: '%s'", app);
        if (app) {
                r = setting_apply(s, setting_find("wsgi_app"), app, false, reason, sizeof(reason));
                if (r == -EINVAL)
                        return argv_error("argument APP_MODULE: invalid value: '%s' (%s)", app, reason);
                if (r < 0)
                        return r;
        }
        return 1;
}

int settings_parse_argv(Settings *s, int argc, char **argv) {
        arg_origin = NULL;
        return parse_args(s, argc, argv);
}

/* Appends c to the word being built. */
static int word_add(char **word, size_t *len, size_t *cap, char c) {
        if (*len + 2 > *cap) {
                size_t n = MAX(*cap * 2, (size_t) 32);
                char *p = realloc(*word, n);

                if (!p)
                        return -ENOMEM;
                *word = p;
                *cap = n;
        }
        (*word)[(*len)++] = c;
        (*word)[*len] = '\0';
        return 0;
}

static int strv_push(char ***l, size_t *n, char *item) {
        char **p = realloc(*l, (*n + 2) * sizeof(char *));

        if (!p)
                return -ENOMEM;
        *l = p;
        p[(*n)++] = item;
        p[*n] = NULL;
        return 0;
}

/* Ends the word being built: it moves to the list. */
static int word_end(char ***l, size_t *n, char **word, size_t *len, size_t *cap) {
        int r;

        if (!*word) {
                *word = strdup("");
                if (!*word)
                        return -ENOMEM;
        }
        r = strv_push(l, n, *word);
        if (r < 0)
                return r;
        *word = NULL;
        *len = *cap = 0;
        return 0;
}

int settings_shell_split(const char *line, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *word = NULL;
        size_t n = 0, len = 0, cap = 0;
        bool in_word = false;
        char quote = 0;
        int r;

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (const char *p = line;; p++) {
                char c = *p;

                if (!c) {
                        if (quote)
                                return -EINVAL;
                        break;
                }
                if (quote == '\'') {
                        if (c == '\'')
                                quote = 0;
                        else if ((r = word_add(&word, &len, &cap, c)) < 0)
                                return r;
                        continue;
                }
                if (quote == '"') {
                        /* Inside double quotes a backslash escapes only these, as in sh. */
                        if (c == '\\' && p[1] && strchr("\\\"$`", p[1]))
                                c = *++p;
                        else if (c == '"') {
                                quote = 0;
                                continue;
                        }
                        if ((r = word_add(&word, &len, &cap, c)) < 0)
                                return r;
                        continue;
                }
                if (strchr(" \t\n\r\f\v", c)) {
                        if (in_word) {
                                r = word_end(&l, &n, &word, &len, &cap);
                                if (r < 0)
                                        return r;
                                in_word = false;
                        }
                        continue;
                }
                in_word = true;
                if (c == '\'' || c == '"') {
                        quote = c;
                        continue;
                }
                if (c == '\\') {
                        if (!p[1])
                                return -EINVAL;
                        c = *++p;
                }
                if ((r = word_add(&word, &len, &cap, c)) < 0)
                        return r;
        }
        if (in_word) {
                r = word_end(&l, &n, &word, &len, &cap);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static int parse_env_args(Settings *s, const char *variable) {
        _cleanup_strv_free_ char **words = NULL;
        _cleanup_free_ char **argv = NULL;
        const char *e = getenv(variable);
        size_t n;
        int r;

        if (!e)
                return 1;
        arg_origin = variable;
        r = settings_shell_split(e, &words);
        if (r == -EINVAL) {
                r = argv_error("no closing quotation");
                goto finish;
        }
        if (r < 0)
                goto finish;
        n = strv_length(words);
        argv = calloc(n + 2, sizeof(char *));
        if (!argv) {
                r = -ENOMEM;
                goto finish;
        }
        argv[0] = (char *) PROGRAM_NAME;
        memcpy(argv + 1, words, n * sizeof(char *));
        r = parse_args(s, (int) n + 1, argv);
finish:
        arg_origin = NULL;
        return r;
}

int settings_parse_env_args(Settings *s) {
        int r;

        r = parse_env_args(s, "GUNICORN_CMD_ARGS");
        if (r <= 0)
                return r;
        return parse_env_args(s, "GCORN_CMD_ARGS");
}

/* Whether a setting's value is its default, so that a setting the user left alone (or set to
 * what it is anyway) is never reported. */
static bool setting_is_default(const Settings *s, const SettingDef *d) {
        char reason[REASON_MAX];
        Settings def = {};
        void *a = setting_field((Settings *) s, d), *b = setting_field(&def, d);
        bool same = false;

        if (d->type == SETTING_LIST || d->type == SETTING_COMMA_LIST)
                if (empty_list((char ***) b) < 0)
                        return false;
        if (d->default_value && setting_apply(&def, d, d->default_value, false, reason, sizeof(reason)) < 0)
                goto finish;
        switch (d->type) {
        case SETTING_STRING: {
                const char *x = *(char **) a, *y = *(char **) b;

                same = x == y || (x && y && strcmp(x, y) == 0);
                break;
        }
        case SETTING_INT:
                same = *(int *) a == *(int *) b;
                break;
        case SETTING_INT64:
                same = *(int64_t *) a == *(int64_t *) b;
                break;
        case SETTING_BOOL:
                same = *(bool *) a == *(bool *) b;
                break;
        case SETTING_LIST:
        case SETTING_COMMA_LIST:
                same = strv_equal(*(char ***) a, *(char ***) b);
                break;
        default:
                same = true;
                break;
        }
finish:
        if (d->type == SETTING_STRING)
                free(*(char **) b);
        else if (d->type == SETTING_LIST || d->type == SETTING_COMMA_LIST)
                strv_free(*(char ***) b);
        return same;
}

/* Appends text to a growing string; on failure the string is freed (the caller reports
 * -ENOMEM once). */
_printf_(2, 3)
static void str_append(char **str, const char *fmt, ...) {
        _cleanup_free_ char *more = NULL;
        char *n = NULL;
        va_list ap;
        int r;

        if (!*str)
                return;
        va_start(ap, fmt);
        r = vasprintf(&more, fmt, ap);
        va_end(ap);
        if (r < 0 || asprintf(&n, "%s%s", *str, more) < 0)
                n = NULL;
        free(*str);
        *str = n;
}

/* A string as Python's repr() writes it, closely enough for ASCII text. */
static void str_append_repr(char **str, const char *v) {
        char q = strchr(v, '\'') && !strchr(v, '"') ? '"' : '\'';

        str_append(str, "%c", q);
        for (const char *p = v; *p; p++) {
                if (*p == '\\' || *p == q)
                        str_append(str, "\\%c", *p);
                else if (*p == '\n')
                        str_append(str, "\\n");
                else if (*p == '\t')
                        str_append(str, "\\t");
                else
                        str_append(str, "%c", *p);
        }
        str_append(str, "%c", q);
}

/* A value as Gunicorn prints it (Python's str()): None, True, 30, text, ['a', 'b']. pythonpath
 * is one comma-separated string in Gunicorn. Returns NULL on OOM. */
static char *setting_value_string(const Settings *s, const SettingDef *d) {
        const void *field = setting_field((Settings *) s, d);
        char *ret = strdup("");

        switch (d->type) {
        case SETTING_STRING:
                str_append(&ret, "%s", *(char *const *) field ? *(char *const *) field : "None");
                break;
        case SETTING_INT:
                str_append(&ret, "%d", *(const int *) field);
                break;
        case SETTING_INT64:
                str_append(&ret, "%lld", (long long) *(const int64_t *) field);
                break;
        case SETTING_BOOL:
                str_append(&ret, "%s", *(const bool *) field ? "True" : "False");
                break;
        case SETTING_LIST: {
                char *const *l = *(char **const *) field;

                str_append(&ret, "[");
                for (size_t i = 0; l && l[i]; i++) {
                        if (i > 0)
                                str_append(&ret, ", ");
                        if (ret)
                                str_append_repr(&ret, l[i]);
                }
                str_append(&ret, "]");
                break;
        }
        case SETTING_COMMA_LIST: {
                char *const *l = *(char **const *) field;

                if (!l || !l[0])
                        str_append(&ret, "None");
                for (size_t i = 0; l && l[i]; i++)
                        str_append(&ret, "%s%s", i > 0 ? "," : "", l[i]);
                break;
        }
        default:
                str_append(&ret, "None");
                break;
        }
        return ret;
}

int settings_no_effect_lines(const Settings *s, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;
        int r;

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < SETTINGS_COUNT; i++) {
                const SettingDef *d = &setting_table[i];
                _cleanup_free_ char *value = NULL;
                char *line;

                if (d->status != SETTING_NO_EFFECT || setting_is_default(s, d))
                        continue;
                value = setting_value_string(s, d);
                if (!value || asprintf(&line, "Setting %s = %s has no effect in gcorn: %s", d->name, value,
                                       d->reason) < 0)
                        return -ENOMEM;
                r = strv_push(&l, &n, line);
                if (r < 0) {
                        free(line);
                        return r;
                }
        }
        /* The asgi worker's settings: their rows would warn for that worker too. */
        if (!settings_asgi(s)) {
                static const char *const names[] = { "asgi_loop", "asgi_lifespan", "websocket_max_message_size",
                                                     "websocket_ping_interval", "websocket_ping_timeout",
                                                     "root_path", "asgi_disconnect_grace_period" };

                for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                        const SettingDef *d = setting_find(names[i]);
                        _cleanup_free_ char *value = NULL;
                        char *line;

                        if (setting_is_default(s, d))
                                continue;
                        value = setting_value_string(s, d);
                        if (!value || asprintf(&line, "Setting %s = %s has no effect in gcorn: %s", d->name, value,
                                               WHY_ASGI) < 0)
                                return -ENOMEM;
                        r = strv_push(&l, &n, line);
                        if (r < 0) {
                                free(line);
                                return r;
                        }
                }
        }
        /* A row of its own would warn for the worker that uses it too. */
        if (s->threads > 1 && settings_asgi(s)) {
                char *line;

                /* Gunicorn's asgi worker warns the same: its coroutines share one thread */
                if (asprintf(&line, "Setting threads = %d has no effect in gcorn: the asgi worker runs its "
                             "requests as coroutines on one thread (--worker-connections bounds them)",
                             s->threads) < 0)
                        return -ENOMEM;
                r = strv_push(&l, &n, line);
                if (r < 0) {
                        free(line);
                        return r;
                }
        }
        if (s->worker_connections != 1000 && !settings_threaded(s) && !settings_gevent(s) && !settings_asgi(s)) {
                char *line;

                if (asprintf(&line, "Setting worker_connections = %d has no effect in gcorn: only the gthread, "
                             "gevent and asgi workers use it (-k gthread or --threads above 1, -k gevent, -k asgi)", s->worker_connections) < 0)
                        return -ENOMEM;
                r = strv_push(&l, &n, line);
                if (r < 0) {
                        free(line);
                        return r;
                }
        }
        *ret = TAKE_PTR(l);
        return 0;
}

int settings_validate(const Settings *s, char **ret_error) {
        const char *msg = NULL;

        for (size_t i = 0; i < SETTINGS_COUNT; i++) {
                const SettingDef *d = &setting_table[i];
                _cleanup_free_ char *value = NULL;

                if (d->status != SETTING_REFUSED || setting_is_default(s, d))
                        continue;
                value = setting_value_string(s, d);
                if (!value || asprintf(ret_error, "Setting %s = %s is refused: %s", d->name, value, d->reason) < 0) {
                        *ret_error = NULL;
                        return -ENOMEM;
                }
                return -EINVAL;
        }

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

static const char *status_tag(const SettingDef *d) {
        switch (d->status) {
        case SETTING_NO_EFFECT:
                return " [no effect in gcorn]";
        case SETTING_REFUSED:
                return " [refused by gcorn]";
        default:
                return "";
        }
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
                fprintf(f, "  %-22s  %s%s\n", left, d->help, status_tag(d));
        else
                fprintf(f, "  %s\n  %-22s  %s%s\n", left, "", d->help, status_tag(d));
}

/* Whether d is the first row of its section: the sections come out in the order they first
 * appear, with every row of each, wherever it is in the table. */
static bool section_first(size_t i) {
        for (size_t j = 0; j < i; j++)
                if (setting_table[j].section && strcmp(setting_table[j].section, setting_table[i].section) == 0)
                        return false;
        return true;
}

static bool in_help(const SettingDef *d) {
        return d->long_flag && !d->hidden;
}

void settings_print_help(FILE *f) {
        fputs("usage: " PROGRAM_NAME " [OPTIONS] [APP_MODULE]\n\npositional arguments:\n", f);
        for (size_t i = 0; i < SETTINGS_COUNT; i++)
                if (setting_table[i].positional)
                        print_option(f, &setting_table[i]);

        fputs("\noptions:\n", f);
        for (size_t i = 0; i < SETTINGS_COUNT; i++)
                if (in_help(&setting_table[i]) && !setting_table[i].section)
                        print_option(f, &setting_table[i]);

        for (size_t i = 0; i < SETTINGS_COUNT; i++) {
                const char *section = setting_table[i].section;
                bool heading = false;

                if (!section || !section_first(i))
                        continue;
                for (size_t j = i; j < SETTINGS_COUNT; j++) {
                        const SettingDef *d = &setting_table[j];

                        if (!in_help(d) || !d->section || strcmp(d->section, section) != 0)
                                continue;
                        if (!heading)
                                fprintf(f, "\n%s:\n", section);
                        heading = true;
                        print_option(f, d);
                }
        }
        fputs("\nOptions are also read from $GUNICORN_CMD_ARGS, then $GCORN_CMD_ARGS: above the config\n"
              "file, below the command line. Settings marked [no effect in gcorn] are accepted and\n"
              "named in one warning line at start when set; [refused] ones stop gcorn with an error.\n"
              "See gcorn(1) for the reasons.\n", f);
}

static bool streq(const char *a, const char *b) {
        return a && b && strcmp(a, b) == 0;
}

static int compare_names(const void *a, const void *b) {
        return strcmp((*(const SettingDef *const *) a)->name, (*(const SettingDef *const *) b)->name);
}

/* The settable rows sorted by name; n is set to their number. */
static size_t sorted_settings(const SettingDef **out) {
        size_t n = 0;

        for (size_t i = 0; i < SETTINGS_COUNT; i++)
                if (is_settable(&setting_table[i]) && !setting_table[i].hidden)
                        out[n++] = &setting_table[i];
        qsort(out, n, sizeof(out[0]), compare_names);
        return n;
}

typedef struct ConfigLine {
        const char *name;
        char *value;                    /* owned */
} ConfigLine;

static int config_line_compare(const void *a, const void *b) {
        return strcmp(((const ConfigLine *) a)->name, ((const ConfigLine *) b)->name);
}

void settings_print_config(const Settings *s, FILE *f, char *const *extra) {
        const SettingDef *sorted[SETTINGS_COUNT];
        size_t n = sorted_settings(sorted), n_extra = 0, total;
        _cleanup_free_ ConfigLine *lines = NULL;
        int width = 0;

        while (extra && extra[2 * n_extra])
                n_extra++;
        total = n + n_extra;
        lines = calloc(total, sizeof(ConfigLine));
        if (!lines)
                return;
        for (size_t i = 0; i < n; i++)
                lines[i] = (ConfigLine) { sorted[i]->name, setting_value_string(s, sorted[i]) };
        for (size_t i = 0; i < n_extra; i++)
                lines[n + i] = (ConfigLine) { extra[2 * i], strdup(extra[2 * i + 1]) };
        qsort(lines, total, sizeof(ConfigLine), config_line_compare);
        for (size_t i = 0; i < total; i++)
                width = MAX(width, (int) strlen(lines[i].name));
        for (size_t i = 0; i < total; i++) {
                fprintf(f, "%-*s = %s\n", width, lines[i].name, strna(lines[i].value));
                free(lines[i].value);
        }
}

static const char *status_word(const SettingDef *d) {
        switch (d->status) {
        case SETTING_NO_EFFECT:
                return "no effect";
        case SETTING_REFUSED:
                return "refused";
        default:
                return d->gcorn_only ? "implemented (gcorn only)" : "implemented";
        }
}

/* "-w, --workers", or "" for a setting only the config file sets. */
static void flags_text(const SettingDef *d, char *buf, size_t size) {
        int n = 0;

        buf[0] = '\0';
        if (d->positional) {
                snprintf(buf, size, "%s", d->metavar);
                return;
        }
        if (d->short_flag)
                n = snprintf(buf, size, "-%c", d->short_flag);
        if (d->long_flag && (size_t) n < size)
                n += snprintf(buf + n, size - n, "%s%s", n > 0 ? ", " : "", d->long_flag);
        if (d->alt_flag && (size_t) n < size)
                snprintf(buf + n, size - n, ", %s", d->alt_flag);
}

static void (*doc_markdown_rows)(FILE *f);
static void (*doc_man_section)(FILE *f);

void settings_set_doc_extras(void (*markdown_rows)(FILE *f), void (*man_section)(FILE *f)) {
        doc_markdown_rows = markdown_rows;
        doc_man_section = man_section;
}

void settings_print_markdown(FILE *f) {
        fputs("| Setting | Command line | Default | Status in gcorn | Notes |\n|---|---|---|---|---|\n", f);
        for (size_t i = 0; i < SETTINGS_COUNT; i++) {
                const SettingDef *d = &setting_table[i];
                char flags[128];

                if (!is_settable(d) || d->hidden)
                        continue;
                flags_text(d, flags, sizeof(flags));
                fprintf(f, "| `%s` | %s%s%s | ", d->name, flags[0] ? "`" : "", flags[0] ? flags : "config file",
                        flags[0] ? "`" : "");
                if (d->type == SETTING_BOOL)
                        fputs(streq(d->default_value, "true") ? "on" : "off", f);
                else if (d->default_value && d->default_value[0])
                        fprintf(f, "`%s`", d->default_value);
                fprintf(f, " | %s | %s |\n", status_word(d), d->reason ? d->reason : d->help);
        }
        if (doc_markdown_rows)
                doc_markdown_rows(f);
}

/* Text for roff: backslashes and minus signs escaped, no line starting with a control
 * character. */
static void man_text(FILE *f, const char *text) {
        if (text[0] == '.' || text[0] == '\'')
                fputs("\\&", f);
        for (const char *p = text; *p; p++) {
                if (*p == '\\')
                        fputs("\\e", f);
                else if (*p == '-')
                        fputs("\\-", f);
                else
                        fputc(*p, f);
        }
}

static void man_option(FILE *f, const SettingDef *d) {
        char flags[128];

        flags_text(d, flags, sizeof(flags));
        fputs(".TP\n", f);
        if (d->long_flag || d->positional) {
                fputs("\\fB", f);
                man_text(f, flags);
                fputs("\\fR", f);
                if (d->metavar && !d->positional) {
                        fputs(" \\fI", f);
                        man_text(f, d->metavar);
                        fputs("\\fR", f);
                }
                fputs("\n", f);
        } else
                fputs("(config file only)\n", f);
        man_text(f, d->help);
        fputs("\n.br\nSetting: \\fB", f);
        man_text(f, d->name);
        fputs("\\fR", f);
        if (d->default_value && d->type != SETTING_BOOL) {
                fputs("; default: ", f);
                man_text(f, d->default_value[0] ? d->default_value : "''");
        }
        fputs(". Status: ", f);
        man_text(f, status_word(d));
        if (d->reason) {
                fputs(": ", f);
                man_text(f, d->reason);
        }
        fputs(".\n", f);
}

void settings_print_man(FILE *f) {
        fputs(".TH GCORN 1 \"\" \"gcorn " GCORN_VERSION "\" \"User Commands\"\n"
              ".SH NAME\n"
              "gcorn \\- a WSGI HTTP server, a drop\\-in for Gunicorn, native to systemd\n"
              ".SH SYNOPSIS\n"
              ".B gcorn\n"
              "[\\fIOPTIONS\\fR] [\\fIAPP_MODULE\\fR]\n"
              ".SH DESCRIPTION\n"
              "gcorn serves a Python WSGI application with the command line, config file\n"
              "(gunicorn.conf.py) and behaviour of Gunicorn 23. Every Gunicorn setting up to 26.1\n"
              "is accepted: it is implemented, or reported once at start as having no effect, or\n"
              "refused with an error where running without it would be wrong. Settings come from,\n"
              "in rising order: the defaults, the config file, $GUNICORN_CMD_ARGS, $GCORN_CMD_ARGS\n"
              "and the command line.\n"
              ".SH OPTIONS\n", f);
        for (size_t i = 0; i < SETTINGS_COUNT; i++)
                if (setting_table[i].positional)
                        man_option(f, &setting_table[i]);
        for (size_t i = 0; i < SETTINGS_COUNT; i++) {
                const SettingDef *d = &setting_table[i];

                if (d->long_flag && !d->name && !d->hidden) {
                        fputs(".TP\n\\fB", f);
                        if (d->short_flag)
                                fprintf(f, "\\-%c, ", d->short_flag);
                        man_text(f, d->long_flag);
                        fputs("\\fR\n", f);
                        man_text(f, d->help);
                        fputs("\n", f);
                }
        }
        for (size_t i = 0; i < SETTINGS_COUNT; i++) {
                const char *section = setting_table[i].section;

                if (!section || !section_first(i))
                        continue;
                fputs(".SS \"", f);
                man_text(f, section);
                fputs("\"\n", f);
                for (size_t j = i; j < SETTINGS_COUNT; j++) {
                        const SettingDef *d = &setting_table[j];

                        if (is_settable(d) && !d->hidden && d->section && strcmp(d->section, section) == 0)
                                man_option(f, d);
                }
        }
        if (doc_man_section)
                doc_man_section(f);
        fputs(".SH ENVIRONMENT\n"
              ".TP\n.B GUNICORN_CMD_ARGS\n"
              "Options, split as a shell does, above the config file and below the command line.\n"
              ".TP\n.B GCORN_CMD_ARGS\n"
              "The same, read after GUNICORN_CMD_ARGS, so that its options win.\n"
              ".TP\n.B PORT\n"
              "The default bind address is 0.0.0.0:$PORT.\n"
              ".TP\n.B WEB_CONCURRENCY\n"
              "The default number of workers.\n"
              ".SH SEE ALSO\n"
              "gunicorn(1), systemd.service(5)\n", f);
}

bool settings_has(const char *name) {
        return setting_find(name) != NULL;
}

/* Edit distance with adjacent transpositions, capped: anything above 2 is 3. */
static unsigned typo_distance(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        unsigned d[64][64];

        if (la >= 64 || lb >= 64 || (la > lb ? la - lb : lb - la) > 2)
                return 3;
        for (size_t i = 0; i <= la; i++)
                d[i][0] = (unsigned) i;
        for (size_t j = 0; j <= lb; j++)
                d[0][j] = (unsigned) j;
        for (size_t i = 1; i <= la; i++)
                for (size_t j = 1; j <= lb; j++) {
                        unsigned cost = a[i - 1] != b[j - 1];

                        d[i][j] = MIN(MIN(d[i - 1][j] + 1, d[i][j - 1] + 1), d[i - 1][j - 1] + cost);
                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                                d[i][j] = MIN(d[i][j], d[i - 2][j - 2] + 1);
                }
        return MIN(d[la][lb], 3u);
}

const char *settings_suggest(const char *name) {
        const char *best = NULL;
        unsigned best_distance = 3;

        /* Two edits turn any two-letter name into any other. */
        if (strlen(name) < 3)
                return NULL;
        for (size_t i = 0; i < SETTINGS_COUNT; i++) {
                const SettingDef *d = &setting_table[i];
                unsigned k;

                if (!is_settable(d) || d->hidden)
                        continue;
                k = typo_distance(name, d->name);
                if (k < best_distance) {
                        best_distance = k;
                        best = d->name;
                }
        }
        return best;
}

int settings_foreach(const Settings *s,
                     int (*f)(const char *name, SettingValueKind kind, const void *value, void *userdata),
                     void *userdata) {
        for (size_t i = 0; i < SETTINGS_COUNT; i++) {
                const SettingDef *d = &setting_table[i];
                const void *field;
                int64_t n;
                int r;

                if (!is_settable(d))
                        continue;
                field = (const char *) s + d->offset;
                switch (d->type) {
                case SETTING_STRING:
                        r = f(d->name, SETTING_VALUE_STRING, *(char *const *) field, userdata);
                        break;
                case SETTING_INT:
                        n = *(const int *) field;
                        r = f(d->name, SETTING_VALUE_INT, &n, userdata);
                        break;
                case SETTING_INT64:
                        r = f(d->name, SETTING_VALUE_INT, field, userdata);
                        break;
                case SETTING_BOOL:
                        r = f(d->name, SETTING_VALUE_BOOL, field, userdata);
                        break;
                case SETTING_LIST:
                case SETTING_COMMA_LIST:
                        r = f(d->name, SETTING_VALUE_LIST, *(char **const *) field, userdata);
                        break;
                default:
                        r = 0;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}
