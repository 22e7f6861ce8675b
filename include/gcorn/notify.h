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

/* Returns the number of inherited listeners (0 without socket activation) or -errno. */
int notify_setup(void);

/* The listeners systemd passed (valid after notify_setup()). */
const InheritedFd *notify_inherited(size_t *ret_n);

bool notify_enabled(void);

/* 0 when the watchdog is off, else the interval at which WATCHDOG=1 is due. */
uint64_t notify_watchdog_interval_ms(void);

/* Sends "KEY=VALUE\n..." lines; failures are ignored (the manager may be gone). */
void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void notify_ready(const char *status);
void notify_reloading(void);
void notify_stopping(const char *status);
void notify_watchdog(void);
void notify_status(const char *status);
void notify_extend_timeout(uint64_t usec);
void notify_failure(int error, const char *status);

/* The waiting reload command (ExecReload=): sends HUP to the master with a request for an
 * answer, and waits until it says the new generation serves (0) or the reload failed (-EIO),
 * at most timeout_s seconds (-ETIMEDOUT). */
int notify_reload_and_wait(int pid, int timeout_s);

/* Marks a HUP as sent by notify_reload_and_wait(), and the master's answer signal. */
#define NOTIFY_RELOAD_COOKIE 0x67636f72
#define NOTIFY_RELOAD_OK 1
#define NOTIFY_RELOAD_FAILED 2
