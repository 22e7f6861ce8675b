/* Request -> WSGI environ (PEP 3333), shaped like Gunicorn 23's wsgi.create(). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gcorn/environ.h"
#include "gcorn/pylog.h"
#include "gcorn/filewrapper.h"
#include "gcorn/forwarded.h"
#include "gcorn/gsocket.h"
#include "gcorn/macro.h"
#include "gcorn/strutil.h"

/* Every fixed key, interned once. */
#define ENVIRON_KEYS(_)                                         \
        _(REQUEST_METHOD, "REQUEST_METHOD")                     \
        _(SCRIPT_NAME, "SCRIPT_NAME")                           \
        _(PATH_INFO, "PATH_INFO")                               \
        _(QUERY_STRING, "QUERY_STRING")                         \
        _(RAW_URI, "RAW_URI")                                   \
        _(SERVER_PROTOCOL, "SERVER_PROTOCOL")                   \
        _(SERVER_NAME, "SERVER_NAME")                           \
        _(SERVER_PORT, "SERVER_PORT")                           \
        _(SERVER_SOFTWARE, "SERVER_SOFTWARE")                   \
        _(REMOTE_ADDR, "REMOTE_ADDR")                           \
        _(REMOTE_PORT, "REMOTE_PORT")                           \
        _(CONTENT_TYPE, "CONTENT_TYPE")                         \
        _(CONTENT_LENGTH, "CONTENT_LENGTH")                     \
        _(WSGI_VERSION, "wsgi.version")                         \
        _(WSGI_URL_SCHEME, "wsgi.url_scheme")                   \
        _(WSGI_INPUT, "wsgi.input")                             \
        _(WSGI_ERRORS, "wsgi.errors")                           \
        _(WSGI_MULTITHREAD, "wsgi.multithread")                 \
        _(WSGI_MULTIPROCESS, "wsgi.multiprocess")               \
        _(WSGI_RUN_ONCE, "wsgi.run_once")                       \
        _(WSGI_FILE_WRAPPER, "wsgi.file_wrapper")               \
        _(WSGI_INPUT_TERMINATED, "wsgi.input_terminated")       \
        _(GUNICORN_SOCKET, "gunicorn.socket")                   \
        _(PROXY_PROTOCOL, "PROXY_PROTOCOL")                     \
        _(PROXY_ADDR, "PROXY_ADDR")                             \
        _(PROXY_PORT, "PROXY_PORT")

enum {
#define KEY_ENUM(id, s) KEY_##id,
        ENVIRON_KEYS(KEY_ENUM)
#undef KEY_ENUM
        _KEY_MAX,
};

static const char *const key_strings[_KEY_MAX] = {
#define KEY_STRING(id, s) [KEY_##id] = s,
        ENVIRON_KEYS(KEY_STRING)
#undef KEY_STRING
};

static PyObject *keys[_KEY_MAX];

/* Headers common enough to keep their environ key prebuilt. Content-Type and
 * Content-Length map to CONTENT_* and replace rather than join (Gunicorn's `continue`). */
/* The last address or header value strings seen: keep-alive connections and clients that
 * send the same Host, Accept or User-Agent on every request reuse one str. */
typedef struct StringCache {
        char text[128];
        size_t len;                     /* SIZE_MAX: obj is not for reuse */
        PyObject *obj;
} StringCache;

typedef struct KnownHeader {
        const char *name;
        size_t len;
        const char *key;
        PyObject *key_obj;
        bool replace;
        StringCache value;
        struct KnownHeader *next_same_len;
        /* A secure_scheme_headers name: the value that means HTTPS (NULL: none). Marking
         * the name here makes the check free for requests without such a header. */
        const char *scheme_value;
        size_t scheme_value_len;
        struct KnownHeader *next_extra; /* in extra_headers, which owns it */
} KnownHeader;

