/* Tests for src/environ.c (and the FileWrapper type of src/filewrapper.c): every environ key
 * and value for hand-built requests. Check forks every test, so each one initialises Python
 * and sets SCRIPT_NAME freely. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcorn/environ.h"
#include "gcorn/filewrapper.h"
#include "gcorn/gsocket.h"
#include "gcorn/macro.h"
#include "gcorn/python.h"

#define SL(lit) ((Slice) { lit, sizeof(lit) - 1 })
#define HDR(n, v) ((HttpHeader) { SL(n), SL(v) })

static PyObject *env;

static const ConnInfo tcp_info = {
        .remote_addr = "10.1.2.3",
        .remote_port = "54321",
        .server_name = "127.0.0.1",
        .server_port = "8000",
};

static void py_setup(void) {
        ck_assert_int_eq(python_init(), 0);
        python_gil_acquire();
}

static void py_teardown(void) {
        Py_CLEAR(env);
        environ_done();
        python_gil_release();
}

static Request make_request(const char *target, HttpHeader *headers, size_t n) {
        const char *q = strchr(target, '?');
        Request r = {
                .method = SL("GET"),
                .target = { target, strlen(target) },
                .path = { target, q ? (size_t) (q - target) : strlen(target) },
                .query = { q ? q + 1 : "", q ? strlen(q + 1) : 0 },
                .http_major = 1,
                .http_minor = 1,
                .headers = headers,
                .n_headers = n,
                .content_length = -1,
                .keep_alive = true,
        };
        return r;
}

static void build(const Request *r, const ConnInfo *info, PyObject *input) {
        Py_CLEAR(env);
        ck_assert_int_eq(environ_build(r, info, input, &env), 0);
        ck_assert(PyDict_CheckExact(env));
}

/* Borrowed; fails the test when absent. */
static PyObject *get(const char *key) {
        PyObject *v = PyDict_GetItemString(env, key);

        ck_assert_msg(v != NULL, "%s missing", key);
        return v;
}

static void assert_str(const char *key, const char *want) {
        PyObject *v = get(key);

        ck_assert_msg(PyUnicode_CheckExact(v), "%s is not a str", key);
        ck_assert_msg(strcmp(PyUnicode_AsUTF8(v), want) == 0, "%s: '%s' != '%s'", key, PyUnicode_AsUTF8(v), want);
}

/* Compares code points, so latin-1 decoding is checked exactly. */
static void assert_latin1(const char *key, const char *want, size_t len) {
        PyObject *v = get(key);

        ck_assert_int_eq(PyUnicode_GET_LENGTH(v), (Py_ssize_t) len);
        for (size_t i = 0; i < len; i++)
                ck_assert_uint_eq(PyUnicode_ReadChar(v, (Py_ssize_t) i), (unsigned char) want[i]);
}

static void assert_absent(const char *key) {
        ck_assert_msg(PyDict_GetItemString(env, key) == NULL, "%s present", key);
}

