/* request.c: to be written */
typedef int gcorn_request_placeholder;
