/* conn.c: to be written */
typedef int gcorn_conn_placeholder;
