/* HTTP/1.x request parsing: the request head in one pass, then the body.
 *
 * gcorn's own code parses the whole head, with no second parser behind it. The request line
 * is parsed by Gunicorn's rules (any upper-case token method, the four request-target forms,
 * "HTTP/d.d"): a fixed method list, as general-purpose parsers keep, cannot follow Gunicorn's
 * compatibility switches. Each byte of the header section is scanned once, by a small
 * resumable state machine over runs of bytes (a name's tchar run, a value's field-char run),
 * so a head cut anywhere by the network gives the same result as the whole: it enforces
 * CRLF, refuses obs-fold, checks names and values byte by byte and applies the per-line,
 * line-count and total limits as it goes. Nothing a general-purpose HTTP parser such as
 * llhttp would add is left for it to do (its loose mode, the only one that takes Gunicorn's
 * input, checks less than this scanner), and driving it only through its public API would
 * parse every byte a second time; so the head path has no such parser at all. The
 * framing headers (Content-Length, Transfer-Encoding, Host, Connection) are judged here once
 * the head is complete, and chunked bodies are decoded here too. */
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "gcorn/http.h"
#include "gcorn/httpchar.h"
#include "gcorn/macro.h"
#include "gcorn/strutil.h"

/* Gunicorn's ceilings and defaults for the limit_request_* settings. */
#define REQUEST_LINE_MAX 8190
#define FIELDS_MAX 32768
#define FIELD_SIZE_DEFAULT 8190
/* No header section is ever buffered past this, whatever the limits say. */
#define HEAD_HARD_MAX (4u * 1024 * 1024)
#define TRAILER_NAME_MAX 32
/* Buffers above this are given back at reset rather than kept for the next request. */
#define PARSER_KEEP_MAX (16 * 1024)

typedef enum Phase {
        PHASE_LINE,                     /* reading the request line */
        PHASE_HEADERS,                  /* reading the header section */
        PHASE_BODY,                     /* head done, body in progress */
        PHASE_DONE,                     /* whole message parsed */
        PHASE_ERROR,
} Phase;

/* Where the header scanner is within its current line. */
typedef enum HeadState {
        HEAD_LINE_START,                /* a field line, or the CR of the blank line */
        HEAD_NAME,                      /* field name bytes, up to ':' */
        HEAD_NAME_WS,                   /* blanks between name and ':' (strip_header_spaces) */
        HEAD_VALUE,                     /* field value bytes, up to CR */
        HEAD_LINE_LF,                   /* the LF ending a field line */
        HEAD_END_LF,                    /* the LF ending the header section */
} HeadState;

/* Header name and value as offsets into HttpParser.buf: the buffer may move while it grows. */
typedef struct FieldOffsets {
        size_t name_off, name_len;
        size_t value_off, value_len;    /* a folded value spans its continuation lines */
        bool underscore;                /* the name holds '_': header_map decides */
        bool folded;                    /* continuation lines follow (permit_obsolete_folding) */
} FieldOffsets;

typedef enum ChunkState {
        CHUNK_SIZE_FIRST,               /* first hex digit of a chunk size */
        CHUNK_SIZE,                     /* more hex digits, blanks, ';' or CR */
        CHUNK_SIZE_BWS,                 /* blanks after the size: only a ';' may follow */
        CHUNK_EXT,                      /* extensions, up to CR */
        CHUNK_SIZE_LF,
        CHUNK_DATA,
        CHUNK_DATA_CR,
        CHUNK_DATA_LF,
        CHUNK_TRAILER_START,            /* a trailer line or the final CRLF */
        CHUNK_TRAILER_NAME,
        CHUNK_TRAILER_NAME_WS,          /* blanks before ':' (strip_header_spaces) */
        CHUNK_TRAILER_VALUE,
        CHUNK_TRAILER_LF,
        CHUNK_END_LF,
        CHUNK_DONE,
} ChunkState;

struct HttpParser {
        /* normalized limits */
        size_t request_line_max;
        size_t fields_max;
        size_t field_size_max;
        size_t head_max;
        int64_t body_max;

        /* Gunicorn's switches, as HttpLimits gives them */
        bool strip_header_spaces;
        bool permit_obsolete_folding;
        bool casefold_http_method;
        bool permit_unconventional_http_method;
        HeaderMap header_map;
        char *const *forwarder_headers;
        /* per connection: whether its peer is a trusted forwarder, asked only when a header
         * with '_' is one of forwarder_headers */
        bool (*peer_trusted)(const void *peer);
        const void *peer;

        Phase phase;
        bool head_done;
        int error;                      /* negative errno once phase is PHASE_ERROR */
        int status;
        const char *reason;

        /* The request line (without CRLF), then the header section as received. */
        char *buf;
        size_t buf_len, buf_cap;

        FieldOffsets *fields;
        size_t n_fields, fields_cap;

        HttpHeader *headers;
        size_t headers_cap;

        HeadState head_state;
        size_t section_off;             /* of the header section in buf */
        size_t line_off;                /* of the current field line in buf */
        size_t name_end;                /* of the current name in buf, when blanks follow it */
        bool name_underscore;           /* the current name holds '_' */
        bool special;                   /* a field is folded or has '_': finish_head() judges */

        Request req;
        size_t target_off;              /* of the target in buf */
        size_t path_off, path_len;      /* of PATH_INFO's and QUERY_STRING's bytes in buf, split */
        size_t query_off, query_len;    /* once with the request line */
        int64_t body_left;              /* Content-Length bytes not yet handed out */
        int64_t body_total;             /* decoded chunked bytes so far */

        ChunkState chunk_state;
        uint64_t chunk_left;            /* size, then data bytes of the current chunk not yet seen */
        size_t chunk_line;              /* bytes of the current size or trailer line */
        char trailer_name[TRAILER_NAME_MAX];
        size_t trailer_name_len;
        size_t n_trailers;
};

