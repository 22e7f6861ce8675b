/* The master loop. A signal handler writes each signal, with its sender, to a pipe so that
 * signals are plain data for the loop; booted workers wake it through another pipe; their
 * heartbeats are read from shared memory on every turn. */
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "gcorn/arbiter.h"
#include "gcorn/conn.h"
#include "gcorn/control.h"
#include "gcorn/handoff.h"
#include "gcorn/heartbeat.h"
#include "gcorn/hooks.h"
#include "gcorn/log.h"
#include "gcorn/logconfig.h"
#include "gcorn/macro.h"
#include "gcorn/metrics.h"
#include "gcorn/notify.h"
#include "gcorn/privileges.h"
#include "gcorn/proctitle.h"
#include "gcorn/python.h"
#include "gcorn/upgrade.h"
#include "gcorn/statsd.h"
#include "gcorn/worker.h"

/* How often the master looks at heartbeats when no signal wakes it. */
#define TICK_MS 200
/* After SIGABRT a hung worker gets this long to dump its stack before SIGKILL. */
#define ABORT_GRACE_MS 2000
/* A replacement for a worker that failed to boot while others serve waits this long. */
#define BOOT_RETRY_MS 1000
/* STATUS= at most this often. */
#define STATUS_MS 1000
#define RELOAD_WAITERS_MAX 16
/* What a reload may take beyond boot_timeout: noticing the worker that did not boot (a tick),
 * reaping it, answering. */
#define RELOAD_ANSWER_MARGIN_S 10
/* How long fork() may keep failing before the watchdog pings stop. */
#define FORK_FAILURE_GRACE_MS 10000

typedef struct WorkerProc {
        pid_t pid;
        uint32_t generation;
        HeartbeatSlot *slot;
        uint64_t spawned_ms;
        uint64_t kill_at;               /* SIGKILL due (after SIGABRT or the stop deadline); 0 = none */
        bool booted;
        bool term_sent;
        bool abort_sent;
        bool kill_sent;
        bool adopted;                   /* a worker of the image before an upgrade: its hand-off
                                         * table and socket were that image's, gone with it */
} WorkerProc;

typedef struct Arbiter {
        Settings *settings;
        Listener *listeners;
        size_t n_listeners;
        void *app;
        ArbiterReloadSettings reload_settings;
        Heartbeat *heartbeat;
        Handoff *handoff;               /* sync workers' kept-alive connections; NULL: none */
        WorkerProc *procs;
        size_t n_procs, cap_procs;
        int target;                     /* wanted worker count (TTIN/TTOU move it) */
        uint32_t generation;            /* the one being started (reloading) or serving */
        uint32_t prev_generation;       /* the one serving while a reload is under way */
        uint32_t last_generation;       /* numbers are never reused, so late exits of a failed
                                         * generation cannot be taken for the next one's */
        bool reloading;
        bool reload_pending;            /* a HUP came during a reload: another one follows it */
        bool stopping;
        uint64_t stop_deadline;
        int stop_signal;                /* what the workers were told to stop with */
        int stop_timeout_s;
        uint64_t spawn_not_before;
        int boot_pipe[2];
        int exit_status;

        /* For the service manager. */
        bool ready_sent;
        char failure[256];              /* why the workers could not boot */
        struct {
                pid_t pid;
                uint32_t generation;    /* the reload it waits for; 0 = the next one to start */
                bool upgrade;           /* gcorn --upgrade: a refused upgrade answers it */
        } reload_waiters[RELOAD_WAITERS_MAX];
        size_t n_reload_waiters;
        uint64_t requests_done;         /* by workers already reaped */
        uint64_t timeouts, crashes;
        uint64_t retired[_RETIRE_CAUSE_MAX];    /* workers that left of their own accord, by cause */
        uint64_t last_status_ms, last_status_requests, last_watchdog_ms;
        uint64_t fork_failing_since;    /* 0 while workers can be forked */

        /* Binary upgrade (USR2). */
        UpgradeCheck check;             /* the new binary's --check-config, while it runs */
        char upgraded_from[32];         /* the version this image took over from, for STATUS= */
        bool upgrade_reload;            /* the reload under way replaces the adopted workers */
        pid_t *strays;                  /* workers of an image whose handoff this one could not
                                         * read: retired once the first generation serves */
        size_t n_strays;
        bool strays_retired;
        Control *control;               /* gcorn ctl's socket; NULL when off */
        Metrics *metrics;               /* --metrics-bind; NULL when off */
        uint64_t started_ms;
} Arbiter;

static const int handled_signals[] = {
        SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU, SIGCHLD, SIGWINCH,
};

/* One signal as the handler saw it. Smaller than PIPE_BUF, so each write is atomic and the
 * reader only ever sees whole records. */
typedef struct SignalRecord {
        int32_t signo;
        int32_t code;
        int32_t pid;                    /* the sender */
        int32_t value;                  /* sigqueue()'s value */
} SignalRecord;

/* The handler is the only writer of signal_pipe[1]; the loop reads signal_pipe[0]. */
static int signal_pipe[2] = { -1, -1 };
static pid_t arbiter_pid;
/* Signals a newly forked worker caught before it blocked them: it raises them again for its
 * own handlers. */
static uint64_t early_signals;

/* A handler rather than a signalfd: a signalfd leaves signals pending until the loop reads
 * them, and the kernel merges a standard signal with a pending one of the same number, so
 * four TTIN sent while the master was forking or reading the config file counted as one, and
 * so did the HUPs of two gcorn --reload-and-wait. The handler takes each one at once. */
static void on_signal(int sig, siginfo_t *si, void *ctx _unused_) {
        SignalRecord r = {
                .signo = sig,
                .code = si->si_code,
                .pid = si->si_pid,
                .value = si->si_value.sival_int,
        };
        int saved = errno;

        if (getpid() != arbiter_pid)
                __atomic_or_fetch(&early_signals, 1ULL << sig, __ATOMIC_RELAXED);
        else
                (void) !write(signal_pipe[1], &r, sizeof(r));
        errno = saved;
}

static void block_handled_signals(void) {
        sigset_t mask;

        sigemptyset(&mask);
        for (size_t i = 0; i < ELEMENTSOF(handled_signals); i++)
                sigaddset(&mask, handled_signals[i]);
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);
}

/* In a new worker, first thing: its signals wait (blocked) for worker_run() to install its
 * own handlers, and none of them reaches the master's pipe. */