#define H(n, k) { n, sizeof(n) - 1, k, NULL, false, { .len = SIZE_MAX }, NULL, NULL, 0, NULL }
static KnownHeader known_headers[] = {
        H("Host", "HTTP_HOST"),
        H("User-Agent", "HTTP_USER_AGENT"),
        H("Accept", "HTTP_ACCEPT"),
        H("Accept-Encoding", "HTTP_ACCEPT_ENCODING"),
        H("Accept-Language", "HTTP_ACCEPT_LANGUAGE"),
        H("Accept-Charset", "HTTP_ACCEPT_CHARSET"),
        H("Connection", "HTTP_CONNECTION"),
        H("Keep-Alive", "HTTP_KEEP_ALIVE"),
        H("Cookie", "HTTP_COOKIE"),
        H("Referer", "HTTP_REFERER"),
        H("Cache-Control", "HTTP_CACHE_CONTROL"),
        H("Pragma", "HTTP_PRAGMA"),
        H("Authorization", "HTTP_AUTHORIZATION"),
        H("Origin", "HTTP_ORIGIN"),
        H("X-Forwarded-For", "HTTP_X_FORWARDED_FOR"),
        H("X-Forwarded-Proto", "HTTP_X_FORWARDED_PROTO"),
        H("X-Forwarded-Host", "HTTP_X_FORWARDED_HOST"),
        H("X-Forwarded-Port", "HTTP_X_FORWARDED_PORT"),
        H("X-Real-Ip", "HTTP_X_REAL_IP"),
        H("X-Request-Id", "HTTP_X_REQUEST_ID"),
        H("X-Requested-With", "HTTP_X_REQUESTED_WITH"),
        H("X-Csrftoken", "HTTP_X_CSRFTOKEN"),
        H("Forwarded", "HTTP_FORWARDED"),
        H("If-Modified-Since", "HTTP_IF_MODIFIED_SINCE"),
        H("If-None-Match", "HTTP_IF_NONE_MATCH"),
        H("Range", "HTTP_RANGE"),
        H("Expect", "HTTP_EXPECT"),
        H("Transfer-Encoding", "HTTP_TRANSFER_ENCODING"),
        H("Upgrade", "HTTP_UPGRADE"),
        H("Upgrade-Insecure-Requests", "HTTP_UPGRADE_INSECURE_REQUESTS"),
        H("Dnt", "HTTP_DNT"),
        H("Sec-Fetch-Site", "HTTP_SEC_FETCH_SITE"),
        H("Sec-Fetch-Mode", "HTTP_SEC_FETCH_MODE"),
        H("Sec-Fetch-Dest", "HTTP_SEC_FETCH_DEST"),
        { "Content-Type", sizeof("Content-Type") - 1, "CONTENT_TYPE", NULL, true, { .len = SIZE_MAX }, NULL, NULL, 0,
          NULL },
        { "Content-Length", sizeof("Content-Length") - 1, "CONTENT_LENGTH", NULL, true, { .len = SIZE_MAX }, NULL,
          NULL, 0, NULL },
};
#undef H

/* known_headers chained by name length: a lookup compares only names of the right length. */
#define KNOWN_LEN_MAX 32
static KnownHeader *known_by_len[KNOWN_LEN_MAX];
/* Scheme header names not among known_headers, allocated at init (names of KNOWN_LEN_MAX
 * bytes or more are only here); whether one has a '_' (such headers skip the HTTP_* path). */
static KnownHeader *extra_headers, *known_long;
static bool scheme_underscore;

/* Methods common enough to share one string object. */
#define M(s) { s, sizeof(s) - 1 }
static const struct {
        const char *name;
        size_t len;
} method_names[] = { M("GET"), M("POST"), M("HEAD"), M("PUT"), M("DELETE"), M("PATCH"), M("OPTIONS") };
#undef M
static PyObject *methods[ELEMENTSOF(method_names)];

static PyObject *protocol_10, *protocol_11, *empty_string, *script_name, *scheme_https;
static size_t script_name_len;
static char *script_name_bytes;

/* Every key a request always gets is already in the template, so PyDict_Copy() hands out a
 * table that needs no insert for them. Each one holds the value a request most likely has
 * (GET, HTTP/1.1, no query) or the last one seen (addresses, the target, wsgi.errors):
 * environ_build() updates the template when a request differs in what it remembers, and
 * writes into the copy what the template cannot hold (another method, a percent-decoded
 * path, wsgi.input). UNIX sockets have no REMOTE_PORT and take SERVER_NAME/PORT from Host,
 * hence two templates. */
typedef struct Template {
        PyObject *dict;
        StringCache raw_uri, path_info, query, remote_addr, remote_port, server_name, server_port;
        PyObject *errors;               /* wsgi.errors in dict (the dict holds the reference) */
} Template;

static Template template_tcp, template_unix;

/* SERVER_NAME/PORT of UNIX-socket requests, which come from each request's Host */
static StringCache cache_server_name, cache_server_port;

static PyObject *cached_string(StringCache *c, const char *text, size_t len) {
        /* Returns a borrowed reference (held by the cache), or NULL with a Python error set. */
        PyObject *o;

        if (c->obj && c->len == len && memcmp(c->text, text, len) == 0)
                return c->obj;
        o = PyUnicode_DecodeLatin1(text, (Py_ssize_t) len, NULL);
        if (!o)
                return NULL;
        Py_XSETREF(c->obj, o);
        if (len <= sizeof(c->text)) {
                memcpy(c->text, text, len);
                c->len = len;
        } else
                c->len = SIZE_MAX;
        return o;
}

