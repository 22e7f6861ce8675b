/* Raw bytes -> the request parser (src/http.c): request line, header section, limits and
 * Gunicorn's switches, Content-Length and chunked bodies with trailers, pipelined requests.
 *
 * Input: a switches byte, a limits byte, a step byte (how many bytes arrive at a time), an
 * out-buffer byte, then the bytes of the connection. Each message is parsed twice, in pieces
 * and all at once, and both must agree: the parser is told bytes as they arrive and must not
 * depend on how they were cut. */
#include <string.h>

#include "fuzz.h"
#include "gcorn/macro.h"

static char *const forwarder_headers[] = { "X_FORWARDED_PROTO", "X_SCRIPT_NAME", NULL };

static bool trusted(const void *peer) {
        return peer != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
        HttpParser *pieces = NULL, *whole = NULL;
        HttpLimits limits;
        uint8_t sw, lim, step, out_cap;
        int r;

        sw = fuzz_byte(&data, &len);
        lim = fuzz_byte(&data, &len);
        step = fuzz_byte(&data, &len);
        out_cap = fuzz_byte(&data, &len);
        fuzz_limits(&limits, sw, lim, forwarder_headers);

        r = http_parser_new(&pieces, &limits);
        FUZZ_CHECK(r == 0);
        r = http_parser_new(&whole, &limits);
        FUZZ_CHECK(r == 0);
        if (sw & 0x80) {
                http_parser_set_peer(pieces, trusted, &limits);
                http_parser_set_peer(whole, trusted, &limits);
        }

        /* At most a few pipelined messages: each round consumes at least the head's bytes. */
        for (int i = 0; i < 8 && len > 0; i++) {
                FuzzMessage a, b;
                int ra, rb;

                ra = fuzz_parse_one(pieces, data, len, step % 17, out_cap, NULL, NULL, &a);
                rb = fuzz_parse_one(whole, data, len, 0, 255, NULL, NULL, &b);
                FUZZ_CHECK(ra == rb);
                FUZZ_CHECK(a.status == b.status);
                FUZZ_CHECK(a.body_len == b.body_len);
                if (ra != 1)
                        break;
                FUZZ_CHECK(a.consumed == b.consumed);
                FUZZ_CHECK(a.consumed > 0 && a.consumed <= len);
                data += a.consumed;
                len -= a.consumed;
                http_parser_reset(pieces);
                http_parser_reset(whole);
        }

        http_parser_free(pieces);
        http_parser_free(whole);
        return 0;
}
