/* Request -> ASGI scope (https://asgi.readthedocs.io/en/latest/specs/www.html). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gcorn/environ.h"
#include "gcorn/macro.h"
#include "gcorn/scope.h"

#define SCOPE_KEYS(_)                           \
        _(TYPE, "type")                         \
        _(ASGI, "asgi")                         \
        _(VERSION, "version")                   \
        _(SPEC_VERSION, "spec_version")         \
        _(HTTP_VERSION, "http_version")         \
        _(METHOD, "method")                     \
        _(SCHEME, "scheme")                     \
        _(PATH, "path")                         \
        _(RAW_PATH, "raw_path")                 \
        _(QUERY_STRING, "query_string")         \
        _(ROOT_PATH, "root_path")               \
        _(HEADERS, "headers")                   \
        _(CLIENT, "client")                     \
        _(SERVER, "server")                     \
        _(STATE, "state")                       \
        _(SUBPROTOCOLS, "subprotocols")         \
        _(EXTENSIONS, "extensions")

#define SCOPE_KEY_ENUM(id, s) KEY_##id,
enum { SCOPE_KEYS(SCOPE_KEY_ENUM) _KEY_MAX };
#define SCOPE_KEY_STRING(id, s) s,
static const char *const key_strings[] = { SCOPE_KEYS(SCOPE_KEY_STRING) };

static PyObject *keys[_KEY_MAX];
/* values every scope shares; the mutable ones (the asgi dict) are copied per scope */
static PyObject *type_http, *type_websocket, *asgi_template, *version_10, *version_11;
static PyObject *scheme_http, *scheme_https, *scheme_ws, *scheme_wss, *root_path;
/* An http scope's keys in order, with the values most requests share: a scope is a copy of
 * one (a copy of a dict's table, no insertion), whose values per request replace these */
static PyObject *template_http, *template_http_state;
static const char *const method_names[] = { "GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS" };
static PyObject *methods[ELEMENTSOF(method_names)];
/* The server address of the last scope: the same for every request of a listener, and a
 * tuple, so scopes may share it. */
static PyObject *server_last;
static char server_last_name[64], server_last_port[8];

int scope_init(const Settings *s) {
        const char *rp;

        if (keys[0])
                return 0;
        for (size_t i = 0; i < _KEY_MAX; i++) {
                keys[i] = PyUnicode_InternFromString(key_strings[i]);
                if (!keys[i])
                        goto fail;
        }
        type_http = PyUnicode_InternFromString("http");
        type_websocket = PyUnicode_InternFromString("websocket");
        version_10 = PyUnicode_InternFromString("1.0");
        version_11 = PyUnicode_InternFromString("1.1");
        scheme_http = PyUnicode_InternFromString("http");
        scheme_https = PyUnicode_InternFromString("https");
        scheme_ws = PyUnicode_InternFromString("ws");
        scheme_wss = PyUnicode_InternFromString("wss");
        asgi_template = Py_BuildValue("{s:s,s:s}", "version", "3.0", "spec_version", "2.4");
        for (size_t i = 0; i < ELEMENTSOF(method_names); i++) {
                methods[i] = PyUnicode_InternFromString(method_names[i]);
                if (!methods[i])
                        goto fail;
        }
        if (!type_http || !type_websocket || !version_10 || !version_11 || !scheme_http || !scheme_https ||
            !scheme_ws || !scheme_wss || !asgi_template)
                goto fail;
        /* Gunicorn 24+ takes --root-path; a mount set the WSGI way (SCRIPT_NAME in the
         * environment) means the same to an ASGI app. */
        rp = s && s->root_path && s->root_path[0] ? s->root_path : environ_script_name();
        root_path = PyUnicode_DecodeUTF8(rp, (Py_ssize_t) strlen(rp), "surrogateescape");
        if (!root_path)
                goto fail;
        template_http = PyDict_New();
        if (!template_http ||
            PyDict_SetItem(template_http, keys[KEY_TYPE], type_http) < 0 ||
            PyDict_SetItem(template_http, keys[KEY_ASGI], Py_None) < 0 ||
            PyDict_SetItem(template_http, keys[KEY_HTTP_VERSION], version_11) < 0 ||
            PyDict_SetItem(template_http, keys[KEY_METHOD], Py_None) < 0 ||
            PyDict_SetItem(template_http, keys[KEY_SCHEME], scheme_http) < 0 ||
            PyDict_SetItem(template_http, keys[KEY_PATH], Py_None) < 0 ||
            PyDict_SetItem(template_http, keys[KEY_RAW_PATH], Py_None) < 0 ||
            PyDict_SetItem(template_http, keys[KEY_QUERY_STRING], Py_None) < 0 ||
            PyDict_SetItem(template_http, keys[KEY_ROOT_PATH], root_path) < 0 ||
            PyDict_SetItem(template_http, keys[KEY_HEADERS], Py_None) < 0 ||
            PyDict_SetItem(template_http, keys[KEY_CLIENT], Py_None) < 0 ||
            PyDict_SetItem(template_http, keys[KEY_SERVER], Py_None) < 0)
                goto fail;
        template_http_state = PyDict_Copy(template_http);
        if (!template_http_state || PyDict_SetItem(template_http_state, keys[KEY_STATE], Py_None) < 0)
                goto fail;
        return 0;
fail:
        PyErr_Clear();
        scope_done();
        return -ENOMEM;
}