static void worker_take_signals(void) {
        uint64_t early;

        block_handled_signals();
        signal_pipe[0] = safe_close(signal_pipe[0]);
        signal_pipe[1] = safe_close(signal_pipe[1]);
        early = __atomic_exchange_n(&early_signals, 0, __ATOMIC_RELAXED);
        for (int sig = 1; sig < 64; sig++)
                if (early & (1ULL << sig))
                        (void) raise(sig);
}

/* A reload ends (the new generation serves, or it failed) within this many seconds; at most
 * what the answer to gcorn --reload-and-wait can carry (24 bits). */
static int reload_answer_within_s(const Arbiter *a) {
        return (int) MIN((int64_t) a->settings->boot_timeout + RELOAD_ANSWER_MARGIN_S, (int64_t) 0xffffff);
}

static const char *app_name(const Arbiter *a) {
        return a->settings->proc_name ? a->settings->proc_name : strna(a->settings->wsgi_app);
}

static int spawn_worker(Arbiter *a) {
        HeartbeatSlot *slot;
        WorkerProc *p;
        pid_t pid;

        if (a->n_procs == a->cap_procs) {
                size_t n = MAX(a->cap_procs * 2, (size_t) 8);
                WorkerProc *np = realloc(a->procs, n * sizeof(WorkerProc));

                if (!np)
                        return -ENOMEM;
                a->procs = np;
                a->cap_procs = n;
        }
        slot = heartbeat_claim(a->heartbeat, a->generation);
        if (!slot)
                return -EUSERS;

        hooks_pre_fork(a->settings, a->target);
        python_before_fork();
        pid = fork();
        if (pid < 0) {
                int r = -errno;

                python_after_fork_parent();
                heartbeat_release(slot);
                return r;
        }
        if (pid == 0) {
                WorkerContext ctx = {
                        .parent = arbiter_pid,
                        .settings = a->settings,
                        .listeners = a->listeners,
                        .n_listeners = a->n_listeners,
                        .app = a->app,
                        .slot = slot,
                        .heartbeat = a->heartbeat,
                        .boot_fd = a->boot_pipe[1],
                        .generation = a->generation,
                        .handoff = a->handoff,
                };
                int status;

                worker_take_signals();
                control_forget(a->control);
                metrics_forget(a->metrics);
                python_after_fork_child();
                slot->pid = getpid();
                a->boot_pipe[0] = safe_close(a->boot_pipe[0]);
                /* exit(), not _exit(): LeakSanitizer checks the worker at exit in test builds. */
                status = worker_run(&ctx);
                exit(status);
        }
        python_after_fork_parent();
        hooks_forked(pid);
        slot->pid = pid;
        p = &a->procs[a->n_procs++];
        *p = (WorkerProc) {
                .pid = pid,
                .generation = a->generation,
                .slot = slot,
                .spawned_ms = now_ms(),
        };
        return 0;
}

static void send_signal(WorkerProc *p, int sig) {
        if (sig == SIGTERM || sig == SIGQUIT)
                p->term_sent = true;
        if (sig == SIGKILL)
                p->kill_sent = true;
        (void) kill(p->pid, sig);
}

/* TERM for a worker that others outlive (a reload, TTOU, one worker stopped): it leaves its
 * idle kept-alive connections to the master for them (WORKER_TERM_OTHERS_SERVE). Not an
 * adopted worker: the master it would leave them to is the image before the upgrade, and
 * they would be closed under their clients; it keeps them until it leaves, as on a stop. */
static void retire_worker(WorkerProc *p) {
        if (!p->adopted && sigqueue(p->pid, SIGTERM, (union sigval) { .sival_int = WORKER_TERM_OTHERS_SERVE }) == 0) {
                p->term_sent = true;
                return;
        }
        send_signal(p, SIGTERM);
}

static void signal_all(Arbiter *a, int sig) {
        for (size_t i = 0; i < a->n_procs; i++)
                send_signal(&a->procs[i], sig);
}

/* Workers of the current generation that will keep serving. */
static int serving_workers(const Arbiter *a, int *ret_booted) {
        int n = 0, booted = 0;

        for (size_t i = 0; i < a->n_procs; i++) {
                const WorkerProc *p = &a->procs[i];

                if (p->generation != a->generation || p->term_sent || p->abort_sent ||
                    heartbeat_load(&p->slot->retiring))
                        continue;
                n++;
                booted += p->booted;
        }
        if (ret_booted)
                *ret_booted = booted;
        return n;
}

/* Gunicorn's words for a SIGKILL the master did not send: the kernel's OOM killer and a
 * cgroup memory limit both kill with SIGKILL; memory.events says which, when the cgroup v2
 * file is readable. */
static void log_foreign_kill(pid_t pid) {
        char path[512] = "/sys/fs/cgroup", line[256], events[512] = "";
        FILE *f;

        f = fopen("/proc/self/cgroup", "re");
        if (f) {
                while (fgets(line, sizeof(line), f))
                        if (strncmp(line, "0::", 3) == 0) {
                                line[strcspn(line, "\n")] = 0;
                                snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.events", line + 3);
                        }
                fclose(f);
        }
        f = fopen(path, "re");
        if (f) {
                size_t n = fread(events, 1, sizeof(events) - 1, f);

                events[n] = 0;
                for (char *c = events; *c; c++)
                        if (*c == '\n')
                                *c = ' ';
                fclose(f);
        }
        log_error("Worker (pid:%d) was sent SIGKILL! Perhaps out of memory?%s%s", (int) pid,
                  events[0] ? " memory.events: " : "", events);
}

/* Answers the gcorn --reload-and-wait processes waiting for generation gen (0: all). */
static void answer_reload_waiters(Arbiter *a, uint32_t gen, int answer) {
        union sigval v = { .sival_int = answer };
        size_t kept = 0;

        control_reload_done(a->control, gen, answer == NOTIFY_RELOAD_OK);
        for (size_t i = 0; i < a->n_reload_waiters; i++) {
                if (gen == 0 || a->reload_waiters[i].generation == gen)
                        (void) sigqueue(a->reload_waiters[i].pid, SIGRTMIN, v);
                else
                        a->reload_waiters[kept++] = a->reload_waiters[i];
        }
        a->n_reload_waiters = kept;
}

/* An upgrade that ends before the exec answers its own waiters only: a HUP that came
 * meanwhile still has its reload to come. */
static void answer_upgrade_waiters(Arbiter *a, int answer) {
        union sigval v = { .sival_int = answer };
        size_t kept = 0;

        for (size_t i = 0; i < a->n_reload_waiters; i++) {
                if (a->reload_waiters[i].upgrade)
                        (void) sigqueue(a->reload_waiters[i].pid, SIGRTMIN, v);
                else
                        a->reload_waiters[kept++] = a->reload_waiters[i];
        }
        a->n_reload_waiters = kept;
}

