/* filewrapper.c: to be written */
typedef int gcorn_filewrapper_placeholder;
