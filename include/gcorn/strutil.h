/* Tiny string helpers shared by the parser, the environ builder and the access log. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether a[0..n) and b[0..n) are the same ASCII text, letters in either case. Header names
 * and tokens are short: a byte loop costs less than strncasecmp(), whose cost also depends on
 * the locale and on where the strings lie in memory. */
static inline bool ascii_case_equal(const char *a, const char *b, size_t n) {
        for (size_t i = 0; i < n; i++) {
                unsigned char x = (unsigned char) a[i] | 0x20, y = (unsigned char) b[i] | 0x20;

                if (a[i] != b[i] && (x != y || x < 'a' || x > 'z'))
                        return false;
        }
        return true;
}

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

/* A non-negative decimal of digits only (no sign, no blanks), as a Content-Length is:
 * -EINVAL for anything else, -ERANGE past INT64_MAX. */
static inline int parse_decimal_int64(const char *s, size_t len, int64_t *ret) {
        int64_t n = 0;

        if (len == 0)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                if (n > (INT64_MAX - 9) / 10)
                        return -ERANGE;
                n = n * 10 + (s[i] - '0');
        }
        *ret = n;
        return 0;
}
