/* Kept-alive connections that any worker can take over: the shared table of ownership
 * words, the registration and ready-queue sockets, and the master's watch over the idle
 * connections of workers that cannot read them (include/gcorn/handoff.h). */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gcorn/handoff.h"
#include "gcorn/log.h"
#include "gcorn/macro.h"

/* Entries at most; the master also needs one descriptor per entry in use. */
#define HANDOFF_MAX 4096
/* Descriptors the master keeps for everything else (listeners, pipes, the app's files). */
#define HANDOFF_FD_RESERVE 256
/* A worker whose beat is this old is not reading its idle connections as they become
 * readable (stopped, or blocked outside its loop)... */
#define HANDOFF_STALE_MS 50
/* ...once one of them has been readable this long without the worker taking it. An idle
 * worker in epoll_wait() beats only now and then, but takes a readable connection at once. */
#define HANDOFF_GRACE_MS 20
#define HANDOFF_EVENTS_MAX 64
/* An entry in transit while the ready queue is empty this long was received by a worker that
 * never took it (it died between its recvmsg() and its swap): the master takes it back. A
 * worker only slow to swap loses nothing: its swap fails and it lets go of the descriptor. */
#define HANDOFF_LOST_MS 100

/* The owner word: the state below, and above it the entry's registration count, so that a
 * worker's stale idea of an entry (its connection taken over and closed, the entry since
 * registered again) never matches the entry's new life. */
typedef struct HandoffEntry {
        uint64_t owner;
        ConnInfo info;                  /* what a new owner needs to serve it */
} HandoffEntry;

typedef struct Shared {
        uint32_t used;                  /* entries at or above this were never claimed */
        uint32_t reserved;
        HandoffEntry e[];
} Shared;

typedef enum MsgOp {
        MSG_REGISTER,                   /* with the worker's descriptor */
        MSG_CLOSE,
        MSG_HELD,                       /* a retiring worker left it to the master */
} MsgOp;

typedef struct Msg {
        uint32_t op;
        uint32_t idx;
        uint32_t seq;
        uint32_t reserved;
} Msg;

struct Handoff {
        Shared *shared;                 /* MAP_SHARED */
        size_t map_size;
        uint32_t n;
        int reg[2];                     /* workers send on [1], the master receives on [0] */
        int ready[2];                   /* the master sends on [0], idle workers receive on [1] */
        uint32_t self;                  /* a worker's W; 0 in the master */
        uint32_t hint;                  /* where a worker looks for a free entry first */

        /* The master's. */
        int epfd;                       /* readable duplicates it watches */
        int *dup;                       /* per entry, -1 for none, DUP_LOST: registered without */
        bool *watched;
        uint64_t *since;                /* HELD: since when; idle W of a stale worker: seen readable;
                                         * TRANSIT: seen with the ready queue empty */
        size_t n_dups;
        uint64_t next_scan;             /* the table is looked at once per tick, not per wake-up */
        bool lost_logged;
        bool transit_lost_logged;
};

/* An entry registered whose descriptor the master could not receive (out of descriptors). */
#define DUP_LOST (-2)

#define WORD(seq, state) ((uint64_t) (seq) << 32 | (uint32_t) (state))
#define STATE(word) ((uint32_t) (word))
#define SEQ(word) ((uint32_t) ((word) >> 32))
/* A worker's handle on an entry: its index and registration count. */
#define TICKET(seq, idx) ((int64_t) ((uint64_t) ((seq) & 0x7fffffffu) << 32 | (uint32_t) (idx)))
#define TICKET_IDX(t) ((uint32_t) (t))
#define TICKET_SEQ(t) ((uint32_t) ((uint64_t) (t) >> 32))

static uint64_t owner_load(const HandoffEntry *e) {
        return __atomic_load_n(&e->owner, __ATOMIC_ACQUIRE);
}

static void owner_store(HandoffEntry *e, uint64_t v) {
        __atomic_store_n(&e->owner, v, __ATOMIC_RELEASE);
}