static void string_cache_clear(StringCache *c) {
        Py_CLEAR(c->obj);
        c->len = SIZE_MAX;
}

static int set_item(PyObject *d, PyObject *key, PyObject *value /* stolen */) {
        int r;

        if (!value)
                return -ENOMEM;
        r = PyDict_SetItem(d, key, value);
        Py_DECREF(value);
        return r < 0 ? -ENOMEM : 0;
}

static PyObject *header_key(const Slice *name);
static KnownHeader *known_header(const Slice *name);

static PyObject *intern(const char *s) {
        return PyUnicode_InternFromString(s);
}

/* Keys the template holds for every request besides the constant ones; the values are set
 * in build_template() (None until the first request for those a request must provide). */
static const int per_request_keys[] = {
        KEY_REQUEST_METHOD, KEY_PATH_INFO, KEY_QUERY_STRING, KEY_RAW_URI, KEY_SERVER_PROTOCOL,
        KEY_SERVER_NAME, KEY_SERVER_PORT, KEY_REMOTE_ADDR, KEY_REMOTE_PORT, KEY_WSGI_ERRORS, KEY_WSGI_INPUT,
};

static void template_clear(Template *t) {
        Py_CLEAR(t->dict);
        t->errors = NULL;
        string_cache_clear(&t->raw_uri);
        string_cache_clear(&t->path_info);
        string_cache_clear(&t->query);
        string_cache_clear(&t->remote_addr);
        string_cache_clear(&t->remote_port);
        string_cache_clear(&t->server_name);
        string_cache_clear(&t->server_port);
}

/* Makes the template hold text under key, unless it already does. On failure the cache is
 * dropped, so cache and template never disagree. */
static int template_sync(Template *t, int key, StringCache *c, const char *text, size_t len) {
        PyObject *o;

        if (c->obj && c->len == len && memcmp(c->text, text, len) == 0)
                return 0;
        o = cached_string(c, text, len); /* borrowed */
        if (!o || PyDict_SetItem(t->dict, keys[key], o) < 0) {
                string_cache_clear(c);
                return -ENOMEM;
        }
        return 0;
}

/* A dict's table grows (and is rebuilt) when an insert finds it full; PyDict_Copy() clones the
 * template's table as it is. Filling the template past TEMPLATE_GROW_AT keys once and
 * removing the extra ones leaves a table with room for about twenty headers, so a copy
 * takes the request's HTTP_* keys without a resize. */
#define TEMPLATE_GROW_AT 22

static int template_make_room(PyObject *d) {
        PyObject *pad[TEMPLATE_GROW_AT] = {};
        Py_ssize_t n = 0;
        int r = -ENOMEM;

        while (PyDict_GET_SIZE(d) < TEMPLATE_GROW_AT) {
                pad[n] = PyUnicode_FromFormat("gcorn.pad%zd", n);
                if (!pad[n] || PyDict_SetItem(d, pad[n], Py_None) < 0)
                        goto finish;
                n++;
        }
        for (Py_ssize_t i = 0; i < n; i++)
                if (PyDict_DelItem(d, pad[i]) < 0)
                        goto finish;
        r = 0;
finish:
        for (Py_ssize_t i = 0; i < TEMPLATE_GROW_AT; i++)
                Py_XDECREF(pad[i]);
        return r;
}

static int build_template(const Settings *s, bool is_unix, Template *ret) {
        PyObject *d = NULL, *version = NULL;
        int r = -ENOMEM;

        d = PyDict_New();
        if (!d)
                goto finish;
        for (size_t i = 0; i < ELEMENTSOF(per_request_keys); i++) {
                if (is_unix && per_request_keys[i] == KEY_REMOTE_PORT)
                        continue;
                if (PyDict_SetItem(d, keys[per_request_keys[i]], Py_None) < 0)
                        goto finish;
        }
        version = Py_BuildValue("(ii)", 1, 0);
        if (!version)
                goto finish;
        if (PyDict_SetItem(d, keys[KEY_WSGI_VERSION], version) < 0 ||
            set_item(d, keys[KEY_WSGI_URL_SCHEME], intern("http")) < 0 ||
            PyDict_SetItem(d, keys[KEY_WSGI_MULTITHREAD], s && (settings_threaded(s) || settings_gevent(s)) ? Py_True : Py_False) < 0 ||
            PyDict_SetItem(d, keys[KEY_WSGI_MULTIPROCESS], s && s->workers > 1 ? Py_True : Py_False) < 0 ||
            PyDict_SetItem(d, keys[KEY_WSGI_RUN_ONCE], Py_False) < 0 ||
            PyDict_SetItem(d, keys[KEY_WSGI_FILE_WRAPPER], filewrapper_type()) < 0 ||
            PyDict_SetItem(d, keys[KEY_WSGI_INPUT_TERMINATED], Py_True) < 0 ||
            /* one object for every request: it becomes the connection's socket only when used */
            PyDict_SetItem(d, keys[KEY_GUNICORN_SOCKET], gsocket_object()) < 0 ||
            PyDict_SetItem(d, keys[KEY_SCRIPT_NAME], script_name) < 0 ||
            set_item(d, keys[KEY_SERVER_SOFTWARE], PyUnicode_FromString("gcorn/" GCORN_VERSION)) < 0)
                goto finish;
        if (PyDict_SetItem(d, keys[KEY_REQUEST_METHOD], methods[0]) < 0 ||
            PyDict_SetItem(d, keys[KEY_SERVER_PROTOCOL], protocol_11) < 0 ||
            PyDict_SetItem(d, keys[KEY_QUERY_STRING], empty_string) < 0)
                goto finish;
        if (template_make_room(d) < 0)
                goto finish;
        template_clear(ret);
        ret->dict = TAKE_PTR(d);
        r = 0;
finish:
        Py_XDECREF(version);
        Py_XDECREF(d);
        return r;
}

