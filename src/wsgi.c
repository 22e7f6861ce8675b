/* wsgi.c: to be written */
typedef int gcorn_wsgi_placeholder;
