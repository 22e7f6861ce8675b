/* Just enough JSON for the control socket: a growable output buffer with escaping, and a
 * validating reader of one object whose members the caller picks by name. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "gcorn/macro.h"

typedef struct JsonBuf {
        char *p;
        size_t len, cap;
        bool oom;                       /* an append failed: the text is incomplete */
} JsonBuf;

void json_append(JsonBuf *b, const char *s, size_t n);
void json_printf(JsonBuf *b, const char *fmt, ...) _printf_(2, 3);
/* A quoted, escaped JSON string. */
void json_string(JsonBuf *b, const char *s, size_t n);
void json_buf_done(JsonBuf *b);

typedef struct JsonSpan {
        const char *p;
        size_t len;
        char type;                      /* '{', '[', '"', 'n' (number), 't', 'f', 'z' (null) */
} JsonSpan;

/* Checks that text[0..len) is one JSON object and calls f for each member. Returns 0 or
 * -EINVAL (not JSON, or nested deeper than 32). */
int json_object_each(const char *text, size_t len, void (*f)(const JsonSpan *key, const JsonSpan *value, void *userdata),
                     void *userdata);
/* The elements of an array span. */
int json_array_each(const JsonSpan *array, void (*f)(const JsonSpan *value, void *userdata), void *userdata);
/* A string span's text, unescaped (\uXXXX as UTF-8), in a new NUL-terminated buffer. */
int json_string_decode(const JsonSpan *s, char **ret);
bool json_key_is(const JsonSpan *key, const char *name);
