/* PROXY protocol v1 and v2 (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt),
 * with Gunicorn 25's modes and checks. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "gcorn/macro.h"
#include "gcorn/proxyproto.h"

#define V1_PREFIX "PROXY "
#define V1_PREFIX_LEN (sizeof(V1_PREFIX) - 1)
/* the spec's longest line: "PROXY TCP6 " + two full IPv6 addresses and ports + CRLF */
#define V1_MAX 107

static const char v2_signature[12] = { '\r', '\n', '\r', '\n', '\0', '\r', '\n', 'Q', 'U', 'I', 'T', '\n' };
#define V2_HEAD 16
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_FAM_UNSPEC 0x0
#define V2_FAM_INET 0x1
#define V2_FAM_INET6 0x2
#define V2_FAM_UNIX 0x3
#define V2_PROTO_STREAM 0x1

int proxy_mode_from_string(const char *s) {
        static const char *const names[] = {
                [PROXY_OFF] = "off", [PROXY_V1] = "v1", [PROXY_V2] = "v2", [PROXY_AUTO] = "auto",
        };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcmp(s, names[i]) == 0)
                        return (int) i;
        return -EINVAL;
}

static int bad(const char **ret_reason, const char *reason) {
        *ret_reason = reason;
        return -EBADMSG;
}

/* How data compares with a signature: 1 it starts with it, 0 it may (too short), -1 not. */
static int starts_with(const char *data, size_t len, const char *sig, size_t sig_len) {
        if (memcmp(data, sig, MIN(len, sig_len)) != 0)
                return -1;
        return len >= sig_len ? 1 : 0;
}

/* One space-separated field of a v1 line: [*p, end) up to the next space (or end). */
static bool next_field(const char **p, const char *end, char *buf, size_t cap) {
        const char *s = *p, *e = memchr(s, ' ', (size_t) (end - s));
        size_t n;

        if (!e)
                e = end;
        n = (size_t) (e - s);
        if (n == 0 || n >= cap)
                return false;
        memcpy(buf, s, n);
        buf[n] = 0;
        *p = e < end ? e + 1 : end;
        return true;
}

/* A decimal port: 1 to 5 digits, at most 65535 (Gunicorn's int() check, without signs). */
static bool parse_port(const char *s, uint16_t *ret) {
        unsigned v = 0;
        size_t n = strlen(s);

        if (n == 0 || n > 5)
                return false;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (unsigned) (s[i] - '0');
        }
        if (v > 65535)
                return false;
        *ret = (uint16_t) v;
        return true;
}

static int scan_v1(const char *data, size_t len, ProxyHeader *ret, const char **ret_reason) {
        const char *cr = memchr(data, '\r', MIN(len, (size_t) V1_MAX - 1));
        const char *lf = memchr(data, '\n', MIN(len, (size_t) V1_MAX));
        const char *p = data + V1_PREFIX_LEN, *end;
        char proto[8], ports[2][8];
        ProxyHeader h = { .version = 1 };
        int family;

        if (lf && (!cr || cr + 1 != lf))
                return bad(ret_reason, "PROXY line not ended by CRLF");
        if (!cr) {
                if (len >= V1_MAX - 1)
                        return bad(ret_reason, "PROXY line too long");
                return PROXY_SCAN_PARTIAL;
        }
        if ((size_t) (cr - data) + 1 >= len)
                return PROXY_SCAN_PARTIAL;      /* the LF is still to come */
        if (cr[1] != '\n')
                return bad(ret_reason, "PROXY line not ended by CRLF");
        end = cr;
        h.length = (size_t) (cr - data) + 2;

        if (!next_field(&p, end, proto, sizeof(proto)))
                return bad(ret_reason, "Invalid PROXY line");
        if (strcmp(proto, "UNKNOWN") == 0) {
                /* the sender could not tell: the rest of the line is to be ignored */
                h.protocol = "UNKNOWN";
                *ret = h;
                return PROXY_SCAN_DONE;
        }
        if (strcmp(proto, "TCP4") == 0) {
                h.protocol = "TCP4";
                family = AF_INET;
        } else if (strcmp(proto, "TCP6") == 0) {
                h.protocol = "TCP6";
                family = AF_INET6;
        } else
                return bad(ret_reason, "PROXY protocol not supported");

        if (!next_field(&p, end, h.src_addr, sizeof(h.src_addr)) ||
            !next_field(&p, end, h.dst_addr, sizeof(h.dst_addr)) ||
            !next_field(&p, end, ports[0], sizeof(ports[0])) ||
            !next_field(&p, end, ports[1], sizeof(ports[1])) || p != end || end[-1] == ' ')
                return bad(ret_reason, "Invalid PROXY line");
        {
                unsigned char a[16];

                if (inet_pton(family, h.src_addr, a) != 1 || inet_pton(family, h.dst_addr, a) != 1)
                        return bad(ret_reason, "Invalid PROXY line address");
        }
        if (!parse_port(ports[0], &h.src_port) || !parse_port(ports[1], &h.dst_port))
                return bad(ret_reason, "Invalid PROXY line port");
        h.has_addresses = true;
        *ret = h;
        return PROXY_SCAN_DONE;
}