static int set_error(HttpParser *p, int error, int status, const char *reason) {
        p->phase = PHASE_ERROR;
        p->error = error;
        p->status = status;
        p->reason = reason;
        return error;
}

static int bad_request(HttpParser *p, const char *reason) {
        return set_error(p, -EBADMSG, 400, reason);
}

static int buf_reserve(HttpParser *p, size_t len) {
        size_t cap;
        char *n;

        if (len <= p->buf_cap - p->buf_len)
                return 0;
        cap = MAX(MAX(p->buf_cap * 2, p->buf_len + len), (size_t) 1024);
        n = realloc(p->buf, cap);
        if (!n)
                return -ENOMEM;
        p->buf = n;
        p->buf_cap = cap;
        return 0;
}

static int buf_append(HttpParser *p, const char *data, size_t len) {
        int r;

        /* buf is still NULL before the first byte of a request line */
        if (len == 0)
                return 0;
        r = buf_reserve(p, len);
        if (r < 0)
                return r;
        memcpy(p->buf + p->buf_len, data, len);
        p->buf_len += len;
        return 0;
}

/* s equals the lower-case literal lit of n bytes, in any case. */
static bool slice_eqn(Slice s, const char *lit, size_t n) {
        return s.len == n && ascii_case_equal(s.p, lit, n);
}

static bool slice_eq(Slice s, const char *lit) {
        return slice_eqn(s, lit, strlen(lit));
}

#define SLICE_IS(s, lit) slice_eqn(s, lit, sizeof(lit) - 1)

static Slice slice_trim(Slice s) {
        while (s.len > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
                s.p++;
                s.len--;
        }
        while (s.len > 0 && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
                s.len--;
        return s;
}

/* ---- request line ---- */

static bool is_scheme(const char *s, size_t n) {
        if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
                return false;
        for (size_t i = 1; i < n; i++) {
                char c = s[i];

                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '+' || c == '-' || c == '.'))
                        return false;
        }
        return true;
}

/* host:port, the CONNECT form */
static bool is_authority_form(Slice t) {
        const char *colon = NULL;

        for (size_t i = 0; i < t.len; i++) {
                if (strchr("/?#@", t.p[i]))
                        return false;
                if (t.p[i] == ':')
                        colon = t.p + i;
        }
        if (!colon || colon == t.p || colon == t.p + t.len - 1)
                return false;
        for (const char *c = colon + 1; c < t.p + t.len; c++)
                if (*c < '0' || *c > '9')
                        return false;
        return true;
}

/* Splits the target as Python's urllib.parse.urlsplit() does, which is what Gunicorn's
 * PATH_INFO and QUERY_STRING come from; the fragment is dropped. Returns false for a netloc
 * with unbalanced brackets, which urlsplit refuses. */
static bool split_target(Slice t, bool *ret_absolute, Slice *ret_path, Slice *ret_query) {
        const char *s = t.p, *e = t.p + t.len, *end, *q;

        *ret_absolute = false;
        /* Gunicorn keeps a leading "//" as part of the path rather than as a netloc. */
        if (!(t.len >= 2 && s[0] == '/' && s[1] == '/')) {
                const char *colon = memchr(s, ':', t.len);

                if (colon && is_scheme(s, (size_t) (colon - s)))
                        s = colon + 1;
                if (e - s >= 2 && s[0] == '/' && s[1] == '/') {
                        const char *host = s + 2;
                        bool open, close;

                        s = host;
                        while (s < e && *s != '/' && *s != '?' && *s != '#')
                                s++;
                        open = memchr(host, '[', (size_t) (s - host));
                        close = memchr(host, ']', (size_t) (s - host));
                        if (open != close)
                                return false;
                        *ret_absolute = true;
                }
        }
        end = memchr(s, '#', (size_t) (e - s));
        if (!end)
                end = e;
        q = memchr(s, '?', (size_t) (end - s));
        if (q) {
                *ret_path = (Slice) { s, (size_t) (q - s) };
                *ret_query = (Slice) { q + 1, (size_t) (end - q - 1) };
        } else {
                *ret_path = (Slice) { s, (size_t) (end - s) };
                *ret_query = (Slice) { end, 0 };
        }
        return true;
}

/* t lies in p->buf: the path and query are kept as offsets, as buf may move before the head
 * is complete. */
static int check_target_form(HttpParser *p, Slice method, Slice t) {
        Slice path = {}, query = {};
        bool absolute, split = split_target(t, &absolute, &path, &query);

        p->path_off = split ? (size_t) (path.p - p->buf) : 0;
        p->path_len = path.len;
        p->query_off = split ? (size_t) (query.p - p->buf) : 0;
        p->query_len = query.len;
        if (t.len == 1 && t.p[0] == '*') {
                if (!slice_eq(method, "OPTIONS"))
                        return bad_request(p, "Asterisk-form target for a method other than OPTIONS");
        } else if (slice_eq(method, "CONNECT") && is_authority_form(t)) {
                /* the authority-form, only meaningful for CONNECT */
        } else if (!split || (t.p[0] != '/' && !absolute))
                return bad_request(p, "Invalid request target");
        return 0;
}

/* Parses the request line held at buf[0..line_len) into p->req; the method and target become
 * pointers once the head is complete. */