/* Tells a waiting gcorn --reload-and-wait how long the reload it waits for may take from now:
 * a new worker that is not up within boot_timeout is killed, and the reload fails. */
static void tell_reload_wait(const Arbiter *a, pid_t pid) {
        union sigval v = { .sival_int = (int) ((unsigned) NOTIFY_RELOAD_WAIT | (unsigned) reload_answer_within_s(a) << 8) };

        (void) sigqueue(pid, SIGRTMIN, v);
}

/* A HUP from gcorn --reload-and-wait wants to hear how the reload ended. Returns false for
 * a repeated HUP from a waiter the master already knows: that one starts no reload. */
static bool add_reload_waiter(Arbiter *a, const SignalRecord *si) {
        bool again = si->value == NOTIFY_RELOAD_COOKIE_AGAIN;

        if (si->code != SI_QUEUE || (si->value != NOTIFY_RELOAD_COOKIE && !again))
                return true;
        for (size_t i = 0; i < a->n_reload_waiters; i++)
                if (a->reload_waiters[i].pid == si->pid) {
                        tell_reload_wait(a, si->pid);
                        return !again;
                }
        if (a->n_reload_waiters == RELOAD_WAITERS_MAX) {
                log_warning("Too many gcorn --reload-and-wait at once; pid %d will hear nothing", (int) si->pid);
                return true;
        }
        a->reload_waiters[a->n_reload_waiters].pid = si->pid;
        a->reload_waiters[a->n_reload_waiters].upgrade = si->signo == SIGUSR2;
        a->reload_waiters[a->n_reload_waiters++].generation = 0;
        if (!a->stopping)
                tell_reload_wait(a, si->pid);
        return true;
}

static void reload_failed(Arbiter *a, const char *why) {
        char status[128];

        log_error("Reload failed: %s; generation %u keeps serving", why, a->prev_generation);
        snprintf(status, sizeof(status), "reload failed, gen %u serving", a->prev_generation);
        notify_ready(status);
        answer_reload_waiters(a, a->generation, NOTIFY_RELOAD_FAILED);
        for (size_t i = 0; i < a->n_procs; i++)
                if (a->procs[i].generation == a->generation)
                        retire_worker(&a->procs[i]);
        a->generation = a->prev_generation;
        a->reloading = false;
        a->upgrade_reload = false;
}

static void begin_stop(Arbiter *a, int worker_signal, int timeout_s) {
        char status[64];

        snprintf(status, sizeof(status), "stopping: %zu workers finishing", a->n_procs);
        notify_stopping(status);
        answer_reload_waiters(a, 0, NOTIFY_RELOAD_FAILED);
        a->stopping = true;
        a->stop_signal = worker_signal;
        a->stop_timeout_s = timeout_s;
        a->stop_deadline = now_ms() + (uint64_t) timeout_s * 1000;
        signal_all(a, worker_signal);
        for (size_t i = 0; i < a->n_strays; i++)
                (void) kill(a->strays[i], worker_signal);
        /* New clients get "connection refused" now rather than wait in the backlog for a
         * server that is going away and be reset when it exits. The workers close their
         * copies as they retire. Sockets from systemd stay: it queues for the next start. */
        listener_close_bound(a->listeners, a->n_listeners);
}

static void worker_gone(Arbiter *a, WorkerProc *p, int status) {
        bool boot_error = WIFEXITED(status) && WEXITSTATUS(status) == WORKER_BOOT_ERROR;
        bool current = p->generation == a->generation;

        if (boot_error && p->slot->error[0])
                snprintf(a->failure, sizeof(a->failure), "%s", p->slot->error);
        if (boot_error) {
                int booted;

                /* The worker logged why; what matters here is not to fork in a loop. */
                if (a->stopping || !current)
                        ;       /* shutting down, or a straggler of a reload that failed */
                else if (a->reloading)
                        reload_failed(a, "the new workers could not load the application");
                else if (serving_workers(a, &booted), booted == 0) {
                        log_error("Worker (pid:%d) failed to boot; shutting down.", (int) p->pid);
                        a->exit_status = WORKER_BOOT_ERROR;
                        begin_stop(a, SIGTERM, a->settings->graceful_timeout);
                } else {
                        log_error("Worker (pid:%d) failed to boot; retrying in %d ms.", (int) p->pid, BOOT_RETRY_MS);
                        a->spawn_not_before = now_ms() + BOOT_RETRY_MS;
                }
                return;
        }
        if (WIFSIGNALED(status)) {
                int sig = WTERMSIG(status);
                /* A core file per crash can fill a disk: say when one was written. */
                const char *core = WCOREDUMP(status) ? " (core dumped)" : "";

                if (!p->term_sent && !p->kill_sent && !p->abort_sent)
                        a->crashes++;
                if (sig == SIGKILL && !p->kill_sent)
                        log_foreign_kill(p->pid);
                else if (p->abort_sent)
                        log_error("Worker (pid:%d) killed after timeout (signal %d)%s", (int) p->pid, sig, core);
                else if (!(p->term_sent && (sig == SIGTERM || sig == SIGQUIT)) && !p->kill_sent)
                        log_error("Worker (pid:%d) was sent signal %d (%s)%s", (int) p->pid, sig, strsignal(sig),
                                  core);
        } else if (WEXITSTATUS(status) != 0) {
                /* A worker ends with 0 unless its app ended it (os._exit(), a failed hook). */
                if (!p->term_sent && !p->kill_sent && !p->abort_sent)
                        a->crashes++;
                log_error("Worker (pid:%d) exited with code %d", (int) p->pid, WEXITSTATUS(status));
        } else if (!p->term_sent && !a->stopping)
                log_info("Worker (pid:%d) exited", (int) p->pid);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !p->term_sent) {
                uint32_t cause = SLOT_RETIRING_CAUSE(heartbeat_load(&p->slot->retiring));

                /* A gthread worker replaced for a stuck request timed out as much as one the
                 * watchdog ends. */
                if (cause == RETIRE_STUCK)
                        a->timeouts++;
                else if (cause > RETIRE_ASKED && cause < _RETIRE_CAUSE_MAX)
                        a->retired[cause]++;
        }

        if (a->reloading && current && !p->booted)
                reload_failed(a, "a new worker died while booting");
}

/* Only the workers, by their PIDs: waitpid(-1) would also take the exit status of a process
 * a --preload app started in the master, and its own wait() would then fail with ECHILD. */
