/* input.c: to be written */
typedef int gcorn_input_placeholder;
