/* Binding the --bind addresses. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "gcorn/listener.h"
#include "gcorn/log.h"
#include "gcorn/macro.h"

static int copy_str(char *dst, size_t cap, const char *src, size_t len) {
        if (len >= cap)
                return -ENAMETOOLONG;
        memcpy(dst, src, len);
        dst[len] = 0;
        return 0;
}

static int parse_port(const char *s) {
        char *end;
        long v;

        if (!*s)
                return -EINVAL;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end || v < 0 || v > 65535)
                return -EINVAL;
        return 0;
}

/* A host of only digits and dots is meant as an IPv4 address: one that does not parse
 * (999.1.1.1) is a typo to report, not a name to look up. inet_aton() takes the same
 * shorthands getaddrinfo() does ("127.1"). */
static bool bad_ipv4(const char *host) {
        struct in_addr a;

        if (!host[0] || host[strspn(host, "0123456789.")])
                return false;
        return inet_aton(host, &a) == 0;
}

/* As listener_parse_spec(), with why a spec is invalid in *ret_reason when that is more than
 * "it does not have the shape of an address". */
static int parse_spec(const char *spec, BindSpec *ret, const char **ret_reason) {
        BindSpec b = {};
        const char *colon;
        int r;

        *ret_reason = NULL;

        if (strncmp(spec, "unix:", 5) == 0) {
                b.kind = 'u';
                r = copy_str(b.path, sizeof(b.path), spec + 5, strlen(spec + 5));
                if (r < 0 || !b.path[0])
                        return -EINVAL;
        } else if (strncmp(spec, "fd://", 5) == 0) {
                const char *v = spec + 5;
                char *end;
                long fd;

                if (!*v)
                        return -EINVAL;
                if (*v >= '0' && *v <= '9') {
                        errno = 0;
                        fd = strtol(v, &end, 10);
                        if (errno || *end || fd < 0 || fd > 65535)
                                return -EINVAL;
                        b.kind = 'f';
                        b.fd = (int) fd;
                } else {
                        b.kind = 'n';
                        r = copy_str(b.path, sizeof(b.path), v, strlen(v));
                        if (r < 0)
                                return r;
                }
        } else if (spec[0] == '[') {
                const char *close = strchr(spec, ']');

                if (!close)
                        return -EINVAL;
                b.kind = 't';
                r = copy_str(b.host, sizeof(b.host), spec + 1, (size_t) (close - spec - 1));
                if (r < 0)
                        return r;
                if (close[1] == ':')
                        r = copy_str(b.port, sizeof(b.port), close + 2, strlen(close + 2));
                else if (close[1] == 0)
                        r = copy_str(b.port, sizeof(b.port), "8000", 4);
                else
                        r = -EINVAL;
                if (r < 0)
                        return r;
        } else {
                b.kind = 't';
                colon = strrchr(spec, ':');
                if (colon && strchr(spec, ':') != colon) {
                        *ret_reason = "an IPv6 address needs brackets, as in [::1]:8000";
                        return -EINVAL;
                }
                if (colon) {
                        r = copy_str(b.host, sizeof(b.host), spec, (size_t) (colon - spec));
                        if (r >= 0)
                                r = copy_str(b.port, sizeof(b.port), colon + 1, strlen(colon + 1));
                } else {
                        r = copy_str(b.host, sizeof(b.host), spec, strlen(spec));
                        if (r >= 0)
                                r = copy_str(b.port, sizeof(b.port), "8000", 4);
                }
                if (r < 0)
                        return r;
        }
        if (b.kind == 't' && parse_port(b.port) < 0) {
                *ret_reason = "the port must be a number from 0 to 65535";
                return -EINVAL;
        }
        if (b.kind == 't' && bad_ipv4(b.host)) {
                *ret_reason = "the host is not an IPv4 address";
                return -EINVAL;
        }
        *ret = b;
        return 0;
}

int listener_parse_spec(const char *spec, BindSpec *ret) {
        const char *reason;

        return parse_spec(spec, ret, &reason);
}

