/* The app's logging, routed to gcorn's error log (and so to the journal with the right
 * priority): wsgi.errors, and Python's logging.lastResort, the handler that logging uses
 * when the app configured none. An app that configures logging itself keeps its handlers. */
#pragma once

/* Installs the bridge in this process; takes the GIL itself. Returns -EIO when Python
 * raised (logged). */
int pylog_install(void);

/* The wsgi.errors stream (a borrowed reference; NULL before pylog_install()). GIL held. */
void *pylog_errors(void);