START_TEST(test_fixed_keys) {
        HttpHeader h[] = { HDR("Host", "example.com"), HDR("User-Agent", "ua/1") };
        Request r = make_request("/p/q?a=1&b=%20", h, ELEMENTSOF(h));
        PyObject *input = PyList_New(0), *v, *sys_stderr;

        unsetenv("SCRIPT_NAME");
        ck_assert_int_eq(environ_init(NULL), 0);
        build(&r, &tcp_info, input);

        assert_str("REQUEST_METHOD", "GET");
        assert_str("PATH_INFO", "/p/q");
        assert_str("QUERY_STRING", "a=1&b=%20");
        assert_str("RAW_URI", "/p/q?a=1&b=%20");
        assert_str("SERVER_PROTOCOL", "HTTP/1.1");
        assert_str("SERVER_NAME", "127.0.0.1");
        assert_str("SERVER_PORT", "8000");
        assert_str("REMOTE_ADDR", "10.1.2.3");
        assert_str("REMOTE_PORT", "54321");
        assert_str("SCRIPT_NAME", "");
        assert_str("SERVER_SOFTWARE", "gcorn/" GCORN_VERSION);
        assert_str("wsgi.url_scheme", "http");
        assert_str("HTTP_HOST", "example.com");
        assert_str("HTTP_USER_AGENT", "ua/1");
        assert_absent("CONTENT_TYPE");
        assert_absent("CONTENT_LENGTH");

        v = get("wsgi.version");
        ck_assert(PyTuple_CheckExact(v) && PyTuple_GET_SIZE(v) == 2);
        ck_assert_int_eq(PyLong_AsLong(PyTuple_GET_ITEM(v, 0)), 1);
        ck_assert_int_eq(PyLong_AsLong(PyTuple_GET_ITEM(v, 1)), 0);
        ck_assert_ptr_eq(get("wsgi.multithread"), Py_False);
        ck_assert_ptr_eq(get("wsgi.multiprocess"), Py_False);
        ck_assert_ptr_eq(get("wsgi.run_once"), Py_False);
        ck_assert_ptr_eq(get("wsgi.input_terminated"), Py_True);
        ck_assert_ptr_eq(get("wsgi.input"), input);
        ck_assert_ptr_eq(get("wsgi.file_wrapper"), filewrapper_type());
        sys_stderr = PySys_GetObject("stderr");
        ck_assert_ptr_nonnull(sys_stderr);
        ck_assert_ptr_eq(get("wsgi.errors"), sys_stderr);
        /* Gunicorn's environ has the connection too, as a socket.socket */
        ck_assert_ptr_eq(get("gunicorn.socket"), gsocket_object());
        ck_assert_int_eq(PyDict_Size(env), 23);

        /* a second request gets its own dict; the template is untouched */
        {
                PyObject *first = Py_NewRef(env);

                build(&r, &tcp_info, input);
                ck_assert_ptr_ne(first, env);
                Py_DECREF(first);
        }
        Py_DECREF(input);
}
END_TEST

START_TEST(test_keys_interned) {
        Request r = make_request("/", NULL, 0);
        PyObject *key, *value, *lit;
        Py_ssize_t pos = 0;
        bool found = false;

        ck_assert_int_eq(environ_init(NULL), 0);
        build(&r, &tcp_info, NULL);
        lit = PyUnicode_InternFromString("PATH_INFO");
        while (PyDict_Next(env, &pos, &key, &value))
                if (PyUnicode_Compare(key, lit) == 0) {
                        ck_assert_ptr_eq(key, lit);
                        found = true;
                }
        ck_assert(found);
        Py_DECREF(lit);
        /* No input given: None, never a dangling object. */
        ck_assert_ptr_eq(get("wsgi.input"), Py_None);
}
END_TEST

START_TEST(test_multiprocess_from_workers) {
        Settings s = { .workers = 2 };
        Request r = make_request("/", NULL, 0);

        ck_assert_int_eq(environ_init(&s), 0);
        build(&r, &tcp_info, NULL);
        ck_assert_ptr_eq(get("wsgi.multiprocess"), Py_True);
}
END_TEST

START_TEST(test_percent_decoding) {
        Request r;

        ck_assert_int_eq(environ_init(NULL), 0);

        r = make_request("/a%20b%2Fc", NULL, 0);
        build(&r, &tcp_info, NULL);
        assert_str("PATH_INFO", "/a b/c");
        assert_str("RAW_URI", "/a%20b%2Fc");

        r = make_request("/bad%zz/x%4/%", NULL, 0);
        build(&r, &tcp_info, NULL);
        assert_str("PATH_INFO", "/bad%zz/x%4/%");

        /* bytes become code points one to one (PEP 3333 latin-1), UTF-8 is not decoded */
        r = make_request("/caf%C3%A9/%e9%FF", NULL, 0);
        build(&r, &tcp_info, NULL);
        assert_latin1("PATH_INFO", "/caf\xc3\xa9/\xe9\xff", 9);

        /* a query string stays encoded */
        r = make_request("/x?q=%41", NULL, 0);
        build(&r, &tcp_info, NULL);
        assert_str("PATH_INFO", "/x");
        assert_str("QUERY_STRING", "q=%41");
}
END_TEST

START_TEST(test_unquote) {
        char out[64];
        size_t n;

        n = environ_unquote("%41%42c%2f", 10, out);
        ck_assert(n == 4 && memcmp(out, "ABc/", 4) == 0);
        n = environ_unquote("%", 1, out);
        ck_assert(n == 1 && out[0] == '%');
        n = environ_unquote("%4", 2, out);
        ck_assert(n == 2 && memcmp(out, "%4", 2) == 0);
        n = environ_unquote("%g1%41", 6, out);
        ck_assert(n == 4 && memcmp(out, "%g1A", 4) == 0);
        n = environ_unquote("%00", 3, out);
        ck_assert(n == 1 && out[0] == 0);
        n = environ_unquote("%%41", 4, out);
        ck_assert(n == 2 && memcmp(out, "%A", 2) == 0);
}
END_TEST

