/* python.c: to be written */
typedef int gcorn_python_placeholder;