/* Marks each secure_scheme_headers name, adding the names the table lacks. */
static int mark_scheme_headers(char *const *pairs) {
        for (size_t i = 0; pairs && pairs[i] && pairs[i + 1]; i += 2) {
                Slice name = { pairs[i], strlen(pairs[i]) };
                KnownHeader *h = known_header(&name);

                if (!h) {
                        h = calloc(1, sizeof(KnownHeader));
                        if (!h)
                                return -ENOMEM;
                        h->next_extra = extra_headers;
                        extra_headers = h;
                        h->name = pairs[i];
                        h->len = name.len;
                        h->value.len = SIZE_MAX;
                        h->key_obj = header_key(&name);
                        if (!h->key_obj)
                                return -ENOMEM;
                        if (h->len < KNOWN_LEN_MAX) {
                                h->next_same_len = known_by_len[h->len];
                                known_by_len[h->len] = h;
                        } else {
                                h->next_same_len = known_long;
                                known_long = h;
                        }
                }
                h->scheme_value = pairs[i + 1];
                h->scheme_value_len = strlen(pairs[i + 1]);
                if (memchr(name.p, '_', name.len))
                        scheme_underscore = true;
        }
        return 0;
}

int environ_init(const Settings *s) {
        const char *sn;
        int r;

        if (template_tcp.dict)
                return 0;
        r = filewrapper_init();
        if (r < 0)
                goto fail;
        r = gsocket_init();
        if (r < 0)
                goto fail;
        for (size_t i = 0; i < _KEY_MAX; i++) {
                keys[i] = intern(key_strings[i]);
                if (!keys[i])
                        goto fail;
        }
        memset(known_by_len, 0, sizeof(known_by_len));
        for (size_t i = ELEMENTSOF(known_headers); i-- > 0;) {
                KnownHeader *h = known_headers + i;

                assert(h->len < KNOWN_LEN_MAX);
                h->key_obj = intern(h->key);
                if (!h->key_obj)
                        goto fail;
                h->next_same_len = known_by_len[h->len];
                known_by_len[h->len] = h;
        }
        for (size_t i = 0; i < ELEMENTSOF(methods); i++) {
                methods[i] = intern(method_names[i].name);
                if (!methods[i])
                        goto fail;
        }
        protocol_10 = intern("HTTP/1.0");
        protocol_11 = intern("HTTP/1.1");
        empty_string = intern("");
        scheme_https = intern("https");
        if (!protocol_10 || !protocol_11 || !empty_string || !scheme_https)
                goto fail;
        /* The Settings outlive the worker's environ: the names and values are borrowed. */
        if (s && mark_scheme_headers(s->secure_scheme_headers) < 0)
                goto fail;
        if (forwarded_init(s) < 0)
                goto fail;

        /* Gunicorn: os.environ.get("SCRIPT_NAME", ""). os.environ writes go through putenv(),
         * so getenv() sees --env values too. */
        sn = getenv("SCRIPT_NAME");
        script_name_bytes = strdup(sn ? sn : "");
        if (!script_name_bytes)
                goto fail;
        script_name_len = strlen(script_name_bytes);
        script_name = PyUnicode_DecodeFSDefault(script_name_bytes);
        if (!script_name)
                goto fail;

        if (build_template(s, false, &template_tcp) < 0 || build_template(s, true, &template_unix) < 0)
                goto fail;
        return 0;
fail:
        PyErr_Clear();
        environ_done();
        return -ENOMEM;
}

