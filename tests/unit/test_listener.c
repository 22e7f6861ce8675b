#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

        ck_assert_int_eq(listener_parse_spec("fd://http", &b), 0);
        ck_assert_int_eq(b.kind, 'n');
        ck_assert_str_eq(b.path, "http");
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
        /* Digits and dots are an IPv4 address: a bad one is not a name to look up. */
        ck_assert_int_lt(listener_parse_spec("999.1.1.1:80", &b), 0);
        ck_assert_int_lt(listener_parse_spec("1.2.3.4.5", &b), 0);
        ck_assert_int_eq(listener_parse_spec("127.1:80", &b), 0);
        ck_assert_str_eq(b.host, "127.1");
}
END_TEST

/* Opens specs[0], expecting failure; returns the message. */
static char *open_error(const char *spec) {
        char *specs[] = { (char *) spec, NULL };
        char *error = NULL;
        Listener *l = NULL;
        size_t n = 0;

        ck_assert_int_lt(listener_open_all(specs, 16, NULL, 0, false, &l, &n, &error), 0);
        ck_assert_ptr_null(l);
        ck_assert_ptr_nonnull(error);
        return error;
}

/* Each failure says which step failed: parsing, name resolution, or bind(). */
START_TEST(test_open_errors_name_the_step) {
        char *specs[] = { "127.0.0.1:0", NULL }, *error, spec[64];
        Listener *l = NULL;
        size_t n = 0;

        error = open_error("999.1.1.1:80");
        ck_assert_ptr_nonnull(strstr(error, "Invalid bind address"));
        ck_assert_ptr_nonnull(strstr(error, "not an IPv4 address"));
        free(error);

        error = open_error("127.0.0.1:99999");
        ck_assert_ptr_nonnull(strstr(error, "port"));
        free(error);

        error = open_error("nosuchhost.invalid:80");
        ck_assert_ptr_nonnull(strstr(error, "Can't resolve 'nosuchhost.invalid'"));
        ck_assert_ptr_null(strstr(error, "Cannot assign requested address"));
        free(error);

        /* A port some socket already listens on. */
        ck_assert_int_eq(listener_open_all(specs, 16, NULL, 0, false, &l, &n, &error), 0);
        snprintf(spec, sizeof(spec), "127.0.0.1:%s", l[0].port);
        error = open_error(spec);
        ck_assert_ptr_nonnull(strstr(error, "Can't bind to 127.0.0.1:"));
        ck_assert_ptr_nonnull(strstr(error, strerror(EADDRINUSE)));
        free(error);
        listener_free_all(l, n, true);
}
END_TEST