static bool owner_cas(HandoffEntry *e, uint64_t from, uint64_t to) {
        return __atomic_compare_exchange_n(&e->owner, &from, to, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* Sets the state, keeping the registration count. */
static void state_store(HandoffEntry *e, uint32_t state) {
        owner_store(e, WORD(SEQ(owner_load(e)), state));
}

static uint32_t table_size(void) {
        struct rlimit rl;
        rlim_t n;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
                return HANDOFF_MAX;
        n = rl.rlim_cur > HANDOFF_FD_RESERVE ? rl.rlim_cur - HANDOFF_FD_RESERVE : 0;
        return (uint32_t) MIN(n, (rlim_t) HANDOFF_MAX);
}

int handoff_new(Handoff **ret) {
        _cleanup_(handoff_freep) Handoff *h = NULL;
        uint32_t n = table_size();
        void *p;
        int fd;

        if (n < 16)
                return -EMFILE;
        h = calloc(1, sizeof(Handoff));
        if (!h)
                return -ENOMEM;
        h->reg[0] = h->reg[1] = h->ready[0] = h->ready[1] = h->epfd = -1;
        h->n = n;
        h->map_size = sizeof(Shared) + (size_t) n * sizeof(HandoffEntry);
        /* A memfd like the heartbeat table's; not passed on by a binary upgrade: the new
         * image starts with an empty table. */
        fd = memfd_create("gcorn-handoff", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (ftruncate(fd, (off_t) h->map_size) < 0) {
                int r = -errno;

                safe_close(fd);
                return r;
        }
        p = mmap(NULL, h->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        safe_close(fd);
        if (p == MAP_FAILED)
                return -errno;
        h->shared = p;
        /* Nonblocking: a worker never waits on the master nor the master on a worker; a
         * full queue means "not now". */
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, h->reg) < 0 ||
            socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, h->ready) < 0)
                return -errno;
        h->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (h->epfd < 0)
                return -errno;
        h->dup = malloc(n * sizeof(int));
        h->watched = calloc(n, sizeof(bool));
        h->since = calloc(n, sizeof(uint64_t));
        if (!h->dup || !h->watched || !h->since)
                return -ENOMEM;
        for (uint32_t i = 0; i < n; i++)
                h->dup[i] = -1;
        *ret = TAKE_PTR(h);
        return 0;
}

static void master_state_free(Handoff *h) {
        if (h->dup)
                for (uint32_t i = 0; i < h->n; i++)
                        safe_close(h->dup[i]);
        h->dup = mfree(h->dup);
        h->watched = mfree(h->watched);
        h->since = mfree(h->since);
        h->epfd = safe_close(h->epfd);
        h->n_dups = 0;
}

Handoff *handoff_free(Handoff *h) {
        if (!h)
                return NULL;
        master_state_free(h);
        for (size_t i = 0; i < 2; i++) {
                safe_close(h->reg[i]);
                safe_close(h->ready[i]);
        }
        if (h->shared)
                (void) munmap(h->shared, h->map_size);
        free(h);
        return NULL;
}

/* ---- Workers ---- */

void handoff_worker_init(Handoff *h, uint32_t self) {
        /* The master's duplicates must not live on in a worker: they would keep other
         * workers' connections open. */
        master_state_free(h);
        h->reg[0] = safe_close(h->reg[0]);
        h->ready[0] = safe_close(h->ready[0]);
        h->self = self;
        h->hint = (self * 61u) % h->n;
}

uint32_t handoff_entries(const Handoff *h) {
        return h->n;
}

int handoff_ready_fd(const Handoff *h) {
        return h->ready[1];
}

static int send_msg(int sock, uint32_t op, uint32_t idx, uint32_t seq, int fd) {
        Msg m = { .op = op, .idx = idx, .seq = seq };
        struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n;

        if (fd >= 0) {
                struct cmsghdr *c;

                mh.msg_control = control.buf;
                mh.msg_controllen = sizeof(control.buf);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof(int));
        }
        do
                n = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        return n < 0 ? -errno : 0;
}

/* One message; *ret_fd the descriptor it carried (-1: none); *ret_lost (unless NULL) whether
 * it carried one the kernel could not install (MSG_CTRUNC: the receiver is out of
 * descriptors). 0 when the sender is gone. */