static void reap(Arbiter *a) {
        for (size_t i = 0; i < a->n_procs;) {
                WorkerProc p = a->procs[i];
                int status;
                pid_t pid = waitpid(p.pid, &status, WNOHANG);

                if (pid < 0 && errno == ECHILD) {
                        /* The app called wait() in the master: the status is lost, but the
                         * worker is gone and must not be waited for forever. */
                        log_warning("Worker (pid:%d) was reaped by another wait() in the master", (int) p.pid);
                        status = 0;
                } else if (pid <= 0) {
                        i++;
                        continue;
                }
                a->procs[i] = a->procs[--a->n_procs];
                /* Before its slot can be reused: its idle clients lose nothing. */
                handoff_worker_gone(a->handoff, (uint32_t) heartbeat_slot_index(a->heartbeat, p.slot) + 1, now_ms());
                a->requests_done += heartbeat_load64(&p.slot->requests);
                metrics_absorb(a->metrics, p.slot);
                worker_gone(a, &p, status);
                hooks_child_exit(a->settings, a->target, p.pid);
                heartbeat_release(p.slot);
        }
}

static void reap_strays(Arbiter *a) {
        for (size_t i = 0; i < a->n_strays;) {
                int status;
                pid_t pid = waitpid(a->strays[i], &status, WNOHANG);

                if (pid == 0) {
                        i++;
                        continue;
                }
                log_info("Worker (pid:%d) of the image before the upgrade exited", (int) a->strays[i]);
                a->strays[i] = a->strays[--a->n_strays];
        }
}

static void note_booted(Arbiter *a) {
        char buf[64];

        while (read(a->boot_pipe[0], buf, sizeof(buf)) > 0)
                ;
        for (size_t i = 0; i < a->n_procs; i++) {
                WorkerProc *p = &a->procs[i];

                if (!p->booted && heartbeat_load(&p->slot->state) >= SLOT_IDLE) {
                        p->booted = true;
                        hooks_booted();
                        log_debug("Worker (pid:%d) booted", (int) p->pid);
                }
        }
}

/* Kills workers whose heartbeat stopped: SIGABRT first (faulthandler prints the Python
 * stack), SIGCONT in case it was stopped, SIGKILL when that did not end it. */
static void watchdog(Arbiter *a) {
        uint64_t now = now_ms();

        for (size_t i = 0; i < a->n_procs; i++) {
                WorkerProc *p = &a->procs[i];
                HeartbeatSlot *s = p->slot;

                if (p->kill_at && now >= p->kill_at && !p->kill_sent) {
                        send_signal(p, SIGKILL);
                        continue;
                }
                if (p->abort_sent || p->kill_sent)
                        continue;
                if (!p->booted) {
                        if (now - p->spawned_ms > (uint64_t) a->settings->boot_timeout * 1000) {
                                log_error("Worker (pid:%d) did not boot within %d s (--boot-timeout)", (int) p->pid,
                                          a->settings->boot_timeout);
                                p->abort_sent = true;
                                send_signal(p, SIGKILL);
                        }
                        continue;
                }
                if (a->settings->timeout <= 0)
                        continue;
                /* Signed: a worker may have beaten after "now" was read, which must not wrap
                 * around into an age of centuries. */
                if ((int64_t) (now - heartbeat_load64(&s->beat_ms)) <= (int64_t) a->settings->timeout * 1000)
                        continue;
                if (heartbeat_load(&s->state) == SLOT_BUSY)
                        log_crit("WORKER TIMEOUT (pid:%d) serving %.16s %.200s for %.1f s", (int) p->pid,
                                 s->requests_inflight[0].method, s->requests_inflight[0].path,
                                 (double) (now - heartbeat_load64(&s->request_start_ms)) / 1000.0);
                else
                        log_crit("WORKER TIMEOUT (pid:%d) outside a request", (int) p->pid);
                p->abort_sent = true;
                p->kill_at = now + ABORT_GRACE_MS;
                a->timeouts++;
                (void) kill(p->pid, SIGABRT);
                (void) kill(p->pid, SIGCONT);
        }
        if (a->stopping && now >= a->stop_deadline)
                for (size_t i = 0; i < a->n_procs; i++) {
                        WorkerProc *p = &a->procs[i];

                        if (p->kill_sent)
                                continue;
                        /* The worker's requests end here, unanswered: that must show in the log. */
                        if (a->stop_signal == SIGTERM)
                                log_warning("Worker (pid:%d) was sent SIGKILL after the graceful timeout (%d s)",
                                            (int) p->pid, a->stop_timeout_s);
                        else
                                log_warning("Worker (pid:%d) was sent SIGKILL: it did not quit within %d s",
                                            (int) p->pid, a->stop_timeout_s);
                        send_signal(p, SIGKILL);
                }
}

static void format_status(Arbiter *a, char *buf, size_t cap, uint64_t now);

/* A replacement was just forked: one worker that retires by itself and waits for it may go
 * (see SlotRetiring). */
static void release_one_retiring(Arbiter *a) {
        for (size_t i = 0; i < a->n_procs; i++) {
                uint32_t *word = &a->procs[i].slot->retiring, v = heartbeat_load(word);

                /* Not one the master told to stop: that one waits for nothing. */
                if (a->procs[i].pid > 0 && !a->procs[i].term_sent && SLOT_RETIRING_STATE(v) == SLOT_RETIRING &&
                    __atomic_compare_exchange_n(word, &v, (v & ~0xffu) | SLOT_REPLACED, false, __ATOMIC_RELAXED,
                                                __ATOMIC_RELAXED))
                        return;
        }
}

