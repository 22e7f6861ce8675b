/* Gunicorn's server hooks (on_starting, pre_fork, pre_request, ...): the callables of the
 * config file, called at the moments Gunicorn 23 calls them, with objects that offer what
 * hooks use (server.pid, server.cfg.workers, server.log.info(), worker.age, req.path,
 * resp.status, ...).
 *
 * Master-side hooks run in the master, worker-side ones in the worker; the objects the
 * master made (server, the worker of pre_fork) reach the worker through fork(). Every
 * function takes the GIL itself unless it says "GIL held". A hook that raises is logged
 * with its traceback; the functions that return an int say so (-EINVAL) only where the
 * exception must stop the start. With no hook set each call returns at once. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "gcorn/conn.h"
#include "gcorn/request.h"
#include "gcorn/settings.h"

/* A module-level name of the config file. Returns 0 when name is not a hook, 1 when value
 * (a callable, or a "module.object" string, checked for its arity as Gunicorn does) was
 * taken for the load under way, or -EINVAL with one line in *ret_error (owned by the
 * caller). value: a PyObject *. GIL held. */
int hooks_config_value(const char *name, void *value, char **ret_error);

/* After a whole load of the settings (start or HUP) succeeded: its hooks replace the ones
 * in use (no config file: none). After a failed load, hooks_discard() keeps the old ones. */
void hooks_commit(void);
void hooks_discard(void);

/* Drops every reference, before Python is finalised. */
void hooks_done(void);

/* Master. n is the wanted number of workers (server.num_workers). on_starting also calls
 * nworkers_changed(server, workers, None), as Gunicorn's arbiter does when it is set up,
 * and reports the hooks that have no effect here. */
int hooks_on_starting(const Settings *s, int n);
int hooks_when_ready(const Settings *s, int n);
void hooks_on_reload(const Settings *s, int n);
void hooks_nworkers_changed(const Settings *s, int new_value, int old_value);
void hooks_on_exit(const Settings *s, int n);
void hooks_pre_exec(const Settings *s, int n);
/* Around fork(): pre_fork makes the worker object that post_fork (child) gets and that
 * hooks_forked() (parent) files under the new pid for child_exit. */
void hooks_pre_fork(const Settings *s, int n);
void hooks_forked(pid_t pid);
void hooks_child_exit(const Settings *s, int n, pid_t pid);
/* A worker booted: from now on a raising post_fork or post_worker_init (of a replacement
 * or a reload) is logged and the worker serves; before, it stops the start. */
void hooks_booted(void);

/* Worker. The int ones return -EINVAL, with the logged line also in error (size bytes),
 * when the hook raised while the server starts: the worker must not serve (exit
 * WORKER_BOOT_ERROR). post_worker_init also takes SIGABRT from the master to run
 * worker_abort when that is set. */
int hooks_post_fork(char *error, size_t size);
int hooks_post_worker_init(char *error, size_t size);
void hooks_worker_int(void);
/* Also drops every reference (the worker is ending). */
void hooks_worker_exit(void);

/* Set while pre_request or post_request is: the one test on the request path. */
extern bool hooks_per_request;

/* Runs pre_request(worker, req). Returns 0 with *ret_req (a new reference to req, for
 * hooks_post_request()), or -EINVAL with the hook's exception pending (the request fails
 * as when the app raises, as in Gunicorn). GIL held. */
int hooks_pre_request(const Request *r, const ConnInfo *info, void **ret_req);

/* Runs post_request(worker, req, environ, resp) and drops req. environ: the request's
 * (PyObject *) or NULL. status: the app's status line ("200 OK"), NULL when the app gave
 * none; headers: the app's. GIL held. */
void hooks_post_request(void *req, void *environ, const char *status, size_t status_len, int status_code,
                        const HttpHeader *headers, size_t n_headers, uint64_t sent);

/* The hooks' rows of the README's settings table, and their section of the man page. */
void hooks_print_markdown(FILE *f);
void hooks_print_man(FILE *f);

/* NAME, VALUE, ..., NULL: every hook and the repr() of the function in use ("None"), for
 * --print-config. NULL without memory. Takes the GIL itself. */
char **hooks_config_strv(void);
