/* Raw bytes -> the PROXY protocol scanner (src/proxyproto.c), v1, v2 and auto.
 *
 * Input: a mode byte, a cut byte, then the first bytes of a connection. The scanner is
 * stateless over the bytes received so far, so the answer for a prefix must agree with the
 * answer for the whole: what a prefix settles (not a header, a complete header, a malformed
 * one) more bytes cannot change. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "gcorn/proxyproto.h"

static void check_result(int r, const ProxyHeader *h, const char *reason, size_t len) {
        FUZZ_CHECK(r == -EBADMSG || (r >= PROXY_SCAN_NOT && r <= PROXY_SCAN_DONE));
        if (r == -EBADMSG)
                FUZZ_CHECK(reason != NULL && reason[0] != '\0');
        if (r != PROXY_SCAN_DONE)
                return;
        FUZZ_CHECK(h->length > 0 && h->length <= len);
        FUZZ_CHECK(h->version == 1 || h->version == 2);
        FUZZ_CHECK(h->protocol != NULL);
        FUZZ_CHECK(memchr(h->src_addr, 0, sizeof(h->src_addr)) != NULL);
        FUZZ_CHECK(memchr(h->dst_addr, 0, sizeof(h->dst_addr)) != NULL);
        if (h->has_addresses)
                FUZZ_CHECK(h->src_addr[0] != '\0' && h->dst_addr[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
        static const ProxyMode modes[] = { PROXY_V1, PROXY_V2, PROXY_AUTO };
        ProxyMode mode = modes[fuzz_byte(&data, &len) % 3];
        size_t cut = fuzz_byte(&data, &len);
        const char *reason = NULL, *preason = NULL;
        ProxyHeader h, ph;
        int r, pr;

        memset(&h, 0xaa, sizeof(h));
        r = proxy_scan(mode, (const char *) data, len, &h, &reason);
        check_result(r, &h, reason, len);

        cut = len ? cut % (len + 1) : 0;
        memset(&ph, 0x55, sizeof(ph));
        pr = proxy_scan(mode, (const char *) data, cut, &ph, &preason);
        check_result(pr, &ph, preason, cut);

        if (pr == PROXY_SCAN_NOT || pr == -EBADMSG)
                FUZZ_CHECK(r == pr);
        if (pr == PROXY_SCAN_PARTIAL)
                FUZZ_CHECK(r != PROXY_SCAN_NOT && r != PROXY_SCAN_MAYBE);
        if (pr == PROXY_SCAN_DONE) {
                FUZZ_CHECK(r == PROXY_SCAN_DONE);
                FUZZ_CHECK(h.length == ph.length && h.version == ph.version);
                FUZZ_CHECK(strcmp(h.protocol, ph.protocol) == 0);
                FUZZ_CHECK(h.has_addresses == ph.has_addresses);
                if (h.has_addresses)
                        FUZZ_CHECK(strcmp(h.src_addr, ph.src_addr) == 0 && strcmp(h.dst_addr, ph.dst_addr) == 0 &&
                                   h.src_port == ph.src_port && h.dst_port == ph.dst_port);
        }
        if (r == PROXY_SCAN_DONE && cut >= h.length)
                FUZZ_CHECK(pr == PROXY_SCAN_DONE);
        return 0;
}
