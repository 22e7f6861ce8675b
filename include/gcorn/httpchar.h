/* HTTP's byte classes (RFC 9110), one table lookup per byte, shared by the request parser and
 * the response checks. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
        HTTP_CHAR_TOKEN = 1 << 0,       /* tchar (5.6.2): header names, methods */
        HTTP_CHAR_FIELD = 1 << 1,       /* a field value or reason phrase: VCHAR, SP, HTAB, obs-text */
        HTTP_CHAR_NAME = 1 << 2,        /* tchar but '_', which header_map judges on its own */
};

extern const uint8_t http_char_class[256];

static inline bool http_is_tchar(unsigned char c) {
        return http_char_class[c] & HTTP_CHAR_TOKEN;
}

/* Whether every byte of s[0..len) is in class. */
static inline bool http_all_in_class(const char *s, size_t len, uint8_t class) {
        const unsigned char *u = (const unsigned char *) s;

        for (size_t i = 0; i < len; i++)
                if (!(http_char_class[u[i]] & class))
                        return false;
        return true;
}
