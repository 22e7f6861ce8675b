/* The workers' scoreboard: one slot per worker in shared memory (a memfd), written by the
 * worker (a beat on every turn of its loop, the request it is serving) and read by the
 * master, which kills workers whose beat is older than --timeout. No files, no fchmod().
 *
 * Fields are written with relaxed atomics by exactly one worker; the master only reads, so
 * a torn method/path string can at worst make a log line odd. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#define HEARTBEAT_SLOTS_MAX 1024
/* Requests in flight a worker shows; a worker kind that serves more at once counts the rest
 * in inflight_more. The sync worker fills the first one. */
#define HEARTBEAT_INFLIGHT_MAX 64
#define HEARTBEAT_REMOTE_SIZE 64

typedef enum SlotState {
        SLOT_FREE,
        SLOT_BOOTING,                   /* forked, importing the app */
        SLOT_IDLE,                      /* booted, in its event loop */
        SLOT_BUSY,                      /* inside the app */
} SlotState;

typedef struct HeartbeatRequest {
        uint64_t start_ms;
        char method[16];
        char path[200];
        char remote[HEARTBEAT_REMOTE_SIZE]; /* the client's address; "" for UNIX sockets */
} HeartbeatRequest;

/* Per-request counters for the metrics endpoint, written by the worker alone. */
typedef enum HeartbeatMethod {
        HB_GET, HB_HEAD, HB_POST, HB_PUT, HB_DELETE, HB_PATCH, HB_OPTIONS, HB_OTHER_METHOD, _HB_METHOD_MAX,
} HeartbeatMethod;

/* Status classes 1xx..5xx, and 0 for a request that got no status (the client went away). */
#define HB_STATUS_CLASSES 6
/* Request duration buckets, upper bounds in ms, Prometheus's defaults; one more for +Inf. */
#define HB_DURATION_BOUNDS 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000
#define HB_DURATION_BUCKETS 12

typedef struct HeartbeatCounters {
        uint64_t requests[_HB_METHOD_MAX][HB_STATUS_CLASSES];
        uint64_t duration[HB_DURATION_BUCKETS]; /* per bucket, not cumulative */
        uint64_t duration_ms_sum;
        uint64_t bytes_out;
        uint64_t accepted;
} HeartbeatCounters;

/* A worker that retires by itself (--max-requests, --max-worker-memory, --reload) waits,
 * once its connections are done, until the master has forked its replacement: the service
 * never has fewer workers than it should. */
typedef enum SlotRetiring {
        SLOT_SERVING = 0,
        SLOT_RETIRING = 1,              /* set by the worker */
        SLOT_REPLACED = 2,              /* set by the master once the replacement is forked */
} SlotRetiring;

/* Why it retires, in the bits above the SlotRetiring byte of the same word, for the
 * master's restart counts. */
typedef enum RetireCause {
        RETIRE_ASKED = 0,               /* the master's TERM, or orphaned */
        RETIRE_MAX_REQUESTS,
        RETIRE_MEMORY,
        RETIRE_RELOAD,                  /* --reload saw a file change */
        RETIRE_STUCK,                   /* gthread: a thread's request passed --timeout */
        _RETIRE_CAUSE_MAX,
} RetireCause;
#define SLOT_RETIRING_STATE(v) ((v) & 0xffu)
#define SLOT_RETIRING_CAUSE(v) ((v) >> 8)

typedef struct HeartbeatSlot {
        pid_t pid;
        uint32_t generation;
        uint32_t state;                 /* SlotState */
        uint32_t retiring;              /* it will exit by itself (max_requests, TERM): a SlotRetiring */
        uint32_t accepting;             /* its listeners are in its epoll set */
        uint32_t conns;                 /* connections it holds open */
        uint64_t beat_ms;               /* CLOCK_MONOTONIC ms of the last loop turn */
        uint64_t request_start_ms;
        uint64_t requests;
        uint32_t inflight;              /* entries of requests[] in use */
        uint32_t inflight_more;         /* in flight beyond those */
        HeartbeatCounters counters;
        HeartbeatRequest requests_inflight[HEARTBEAT_INFLIGHT_MAX];
        char error[256];                /* why the app could not be loaded, for STATUS= */
} HeartbeatSlot;

typedef struct Heartbeat Heartbeat;

int heartbeat_new(Heartbeat **ret);
/* Maps the table behind fd (a memfd from heartbeat_new(), passed across a binary upgrade)
 * and takes ownership of fd. */
