/* Peer allow lists: --forwarded-allow-ips and --proxy-allow-from. Each entry is "*" (any
 * peer), an address or a network ("10.0.0.0/8", "fd00::/8", "10.0.0.0/255.0.0.0"), read as
 * Gunicorn 25+ reads them (Python's ipaddress.ip_network(), strict: no host bits set).
 * Pure C, never logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct AllowList AllowList;

/* Checks one entry. Returns 0, or -EINVAL with the reason. */
int allowlist_check_entry(const char *entry, char *reason, size_t reason_size);

/* Builds a list from NULL-terminated entries (checked before). Returns 0 or -EINVAL/-ENOMEM. */
int allowlist_new(char *const *entries, AllowList **ret);
AllowList *allowlist_free(AllowList *l);

/* Whether the peer at addr (numeric text, as ConnInfo holds it) is allowed. An address of
 * another family never matches: "::ffff:127.0.0.1" is not 127.0.0.1, as in Python. */
bool allowlist_contains(const AllowList *l, const char *addr);

static inline void allowlist_freep(AllowList **l) {
        *l = allowlist_free(*l);
}
