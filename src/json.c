/* Minimal JSON for the control socket. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcorn/json.h"

#define DEPTH_MAX 32

void json_append(JsonBuf *b, const char *s, size_t n) {
        if (b->oom)
                return;
        if (b->len + n + 1 > b->cap) {
                size_t cap = MAX(b->cap * 2, b->len + n + 1 + 256);
                char *p = realloc(b->p, cap);

                if (!p) {
                        b->oom = true;
                        return;
                }
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = 0;
}

void json_printf(JsonBuf *b, const char *fmt, ...) {
        char small[256];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(small, sizeof(small), fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        if ((size_t) n < sizeof(small)) {
                json_append(b, small, (size_t) n);
                return;
        }
        {
                _cleanup_free_ char *big = malloc((size_t) n + 1);

                if (!big) {
                        b->oom = true;
                        return;
                }
                va_start(ap, fmt);
                (void) vsnprintf(big, (size_t) n + 1, fmt, ap);
                va_end(ap);
                json_append(b, big, (size_t) n);
        }
}

void json_string(JsonBuf *b, const char *s, size_t n) {
        json_append(b, "\"", 1);
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                char esc[8];

                if (c == '"' || c == '\\') {
                        esc[0] = '\\';
                        esc[1] = (char) c;
                        json_append(b, esc, 2);
                } else if (c == '\n')
                        json_append(b, "\\n", 2);
                else if (c < 0x20 || c >= 0x7f) {
                        /* Bytes above 0x7f as Latin-1, as WSGI reads a path: the line stays
                         * valid UTF-8 whatever the client sent. */
                        snprintf(esc, sizeof(esc), "\\u%04x", c);
                        json_append(b, esc, 6);
                } else
                        json_append(b, (const char *) &c, 1);
        }
        json_append(b, "\"", 1);
}

void json_buf_done(JsonBuf *b) {
        b->p = mfree(b->p);
        b->len = b->cap = 0;
        b->oom = false;
}

typedef struct Reader {
        const char *p, *end;
} Reader;

static void skip_ws(Reader *r) {
        while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
                r->p++;
}

static int parse_value(Reader *r, JsonSpan *ret, int depth);

static int parse_string(Reader *r) {
        r->p++;
        while (r->p < r->end) {
                unsigned char c = (unsigned char) *r->p++;

                if (c == '"')
                        return 0;
                if (c < 0x20)
                        return -EINVAL;
                if (c == '\\') {
                        if (r->p >= r->end)
                                return -EINVAL;
                        c = (unsigned char) *r->p++;
                        if (c == 'u') {
                                for (int i = 0; i < 4; i++, r->p++)
                                        if (r->p >= r->end || !strchr("0123456789abcdefABCDEF", *r->p) || !*r->p)
                                                return -EINVAL;
                        } else if (!strchr("\"\\/bfnrt", c) || c == 0)
                                return -EINVAL;
                }
        }
        return -EINVAL;
}

static int parse_number(Reader *r) {
        const char *start = r->p;

        if (r->p < r->end && *r->p == '-')
                r->p++;
        if (r->p >= r->end || *r->p < '0' || *r->p > '9')
                return -EINVAL;
        while (r->p < r->end && strchr("0123456789.eE+-", *r->p) && *r->p)
                r->p++;
        return r->p > start ? 0 : -EINVAL;
}

static int parse_word(Reader *r, const char *w) {
        size_t n = strlen(w);

        if ((size_t) (r->end - r->p) < n || memcmp(r->p, w, n) != 0)
                return -EINVAL;
        r->p += n;
        return 0;
}

/* Containers: calls f for each member (key set) or element (key NULL) when f is not NULL. */
static int parse_container(Reader *r, char close, int depth,
                           void (*f)(const JsonSpan *key, const JsonSpan *value, void *userdata), void *userdata) {
        bool first = true;

        if (depth > DEPTH_MAX)
                return -EINVAL;
        r->p++;
        for (;;) {
                JsonSpan key = {}, value;
                int k;

                skip_ws(r);
                if (r->p >= r->end)
                        return -EINVAL;
                if (*r->p == close && first) {
                        r->p++;
                        return 0;
                }
                if (close == '}') {
                        if (*r->p != '"')
                                return -EINVAL;
                        k = parse_value(r, &key, depth + 1);
                        if (k < 0)
                                return k;
                        skip_ws(r);
                        if (r->p >= r->end || *r->p != ':')
                                return -EINVAL;
                        r->p++;
                }
                k = parse_value(r, &value, depth + 1);
                if (k < 0)
                        return k;
                if (f)
                        f(close == '}' ? &key : NULL, &value, userdata);
                first = false;
                skip_ws(r);
                if (r->p >= r->end)
                        return -EINVAL;
                if (*r->p == close) {
                        r->p++;
                        return 0;
                }
                if (*r->p != ',')
                        return -EINVAL;
                r->p++;
        }
}