static int parse_request_line(HttpParser *p, size_t line_len) {
        const char *line = p->buf, *sp1, *sp2, *v;
        size_t method_len, target_len, version_len;

        sp1 = memchr(line, ' ', line_len);
        if (!sp1)
                return bad_request(p, "Invalid request line");
        sp2 = memchr(sp1 + 1, ' ', line_len - (size_t) (sp1 + 1 - line));
        if (!sp2)
                return bad_request(p, "Invalid request line");
        method_len = (size_t) (sp1 - line);
        target_len = (size_t) (sp2 - sp1 - 1);
        v = sp2 + 1;
        version_len = line_len - (size_t) (v - line);

        /* Gunicorn: an RFC 9110 token (so never empty, even with
         * permit_unconventional_http_method); by convention also 3 to 20 bytes without
         * lower-case letters or '#', unless permit_unconventional_http_method */
        if (method_len == 0 || ((method_len < 3 || method_len > 20) && !p->permit_unconventional_http_method))
                return bad_request(p, "Invalid request method");
        for (size_t i = 0; i < method_len; i++) {
                char c = line[i];

                if (!http_is_tchar((unsigned char) c))
                        return bad_request(p, "Invalid request method");
                if ((c >= 'a' && c <= 'z') || c == '#') {
                        if (!p->permit_unconventional_http_method)
                                return bad_request(p, "Invalid request method");
                        /* line is p->buf, which the parser owns */
                        if (p->casefold_http_method && c != '#')
                                p->buf[i] = (char) (c - 'a' + 'A');
                }
        }

        if (target_len == 0)
                return bad_request(p, "Invalid request line");
        for (size_t i = 0; i < target_len; i++) {
                unsigned char c = (unsigned char) sp1[1 + i];

                if (c <= ' ' || c == 0x7f)
                        return bad_request(p, "Invalid request target");
        }

        if (version_len != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
            v[7] < '0' || v[7] > '9')
                return bad_request(p, "Invalid HTTP version");
        p->req.http_major = v[5] - '0';
        p->req.http_minor = v[7] - '0';
        /* RFC 9110 2.5: a higher minor version of 1.x is served as the highest we know. */
        if (p->req.http_major != 1)
                return set_error(p, -EBADMSG, 505, "HTTP Version Not Supported");

        /* buf may still move: finish_head() makes the pointers */
        p->req.method = (Slice) { NULL, method_len };
        p->req.target = (Slice) { NULL, target_len };
        /* known now, so that an error answer to a HEAD request with a bad header has no body */
        p->req.is_head = method_len == 4 && memcmp(line, "HEAD", 4) == 0;
        p->target_off = method_len + 1;
        return check_target_form(p, (Slice) { line, method_len }, (Slice) { sp1 + 1, target_len });
}

/* ---- header section ---- */

/* The bytes of the current line before buf offset end, with the CRLF Gunicorn counts with
 * each field line, and the section so far, against their limits. Called wherever a run of
 * bytes stops (at the byte that stopped it, or at the end of the input), so a line or a
 * section too long is refused as soon as it is sure, however the input was cut. */
static int check_line_limits(HttpParser *p, size_t end) {
        if (end - p->line_off + 2 > p->field_size_max || end - p->section_off > p->head_max)
                return set_error(p, -EBADMSG, 431, "Request Header Fields Too Large");
        return 0;
}

static int push_field(HttpParser *p, size_t name_len, size_t value_off) {
        if (p->n_fields == p->fields_cap) {
                size_t cap = MAX(p->fields_cap * 2, (size_t) 16);
                FieldOffsets *f = reallocarray(p->fields, cap, sizeof(FieldOffsets));

                if (!f)
                        return set_error(p, -ENOMEM, 500, "Out of memory");
                p->fields = f;
                p->fields_cap = cap;
        }
        p->fields[p->n_fields++] = (FieldOffsets) {
                .name_off = p->line_off,
                .name_len = name_len,
                .value_off = value_off,
                .underscore = p->name_underscore,
        };
        return 0;
}

/* Scans data[0..len) of a header section from where the last call stopped. Returns 1 after
 * the blank line, 0 when more is needed, or a negative errno; *ret_used tells how many bytes
 * were taken (up to and including the blank line's LF). The bytes taken are kept in buf and
 * the fields point into them. */
