/* Shared-memory scoreboard of the workers. */
#include <string.h>
#include <sys/mman.h>

#include "gcorn/heartbeat.h"
#include "gcorn/macro.h"

struct Heartbeat {
        HeartbeatSlot *slots;           /* HEARTBEAT_SLOTS_MAX of them, MAP_SHARED */
};

int heartbeat_new(Heartbeat **ret) {
        Heartbeat *h;
        void *p;

        h = calloc(1, sizeof(Heartbeat));
        if (!h)
                return -ENOMEM;
        /* Pages are only touched for slots in use, so the full size costs nothing. */
        p = mmap(NULL, sizeof(HeartbeatSlot) * HEARTBEAT_SLOTS_MAX, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
                free(h);
                return -errno;
        }
        h->slots = p;
        *ret = h;
        return 0;
}

Heartbeat *heartbeat_free(Heartbeat *h) {
        if (!h)
                return NULL;
        (void) munmap(h->slots, sizeof(HeartbeatSlot) * HEARTBEAT_SLOTS_MAX);
        free(h);
        return NULL;
}

HeartbeatSlot *heartbeat_claim(Heartbeat *h, uint32_t generation) {
        for (size_t i = 0; i < HEARTBEAT_SLOTS_MAX; i++) {
                HeartbeatSlot *s = &h->slots[i];

                if (s->state == SLOT_FREE && s->pid == 0) {
                        memset(s, 0, sizeof(*s));
                        s->generation = generation;
                        s->state = SLOT_BOOTING;
                        return s;
                }
        }
        return NULL;
}

void heartbeat_release(HeartbeatSlot *slot) {
        memset(slot, 0, sizeof(*slot));
}

HeartbeatSlot *heartbeat_find(Heartbeat *h, pid_t pid) {
        for (size_t i = 0; i < HEARTBEAT_SLOTS_MAX; i++)
                if (h->slots[i].pid == pid && pid > 0)
                        return &h->slots[i];
        return NULL;
}

HeartbeatSlot *heartbeat_slot(Heartbeat *h, size_t i) {
        return i < HEARTBEAT_SLOTS_MAX ? &h->slots[i] : NULL;
}

void heartbeat_beat(HeartbeatSlot *slot, uint64_t now_ms) {
        __atomic_store_n(&slot->beat_ms, now_ms, __ATOMIC_RELAXED);
}

void heartbeat_set_state(HeartbeatSlot *slot, SlotState state) {
        __atomic_store_n(&slot->state, (uint32_t) state, __ATOMIC_RELEASE);
}

static void copy_field(char *dst, size_t cap, const char *src, size_t len) {
        len = MIN(len, cap - 1);
        memcpy(dst, src, len);
        dst[len] = 0;
}

void heartbeat_request_begin(HeartbeatSlot *slot, const char *method, size_t method_len, const char *path,
                             size_t path_len, uint64_t now_ms) {
        copy_field(slot->method, sizeof(slot->method), method, method_len);
        copy_field(slot->path, sizeof(slot->path), path, path_len);
        __atomic_store_n(&slot->request_start_ms, now_ms, __ATOMIC_RELAXED);
        __atomic_store_n(&slot->beat_ms, now_ms, __ATOMIC_RELAXED);
        heartbeat_set_state(slot, SLOT_BUSY);
}

void heartbeat_request_end(HeartbeatSlot *slot, uint64_t now_ms) {
        __atomic_store_n(&slot->requests, slot->requests + 1, __ATOMIC_RELAXED);
        __atomic_store_n(&slot->beat_ms, now_ms, __ATOMIC_RELAXED);
        heartbeat_set_state(slot, SLOT_IDLE);
}