static void tune_tcp(Listener *l) {
        int one = 1, defer = 0;
        socklen_t len = sizeof(defer);

        /* Linux copies TCP_NODELAY to every socket accept() returns: one call here instead of
         * one per connection. */
        l->nodelay = setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
        /* A connection waits in the kernel until its first bytes arrive (a silent one for
         * about a second), so accept() hands over a request ready to read, not an empty
         * socket to add to epoll and wait on. A value the socket unit set (DeferAcceptSec=)
         * is kept. */
        if (getsockopt(l->fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, &len) == 0 && defer == 0)
                (void) setsockopt(l->fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof(one));
}

static void describe(Listener *l) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);

        if (l->is_unix) {
                struct sockaddr_un *un = (struct sockaddr_un *) &ss;

                if (getsockname(l->fd, (struct sockaddr *) &ss, &len) == 0 && len > sizeof(sa_family_t))
                        snprintf(l->url, sizeof(l->url), "unix:%s", un->sun_path);
                else
                        snprintf(l->url, sizeof(l->url), "unix:%s", strna(l->unix_path));
                return;
        }
        if (getsockname(l->fd, (struct sockaddr *) &ss, &len) < 0)
                return;
        if (ss.ss_family == AF_INET6) {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;

                inet_ntop(AF_INET6, &in6->sin6_addr, l->host, sizeof(l->host));
                snprintf(l->port, sizeof(l->port), "%u", ntohs(in6->sin6_port));
                snprintf(l->url, sizeof(l->url), "http://[%s]:%s", l->host, l->port);
        } else {
                struct sockaddr_in *in = (struct sockaddr_in *) &ss;

                inet_ntop(AF_INET, &in->sin_addr, l->host, sizeof(l->host));
                snprintf(l->port, sizeof(l->port), "%u", ntohs(in->sin_port));
                snprintf(l->url, sizeof(l->url), "http://%s:%s", l->host, l->port);
        }
}

/* Which step failed, for the message: name resolution (getaddrinfo()'s own error in gai),
 * or a system call on the socket ("bind to": "Can't bind to 127.0.0.1:80: ..."). */
typedef struct OpenFailure {
        int gai;
        const char *call;
        int stored;             /* on success: the fd store's socket taken, or -1 */
} OpenFailure;

/* --reuse-port: several servers may bind the same address; the kernel spreads connections. */
static bool reuse_port;

void listener_set_reuse_port(bool on) {
        reuse_port = on;
}

/* The fd store's sockets, and which spec took each one. */
static const InheritedFd *stored;
static size_t n_stored;
static bool *stored_taken;

void listener_set_stored(const InheritedFd *s, size_t n) {
        stored_taken = mfree(stored_taken);
        stored = NULL;
        n_stored = 0;
        if (n == 0)
                return;
        stored_taken = calloc(n, sizeof(bool));
        if (!stored_taken)
                return;         /* then every spec binds anew, and the old ones are dropped */
        stored = s;
        n_stored = n;
}

static bool same_address(const struct sockaddr *a, const struct sockaddr_storage *b) {
        if (a->sa_family != b->ss_family)
                return false;
        if (a->sa_family == AF_INET) {
                const struct sockaddr_in *x = (const struct sockaddr_in *) a, *y = (const struct sockaddr_in *) b;

                return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
        }
        if (a->sa_family == AF_INET6) {
                const struct sockaddr_in6 *x = (const struct sockaddr_in6 *) a, *y = (const struct sockaddr_in6 *) b;

                return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
                       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
        }
        if (a->sa_family == AF_UNIX) {
                const struct sockaddr_un *x = (const struct sockaddr_un *) a, *y = (const struct sockaddr_un *) b;

                return strncmp(x->sun_path, y->sun_path, sizeof(x->sun_path)) == 0;
        }
        return false;
}

/* A stored listening socket bound to addr, taken for this spec: listen() again applies the
 * backlog of this start (the socket is gcorn's own, not a socket unit's). Returns its index,
 * or -1. */
