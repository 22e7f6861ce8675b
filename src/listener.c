/* listener.c: to be written */
typedef int gcorn_listener_placeholder;
