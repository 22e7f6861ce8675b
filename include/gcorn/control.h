/* The control socket: a UNIX socket the master serves for `gcorn ctl`. Requests and answers
 * are JSON objects, one per line. The master's loop polls its fds and never waits on a
 * client: reads and writes are non-blocking and every buffer is bounded. */
#pragma once

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gcorn/heartbeat.h"
#include "gcorn/listener.h"
#include "gcorn/settings.h"

/* A command line is at most this long; a longer one gets an error and the connection ends. */
#define CONTROL_LINE_MAX (64 * 1024)
#define CONTROL_CLIENTS_MAX 16
#define CONTROL_POLLFDS_MAX (1 + CONTROL_CLIENTS_MAX)

typedef struct Control Control;

/* What the master looks like to a status request. */
typedef struct ControlWorker {
        pid_t pid;
        uint32_t generation;
        uint64_t spawned_ms;
        bool booted;
        bool stopping;                  /* told to stop */
        const HeartbeatSlot *slot;
} ControlWorker;

typedef struct ControlState {
        pid_t pid;
        uint32_t generation;
        int target;
        bool reloading;
        bool stopping;
        uint32_t reloads;               /* started since the master started */
        uint64_t timeouts, crashes;
        /* replaced after leaving of their own accord (since this image started) */
        uint64_t retired_max_requests, retired_memory, retired_reload;
        uint64_t started_ms;
        const Settings *settings;
        const Listener *listeners;
        size_t n_listeners;
        const ControlWorker *workers;
        size_t n_workers;
} ControlState;

/* What a command asks the master to do; the master does it after control_answer(). */
typedef struct ControlActions {
        int scale_to;                   /* 0: unchanged */
        bool reload;
        bool stop;
        bool reopen_logs;
        pid_t kill_pid;                 /* a worker to stop gracefully; 0: none */
} ControlActions;

/* The socket's path from the settings and the environment, as Gunicorn picks it (in
 * $RUNTIME_DIRECTORY/ctl first under systemd), or NULL when it is turned off. Sets *ret_explicit
 * when the user named the path. */
int control_socket_path(const Settings *s, char **ret, bool *ret_explicit);

/* Binds the socket; NULL in *ret (and one logged line) when it cannot be opened: the server
 * runs without it. */
int control_new(const Settings *s, Control **ret);
Control *control_free(Control *c);
/* In a forked worker: its copies of the fds go, the socket file stays. */
void control_forget(Control *c);

size_t control_pollfds(Control *c, struct pollfd *pfd, size_t cap);
/* Accepts, reads and writes what poll() said it can. Returns true when a request waits for
 * control_answer(). */
bool control_io(Control *c);
void control_answer(Control *c, const ControlState *st, ControlActions *ret_actions);

/* A reload started with generation gen: the clients waiting for "the next reload" wait for it. */
void control_reload_started(Control *c, uint32_t gen);
/* The reload to gen (0: all of them) ended. */
void control_reload_done(Control *c, uint32_t gen, bool ok);

/* `gcorn ctl ...`: the client. Returns the exit status. */
int control_client_main(int argc, char **argv);