static int take_stored(const struct sockaddr *addr, int backlog) {
        for (size_t i = 0; i < n_stored; i++) {
                struct sockaddr_storage ss = {};
                socklen_t len = sizeof(ss);
                int type = 0, listening = 0;
                socklen_t olen = sizeof(type);

                if (stored_taken[i])
                        continue;
                if (getsockname(stored[i].fd, (struct sockaddr *) &ss, &len) < 0 || !same_address(addr, &ss))
                        continue;
                if (getsockopt(stored[i].fd, SOL_SOCKET, SO_TYPE, &type, &olen) < 0 || type != SOCK_STREAM)
                        continue;
                olen = sizeof(listening);
                if (getsockopt(stored[i].fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &olen) < 0 || !listening)
                        continue;
                if (listen(stored[i].fd, backlog) < 0 ||
                    fcntl(stored[i].fd, F_SETFL, fcntl(stored[i].fd, F_GETFL) | O_NONBLOCK) < 0)
                        continue;
                stored_taken[i] = true;
                return (int) i;
        }
        return -1;
}

static int open_tcp(const BindSpec *b, int backlog, int *ret_fd, OpenFailure *ret_failure) {
        struct addrinfo hints = {
                .ai_family = AF_UNSPEC,
                .ai_socktype = SOCK_STREAM,
                .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
        };
        struct addrinfo *res = NULL;
        int r, last = -EADDRNOTAVAIL;

        r = getaddrinfo(b->host[0] ? b->host : "0.0.0.0", b->port, &hints, &res);
        if (r != 0) {
                if (r == EAI_SYSTEM) {
                        ret_failure->call = "resolve";
                        return -errno;
                }
                ret_failure->gai = r;
                return -EADDRNOTAVAIL;
        }

        /* The first address bind() would take, if the fd store has a socket bound to it. */
        for (struct addrinfo *ai = res; ai && n_stored > 0; ai = ai->ai_next) {
                int i = take_stored(ai->ai_addr, backlog);

                if (i >= 0) {
                        *ret_fd = stored[i].fd;
                        ret_failure->stored = i;
                        freeaddrinfo(res);
                        return 0;
                }
        }

        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                _cleanup_close_ int fd = -1;
                int one = 1;

                fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (fd < 0) {
                        last = -errno;
                        ret_failure->call = "create a socket for";
                        continue;
                }
                (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
                        last = -errno;
                        ret_failure->call = "set SO_REUSEPORT on";
                        continue;
                }
                if (ai->ai_family == AF_INET6)
                        (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
                if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                        last = -errno;
                        ret_failure->call = "bind to";
                        continue;
                }
                if (listen(fd, backlog) < 0) {
                        last = -errno;
                        ret_failure->call = "listen on";
                        continue;
                }
                *ret_fd = TAKE_FD(fd);
                freeaddrinfo(res);
                return 0;
        }
        freeaddrinfo(res);
        return last;
}

static int open_unix(const BindSpec *b, int backlog, int *ret_fd, OpenFailure *ret_failure) {
        struct sockaddr_un un = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        struct stat st;

        memcpy(un.sun_path, b->path, strlen(b->path));
        /* The stored socket, as long as its file is still there to connect to. */
        if (n_stored > 0 && lstat(b->path, &st) == 0 && S_ISSOCK(st.st_mode)) {
                int i = take_stored((struct sockaddr *) &un, backlog);

                if (i >= 0) {
                        *ret_fd = stored[i].fd;
                        ret_failure->stored = i;
                        return 0;
                }
        }
        ret_failure->call = "create a socket for";
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* A socket file left by a previous run would make bind() fail; anything that is not a
         * socket is left alone. */
        if (lstat(b->path, &st) == 0 && S_ISSOCK(st.st_mode))
                (void) unlink(b->path);
        ret_failure->call = "bind to";
        if (bind(fd, (struct sockaddr *) &un, sizeof(un)) < 0)
                return -errno;
        ret_failure->call = "listen on";
        if (listen(fd, backlog) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int check_inherited(int fd) {
        int type = 0, listening = 0;
        socklen_t len = sizeof(type);

        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
                return -errno;
        len = sizeof(listening);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0)
                return -errno;
        if (type != SOCK_STREAM || !listening)
                return -EPROTOTYPE;
        return 0;
}

static const InheritedFd *find_inherited(const InheritedFd *inh, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(inh[i].name, name) == 0)
                        return &inh[i];
        return NULL;
}

