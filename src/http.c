/* http.c: to be written */
typedef int gcorn_http_placeholder;
