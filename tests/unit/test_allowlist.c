/* Tests for src/allowlist.c: entries as Python's ipaddress.ip_network() reads them, and
 * matching peers against them. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "gcorn/allowlist.h"
#include "gcorn/macro.h"

static int check(const char *entry) {
        char reason[128] = "";
        int r = allowlist_check_entry(entry, reason, sizeof(reason));

        if (r < 0)
                ck_assert_msg(reason[0], "no reason for %s", entry);
        return r;
}

START_TEST(test_entries) {
        static const char *const good[] = {
                "*", "127.0.0.1", "::1", "10.0.0.0/8", "10.0.0.0/255.0.0.0", "10.0.0.0/0.255.255.255",
                "0.0.0.0/0", "fd00::/8", "2001:db8::/32", "::/0", "192.168.1.1/32", "10.0.0.0/08",
        };
        static const char *const bad[] = {
                "", "localhost", "1.2.3", "01.2.3.4", "192.168.1.1/24", "10.0.0.0/33", "fd00::1/8",
                "::1/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/255.0.255.0", "::/ffff::", "* ",
                "127.0.0.1 ", "fe80::1%eth0",
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                ck_assert_msg(check(good[i]) == 0, "%s", good[i]);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(check(bad[i]) == -EINVAL, "%s", bad[i]);
}
END_TEST

START_TEST(test_contains) {
        char *entries[] = { "127.0.0.1", "::1", "10.0.0.0/8", "192.168.0.0/255.255.0.0", "2001:db8::/33", NULL };
        AllowList *l = NULL;

        ck_assert_int_eq(allowlist_new(entries, &l), 0);
        ck_assert(allowlist_contains(l, "127.0.0.1"));
        ck_assert(!allowlist_contains(l, "127.0.0.2"));
        ck_assert(allowlist_contains(l, "::1"));
        ck_assert(allowlist_contains(l, "10.255.1.2"));
        ck_assert(!allowlist_contains(l, "11.0.0.1"));
        ck_assert(allowlist_contains(l, "192.168.77.1"));
        ck_assert(allowlist_contains(l, "2001:db8:7fff::1"));
        ck_assert(!allowlist_contains(l, "2001:db8:8000::1"));
        /* another family never matches, as in Python */
        ck_assert(!allowlist_contains(l, "::ffff:127.0.0.1"));
        ck_assert(!allowlist_contains(l, ""));
        ck_assert(!allowlist_contains(l, "garbage"));
        l = allowlist_free(l);

        {
                char *star[] = { "10.0.0.1", "*", NULL };
                char *none[] = { NULL };

                ck_assert_int_eq(allowlist_new(star, &l), 0);
                ck_assert(allowlist_contains(l, "203.0.113.1"));
                l = allowlist_free(l);
                ck_assert_int_eq(allowlist_new(none, &l), 0);
                ck_assert(!allowlist_contains(l, "127.0.0.1"));
                l = allowlist_free(l);
        }
        ck_assert(!allowlist_contains(NULL, "127.0.0.1"));
}
END_TEST

static Suite *allowlist_suite(void) {
        Suite *suite = suite_create("allowlist");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_entries);
        tcase_add_test(tc, test_contains);
        suite_add_tcase(suite, tc);
        return suite;
}

int main(void) {
        SRunner *runner = srunner_create(allowlist_suite());
        int failed;

        srunner_run_all(runner, CK_NORMAL);
        failed = srunner_ntests_failed(runner);
        srunner_free(runner);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