static void manage(Arbiter *a) {
        int serving, booted;

        if (a->stopping)
                return;
        serving = serving_workers(a, &booted);
        while (serving < a->target && now_ms() >= a->spawn_not_before) {
                int r = spawn_worker(a);

                if (r < 0) {
                        log_error_errno(r, "Failed to fork a worker: %m");
                        a->spawn_not_before = now_ms() + BOOT_RETRY_MS;
                        if (!a->fork_failing_since)
                                a->fork_failing_since = now_ms();
                        break;
                }
                a->fork_failing_since = 0;
                serving++;
                release_one_retiring(a);
        }
        if (a->n_strays && !a->strays_retired && booted >= a->target) {
                log_info("Generation %u serves; retiring the %zu workers of the image before the upgrade",
                         a->generation, a->n_strays);
                for (size_t i = 0; i < a->n_strays; i++)
                        (void) kill(a->strays[i], SIGTERM);
                a->strays_retired = true;
        }
        if (a->reloading) {
                if (booted < a->target)
                        return;
                /* The new generation serves: only now may the old one go. */
                for (size_t i = 0; i < a->n_procs; i++)
                        if (a->procs[i].generation != a->generation && !a->procs[i].term_sent)
                                retire_worker(&a->procs[i]);
                a->reloading = false;
                if (a->upgrade_reload)
                        log_info("Upgrade complete: gcorn %s replaced gcorn %s; generation %u serving",
                                 GCORN_VERSION, a->upgraded_from, a->generation);
                else
                        log_info("Reload complete: generation %u serving", a->generation);
                a->upgrade_reload = false;
                log_set_identity(a->settings->proc_name, a->generation);
                {
                        char status[256];

                        format_status(a, status, sizeof(status), now_ms());
                        notify_ready(status);
                }
                answer_reload_waiters(a, a->generation, NOTIFY_RELOAD_OK);
                return;
        }
        /* TTOU: the newest go first, as in Gunicorn. */
        for (size_t i = a->n_procs; serving > a->target && i-- > 0;) {
                WorkerProc *p = &a->procs[i];

                if (p->generation == a->generation && !p->term_sent && !heartbeat_load(&p->slot->retiring)) {
                        retire_worker(p);
                        serving--;
                }
        }
}

static void reload(Arbiter *a) {
        _cleanup_free_ char *error = NULL, *log_error = NULL;
        Settings fresh;
        const char *failed = NULL;
        int r;

        if (a->reloading || a->check.pid) {
                /* The code or config may have changed again since the running reload read it. */
                log_info("Reload already in progress; another follows it");
                a->reload_pending = true;
                return;
        }
        a->reload_pending = false;
        r = a->reload_settings(&fresh, &error);
        if (r < 0) {
                log_error("Reload failed: %s; keeping the running configuration", error ? error : "invalid settings");
                answer_reload_waiters(a, 0, NOTIFY_RELOAD_FAILED);
                return;
        }
        if (!strv_equal(fresh.bind, a->settings->bind))
                log_warning("bind changed in the configuration; a reload keeps the sockets it has");
        settings_done(a->settings);
        *a->settings = fresh;
        r = log_setup(a->settings->loglevel, a->settings->errorlog, a->settings->accesslog, a->settings->log_target,
                      &failed);
        if (r < 0)
                log_warning_errno(r, "Cannot open log file %s: %m", failed);
        r = logconfig_apply(a->settings, &log_error);
        if (r < 0)
                log_error("%s; gcorn's entries go to the error log itself", log_error ? log_error : "out of memory");
        logconfig_capture_output(a->settings);
        (void) statsd_open(a->settings);
        privileges_prepare(a->settings, a->listeners, a->n_listeners);

        if (a->app)
                log_info("Reloading with --preload: new workers are forked from the master; application code is not reloaded");
        hooks_nworkers_changed(a->settings, a->settings->workers, a->target);
        a->target = a->settings->workers;
        hooks_on_reload(a->settings, a->target);
        a->prev_generation = a->generation;
        a->generation = ++a->last_generation;
        a->reloading = true;
        /* The new settings' boot_timeout bounds this reload: the waiters, and with them the
         * service manager's reload job, wait that long. */
        for (size_t i = 0; i < a->n_reload_waiters; i++)
                if (a->reload_waiters[i].generation == 0) {
                        a->reload_waiters[i].generation = a->generation;
                        tell_reload_wait(a, a->reload_waiters[i].pid);
                }
        control_reload_started(a->control, a->generation);
        notify_reloading((uint64_t) (reload_answer_within_s(a) + 5) * 1000000ULL);
        log_info("Reloading: starting generation %u", a->generation);
}

static void begin_upgrade(Arbiter *a);

static void handle_signal(Arbiter *a, const SignalRecord *si) {
        int sig = si->signo;

        if ((sig == SIGHUP || sig == SIGUSR2) && !add_reload_waiter(a, si))
                return;

        switch (sig) {
        case SIGCHLD:
                break;
        case SIGTERM:
                log_info("Handling signal: term");
                begin_stop(a, SIGTERM, a->settings->graceful_timeout);
                break;
        case SIGINT:
        case SIGQUIT:
                log_info("Handling signal: %s", sig == SIGINT ? "int" : "quit");
                begin_stop(a, SIGQUIT, 1);
                break;
        case SIGHUP:
                log_info("Handling signal: hup");
                if (!a->stopping)
                        reload(a);
                else
                        answer_reload_waiters(a, 0, NOTIFY_RELOAD_FAILED);
                break;
        case SIGTTIN:
                log_info("Handling signal: ttin");
                if (a->target < SETTINGS_WORKERS_MAX) {
                        a->target++;
                        hooks_nworkers_changed(a->settings, a->target, a->target - 1);
                } else
                        log_warning("Already at %d workers, the most there is room for.", a->target);
                break;
        case SIGTTOU:
                log_info("Handling signal: ttou");
                if (a->target > 1) {
                        a->target--;
                        hooks_nworkers_changed(a->settings, a->target, a->target + 1);
                }
                break;
        case SIGUSR2:
                log_info("Handling signal: usr2");
                begin_upgrade(a);
                break;
        case SIGUSR1:
                /* Reopened first, so the new files say why they exist. */
                (void) log_setup(NULL, a->settings->errorlog, a->settings->accesslog, a->settings->log_target, NULL);
                logconfig_reopen(a->settings);
                log_info("Handling signal: usr1");
                signal_all(a, SIGUSR1);
                break;
        default:
                log_info("Ignoring signal %d (%s)", sig, strsignal(sig));
        }
}

/* "gen 3, 4/4 workers (1 busy), 10482 requests, 350 req/s, 0 timeouts, 0 crashes" */
static void format_status(Arbiter *a, char *buf, size_t cap, uint64_t now) {
        uint64_t requests = a->requests_done;
        int busy = 0, booted;
        double rate = 0;

        for (size_t i = 0; i < a->n_procs; i++) {
                requests += heartbeat_load64(&a->procs[i].slot->requests);
                busy += heartbeat_load(&a->procs[i].slot->state) == SLOT_BUSY;
        }
        (void) serving_workers(a, &booted);
        if (a->last_status_ms && now > a->last_status_ms)
                rate = (double) (requests - MIN(requests, a->last_status_requests)) * 1000.0 /
                       (double) (now - a->last_status_ms);
        snprintf(buf, cap, "%sgen %u, %d/%d workers (%d busy), %" PRIu64 " requests, %.0f req/s, %" PRIu64
                 " timeouts, %" PRIu64 " crashes%s%s%s%s",
                 a->stopping ? "stopping: " : a->check.pid ? "upgrade check: " : a->reloading ? "reloading: " : "",
                 a->generation, booted, a->target, busy, requests, rate, a->timeouts, a->crashes,
                 a->upgraded_from[0] ? ", upgraded from gcorn " : "", a->upgraded_from,
                 a->upgraded_from[0] ? " to " : "", a->upgraded_from[0] ? GCORN_VERSION : "");
        a->last_status_ms = now;
        a->last_status_requests = requests;
}

