/* Access log: Gunicorn's access_log_format (Python %-formatting over named atoms) compiled
 * once into an element array and rendered per request without allocating.
 *
 * Values render as Gunicorn's do: a missing atom, header or environ variable is "-", and '"'
 * inside text becomes '\"'. Control bytes are escaped as well (\n, \r, \t, \xNN) so one
 * request is always one line of the log. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcorn/accesslog.h"
#include "gcorn/macro.h"
#include "gcorn/strutil.h"

typedef enum ElementType {
        ELEMENT_LITERAL,
        ELEMENT_REMOTE_ADDR,            /* %(h)s */
        ELEMENT_IDENT,                  /* %(l)s, always "-" */
        ELEMENT_USER,                   /* %(u)s */
        ELEMENT_TIME,                   /* %(t)s */
        ELEMENT_REQUEST_LINE,           /* %(r)s */
        ELEMENT_STATUS,                 /* %(s)s */
        ELEMENT_METHOD,                 /* %(m)s */
        ELEMENT_PATH,                   /* %(U)s */
        ELEMENT_QUERY,                  /* %(q)s */
        ELEMENT_PROTOCOL,               /* %(H)s */
        ELEMENT_BYTES_SENT,             /* %(b)s */
        ELEMENT_BYTES_SENT_NUM,         /* %(B)s */
        ELEMENT_REFERER,                /* %(f)s */
        ELEMENT_USER_AGENT,             /* %(a)s */
        ELEMENT_DURATION_S,             /* %(T)s */
        ELEMENT_DURATION_MS,            /* %(M)s */
        ELEMENT_DURATION_US,            /* %(D)s */
        ELEMENT_DURATION_DECIMAL,       /* %(L)s */
        ELEMENT_PID,                    /* %(p)s */
        ELEMENT_REQUEST_HEADER,         /* %({name}i)s */
        ELEMENT_RESPONSE_HEADER,        /* %({name}o)s */
        ELEMENT_ENVIRON,                /* %({var}e)s */
        ELEMENT_MISSING,                /* unknown atoms: "-" */
} ElementType;

typedef struct Element {
        ElementType type;
        size_t off, len;                /* literal text or header name, in AccessLog.text */
        unsigned width;                 /* a Python field width ("%(s)5s"), 0 = none */
        size_t index;                   /* ELEMENT_ENVIRON: which of AccessEntry.environ_values */
        bool left;                      /* '-' flag: pad on the right */
} Element;

struct AccessLog {
        char *text;
        Element *elements;
        size_t n_elements;
        char **environ_names;           /* of the ELEMENT_ENVIRON elements, by index */
        size_t n_environ;
};

static const struct {
        char atom;
        ElementType type;
} atoms[] = {
        { 'h', ELEMENT_REMOTE_ADDR },   { 'l', ELEMENT_IDENT },        { 'u', ELEMENT_USER },
        { 't', ELEMENT_TIME },          { 'r', ELEMENT_REQUEST_LINE }, { 's', ELEMENT_STATUS },
        { 'm', ELEMENT_METHOD },        { 'U', ELEMENT_PATH },         { 'q', ELEMENT_QUERY },
        { 'H', ELEMENT_PROTOCOL },      { 'b', ELEMENT_BYTES_SENT },   { 'B', ELEMENT_BYTES_SENT_NUM },
        { 'f', ELEMENT_REFERER },       { 'a', ELEMENT_USER_AGENT },   { 'T', ELEMENT_DURATION_S },
        { 'M', ELEMENT_DURATION_MS },   { 'D', ELEMENT_DURATION_US },  { 'L', ELEMENT_DURATION_DECIMAL },
        { 'p', ELEMENT_PID },
};

static ElementType atom_type(const char *name, size_t len, size_t *ret_off, size_t *ret_len) {
        *ret_off = 0;
        *ret_len = 0;
        if (len == 1) {
                for (size_t i = 0; i < ELEMENTSOF(atoms); i++)
                        if (atoms[i].atom == name[0])
                                return atoms[i].type;
                return ELEMENT_MISSING;
        }
        /* "{name}i", "{name}o", "{name}e": Gunicorn lower-cases the whole key, the letter too */
        if (len >= 3 && name[0] == '{' && name[len - 2] == '}') {
                *ret_off = 1;
                *ret_len = len - 3;
                switch (name[len - 1]) {
                case 'i':
                case 'I':
                        return ELEMENT_REQUEST_HEADER;
                case 'o':
                case 'O':
                        return ELEMENT_RESPONSE_HEADER;
                case 'e':
                case 'E':
                        return ELEMENT_ENVIRON;
                }
                *ret_len = 0;
        }
        return ELEMENT_MISSING;
}

