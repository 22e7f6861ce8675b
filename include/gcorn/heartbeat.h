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
#include <sys/types.h>

#define HEARTBEAT_SLOTS_MAX 1024

typedef enum SlotState {
        SLOT_FREE,
        SLOT_BOOTING,                   /* forked, importing the app */
        SLOT_IDLE,                      /* booted, in its event loop */
        SLOT_BUSY,                      /* inside the app */
} SlotState;

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
        char method[16];
        char path[200];
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
void heartbeat_request_begin(HeartbeatSlot *slot, const char *method, size_t method_len, const char *path,
                             size_t path_len, uint64_t now_ms);
void heartbeat_request_end(HeartbeatSlot *slot, uint64_t now_ms);
void heartbeat_set_load(HeartbeatSlot *slot, bool accepting, uint32_t conns);

static inline uint32_t heartbeat_load(const uint32_t *p) {
        return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline uint64_t heartbeat_load64(const uint64_t *p) {
        return __atomic_load_n(p, __ATOMIC_RELAXED);
}
