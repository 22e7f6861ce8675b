/* secure_scheme_headers and forwarded_allow_ips. The first scheme header decides; a later
 * one that says otherwise makes the request ambiguous, refused as Gunicorn refuses it. */
#include <errno.h>
#include <string.h>

#include "gcorn/allowlist.h"
#include "gcorn/forwarded.h"

static AllowList *trusted;

int forwarded_init(const Settings *s) {
        forwarded_done();
        if (!s)
                return 0;
        return allowlist_new(s->forwarded_allow_ips, &trusted);
}

void forwarded_done(void) {
        trusted = allowlist_free(trusted);
}

bool forwarded_peer_trusted(const ConnInfo *info) {
        if (info->is_unix)
                return true;
        return allowlist_contains(trusted, info->peer_addr[0] ? info->peer_addr : info->remote_addr);
}

int forwarded_scheme_header(SchemeState *st, const char *expected, size_t expected_len, const char *value,
                            size_t len) {
        bool https;

        if (st->trusted < 0)
                st->trusted = forwarded_peer_trusted(st->info);
        if (!st->trusted)
                return 0;
        https = len == expected_len && memcmp(value, expected, len) == 0;
        if (st->seen && https != st->https)
                return -EPROTO;
        st->seen = true;
        st->https = https;
        return 0;
}
