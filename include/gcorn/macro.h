/* Small helpers shared by every module: cleanup attributes and ownership transfer. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)
/* Per-thread state (a gthread worker's app threads): gcorn's code is only ever linked into
 * executables, so the cheapest model applies, one %fs-relative access like a global's. */
#define _thread_local_ _Thread_local __attribute__((tls_model("local-exec")))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Hand the value of an owning variable on and leave NULL behind, so its cleanup does nothing. */
#define TAKE_PTR(p)                        \
        ({                                 \
                typeof(p) _p_ = (p);       \
                (p) = NULL;                \
                _p_;                       \
        })

#define TAKE_FD(fd)                        \
        ({                                 \
                int _fd_ = (fd);           \
                (fd) = -1;                 \
                _fd_;                      \
        })

/* -1/errno to -errno */
#define RET_NERRNO(expr)                   \
        ({                                 \
                int _r_ = (expr);          \
                _r_ < 0 ? -errno : _r_;    \
        })

static inline void freep(void *p) {
        free(*(void **) p);
        *(void **) p = NULL;
}
#define _cleanup_free_ _cleanup_(freep)

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -1;
}

static inline void closep(int *fd) {
        *fd = safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void strv_free(char **v) {
        if (!v)
                return;
        for (char **i = v; *i; i++)
                free(*i);
        free(v);
}
static inline bool strv_equal(char **a, char **b) {
        size_t i = 0;

        for (; a && b && a[i] && b[i]; i++)
                if (strcmp(a[i], b[i]) != 0)
                        return false;
        return !(a && a[i]) && !(b && b[i]);
}

static inline void strv_freep(char ***v) {
        strv_free(*v);
        *v = NULL;
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)

static inline const char *strna(const char *s) {
        return s ? s : "n/a";
}