void environ_done(void) {
        for (size_t i = 0; i < _KEY_MAX; i++)
                Py_CLEAR(keys[i]);
        for (size_t i = 0; i < ELEMENTSOF(known_headers); i++) {
                Py_CLEAR(known_headers[i].key_obj);
                string_cache_clear(&known_headers[i].value);
                known_headers[i].scheme_value = NULL;
        }
        while (extra_headers) {
                KnownHeader *h = extra_headers;

                extra_headers = h->next_extra;
                Py_CLEAR(h->key_obj);
                string_cache_clear(&h->value);
                free(h);
        }
        memset(known_by_len, 0, sizeof(known_by_len));
        known_long = NULL;
        scheme_underscore = false;
        forwarded_done();
        Py_CLEAR(scheme_https);
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                Py_CLEAR(methods[i]);
        Py_CLEAR(protocol_10);
        Py_CLEAR(protocol_11);
        Py_CLEAR(empty_string);
        Py_CLEAR(script_name);
        template_clear(&template_tcp);
        template_clear(&template_unix);
        gsocket_done();
        string_cache_clear(&cache_server_name);
        string_cache_clear(&cache_server_port);
        free(script_name_bytes);
        script_name_bytes = NULL;
        script_name_len = 0;
}

const char *environ_script_name(void) {
        return script_name_bytes ? script_name_bytes : "";
}

size_t environ_unquote(const char *src, size_t len, char *dst) {
        size_t o = 0;

        for (size_t i = 0; i < len; o++)
                i += percent_decode_at(src, len, i, &dst[o]);
        return o;
}

static PyObject *decode_path(const char *p, size_t len) {
        /* New reference: PEP 3333's "bytes as latin-1" after percent-decoding. */
        char stack[2048];
        char *buf = stack;
        PyObject *o;
        size_t n;

        if (len > sizeof(stack)) {
                buf = malloc(len);
                if (!buf)
                        return PyErr_NoMemory();
        }
        n = environ_unquote(p, len, buf);
        o = PyUnicode_DecodeLatin1(buf, (Py_ssize_t) n, NULL);
        if (buf != stack)
                free(buf);
        return o;
}

static PyObject *method_object(const Slice *m) {
        /* New reference. */
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                if (method_names[i].len == m->len && memcmp(method_names[i].name, m->p, m->len) == 0)
                        return Py_NewRef(methods[i]);
        return PyUnicode_DecodeLatin1(m->p, (Py_ssize_t) m->len, NULL);
}

static PyObject *protocol_object(const Request *r) {
        /* New reference. */
        if (r->http_major == 1 && r->http_minor == 1)
                return Py_NewRef(protocol_11);
        if (r->http_major == 1 && r->http_minor == 0)
                return Py_NewRef(protocol_10);
        return PyUnicode_FromFormat("HTTP/%d.%d", r->http_major, r->http_minor);
}

static KnownHeader *known_header(const Slice *name) {
        if (name->len >= KNOWN_LEN_MAX) {
                for (KnownHeader *h = known_long; h; h = h->next_same_len)
                        if (h->len == name->len && ascii_case_equal(h->name, name->p, name->len))
                                return h;
                return NULL;
        }
        for (KnownHeader *h = known_by_len[name->len]; h; h = h->next_same_len)
                if (ascii_case_equal(h->name, name->p, name->len))
                        return h;
        return NULL;
}

static PyObject *header_key(const Slice *name) {
        /* New reference: "HTTP_" + upper(name) with '-' -> '_'. */
        PyObject *key;
        Py_UCS1 *d;

        /* Names are tokens (ASCII), so the key can be written straight into a compact ASCII
         * string; anything else would break that string's invariants. */
        for (size_t i = 0; i < name->len; i++)
                if ((unsigned char) name->p[i] >= 0x80) {
                        PyErr_SetString(PyExc_ValueError, "non-ASCII header name");
                        return NULL;
                }
        key = PyUnicode_New((Py_ssize_t) name->len + 5, 127);
        if (!key)
                return NULL;
        d = PyUnicode_1BYTE_DATA(key);
        memcpy(d, "HTTP_", 5);
        for (size_t i = 0; i < name->len; i++) {
                char c = name->p[i];

                if (c == '-')
                        c = '_';
                else if (c >= 'a' && c <= 'z')
                        c = (char) (c - 'a' + 'A');
                d[5 + i] = (Py_UCS1) c;
        }
        return key;
}

/* A scheme header's say on the scheme (st is set up on the first one): 0 or -EPROTO. */
static int scheme_header(SchemeState **st, SchemeState *buf, const ConnInfo *info, const HttpHeader *h) {
        const KnownHeader *known = known_header(&h->name);

        if (!known || !known->scheme_value)
                return 0;
        if (!*st) {
                *buf = SCHEME_STATE_INIT(info);
                *st = buf;
        }
        return forwarded_scheme_header(*st, known->scheme_value, known->scheme_value_len, h->value.p, h->value.len);
}

