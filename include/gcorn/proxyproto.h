/* The PROXY protocol header a load balancer may put ahead of a connection's first request
 * (HAProxy's spec, versions 1 and 2): gcorn's own scanner. Pure C, no sockets, never logs.
 *
 * The scanner is stateless: it reads the bytes received so far from the start of the
 * connection, so feeding them in any number of pieces gives the same answer. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ProxyMode {
        PROXY_OFF,
        PROXY_V1,                       /* "PROXY TCP4 ...\r\n" only */
        PROXY_V2,                       /* the binary header only */
        PROXY_AUTO,                     /* either */
} ProxyMode;

/* "off", "v1", "v2", "auto" -> the mode; -EINVAL otherwise. */
int proxy_mode_from_string(const char *s);

typedef enum ProxyScan {
        PROXY_SCAN_NOT,                 /* not a PROXY header: the bytes are the request's */
        PROXY_SCAN_MAYBE,               /* too few bytes to tell */
        PROXY_SCAN_PARTIAL,             /* a PROXY header (its signature is in), not complete */
        PROXY_SCAN_DONE,                /* complete: see ProxyHeader */
} ProxyScan;

typedef struct ProxyHeader {
        int version;                    /* 1 or 2 */
        /* "TCP4", "TCP6"; or, when the header names no client to use, "UNKNOWN" (v1),
         * "LOCAL" (a v2 health check) or "UNSPEC" (v2, an address family without addresses
         * for us: unspecified or AF_UNIX) */
        const char *protocol;
        bool has_addresses;             /* src/dst below are set (TCP4, TCP6) */
        char src_addr[46], dst_addr[46];        /* INET6_ADDRSTRLEN */
        uint16_t src_port, dst_port;
        size_t length;                  /* bytes of the header, to skip */
} ProxyHeader;

/* Reads the first len bytes of a connection in the given mode (not PROXY_OFF). Returns a
 * ProxyScan (*ret filled for PROXY_SCAN_DONE), or -EBADMSG for a malformed header with a
 * static reason in *ret_reason. Once a header's signature is in, the answer is PARTIAL,
 * DONE or -EBADMSG. */
int proxy_scan(ProxyMode mode, const char *data, size_t len, ProxyHeader *ret, const char **ret_reason);
