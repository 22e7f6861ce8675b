/* Tests for src/scope.c: every key of the ASGI http and websocket scopes for hand-built
 * requests. Check forks every test, so each one initialises Python and the environment
 * freely. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gcorn/environ.h"
#include "gcorn/macro.h"
#include "gcorn/python.h"
#include "gcorn/scope.h"

#define SL(lit) ((Slice) { lit, sizeof(lit) - 1 })
#define HDR(n, v) ((HttpHeader) { SL(n), SL(v) })

static PyObject *scope;

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
        Py_CLEAR(scope);
        scope_done();
        environ_done();
        python_gil_release();
}

static void init(const Settings *s) {
        ck_assert_int_eq(environ_init(s), 0);
        ck_assert_int_eq(scope_init(s), 0);
}

static Request make_request(const char *method, const char *target, HttpHeader *headers, size_t n) {
        const char *q = strchr(target, '?');

        return (Request) {
                .method = { method, strlen(method) },
                .target = { target, strlen(target) },
                .path = { target, q ? (size_t) (q - target) : strlen(target) },
                .query = { q ? q + 1 : "", q ? strlen(q + 1) : 0 },
                .http_major = 1,
                .http_minor = 1,
                .headers = headers,
                .n_headers = n,
                .content_length = -1,
                .keep_alive = true,
                .header_map_applied = true,
        };
}

static void build(const Request *r, const ConnInfo *info, ScopeType type, PyObject *state) {
        Py_CLEAR(scope);
        ck_assert_int_eq(scope_build(r, info, type, state, &scope), 0);
        ck_assert(PyDict_CheckExact(scope));
}

/* Borrowed; fails the test when absent. */
static PyObject *get(const char *key) {
        PyObject *v = PyDict_GetItemString(scope, key);

        ck_assert_msg(v != NULL, "%s missing", key);
        return v;
}

/* Compares the repr(), which checks the type (str or bytes) and every value at once. */
static void assert_repr(const char *key, const char *want) {
        PyObject *r = PyObject_Repr(get(key));

        ck_assert_ptr_nonnull(r);
        ck_assert_msg(strcmp(PyUnicode_AsUTF8(r), want) == 0, "%s: %s != %s", key, PyUnicode_AsUTF8(r), want);
        Py_DECREF(r);
}

START_TEST(test_http_keys) {
        HttpHeader h[] = { HDR("Host", "example.com"), HDR("X-Custom", "A b"), HDR("x-custom", "c") };
        Request r = make_request("POST", "/a/b?x=1&y=%20", h, ELEMENTSOF(h));

        init(NULL);
        build(&r, &tcp_info, SCOPE_HTTP, NULL);
        assert_repr("type", "'http'");
        assert_repr("asgi", "{'version': '3.0', 'spec_version': '2.4'}");
        assert_repr("http_version", "'1.1'");
        assert_repr("method", "'POST'");
        assert_repr("scheme", "'http'");
        assert_repr("path", "'/a/b'");
        assert_repr("raw_path", "b'/a/b'");
        assert_repr("query_string", "b'x=1&y=%20'");
        assert_repr("root_path", "''");
        /* raw byte pairs, names lower-cased, repeats kept apart, in wire order */
        assert_repr("headers", "[(b'host', b'example.com'), (b'x-custom', b'A b'), (b'x-custom', b'c')]");
        assert_repr("client", "('10.1.2.3', 54321)");
        assert_repr("server", "('127.0.0.1', 8000)");
        ck_assert_ptr_null(PyDict_GetItemString(scope, "state"));
        ck_assert_ptr_null(PyDict_GetItemString(scope, "subprotocols"));
        ck_assert_int_eq(PyDict_GET_SIZE(scope), 12);
}
END_TEST

START_TEST(test_path_decoded_whole) {
        Request r = make_request("GET", "/api/caf%C3%A9/a%2Fb%zz", NULL, 0);
        Settings s = { .root_path = (char *) "/api" };

        init(&s);
        build(&r, &tcp_info, SCOPE_HTTP, NULL);
        /* decoded as UTF-8, never stripped of root_path; raw_path is as received */
        assert_repr("path", "'/api/café/a/b%zz'");
        assert_repr("raw_path", "b'/api/caf%C3%A9/a%2Fb%zz'");
        assert_repr("root_path", "'/api'");
        assert_repr("query_string", "b''");

        /* invalid UTF-8 becomes U+FFFD, as urllib.parse.unquote() makes it */
        r = make_request("GET", "/x%FFy", NULL, 0);
        build(&r, &tcp_info, SCOPE_HTTP, NULL);
        assert_repr("path", "'/x\xef\xbf\xbd" "y'");
}
END_TEST

START_TEST(test_root_path_from_script_name) {
        Request r = make_request("GET", "/mount/x", NULL, 0);

        setenv("SCRIPT_NAME", "/mount", 1);
        init(NULL);
        build(&r, &tcp_info, SCOPE_HTTP, NULL);
        assert_repr("root_path", "'/mount'");
        assert_repr("path", "'/mount/x'");
        unsetenv("SCRIPT_NAME");
}
END_TEST