START_TEST(test_headers) {
        HttpHeader h[] = {
                HDR("X-Forwarded-For", "1.1.1.1"),
                HDR("x-custom-thing", "v"),
                HDR("X_Custom_Thing", "smuggled"),
                HDR("X-Forwarded_For", "2.2.2.2"),
                HDR("Accept", "text/html"),
                HDR("accept", "*/*"),
                HDR("X-Forwarded-For", "3.3.3.3"),
                HDR("Content-Type", "text/plain"),
                HDR("Content-Length", "12"),
                HDR("X-Latin", "caf\xe9"),
                HDR("X-Empty", ""),
                HDR("X-One", "a"),
                HDR("X-One", "a"),
                HDR("Accept-Language", "da"),
                HDR("accept-language", "da"),
        };
        Request r = make_request("/", h, ELEMENTSOF(h));

        ck_assert_int_eq(environ_init(NULL), 0);
        build(&r, &tcp_info, NULL);

        /* repeated headers join with ",", as Gunicorn does */
        assert_str("HTTP_X_FORWARDED_FOR", "1.1.1.1,3.3.3.3");
        assert_str("HTTP_ACCEPT", "text/html,*/*");
        /* names with '_' never reach the app, even when they would join another */
        assert_str("HTTP_X_CUSTOM_THING", "v");
        assert_str("CONTENT_TYPE", "text/plain");
        assert_str("CONTENT_LENGTH", "12");
        assert_absent("HTTP_CONTENT_TYPE");
        assert_absent("HTTP_CONTENT_LENGTH");
        assert_latin1("HTTP_X_LATIN", "caf\xe9", 4);
        assert_str("HTTP_X_EMPTY", "");
        /* equal values are often one shared str object: they still join */
        assert_str("HTTP_X_ONE", "a,a");
        assert_str("HTTP_ACCEPT_LANGUAGE", "da,da");

        /* the cached value of a known header is not carried into the next request */
        {
                HttpHeader h2[] = { HDR("Accept-Language", "en") };

                r = make_request("/", h2, ELEMENTSOF(h2));
                build(&r, &tcp_info, NULL);
                assert_str("HTTP_ACCEPT_LANGUAGE", "en");
                assert_absent("HTTP_ACCEPT");
        }
}
END_TEST

/* Per-request keys come from placeholders in the template: none may survive into an environ,
 * and optional keys stay absent. */
static void assert_no_none(void) {
        PyObject *k, *v;
        Py_ssize_t pos = 0;

        while (PyDict_Next(env, &pos, &k, &v))
                ck_assert_msg(v != Py_None, "%s is None", PyUnicode_AsUTF8(k));
}

START_TEST(test_no_placeholders) {
        ConnInfo unix_info = { .server_name = "/run/app.sock", .is_unix = true };
        HttpHeader many[24];
        char names[24][16];
        PyObject *input = PyList_New(0);
        Request r = make_request("/", NULL, 0);

        ck_assert_int_eq(environ_init(NULL), 0);
        build(&r, &tcp_info, input);
        assert_no_none();
        assert_absent("CONTENT_TYPE");
        assert_absent("CONTENT_LENGTH");
        assert_absent("HTTP_HOST");
        ck_assert_int_eq(PyDict_Size(env), 21);

        build(&r, &unix_info, input);
        assert_no_none();
        assert_absent("REMOTE_PORT");
        ck_assert_int_eq(PyDict_Size(env), 20);

        /* more headers than the template has room for */
        for (size_t i = 0; i < ELEMENTSOF(many); i++) {
                snprintf(names[i], sizeof(names[i]), "X-H%zu", i);
                many[i] = (HttpHeader) { { names[i], strlen(names[i]) }, SL("v") };
        }
        r = make_request("/", many, ELEMENTSOF(many));
        build(&r, &tcp_info, input);
        assert_no_none();
        assert_str("HTTP_X_H0", "v");
        assert_str("HTTP_X_H23", "v");
        ck_assert_int_eq(PyDict_Size(env), 21 + 24);
        Py_DECREF(input);
}
END_TEST