static int parse_value(Reader *r, JsonSpan *ret, int depth) {
        const char *start;
        int k;

        skip_ws(r);
        if (r->p >= r->end)
                return -EINVAL;
        start = r->p;
        switch (*r->p) {
        case '{':
        case '[':
                k = parse_container(r, *r->p == '{' ? '}' : ']', depth, NULL, NULL);
                break;
        case '"':
                k = parse_string(r);
                break;
        case 't':
                k = parse_word(r, "true");
                break;
        case 'f':
                k = parse_word(r, "false");
                break;
        case 'n':
                k = parse_word(r, "null");
                break;
        default:
                k = parse_number(r);
        }
        if (k < 0)
                return k;
        *ret = (JsonSpan) {
                .p = start,
                .len = (size_t) (r->p - start),
                .type = *start == 'n' ? 'z' : strchr("{[\"tf", *start) && *start ? *start : 'n',
        };
        return 0;
}

int json_object_each(const char *text, size_t len, void (*f)(const JsonSpan *key, const JsonSpan *value, void *userdata),
                     void *userdata) {
        Reader r = { .p = text, .end = text + len };
        int k;

        skip_ws(&r);
        if (r.p >= r.end || *r.p != '{')
                return -EINVAL;
        /* Validate everything first, so that f never sees half of a broken request. */
        k = parse_container(&r, '}', 0, NULL, NULL);
        if (k < 0)
                return k;
        skip_ws(&r);
        if (r.p != r.end)
                return -EINVAL;
        r.p = text;
        skip_ws(&r);
        return parse_container(&r, '}', 0, f, userdata);
}

typedef struct ArrayVisit {
        void (*f)(const JsonSpan *value, void *userdata);
        void *userdata;
} ArrayVisit;

static void visit_element(const JsonSpan *key _unused_, const JsonSpan *value, void *userdata) {
        ArrayVisit *v = userdata;

        v->f(value, v->userdata);
}

int json_array_each(const JsonSpan *array, void (*f)(const JsonSpan *value, void *userdata), void *userdata) {
        Reader r = { .p = array->p, .end = array->p + array->len };
        ArrayVisit v = { .f = f, .userdata = userdata };

        if (array->type != '[')
                return -EINVAL;
        return parse_container(&r, ']', 0, visit_element, &v);
}

static void put_utf8(char **o, unsigned cp) {
        unsigned char *q = (unsigned char *) *o;

        if (cp < 0x80)
                *q++ = (unsigned char) cp;
        else if (cp < 0x800) {
                *q++ = (unsigned char) (0xc0 | cp >> 6);
                *q++ = (unsigned char) (0x80 | (cp & 0x3f));
        } else {
                *q++ = (unsigned char) (0xe0 | cp >> 12);
                *q++ = (unsigned char) (0x80 | (cp >> 6 & 0x3f));
                *q++ = (unsigned char) (0x80 | (cp & 0x3f));
        }
        *o = (char *) q;
}

int json_string_decode(const JsonSpan *s, char **ret) {
        char *out, *o;

        if (s->type != '"' || s->len < 2)
                return -EINVAL;
        out = o = malloc(s->len + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 1; i + 1 < s->len; i++) {
                char c = s->p[i];

                if (c != '\\') {
                        *o++ = c;
                        continue;
                }
                c = s->p[++i];
                switch (c) {
                case 'n': *o++ = '\n'; break;
                case 't': *o++ = '\t'; break;
                case 'r': *o++ = '\r'; break;
                case 'b': *o++ = '\b'; break;
                case 'f': *o++ = '\f'; break;
                case 'u': {
                        char hex[5] = {};

                        memcpy(hex, s->p + i + 1, 4);
                        i += 4;
                        put_utf8(&o, (unsigned) strtoul(hex, NULL, 16));
                        break;
                }
                default: *o++ = c;
                }
        }
        *o = 0;
        *ret = out;
        return 0;
}

bool json_key_is(const JsonSpan *key, const char *name) {
        size_t n = strlen(name);

        return key->len == n + 2 && memcmp(key->p + 1, name, n) == 0;
}
