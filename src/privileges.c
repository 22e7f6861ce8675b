/* Dropping privileges in the workers. The order is fixed: supplementary groups and the
 * group while still root, the user last, and setres*id() so that no saved id lets the app
 * climb back. */
#include <ctype.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gcorn/log.h"
#include "gcorn/macro.h"
#include "gcorn/privileges.h"

typedef struct Owner {
        uid_t uid;
        gid_t gid;
        bool change;                    /* root, and something to switch to */
        char name[256];                 /* the user's name for initgroups(), "" when unknown */
} Owner;

static bool all_digits(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!isdigit((unsigned char) *s))
                        return false;
        return true;
}

static int parse_id(const char *s, unsigned *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (*end || errno || v >= (unsigned long) (uid_t) -1)
                return -ERANGE;
        *ret = (unsigned) v;
        return 0;
}

int privileges_check_user(const char *value, char **ret_value, char *reason, size_t reason_size) {
        unsigned id;

        (void) ret_value;
        if (all_digits(value)) {
                if (parse_id(value, &id) < 0) {
                        snprintf(reason, reason_size, "not a valid user id");
                        return -EINVAL;
                }
                return 0;
        }
        if (!getpwnam(value)) {
                snprintf(reason, reason_size, "no such user");
                return -EINVAL;
        }
        return 0;
}

int privileges_check_group(const char *value, char **ret_value, char *reason, size_t reason_size) {
        unsigned id;

        (void) ret_value;
        if (all_digits(value)) {
                if (parse_id(value, &id) < 0) {
                        snprintf(reason, reason_size, "not a valid group id");
                        return -EINVAL;
                }
                return 0;
        }
        if (!getgrnam(value)) {
                snprintf(reason, reason_size, "no such group");
                return -EINVAL;
        }
        return 0;
}

/* int(value, 0) with Gunicorn's twist: a leading zero followed by a digit is octal, as
 * "022" is in a shell. */
int privileges_check_umask(const char *value, char **ret_value, char *reason, size_t reason_size) {
        const char *p = value;
        unsigned long v;
        char *end, *out;
        int base = 10;

        if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) {
                base = 8;
                p += 2;
        } else if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
                base = 16;
                p += 2;
        } else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B')) {
                base = 2;
                p += 2;
        } else if (p[0] == '0' && isdigit((unsigned char) p[1])) {
                base = 8;
                p += 1;
        }
        errno = 0;
        v = isxdigit((unsigned char) *p) ? strtoul(p, &end, base) : 0;
        if (!isxdigit((unsigned char) *p) || *end || errno) {
                snprintf(reason, reason_size, "expected a number such as 0, 0o22, 022 or 18");
                return -EINVAL;
        }
        if (v > 0777) {
                snprintf(reason, reason_size, "must be from 0 to 0o777");
                return -EINVAL;
        }
        if (asprintf(&out, "%lu", v) < 0)
                return -ENOMEM;
        *ret_value = out;
        return 0;
}

mode_t privileges_umask(const Settings *s) {
        return s->umask ? (mode_t) strtoul(s->umask, NULL, 10) & 0777 : 0;
}

/* Resolves user and group (checked when they were set, but the databases may have changed
 * since). Returns -EINVAL with a message. */
static int owner_resolve(const Settings *s, Owner *ret, char **ret_error) {
        Owner o = { .uid = geteuid(), .gid = getegid() };
        bool uid_known = false;
        struct passwd *pw = NULL;
        unsigned id;
        int r;

        if (s->user) {
                if (all_digits(s->user) && parse_id(s->user, &id) == 0) {
                        o.uid = (uid_t) id;
                        pw = getpwuid(o.uid);
                } else {
                        pw = getpwnam(s->user);
                        if (!pw) {
                                r = asprintf(ret_error, "No such user: '%s'", s->user);
                                goto fail;
                        }
                        o.uid = pw->pw_uid;
                }
                uid_known = true;
                if (pw)
                        snprintf(o.name, sizeof(o.name), "%s", pw->pw_name);
        }
        if (s->group) {
                struct group *gr = NULL;

                if (all_digits(s->group) && parse_id(s->group, &id) == 0)
                        o.gid = (gid_t) id;
                else if ((gr = getgrnam(s->group)))
                        o.gid = gr->gr_gid;
                else {
                        r = asprintf(ret_error, "No such group: '%s'", s->group);
                        goto fail;
                }
        } else if (uid_known && pw)
                /* Not root's group: a worker that kept gid 0 could still write what root's
                 * group may. */
                o.gid = pw->pw_gid;
        else if (uid_known && o.uid != geteuid()) {
                r = asprintf(ret_error, "user %s has no entry in the user database, so it has no group: set group too",
                             s->user);
                goto fail;
        }
        o.change = geteuid() == 0 && (o.uid != geteuid() || o.gid != getegid() || (s->initgroups && o.name[0]));
        *ret = o;
        return 0;
fail:
        if (r < 0)
                *ret_error = NULL;
        return r < 0 ? -ENOMEM : -EINVAL;
}