static ssize_t recv_msg(int sock, Msg *m, int *ret_fd, bool *ret_lost) {
        struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control;
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = sizeof(control.buf),
        };
        ssize_t n;

        *ret_fd = -1;
        if (ret_lost)
                *ret_lost = false;
        do
                n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if (ret_lost)
                *ret_lost = (mh.msg_flags & MSG_CTRUNC) != 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
                    c->cmsg_len >= CMSG_LEN(sizeof(int)))
                        memcpy(ret_fd, CMSG_DATA(c), sizeof(int));
        if (n > 0 && (size_t) n < sizeof(*m)) {
                *ret_fd = safe_close(*ret_fd);
                return -EBADMSG;
        }
        return n;
}

int64_t handoff_register(Handoff *h, int fd, const ConnInfo *info) {
        uint32_t busy = h->self | HANDOFF_BUSY, idx = UINT32_MAX, used, seq = 0;
        HandoffEntry *e;
        int r;

        if (h->reg[1] < 0)
                return -EPIPE;
        for (uint32_t k = 0; k < h->n; k++) {
                uint32_t i = (h->hint + k) % h->n;
                uint64_t word = owner_load(&h->shared->e[i]);

                seq = (SEQ(word) + 1) & 0x7fffffffu;
                if (STATE(word) == 0 && owner_cas(&h->shared->e[i], word, WORD(seq, busy))) {
                        idx = i;
                        break;
                }
        }
        if (idx == UINT32_MAX)
                return -ENOSPC;
        h->hint = (idx + 1) % h->n;
        e = &h->shared->e[idx];
        e->info = *info;
        used = __atomic_load_n(&h->shared->used, __ATOMIC_RELAXED);
        while (used < idx + 1 &&
               !__atomic_compare_exchange_n(&h->shared->used, &used, idx + 1, false, __ATOMIC_ACQ_REL,
                                            __ATOMIC_RELAXED))
                ;
        r = send_msg(h->reg[1], MSG_REGISTER, idx, seq, fd);
        if (r < 0) {
                owner_store(e, WORD(seq, 0));
                if (r == -EPIPE || r == -ECONNREFUSED || r == -ECONNRESET)
                        h->reg[1] = safe_close(h->reg[1]);  /* the master is gone (or another image's) */
                return r;
        }
        owner_store(e, WORD(seq, h->self));
        return TICKET(seq, idx);
}

_Static_assert(sizeof(HandoffEntry) % sizeof(uint64_t) == 0 && offsetof(HandoffEntry, owner) == 0,
               "owner words at a fixed stride");
_Static_assert(offsetof(Shared, e) % sizeof(uint64_t) == 0, "aligned owner words");

void handoff_fast(const Handoff *h, HandoffFast *ret) {
        *ret = (HandoffFast) {
                .owner = &h->shared->e[0].owner,
                .stride = sizeof(HandoffEntry) / sizeof(uint64_t),
                .self = h->self,
        };
}

void handoff_close(Handoff *h, int64_t t) {
        HandoffEntry *e = &h->shared->e[TICKET_IDX(t)];

        /* Only while it is ours: W | BUSY (the caller claimed it) or W. */
        if (!owner_cas(e, WORD(TICKET_SEQ(t), h->self | HANDOFF_BUSY), WORD(TICKET_SEQ(t), HANDOFF_CLOSING)) &&
            !owner_cas(e, WORD(TICKET_SEQ(t), h->self), WORD(TICKET_SEQ(t), HANDOFF_CLOSING)))
                return;
        /* Best effort: the master also finds closing entries on its own. */
        if (h->reg[1] >= 0)
                (void) send_msg(h->reg[1], MSG_CLOSE, TICKET_IDX(t), TICKET_SEQ(t), -1);
}

bool handoff_release(Handoff *h, int64_t t) {
        HandoffEntry *e = &h->shared->e[TICKET_IDX(t)];

        if (!owner_cas(e, WORD(TICKET_SEQ(t), h->self), WORD(TICKET_SEQ(t), HANDOFF_HELD)) &&
            !owner_cas(e, WORD(TICKET_SEQ(t), h->self | HANDOFF_BUSY), WORD(TICKET_SEQ(t), HANDOFF_HELD)))
                return false;
        /* Best effort, so that the master watches it at once rather than on its next tick. */
        if (h->reg[1] >= 0)
                (void) send_msg(h->reg[1], MSG_HELD, TICKET_IDX(t), TICKET_SEQ(t), -1);
        return true;
}