int accesslog_compile(const char *format, AccessLog **ret) {
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ Element *elements = NULL;
        _cleanup_free_ AccessLog *l = NULL;
        _cleanup_strv_free_ char **environ_names = NULL;
        size_t n = 0, n_environ = 0, text_len = 0, flen = strlen(format);
        const char *f = format;

        /* Neither can outgrow the format itself. */
        text = malloc(flen + 1);
        elements = calloc(flen + 1, sizeof(Element));
        l = calloc(1, sizeof(AccessLog));
        environ_names = calloc(flen + 1, sizeof(char *));
        if (!text || !elements || !l || !environ_names)
                return -ENOMEM;

        while (*f) {
                const char *name, *close;
                Element *e;

                if (*f != '%' || f[1] == '%') {
                        if (n == 0 || elements[n - 1].type != ELEMENT_LITERAL)
                                elements[n++] = (Element) { .type = ELEMENT_LITERAL, .off = text_len };
                        text[text_len++] = *f;
                        elements[n - 1].len++;
                        f += *f == '%' ? 2 : 1;
                        continue;
                }
                if (f[1] != '(')
                        return -EINVAL;
                name = f + 2;
                close = strchr(name, ')');
                if (!close)
                        return -EINVAL;
                e = &elements[n++];
                e->type = atom_type(name, (size_t) (close - name), &e->off, &e->len);
                if (e->type == ELEMENT_ENVIRON) {
                        e->index = n_environ;
                        environ_names[n_environ] = strndup(name + e->off, e->len);
                        if (!environ_names[n_environ])
                                return -ENOMEM;
                        n_environ++;
                }
                if (e->len > 0) {
                        memcpy(text + text_len, name + e->off, e->len);
                        e->off = text_len;
                        text_len += e->len;
                }
                f = close + 1;
                /* the conversion spec: flags, width, then the conversion itself */
                for (; *f == '-' || *f == ' ' || *f == '+' || *f == '#' || *f == '0'; f++)
                        if (*f == '-')
                                e->left = true;
                for (; *f >= '0' && *f <= '9'; f++)
                        e->width = MIN(e->width * 10 + (unsigned) (*f - '0'), 1000u);
                if (!*f || !strchr("sdira", *f))
                        return -EINVAL;
                f++;
        }
        text[text_len] = 0;

        l->text = TAKE_PTR(text);
        l->elements = TAKE_PTR(elements);
        l->n_elements = n;
        l->environ_names = TAKE_PTR(environ_names);
        l->n_environ = n_environ;
        *ret = TAKE_PTR(l);
        return 0;
}

size_t accesslog_environ_count(const AccessLog *l) {
        return l ? l->n_environ : 0;
}

const char *accesslog_environ_name(const AccessLog *l, size_t i) {
        return i < l->n_environ ? l->environ_names[i] : NULL;
}

AccessLog *accesslog_free(AccessLog *l) {
        if (!l)
                return NULL;
        free(l->text);
        free(l->elements);
        strv_free(l->environ_names);
        free(l);
        return NULL;
}

/* ---- rendering ---- */

typedef struct Writer {
        char *buf;
        size_t cap, len;                /* len counts what was needed, past cap too */
} Writer;

static void put(Writer *w, const char *s, size_t n) {
        if (n == 0)
                return;
        if (w->len < w->cap) {
                size_t room = w->cap - w->len;

                memcpy(w->buf + w->len, s, MIN(n, room));
        }
        w->len += n;
}

/* Text: '"' as Gunicorn escapes it, control bytes so the line stays one. Request bytes are
 * Latin-1 text to Gunicorn (PEP 3333), which its log stream writes as UTF-8: so are bytes
 * above 0x7f here, unless the text is UTF-8 already (utf8). */