static int scan_headers(HttpParser *p, const char *data, size_t len, size_t *ret_used) {
        const unsigned char *u = (const unsigned char *) data;
        size_t base = p->buf_len, i = 0, name_len;
        int r = 0;

        while (i < len) {
                switch (p->head_state) {
                case HEAD_LINE_START:
                        if (u[i] == '\r') {
                                p->head_state = HEAD_END_LF;
                                i++;
                                continue;
                        }
                        if (u[i] == ' ' || u[i] == '\t') {
                                if (!p->permit_obsolete_folding || p->n_fields == 0) {
                                        r = bad_request(p, "Obsolete line folding");
                                        goto out;
                                }
                                /* The last field's value goes on, and so does its line for the
                                 * size limit, as Gunicorn counts a folded field. */
                                p->fields[p->n_fields - 1].folded = true;
                                p->special = true;
                                p->head_state = HEAD_VALUE;
                                continue;
                        }
                        p->line_off = base + i;
                        p->name_underscore = false;
                        p->head_state = HEAD_NAME;
                        /* fall through */
                case HEAD_NAME:
                        /* '_' stops the run, so only names that hold one pay for noting it */
                        for (;;) {
                                while (i < len && (http_char_class[u[i]] & HTTP_CHAR_NAME))
                                        i++;
                                if (i == len || u[i] != '_')
                                        break;
                                p->name_underscore = p->special = true;
                                i++;
                        }
                        r = check_line_limits(p, base + i);
                        if (r < 0 || i == len)
                                goto out;
                        if (u[i] == ':') {
                                name_len = base + i - p->line_off;
                                goto colon;
                        }
                        if (!p->strip_header_spaces || (u[i] != ' ' && u[i] != '\t')) {
                                r = bad_request(p, u[i] == '\n' ? "Bare LF in line" : "Invalid header name");
                                goto out;
                        }
                        p->name_end = base + i;
                        p->head_state = HEAD_NAME_WS;
                        /* fall through */
                case HEAD_NAME_WS:
                        while (i < len && (u[i] == ' ' || u[i] == '\t'))
                                i++;
                        r = check_line_limits(p, base + i);
                        if (r < 0 || i == len)
                                goto out;
                        if (u[i] != ':') {
                                r = bad_request(p, u[i] == '\n' ? "Bare LF in line" : "Invalid header name");
                                goto out;
                        }
                        name_len = p->name_end - p->line_off;
                colon:
                        if (name_len == 0) {
                                r = bad_request(p, "Empty header name");
                                goto out;
                        }
                        r = push_field(p, name_len, base + i + 1);
                        if (r < 0)
                                goto out;
                        i++;
                        p->head_state = HEAD_VALUE;
                        /* fall through */
                case HEAD_VALUE:
                        while (i < len && (http_char_class[u[i]] & HTTP_CHAR_FIELD))
                                i++;
                        r = check_line_limits(p, base + i);
                        if (r < 0 || i == len)
                                goto out;
                        if (u[i] != '\r') {
                                r = bad_request(p, u[i] == '\n' ? "Bare LF in line" : "Invalid header value");
                                goto out;
                        }
                        p->fields[p->n_fields - 1].value_len = base + i - p->fields[p->n_fields - 1].value_off;
                        i++;
                        p->head_state = HEAD_LINE_LF;
                        continue;
                case HEAD_LINE_LF:
                        if (u[i] != '\n') {
                                r = bad_request(p, "Bare CR in line");
                                goto out;
                        }
                        i++;
                        if (p->n_fields > p->fields_max) {
                                r = set_error(p, -EBADMSG, 431, "Too many headers");
                                goto out;
                        }
                        p->head_state = HEAD_LINE_START;
                        continue;
                case HEAD_END_LF:
                        if (u[i] != '\n') {
                                r = bad_request(p, "Bare CR in line");
                                goto out;
                        }
                        i++;
                        r = 1;
                        goto out;
                }
        }
out:
        *ret_used = i;
        if (r >= 0 && buf_append(p, data, i) < 0)
                return set_error(p, -ENOMEM, 500, "Out of memory");
        return r;
}

/* ---- framing and routing headers ---- */

/* RFC 3986 reg-name bytes: unreserved and sub-delims (pct-encoded is checked on its own). */
static const bool reg_name_char[256] = {
        ['A' ... 'Z'] = true, ['a' ... 'z'] = true, ['0' ... '9'] = true,
        ['-'] = true, ['.'] = true, ['_'] = true, ['~'] = true,
        ['!'] = true, ['$'] = true, ['&'] = true, ['\''] = true, ['('] = true, [')'] = true,
        ['*'] = true, ['+'] = true, [','] = true, [';'] = true, ['='] = true,
};

/* RFC 3986 IP-literal, between the brackets: an IPv6address or an IPvFuture. */
static bool ip_literal_valid(const char *s, size_t n) {
        char text[INET6_ADDRSTRLEN];
        struct in6_addr addr;
        size_t i;

        if (n > 0 && (s[0] == 'v' || s[0] == 'V')) {
                /* "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ) */
                for (i = 1; i < n && hex_digit_value(s[i]) >= 0; i++)
                        ;
                if (i == 1 || i >= n - 1 || s[i] != '.')
                        return false;
                for (i++; i < n; i++)
                        if (!reg_name_char[(unsigned char) s[i]] && s[i] != ':')
                                return false;
                return true;
        }
        if (n == 0 || n >= sizeof(text))
                return false;
        memcpy(text, s, n);
        text[n] = 0;
        return inet_pton(AF_INET6, text, &addr) == 1;
}

/* Host = uri-host [ ":" port ] (RFC 9110 7.2): an IP-literal, an IPv4address or a reg-name
 * (which takes in IPv4address), then optionally ':' and digits. Empty is allowed: a client
 * sends that when the target has no authority (RFC 9112 3.2). */
static bool host_valid(Slice v) {
        const char *s = v.p, *e = v.p + v.len;

        if (s < e && *s == '[') {
                const char *close = memchr(s, ']', v.len);

                if (!close || !ip_literal_valid(s + 1, (size_t) (close - s - 1)))
                        return false;
                s = close + 1;
        } else
                while (s < e && *s != ':') {
                        if (reg_name_char[(unsigned char) *s])
                                s++;
                        else if (*s == '%' && e - s >= 3 && hex_digit_value(s[1]) >= 0 &&
                                 hex_digit_value(s[2]) >= 0)
                                s += 3;
                        else
                                return false;
                }
        if (s == e)
                return true;
        if (*s != ':')
                return false;
        for (s++; s < e; s++)
                if (*s < '0' || *s > '9')
                        return false;
        return true;
}

/* The transfer codings of every Transfer-Encoding line, in order (RFC 9112 6.1). */
typedef struct Codings {
        bool present;
        bool chunked;                   /* seen at all */
        bool chunked_last;              /* the last coding so far is chunked */
        bool undecoded;                 /* a coding other than chunked and identity */
} Codings;

static int parse_transfer_encoding(HttpParser *p, Slice v, Codings *c) {
        const char *s = v.p, *e = v.p + v.len;

        c->present = true;
        for (;;) {
                const char *comma = memchr(s, ',', (size_t) (e - s));
                Slice t = slice_trim((Slice) { s, (size_t) ((comma ? comma : e) - s) });

                c->chunked_last = false;
                if (SLICE_IS(t, "chunked")) {
                        /* stacked chunking is never meant, and peers disagree on it */
                        if (c->chunked)
                                return bad_request(p, "Transfer-Encoding: chunked twice");
                        c->chunked = c->chunked_last = true;
                } else if (!SLICE_IS(t, "identity"))
                        c->undecoded = true;
                if (!comma)
                        return 0;
                s = comma + 1;
        }
}