void scope_done(void) {
        for (size_t i = 0; i < _KEY_MAX; i++)
                Py_CLEAR(keys[i]);
        Py_CLEAR(type_http);
        Py_CLEAR(type_websocket);
        Py_CLEAR(version_10);
        Py_CLEAR(version_11);
        Py_CLEAR(scheme_http);
        Py_CLEAR(scheme_https);
        Py_CLEAR(scheme_ws);
        Py_CLEAR(scheme_wss);
        Py_CLEAR(asgi_template);
        Py_CLEAR(root_path);
        Py_CLEAR(template_http);
        Py_CLEAR(template_http_state);
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                Py_CLEAR(methods[i]);
        Py_CLEAR(server_last);
}

static int set_item(PyObject *d, PyObject *key, PyObject *value /* stolen */) {
        int r;

        if (!value)
                return -ENOMEM;
        r = PyDict_SetItem(d, key, value);
        Py_DECREF(value);
        return r < 0 ? -ENOMEM : 0;
}

static PyObject *bytes_of(const Slice *sl) {
        /* New reference. */
        return PyBytes_FromStringAndSize(sl->p, (Py_ssize_t) sl->len);
}

static PyObject *decode_path(const Slice *path) {
        /* New reference: percent-decoded, then UTF-8 with U+FFFD for what is not, as
         * uvicorn's urllib.parse.unquote() does. */
        _cleanup_free_ char *buf = NULL;
        size_t n;

        if (!memchr(path->p, '%', path->len))
                return PyUnicode_DecodeUTF8(path->p, (Py_ssize_t) path->len, "replace");
        buf = malloc(path->len + 1);
        if (!buf)
                return PyErr_NoMemory();
        n = environ_unquote(path->p, path->len, buf);
        return PyUnicode_DecodeUTF8(buf, (Py_ssize_t) n, "replace");
}

