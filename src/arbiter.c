/* The master loop. Signals arrive through a signalfd so that they are plain data for the
 * loop; workers unblock them again right after fork(). */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#include "gcorn/arbiter.h"
#include "gcorn/log.h"
#include "gcorn/macro.h"
#include "gcorn/python.h"
#include "gcorn/worker.h"

typedef struct Arbiter {
        Settings *settings;
        Listener *listeners;
        size_t n_listeners;
        void *app;
        pid_t *workers;                 /* 0 = free slot */
        size_t n_slots;
        int target;                     /* wanted worker count (TTIN/TTOU move it) */
        int sigfd;
        int exit_status;
        bool stopping;
} Arbiter;

static const int handled_signals[] = {
        SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU, SIGCHLD, SIGWINCH,
};

static int live_workers(const Arbiter *a) {
        int n = 0;

        for (size_t i = 0; i < a->n_slots; i++)
                n += a->workers[i] > 0;
        return n;
}

static int spawn_worker(Arbiter *a) {
        size_t slot = a->n_slots;
        pid_t pid;

        for (size_t i = 0; i < a->n_slots; i++)
                if (a->workers[i] == 0) {
                        slot = i;
                        break;
                }
        if (slot == a->n_slots) {
                size_t n = MAX(a->n_slots * 2, (size_t) 4);
                pid_t *w = realloc(a->workers, n * sizeof(pid_t));

                if (!w)
                        return -ENOMEM;
                memset(w + a->n_slots, 0, (n - a->n_slots) * sizeof(pid_t));
                a->workers = w;
                a->n_slots = n;
        }

        python_before_fork();
        pid = fork();
        if (pid < 0) {
                int r = -errno;

                python_after_fork_parent();
                return r;
        }
        if (pid == 0) {
                int status;

                python_after_fork_child();
                a->sigfd = safe_close(a->sigfd);
                status = worker_run(a->settings, a->listeners, a->n_listeners, a->app);
                fflush(NULL);
                _exit(status);
        }
        python_after_fork_parent();
        a->workers[slot] = pid;
        return 0;
}

static void signal_workers(Arbiter *a, int sig) {
        for (size_t i = 0; i < a->n_slots; i++)
                if (a->workers[i] > 0)
                        (void) kill(a->workers[i], sig);
}

/* Kills one worker to go down to the target count: the newest, as Gunicorn does. */
static void retire_one(Arbiter *a) {
        for (size_t i = a->n_slots; i-- > 0;)
                if (a->workers[i] > 0) {
                        (void) kill(a->workers[i], SIGTERM);
                        return;
                }
}

static void reap(Arbiter *a) {
        for (;;) {
                int status;
                pid_t pid = waitpid(-1, &status, WNOHANG);

                if (pid <= 0)
                        return;
                for (size_t i = 0; i < a->n_slots; i++) {
                        if (a->workers[i] != pid)
                                continue;
                        a->workers[i] = 0;
                        if (WIFEXITED(status) && WEXITSTATUS(status) == WORKER_BOOT_ERROR) {
                                /* The worker already said why; forking again would only loop. */
                                if (!a->stopping)
                                        log_error("Worker (pid:%d) failed to boot, shutting down.", (int) pid);
                                a->stopping = true;
                                a->exit_status = WORKER_BOOT_ERROR;
                        } else if (WIFSIGNALED(status) && !a->stopping)
                                log_error("Worker (pid:%d) was sent signal %d (%s)", (int) pid, WTERMSIG(status),
                                          strsignal(WTERMSIG(status)));
                        else if (WIFEXITED(status) && WEXITSTATUS(status) != 0 && !a->stopping)
                                log_error("Worker (pid:%d) exited with code %d", (int) pid, WEXITSTATUS(status));
                        break;
                }
        }
}

static void manage(Arbiter *a) {
        int live = live_workers(a);

        if (a->stopping)
                return;
        while (live < a->target) {
                int r = spawn_worker(a);

                if (r < 0) {
                        log_error_errno(r, "Failed to fork a worker: %m");
                        return;
                }
                live++;
        }
        while (live > a->target) {
                retire_one(a);
                live--;
                break;
        }
}

/* Waits for every worker to exit, sending SIGKILL once the deadline passes. */
static void wait_workers(Arbiter *a, int timeout_s) {
        uint64_t deadline_left = (uint64_t) timeout_s * 10;

        while (live_workers(a) > 0) {
                reap(a);
                if (live_workers(a) == 0)
                        break;
                if (deadline_left == 0) {
                        signal_workers(a, SIGKILL);
                        deadline_left = UINT64_MAX;
                }
                if (deadline_left != UINT64_MAX)
                        deadline_left--;
                (void) poll(NULL, 0, 100);
        }
}

static int handle_signal(Arbiter *a, int sig) {
        switch (sig) {
        case SIGCHLD:
                reap(a);
                return 0;
        case SIGTERM:
                log_info("Handling signal: term");
                a->stopping = true;
                signal_workers(a, SIGTERM);
                wait_workers(a, a->settings->graceful_timeout);
                return 1;
        case SIGINT:
        case SIGQUIT:
                log_info("Handling signal: %s", sig == SIGINT ? "int" : "quit");
                a->stopping = true;
                signal_workers(a, SIGQUIT);
                wait_workers(a, 1);
                return 1;
        case SIGTTIN:
                log_info("Handling signal: ttin");
                a->target++;
                return 0;
        case SIGTTOU:
                log_info("Handling signal: ttou");
                if (a->target > 1)
                        a->target--;
                return 0;
        case SIGUSR1:
                log_info("Handling signal: usr1");
                (void) log_open_error(a->settings->errorlog);
                (void) log_open_access(a->settings->accesslog);
                signal_workers(a, SIGUSR1);
                return 0;
        default:
                log_info("Ignoring signal %d (%s)", sig, strsignal(sig));
                return 0;
        }
}

int arbiter_run(Settings *s, Listener *listeners, size_t n_listeners, void *app) {
        Arbiter a = {
                .settings = s,
                .listeners = listeners,
                .n_listeners = n_listeners,
                .app = app,
                .target = s->workers,
                .sigfd = -1,
        };
        sigset_t mask;

        sigemptyset(&mask);
        for (size_t i = 0; i < ELEMENTSOF(handled_signals); i++)
                sigaddset(&mask, handled_signals[i]);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "sigprocmask() failed: %m"), 1;
        a.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (a.sigfd < 0)
                return log_error_errno(errno, "signalfd() failed: %m"), 1;

        log_info("Starting gcorn %s", GCORN_VERSION);
        for (size_t i = 0; i < n_listeners; i++)
                log_info("Listening at: %s (%d)", listeners[i].url, (int) getpid());
        log_info("Using worker: %s", s->worker_class);

        for (;;) {
                struct pollfd p = { .fd = a.sigfd, .events = POLLIN };
                struct signalfd_siginfo si;

                manage(&a);
                if (a.stopping) {
                        signal_workers(&a, SIGTERM);
                        wait_workers(&a, a.settings->graceful_timeout);
                        break;
                }
                if (poll(&p, 1, 1000) < 0 && errno != EINTR)
                        break;
                while (read(a.sigfd, &si, sizeof(si)) == sizeof(si))
                        if (handle_signal(&a, (int) si.ssi_signo) > 0)
                                goto done;
                reap(&a);
        }
done:
        log_info("Shutting down: Master");
        safe_close(a.sigfd);
        free(a.workers);
        return a.exit_status;
}
