/* Binary upgrade in place (USR2): the master checks the new binary with --check-config, then
 * execve()s it under the same PID. The listening sockets go to fds 3… described the way
 * systemd describes its own (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID), so the new image takes
 * them through sd_listen_fds_with_names() as from a socket unit. What it needs to adopt the
 * running workers (their table, the heartbeat memfd, where each listener came from) travels
 * in one more inherited memfd, the handoff, named by $GCORN_UPGRADE_FD.
 *
 * The handoff starts with a part every layout keeps: a magic number, the layout version and
 * the workers' PIDs. An image that does not know the version reads only that part: it starts
 * a fresh generation and retires those workers once it serves. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gcorn/listener.h"

/* The test suite also builds gcorn-layout-next, a gcorn whose handoff has the next layout,
 * to hand over to an image that cannot read it. */
#ifdef GCORN_LAYOUT_NEXT
#define UPGRADE_LAYOUT_VERSION 3
#else
#define UPGRADE_LAYOUT_VERSION 2
#endif
/* LISTEN_FDNAMES entry of a socket gcorn bound itself; the others keep systemd's name. */
#define UPGRADE_BOUND_NAME "gcorn-bound"
#define UPGRADE_WAITERS_MAX 16

typedef struct UpgradeWorker {
        pid_t pid;
        uint32_t generation;
        uint32_t slot;                  /* index in the heartbeat table */
        uint32_t booted;
        uint32_t term_sent;
        uint64_t spawned_ms;            /* CLOCK_MONOTONIC, the same in both images */
} UpgradeWorker;

/* What the master that executes the new image passes on. */
typedef struct UpgradeState {
        bool known;                     /* the layout was understood: everything below is set */
        char old_version[32];
        uint32_t generation, last_generation;
        uint64_t requests_done, timeouts, crashes;
        int heartbeat_fd;
        UpgradeWorker *workers;
        size_t n_workers;
        pid_t *pids;                    /* every worker (the part every layout keeps) */
        size_t n_pids;
        pid_t waiters[UPGRADE_WAITERS_MAX];     /* gcorn --upgrade processes to answer */
        size_t n_waiters;
} UpgradeState;

/* In main() before anything reads the environment: takes $GCORN_UPGRADE_FD and reads the
 * handoff. Returns 1 when this image was started by an upgrade, 0 when not, -errno. */
int upgrade_take_handoff(void);
/* The handoff, or NULL when this image was started otherwise. */
UpgradeState *upgrade_state(void);
/* Frees the handoff once the arbiter took what it needs. */
void upgrade_state_done(void);

/* Remembers how this image was started (binary path resolved against the start directory,
 * arguments, the start directory), which is how the new one is checked and executed. */
int upgrade_remember_command(int argc, char **argv);
const char *upgrade_binary(void);

/* The listeners passed by the previous image, with their origins restored. */
int upgrade_adopt_listeners(int backlog, Listener **ret, size_t *ret_n, char **ret_error);

/* The new binary run with the current arguments and --check-config, in the background. */
typedef struct UpgradeCheck {
        pid_t pid;                      /* 0: none running */
        int fd;                         /* its stdout and stderr */
        uint64_t deadline_ms;
        int status;                     /* wait status once done */
        char output[1024];
        size_t output_len;
} UpgradeCheck;

int upgrade_check_start(UpgradeCheck *c, uint64_t now_ms, int timeout_s);
/* Reads its output; returns 1 once it exited (or was killed at the deadline), else 0. */
int upgrade_check_poll(UpgradeCheck *c, uint64_t now_ms);
/* The output as one line, for the log. */
void upgrade_check_summary(const UpgradeCheck *c, char *buf, size_t cap);

/* Writes the handoff and execve()s the binary. Returns only on failure, -errno, with the
 * process as it was (fds, directory). */
int upgrade_exec(const Listener *listeners, size_t n_listeners, int heartbeat_fd, const UpgradeState *state);
