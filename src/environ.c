/* environ.c: to be written */
typedef int gcorn_environ_placeholder;