/* Returns 0, 1 when the name is one of secure_scheme_headers (for scheme_header()), or
 * -ENOMEM with a Python error set. */
static int add_header(PyObject *env, const HttpHeader *h) {
        KnownHeader *known = known_header(&h->name);
        PyObject *key = NULL, *value = NULL, *joined = NULL, *existing;
        Py_ssize_t size;
        int r = -ENOMEM;

        if (known) {
                key = Py_NewRef(known->key_obj);
                value = Py_XNewRef(cached_string(&known->value, h->value.p, h->value.len));
        } else {
                key = header_key(&h->name);
                if (!key)
                        goto finish;
                value = PyUnicode_DecodeLatin1(h->value.p, (Py_ssize_t) h->value.len, NULL);
        }
        if (!value)
                goto finish;
        if (known && known->replace) {
                if (PyDict_SetItem(env, key, value) < 0)
                        goto finish;
                r = known->scheme_value != NULL;
                goto finish;
        }
        /* One lookup for the common case; a repeated header joins with "," as Gunicorn does.
         * Values are shared objects (cached, or CPython's one-character strings), so only the
         * dict's size tells whether the key was already there. */
        size = PyDict_GET_SIZE(env);
        existing = PyDict_SetDefault(env, key, value); /* borrowed */
        if (!existing)
                goto finish;
        if (PyDict_GET_SIZE(env) == size) {
                joined = PyUnicode_FromFormat("%U,%U", existing, value);
                if (!joined || PyDict_SetItem(env, key, joined) < 0)
                        goto finish;
        }
        r = _unlikely_(known && known->scheme_value);
finish:
        Py_XDECREF(joined);
        Py_XDECREF(value);
        Py_XDECREF(key);
        return r;
}

/* Stores a borrowed value (NULL: the error of the call that made it). */
static int set_borrowed(PyObject *d, PyObject *key, PyObject *value) {
        if (!value || PyDict_SetItem(d, key, value) < 0)
                return -ENOMEM;
        return 0;
}

static int add_server(PyObject *env, const Request *r, const ConnInfo *info) {
        /* Gunicorn: the bound address for TCP; for a UNIX socket the Host header (port 80
         * when it has none), else the socket path and an empty port. */
        const HttpHeader *host;
        const char *name = info->server_name, *port = info->server_port;
        size_t name_len = strlen(name), port_len = strlen(port);

        if (info->is_unix) {
                host = request_find_header(r, "Host");
                if (host) {
                        const char *colon = memchr(host->value.p, ':', host->value.len);

                        name = host->value.p;
                        if (colon) {
                                const char *end = host->value.p + host->value.len, *next;

                                name_len = (size_t) (colon - name);
                                port = colon + 1;
                                next = memchr(port, ':', (size_t) (end - port));
                                port_len = (size_t) ((next ? next : end) - port);
                        } else {
                                name_len = host->value.len;
                                port = "80";
                                port_len = 2;
                        }
                }
        }
        if (set_borrowed(env, keys[KEY_SERVER_NAME], cached_string(&cache_server_name, name, name_len)) < 0 ||
            set_borrowed(env, keys[KEY_SERVER_PORT], cached_string(&cache_server_port, port, port_len)) < 0)
                return -ENOMEM;
        return 0;
}

/* What a PROXY protocol header told, as Gunicorn's proxy_environ() sets it. */
static int add_proxy(PyObject *env, const ConnInfo *info) {
        if (set_item(env, keys[KEY_PROXY_PROTOCOL], PyUnicode_FromString(info->proxy_protocol)) < 0)
                return -ENOMEM;
        if (!info->proxy_addr[0])
                return 0;
        if (set_item(env, keys[KEY_PROXY_ADDR], PyUnicode_FromString(info->proxy_addr)) < 0 ||
            set_item(env, keys[KEY_PROXY_PORT], PyUnicode_FromString(info->proxy_port)) < 0)
                return -ENOMEM;
        /* the UNIX template has no REMOTE_PORT: a named client has one */
        if (info->is_unix && set_item(env, keys[KEY_REMOTE_PORT], PyUnicode_FromString(info->remote_port)) < 0)
                return -ENOMEM;
        return 0;
}

/* Gunicorn's wsgi.create() takes SCRIPT_NAME from the last header that upper-cases to it. */
static const HttpHeader *forwarded_script_name(const Request *r) {
        const HttpHeader *found = NULL;

        for (size_t i = 0; i < r->n_headers; i++)
                if (r->headers[i].name.len == 11 && ascii_case_equal(r->headers[i].name.p, "SCRIPT_NAME", 11))
                        found = &r->headers[i];
        return found;
}