static void put_text(Writer *w, const char *s, size_t n, bool utf8) {
        size_t start = 0;

        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                char esc[5];

                if (c >= 0x20 && c < 0x7f && c != '"')
                        continue;
                if (c >= 0x80 && utf8)
                        continue;
                put(w, s + start, i - start);
                start = i + 1;
                if (c >= 0x80) {
                        esc[0] = (char) (0xc0 | (c >> 6));
                        esc[1] = (char) (0x80 | (c & 0x3f));
                        put(w, esc, 2);
                } else if (c == '"')
                        put(w, "\\\"", 2);
                else if (c == '\n')
                        put(w, "\\n", 2);
                else if (c == '\r')
                        put(w, "\\r", 2);
                else if (c == '\t')
                        put(w, "\\t", 2);
                else {
                        snprintf(esc, sizeof(esc), "\\x%02x", c);
                        put(w, esc, 4);
                }
        }
        put(w, s + start, n - start);
}

static void put_escaped(Writer *w, const char *s, size_t n) {
        put_text(w, s, n, false);
}

/* A header Gunicorn finds with an empty value prints empty: only a missing one is "-". */
static void put_slice_or_dash(Writer *w, const Slice *s) {
        if (s)
                put_escaped(w, s->p, s->len);
        else
                put(w, "-", 1);
}

static void put_u64(Writer *w, uint64_t v) {
        char num[24];
        int n = snprintf(num, sizeof(num), "%" PRIu64, v);

        put(w, num, (size_t) n);
}

static const Slice *find_header(const HttpHeader *h, size_t n, const char *name, size_t len, bool last) {
        const HttpHeader *found = headers_find(h, n, name, len, last);

        return found ? &found->value : NULL;
}

static const Slice *request_header(const AccessEntry *e, const char *name, size_t len, bool last) {
        if (!e->request)
                return NULL;
        return find_header(e->request->headers, e->request->n_headers, name, len, last);
}

/* %(U)s is Gunicorn's PATH_INFO: the path percent-decoded. */
static void put_path(Writer *w, Slice path) {
        for (size_t i = 0; i < path.len;) {
                char c;

                i += percent_decode_at(path.p, path.len, i, &c);
                put_escaped(w, &c, 1);
        }
}

static int b64_value(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

/* %(u)s: the user of "Authorization: Basic ...", as Gunicorn's _get_user() finds it. */
static void put_user(Writer *w, const AccessEntry *e) {
        const Slice *auth = request_header(e, "authorization", strlen("authorization"), false);
        char user[256];
        size_t n = 0, bits = 0, i;
        uint32_t acc = 0;
        const char *sp;

        if (!auth || auth->len < 5 || !ascii_case_equal(auth->p, "basic", 5))
                goto dash;
        sp = memchr(auth->p, ' ', auth->len);
        if (!sp)
                goto dash;
        /* Python's non-strict b64decode skips bytes outside the alphabet */
        for (i = (size_t) (sp + 1 - auth->p); i < auth->len && auth->p[i] != '='; i++) {
                int v = b64_value(auth->p[i]);

                if (v < 0)
                        continue;
                acc = (acc << 6) | (uint32_t) v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        if (n == sizeof(user))
                                goto dash;
                        user[n++] = (char) (acc >> bits);
                }
        }
        /* a lone sextet cannot be padded into a byte: b64decode raises */
        if (bits == 6)
                goto dash;
        for (i = 0; i < n && user[i] != ':'; i++)
                ;
        if (i == 0)
                goto dash;
        put_escaped(w, user, i);
        return;
dash:
        put(w, "-", 1);
}

