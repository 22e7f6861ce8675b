/* The scheme a trusted front end reports: secure_scheme_headers honoured from peers in
 * --forwarded-allow-ips (a UNIX-socket peer is always trusted), by Gunicorn's rules. The
 * peer is the socket's, even when a PROXY header named another client. Python-free. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "gcorn/conn.h"
#include "gcorn/settings.h"

/* Reads forwarded_allow_ips (s may be NULL: nobody is trusted). Returns 0 or -ENOMEM. */
int forwarded_init(const Settings *s);
void forwarded_done(void);

/* Whether the connection's peer may speak for the client. */
bool forwarded_peer_trusted(const ConnInfo *info);

/* What one request's scheme headers said so far. */
typedef struct SchemeState {
        const ConnInfo *info;
        signed char trusted;            /* -1: not asked yet (most requests never ask) */
        bool seen;                      /* a scheme header from a trusted peer came */
        bool https;
} SchemeState;

#define SCHEME_STATE_INIT(i) ((SchemeState) { .info = (i), .trusted = -1 })

/* A header named in secure_scheme_headers arrived with value; expected is the value that
 * means HTTPS. Returns 0, or -EPROTO when it contradicts an earlier one (Gunicorn's
 * InvalidSchemeHeaders, a 400). From an untrusted peer it changes nothing. */
int forwarded_scheme_header(SchemeState *st, const char *expected, size_t expected_len, const char *value,
                            size_t len);