START_TEST(test_method_and_version) {
        Request r = make_request("/", NULL, 0);

        ck_assert_int_eq(environ_init(NULL), 0);
        r.method = SL("PROPFIND");
        r.http_minor = 0;
        build(&r, &tcp_info, NULL);
        assert_str("REQUEST_METHOD", "PROPFIND");
        assert_str("SERVER_PROTOCOL", "HTTP/1.0");

        r.method = SL("POST");
        r.http_minor = 1;
        build(&r, &tcp_info, NULL);
        assert_str("REQUEST_METHOD", "POST");
        assert_str("SERVER_PROTOCOL", "HTTP/1.1");
}
END_TEST

START_TEST(test_script_name) {
        Request r;

        setenv("SCRIPT_NAME", "/app", 1);
        ck_assert_int_eq(environ_init(NULL), 0);
        ck_assert_str_eq(environ_script_name(), "/app");

        r = make_request("/app/x%20y?z=1", NULL, 0);
        build(&r, &tcp_info, NULL);
        assert_str("SCRIPT_NAME", "/app");
        assert_str("PATH_INFO", "/x y");
        assert_str("RAW_URI", "/app/x%20y?z=1");

        r = make_request("/app", NULL, 0);
        build(&r, &tcp_info, NULL);
        assert_str("PATH_INFO", "");

        /* Gunicorn compares the raw path, as str.startswith(): "/application" matches too */
        r = make_request("/application", NULL, 0);
        build(&r, &tcp_info, NULL);
        assert_str("PATH_INFO", "lication");

        r = make_request("/other", NULL, 0);
        Py_CLEAR(env);
        ck_assert_int_eq(environ_build(&r, &tcp_info, NULL, &env), -EXDEV);
        ck_assert_ptr_null(env);
        ck_assert(!PyErr_Occurred());

        r = make_request("/ap", NULL, 0);
        ck_assert_int_eq(environ_build(&r, &tcp_info, NULL, &env), -EXDEV);
}
END_TEST

START_TEST(test_unix_socket) {
        ConnInfo info = { .server_name = "/run/app.sock", .is_unix = true };
        HttpHeader with_port[] = { HDR("Host", "example.com:8080") };
        HttpHeader without_port[] = { HDR("Host", "example.com") };
        Request r;

        ck_assert_int_eq(environ_init(NULL), 0);

        r = make_request("/", with_port, 1);
        build(&r, &info, NULL);
        assert_str("SERVER_NAME", "example.com");
        assert_str("SERVER_PORT", "8080");
        assert_str("REMOTE_ADDR", "");
        assert_absent("REMOTE_PORT");

        r = make_request("/", without_port, 1);
        build(&r, &info, NULL);
        assert_str("SERVER_NAME", "example.com");
        assert_str("SERVER_PORT", "80");

        r = make_request("/", NULL, 0);
        build(&r, &info, NULL);
        assert_str("SERVER_NAME", "/run/app.sock");
        assert_str("SERVER_PORT", "");

        /* TCP ignores Host for SERVER_NAME: the bound address, as Gunicorn */
        r = make_request("/", with_port, 1);
        build(&r, &tcp_info, NULL);
        assert_str("SERVER_NAME", "127.0.0.1");
        assert_str("SERVER_PORT", "8000");
        assert_str("HTTP_HOST", "example.com:8080");
}
END_TEST

START_TEST(test_address_cache) {
        ConnInfo other = tcp_info;
        Request r = make_request("/", NULL, 0);

        ck_assert_int_eq(environ_init(NULL), 0);
        build(&r, &tcp_info, NULL);
        assert_str("REMOTE_ADDR", "10.1.2.3");
        strcpy(other.remote_addr, "10.1.2.30");
        strcpy(other.remote_port, "1");
        build(&r, &other, NULL);
        assert_str("REMOTE_ADDR", "10.1.2.30");
        assert_str("REMOTE_PORT", "1");
        build(&r, &tcp_info, NULL);
        assert_str("REMOTE_ADDR", "10.1.2.3");
        assert_str("REMOTE_PORT", "54321");
}
END_TEST

