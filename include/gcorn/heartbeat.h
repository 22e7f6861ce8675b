/* The workers' scoreboard: one slot per worker in anonymous shared memory, written by the
 * worker (a beat on every turn of its loop, the request it is serving) and read by the
 * master, which kills workers whose beat is older than --timeout. No files, no fchmod().
 *
 * Fields are written with relaxed atomics by exactly one worker; the master only reads, so
 * a torn method/path string can at worst make a log line odd. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define HEARTBEAT_SLOTS_MAX 1024
/* Requests in flight a worker shows; a worker kind that serves more at once counts the rest
 * in inflight_more. The sync worker fills the first one. */
#define HEARTBEAT_INFLIGHT_MAX 64

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
        char remote[64];                /* the client's address; "" for UNIX sockets */
} HeartbeatRequest;

typedef struct HeartbeatSlot {
        pid_t pid;
        uint32_t generation;
        uint32_t state;                 /* SlotState */
        uint32_t retiring;              /* it will exit by itself (max_requests, TERM) */
        uint32_t accepting;             /* its listeners are in its epoll set */
        uint32_t conns;                 /* connections it holds open */
        uint64_t beat_ms;               /* CLOCK_MONOTONIC ms of the last loop turn */
        uint64_t request_start_ms;
        uint64_t requests;
        uint32_t inflight;              /* entries of requests[] in use */
        uint32_t inflight_more;         /* in flight beyond those */
        HeartbeatRequest requests_inflight[HEARTBEAT_INFLIGHT_MAX];
        char error[256];                /* why the app could not be loaded, for STATUS= */
} HeartbeatSlot;

typedef struct Heartbeat Heartbeat;

int heartbeat_new(Heartbeat **ret);
Heartbeat *heartbeat_free(Heartbeat *h);

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
void heartbeat_request_begin(HeartbeatSlot *slot, const char *method, size_t method_len, const char *path,
                             size_t path_len, const char *remote, uint64_t now_ms);
void heartbeat_request_end(HeartbeatSlot *slot, uint64_t now_ms);
void heartbeat_set_load(HeartbeatSlot *slot, bool accepting, uint32_t conns);

static inline uint32_t heartbeat_load(const uint32_t *p) {
        return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline uint64_t heartbeat_load64(const uint64_t *p) {
        return __atomic_load_n(p, __ATOMIC_RELAXED);
}