/* READY=1 once the first generation serves, then STATUS= once a second, and WATCHDOG=1 from
 * this loop only: if the loop stops turning, systemd notices. */
static void tell_manager(Arbiter *a) {
        uint64_t now = now_ms(), wd = notify_watchdog_interval_ms();
        char status[256];
        int booted;

        if (!notify_enabled())
                return;
        /* Supervision that cannot fork replacements is not healthy: let systemd restart us. */
        if (wd && now - a->last_watchdog_ms >= wd &&
            (!a->fork_failing_since || now - a->fork_failing_since < FORK_FAILURE_GRACE_MS)) {
                notify_watchdog();
                a->last_watchdog_ms = now;
        }
        if (!a->ready_sent && !a->stopping) {
                serving_workers(a, &booted);
                if (booted < a->target)
                        return;
                format_status(a, status, sizeof(status), now);
                notify_ready(status);
                a->ready_sent = true;
                return;
        }
        if (now - a->last_status_ms >= STATUS_MS) {
                format_status(a, status, sizeof(status), now);
                notify_status(status);
        }
}

/* What gcorn ctl and the metrics endpoint see. workers: room for n_procs entries. */
static ControlState control_state(const Arbiter *a, ControlWorker *workers) {
        ControlState st = {
                .pid = getpid(),
                .generation = a->generation,
                .target = a->target,
                .reloading = a->reloading,
                .stopping = a->stopping,
                .reloads = a->last_generation - 1,
                .timeouts = a->timeouts,
                .crashes = a->crashes,
                .retired_max_requests = a->retired[RETIRE_MAX_REQUESTS],
                .retired_memory = a->retired[RETIRE_MEMORY],
                .retired_reload = a->retired[RETIRE_RELOAD],
                .started_ms = a->started_ms,
                .settings = a->settings,
                .listeners = a->listeners,
                .n_listeners = a->n_listeners,
                .workers = workers,
        };

        for (size_t i = 0; workers && i < a->n_procs; i++) {
                const WorkerProc *p = &a->procs[i];

                workers[st.n_workers++] = (ControlWorker) {
                        .pid = p->pid,
                        .generation = p->generation,
                        .spawned_ms = p->spawned_ms,
                        .booted = p->booted,
                        .stopping = p->term_sent || p->abort_sent || p->kill_sent,
                        .slot = p->slot,
                };
        }
        return st;
}

static void serve_metrics(Arbiter *a) {
        _cleanup_free_ ControlWorker *workers = calloc(MAX(a->n_procs, (size_t) 1), sizeof(ControlWorker));
        ControlState st = control_state(a, workers);

        metrics_answer(a->metrics, &st);
}

/* gcorn ctl's commands take the paths the signals take. */
static void serve_control(Arbiter *a) {
        _cleanup_free_ ControlWorker *workers = calloc(MAX(a->n_procs, (size_t) 1), sizeof(ControlWorker));
        ControlState st = control_state(a, workers);
        ControlActions act;

        control_answer(a->control, &st, &act);
        while (act.scale_to > a->target)
                handle_signal(a, &(SignalRecord) { .signo = SIGTTIN });
        while (act.scale_to && act.scale_to < a->target)
                handle_signal(a, &(SignalRecord) { .signo = SIGTTOU });
        for (size_t i = 0; act.kill_pid && i < a->n_procs; i++)
                if (a->procs[i].pid == act.kill_pid && !a->procs[i].term_sent)
                        retire_worker(&a->procs[i]);
        if (act.reopen_logs)
                handle_signal(a, &(SignalRecord) { .signo = SIGUSR1 });
        if (act.reload)
                handle_signal(a, &(SignalRecord) { .signo = SIGHUP });
        if (act.stop)
                handle_signal(a, &(SignalRecord) { .signo = SIGTERM });
}