START_TEST(test_file_wrapper) {
        PyObject *bio = NULL, *w = NULL, *it = NULL, *item, *closed;
        PyObject *io = PyImport_ImportModule("io");

        ck_assert_int_eq(environ_init(NULL), 0);
        ck_assert_ptr_nonnull(io);
        bio = PyObject_CallMethod(io, "BytesIO", "y", "abcdefgh");
        ck_assert_ptr_nonnull(bio);
        w = PyObject_CallFunction(filewrapper_type(), "Oi", bio, 3);
        ck_assert_ptr_nonnull(w);
        ck_assert(filewrapper_check(w));
        ck_assert_ptr_eq(filewrapper_filelike(w), bio);
        ck_assert_int_eq(filewrapper_blksize(w), 3);

        it = PyObject_GetIter(w);
        ck_assert_ptr_nonnull(it);
        item = PyIter_Next(it);
        ck_assert(item && PyBytes_GET_SIZE(item) == 3 && memcmp(PyBytes_AS_STRING(item), "abc", 3) == 0);
        Py_DECREF(item);
        item = PyIter_Next(it);
        ck_assert(item && memcmp(PyBytes_AS_STRING(item), "def", 3) == 0);
        Py_DECREF(item);
        item = PyIter_Next(it);
        ck_assert(item && PyBytes_GET_SIZE(item) == 2);
        Py_DECREF(item);
        ck_assert_ptr_null(PyIter_Next(it));
        ck_assert(!PyErr_Occurred());

        Py_XDECREF(PyObject_CallMethod(w, "close", NULL));
        closed = PyObject_GetAttrString(bio, "closed");
        ck_assert_ptr_eq(closed, Py_True);
        Py_DECREF(closed);

        /* no subclassing: wsgi.c trusts the exact type */
        ck_assert(!(((PyTypeObject *) filewrapper_type())->tp_flags & Py_TPFLAGS_BASETYPE));
        Py_DECREF(it);
        Py_DECREF(w);
        Py_DECREF(bio);
        Py_DECREF(io);
}
END_TEST

/* The template remembers the last target, addresses and wsgi.errors: what one request
 * leaves there must never show in the next one's environ. */
START_TEST(test_template_follows_requests) {
        static const struct {
                const char *target, *method;
                int minor;
                const char *path, *query;
        } steps[] = {
                { "/a?x=1", "GET", 1, "/a", "x=1" },
                { "/b", "POST", 0, "/b", "" },
                { "/c%20d", "GET", 1, "/c d", "" },
                { "/c%20d?", "DELETE", 1, "/c d", "" },
                { "/b?y", "GET", 0, "/b", "y" },
                { "/a?x=1", "GET", 1, "/a", "x=1" },
        };
        PyObject *sys_stderr, *other;
        Request root = make_request("/", NULL, 0);

        ck_assert_int_eq(environ_init(NULL), 0);
        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                Request r = make_request(steps[i].target, NULL, 0);

                r.method = (Slice) { steps[i].method, strlen(steps[i].method) };
                r.http_minor = steps[i].minor;
                build(&r, &tcp_info, NULL);
                assert_str("RAW_URI", steps[i].target);
                assert_str("PATH_INFO", steps[i].path);
                assert_str("QUERY_STRING", steps[i].query);
                assert_str("REQUEST_METHOD", steps[i].method);
                assert_str("SERVER_PROTOCOL", steps[i].minor ? "HTTP/1.1" : "HTTP/1.0");
        }

        sys_stderr = Py_NewRef(PySys_GetObject("stderr"));
        other = PyList_New(0);
        ck_assert_int_eq(PySys_SetObject("stderr", other), 0);
        build(&root, &tcp_info, NULL);
        ck_assert_ptr_eq(get("wsgi.errors"), other);
        ck_assert_int_eq(PySys_SetObject("stderr", sys_stderr), 0);
        build(&root, &tcp_info, NULL);
        ck_assert_ptr_eq(get("wsgi.errors"), sys_stderr);
        Py_DECREF(other);
        Py_DECREF(sys_stderr);
}
END_TEST

/* What the parser let through under header_map reaches the app; a trusted forwarder's
 * SCRIPT_NAME header replaces the variable, as in Gunicorn's wsgi.create(). */
