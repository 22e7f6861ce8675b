/* accesslog.c: to be written */
typedef int gcorn_accesslog_placeholder;