int64_t handoff_receive(Handoff *h, int *ret_fd, ConnInfo *ret_info) {
        Msg m;
        int fd;
        bool lost;
        ssize_t n;

        if (h->ready[1] < 0)
                return -EPIPE;
        n = recv_msg(h->ready[1], &m, &fd, &lost);
        if (n == -EBADMSG)
                return -ESTALE;
        if (n == -EAGAIN)
                return -EAGAIN;
        if (n <= 0)
                /* The master is gone: that of another image after a binary upgrade. */
                return -EPIPE;
        if (fd < 0 && lost) {
                /* The message came, its descriptor did not: nobody else will ever receive
                 * this one, so the entry goes back to the master, which still has the
                 * connection and offers it again when it is readable (at once: its request
                 * is waiting). */
                if (m.idx < h->n && owner_cas(&h->shared->e[m.idx], WORD(m.seq, HANDOFF_TRANSIT),
                                              WORD(m.seq, HANDOFF_HELD)) && h->reg[1] >= 0)
                        /* Best effort, as handoff_release(): the master's tick finds it too. */
                        (void) send_msg(h->reg[1], MSG_HELD, m.idx, m.seq, -1);
                return -EMFILE;
        }
        if (fd < 0 || m.idx >= h->n ||
            !owner_cas(&h->shared->e[m.idx], WORD(m.seq, HANDOFF_TRANSIT), WORD(m.seq, h->self | HANDOFF_BUSY))) {
                safe_close(fd);
                return -ESTALE;
        }
        *ret_info = h->shared->e[m.idx].info;
        *ret_fd = fd;
        return TICKET(m.seq, m.idx);
}

void handoff_ready_gone(Handoff *h) {
        h->ready[1] = safe_close(h->ready[1]);
}

/* ---- The master ---- */

size_t handoff_pollfds(const Handoff *h, int *fds, size_t cap) {
        if (!h || cap < 2)
                return 0;
        fds[0] = h->reg[0];
        fds[1] = h->epfd;
        return 2;
}

static void watch(Handoff *h, uint32_t i) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };

        if (h->watched[i] || h->dup[i] < 0)
                return;
        if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->dup[i], &ev) >= 0)
                h->watched[i] = true;
}

static void unwatch(Handoff *h, uint32_t i) {
        if (!h->watched[i])
                return;
        (void) epoll_ctl(h->epfd, EPOLL_CTL_DEL, h->dup[i], NULL);
        h->watched[i] = false;
}

static void drop(Handoff *h, uint32_t i) {
        unwatch(h, i);
        if (h->dup[i] >= 0) {
                safe_close(h->dup[i]);
                h->n_dups--;
        }
        h->dup[i] = -1;
        h->since[i] = 0;
        state_store(&h->shared->e[i], 0);
}

/* Passes entry i, whose owner word is from, to the ready queue. */
static void transit(Handoff *h, uint32_t i, uint64_t from) {
        unwatch(h, i);
        h->since[i] = 0;
        if (!owner_cas(&h->shared->e[i], from, WORD(SEQ(from), HANDOFF_TRANSIT)))
                return;
        if (send_msg(h->ready[0], MSG_REGISTER, i, SEQ(from), h->dup[i]) < 0) {
                /* The queue is full: it stays where it was, looked at again next tick. A
                 * swap, not a store: a worker holding an earlier message for the same entry
                 * (see HANDOFF_LOST_MS) may have taken it meanwhile. */
                (void) owner_cas(&h->shared->e[i], WORD(SEQ(from), HANDOFF_TRANSIT), from);
                log_debug("handoff: entry %u stays with %x, the ready queue is full", i, STATE(from));
                return;
        }
        log_debug("handoff: entry %u from %x to the ready queue", i, STATE(from));
}