int privileges_validate(const Settings *s, char **ret_error) {
        Owner o;
        int r;

        r = owner_resolve(s, &o, ret_error);
        if (r < 0)
                return r;
        if (geteuid() == 0)
                return 0;
        /* Under User= or DynamicUser= the service manager already chose the user: a process
         * that is not root cannot switch, and running as someone else than configured would
         * be wrong. */
        if (s->user && o.uid != geteuid())
                r = asprintf(ret_error,
                             "user '%s' needs root, but gcorn runs as uid %u: set User= (or DynamicUser=) in the "
                             "unit instead, or leave user unset",
                             s->user, (unsigned) geteuid());
        else if (s->group && o.gid != getegid())
                r = asprintf(ret_error,
                             "group '%s' needs root, but gcorn runs as gid %u: set Group= in the unit instead, or "
                             "leave group unset",
                             s->group, (unsigned) getegid());
        else
                return 0;
        if (r < 0) {
                *ret_error = NULL;
                return -ENOMEM;
        }
        return -EINVAL;
}

static void chown_one(const char *what, const char *path, const Owner *o) {
        struct stat st;

        /* Regular files only: root could give away /dev/null or a terminal. A file that
         * cannot change hands (a read-only mount) is left as it is; the workers then keep
         * the descriptor they have. */
        if (!path || strcmp(path, "-") == 0 || stat(path, &st) < 0 || !S_ISREG(st.st_mode))
                return;
        if (chown(path, o->uid, o->gid) < 0)
                log_debug_errno(errno, "Cannot give %s %s to uid %u: %m", what, path, (unsigned) o->uid);
}

void privileges_prepare(const Settings *s, const Listener *l, size_t n) {
        _cleanup_free_ char *error = NULL;
        Owner o;

        if (s->initgroups && !s->user)
                log_warning("initgroups has no effect without user");
        if (owner_resolve(s, &o, &error) < 0 || !o.change)
                return;
        chown_one("the error log", s->errorlog, &o);
        chown_one("the access log", s->accesslog, &o);
        for (size_t i = 0; i < n; i++)
                if (l[i].unix_path && chown(l[i].unix_path, o.uid, o.gid) < 0)
                        log_warning_errno(errno, "Cannot give socket %s to uid %u: %m", l[i].unix_path,
                                          (unsigned) o.uid);
}

int privileges_drop(const Settings *s) {
        _cleanup_free_ char *error = NULL;
        Owner o;
        int r;

        r = owner_resolve(s, &o, &error);
        if (r < 0)
                return log_error_errno(r, "%s", error ? error : "out of memory");
        if (!o.change)
                return 0;
        if (s->initgroups && o.name[0]) {
                if (initgroups(o.name, o.gid) < 0)
                        return log_error_errno(errno, "initgroups(%s, %u) failed: %m", o.name, (unsigned) o.gid);
        } else if (setgroups(1, &o.gid) < 0)
                return log_error_errno(errno, "setgroups(%u) failed: %m", (unsigned) o.gid);
        if (setresgid(o.gid, o.gid, o.gid) < 0)
                return log_error_errno(errno, "setresgid(%u) failed: %m", (unsigned) o.gid);
        if (o.uid != geteuid() && setresuid(o.uid, o.uid, o.uid) < 0)
                return log_error_errno(errno, "setresuid(%u) failed: %m", (unsigned) o.uid);
        return 0;
}
