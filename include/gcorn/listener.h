/* Listening sockets: bound from --bind specs ("HOST:PORT", ":PORT", "[::1]:PORT", "HOST",
 * "unix:PATH", "fd://N"). Listeners are the only fds meant to outlive exec/fork on purpose;
 * they are opened by the master and shared by every worker. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct Listener {
        int fd;
        char *unix_path;                /* owned; set when gcorn created the socket file */
        bool is_unix;
        bool inherited;                 /* fd://N: never closed by a retiring worker */
        bool nodelay;                   /* TCP_NODELAY set here, so accepted sockets inherit it */
        char host[64];                  /* numeric address as bound, for SERVER_NAME */
        char port[8];                   /* actual port (port 0 resolved), for SERVER_PORT */
        char url[160];                  /* "http://127.0.0.1:8000", "http://[::1]:8000", "unix:/run/x.sock" */
        char origin[96];                /* " (fd 3 \"http\" from systemd)" or "" */
        char store_name[16];            /* "gcorn-N" while systemd's fd store holds it, else "" */
        char fdname[64];                /* FileDescriptorName= of a socket from systemd, or "" */
        char *bind;                     /* owned: the --bind value it was opened from; a binary
                                         * upgrade passes it on with the socket */
} Listener;

/* Parses one --bind value without touching the network; for tests and validation.
 * Kinds: 't' TCP (host/port set, host "" means all addresses), 'u' UNIX (path), 'f' fd,
 * 'n' an inherited socket by its FileDescriptorName= (name in path). */
typedef struct BindSpec {
        char kind;
        char host[256];
        char port[16];
        char path[108];
        int fd;
} BindSpec;

int listener_parse_spec(const char *spec, BindSpec *ret);

#include "gcorn/notify.h"

/* --reuse-port: SO_REUSEPORT on the TCP sockets opened from here on. */
void listener_set_reuse_port(bool on);

/* The sockets systemd's fd store gave back (notify_stored()): a TCP or UNIX spec bound to
 * the same address takes its stored socket instead of binding a new one. */
void listener_set_stored(const InheritedFd *stored, size_t n);

/* After listener_open_all(), under systemd with an fd store: drops from the store the stored
 * sockets no spec took (FDSTOREREMOVE=1) and closes them, and stores the sockets bound
 * fresh, so that the next master of a restart finds them all. */
void listener_sync_store(Listener *l, size_t n);

/* Opens every spec. With sockets from systemd (inherited), all of them are used when
 * use_all_inherited (no --bind was given), and "fd://NAME" picks one by name otherwise.
 * Inherited sockets are checked, never bound or listen()ed again. On failure closes what it
 * opened, returns -errno and sets *ret_error to one clear line. */
int listener_open_all(char **specs, int backlog, const InheritedFd *inherited, size_t n_inherited,
                      bool use_all_inherited, Listener **ret, size_t *ret_n, char **ret_error);

/* Closes the sockets gcorn bound itself, at the start of a stop: once the master and every
 * worker closed theirs, the kernel refuses new connections instead of queueing them for a
 * server that is going away. Sockets from systemd stay open (it queues for the next start).
 * Their fd is -1 afterwards; a UNIX socket file stays until listener_free_all(). */
void listener_close_bound(Listener *l, size_t n);

/* Closes the sockets; with unlink_paths the UNIX socket files gcorn created go too (master
 * on exit; workers must not unlink), except those of sockets in the fd store: the next
 * master serves on them. */
void listener_free_all(Listener *l, size_t n, bool unlink_paths);
