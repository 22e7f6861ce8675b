/* worker.c: to be written */
typedef int gcorn_worker_placeholder;