/* The request's path past SCRIPT_NAME (PATH_INFO, still quoted) into *ret, and the SCRIPT_NAME
 * header that set it (NULL: the variable's) into *ret_forwarded; -EXDEV when the path does
 * not start with it. */
static inline int split_script_name(const Request *r, Slice *ret, const HttpHeader **ret_forwarded) {
        Slice path = r->path, sn = { script_name_bytes, script_name_len };
        const HttpHeader *forwarded = r->underscore_kept ? forwarded_script_name(r) : NULL;

        /* a SCRIPT_NAME header the parser kept (forwarder_headers) overrides the variable */
        if (forwarded)
                sn = forwarded->value;
        if (sn.len > 0) {
                if (path.len < sn.len || memcmp(path.p, sn.p, sn.len) != 0)
                        return -EXDEV;
                path.p += sn.len;
                path.len -= sn.len;
        }
        *ret = path;
        *ret_forwarded = forwarded;
        return 0;
}

int environ_build(const Request *r, const ConnInfo *info, PyObject *input, PyObject **ret) {
        Template *t = info->is_unix ? &template_unix : &template_tcp;
        SchemeState *scheme = NULL, scheme_buf; /* only once a scheme header comes */
        PyObject *env = NULL, *errors;
        const HttpHeader *forwarded;
        Slice path;
        bool quoted;
        int ret_code = -ENOMEM, k;

        if (split_script_name(r, &path, &forwarded) < 0)
                return -EXDEV;
        quoted = memchr(path.p, '%', path.len);

        errors = pylog_errors(); /* borrowed */
        if (!errors)
                errors = PySys_GetObject("stderr"); /* borrowed */
        if (!errors)
                errors = Py_None;
        if (errors != t->errors) {
                if (PyDict_SetItem(t->dict, keys[KEY_WSGI_ERRORS], errors) < 0)
                        goto finish;
                t->errors = errors;
        }
        if (template_sync(t, KEY_RAW_URI, &t->raw_uri, r->target.p, r->target.len) < 0 ||
            (!quoted && template_sync(t, KEY_PATH_INFO, &t->path_info, path.p, path.len) < 0) ||
            template_sync(t, KEY_QUERY_STRING, &t->query, r->query.p, r->query.len) < 0 ||
            template_sync(t, KEY_REMOTE_ADDR, &t->remote_addr, info->remote_addr, strlen(info->remote_addr)) < 0)
                goto finish;
        if (!info->is_unix &&
            (template_sync(t, KEY_REMOTE_PORT, &t->remote_port, info->remote_port, strlen(info->remote_port)) < 0 ||
             template_sync(t, KEY_SERVER_NAME, &t->server_name, info->server_name, strlen(info->server_name)) < 0 ||
             template_sync(t, KEY_SERVER_PORT, &t->server_port, info->server_port, strlen(info->server_port)) < 0))
                goto finish;

        env = PyDict_Copy(t->dict);
        if (!env)
                goto finish;
        /* What the template cannot hold; every key here is already in the copy. */
        if (!(r->method.len == 3 && memcmp(r->method.p, "GET", 3) == 0) &&
            set_item(env, keys[KEY_REQUEST_METHOD], method_object(&r->method)) < 0)
                goto finish;
        if (!(r->http_major == 1 && r->http_minor == 1) &&
            set_item(env, keys[KEY_SERVER_PROTOCOL], protocol_object(r)) < 0)
                goto finish;
        if (quoted && set_item(env, keys[KEY_PATH_INFO], decode_path(path.p, path.len)) < 0)
                goto finish;
        if (info->is_unix && add_server(env, r, info) < 0)
                goto finish;
        if (forwarded &&
            set_item(env, keys[KEY_SCRIPT_NAME],
                     PyUnicode_DecodeLatin1(forwarded->value.p, (Py_ssize_t) forwarded->value.len, NULL)) < 0)
                goto finish;
        if (PyDict_SetItem(env, keys[KEY_WSGI_INPUT], input ? input : Py_None) < 0)
                goto finish;

        for (size_t i = 0; i < r->n_headers; i++) {
                const HttpHeader *h = r->headers + i;

                /* Gunicorn 22+ (header_map "drop"): a name with '_' could pose as one with
                 * '-' once mapped to HTTP_*, so such headers never reach the app unless the
                 * parser's header_map (or forwarder_headers) let them through. */
                if (!r->header_map_applied && memchr(h->name.p, '_', h->name.len)) {
                        /* Gunicorn reads the scheme before it drops the header */
                        if (scheme_underscore && (k = scheme_header(&scheme, &scheme_buf, info, h)) < 0) {
                                ret_code = k;
                                goto finish;
                        }
                        continue;
                }
                k = add_header(env, h);
                if (_unlikely_(k != 0)) {
                        if (k < 0)
                                goto finish;
                        k = scheme_header(&scheme, &scheme_buf, info, h);
                        if (k < 0) {
                                ret_code = k;
                                goto finish;
                        }
                }
        }
        if (_unlikely_(scheme_underscore))
                for (size_t i = r->n_headers; i < r->n_headers + r->n_dropped; i++) {
                        k = scheme_header(&scheme, &scheme_buf, info, r->headers + i);
                        if (k < 0) {
                                ret_code = k;
                                goto finish;
                        }
                }
        if (_unlikely_(scheme && scheme->https) &&
            PyDict_SetItem(env, keys[KEY_WSGI_URL_SCHEME], scheme_https) < 0)
                goto finish;
        if (_unlikely_(info->proxy_protocol) && add_proxy(env, info) < 0)
                goto finish;

        *ret = TAKE_PTR(env);
        ret_code = 0;
finish:
        Py_XDECREF(env);
        return ret_code;
}