static int setup(Arbiter *a) {
        struct sigaction sa = {
                .sa_sigaction = on_signal,
                .sa_flags = SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP,
        };
        int r;

        arbiter_pid = getpid();
        if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                return log_error_errno(errno, "pipe2() failed: %m");
        /* The handler never interrupts itself: each signal waits for the one before. */
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < ELEMENTSOF(handled_signals); i++)
                sigaddset(&sa.sa_mask, handled_signals[i]);
        for (size_t i = 0; i < ELEMENTSOF(handled_signals); i++)
                if (sigaction(handled_signals[i], &sa, NULL) < 0)
                        return log_error_errno(errno, "sigaction() failed: %m");
        /* An image started by a binary upgrade inherits them blocked (the old one blocked
         * them so that none would find default handlers during the exec): the ones that came
         * meanwhile arrive now. */
        {
                sigset_t mask;

                sigemptyset(&mask);
                for (size_t i = 0; i < ELEMENTSOF(handled_signals); i++)
                        sigaddset(&mask, handled_signals[i]);
                (void) sigprocmask(SIG_UNBLOCK, &mask, NULL);
        }
        if (pipe2(a->boot_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                return log_error_errno(errno, "pipe2() failed: %m");
        if (upgrade_state() && upgrade_state()->known) {
                r = heartbeat_adopt(upgrade_state()->heartbeat_fd, &a->heartbeat);
                if (r >= 0)
                        return 0;
                log_warning_errno(r, "Cannot map the heartbeat table of the image before the upgrade: %m");
                upgrade_state()->heartbeat_fd = safe_close(upgrade_state()->heartbeat_fd);
                upgrade_state()->known = false;
        }
        r = heartbeat_new(&a->heartbeat);
        if (r < 0)
                return log_error_errno(r, "Failed to map the heartbeat table: %m");
        return 0;
}

/* Sync workers with keep-alive only. Without it the workers keep their connections alone,
 * as before. */
static void setup_handoff(Arbiter *a) {
        int r;

        if (!handoff_applies(a->settings) || a->settings->keepalive <= 0)
                return;
        r = handoff_new(&a->handoff);
        if (r < 0)
                log_warning_errno(r, "Kept-alive connections stay with their worker alone: %m");
}

/* USR2: the new binary is checked first, in the background; the workers keep serving. */
static void begin_upgrade(Arbiter *a) {
        int r;

        if (a->check.pid) {
                /* A waiter that came with this USR2 hears how the running one ends. */
                log_info("Upgrade already under way");
                return;
        }
        if (a->stopping || a->reloading) {
                log_warning("Upgrade refused: %s", a->stopping ? "stopping" : "a reload is under way");
                answer_upgrade_waiters(a, NOTIFY_RELOAD_FAILED);
                return;
        }
        r = upgrade_check_start(&a->check, now_ms(), reload_answer_within_s(a));
        if (r < 0) {
                log_error_errno(r, "Upgrade refused: cannot run %s --check-config: %m", strna(upgrade_binary()));
                answer_upgrade_waiters(a, NOTIFY_RELOAD_FAILED);
                return;
        }
        log_info("Upgrade: checking %s --check-config", upgrade_binary());
        notify_status("upgrade: checking the new binary");
        /* The check and the new image's start both come before the answer. */
        for (size_t i = 0; i < a->n_reload_waiters; i++) {
                union sigval v = { .sival_int = (int) ((unsigned) NOTIFY_RELOAD_WAIT |
                                                       (unsigned) (2 * reload_answer_within_s(a)) << 8) };

                if (a->reload_waiters[i].upgrade)
                        (void) sigqueue(a->reload_waiters[i].pid, SIGRTMIN, v);
        }
}

/* The handoff, and the exec. Returns only when the exec failed. */
static void exec_new_image(Arbiter *a) {
        UpgradeState st = {
                .generation = a->generation,
                .last_generation = a->last_generation,
                .requests_done = a->requests_done,
                .timeouts = a->timeouts,
                .crashes = a->crashes,
        };
        _cleanup_free_ UpgradeWorker *workers = calloc(MAX(a->n_procs, (size_t) 1), sizeof(UpgradeWorker));
        sigset_t mask, old;
        int r;

        if (!workers) {
                log_error("Upgrade failed: out of memory; the running image keeps serving");
                answer_upgrade_waiters(a, NOTIFY_RELOAD_FAILED);
                return;
        }
        for (size_t i = 0; i < a->n_procs; i++) {
                const WorkerProc *p = &a->procs[i];

                workers[i] = (UpgradeWorker) {
                        .pid = p->pid,
                        .generation = p->generation,
                        .slot = (uint32_t) heartbeat_slot_index(a->heartbeat, p->slot),
                        .booted = p->booted,
                        .term_sent = p->term_sent,
                        .spawned_ms = p->spawned_ms,
                };
        }
        st.workers = workers;
        st.n_workers = a->n_procs;
        for (size_t i = 0; i < a->n_reload_waiters && i < UPGRADE_WAITERS_MAX; i++)
                st.waiters[st.n_waiters++] = a->reload_waiters[i].pid;

        hooks_pre_exec(a->settings, a->target);
        log_info("Upgrade: executing %s in place (pid %d) with %zu workers serving", upgrade_binary(), (int) getpid(),
                 a->n_procs);
        notify_reloading((uint64_t) (reload_answer_within_s(a) + 5) * 1000000ULL);
        notify_status("upgrade: starting the new image of gcorn " GCORN_VERSION);
        /* Blocked across the exec: without our handlers a TERM would kill the master at once.
         * The new image unblocks them once its handlers are in place. */
        sigemptyset(&mask);
        for (size_t i = 0; i < ELEMENTSOF(handled_signals); i++)
                sigaddset(&mask, handled_signals[i]);
        (void) sigprocmask(SIG_BLOCK, &mask, &old);
        r = upgrade_exec(a->listeners, a->n_listeners, heartbeat_fd(a->heartbeat), &st);
        (void) sigprocmask(SIG_SETMASK, &old, NULL);
        log_error_errno(r, "Upgrade failed: cannot execute %s: %m; the running image keeps serving", upgrade_binary());
        {
                char status[256];

                format_status(a, status, sizeof(status), now_ms());
                notify_ready(status);
        }
        answer_upgrade_waiters(a, NOTIFY_RELOAD_FAILED);
}

static void finish_upgrade_check(Arbiter *a) {
        char output[512];
        int st;

        if (upgrade_check_poll(&a->check, now_ms()) == 0)
                return;
        st = a->check.status;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
                if (a->stopping || a->reloading)
                        answer_upgrade_waiters(a, NOTIFY_RELOAD_FAILED);
                else
                        exec_new_image(a);
                return;
        }
        upgrade_check_summary(&a->check, output, sizeof(output));
        if (WIFEXITED(st))
                log_error("Upgrade refused: %s --check-config exited with %d: %s; the running image keeps serving",
                          upgrade_binary(), WEXITSTATUS(st), output[0] ? output : "(no output)");
        else
                log_error("Upgrade refused: %s --check-config was killed by signal %d%s: %s; the running image keeps "
                          "serving", upgrade_binary(), WTERMSIG(st),
                          WTERMSIG(st) == SIGKILL ? " (did not finish in time)" : "", output[0] ? output : "(no output)");
        notify_status("upgrade refused: the new binary failed --check-config");
        answer_upgrade_waiters(a, NOTIFY_RELOAD_FAILED);
}

/* This image was started by a binary upgrade: the running workers become the generation a
 * rolling reload replaces, as for HUP. */
static int adopt(Arbiter *a, UpgradeState *st) {
        if (!st->known) {
                log_warning("Upgrade: the handoff of the image before has a layout this one does not know; starting a "
                            "fresh generation and retiring its %zu workers once it serves", st->n_pids);
                a->strays = TAKE_PTR(st->pids);
                a->n_strays = st->n_pids;
                st->n_pids = 0;
                a->upgraded_from[0] = 0;
                snprintf(a->upgraded_from, sizeof(a->upgraded_from), "(unknown)");
                return 0;
        }
        a->procs = calloc(MAX(st->n_workers, (size_t) 8), sizeof(WorkerProc));
        if (!a->procs)
                return -ENOMEM;
        a->cap_procs = MAX(st->n_workers, (size_t) 8);
        for (size_t i = 0; i < st->n_workers; i++) {
                const UpgradeWorker *w = &st->workers[i];
                HeartbeatSlot *slot = heartbeat_slot(a->heartbeat, w->slot);

                if (!slot)
                        return -EBADMSG;
                a->procs[a->n_procs++] = (WorkerProc) {
                        .pid = w->pid,
                        .generation = w->generation,
                        .slot = slot,
                        .spawned_ms = w->spawned_ms,
                        .booted = w->booted,
                        .term_sent = w->term_sent,
                        .adopted = true,
                };
        }
        a->requests_done = st->requests_done;
        a->timeouts = st->timeouts;
        a->crashes = st->crashes;
        a->last_generation = st->last_generation;
        a->prev_generation = st->generation;
        a->generation = ++a->last_generation;
        a->reloading = true;
        a->upgrade_reload = true;
        a->ready_sent = true;
        snprintf(a->upgraded_from, sizeof(a->upgraded_from), "%s", st->old_version);
        for (size_t i = 0; i < st->n_waiters && a->n_reload_waiters < RELOAD_WAITERS_MAX; i++) {
                a->reload_waiters[a->n_reload_waiters].pid = st->waiters[i];
                a->reload_waiters[a->n_reload_waiters++].generation = a->generation;
                tell_reload_wait(a, st->waiters[i]);
        }
        log_info("Upgraded in place from gcorn %s to gcorn %s (pid %d): %zu workers of generation %u adopted; "
                 "starting generation %u", st->old_version, GCORN_VERSION, (int) getpid(), a->n_procs, a->prev_generation,
                 a->generation);
        notify_status("upgrade: new image running, starting its workers");
        return 0;
}