static int scan_v2(const char *data, size_t len, ProxyHeader *ret, const char **ret_reason) {
        const unsigned char *u = (const unsigned char *) data;
        ProxyHeader h = { .version = 2 };
        unsigned command, family, protocol;
        size_t body;

        if (len < V2_HEAD)
                return PROXY_SCAN_PARTIAL;
        if ((u[12] >> 4) != 2)
                return bad(ret_reason, "Unsupported PROXY header version");
        command = u[12] & 0xf;
        if (command != V2_CMD_LOCAL && command != V2_CMD_PROXY)
                return bad(ret_reason, "Unsupported PROXY header command");
        family = u[13] >> 4;
        protocol = u[13] & 0xf;
        body = (size_t) u[14] << 8 | u[15];
        if (len < V2_HEAD + body)
                return PROXY_SCAN_PARTIAL;
        h.length = V2_HEAD + body;
        u += V2_HEAD;

        /* LOCAL: the proxy's own connection (a health check); the addresses, if any, are
         * to be ignored. Beyond the addresses come TLVs, skipped with the rest. */
        if (command == V2_CMD_LOCAL) {
                h.protocol = "LOCAL";
                *ret = h;
                return PROXY_SCAN_DONE;
        }
        switch (family) {
        case V2_FAM_UNSPEC:
                h.protocol = "UNSPEC";
                *ret = h;
                return PROXY_SCAN_DONE;
        case V2_FAM_INET:
        case V2_FAM_INET6:
        case V2_FAM_UNIX:
                if (protocol != V2_PROTO_STREAM)
                        return bad(ret_reason, "PROXY header protocol is not TCP");
                break;
        default:
                return bad(ret_reason, "Unsupported PROXY header address family");
        }
        if (family == V2_FAM_UNIX) {
                /* paths, not addresses a WSGI environ can carry: the connection's own stay */
                if (body < 216)
                        return bad(ret_reason, "PROXY header address block too short");
                h.protocol = "UNSPEC";
                *ret = h;
                return PROXY_SCAN_DONE;
        }
        if (family == V2_FAM_INET) {
                if (body < 12)
                        return bad(ret_reason, "PROXY header address block too short");
                inet_ntop(AF_INET, u, h.src_addr, sizeof(h.src_addr));
                inet_ntop(AF_INET, u + 4, h.dst_addr, sizeof(h.dst_addr));
                h.src_port = (uint16_t) (u[8] << 8 | u[9]);
                h.dst_port = (uint16_t) (u[10] << 8 | u[11]);
                h.protocol = "TCP4";
        } else {
                if (body < 36)
                        return bad(ret_reason, "PROXY header address block too short");
                inet_ntop(AF_INET6, u, h.src_addr, sizeof(h.src_addr));
                inet_ntop(AF_INET6, u + 16, h.dst_addr, sizeof(h.dst_addr));
                h.src_port = (uint16_t) (u[32] << 8 | u[33]);
                h.dst_port = (uint16_t) (u[34] << 8 | u[35]);
                h.protocol = "TCP6";
        }
        h.has_addresses = true;
        *ret = h;
        return PROXY_SCAN_DONE;
}

int proxy_scan(ProxyMode mode, const char *data, size_t len, ProxyHeader *ret, const char **ret_reason) {
        int v1 = -1, v2 = -1;

        if (mode == PROXY_V1 || mode == PROXY_AUTO)
                v1 = starts_with(data, len, V1_PREFIX, V1_PREFIX_LEN);
        if (mode == PROXY_V2 || mode == PROXY_AUTO)
                v2 = starts_with(data, len, v2_signature, sizeof(v2_signature));
        if (v1 > 0)
                return scan_v1(data, len, ret, ret_reason);
        if (v2 > 0)
                return scan_v2(data, len, ret, ret_reason);
        if (v1 == 0 || v2 == 0)
                return PROXY_SCAN_MAYBE;
        return PROXY_SCAN_NOT;
}
