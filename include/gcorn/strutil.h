/* Tiny string helpers shared by the parser, the environ builder and the access log. */
#pragma once

#include <stddef.h>

/* The value of one hexadecimal digit, or -1. */
static inline int hex_digit_value(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Percent-decoding one unit of s[0..len) at i: "%XX" becomes one byte, anything else (a
 * stray '%' included) stays itself. Stores the byte in *out; returns how many were read. */
static inline size_t percent_decode_at(const char *s, size_t len, size_t i, char *out) {
        int hi, lo;

        if (s[i] == '%' && i + 2 < len && (hi = hex_digit_value(s[i + 1])) >= 0 &&
            (lo = hex_digit_value(s[i + 2])) >= 0) {
                *out = (char) (hi << 4 | lo);
                return 3;
        }
        *out = s[i];
        return 1;
}