static void read_signals(Arbiter *a) {
        SignalRecord si[32];
        ssize_t n;

        while ((n = read(signal_pipe[0], si, sizeof(si))) > 0)
                for (size_t i = 0; i < (size_t) n / sizeof(SignalRecord); i++)
                        handle_signal(a, &si[i]);
}

int arbiter_run(Settings *s, Listener *listeners, size_t n_listeners, void *app, ArbiterReloadSettings reload_settings) {
        Arbiter a = {
                .settings = s,
                .listeners = listeners,
                .n_listeners = n_listeners,
                .app = app,
                .reload_settings = reload_settings,
                .target = s->workers,
                .generation = 1,
                .last_generation = 1,
                .boot_pipe = { -1, -1 },
        };
        int r;

        r = setup(&a);
        if (r < 0) {
                a.exit_status = 1;
                goto out;
        }
        if (upgrade_state()) {
                r = adopt(&a, upgrade_state());
                upgrade_state_done();
                if (r < 0) {
                        log_error_errno(r, "Failed to adopt the workers of the image before the upgrade: %m");
                        a.exit_status = 1;
                        goto out;
                }
        }
        a.started_ms = now_ms();
        setup_handoff(&a);
        (void) control_new(s, &a.control);
        if (metrics_new(s, &a.metrics) < 0) {
                a.exit_status = 1;
                goto out;
        }
        if (statsd_open(s) < 0) {
                a.exit_status = 1;
                goto out;
        }
        proctitle_set("gcorn: master [%s]", app_name(&a));
        log_info("Starting gcorn %s", GCORN_VERSION);
        if (hooks_on_starting(s, a.target) < 0) {
                a.exit_status = 1;
                goto out;
        }
        for (size_t i = 0; i < n_listeners; i++)
                log_info("Listening at: %s%s (%d)", listeners[i].url, listeners[i].origin, (int) getpid());
        log_info("Using worker: %s", settings_threaded(s) ? "gthread" : s->worker_class);
        log_debug("Arbiter booted: %d workers, timeout %d s, graceful timeout %d s, keep-alive %d s", s->workers,
                  s->timeout, s->graceful_timeout, s->keepalive);
        /* A slow app import must not trip TimeoutStartSec=; --boot-timeout bounds it. */
        notify_extend_timeout(((uint64_t) s->boot_timeout + 10) * 1000000ULL);
        if (hooks_when_ready(s, a.target) < 0) {
                a.exit_status = 1;
                goto out;
        }

        for (;;) {
                struct pollfd p[5 + CONTROL_POLLFDS_MAX + METRICS_POLLFDS_MAX] = {
                        { .fd = signal_pipe[0], .events = POLLIN },
                        { .fd = a.boot_pipe[0], .events = POLLIN },
                        { .fd = a.check.pid ? a.check.fd : -1, .events = POLLIN },
                };
                size_t n_p = 3 + control_pollfds(a.control, p + 3, CONTROL_POLLFDS_MAX), n_h;
                int hfds[2], tick;

                n_p += metrics_pollfds(a.metrics, p + n_p, METRICS_POLLFDS_MAX);
                n_h = handoff_pollfds(a.handoff, hfds, ELEMENTSOF(hfds));
                for (size_t i = 0; i < n_h; i++)
                        p[n_p++] = (struct pollfd) { .fd = hfds[i], .events = POLLIN };

                manage(&a);
                statsd_workers(serving_workers(&a, NULL));
                statsd_backlog(a.listeners, a.n_listeners, now_ms());
                if (a.reload_pending && !a.reloading && !a.stopping)
                        reload(&a);
                if (a.stopping && a.n_procs == 0 && a.n_strays == 0)
                        break;
                /* A short tick only while there are kept-alive connections to watch for and
                 * another worker to take them. */
                tick = handoff_tick(a.handoff, a.heartbeat, now_ms(), (uint64_t) s->keepalive * 1000, a.n_procs);
                if (poll(p, n_p, tick >= 0 ? tick : TICK_MS) < 0 && errno != EINTR) {
                        log_error_errno(errno, "poll() failed: %m");
                        a.exit_status = 1;
                        break;
                }
                read_signals(&a);
                handoff_io(a.handoff, a.heartbeat, now_ms());
                if (control_io(a.control))
                        serve_control(&a);
                if (metrics_io(a.metrics))
                        serve_metrics(&a);
                reap(&a);
                reap_strays(&a);
                if (a.check.pid)
                        finish_upgrade_check(&a);
                note_booted(&a);
                watchdog(&a);
                tell_manager(&a);
        }
        if (a.exit_status == WORKER_BOOT_ERROR)
                notify_failure(EINVAL, a.failure[0] ? a.failure : "the workers could not load the application");
        log_info("Shutting down: Master");
        hooks_on_exit(s, a.target);
out:
        /* Signals that come now wait: finalising Python is not interrupted. */
        block_handled_signals();
        signal_pipe[0] = safe_close(signal_pipe[0]);
        signal_pipe[1] = safe_close(signal_pipe[1]);
        safe_close(a.boot_pipe[0]);
        safe_close(a.boot_pipe[1]);
        handoff_free(a.handoff);
        heartbeat_free(a.heartbeat);
        control_free(a.control);
        metrics_free(a.metrics);
        statsd_close();
        free(a.procs);
        free(a.strays);
        if (a.check.pid) {
                (void) kill(a.check.pid, SIGKILL);
                (void) waitpid(a.check.pid, NULL, 0);
                safe_close(a.check.fd);
        }
        return a.exit_status;
}