static int open_one(const char *spec, int backlog, const InheritedFd *inh, size_t n_inh, Listener *l,
                    char **ret_error) {
        const InheritedFd *named = NULL;
        OpenFailure failure = { .stored = -1 };
        const char *reason;
        BindSpec b;
        int r, fd = -1;

        r = parse_spec(spec, &b, &reason);
        if (r < 0 && reason)
                return asprintf(ret_error, "Invalid bind address: '%s': %s", spec, reason) < 0 ? -ENOMEM : -EINVAL;
        if (r < 0)
                return asprintf(ret_error, "Invalid bind address: '%s'", spec) < 0 ? -ENOMEM : -EINVAL;

        if (b.kind == 'n') {
                named = find_inherited(inh, n_inh, b.path);
                if (!named)
                        return asprintf(ret_error, "No socket named '%s' was passed by systemd (%s)", b.path, spec) < 0
                                       ? -ENOMEM : -ENOENT;
                b.kind = 'f';
                b.fd = named->fd;
        }
        for (size_t i = 0; !named && b.kind == 'f' && i < n_inh; i++)
                if (inh[i].fd == b.fd)
                        named = &inh[i];

        switch (b.kind) {
        case 'u':
                r = open_unix(&b, backlog, &fd, &failure);
                break;
        case 'f':
                r = check_inherited(b.fd);
                if (r >= 0)
                        fd = b.fd;
                /* Workers accept until EAGAIN: a blocking listener would hang them in
                 * accept(). The flag is on the shared file description, which systemd does
                 * not accept on itself (Accept=no). */
                if (r >= 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
                        r = -errno;
                break;
        default:
                r = open_tcp(&b, backlog, &fd, &failure);
        }
        if (r < 0) {
                if (b.kind == 'f' && r == -EPROTOTYPE)
                        return asprintf(ret_error, "File descriptor %d%s%s%s is not a listening stream socket", b.fd,
                                        named ? " (\"" : "", named ? named->name : "",
                                        named ? "\" from systemd)" : "") < 0 ? -ENOMEM : r;
                if (b.kind == 'f')
                        return asprintf(ret_error, "File descriptor %d is not a listening stream socket: %s", b.fd,
                                        strerror(-r)) < 0 ? -ENOMEM : r;
                if (failure.gai)
                        return asprintf(ret_error, "Can't resolve '%s' (bind address '%s'): %s",
                                        b.host[0] ? b.host : "0.0.0.0", spec, gai_strerror(failure.gai)) < 0
                                       ? -ENOMEM : r;
                return asprintf(ret_error, "Can't %s %s: %s", failure.call ? failure.call : "open",
                                spec, strerror(-r)) < 0 ? -ENOMEM : r;
        }

        *l = (Listener) { .fd = fd, .is_unix = b.kind == 'u', .inherited = b.kind == 'f' };
        if (named) {
                snprintf(l->origin, sizeof(l->origin), " (fd %d \"%.60s\" from systemd)", named->fd, named->name);
                snprintf(l->fdname, sizeof(l->fdname), "%s", named->name);
        }
        if (failure.stored >= 0) {
                const InheritedFd *f = &stored[failure.stored];

                snprintf(l->store_name, sizeof(l->store_name), "%s", f->name);
                snprintf(l->origin, sizeof(l->origin), " (fd %d \"%.15s\" from the fd store)", f->fd, f->name);
        }
        l->bind = strdup(spec);
        if (!l->bind) {
                if (b.kind == 'u' && failure.stored < 0)
                        (void) unlink(b.path);
                if (b.kind != 'f')
                        safe_close(fd);
                return -ENOMEM;
        }
        if (b.kind == 'f') {
                struct sockaddr_storage ss;
                socklen_t len = sizeof(ss);

                if (getsockname(fd, (struct sockaddr *) &ss, &len) == 0 && ss.ss_family == AF_UNIX)
                        l->is_unix = true;
        }
        if (!l->is_unix)
                tune_tcp(l);
        if (b.kind == 'u') {
                l->unix_path = strdup(b.path);
                if (!l->unix_path) {
                        if (failure.stored < 0)
                                (void) unlink(b.path);
                        safe_close(fd);
                        l->bind = mfree(l->bind);
                        return -ENOMEM;
                }
        }
        describe(l);
        return 0;
}

int listener_open_all(char **specs, int backlog, const InheritedFd *inherited, size_t n_inherited,
                      bool use_all_inherited, Listener **ret, size_t *ret_n, char **ret_error) {
        _cleanup_strv_free_ char **names = NULL;
        Listener *l = NULL;
        size_t n = 0, count = 0;
        int r;

        if (use_all_inherited && n_inherited > 0) {
                /* Every socket the unit passed; the log names each one. */
                names = calloc(n_inherited + 1, sizeof(char *));
                if (!names)
                        return -ENOMEM;
                for (size_t i = 0; i < n_inherited; i++)
                        if (asprintf(&names[i], "fd://%d", inherited[i].fd) < 0)
                                return -ENOMEM;
                specs = names;
        }
        for (char **s = specs; s && *s; s++)
                count++;
        l = calloc(MAX(count, 1u), sizeof(Listener));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < count; i++) {
                r = open_one(specs[i], backlog, inherited, n_inherited, &l[i], ret_error);
                if (r < 0) {
                        /* open_one() leaves nothing open when it fails. */
                        listener_free_all(l, n, true);
                        return r;
                }
                n++;
        }
        *ret = l;
        *ret_n = n;
        return 0;
}