START_TEST(test_header_map_applied) {
        HttpHeader h[] = {
                HDR("X_Custom_Thing", "kept"),
                HDR("x-custom-thing", "v"),
                HDR("Script_Name", "/app"),
        };
        Request r = make_request("/app/x%20y", h, ELEMENTSOF(h));

        unsetenv("SCRIPT_NAME");
        ck_assert_int_eq(environ_init(NULL), 0);
        r.header_map_applied = r.underscore_kept = true;
        build(&r, &tcp_info, NULL);
        assert_str("HTTP_X_CUSTOM_THING", "kept,v");
        assert_str("HTTP_SCRIPT_NAME", "/app");
        assert_str("SCRIPT_NAME", "/app");
        assert_str("PATH_INFO", "/x y");

        /* the next request without one is back to the variable ("") */
        r = make_request("/app/x", NULL, 0);
        build(&r, &tcp_info, NULL);
        assert_str("SCRIPT_NAME", "");
        assert_str("PATH_INFO", "/app/x");

        /* a path outside the forwarded SCRIPT_NAME is Gunicorn's ConfigurationProblem */
        r = make_request("/other", h, ELEMENTSOF(h));
        r.header_map_applied = r.underscore_kept = true;
        Py_CLEAR(env);
        ck_assert_int_eq(environ_build(&r, &tcp_info, NULL, &env), -EXDEV);
        ck_assert_ptr_null(env);
}
END_TEST

static void set_str(const char *key, const char *value) {
        PyObject *o = PyUnicode_FromString(value);

        ck_assert_ptr_nonnull(o);
        ck_assert_int_eq(PyDict_SetItemString(env, key, o), 0);
        Py_DECREF(o);
}

/* The access log's %({var}e)s lookups: keys in any case, the last match winning, str()
 * of other values, UTF-8 text. */
START_TEST(test_log_values) {
        AccessLog *l = NULL;
        EnvironLogValues v = {};
        Request r = make_request("/x", NULL, 0);

        ck_assert_int_eq(environ_init(NULL), 0);
        build(&r, &tcp_info, NULL);
        set_str("remote_user", "caf\u00e9");
        set_str("Remote_User", "last");
        ck_assert_int_eq(accesslog_compile("%({REMOTE_USER}e)s %({wsgi.version}e)s %({PATH}e)s %({query_string}e)s "
                                           "%({REMOTE_ADDR}e)s", &l), 0);
        ck_assert_int_eq(environ_log_values(env, l, &v), 0);
        ck_assert_uint_eq(v.values[0].len, 4);
        ck_assert(memcmp(v.values[0].p, "last", 4) == 0);
        ck_assert_uint_eq(v.values[1].len, 6);
        ck_assert(memcmp(v.values[1].p, "(1, 0)", 6) == 0);
        /* the process environment is not the WSGI environ */
        ck_assert_ptr_null(v.values[2].p);
        ck_assert_ptr_nonnull(v.values[3].p);
        ck_assert_uint_eq(v.values[3].len, 0);
        ck_assert_uint_eq(v.values[4].len, 8);
        ck_assert(memcmp(v.values[4].p, "10.1.2.3", 8) == 0);
        ck_assert(!PyErr_Occurred());
        ck_assert_int_eq(PyDict_DelItemString(env, "Remote_User"), 0);
        ck_assert_int_eq(environ_log_values(env, l, &v), 0);
        ck_assert_uint_eq(v.values[0].len, 5);
        ck_assert(memcmp(v.values[0].p, "caf\xc3\xa9", 5) == 0);
        environ_log_values_free(&v);
        accesslog_free(l);
}
END_TEST

static Suite *environ_suite(void) {
        Suite *suite = suite_create("environ");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, py_setup, py_teardown);
        tcase_add_test(tc, test_fixed_keys);
        tcase_add_test(tc, test_keys_interned);
        tcase_add_test(tc, test_multiprocess_from_workers);
        tcase_add_test(tc, test_percent_decoding);
        tcase_add_test(tc, test_unquote);
        tcase_add_test(tc, test_headers);
        tcase_add_test(tc, test_no_placeholders);
        tcase_add_test(tc, test_template_follows_requests);
        tcase_add_test(tc, test_method_and_version);
        tcase_add_test(tc, test_script_name);
        tcase_add_test(tc, test_unix_socket);
        tcase_add_test(tc, test_address_cache);
        tcase_add_test(tc, test_file_wrapper);
        tcase_add_test(tc, test_header_map_applied);
        tcase_add_test(tc, test_log_values);
        suite_add_tcase(suite, tc);
        return suite;
}

int main(void) {
        SRunner *runner = srunner_create(environ_suite());
        int failed;

        unsetenv("SCRIPT_NAME");
        srunner_run_all(runner, CK_NORMAL);
        failed = srunner_ntests_failed(runner);
        srunner_free(runner);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
