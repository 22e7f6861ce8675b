/* Request -> WSGI environ (PEP 3333), shaped like Gunicorn 23's wsgi.create(). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gcorn/environ.h"
#include "gcorn/pylog.h"
#include "gcorn/filewrapper.h"
#include "gcorn/macro.h"

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
        _(WSGI_INPUT_TERMINATED, "wsgi.input_terminated")

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
typedef struct KnownHeader {
        const char *name;
        size_t len;
        const char *key;
        PyObject *key_obj;
        bool replace;
} KnownHeader;

#define H(n, k) { n, sizeof(n) - 1, k, NULL, false }
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
        { "Content-Type", sizeof("Content-Type") - 1, "CONTENT_TYPE", NULL, true },
        { "Content-Length", sizeof("Content-Length") - 1, "CONTENT_LENGTH", NULL, true },
};
#undef H

/* Methods common enough to share one string object. */
static const char *const method_names[] = { "GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS" };
static PyObject *methods[ELEMENTSOF(method_names)];

static PyObject *protocol_10, *protocol_11, *empty_string, *template_dict, *script_name;
static size_t script_name_len;
static char *script_name_bytes;

/* The last address strings seen: keep-alive connections and a steady SERVER_NAME reuse them. */
typedef struct StringCache {
        char text[64];
        size_t len;                     /* SIZE_MAX: obj is not for reuse */
        PyObject *obj;
} StringCache;

static StringCache cache_remote_addr, cache_remote_port, cache_server_name, cache_server_port;

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

static PyObject *intern(const char *s) {
        return PyUnicode_InternFromString(s);
}

static int build_template(const Settings *s) {
        PyObject *d = NULL, *version = NULL;
        int r = -ENOMEM;

        d = PyDict_New();
        if (!d)
                goto finish;
        version = Py_BuildValue("(ii)", 1, 0);
        if (!version)
                goto finish;
        if (PyDict_SetItem(d, keys[KEY_WSGI_VERSION], version) < 0 ||
            set_item(d, keys[KEY_WSGI_URL_SCHEME], intern("http")) < 0 ||
            PyDict_SetItem(d, keys[KEY_WSGI_MULTITHREAD], Py_False) < 0 ||
            PyDict_SetItem(d, keys[KEY_WSGI_MULTIPROCESS], s && s->workers > 1 ? Py_True : Py_False) < 0 ||
            PyDict_SetItem(d, keys[KEY_WSGI_RUN_ONCE], Py_False) < 0 ||
            PyDict_SetItem(d, keys[KEY_WSGI_FILE_WRAPPER], filewrapper_type()) < 0 ||
            PyDict_SetItem(d, keys[KEY_WSGI_INPUT_TERMINATED], Py_True) < 0 ||
            PyDict_SetItem(d, keys[KEY_SCRIPT_NAME], script_name) < 0 ||
            set_item(d, keys[KEY_SERVER_SOFTWARE], PyUnicode_FromString("gcorn/" GCORN_VERSION)) < 0)
                goto finish;
        template_dict = d;
        d = NULL;
        r = 0;
finish:
        Py_XDECREF(version);
        Py_XDECREF(d);
        return r;
}

int environ_init(const Settings *s) {
        const char *sn;
        int r;

        if (template_dict)
                return 0;
        r = filewrapper_init();
        if (r < 0)
                goto fail;
        for (size_t i = 0; i < _KEY_MAX; i++) {
                keys[i] = intern(key_strings[i]);
                if (!keys[i])
                        goto fail;
        }
        for (size_t i = 0; i < ELEMENTSOF(known_headers); i++) {
                known_headers[i].key_obj = intern(known_headers[i].key);
                if (!known_headers[i].key_obj)
                        goto fail;
        }
        for (size_t i = 0; i < ELEMENTSOF(methods); i++) {
                methods[i] = intern(method_names[i]);
                if (!methods[i])
                        goto fail;
        }
        protocol_10 = intern("HTTP/1.0");
        protocol_11 = intern("HTTP/1.1");
        empty_string = intern("");
        if (!protocol_10 || !protocol_11 || !empty_string)
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

        if (build_template(s) < 0)
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
        for (size_t i = 0; i < ELEMENTSOF(known_headers); i++)
                Py_CLEAR(known_headers[i].key_obj);
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                Py_CLEAR(methods[i]);
        Py_CLEAR(protocol_10);
        Py_CLEAR(protocol_11);
        Py_CLEAR(empty_string);
        Py_CLEAR(script_name);
        Py_CLEAR(template_dict);
        string_cache_clear(&cache_remote_addr);
        string_cache_clear(&cache_remote_port);
        string_cache_clear(&cache_server_name);
        string_cache_clear(&cache_server_port);
        free(script_name_bytes);
        script_name_bytes = NULL;
        script_name_len = 0;
}

