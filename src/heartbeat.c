/* Shared-memory scoreboard of the workers. */
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gcorn/heartbeat.h"
#include "gcorn/macro.h"

typedef struct Table {
        uint32_t used;                  /* slots at or above this were never claimed */
        HeartbeatSlot slots[HEARTBEAT_SLOTS_MAX];
} Table;

struct Heartbeat {
        Table *table;                   /* MAP_SHARED */
        int fd;                         /* the memfd behind it, passed on by a binary upgrade */
};

static int map_table(int fd, Heartbeat **ret) {
        Heartbeat *h;
        void *p;

        h = calloc(1, sizeof(Heartbeat));
        if (!h)
                return -ENOMEM;
        /* Pages are only touched for slots in use, so the full size costs nothing. */
        p = mmap(NULL, sizeof(Table), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
                free(h);
                return -errno;
        }
        h->table = p;
        h->fd = fd;
        *ret = h;
        return 0;
}

int heartbeat_new(Heartbeat **ret) {
        _cleanup_close_ int fd = -1;
        int r;

        /* A memfd rather than anonymous memory: the master can hand it to the image it
         * executes on USR2, and that one reads the running workers' beats from it. */
        fd = memfd_create("gcorn-heartbeat", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (ftruncate(fd, sizeof(Table)) < 0)
                return -errno;
        r = map_table(fd, ret);
        if (r < 0)
                return r;
        TAKE_FD(fd);
        return 0;
}

int heartbeat_adopt(int fd, Heartbeat **ret) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if ((size_t) st.st_size != sizeof(Table))
                return -EBADMSG;
        return map_table(fd, ret);
}

int heartbeat_fd(const Heartbeat *h) {
        return h->fd;
}

size_t heartbeat_slot_index(const Heartbeat *h, const HeartbeatSlot *slot) {
        return (size_t) (slot - h->table->slots);
}

HeartbeatSlot *heartbeat_slot(Heartbeat *h, size_t index) {
        return index < HEARTBEAT_SLOTS_MAX ? &h->table->slots[index] : NULL;
}

Heartbeat *heartbeat_free(Heartbeat *h) {
        if (!h)
                return NULL;
        (void) munmap(h->table, sizeof(Table));
        safe_close(h->fd);
        free(h);
        return NULL;
}

HeartbeatSlot *heartbeat_claim(Heartbeat *h, uint32_t generation) {
        for (size_t i = 0; i < HEARTBEAT_SLOTS_MAX; i++) {
                HeartbeatSlot *s = &h->table->slots[i];

                if (s->state == SLOT_FREE && s->pid == 0) {
                        memset(s, 0, sizeof(*s));
                        s->generation = generation;
                        s->state = SLOT_BOOTING;
                        if (i >= h->table->used)
                                __atomic_store_n(&h->table->used, (uint32_t) i + 1, __ATOMIC_RELEASE);
                        return s;
                }
        }
        return NULL;
}

void heartbeat_release(HeartbeatSlot *slot) {
        memset(slot, 0, sizeof(*slot));
}

uint32_t heartbeat_least_conns(Heartbeat *h, const HeartbeatSlot *self, uint64_t now_ms, uint64_t busy_ms) {
        uint32_t used = __atomic_load_n(&h->table->used, __ATOMIC_ACQUIRE), least = UINT32_MAX;

        for (uint32_t i = 0; i < used; i++) {
                const HeartbeatSlot *s = &h->table->slots[i];

                if (s == self || !heartbeat_load(&s->accepting) || heartbeat_load(&s->retiring))
                        continue;
                if (heartbeat_load(&s->state) == SLOT_BUSY &&
                    (int64_t) (now_ms - heartbeat_load64(&s->request_start_ms)) >= (int64_t) busy_ms)
                        continue;
                least = MIN(least, heartbeat_load(&s->conns));
        }
        return least;
}

void heartbeat_set_load(HeartbeatSlot *slot, bool accepting, uint32_t conns) {
        __atomic_store_n(&slot->accepting, (uint32_t) accepting, __ATOMIC_RELAXED);
        __atomic_store_n(&slot->conns, conns, __ATOMIC_RELAXED);
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
                             size_t path_len, const char *remote, uint64_t now_ms) {
        HeartbeatRequest *q = &slot->requests_inflight[0];

        copy_field(q->method, sizeof(q->method), method, method_len);
        copy_field(q->path, sizeof(q->path), path, path_len);
        /* A fixed size: a few moves rather than strlen() and memcpy() calls per request. */
        memcpy(q->remote, remote, sizeof(q->remote));
        q->remote[sizeof(q->remote) - 1] = 0;
        q->start_ms = now_ms;
        __atomic_store_n(&slot->inflight, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&slot->request_start_ms, now_ms, __ATOMIC_RELAXED);
        __atomic_store_n(&slot->beat_ms, now_ms, __ATOMIC_RELAXED);
        heartbeat_set_state(slot, SLOT_BUSY);
}

void heartbeat_request_end(HeartbeatSlot *slot, uint64_t now_ms) {
        __atomic_store_n(&slot->requests, slot->requests + 1, __ATOMIC_RELAXED);
        __atomic_store_n(&slot->inflight, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&slot->beat_ms, now_ms, __ATOMIC_RELAXED);
        heartbeat_set_state(slot, SLOT_IDLE);
}

void heartbeat_inflight_set(HeartbeatSlot *slot, uint32_t i, const char *method, size_t method_len,
                            const char *path, size_t path_len, const char *remote, uint64_t now_ms) {
        HeartbeatRequest *q = &slot->requests_inflight[i];

        copy_field(q->method, sizeof(q->method), method, method_len);
        copy_field(q->path, sizeof(q->path), path, path_len);
        memcpy(q->remote, remote, sizeof(q->remote));
        q->remote[sizeof(q->remote) - 1] = 0;
        q->start_ms = now_ms;
}

void heartbeat_inflight_move(HeartbeatSlot *slot, uint32_t from, uint32_t to) {
        slot->requests_inflight[to] = slot->requests_inflight[from];
}

void heartbeat_inflight_count(HeartbeatSlot *slot, uint32_t n, uint32_t more) {
        __atomic_store_n(&slot->inflight, n, __ATOMIC_RELAXED);
        __atomic_store_n(&slot->inflight_more, more, __ATOMIC_RELAXED);
}