int heartbeat_adopt(int fd, Heartbeat **ret);
Heartbeat *heartbeat_free(Heartbeat *h);
int heartbeat_fd(const Heartbeat *h);
size_t heartbeat_slot_index(const Heartbeat *h, const HeartbeatSlot *slot);
HeartbeatSlot *heartbeat_slot(Heartbeat *h, size_t index);

/* A free slot for a new worker (the master, before fork), or NULL when all are taken. */
HeartbeatSlot *heartbeat_claim(Heartbeat *h, uint32_t generation);
void heartbeat_release(HeartbeatSlot *slot);

/* The fewest connections held by another worker that accepts and would take a new one soon
 * (not retiring, not inside one request for busy_ms or more), or UINT32_MAX when there is no
 * such worker. */
uint32_t heartbeat_least_conns(Heartbeat *h, const HeartbeatSlot *self, uint64_t now_ms, uint64_t busy_ms);

/* The worker's side. */
void heartbeat_beat(HeartbeatSlot *slot, uint64_t now_ms);
void heartbeat_set_state(HeartbeatSlot *slot, SlotState state);
/* remote: a NUL-terminated address in a buffer of HEARTBEAT_REMOTE_SIZE bytes. */
void heartbeat_request_begin(HeartbeatSlot *slot, const char *method, size_t method_len, const char *path,
                             size_t path_len, const char *remote, uint64_t now_ms);
void heartbeat_request_end(HeartbeatSlot *slot, uint64_t now_ms);
/* A worker kind that serves requests side by side (gthread) shows each in an entry of its
 * own: heartbeat_inflight_set() fills entry i, heartbeat_inflight_move() copies entry from
 * over entry to, heartbeat_inflight_count() publishes how many are in use and how many more
 * there are. */
void heartbeat_inflight_set(HeartbeatSlot *slot, uint32_t i, const char *method, size_t method_len,
                            const char *path, size_t path_len, const char *remote, uint64_t now_ms);
void heartbeat_inflight_move(HeartbeatSlot *slot, uint32_t from, uint32_t to);
void heartbeat_inflight_count(HeartbeatSlot *slot, uint32_t n, uint32_t more);
void heartbeat_set_load(HeartbeatSlot *slot, bool accepting, uint32_t conns);

static inline uint32_t heartbeat_load(const uint32_t *p) {
        return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline uint64_t heartbeat_load64(const uint64_t *p) {
        return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Single writer: a plain add stored with a relaxed atomic, no locked instruction. */
static inline void heartbeat_add(uint64_t *p, uint64_t v) {
        __atomic_store_n(p, *p + v, __ATOMIC_RELAXED);
}

static inline HeartbeatMethod heartbeat_method(const char *m, size_t len) {
        switch (len) {
        case 3:
                return m[0] == 'G' && m[1] == 'E' && m[2] == 'T' ? HB_GET :
                       m[0] == 'P' && m[1] == 'U' && m[2] == 'T' ? HB_PUT : HB_OTHER_METHOD;
        case 4:
                return memcmp(m, "HEAD", 4) == 0 ? HB_HEAD : memcmp(m, "POST", 4) == 0 ? HB_POST : HB_OTHER_METHOD;
        case 5:
                return memcmp(m, "PATCH", 5) == 0 ? HB_PATCH : HB_OTHER_METHOD;
        case 6:
                return memcmp(m, "DELETE", 6) == 0 ? HB_DELETE : HB_OTHER_METHOD;
        case 7:
                return memcmp(m, "OPTIONS", 7) == 0 ? HB_OPTIONS : HB_OTHER_METHOD;
        default:
                return HB_OTHER_METHOD;
        }
}

static inline void heartbeat_count_request(HeartbeatSlot *slot, HeartbeatMethod method, int status, uint64_t bytes,
                                           uint64_t duration_ms) {
        static const uint16_t bounds[] = { HB_DURATION_BOUNDS };
        unsigned cls = status >= 100 && status < 600 ? (unsigned) status / 100 : 0, b = 0;

        while (b < HB_DURATION_BUCKETS - 1 && duration_ms > bounds[b])
                b++;
        heartbeat_add(&slot->counters.requests[method][cls], 1);
        heartbeat_add(&slot->counters.duration[b], 1);
        heartbeat_add(&slot->counters.duration_ms_sum, duration_ms);
        heartbeat_add(&slot->counters.bytes_out, bytes);
}
