/* Tests for src/accesslog.c: Gunicorn's access_log_format atoms, compiled and rendered. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gcorn/accesslog.h"
#include "gcorn/macro.h"

#define SL(lit) ((Slice) { lit, sizeof(lit) - 1 })

static HttpHeader request_headers[] = {
        { SL("Host"), SL("example.com") },
        { SL("Referer"), SL("http://ref/") },
        { SL("User-Agent"), SL("curl/8.0 \"quoted\"") },
        { SL("Authorization"), SL("Basic dXNlcjpwYXNz") },       /* user:pass */
        { SL("X-Twice"), SL("first") },
        { SL("x-twice"), SL("second") },
        { SL("X-Ctl"), SL("a\tb\x01") },
};

static HttpHeader response_headers[] = {
        { SL("Content-Type"), SL("text/plain") },
        { SL("X-Resp"), SL("r1") },
};

static Request request = {
        .method = SL("GET"),
        .target = SL("/p%20a?q=1&r=2"),
        .path = SL("/p%20a"),
        .query = SL("q=1&r=2"),
        .http_major = 1,
        .http_minor = 1,
        .headers = request_headers,
        .n_headers = ELEMENTSOF(request_headers),
        .content_length = -1,
        .keep_alive = true,
};

static AccessEntry entry(void) {
        return (AccessEntry) {
                .request = &request,
                .remote_addr = "127.0.0.1",
                .status = 200,
                .body_bytes = 1234,
                .response_headers = response_headers,
                .n_response_headers = ELEMENTSOF(response_headers),
                .start = { .tv_sec = 1700000000 },      /* 14/Nov/2023:22:13:20 UTC */
                .duration_usec = 2001234,
                .pid = 4242,
        };
}

/* Renders format for e and compares with want, checking the returned length too. */
static void assert_render(const char *format, const AccessEntry *e, const char *want) {
        AccessLog *l = NULL;
        char buf[1024];
        size_t n;

        ck_assert_int_eq(accesslog_compile(format, &l), 0);
        n = accesslog_render(l, e, buf, sizeof(buf));
        ck_assert_str_eq(buf, want);
        ck_assert_uint_eq(n, strlen(want));
        accesslog_free(l);
}

static void setup(void) {
        setenv("TZ", "UTC", 1);
        tzset();
}

START_TEST(test_default_format) {
        AccessEntry e = entry();

        assert_render(ACCESSLOG_DEFAULT_FORMAT, &e,
                      "127.0.0.1 - user [14/Nov/2023:22:13:20 +0000] \"GET /p%20a?q=1&r=2 HTTP/1.1\" 200 1234 "
                      "\"http://ref/\" \"curl/8.0 \\\"quoted\\\"\"");
}
END_TEST

START_TEST(test_atoms) {
        AccessEntry e = entry();

        assert_render("%(h)s|%(l)s|%(u)s|%(s)s|%(m)s|%(U)s|%(q)s|%(H)s", &e,
                      "127.0.0.1|-|user|200|GET|/p a|q=1&r=2|HTTP/1.1");
        assert_render("%(b)s|%(B)s|%(f)s|%(T)s|%(M)s|%(D)s|%(L)s|%(p)s", &e,
                      "1234|1234|http://ref/|2|2001|2001234|2.001234|<4242>");
        assert_render("%(r)s", &e, "GET /p%20a?q=1&r=2 HTTP/1.1");
        assert_render("%(t)s", &e, "[14/Nov/2023:22:13:20 +0000]");

        /* Gunicorn 23 writes 0 for an empty body, not "-" */
        e.body_bytes = 0;
        assert_render("%(b)s %(B)s", &e, "0 0");

        /* what is missing is "-" */
        e.remote_addr = NULL;
        e.request = &(Request) { .method = SL("GET"), .target = SL("/"), .path = SL("/"), .http_major = 1 };
        /* an empty QUERY_STRING stays empty in Gunicorn */
        assert_render("%(h)s %(u)s %(f)s %(a)s %(q)s %(H)s", &e, "- - - -  HTTP/1.0");
        e.remote_addr = "";
        assert_render("%(h)s", &e, "-");
        /* no request at all (an error answered before the head was complete) */
        e.request = NULL;
        assert_render("%(r)s %(m)s %(U)s %(s)s %({host}i)s", &e, "- - - 200 -");
}
END_TEST

START_TEST(test_time_zone) {
        AccessEntry e = entry();

        setenv("TZ", "EST5EDT", 1);
        tzset();
        assert_render("%(t)s", &e, "[14/Nov/2023:17:13:20 -0500]");
        setenv("TZ", "Asia/Kolkata", 1);
        tzset();
        assert_render("%(t)s", &e, "[15/Nov/2023:03:43:20 +0530]");
}
END_TEST

START_TEST(test_headers) {
        AccessEntry e = entry();

        assert_render("%({host}i)s %({HOST}i)s %({Content-Type}o)s %({x-resp}o)s", &e,
                      "example.com example.com text/plain r1");
        /* Gunicorn keeps the last of repeated names */
        assert_render("%({x-twice}i)s", &e, "second");
        assert_render("%({missing}i)s %({missing}o)s %({REMOTE_ADDR}e)s", &e, "- - -");
        /* control bytes cannot break the line */
        assert_render("%({x-ctl}i)s", &e, "a\\tb\\x01");
}
END_TEST

