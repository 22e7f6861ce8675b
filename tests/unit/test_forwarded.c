/* Tests for src/forwarded.c: who is trusted, and Gunicorn's rules for scheme headers that
 * agree, disagree or come from an untrusted peer. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gcorn/forwarded.h"
#include "gcorn/macro.h"
#include "gcorn/settings.h"

static Settings s;

static void setup(void) {
        unsetenv("FORWARDED_ALLOW_IPS");
        ck_assert_int_eq(settings_init(&s), 0);
}

static void teardown(void) {
        forwarded_done();
        settings_done(&s);
}

static ConnInfo tcp(const char *addr) {
        ConnInfo i = {};

        strcpy(i.remote_addr, addr);
        return i;
}

static int header(SchemeState *st, const char *expected, const char *value) {
        return forwarded_scheme_header(st, expected, strlen(expected), value, strlen(value));
}

START_TEST(test_trust) {
        ConnInfo unix_peer = { .is_unix = true }, local = tcp("127.0.0.1"), local6 = tcp("::1");
        ConnInfo other = tcp("192.0.2.1"), proxied = tcp("198.51.100.7");

        ck_assert_int_eq(forwarded_init(&s), 0);
        ck_assert(forwarded_peer_trusted(&unix_peer));
        ck_assert(forwarded_peer_trusted(&local));
        ck_assert(forwarded_peer_trusted(&local6));
        ck_assert(!forwarded_peer_trusted(&other));
        /* a PROXY header named another client: the socket's peer is the one trusted */
        strcpy(proxied.peer_addr, "127.0.0.1");
        ck_assert(forwarded_peer_trusted(&proxied));
        strcpy(proxied.peer_addr, "192.0.2.1");
        strcpy(proxied.remote_addr, "127.0.0.1");
        ck_assert(!forwarded_peer_trusted(&proxied));

        forwarded_done();
        ck_assert_int_eq(forwarded_init(NULL), 0);
        ck_assert(!forwarded_peer_trusted(&local));
        ck_assert(forwarded_peer_trusted(&unix_peer));
}
END_TEST

START_TEST(test_scheme_rules) {
        ConnInfo local = tcp("127.0.0.1"), other = tcp("192.0.2.1");
        SchemeState st;

        ck_assert_int_eq(forwarded_init(&s), 0);

        st = SCHEME_STATE_INIT(&local);
        ck_assert_int_eq(header(&st, "https", "https"), 0);
        ck_assert(st.seen && st.https);
        ck_assert_int_eq(header(&st, "on", "on"), 0);
        ck_assert(st.https);
        /* a later header that says http contradicts */
        ck_assert_int_eq(header(&st, "ssl", "tls"), -EPROTO);

        st = SCHEME_STATE_INIT(&local);
        ck_assert_int_eq(header(&st, "https", "HTTPS"), 0);     /* values compare exactly */
        ck_assert(st.seen && !st.https);
        ck_assert_int_eq(header(&st, "on", "off"), 0);          /* agrees: http */
        ck_assert_int_eq(header(&st, "on", "on"), -EPROTO);

        /* an untrusted peer changes nothing, contradictions included */
        st = SCHEME_STATE_INIT(&other);
        ck_assert_int_eq(header(&st, "https", "https"), 0);
        ck_assert_int_eq(header(&st, "on", "off"), 0);
        ck_assert(!st.seen && !st.https);
}
END_TEST

static Suite *forwarded_suite(void) {
        Suite *suite = suite_create("forwarded");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_trust);
        tcase_add_test(tc, test_scheme_rules);
        suite_add_tcase(suite, tc);
        return suite;
}

int main(void) {
        SRunner *runner = srunner_create(forwarded_suite());
        int failed;

        srunner_run_all(runner, CK_NORMAL);
        failed = srunner_ntests_failed(runner);
        srunner_free(runner);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
