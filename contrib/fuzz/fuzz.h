/* What the libFuzzer targets share: an invariant check that stops the run, and the driver
 * that feeds a byte string to the request parser as a connection would. */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gcorn/http.h"

/* A broken promise of the code under test is a crash for libFuzzer, with the input saved. */
#define FUZZ_CHECK(cond)                                                                        \
        do {                                                                                    \
                if (!(cond)) {                                                                  \
                        fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
                        abort();                                                                \
                }                                                                               \
        } while (0)

/* Pops one byte off the front of the input (0 once it is empty): the targets take their
 * switches from the first bytes so that the fuzzer mutates those too. */
static inline uint8_t fuzz_byte(const uint8_t **data, size_t *len) {
        uint8_t b;

        if (*len == 0)
                return 0;
        b = **data;
        (*data)++;
        (*len)--;
        return b;
}

/* The parser's switches from one byte, Gunicorn's default limits or small ones from
 * another. forwarder_headers must outlive the parser. */
static inline void fuzz_limits(HttpLimits *l, uint8_t sw, uint8_t lim, char *const *forwarder_headers) {
        *l = (HttpLimits) {
                .request_line = lim & 1 ? 32 : 4094,
                .fields = lim & 2 ? 3 : 100,
                .field_size = lim & 4 ? 40 : 8190,
                .body = lim & 8 ? 16 : 0,
                .strip_header_spaces = sw & 1,
                .permit_obsolete_folding = sw & 2,
                .casefold_http_method = sw & 4,
                .permit_unconventional_http_method = sw & 8,
                .header_map = (sw >> 4) % 3,
                .forwarder_headers = sw & 0x40 ? forwarder_headers : NULL,
        };
}

typedef struct FuzzMessage {
        int head;                       /* http_parser_feed_head()'s last answer */
        int body;                       /* http_parser_feed_body()'s last answer (0: not reached) */
        int status;                     /* the error status, when one of them failed */
        size_t consumed;                /* bytes of the input the message used */
        size_t body_len;                /* decoded body bytes */
} FuzzMessage;

/* Parses one message from data as conn.c does: the window of received bytes grows by step
 * (0: all at once), unconsumed bytes are offered again with the next ones, the body is
 * decoded into out_cap bytes at a time. on_head (may be NULL) sees the completed head.
 * Checks the parser's promises on the way. */
int fuzz_parse_one(HttpParser *p, const uint8_t *data, size_t len, size_t step, size_t out_cap,
                   void (*on_head)(const Request *r, void *userdata), void *userdata,
                   FuzzMessage *ret);