static PyObject *lower_bytes(const Slice *name) {
        /* New reference. */
        PyObject *o = PyBytes_FromStringAndSize(NULL, (Py_ssize_t) name->len);
        char *d;

        if (!o)
                return NULL;
        d = PyBytes_AS_STRING(o);
        for (size_t i = 0; i < name->len; i++) {
                char c = name->p[i];

                d[i] = (char) (c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        return o;
}

static PyObject *method_of(const Slice *m) {
        /* New reference. */
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                if (strlen(method_names[i]) == m->len && memcmp(method_names[i], m->p, m->len) == 0)
                        return Py_NewRef(methods[i]);
        return PyUnicode_DecodeLatin1(m->p, (Py_ssize_t) m->len, NULL);
}

static PyObject *headers_list(const Request *r) {
        /* New reference: [(lower-cased name, value), ...] in wire order. */
        PyObject *l = PyList_New(0);

        if (!l)
                return NULL;
        for (size_t i = 0; i < r->n_headers; i++) {
                const HttpHeader *h = r->headers + i;
                PyObject *name, *value, *pair;

                /* as the environ: a name with '_' reaches the app only when header_map (or
                 * forwarder_headers) let it through the parser */
                if (!r->header_map_applied && memchr(h->name.p, '_', h->name.len))
                        continue;
                name = lower_bytes(&h->name);
                value = name ? bytes_of(&h->value) : NULL;
                pair = value ? PyTuple_New(2) : NULL;
                if (!pair) {
                        Py_XDECREF(name);
                        Py_XDECREF(value);
                        Py_DECREF(l);
                        return NULL;
                }
                PyTuple_SET_ITEM(pair, 0, name);
                PyTuple_SET_ITEM(pair, 1, value);
                if (PyList_Append(l, pair) < 0) {
                        Py_DECREF(pair);
                        Py_DECREF(l);
                        return NULL;
                }
                Py_DECREF(pair);
        }
        return l;
}

static PyObject *address(const char *host, const char *port) {
        /* New reference: (host, port), as uvicorn gives. */
        PyObject *h = PyUnicode_FromString(host), *p = h ? PyLong_FromLong(atol(port)) : NULL, *t;

        t = p ? PyTuple_New(2) : NULL;
        if (!t) {
                Py_XDECREF(h);
                Py_XDECREF(p);
                return NULL;
        }
        PyTuple_SET_ITEM(t, 0, h);
        PyTuple_SET_ITEM(t, 1, p);
        return t;
}

static PyObject *client_of(const ConnInfo *info) {
        /* New reference: None for a UNIX socket peer that a PROXY header did not name. */
        if (!info->remote_addr[0] || !info->remote_port[0])
                return Py_NewRef(Py_None);
        return address(info->remote_addr, info->remote_port);
}

static PyObject *server_of(const ConnInfo *info) {
        /* New reference: (path, None) for a UNIX socket, as the spec says. */
        if (server_last && strcmp(server_last_name, info->server_name) == 0 &&
            strcmp(server_last_port, info->server_port) == 0)
                return Py_NewRef(server_last);
        Py_CLEAR(server_last);
        if (info->is_unix)
                server_last = Py_BuildValue("(sO)", info->server_name, Py_None);
        else
                server_last = address(info->server_name, info->server_port);
        if (!server_last)
                return NULL;
        snprintf(server_last_name, sizeof(server_last_name), "%s", info->server_name);
        snprintf(server_last_port, sizeof(server_last_port), "%s", info->server_port);
        return Py_NewRef(server_last);
}

static PyObject *subprotocols_of(const Request *r) {
        /* New reference: every Sec-WebSocket-Protocol value, split on commas, in order. */
        PyObject *l = PyList_New(0);

        if (!l)
                return NULL;
        for (size_t i = 0; i < r->n_headers; i++) {
                const HttpHeader *h = r->headers + i;
                const char *p = h->value.p, *end = h->value.p + h->value.len;

                if (h->name.len != 22 || strncasecmp(h->name.p, "Sec-WebSocket-Protocol", 22) != 0)
                        continue;
                while (p < end) {
                        const char *comma = memchr(p, ',', (size_t) (end - p)), *e = comma ? comma : end;
                        const char *b = p;
                        PyObject *o;

                        while (b < e && (*b == ' ' || *b == '\t'))
                                b++;
                        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
                                e--;
                        if (e > b) {
                                o = PyUnicode_DecodeLatin1(b, e - b, NULL);
                                if (!o || PyList_Append(l, o) < 0) {
                                        Py_XDECREF(o);
                                        Py_DECREF(l);
                                        return NULL;
                                }
                                Py_DECREF(o);
                        }
                        p = comma ? comma + 1 : end;
                }
        }
        return l;
}

/* The http scope: a copy of the template, its values replaced (the values every request
 * shares stay as they are). */
static int http_scope(const Request *r, const ConnInfo *info, PyObject *scheme, PyObject *state,
                      PyObject **ret) {
        PyObject *scope, *version = NULL;
        const HttpHeader *sn;
        int k = -ENOMEM;

        if (!(r->http_major == 1 && r->http_minor == 1)) {
                version = r->http_major == 1 && r->http_minor == 0 ? Py_NewRef(version_10) :
                        PyUnicode_FromFormat("%d.%d", r->http_major, r->http_minor);
                if (!version)
                        return -ENOMEM;
        }
        scope = PyDict_Copy(state ? template_http_state : template_http);
        if (!scope) {
                Py_XDECREF(version);
                return -ENOMEM;
        }
        sn = r->underscore_kept ? headers_find(r->headers, r->n_headers, "SCRIPT_NAME", 11, true) : NULL;
        if ((version && set_item(scope, keys[KEY_HTTP_VERSION], TAKE_PTR(version)) < 0) ||
            set_item(scope, keys[KEY_ASGI], PyDict_Copy(asgi_template)) < 0 ||
            set_item(scope, keys[KEY_METHOD], method_of(&r->method)) < 0 ||
            (scheme != scheme_http && PyDict_SetItem(scope, keys[KEY_SCHEME], scheme) < 0) ||
            set_item(scope, keys[KEY_PATH], decode_path(&r->path)) < 0 ||
            set_item(scope, keys[KEY_RAW_PATH], bytes_of(&r->path)) < 0 ||
            set_item(scope, keys[KEY_QUERY_STRING], bytes_of(&r->query)) < 0 ||
            (sn && set_item(scope, keys[KEY_ROOT_PATH],
                            PyUnicode_DecodeLatin1(sn->value.p, (Py_ssize_t) sn->value.len, NULL)) < 0) ||
            set_item(scope, keys[KEY_HEADERS], headers_list(r)) < 0 ||
            set_item(scope, keys[KEY_CLIENT], client_of(info)) < 0 ||
            set_item(scope, keys[KEY_SERVER], server_of(info)) < 0 ||
            (state && set_item(scope, keys[KEY_STATE], PyDict_Copy(state)) < 0))
                goto finish;
        *ret = TAKE_PTR(scope);
        k = 0;
finish:
        Py_XDECREF(version);
        Py_XDECREF(scope);
        return k;
}

int scope_build(const Request *r, const ConnInfo *info, ScopeType type, PyObject *state, PyObject **ret) {
        PyObject *scope = NULL, *version, *scheme;
        const HttpHeader *sn;
        int https, k = -ENOMEM;

        https = environ_scheme_https(r, info);
        if (https < 0)
                return https;
        if (type == SCOPE_HTTP)
                return http_scope(r, info, https ? scheme_https : scheme_http, state, ret);
        scheme = https ? scheme_wss : scheme_ws;
        if (r->http_major == 1 && r->http_minor == 1)
                version = Py_NewRef(version_11);
        else if (r->http_major == 1 && r->http_minor == 0)
                version = Py_NewRef(version_10);
        else
                version = PyUnicode_FromFormat("%d.%d", r->http_major, r->http_minor);
        if (!version)
                return -ENOMEM;

        /* room for every key at once: no resize while it fills */
        scope = _PyDict_NewPresized(16);
        if (!scope) {
                Py_DECREF(version);
                return -ENOMEM;
        }
        /* a SCRIPT_NAME header a trusted forwarder may send (forwarder_headers) names the
         * mount, as it does for WSGI */
        sn = r->underscore_kept ? headers_find(r->headers, r->n_headers, "SCRIPT_NAME", 11, true) : NULL;
        if (set_item(scope, keys[KEY_HTTP_VERSION], version) < 0 ||
            PyDict_SetItem(scope, keys[KEY_TYPE], type == SCOPE_WEBSOCKET ? type_websocket : type_http) < 0 ||
            set_item(scope, keys[KEY_ASGI], PyDict_Copy(asgi_template)) < 0 ||
            (type == SCOPE_HTTP &&
             set_item(scope, keys[KEY_METHOD], method_of(&r->method)) < 0) ||
            PyDict_SetItem(scope, keys[KEY_SCHEME], scheme) < 0 ||
            set_item(scope, keys[KEY_PATH], decode_path(&r->path)) < 0 ||
            set_item(scope, keys[KEY_RAW_PATH], bytes_of(&r->path)) < 0 ||
            set_item(scope, keys[KEY_QUERY_STRING], bytes_of(&r->query)) < 0 ||
            (sn ? set_item(scope, keys[KEY_ROOT_PATH],
                           PyUnicode_DecodeLatin1(sn->value.p, (Py_ssize_t) sn->value.len, NULL))
                : PyDict_SetItem(scope, keys[KEY_ROOT_PATH], root_path)) < 0 ||
            set_item(scope, keys[KEY_HEADERS], headers_list(r)) < 0 ||
            set_item(scope, keys[KEY_CLIENT], client_of(info)) < 0 ||
            set_item(scope, keys[KEY_SERVER], server_of(info)) < 0)
                goto finish;
        if (type == SCOPE_WEBSOCKET &&
            (set_item(scope, keys[KEY_SUBPROTOCOLS], subprotocols_of(r)) < 0 ||
             set_item(scope, keys[KEY_EXTENSIONS], Py_BuildValue("{s:{}}", "websocket.http.response")) < 0))
                goto finish;
        if (state && set_item(scope, keys[KEY_STATE], PyDict_Copy(state)) < 0)
                goto finish;
        *ret = TAKE_PTR(scope);
        k = 0;
finish:
        Py_XDECREF(scope);
        return k;
}
