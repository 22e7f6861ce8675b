#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gcorn/listener.h"

START_TEST(test_parse_tcp) {
        BindSpec b;

        ck_assert_int_eq(listener_parse_spec("127.0.0.1:8000", &b), 0);
        ck_assert_int_eq(b.kind, 't');
        ck_assert_str_eq(b.host, "127.0.0.1");
        ck_assert_str_eq(b.port, "8000");

        ck_assert_int_eq(listener_parse_spec(":9000", &b), 0);
        ck_assert_str_eq(b.host, "");
        ck_assert_str_eq(b.port, "9000");

        ck_assert_int_eq(listener_parse_spec("localhost", &b), 0);
        ck_assert_str_eq(b.host, "localhost");
        ck_assert_str_eq(b.port, "8000");

        ck_assert_int_eq(listener_parse_spec("[::1]:0", &b), 0);
        ck_assert_str_eq(b.host, "::1");
        ck_assert_str_eq(b.port, "0");

        ck_assert_int_eq(listener_parse_spec("[::1]", &b), 0);
        ck_assert_str_eq(b.port, "8000");
}
END_TEST

START_TEST(test_parse_other) {
        BindSpec b;

        ck_assert_int_eq(listener_parse_spec("unix:/run/x.sock", &b), 0);
        ck_assert_int_eq(b.kind, 'u');
        ck_assert_str_eq(b.path, "/run/x.sock");

        ck_assert_int_eq(listener_parse_spec("fd://3", &b), 0);
        ck_assert_int_eq(b.kind, 'f');
        ck_assert_int_eq(b.fd, 3);
}
END_TEST

START_TEST(test_parse_bad) {
        BindSpec b;

        ck_assert_int_lt(listener_parse_spec("127.0.0.1:x", &b), 0);
        ck_assert_int_lt(listener_parse_spec("127.0.0.1:70000", &b), 0);
        ck_assert_int_lt(listener_parse_spec("::1:80", &b), 0);
        ck_assert_int_lt(listener_parse_spec("[::1", &b), 0);
        ck_assert_int_lt(listener_parse_spec("[::1]x", &b), 0);
        ck_assert_int_lt(listener_parse_spec("unix:", &b), 0);
        ck_assert_int_lt(listener_parse_spec("fd://", &b), 0);
        ck_assert_int_lt(listener_parse_spec("fd://3x", &b), 0);
        ck_assert_int_lt(listener_parse_spec("127.0.0.1:", &b), 0);
}
END_TEST

START_TEST(test_open_port_zero) {
        char *specs[] = { "127.0.0.1:0", NULL };
        char *error = NULL;
        Listener *l = NULL;
        size_t n = 0;

        ck_assert_int_eq(listener_open_all(specs, 16, &l, &n, &error), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(l[0].host, "127.0.0.1");
        ck_assert_str_ne(l[0].port, "0");
        ck_assert(strncmp(l[0].url, "http://127.0.0.1:", 17) == 0);
        listener_free_all(l, n, true);
}
END_TEST

START_TEST(test_open_inherited_must_listen) {
        char spec[32];
        char *specs[] = { spec, NULL };
        char *error = NULL;
        Listener *l = NULL;
        size_t n = 0;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(fd, 0);
        snprintf(spec, sizeof(spec), "fd://%d", fd);
        ck_assert_int_lt(listener_open_all(specs, 16, &l, &n, &error), 0);
        ck_assert_ptr_nonnull(error);
        ck_assert_ptr_nonnull(strstr(error, "not a listening stream socket"));
        free(error);
        close(fd);
}
END_TEST

START_TEST(test_open_unix) {
        char dir[] = "/tmp/gcorn-test-XXXXXX";
        char spec[160], path[128];
        char *specs[] = { spec, NULL };
        char *error = NULL;
        Listener *l = NULL;
        size_t n = 0;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/s.sock", dir);
        snprintf(spec, sizeof(spec), "unix:%s", path);
        ck_assert_int_eq(listener_open_all(specs, 16, &l, &n, &error), 0);
        ck_assert(l[0].is_unix);
        ck_assert_int_eq(access(path, F_OK), 0);
        listener_free_all(l, n, true);
        ck_assert_int_ne(access(path, F_OK), 0);
        rmdir(dir);
}
END_TEST

int main(void) {
        Suite *s = suite_create("listener");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_parse_tcp);
        tcase_add_test(tc, test_parse_other);
        tcase_add_test(tc, test_parse_bad);
        tcase_add_test(tc, test_open_port_zero);
        tcase_add_test(tc, test_open_inherited_must_listen);
        tcase_add_test(tc, test_open_unix);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