static bool has_token(Slice v, const char *token) {
        const char *s = v.p, *e = v.p + v.len;

        for (;;) {
                const char *comma = memchr(s, ',', (size_t) (e - s));

                if (slice_eq(slice_trim((Slice) { s, (size_t) ((comma ? comma : e) - s) }), token))
                        return true;
                if (!comma)
                        return false;
                s = comma + 1;
        }
}

/* How the body is framed: RFC 9112 6.1 and 6.3, and Gunicorn's stricter reading. */
static int check_framing(HttpParser *p, const Codings *c) {
        Request *r = &p->req;

        if (!c->present)
                return 0;
        /* the length cannot be known unless chunked comes last (6.3): 400 and close */
        if (!c->chunked_last)
                return bad_request(p, "Transfer-Encoding without chunked last");
        if (r->http_minor == 0)
                return bad_request(p, "Transfer-Encoding on HTTP/1.0");
        if (r->content_length >= 0)
                return bad_request(p, "Both Content-Length and Transfer-Encoding");
        /* gcorn decodes chunked only: the app must never get bytes still compressed (6.1) */
        if (c->undecoded)
                return set_error(p, -EBADMSG, 501, "Unsupported transfer coding");
        return 0;
}

/* Gunicorn's unfolding: each line of the value stripped of blanks, the lines joined by one
 * space. The result is never longer than the raw bytes, so it is written over them. */
static Slice unfold(char *v, size_t len) {
        size_t o = 0, s = 0;

        for (;;) {
                const char *crlf = memmem(v + s, len - s, "\r\n", 2);
                size_t e = crlf ? (size_t) (crlf - v) : len;
                Slice piece = slice_trim((Slice) { v + s, e - s });

                if (s > 0)
                        v[o++] = ' ';
                memmove(v + o, piece.p, piece.len);
                o += piece.len;
                if (!crlf)
                        return (Slice) { v, o };
                s = e + 2;
        }
}

/* name equals the upper-case f as Gunicorn compares them: upper(name) == f. */
static bool name_is_upper(Slice name, const char *f) {
        if (strlen(f) != name.len)
                return false;
        for (size_t i = 0; i < name.len; i++) {
                char c = name.p[i];

                if (c >= 'a' && c <= 'z')
                        c = (char) (c - 'a' + 'A');
                if (c != f[i])
                        return false;
        }
        return true;
}

static bool forwarder_header(const HttpParser *p, Slice name) {
        if (!p->forwarder_headers || !p->peer_trusted)
                return false;
        for (char *const *f = p->forwarder_headers; *f; f++)
                if (strcmp(*f, "*") == 0 || name_is_upper(name, *f))
                        return p->peer_trusted(p->peer);
        return false;
}

/* The fields the switches touched: folded values are unfolded, names with '_' kept, dropped
 * or refused by header_map (a trusted forwarder's forwarder_headers are always kept). Runs
 * only for a head that has such a field. */
static int apply_switches(HttpParser *p) {
        Request *r = &p->req;
        size_t n = 0;

        /* Kept headers move to the front in order; [n, i) holds the dropped ones, which stay
         * behind the kept (Request.n_dropped). */
        for (size_t i = 0; i < p->n_fields; i++) {
                const FieldOffsets *f = &p->fields[i];
                HttpHeader h = p->headers[i];

                if (f->folded)
                        h.value = unfold(p->buf + f->value_off, f->value_len);
                p->headers[i] = h;
                if (f->underscore && !forwarder_header(p, h.name)) {
                        if (p->header_map == HEADER_MAP_REFUSE)
                                return bad_request(p, "Invalid header name");
                        if (p->header_map == HEADER_MAP_DROP)
                                continue;
                }
                r->underscore_kept = r->underscore_kept || f->underscore;
                p->headers[i] = p->headers[n];
                p->headers[n++] = h;
        }
        r->n_headers = n;
        r->n_dropped = p->n_fields - n;
        return 0;
}

