/* Peer allow lists ("*", addresses, networks), parsed once per worker and consulted only
 * when a peer asks for trust: a PROXY header, or a scheme header. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcorn/allowlist.h"
#include "gcorn/macro.h"

typedef struct Network {
        int family;
        uint8_t addr[16];
        unsigned prefix;                /* leading bits that must match */
} Network;

struct AllowList {
        bool any;                       /* "*" */
        size_t n;
        Network nets[];
};

static size_t family_bytes(int family) {
        return family == AF_INET ? 4 : 16;
}

/* The prefix length of a contiguous mask of n bytes, or -1 when its ones are not leading. */
static int mask_prefix(const uint8_t *m, size_t n) {
        unsigned bits = 0;
        bool zero_seen = false;

        for (size_t i = 0; i < n * 8; i++) {
                bool one = m[i / 8] & (0x80 >> (i % 8));

                if (one && zero_seen)
                        return -1;
                if (one)
                        bits++;
                else
                        zero_seen = true;
        }
        return (int) bits;
}

/* An IPv4 "/255.255.0.0" netmask or "/0.0.255.255" hostmask, as ipaddress takes them. */
static int dotted_prefix(const char *s) {
        uint8_t m[4];
        int k;

        if (inet_pton(AF_INET, s, m) != 1)
                return -1;
        k = mask_prefix(m, 4);
        if (k >= 0)
                return k;
        for (size_t i = 0; i < 4; i++)
                m[i] = (uint8_t) ~m[i];
        return mask_prefix(m, 4);
}

static int parse_entry(const char *entry, Network *ret, char *reason, size_t reason_size) {
        char addr[INET6_ADDRSTRLEN + 1];
        const char *slash = strchr(entry, '/');
        size_t len = slash ? (size_t) (slash - entry) : strlen(entry);
        size_t bytes;
        Network n = {};

        if (len == 0 || len >= sizeof(addr))
                goto bad;
        memcpy(addr, entry, len);
        addr[len] = 0;
        n.family = strchr(addr, ':') ? AF_INET6 : AF_INET;
        if (inet_pton(n.family, addr, n.addr) != 1)
                goto bad;
        bytes = family_bytes(n.family);
        n.prefix = (unsigned) bytes * 8;
        if (slash) {
                const char *p = slash + 1;
                char *end;
                unsigned long v;
                int k;

                if (*p >= '0' && *p <= '9' && p[strspn(p, "0123456789")] == 0) {
                        errno = 0;
                        v = strtoul(p, &end, 10);
                        if (errno != 0 || v > bytes * 8)
                                goto bad_prefix;
                        n.prefix = (unsigned) v;
                } else if (n.family == AF_INET && (k = dotted_prefix(p)) >= 0)
                        n.prefix = (unsigned) k;
                else
                        goto bad_prefix;
        }
        /* strict, as ip_network(): "192.168.1.1/24" is a mistake for 192.168.1.0/24 */
        for (size_t i = n.prefix; i < bytes * 8; i++)
                if (n.addr[i / 8] & (0x80 >> (i % 8))) {
                        snprintf(reason, reason_size, "has host bits set");
                        return -EINVAL;
                }
        *ret = n;
        return 0;
bad_prefix:
        snprintf(reason, reason_size, "invalid network prefix");
        return -EINVAL;
bad:
        snprintf(reason, reason_size, "not an IP address or network, nor '*'");
        return -EINVAL;
}

int allowlist_check_entry(const char *entry, char *reason, size_t reason_size) {
        Network n;

        if (strcmp(entry, "*") == 0)
                return 0;
        return parse_entry(entry, &n, reason, reason_size);
}

int allowlist_new(char *const *entries, AllowList **ret) {
        _cleanup_free_ AllowList *l = NULL;
        char reason[128];
        size_t count = 0;
        int r;

        while (entries && entries[count])
                count++;
        l = calloc(1, sizeof(AllowList) + count * sizeof(Network));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < count; i++) {
                if (strcmp(entries[i], "*") == 0) {
                        l->any = true;
                        continue;
                }
                r = parse_entry(entries[i], &l->nets[l->n], reason, sizeof(reason));
                if (r < 0)
                        return r;
                l->n++;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

AllowList *allowlist_free(AllowList *l) {
        free(l);
        return NULL;
}

static bool network_contains(const Network *n, int family, const uint8_t *a) {
        unsigned full = n->prefix / 8, rest = n->prefix % 8;

        if (n->family != family || memcmp(n->addr, a, full) != 0)
                return false;
        return rest == 0 || ((n->addr[full] ^ a[full]) & (uint8_t) (0xff << (8 - rest))) == 0;
}

bool allowlist_contains(const AllowList *l, const char *addr) {
        uint8_t a[16];
        int family;

        if (!l)
                return false;
        if (l->any)
                return true;
        family = strchr(addr, ':') ? AF_INET6 : AF_INET;
        if (inet_pton(family, addr, a) != 1)
                return false;
        for (size_t i = 0; i < l->n; i++)
                if (network_contains(&l->nets[i], family, a))
                        return true;
        return false;
}
