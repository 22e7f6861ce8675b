/* Talking to the service manager: socket activation, sd_notify and the watchdog.
 *
 * notify_setup() runs first thing in main(), before Python exists: it takes the inherited
 * listeners and remembers NOTIFY_SOCKET and the watchdog interval, then removes LISTEN_*,
 * NOTIFY_SOCKET and WATCHDOG_* from the environment so the app and what it spawns never see
 * them. Only the master sends messages (NotifyAccess=main). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct InheritedFd {
        int fd;
        char *name;                     /* FileDescriptorName=, owned */
} InheritedFd;

/* Returns the number of listeners from socket units (0 without socket activation) or -errno. */
int notify_setup(void);

/* The listeners systemd passed (valid after notify_setup()): those of socket units. */
const InheritedFd *notify_inherited(size_t *ret_n);

/* systemd's fd store (FileDescriptorStoreMax=): gcorn keeps the sockets it bound there under
 * the names "gcorn-N", so that a restarted master takes the same sockets back and no
 * connection is refused meanwhile. Those passed back at start, apart from the others: */
#define NOTIFY_FDSTORE_PREFIX "gcorn-"
const InheritedFd *notify_stored(size_t *ret_n);
bool notify_fdstore_name_is_ours(const char *name);

/* Under systemd with a store to put fds in: $FDSTORE (set by systemd 254 and later, and by
 * the standalone unit) is above 0, or the store gave fds back. systemd 252 would refuse
 * FDSTORE=1 from a unit without one, with a warning for each message. */
bool notify_fdstore_enabled(void);
/* FDSTORE=1 with the fd, named name. */
int notify_fdstore_add(int fd, const char *name);
/* FDSTOREREMOVE=1: systemd closes its copies of the fds stored under that name. */
void notify_fdstore_remove(const char *name);

bool notify_enabled(void);

/* 0 when the watchdog is off, else the interval at which WATCHDOG=1 is due. */
uint64_t notify_watchdog_interval_ms(void);

/* Sends "KEY=VALUE\n..." lines; failures are ignored (the manager may be gone). */
void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void notify_ready(const char *status);
/* RELOADING=1, and EXTEND_TIMEOUT_USEC=extend_usec: on systemd 252 the reload job runs
 * under TimeoutStartSec=, and a reload lasts as long as the new workers take to boot. */
void notify_reloading(uint64_t extend_usec);
void notify_stopping(const char *status);
void notify_watchdog(void);
void notify_status(const char *status);
void notify_extend_timeout(uint64_t usec);
void notify_failure(int error, const char *status);

/* The waiting reload command (ExecReload=): sends HUP to the master with a request for an
 * answer, and waits until it says the new generation serves (0) or the reload failed (-EIO).
 * The master says how long that may take (its boot_timeout and a margin); without word from
 * it within a few seconds the HUP is sent again, since the kernel merges a HUP with one that
 * is still pending. -ETIMEDOUT when no answer came in time, -ESRCH when the master died. */
int notify_reload_and_wait(int pid);
/* The same with another signal: USR2 for gcorn --upgrade, which waits until the upgraded
 * image's generation serves. */
int notify_signal_and_wait(int pid, int signo);

/* What the service manager gave at start, for the environment of the image a binary upgrade
 * executes: $NOTIFY_SOCKET (NULL without one) and the watchdog interval (0: off). */
const char *notify_socket_path(void);
uint64_t notify_watchdog_usec(void);

/* The values of the HUP sent by notify_reload_and_wait(): the first one, and a repeat, which
 * starts no reload of its own when the master already knows the sender. */
#define NOTIFY_RELOAD_COOKIE 0x67636f72
#define NOTIFY_RELOAD_COOKIE_AGAIN 0x67636f73
/* The master's answers, the value of a SIGRTMIN it queues to the waiting process: the
 * reload is done or failed, or NOTIFY_RELOAD_WAIT | seconds << 8: "registered; the answer
 * comes within that many seconds from now" (sent again when the reload starts). */
#define NOTIFY_RELOAD_OK 1
#define NOTIFY_RELOAD_FAILED 2
#define NOTIFY_RELOAD_WAIT 3