static void put_time(Writer *w, const struct timespec *ts) {
        static const char months[12][4] = {
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        };
        char out[64];
        struct tm tm;
        long off;
        int n;

        if (!localtime_r(&ts->tv_sec, &tm)) {
                put(w, "-", 1);
                return;
        }
        off = tm.tm_gmtoff / 60;
        /* months spelled here: strftime's %b follows the locale, the log format does not */
        n = snprintf(out, sizeof(out), "[%02d/%s/%04d:%02d:%02d:%02d %c%02ld%02ld]", tm.tm_mday,
                     months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
        put(w, out, (size_t) MIN(n, (int) sizeof(out) - 1));
}

static void put_protocol(Writer *w, const Request *r) {
        char out[16];
        int n = snprintf(out, sizeof(out), "HTTP/%d.%d", r->http_major, r->http_minor);

        put(w, out, (size_t) n);
}

static void render_element(Writer *w, const AccessLog *l, const Element *el, const AccessEntry *e) {
        const Request *r = e->request;
        char num[48];
        int n;

        switch (el->type) {
        case ELEMENT_LITERAL:
                put(w, l->text + el->off, el->len);
                return;
        case ELEMENT_REMOTE_ADDR:
                if (e->remote_addr && e->remote_addr[0])
                        put_escaped(w, e->remote_addr, strlen(e->remote_addr));
                else
                        put(w, "-", 1);
                return;
        case ELEMENT_USER:
                put_user(w, e);
                return;
        case ELEMENT_TIME:
                put_time(w, &e->start);
                return;
        case ELEMENT_STATUS:
                put_u64(w, (uint64_t) MAX(e->status, 0));
                return;
        case ELEMENT_BYTES_SENT:
        case ELEMENT_BYTES_SENT_NUM:
                /* Gunicorn 23 prints the count for both, 0 included */
                put_u64(w, e->body_bytes);
                return;
        case ELEMENT_REFERER:
                put_slice_or_dash(w, request_header(e, "referer", strlen("referer"), false));
                return;
        case ELEMENT_USER_AGENT:
                put_slice_or_dash(w, request_header(e, "user-agent", strlen("user-agent"), false));
                return;
        case ELEMENT_DURATION_S:
                put_u64(w, e->duration_usec / 1000000);
                return;
        case ELEMENT_DURATION_MS:
                put_u64(w, e->duration_usec / 1000);
                return;
        case ELEMENT_DURATION_US:
                put_u64(w, e->duration_usec);
                return;
        case ELEMENT_DURATION_DECIMAL:
                n = snprintf(num, sizeof(num), "%" PRIu64 ".%06" PRIu64, e->duration_usec / 1000000,
                             e->duration_usec % 1000000);
                put(w, num, (size_t) n);
                return;
        case ELEMENT_PID:
                n = snprintf(num, sizeof(num), "<%ld>", (long) e->pid);
                put(w, num, (size_t) n);
                return;
        case ELEMENT_REQUEST_HEADER:
                /* Gunicorn builds a dict from the header list: the last one wins */
                put_slice_or_dash(w, request_header(e, l->text + el->off, el->len, true));
                return;
        case ELEMENT_RESPONSE_HEADER:
                put_slice_or_dash(w, find_header(e->response_headers, e->n_response_headers,
                                                 l->text + el->off, el->len, true));
                return;
        case ELEMENT_ENVIRON:
                if (e->environ_values && el->index < e->n_environ_values && e->environ_values[el->index].p)
                        put_text(w, e->environ_values[el->index].p, e->environ_values[el->index].len, true);
                else
                        put(w, "-", 1);
                return;
        case ELEMENT_IDENT:
        case ELEMENT_MISSING:
                put(w, "-", 1);
                return;
        default:
                break;
        }

        /* the rest describe the request */
        if (!r) {
                put(w, "-", 1);
                return;
        }
        switch (el->type) {
        case ELEMENT_REQUEST_LINE:
                put_escaped(w, r->method.p, r->method.len);
                put(w, " ", 1);
                put_escaped(w, r->target.p, r->target.len);
                put(w, " ", 1);
                put_protocol(w, r);
                return;
        case ELEMENT_METHOD:
                put_escaped(w, r->method.p, r->method.len);
                return;
        case ELEMENT_PATH:
                put_path(w, r->path);
                return;
        case ELEMENT_QUERY:
                put_escaped(w, r->query.p, r->query.len);
                return;
        case ELEMENT_PROTOCOL:
                put_protocol(w, r);
                return;
        default:
                put(w, "-", 1);
                return;
        }
}

size_t accesslog_render(const AccessLog *l, const AccessEntry *e, char *buf, size_t cap) {
        Writer w = { .buf = buf, .cap = cap > 0 ? cap - 1 : 0 };

        for (size_t i = 0; i < l->n_elements; i++) {
                const Element *el = &l->elements[i];
                Writer probe = {};
                size_t pad = 0;

                if (el->width > 0) {
                        /* a dry run measures the value for Python's field width */
                        render_element(&probe, l, el, e);
                        pad = el->width > probe.len ? el->width - probe.len : 0;
                }
                for (size_t k = 0; !el->left && k < pad; k++)
                        put(&w, " ", 1);
                render_element(&w, l, el, e);
                for (size_t k = 0; el->left && k < pad; k++)
                        put(&w, " ", 1);
        }
        if (cap > 0)
                buf[MIN(w.len, w.cap)] = 0;
        return w.len;
}
