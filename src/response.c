/* response.c: to be written */
typedef int gcorn_response_placeholder;