const char *environ_script_name(void) {
        return script_name_bytes ? script_name_bytes : "";
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

size_t environ_unquote(const char *src, size_t len, char *dst) {
        size_t o = 0;

        for (size_t i = 0; i < len; i++) {
                int hi, lo;

                if (src[i] == '%' && i + 2 < len &&
                    (hi = unhex(src[i + 1])) >= 0 && (lo = unhex(src[i + 2])) >= 0) {
                        dst[o++] = (char) (hi << 4 | lo);
                        i += 2;
                } else
                        dst[o++] = src[i];
        }
        return o;
}

static PyObject *decode_path(const char *p, size_t len) {
        /* New reference: PEP 3333's "bytes as latin-1" after percent-decoding. */
        char stack[2048];
        char *buf = stack;
        PyObject *o;
        size_t n;

        if (!memchr(p, '%', len))
                return PyUnicode_DecodeLatin1(p, (Py_ssize_t) len, NULL);
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
                if (strlen(method_names[i]) == m->len && memcmp(method_names[i], m->p, m->len) == 0)
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

static PyObject *header_key(const Slice *name, bool *ret_replace) {
        /* New reference: the prebuilt key, or "HTTP_" + upper(name) with '-' -> '_'. */
        PyObject *key;
        Py_UCS1 *d;

        for (size_t i = 0; i < ELEMENTSOF(known_headers); i++) {
                KnownHeader *h = known_headers + i;

                if (h->len == name->len && strncasecmp(h->name, name->p, name->len) == 0) {
                        *ret_replace = h->replace;
                        return Py_NewRef(h->key_obj);
                }
        }
        *ret_replace = false;
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

static int add_header(PyObject *env, const HttpHeader *h) {
        PyObject *key = NULL, *value = NULL, *joined = NULL, *existing;
        bool replace;
        int r = -ENOMEM;

        key = header_key(&h->name, &replace);
        if (!key)
                goto finish;
        value = PyUnicode_DecodeLatin1(h->value.p, (Py_ssize_t) h->value.len, NULL);
        if (!value)
                goto finish;
        if (replace) {
                if (PyDict_SetItem(env, key, value) < 0)
                        goto finish;
                r = 0;
                goto finish;
        }
        /* One lookup for the common case; a repeated header joins with "," as Gunicorn does. */
        existing = PyDict_SetDefault(env, key, value); /* borrowed */
        if (!existing)
                goto finish;
        if (existing != value) {
                joined = PyUnicode_FromFormat("%U,%U", existing, value);
                if (!joined || PyDict_SetItem(env, key, joined) < 0)
                        goto finish;
        }
        r = 0;
finish:
        Py_XDECREF(joined);
        Py_XDECREF(value);
        Py_XDECREF(key);
        return r;
}

static int add_server(PyObject *env, const Request *r, const ConnInfo *info) {
        /* Gunicorn: the bound address for TCP; for a UNIX socket the Host header (port 80
         * when it has none), else the socket path and an empty port. */
        const HttpHeader *host;
        const char *name = info->server_name, *port = info->server_port;
        size_t name_len = strlen(name), port_len = strlen(port);
        PyObject *o;

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
        o = cached_string(&cache_server_name, name, name_len);
        if (!o || PyDict_SetItem(env, keys[KEY_SERVER_NAME], o) < 0)
                return -ENOMEM;
        o = cached_string(&cache_server_port, port, port_len);
        if (!o || PyDict_SetItem(env, keys[KEY_SERVER_PORT], o) < 0)
                return -ENOMEM;
        return 0;
}

int environ_build(const Request *r, const ConnInfo *info, PyObject *input, PyObject **ret) {
        PyObject *env = NULL, *o, *errors;
        Slice path = r->path;
        int ret_code = -ENOMEM;

        if (script_name_len > 0) {
                if (path.len < script_name_len || memcmp(path.p, script_name_bytes, script_name_len) != 0)
                        return -EXDEV;
                path.p += script_name_len;
                path.len -= script_name_len;
        }

        env = PyDict_Copy(template_dict);
        if (!env)
                goto finish;
        if (set_item(env, keys[KEY_REQUEST_METHOD], method_object(&r->method)) < 0 ||
            set_item(env, keys[KEY_PATH_INFO], decode_path(path.p, path.len)) < 0 ||
            set_item(env, keys[KEY_QUERY_STRING],
                     r->query.len ? PyUnicode_DecodeLatin1(r->query.p, (Py_ssize_t) r->query.len, NULL)
                                  : Py_NewRef(empty_string)) < 0 ||
            set_item(env, keys[KEY_RAW_URI], PyUnicode_DecodeLatin1(r->target.p, (Py_ssize_t) r->target.len, NULL)) < 0 ||
            set_item(env, keys[KEY_SERVER_PROTOCOL], protocol_object(r)) < 0)
                goto finish;

        for (size_t i = 0; i < r->n_headers; i++) {
                const HttpHeader *h = r->headers + i;

                /* Gunicorn 22+ (header_map "drop"): a name with '_' could pose as one with
                 * '-' once mapped to HTTP_*, so such headers never reach the app. */
                if (memchr(h->name.p, '_', h->name.len))
                        continue;
                if (add_header(env, h) < 0)
                        goto finish;
        }

        o = cached_string(&cache_remote_addr, info->remote_addr, strlen(info->remote_addr));
        if (!o || PyDict_SetItem(env, keys[KEY_REMOTE_ADDR], o) < 0)
                goto finish;
        if (!info->is_unix) {
                o = cached_string(&cache_remote_port, info->remote_port, strlen(info->remote_port));
                if (!o || PyDict_SetItem(env, keys[KEY_REMOTE_PORT], o) < 0)
                        goto finish;
        }
        if (add_server(env, r, info) < 0)
                goto finish;

        errors = pylog_errors(); /* borrowed */
        if (!errors)
                errors = PySys_GetObject("stderr"); /* borrowed */
        if (PyDict_SetItem(env, keys[KEY_WSGI_ERRORS], errors ? errors : Py_None) < 0 ||
            PyDict_SetItem(env, keys[KEY_WSGI_INPUT], input ? input : Py_None) < 0)
                goto finish;

        *ret = env;
        env = NULL;
        ret_code = 0;
finish:
        Py_XDECREF(env);
        return ret_code;
}
