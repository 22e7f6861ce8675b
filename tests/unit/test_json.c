/* Tests for src/json.c: what the control socket accepts as a request, and strings written
 * and read back. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gcorn/json.h"
#include "gcorn/macro.h"

static void count_member(const JsonSpan *key _unused_, const JsonSpan *value _unused_, void *userdata) {
        (*(int *) userdata)++;
}

static int members(const char *text) {
        int n = 0;

        return json_object_each(text, strlen(text), count_member, &n) < 0 ? -1 : n;
}

START_TEST(test_validation) {
        static const char *const bad[] = {
                "", "garbage", "[1]", "\"x\"", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{,}", "{\"a\":1} x",
                "{\"a\":tru}", "{\"a\":\"\\x\"}", "{\"a\":\"\x01\"}", "{\"a\":\"unterminated}", "{\"a\":-}",
                "{\"a\":[1,]}", "{\"a\":\"\\u12\"}", "{1:2}",
        };
        char deep[200];

        ck_assert_int_eq(members("{}"), 0);
        ck_assert_int_eq(members(" { \"command\" : \"status\" , \"args\" : [ \"+1\", 2, true, null, {\"x\": [ ]} ] } "), 2);
        ck_assert_int_eq(members("{\"a\":-1.5e3,\"b\":\"\\u00e9\\n\"}"), 2);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(members(bad[i]) < 0, "accepted %s", bad[i]);
        /* Nesting is bounded: no recursion without limit on a hostile line. */
        memset(deep, '[', 100);
        memset(deep + 100, ']', 99);
        deep[199] = 0;
        memcpy(deep, "{\"a\":", 5);
        ck_assert_int_lt(members(deep), 0);
}
END_TEST

typedef struct Found {
        char *command;
        int n_args;
} Found;

static void arg(const JsonSpan *v _unused_, void *userdata) {
        ((Found *) userdata)->n_args++;
}

static void member(const JsonSpan *key, const JsonSpan *value, void *userdata) {
        Found *f = userdata;

        if (json_key_is(key, "command"))
                ck_assert_int_eq(json_string_decode(value, &f->command), 0);
        if (json_key_is(key, "args"))
                ck_assert_int_eq(json_array_each(value, arg, f), 0);
}

START_TEST(test_roundtrip) {
        static const char text[] = "tab\there \"quoted\" back\\slash\nnew\x01\x7f";
        JsonBuf b = {};
        Found f = {};

        json_append(&b, "{\"command\":", 11);
        json_string(&b, text, strlen(text));
        json_printf(&b, ",\"args\":[%d,\"x\"]}", 3);
        ck_assert(!b.oom);
        ck_assert_int_eq(json_object_each(b.p, b.len, member, &f), 0);
        ck_assert_str_eq(f.command, text);
        ck_assert_int_eq(f.n_args, 2);
        free(f.command);
        json_buf_done(&b);

        /* Bytes above 0x7f are Latin-1 characters: the output is ASCII. */
        json_string(&b, "\xc3\xa9", 2);
        ck_assert_str_eq(b.p, "\"\\u00c3\\u00a9\"");
        json_buf_done(&b);
}
END_TEST

static Suite *json_suite(void) {
        Suite *suite = suite_create("json");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_validation);
        tcase_add_test(tc, test_roundtrip);
        suite_add_tcase(suite, tc);
        return suite;
}

int main(void) {
        SRunner *runner = srunner_create(json_suite());
        int failed;

        srunner_run_all(runner, CK_NORMAL);
        failed = srunner_ntests_failed(runner);
        srunner_free(runner);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