/* Makes the offsets real pointers and applies the checks that need the whole header list. */
static int finish_head(HttpParser *p) {
        Request *r = &p->req;
        Codings codings = {};
        bool conn_close = false, conn_keep = false, conn_upgrade = false, has_upgrade = false;
        bool seen_host = false, seen_type = false;
        int k;

        if (p->n_fields > p->headers_cap) {
                size_t cap = MAX(p->n_fields, p->headers_cap * 2);
                HttpHeader *h = reallocarray(p->headers, cap, sizeof(HttpHeader));

                if (!h)
                        return set_error(p, -ENOMEM, 500, "Out of memory");
                p->headers = h;
                p->headers_cap = cap;
        }
        for (size_t i = 0; i < p->n_fields; i++) {
                const FieldOffsets *f = &p->fields[i];

                p->headers[i].name = (Slice) { p->buf + f->name_off, f->name_len };
                p->headers[i].value = slice_trim((Slice) { p->buf + f->value_off, f->value_len });
        }
        r->headers = p->headers;
        r->n_headers = p->n_fields;
        r->header_map_applied = true;
        if (p->special) {
                k = apply_switches(p);
                if (k < 0)
                        return k;
        }
        r->method.p = p->buf;
        r->target.p = p->buf + p->target_off;
        r->path = (Slice) { p->buf + p->path_off, p->path_len };
        r->query = (Slice) { p->buf + p->query_off, p->query_len };

        for (size_t i = 0; i < r->n_headers; i++) {
                Slice n = r->headers[i].name, v = r->headers[i].value;

                /* by length first: most names are none of these */
                switch (n.len) {
                case 4:
                        if (!SLICE_IS(n, "host"))
                                break;
                        /* RFC 9112 3.2: two Host lines or a bad one make the target ambiguous */
                        if (seen_host)
                                return bad_request(p, "Duplicate Host header");
                        if (!host_valid(v))
                                return bad_request(p, "Invalid Host header");
                        seen_host = true;
                        break;
                case 6:
                        if (SLICE_IS(n, "expect") && SLICE_IS(v, "100-continue") && r->http_minor >= 1)
                                r->expect_continue = true;
                        break;
                case 7:
                        if (SLICE_IS(n, "upgrade"))
                                has_upgrade = true;
                        break;
                case 10:
                        if (!SLICE_IS(n, "connection"))
                                break;
                        conn_close = conn_close || has_token(v, "close");
                        conn_keep = conn_keep || has_token(v, "keep-alive");
                        conn_upgrade = conn_upgrade || has_token(v, "upgrade");
                        break;
                case 12:
                        if (!SLICE_IS(n, "content-type"))
                                break;
                        if (seen_type)
                                return bad_request(p, "Duplicate Content-Type");
                        seen_type = true;
                        break;
                case 14:
                        /* digits only, one header only (Gunicorn refuses "+1", "-0", "1, 1") */
                        if (!SLICE_IS(n, "content-length"))
                                break;
                        if (r->content_length >= 0)
                                return bad_request(p, "Duplicate Content-Length");
                        if (parse_decimal_int64(v.p, v.len, &r->content_length) < 0)
                                return bad_request(p, "Invalid Content-Length");
                        break;
                case 17:
                        if (!SLICE_IS(n, "transfer-encoding"))
                                break;
                        k = parse_transfer_encoding(p, v, &codings);
                        if (k < 0)
                                return k;
                        break;
                }
        }
        /* RFC 9112 3.2; HTTP/1.0 had no Host */
        if (!seen_host && r->http_minor >= 1)
                return bad_request(p, "Missing Host header");
        k = check_framing(p, &codings);
        if (k < 0)
                return k;
        if (p->body_max > 0 && r->content_length > p->body_max)
                return set_error(p, -EFBIG, 413, "Request body too large");

        r->chunked = codings.chunked;
        r->has_body = r->chunked || r->content_length > 0;
        r->keep_alive = !conn_close && (r->http_minor >= 1 || conn_keep);
        /* served as an ordinary request: the flag only tells what was asked */
        r->upgrade = has_upgrade && conn_upgrade;
        p->body_left = r->chunked ? -1 : MAX(r->content_length, (int64_t) 0);
        p->head_done = true;
        p->phase = r->has_body ? PHASE_BODY : PHASE_DONE;
        return 0;
}

/* ---- public API ---- */

int http_parser_new(HttpParser **ret, const HttpLimits *limits) {
        _cleanup_free_ HttpParser *p = NULL;

        p = calloc(1, sizeof(HttpParser));
        if (!p)
                return -ENOMEM;

        p->request_line_max = limits->request_line;
        if (p->request_line_max == 0 || p->request_line_max > REQUEST_LINE_MAX)
                p->request_line_max = REQUEST_LINE_MAX;
        p->fields_max = limits->fields;
        if (p->fields_max == 0 || p->fields_max > FIELDS_MAX)
                p->fields_max = FIELDS_MAX;
        /* 0 selects Gunicorn's default rather than no limit at all, as Gunicorn does */
        p->field_size_max = limits->field_size ? limits->field_size : FIELD_SIZE_DEFAULT;
        p->head_max = MIN((p->field_size_max + 2) * p->fields_max + 4, (size_t) HEAD_HARD_MAX);
        p->body_max = limits->body > 0 ? limits->body : 0;
        p->strip_header_spaces = limits->strip_header_spaces;
        p->permit_obsolete_folding = limits->permit_obsolete_folding;
        p->casefold_http_method = limits->casefold_http_method;
        p->permit_unconventional_http_method = limits->permit_unconventional_http_method;
        p->header_map = limits->header_map;
        p->forwarder_headers = limits->forwarder_headers;

        http_parser_reset(p);
        *ret = TAKE_PTR(p);
        return 0;
}

HttpParser *http_parser_free(HttpParser *p) {
        if (!p)
                return NULL;
        free(p->buf);
        free(p->fields);
        free(p->headers);
        free(p);
        return NULL;
}

void http_parser_set_peer(HttpParser *p, bool (*trusted)(const void *peer), const void *peer) {
        p->peer_trusted = trusted;
        p->peer = peer;
}

void http_parser_reset(HttpParser *p) {
        /* A long head grew the buffers; a connection that waits for its next request, or a
         * parser kept for the next connection, must not hold on to that. */
        if (p->buf_cap > PARSER_KEEP_MAX) {
                p->buf = mfree(p->buf);
                p->buf_cap = 0;
        }
        if (p->fields_cap * sizeof(FieldOffsets) > PARSER_KEEP_MAX) {
                p->fields = mfree(p->fields);
                p->fields_cap = 0;
        }
        if (p->headers_cap * sizeof(HttpHeader) > PARSER_KEEP_MAX) {
                p->headers = mfree(p->headers);
                p->headers_cap = 0;
        }
        p->phase = PHASE_LINE;
        p->head_done = false;
        p->error = 0;
        p->status = 0;
        p->reason = NULL;
        p->buf_len = 0;
        p->n_fields = 0;
        p->head_state = HEAD_LINE_START;
        p->section_off = 0;
        p->line_off = 0;
        p->special = false;
        p->req = (Request) { .content_length = -1 };
        p->body_left = 0;
        p->body_total = 0;
        p->chunk_state = CHUNK_SIZE_FIRST;
        p->chunk_left = 0;
        p->chunk_line = 0;
        p->trailer_name_len = 0;
        p->n_trailers = 0;
}