START_TEST(test_literals_and_unknown) {
        AccessEntry e = entry();

        assert_render("100%% [%(s)s] %(zz)s %(x)s literal", &e, "100% [200] - - literal");
        assert_render("", &e, "");
        assert_render("%%", &e, "%");
        /* Python conversions and field widths */
        assert_render("[%(s)5s][%(s)-5s][%(D)d]", &e, "[  200][200  ][2001234]");
}
END_TEST

START_TEST(test_user) {
        static const struct {
                const char *auth;
                const char *want;
        } cases[] = {
                { "Basic dXNlcjpwYXNz", "user" },
                { "basic dXNlcjpwYXNz", "user" },
                { "Basic dXNlcg==", "user" },                   /* no password */
                { "Basic OnBhc3M=", "-" },                      /* empty user */
                { "Bearer dXNlcjpwYXNz", "-" },
                { "Basic", "-" },
                { "Basic d", "-" },                             /* undecodable */
                { "Basic InVzZXIiOng=", "\\\"user\\\"" },      /* "user":x */
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                HttpHeader h = { SL("Authorization"), { cases[i].auth, strlen(cases[i].auth) } };
                Request r = request;
                AccessEntry e = entry();

                r.headers = &h;
                r.n_headers = 1;
                e.request = &r;
                assert_render("%(u)s", &e, cases[i].want);
        }
}
END_TEST

START_TEST(test_truncation) {
        AccessEntry e = entry();
        AccessLog *l = NULL;
        char buf[16];
        size_t full;

        ck_assert_int_eq(accesslog_compile(ACCESSLOG_DEFAULT_FORMAT, &l), 0);
        full = accesslog_render(l, &e, NULL, 0);
        ck_assert_uint_gt(full, sizeof(buf));
        memset(buf, 'Z', sizeof(buf));
        ck_assert_uint_eq(accesslog_render(l, &e, buf, sizeof(buf)), full);
        ck_assert_str_eq(buf, "127.0.0.1 - use");
        ck_assert_uint_eq(accesslog_render(l, &e, buf, 1), full);
        ck_assert_str_eq(buf, "");
        accesslog_free(l);
}
END_TEST

START_TEST(test_malformed) {
        AccessLog *l = NULL;

        ck_assert_int_eq(accesslog_compile("%(h", &l), -EINVAL);
        ck_assert_int_eq(accesslog_compile("%(h)", &l), -EINVAL);
        ck_assert_int_eq(accesslog_compile("%(h)z", &l), -EINVAL);
        ck_assert_int_eq(accesslog_compile("%h", &l), -EINVAL);
        ck_assert_int_eq(accesslog_compile("trailing %", &l), -EINVAL);
        ck_assert_ptr_null(l);
        ck_assert_ptr_null(accesslog_free(NULL));
}
END_TEST

/* %({var}e)s: the environ values the caller looked up, by the format's order of them. */
START_TEST(test_environ_atoms) {
        static const Slice values[] = { SL("/script"), { NULL, 0 }, SL("a\"b"), SL("") };
        AccessEntry e = entry();
        AccessLog *l = NULL;

        ck_assert_int_eq(accesslog_compile("%({SCRIPT_NAME}e)s %({nope}E)s %({x}e)s %({empty}e)s %({Host}I)s", &l), 0);
        ck_assert_uint_eq(accesslog_environ_count(l), 4);
        ck_assert_str_eq(accesslog_environ_name(l, 0), "SCRIPT_NAME");
        ck_assert_str_eq(accesslog_environ_name(l, 1), "nope");
        ck_assert_ptr_null(accesslog_environ_name(l, 4));
        accesslog_free(l);

        e.environ_values = values;
        e.n_environ_values = ELEMENTSOF(values);
        assert_render("%({SCRIPT_NAME}e)s %({nope}E)s %({x}e)s [%({empty}e)s] %({Host}I)s", &e,
                      "/script - a\\\"b [] example.com");
        /* none looked up (no environ): "-" */
        e.environ_values = NULL;
        assert_render("%({SCRIPT_NAME}e)s", &e, "-");
        ck_assert_uint_eq(accesslog_environ_count(NULL), 0);
}
END_TEST

static Suite *accesslog_suite(void) {
        Suite *suite = suite_create("accesslog");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_add_test(tc, test_default_format);
        tcase_add_test(tc, test_atoms);
        tcase_add_test(tc, test_time_zone);
        tcase_add_test(tc, test_headers);
        tcase_add_test(tc, test_literals_and_unknown);
        tcase_add_test(tc, test_user);
        tcase_add_test(tc, test_truncation);
        tcase_add_test(tc, test_malformed);
        tcase_add_test(tc, test_environ_atoms);
        suite_add_tcase(suite, tc);
        return suite;
}

int main(void) {
        SRunner *runner = srunner_create(accesslog_suite());
        int failed;

        srunner_run_all(runner, CK_NORMAL);
        failed = srunner_ntests_failed(runner);
        srunner_free(runner);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
