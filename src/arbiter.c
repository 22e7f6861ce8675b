/* arbiter.c: to be written */
typedef int gcorn_arbiter_placeholder;