int environ_check(const Request *r, const ConnInfo *info) {
        const HttpHeader *forwarded;
        Slice path;
        int k;

        if (split_script_name(r, &path, &forwarded) < 0)
                return -EXDEV;
        k = environ_scheme_https(r, info);
        return k < 0 ? k : 0;
}

int environ_scheme_https(const Request *r, const ConnInfo *info) {
        SchemeState *scheme = NULL, scheme_buf;
        int k;

        /* Kept and dropped headers alike: Gunicorn reads the scheme before it drops any. */
        for (size_t i = 0; i < r->n_headers + r->n_dropped; i++) {
                k = scheme_header(&scheme, &scheme_buf, info, r->headers + i);
                if (k < 0)
                        return k;
        }
        return scheme && scheme->https;
}

/* Appends t to v->text; returns the offset it landed at, or SIZE_MAX without memory. */
static size_t log_text_append(EnvironLogValues *v, size_t *len, const char *t, size_t n) {
        size_t off = *len;

        if (n > v->text_cap - off) {
                size_t cap = MAX(MAX(v->text_cap * 2, off + n), (size_t) 256);
                char *p = realloc(v->text, cap);

                if (!p)
                        return SIZE_MAX;
                v->text = p;
                v->text_cap = cap;
        }
        memcpy(v->text + off, t, n);
        *len = off + n;
        return off;
}

int environ_log_values(PyObject *env, const AccessLog *l, EnvironLogValues *v) {
        size_t n = accesslog_environ_count(l), len = 0;

        if (n > v->n) {
                Slice *p = reallocarray(v->values, n, sizeof(Slice));
                size_t *o;

                if (!p)
                        return -ENOMEM;
                v->values = p;
                o = reallocarray(v->offsets, n, sizeof(size_t));
                if (!o)
                        return -ENOMEM;
                v->offsets = o;
                v->n = n;
        }
        for (size_t i = 0; i < n; i++) {
                const char *name = accesslog_environ_name(l, i), *t;
                size_t name_len = strlen(name), off;
                PyObject *key, *value, *found = NULL, *str;
                Py_ssize_t pos = 0, tlen;

                v->offsets[i] = SIZE_MAX;
                while (PyDict_Next(env, &pos, &key, &value)) {
                        Py_ssize_t klen;
                        const char *k = PyUnicode_Check(key) ? PyUnicode_AsUTF8AndSize(key, &klen) : NULL;

                        if (!k) {
                                PyErr_Clear();
                                continue;
                        }
                        if ((size_t) klen == name_len && ascii_case_equal(k, name, name_len))
                                found = value;
                }
                if (!found)
                        continue;
                str = PyObject_Str(found);
                t = str ? PyUnicode_AsUTF8AndSize(str, &tlen) : NULL;
                if (!t) {
                        PyErr_Clear();
                        Py_XDECREF(str);
                        continue;
                }
                off = log_text_append(v, &len, t, (size_t) tlen);
                Py_DECREF(str);
                if (off == SIZE_MAX)
                        return -ENOMEM;
                v->offsets[i] = off;
                v->values[i].len = (size_t) tlen;
        }
        /* pointers only now: the text may have moved while it grew */
        for (size_t i = 0; i < n; i++)
                v->values[i].p = v->offsets[i] == SIZE_MAX ? NULL : v->text ? v->text + v->offsets[i] : "";
        return 0;
}

void environ_log_values_free(EnvironLogValues *v) {
        v->values = mfree(v->values);
        v->offsets = mfree(v->offsets);
        v->text = mfree(v->text);
        v->n = v->text_cap = 0;
}
