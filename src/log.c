/* log.c: to be written */
typedef int gcorn_log_placeholder;