static void take_registrations(Handoff *h, uint64_t now) {
        for (;;) {
                Msg m;
                int fd;
                ssize_t n = recv_msg(h->reg[0], &m, &fd, NULL);
                uint64_t word;
                uint32_t owner;

                if (n == -EBADMSG)
                        continue;
                if (n <= 0)
                        return;
                if (m.idx >= h->n) {
                        safe_close(fd);
                        continue;
                }
                word = owner_load(&h->shared->e[m.idx]);
                owner = STATE(word);
                if (SEQ(word) != m.seq) {
                        /* an entry's earlier life */
                        safe_close(fd);
                        continue;
                }
                if (m.op == MSG_CLOSE) {
                        /* its registration came before, on the same socket */
                        if (owner == HANDOFF_CLOSING)
                                drop(h, m.idx);
                        continue;
                }
                if (m.op == MSG_HELD) {
                        if (owner == HANDOFF_HELD && h->dup[m.idx] >= 0) {
                                h->since[m.idx] = now;
                                watch(h, m.idx);
                        }
                        continue;
                }
                if (fd < 0) {
                        /* Out of descriptors (MSG_CTRUNC): the connection stays with its
                         * worker alone; closing frees the entry. */
                        if (!h->lost_logged)
                                log_warning("The master cannot hold more kept-alive connections "
                                            "(descriptor limit): new ones stay with their worker alone");
                        h->lost_logged = true;
                        if (h->dup[m.idx] == -1)
                                h->dup[m.idx] = DUP_LOST;
                        continue;
                }
                if (owner == 0 || owner == HANDOFF_CLOSING || h->dup[m.idx] >= 0) {
                        safe_close(fd);
                        if (owner == HANDOFF_CLOSING && h->dup[m.idx] < 0)
                                drop(h, m.idx);
                        continue;
                }
                h->dup[m.idx] = fd;
                h->n_dups++;
                log_debug("handoff: entry %u registered by %x", m.idx, owner);
        }
}

typedef enum Reading {
        READING,                        /* the worker reads its idle connections */
        NOT_READING_BUSY,               /* inside one request */
        NOT_READING_STALE,              /* not beating (stopped?) */
} Reading;

static Reading worker_reading(Heartbeat *hb, uint32_t w, uint64_t now) {
        HeartbeatSlot *s = heartbeat_slot(hb, w - 1);

        if (!s || __atomic_load_n(&s->pid, __ATOMIC_RELAXED) == 0)
                return NOT_READING_STALE;
        if (heartbeat_load(&s->state) == SLOT_BUSY &&
            (int64_t) (now - heartbeat_load64(&s->request_start_ms)) >= HANDOFF_BUSY_MS)
                return NOT_READING_BUSY;
        if ((int64_t) (now - heartbeat_load64(&s->beat_ms)) >= HANDOFF_STALE_MS)
                return NOT_READING_STALE;
        return READING;
}

static bool is_worker(uint32_t owner) {
        return owner != 0 && owner < HANDOFF_BUSY;
}

void handoff_io(Handoff *h, Heartbeat *hb, uint64_t now) {
        struct epoll_event ev[HANDOFF_EVENTS_MAX];
        int n;

        if (!h)
                return;
        take_registrations(h, now);
        n = epoll_wait(h->epfd, ev, HANDOFF_EVENTS_MAX, 0);
        for (int k = 0; k < n; k++) {
                uint32_t i = ev[k].data.u32, owner;
                uint64_t word;

                if (i >= h->n || h->dup[i] < 0)
                        continue;
                word = owner_load(&h->shared->e[i]);
                owner = STATE(word);
                if (owner == HANDOFF_HELD) {
                        transit(h, i, word);
                        continue;
                }
                unwatch(h, i);
                if (!is_worker(owner))
                        continue;
                switch (worker_reading(hb, owner, now)) {
                case NOT_READING_BUSY:
                        transit(h, i, word);
                        break;
                case NOT_READING_STALE:
                        /* Perhaps only idle in epoll_wait(): it gets a moment to take it. */
                        if (!h->since[i])
                                h->since[i] = now;
                        break;
                default:
                        break;
                }
        }
}

/* Whether the ready queue holds no message: none is on its way to a worker. */
static bool ready_empty(const Handoff *h) {
        int q;

        /* The master keeps the receiving end too; what it counts is the queue's. An error
         * counts as not empty: nothing is taken back on a guess. */
        return ioctl(h->ready[1], SIOCINQ, &q) == 0 && q == 0;
}

