/* user, group, umask and initgroups: the master keeps its privileges (it binds the sockets
 * and reopens the logs), each worker drops them right after fork(), before the app is
 * imported, as Gunicorn's workers do. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "gcorn/listener.h"
#include "gcorn/settings.h"

/* Setting checks (SettingCheck): a user or group name that exists, or a number; a umask as
 * Gunicorn reads it (int(value, 0), "022" octal), rewritten to decimal. */
int privileges_check_user(const char *value, char **ret_value, char *reason, size_t reason_size);
int privileges_check_group(const char *value, char **ret_value, char *reason, size_t reason_size);
int privileges_check_umask(const char *value, char **ret_value, char *reason, size_t reason_size);

/* The umask setting as a mode mask. */
mode_t privileges_umask(const Settings *s);

/* Whether the settings can be carried out by this process: a process that is not root can
 * only "switch" to the user and group it already runs as. On -EINVAL *ret_error (owned by
 * the caller) is one line naming the unit setting to use instead. */
int privileges_validate(const Settings *s, char **ret_error);

/* Before workers are forked, at start and after a reload: gives the files the workers
 * reopen (the error and access logs on USR1) and the UNIX sockets gcorn created to the
 * workers' user and group, as Gunicorn does, and warns about settings without effect.
 * Logs what fails. */
void privileges_prepare(const Settings *s, const Listener *l, size_t n);

/* In a new worker: the groups, then the user. Returns -errno, logged. */
int privileges_drop(const Settings *s);