START_TEST(test_http_10_and_methods) {
        Request r = make_request("PATCH", "/", NULL, 0);

        init(NULL);
        r.http_minor = 0;
        build(&r, &tcp_info, SCOPE_HTTP, NULL);
        assert_repr("http_version", "'1.0'");
        assert_repr("method", "'PATCH'");
}
END_TEST

START_TEST(test_scheme_headers) {
        char *pairs[] = { (char *) "X-FORWARDED-PROTO", (char *) "https", NULL };
        char *trusted[] = { (char *) "10.1.2.3", NULL };
        Settings s = { .secure_scheme_headers = pairs, .forwarded_allow_ips = trusted };
        HttpHeader h[] = { HDR("X-Forwarded-Proto", "https") };
        HttpHeader bad[] = { HDR("X-Forwarded-Proto", "https"), HDR("X-Forwarded-Proto", "http") };
        ConnInfo other = tcp_info;
        Request r = make_request("GET", "/", h, ELEMENTSOF(h));

        init(&s);
        build(&r, &tcp_info, SCOPE_HTTP, NULL);
        assert_repr("scheme", "'https'");
        build(&r, &tcp_info, SCOPE_WEBSOCKET, NULL);
        assert_repr("scheme", "'wss'");

        /* an untrusted peer says nothing */
        strcpy(other.remote_addr, "10.9.9.9");
        build(&r, &other, SCOPE_HTTP, NULL);
        assert_repr("scheme", "'http'");

        r = make_request("GET", "/", bad, ELEMENTSOF(bad));
        Py_CLEAR(scope);
        ck_assert_int_eq(scope_build(&r, &tcp_info, SCOPE_HTTP, NULL, &scope), -EPROTO);
        ck_assert_ptr_null(scope);
        ck_assert(!PyErr_Occurred());
}
END_TEST

START_TEST(test_underscore_headers_dropped) {
        HttpHeader h[] = { HDR("X_Auth", "evil"), HDR("X-Auth", "good") };
        Request r = make_request("GET", "/", h, ELEMENTSOF(h));

        init(NULL);
        r.header_map_applied = false;
        build(&r, &tcp_info, SCOPE_HTTP, NULL);
        assert_repr("headers", "[(b'x-auth', b'good')]");
}
END_TEST

START_TEST(test_state_copied) {
        Request r = make_request("GET", "/", NULL, 0);
        PyObject *state = Py_BuildValue("{s:i}", "db", 1), *got;

        init(NULL);
        build(&r, &tcp_info, SCOPE_HTTP, state);
        got = get("state");
        ck_assert(PyDict_CheckExact(got));
        ck_assert_ptr_ne(got, state);
        assert_repr("state", "{'db': 1}");
        /* a request's writes stay in its own copy */
        ck_assert_int_eq(PyDict_SetItemString(got, "x", Py_None), 0);
        ck_assert_int_eq(PyDict_GET_SIZE(state), 1);
        Py_DECREF(state);
}
END_TEST

START_TEST(test_websocket_keys) {
        HttpHeader h[] = { HDR("Host", "h"), HDR("Sec-WebSocket-Protocol", "chat, superchat"),
                           HDR("sec-websocket-protocol", " v2 ,,") };
        Request r = make_request("GET", "/ws?room=1", h, ELEMENTSOF(h));

        init(NULL);
        build(&r, &tcp_info, SCOPE_WEBSOCKET, NULL);
        assert_repr("type", "'websocket'");
        assert_repr("scheme", "'ws'");
        assert_repr("path", "'/ws'");
        assert_repr("query_string", "b'room=1'");
        assert_repr("subprotocols", "['chat', 'superchat', 'v2']");
        assert_repr("extensions", "{'websocket.http.response': {}}");
        ck_assert_ptr_null(PyDict_GetItemString(scope, "method"));
}
END_TEST

START_TEST(test_unix_socket) {
        ConnInfo unix_info = { .server_name = "/run/app.sock", .is_unix = true };
        Request r = make_request("GET", "/", NULL, 0);

        init(NULL);
        build(&r, &unix_info, SCOPE_HTTP, NULL);
        assert_repr("server", "('/run/app.sock', None)");
        assert_repr("client", "None");
}
END_TEST

static Suite *scope_suite(void) {
        Suite *suite = suite_create("scope");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, py_setup, py_teardown);
        tcase_add_test(tc, test_http_keys);
        tcase_add_test(tc, test_path_decoded_whole);
        tcase_add_test(tc, test_root_path_from_script_name);
        tcase_add_test(tc, test_http_10_and_methods);
        tcase_add_test(tc, test_scheme_headers);
        tcase_add_test(tc, test_underscore_headers_dropped);
        tcase_add_test(tc, test_state_copied);
        tcase_add_test(tc, test_websocket_keys);
        tcase_add_test(tc, test_unix_socket);
        suite_add_tcase(suite, tc);
        return suite;
}

int main(void) {
        SRunner *runner = srunner_create(scope_suite());
        int failed;

        unsetenv("SCRIPT_NAME");
        srunner_run_all(runner, CK_NORMAL);
        failed = srunner_ntests_failed(runner);
        srunner_free(runner);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