START_TEST(test_open_port_zero) {
        char *specs[] = { "127.0.0.1:0", NULL };
        char *error = NULL;
        Listener *l = NULL;
        size_t n = 0;

        ck_assert_int_eq(listener_open_all(specs, 16, NULL, 0, false, &l, &n, &error), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(l[0].host, "127.0.0.1");
        ck_assert_str_ne(l[0].port, "0");
        ck_assert(strncmp(l[0].url, "http://127.0.0.1:", 17) == 0);
        listener_free_all(l, n, true);
}
END_TEST

static int connect_to(const Listener *l) {
        struct sockaddr_in sin = {
                .sin_family = AF_INET,
                .sin_port = htons((uint16_t) atoi(l->port)),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(c, 0);
        ck_assert_int_eq(connect(c, (struct sockaddr *) &sin, sizeof(sin)), 0);
        return c;
}

static bool listener_ready(const Listener *l) {
        struct pollfd p = { .fd = l->fd, .events = POLLIN };

        return poll(&p, 1, 0) == 1;
}

/* Responses are written whole, so Nagle could only delay a streamed one (by a delayed ACK):
 * the socket accept() hands a worker must already have TCP_NODELAY. And accept() hands over
 * only connections whose request has begun to arrive (TCP_DEFER_ACCEPT). */
START_TEST(test_accepted_tuning) {
        char *specs[] = { "127.0.0.1:0", NULL };
        char *error = NULL;
        Listener *l = NULL;
        size_t n = 0;
        socklen_t len = sizeof(int);
        int silent, c, a, v = 0;

        ck_assert_int_eq(listener_open_all(specs, 16, NULL, 0, false, &l, &n, &error), 0);
        ck_assert(l[0].nodelay);
        ck_assert_int_eq(getsockopt(l[0].fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &v, &len), 0);
        ck_assert_int_gt(v, 0);

        silent = connect_to(&l[0]);
        ck_assert(!listener_ready(&l[0]));
        c = connect_to(&l[0]);
        ck_assert_int_eq(write(c, "G", 1), 1);
        for (int i = 0; i < 1000 && !listener_ready(&l[0]); i++)
                usleep(1000);
        a = accept4(l[0].fd, NULL, NULL, SOCK_CLOEXEC);
        ck_assert_int_ge(a, 0);
        ck_assert_int_eq(read(a, &(char) { 0 }, 1), 1);
        len = sizeof(int);
        ck_assert_int_eq(getsockopt(a, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
        ck_assert_int_eq(v, 1);
        close(a);
        close(c);
        close(silent);
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
        ck_assert_int_lt(listener_open_all(specs, 16, NULL, 0, false, &l, &n, &error), 0);
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
        ck_assert_int_eq(listener_open_all(specs, 16, NULL, 0, false, &l, &n, &error), 0);
        ck_assert(l[0].is_unix);
        ck_assert_int_eq(access(path, F_OK), 0);
        listener_free_all(l, n, true);
        ck_assert_int_ne(access(path, F_OK), 0);
        rmdir(dir);
}
END_TEST

/* A listening socket passed the way systemd does, picked by its name. */
START_TEST(test_open_inherited_by_name) {
        char *specs[] = { "fd://api", NULL };
        char *all[] = { "127.0.0.1:1", NULL };
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        InheritedFd inh[2];
        char *error = NULL;
        Listener *l = NULL;
        size_t n = 0;
        int fd1 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int fd2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ck_assert_int_eq(bind(fd1, (struct sockaddr *) &sin, sizeof(sin)), 0);
        ck_assert_int_eq(listen(fd1, 4), 0);
        ck_assert_int_eq(bind(fd2, (struct sockaddr *) &sin, sizeof(sin)), 0);
        ck_assert_int_eq(listen(fd2, 4), 0);
        inh[0] = (InheritedFd) { .fd = fd1, .name = "http" };
        inh[1] = (InheritedFd) { .fd = fd2, .name = "api" };

        ck_assert_int_eq(listener_open_all(specs, 16, inh, 2, false, &l, &n, &error), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(l[0].fd, fd2);
        ck_assert(l[0].inherited);
        ck_assert_ptr_nonnull(strstr(l[0].origin, "\"api\" from systemd"));
        listener_free_all(l, n, true);

        /* Without --bind every passed socket is used, whatever the default bind says. */
        ck_assert_int_eq(listener_open_all(all, 16, inh, 2, true, &l, &n, &error), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_int_eq(l[0].fd, fd1);
        ck_assert_int_eq(l[1].fd, fd2);
        listener_free_all(l, n, true);
        /* Inherited sockets are never closed by gcorn. */
        ck_assert_int_eq(fcntl(fd1, F_GETFD) >= 0, 1);

        specs[0] = "fd://nope";
        ck_assert_int_lt(listener_open_all(specs, 16, inh, 2, false, &l, &n, &error), 0);
        ck_assert_ptr_nonnull(strstr(error, "nope"));
        free(error);
        close(fd1);
        close(fd2);
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
        tcase_add_test(tc, test_open_errors_name_the_step);
        tcase_add_test(tc, test_open_port_zero);
        tcase_add_test(tc, test_accepted_tuning);
        tcase_add_test(tc, test_open_inherited_must_listen);
        tcase_add_test(tc, test_open_unix);
        tcase_add_test(tc, test_open_inherited_by_name);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