/* Entry i is in transit: its message is in the ready queue, or with a worker that is about
 * to take the entry, or lost with a worker that died after receiving it. Only the last stays
 * so with the queue empty for HANDOFF_LOST_MS; the master then holds the connection again
 * and offers it anew when its client's request is there (which it is, or it would not have
 * been sent). *empty: the queue's state this tick, -1 until looked at. */
static void transit_check(Handoff *h, uint32_t i, uint64_t word, uint64_t now, int *empty) {
        if (*empty < 0)
                *empty = ready_empty(h);
        if (!*empty) {
                h->since[i] = 0;
                return;
        }
        if (!h->since[i]) {
                h->since[i] = now;
                return;
        }
        if (now - h->since[i] < HANDOFF_LOST_MS ||
            !owner_cas(&h->shared->e[i], word, WORD(SEQ(word), HANDOFF_HELD)))
                return;
        if (!h->transit_lost_logged)
                log_warning("A kept-alive connection passed on to a worker never reached it (the worker "
                            "died?): it is offered again");
        h->transit_lost_logged = true;
        log_debug("handoff: entry %u lost in transit, held again", i);
        h->since[i] = now;
        watch(h, i);
}

int handoff_tick(Handoff *h, Heartbeat *hb, uint64_t now, uint64_t keepalive_ms, size_t n_workers) {
        uint32_t used;
        int empty = -1;

        if (!h)
                return -1;
        if (now < h->next_scan)
                return h->n_dups > 0 && n_workers > 1 ? (int) (h->next_scan - now) : -1;
        h->next_scan = now + HANDOFF_TICK_MS;
        used = MIN(__atomic_load_n(&h->shared->used, __ATOMIC_ACQUIRE), h->n);
        for (uint32_t i = 0; i < used; i++) {
                uint64_t word = owner_load(&h->shared->e[i]);
                uint32_t owner = STATE(word);

                if (h->dup[i] == -1)
                        continue;       /* no registration yet */
                if (h->dup[i] == DUP_LOST) {
                        /* nothing to watch nor pass on: only the entry's end matters */
                        if (owner == HANDOFF_CLOSING || owner == 0 || owner == HANDOFF_HELD)
                                drop(h, i);
                        continue;
                }
                if (owner == HANDOFF_CLOSING || owner == 0) {
                        drop(h, i);
                } else if (owner == HANDOFF_HELD) {
                        if (!h->since[i])
                                h->since[i] = now;
                        if (now - h->since[i] >= keepalive_ms)
                                drop(h, i);     /* its keep-alive time is over: the last close */
                        else
                                watch(h, i);
                } else if (is_worker(owner)) {
                        Reading r = worker_reading(hb, owner, now);

                        if (r == READING) {
                                unwatch(h, i);
                                h->since[i] = 0;
                        } else if (r == NOT_READING_STALE && h->since[i]) {
                                if (now - h->since[i] >= HANDOFF_GRACE_MS)
                                        transit(h, i, word);
                        } else
                                watch(h, i);
                } else if (owner == HANDOFF_TRANSIT) {
                        unwatch(h, i);
                        transit_check(h, i, word, now, &empty);
                } else {
                        unwatch(h, i);
                        h->since[i] = 0;
                }
        }
        return h->n_dups > 0 && n_workers > 1 ? HANDOFF_TICK_MS : -1;
}

void handoff_worker_gone(Handoff *h, uint32_t self, uint64_t now) {
        uint32_t used;

        if (!h)
                return;
        /* Everything it sent is in the socket by now. */
        take_registrations(h, now);
        used = MIN(__atomic_load_n(&h->shared->used, __ATOMIC_ACQUIRE), h->n);
        for (uint32_t i = 0; i < used; i++) {
                uint32_t owner = STATE(owner_load(&h->shared->e[i]));

                if (owner == self && h->dup[i] >= 0) {
                        /* idle: the client loses nothing, the next worker takes it */
                        state_store(&h->shared->e[i], HANDOFF_HELD);
                        h->since[i] = now;
                        watch(h, i);
                } else if (owner == self || owner == (self | HANDOFF_BUSY))
                        /* a request was in flight in it: that is what dies with the worker */
                        drop(h, i);
        }
}