static int feed_request_line(HttpParser *p, const char *data, size_t len, size_t *ret_used) {
        size_t i = 0, n, line_len;
        const char *lf;
        int r;

        /* RFC 9112 2.2: empty lines before a request line are ignored */
        if (p->buf_len == 0)
                while (i < len && (data[i] == '\r' || data[i] == '\n'))
                        i++;
        lf = memchr(data + i, '\n', len - i);
        n = (lf ? (size_t) (lf - data) : len) - i;

        /* Fail as soon as the line is sure to be too long: a last CR might still be its end. */
        if (p->buf_len + n > p->request_line_max + 1) {
                *ret_used = len;
                return set_error(p, -EBADMSG, 414, "Request Line is too large");
        }
        r = buf_append(p, data + i, n);
        if (r < 0)
                return set_error(p, r, 500, "Out of memory");
        *ret_used = i + n;
        if (!lf)
                return 0;
        *ret_used += 1;

        if (p->buf_len == 0 || p->buf[p->buf_len - 1] != '\r')
                return bad_request(p, "Invalid request line");
        line_len = p->buf_len - 1;
        if (line_len > p->request_line_max)
                return set_error(p, -EBADMSG, 414, "Request Line is too large");
        r = parse_request_line(p, line_len);
        if (r < 0)
                return r;
        /* the header section follows the request line in buf */
        p->buf_len = p->section_off = line_len;
        p->phase = PHASE_HEADERS;
        return 0;
}

int http_parser_feed_head(HttpParser *p, const char *data, size_t len, size_t *ret_consumed) {
        size_t used = 0, total = 0;
        int r;

        *ret_consumed = 0;
        if (p->phase == PHASE_ERROR)
                return p->error;
        if (p->head_done)
                return 1;

        if (p->phase == PHASE_LINE) {
                r = feed_request_line(p, data, len, &used);
                total += used;
                *ret_consumed = total;
                if (r < 0 || p->phase == PHASE_LINE)
                        return r;
        }
        used = 0;
        r = scan_headers(p, data + total, len - total, &used);
        total += used;
        *ret_consumed = total;
        if (r <= 0)
                return r;
        r = finish_head(p);
        if (r < 0)
                return r;
        return 1;
}

const Request *http_parser_request(const HttpParser *p) {
        return p->head_done ? &p->req : NULL;
}

/* RFC 9110 6.5.1: framing, routing, authentication and request modifiers. */
static bool trailer_forbidden(const char *name, size_t len) {
        static const char *const names[] = {
                "content-length", "transfer-encoding", "host", "trailer", "te", "expect",
                "authorization", "proxy-authorization", "cookie", "content-encoding",
                "content-range", "range", "max-forwards", "connection", "upgrade", "keep-alive",
        };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strlen(names[i]) == len && ascii_case_equal(names[i], name, len))
                        return true;
        return false;
}

/* The ':' after a trailer name. */
static int trailer_name_end(HttpParser *p) {
        if (p->trailer_name_len == 0)
                return bad_request(p, "Empty trailer name");
        if (p->trailer_name_len <= sizeof(p->trailer_name) && trailer_forbidden(p->trailer_name, p->trailer_name_len))
                return bad_request(p, "Forbidden trailer field");
        p->chunk_state = CHUNK_TRAILER_VALUE;
        return 0;
}