/* The first "gcorn-N" that neither a listener nor a socket the store gave back at this start
 * uses: a name shared by two stored sockets would make FDSTOREREMOVE=1 drop both. */
static void free_store_name(const Listener *l, size_t n, char *buf, size_t size) {
        for (unsigned k = 0;; k++) {
                bool used = false;

                snprintf(buf, size, NOTIFY_FDSTORE_PREFIX "%u", k);
                for (size_t i = 0; i < n && !used; i++)
                        used = strcmp(l[i].store_name, buf) == 0;
                for (size_t i = 0; i < n_stored && !used; i++)
                        used = strcmp(stored[i].name, buf) == 0;
                if (!used)
                        return;
        }
}

void listener_sync_store(Listener *l, size_t n) {
        for (size_t i = 0; i < n_stored; i++) {
                if (stored_taken[i])
                        continue;
                /* Bound to an address no --bind names any more: the store lets it go, and with
                 * the last copy closed the kernel refuses what would have queued on it. */
                log_info("Dropping the socket stored as %s (fd %d): no bind address matches it", stored[i].name,
                         stored[i].fd);
                notify_fdstore_remove(stored[i].name);
                (void) close(stored[i].fd);
        }
        if (!notify_fdstore_enabled())
                return;
        for (size_t i = 0; i < n; i++) {
                char name[sizeof(l[i].store_name)];
                int r;

                if (l[i].inherited || l[i].store_name[0] || l[i].fd < 0)
                        continue;
                free_store_name(l, n, name, sizeof(name));
                r = notify_fdstore_add(l[i].fd, name);
                if (r < 0) {
                        log_warning("Cannot keep %s in the fd store: %s", l[i].url, strerror(-r));
                        continue;
                }
                memcpy(l[i].store_name, name, sizeof(name));
                snprintf(l[i].origin, sizeof(l[i].origin), " (stored as \"%s\")", name);
        }
}

void listener_free_all(Listener *l, size_t n, bool unlink_paths) {
        if (!l)
                return;
        for (size_t i = 0; i < n; i++) {
                if (!l[i].inherited)
                        safe_close(l[i].fd);
                if (unlink_paths && l[i].unix_path && !l[i].store_name[0])
                        (void) unlink(l[i].unix_path);
                free(l[i].unix_path);
                free(l[i].bind);
        }
        free(l);
}

void listener_close_bound(Listener *l, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!l[i].inherited)
                        l[i].fd = safe_close(l[i].fd);
}