/* One byte of chunk framing (never chunk data). */
static int chunk_framing_byte(HttpParser *p, char c) {
        unsigned char u = (unsigned char) c;
        int v;

        /* size lines (extensions included) and trailer lines share the field size limit */
        if (++p->chunk_line + 1 > p->field_size_max && c != '\n')
                return bad_request(p, "Chunk line too long");

        switch (p->chunk_state) {
        case CHUNK_SIZE_FIRST:
        case CHUNK_SIZE:
                v = hex_digit_value(c);
                if (v >= 0) {
                        /* 2^60 is far past any body limit and keeps the shift exact */
                        if (p->chunk_left >> 56)
                                return bad_request(p, "Chunk size overflow");
                        p->chunk_left = p->chunk_left * 16 + (uint64_t) v;
                        p->chunk_state = CHUNK_SIZE;
                        return 0;
                }
                if (p->chunk_state == CHUNK_SIZE_FIRST)
                        return bad_request(p, "Invalid chunk size");
                if (c == ' ' || c == '\t')
                        p->chunk_state = CHUNK_SIZE_BWS;
                else if (c == ';' || c == '\r')
                        p->chunk_state = c == ';' ? CHUNK_EXT : CHUNK_SIZE_LF;
                else
                        return bad_request(p, "Invalid chunk size");
                return 0;
        case CHUNK_SIZE_BWS:
                /* RFC 9112 7.1.1 allows BWS before a chunk-ext only; like Gunicorn, "0 " with
                 * nothing after it stays refused, and so does any blank before the size */
                if (c == ';')
                        p->chunk_state = CHUNK_EXT;
                else if (c != ' ' && c != '\t')
                        return bad_request(p, "Invalid chunk size");
                return 0;
        case CHUNK_EXT:
                if (c == '\r')
                        p->chunk_state = CHUNK_SIZE_LF;
                else if ((u < 0x20 && c != '\t') || u == 0x7f)
                        return bad_request(p, "Invalid chunk extension");
                return 0;
        case CHUNK_SIZE_LF:
                if (c != '\n')
                        return bad_request(p, "Invalid chunk size line");
                p->chunk_line = 0;
                if (p->chunk_left == 0) {
                        p->chunk_state = CHUNK_TRAILER_START;
                        return 0;
                }
                if (p->body_max > 0 && p->chunk_left > (uint64_t) (p->body_max - p->body_total))
                        return set_error(p, -EFBIG, 413, "Request body too large");
                p->chunk_state = CHUNK_DATA;
                return 0;
        case CHUNK_DATA_CR:
                if (c != '\r')
                        return bad_request(p, "Missing CRLF after chunk data");
                p->chunk_state = CHUNK_DATA_LF;
                return 0;
        case CHUNK_DATA_LF:
                if (c != '\n')
                        return bad_request(p, "Missing CRLF after chunk data");
                p->chunk_line = 0;
                p->chunk_state = CHUNK_SIZE_FIRST;
                return 0;
        case CHUNK_TRAILER_START:
                if (c == '\r') {
                        p->chunk_state = CHUNK_END_LF;
                        return 0;
                }
                if (c == ' ' || c == '\t') {
                        /* Gunicorn parses trailers as headers, switches included */
                        if (!p->permit_obsolete_folding || p->n_trailers == 0)
                                return bad_request(p, "Obsolete line folding");
                        p->chunk_state = CHUNK_TRAILER_VALUE;
                        return 0;
                }
                if (++p->n_trailers > p->fields_max)
                        return bad_request(p, "Too many trailers");
                p->trailer_name_len = 0;
                p->chunk_state = CHUNK_TRAILER_NAME;
                /* fall through */
        case CHUNK_TRAILER_NAME:
                if (c == ':')
                        return trailer_name_end(p);
                if ((c == ' ' || c == '\t') && p->strip_header_spaces && p->trailer_name_len > 0) {
                        p->chunk_state = CHUNK_TRAILER_NAME_WS;
                        return 0;
                }
                if (!http_is_tchar(u))
                        return bad_request(p, "Invalid trailer name");
                /* no forwarder may send a trailer with '_' (Gunicorn's from_trailer) */
                if (c == '_' && p->header_map == HEADER_MAP_REFUSE)
                        return bad_request(p, "Invalid trailer name");
                if (p->trailer_name_len < sizeof(p->trailer_name))
                        p->trailer_name[p->trailer_name_len] = c;
                p->trailer_name_len++;
                return 0;
        case CHUNK_TRAILER_NAME_WS:
                if (c == ':')
                        return trailer_name_end(p);
                if (c != ' ' && c != '\t')
                        return bad_request(p, "Invalid trailer name");
                return 0;
        case CHUNK_TRAILER_VALUE:
                if (c == '\r')
                        p->chunk_state = CHUNK_TRAILER_LF;
                else if (!(http_char_class[u] & HTTP_CHAR_FIELD))
                        return bad_request(p, "Invalid trailer value");
                return 0;
        case CHUNK_TRAILER_LF:
                if (c != '\n')
                        return bad_request(p, "Bare CR in trailer");
                p->chunk_line = 0;
                p->chunk_state = CHUNK_TRAILER_START;
                return 0;
        case CHUNK_END_LF:
                if (c != '\n')
                        return bad_request(p, "Bare CR in trailer");
                p->chunk_state = CHUNK_DONE;
                return 0;
        default:
                return bad_request(p, "Invalid chunked body");
        }
}

/* Decodes data[0..len) into out, which holds at least len bytes. */
static int feed_chunked(HttpParser *p, const char *data, size_t len, size_t *ret_consumed, char *out,
                        size_t *ret_out_len) {
        size_t i = 0, o = 0;
        int r;

        while (i < len && p->chunk_state != CHUNK_DONE) {
                if (p->chunk_state == CHUNK_DATA) {
                        size_t n = (size_t) MIN((uint64_t) (len - i), p->chunk_left);

                        memcpy(out + o, data + i, n);
                        o += n;
                        i += n;
                        p->chunk_left -= n;
                        p->body_total += (int64_t) n;
                        if (p->chunk_left == 0)
                                p->chunk_state = CHUNK_DATA_CR;
                        continue;
                }
                r = chunk_framing_byte(p, data[i++]);
                /* Data decoded before the fault goes out first, as it would have had the
                 * bytes come in smaller pieces; the parser stays failed, so the next call
                 * reports the error. */
                if (r < 0 && o == 0)
                        return r;
                if (r < 0)
                        break;
        }
        *ret_consumed = i;
        *ret_out_len = o;
        if (p->phase == PHASE_ERROR)
                return 0;
        if (p->chunk_state != CHUNK_DONE)
                return 0;
        p->phase = PHASE_DONE;
        return 1;
}

int http_parser_feed_body(HttpParser *p, const char *data, size_t len, size_t *ret_consumed,
                          char *out, size_t out_cap, size_t *ret_out_len) {
        size_t n;

        *ret_consumed = 0;
        *ret_out_len = 0;
        if (p->phase == PHASE_ERROR)
                return p->error;
        if (!p->head_done)
                return -EINVAL;
        if (p->phase == PHASE_DONE)
                return 1;

        /* decoded bytes never outnumber raw ones, so this bounds what lands in out */
        n = MIN(len, out_cap);
        if (!p->req.chunked) {
                n = MIN(n, (size_t) p->body_left);
                memcpy(out, data, n);
                p->body_left -= (int64_t) n;
                *ret_consumed = n;
                *ret_out_len = n;
                if (p->body_left > 0)
                        return 0;
                p->phase = PHASE_DONE;
                return 1;
        }
        return feed_chunked(p, data, n, ret_consumed, out, ret_out_len);
}

bool http_parser_message_complete(const HttpParser *p) {
        return p->phase == PHASE_DONE;
}

int64_t http_parser_body_remaining(const HttpParser *p) {
        if (!p->head_done || p->phase == PHASE_DONE)
                return 0;
        return p->body_left;
}

bool http_parser_is_head(const HttpParser *p) {
        return p->req.is_head;
}

int http_parser_error_status(const HttpParser *p) {
        return p->phase == PHASE_ERROR ? p->status : 0;
}

const char *http_parser_error_reason(const HttpParser *p) {
        return p->phase == PHASE_ERROR ? p->reason : NULL;
}
