/* Tests for src/response.c: status and header validation, framing, head and error bytes. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcorn/macro.h"
#include "gcorn/response.h"

#define S(lit) lit, sizeof(lit) - 1

START_TEST(test_parse_status) {
        ck_assert_int_eq(response_parse_status(S("200 OK")), 200);
        ck_assert_int_eq(response_parse_status(S("404 Not Found")), 404);
        ck_assert_int_eq(response_parse_status(S("200")), 200);
        ck_assert_int_eq(response_parse_status(S("599 Custom reason\twith tab")), 599);
        ck_assert_int_eq(response_parse_status(S("200 caf\xe9")), 200);
        ck_assert_int_eq(response_parse_status(S("200 ")), 200);

        ck_assert_int_eq(response_parse_status(S("")), -EINVAL);
        ck_assert_int_eq(response_parse_status(S("20")), -EINVAL);
        ck_assert_int_eq(response_parse_status(S("2000 OK")), -EINVAL);
        ck_assert_int_eq(response_parse_status(S("20x OK")), -EINVAL);
        ck_assert_int_eq(response_parse_status(S("099 Low")), -EINVAL);
        ck_assert_int_eq(response_parse_status(S("000")), -EINVAL);
        /* RFC 9110 15: status codes are 100 to 599 */
        ck_assert_int_eq(response_parse_status(S("100 Continue")), 100);
        ck_assert_int_eq(response_parse_status(S("599")), 599);
        ck_assert_int_eq(response_parse_status(S("600 Weird")), -EINVAL);
        ck_assert_int_eq(response_parse_status(S("600")), -EINVAL);
        ck_assert_int_eq(response_parse_status(S("999 Z")), -EINVAL);
        ck_assert_int_eq(response_parse_status(S("OK 200")), -EINVAL);
        ck_assert_int_eq(response_parse_status(S("200\tOK")), -EINVAL);
        ck_assert_int_eq(response_parse_status(S("200 OK\r\nX-Injected: 1")), -EINVAL);
        ck_assert_int_eq(response_parse_status(S("200 OK\n")), -EINVAL);
        ck_assert_int_eq(response_parse_status("200 O\0K", 7), -EINVAL);
}
END_TEST

START_TEST(test_header_validation) {
        ck_assert(response_header_name_valid(S("Content-Type")));
        ck_assert(response_header_name_valid(S("X-Custom_Header.1!#$%&'*+^`|~")));
        ck_assert(!response_header_name_valid(S("")));
        ck_assert(!response_header_name_valid(S("Bad Name")));
        ck_assert(!response_header_name_valid(S("Bad:Name")));
        ck_assert(!response_header_name_valid(S("X-A\r\nInjected")));
        ck_assert(!response_header_name_valid(S("X-\xe9")));
        ck_assert(!response_header_name_valid("X\0A", 3));

        ck_assert(response_header_value_valid(S("")));
        ck_assert(response_header_value_valid(S("text/html; charset=utf-8")));
        ck_assert(response_header_value_valid(S(" \tcaf\xe9 ")));
        ck_assert(!response_header_value_valid(S("a\r\nSet-Cookie: x=1")));
        ck_assert(!response_header_value_valid(S("a\nb")));
        ck_assert(!response_header_value_valid(S("a\rb")));
        ck_assert(!response_header_value_valid("a\0b", 3));
        ck_assert(!response_header_value_valid(S("a\x7f")));
        ck_assert(!response_header_value_valid(S("a\x01")));
}
END_TEST

/* Every byte against the RFC 9110 definitions, written out independently of the table. */
START_TEST(test_header_bytes_exhaustive) {
        for (int c = 0; c < 256; c++) {
                char ch = (char) c;
                bool tchar = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
                bool field = c == ' ' || c == '\t' || (c >= 0x21 && c <= 0x7e) || c >= 0x80;
                char status[] = "200 O?";

                ck_assert_msg(response_header_name_valid(&ch, 1) == tchar, "name byte 0x%02x", c);
                ck_assert_msg(response_header_value_valid(&ch, 1) == field, "value byte 0x%02x", c);
                status[5] = ch;
                ck_assert_msg((response_parse_status(status, 6) == 200) == field, "status byte 0x%02x", c);
        }
}
END_TEST

START_TEST(test_content_length) {
        int64_t v = -1;

        ck_assert_int_eq(response_parse_content_length(S("0"), &v), 0);
        ck_assert_int_eq(v, 0);
        ck_assert_int_eq(response_parse_content_length(S("1234567"), &v), 0);
        ck_assert_int_eq(v, 1234567);
        ck_assert_int_eq(response_parse_content_length(S(""), &v), -EINVAL);
        ck_assert_int_eq(response_parse_content_length(S("-1"), &v), -EINVAL);
        ck_assert_int_eq(response_parse_content_length(S("+1"), &v), -EINVAL);
        ck_assert_int_eq(response_parse_content_length(S("1 2"), &v), -EINVAL);
        ck_assert_int_eq(response_parse_content_length(S("0x10"), &v), -EINVAL);
        ck_assert_int_eq(response_parse_content_length(S("99999999999999999999"), &v), -EINVAL);
        ck_assert_int_eq(v, 1234567);
}
END_TEST

START_TEST(test_framing_table) {
        static const struct {
                int major, minor;
                bool head;
                int status;
                int64_t cl;
                ResponseFraming want;
        } cases[] = {
                { 1, 1, false, 200, -1, RESPONSE_FRAMING_CHUNKED },
                { 1, 1, false, 200, 10, RESPONSE_FRAMING_LENGTH },
                { 1, 1, false, 200, 0, RESPONSE_FRAMING_LENGTH },
                { 1, 0, false, 200, -1, RESPONSE_FRAMING_CLOSE },
                { 1, 0, false, 200, 10, RESPONSE_FRAMING_LENGTH },
                { 1, 1, true, 200, -1, RESPONSE_FRAMING_NONE },
                { 1, 1, true, 200, 10, RESPONSE_FRAMING_NONE },
                { 1, 0, true, 200, -1, RESPONSE_FRAMING_NONE },
                { 1, 1, false, 204, -1, RESPONSE_FRAMING_NONE },
                { 1, 1, false, 304, 10, RESPONSE_FRAMING_NONE },
                { 1, 0, false, 304, -1, RESPONSE_FRAMING_NONE },
                { 1, 1, false, 101, -1, RESPONSE_FRAMING_NONE },
                { 1, 1, false, 199, -1, RESPONSE_FRAMING_NONE },
                { 1, 1, false, 500, -1, RESPONSE_FRAMING_CHUNKED },
                { 1, 1, false, 205, -1, RESPONSE_FRAMING_CHUNKED },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                ck_assert_msg(response_framing(cases[i].major, cases[i].minor, cases[i].head, cases[i].status,
                                               cases[i].cl) == cases[i].want,
                              "case %zu", i);
        ck_assert(!response_status_allows_body(100));
        ck_assert(!response_status_allows_body(204));
        ck_assert(!response_status_allows_body(304));
        ck_assert(response_status_allows_body(200));
        ck_assert(response_status_allows_body(404));
}
END_TEST

START_TEST(test_date) {
        const char *d = response_date();
        char wday[4], mon[4], tz[4];
        int day, year, h, m, s;

        ck_assert_uint_eq(strlen(d), 29);
        ck_assert_int_eq(sscanf(d, "%3s, %d %3s %d %d:%d:%d %3s", wday, &day, mon, &year, &h, &m, &s, tz), 8);
        ck_assert_str_eq(tz, "GMT");
        ck_assert(d[3] == ',');
        ck_assert(strstr("SunMonTueWedThuFriSat", (char[]) { wday[0], wday[1], wday[2], 0 }) != NULL);
        ck_assert(year >= 2024);
        ck_assert_ptr_eq(response_date(), d);
}
END_TEST

START_TEST(test_format_start) {
        char buf[512], expect[512];
        size_t n;
        int e;

        n = response_format_start(buf, sizeof(buf), 1, 1, S("200 OK"), RESPONSE_CONNECTION_KEEP_ALIVE, false);
        e = snprintf(expect, sizeof(expect),
                     "HTTP/1.1 200 OK\r\nServer: gcorn\r\nDate: %s\r\nConnection: keep-alive\r\n", response_date());
        ck_assert_uint_eq(n, (size_t) e);
        ck_assert(memcmp(buf, expect, n) == 0);

        n = response_format_start(buf, sizeof(buf), 1, 0, S("404 Not Found"), RESPONSE_CONNECTION_CLOSE, false);
        e = snprintf(expect, sizeof(expect),
                     "HTTP/1.0 404 Not Found\r\nServer: gcorn\r\nDate: %s\r\nConnection: close\r\n", response_date());
        ck_assert_uint_eq(n, (size_t) e);
        ck_assert(memcmp(buf, expect, n) == 0);

        /* RFC 9112 4: the space after the code is there even without a reason */
        n = response_format_start(buf, sizeof(buf), 1, 1, S("200"), RESPONSE_CONNECTION_KEEP_ALIVE, true);
        e = snprintf(expect, sizeof(expect),
                     "HTTP/1.1 200 \r\nServer: gcorn\r\nDate: %s\r\nConnection: keep-alive\r\n"
                     "Transfer-Encoding: chunked\r\n", response_date());
        ck_assert_uint_eq(n, (size_t) e);
        ck_assert(memcmp(buf, expect, n) == 0);

        n = response_format_start(buf, sizeof(buf), 1, 0, S("404 "), RESPONSE_CONNECTION_CLOSE, false);
        e = snprintf(expect, sizeof(expect), "HTTP/1.0 404 \r\nServer: gcorn\r\nDate: %s\r\nConnection: close\r\n",
                     response_date());
        ck_assert_uint_eq(n, (size_t) e);
        ck_assert(memcmp(buf, expect, n) == 0);

        n = response_format_start(buf, sizeof(buf), 1, 1, S("101 Switching Protocols"), RESPONSE_CONNECTION_UPGRADE, false);
        buf[n] = 0;
        ck_assert(strstr(buf, "\r\nConnection: upgrade\r\n") != NULL);

        /* too small: reports the size needed and never writes past cap */
        memset(buf, 'Z', sizeof(buf));
        n = response_format_start(buf, 10, 1, 1, S("200 OK"), RESPONSE_CONNECTION_KEEP_ALIVE, false);
        ck_assert_uint_gt(n, 10);
        ck_assert(memcmp(buf, "HTTP/1.1 2", 10) == 0);
        ck_assert_int_eq(buf[10], 'Z');
        ck_assert_uint_eq(response_format_start(NULL, 0, 1, 1, S("200 OK"), RESPONSE_CONNECTION_KEEP_ALIVE, false),
                          (size_t) snprintf(expect, sizeof(expect),
                                            "HTTP/1.1 200 OK\r\nServer: gcorn\r\nDate: %s\r\nConnection: keep-alive\r\n",
                                            response_date()));
}
END_TEST

START_TEST(test_chunk_line) {
        char buf[RESPONSE_CHUNK_LINE_MAX];
        size_t n;

        n = response_chunk_line(buf, 0);
        ck_assert_uint_eq(n, 3);
        ck_assert(memcmp(buf, "0\r\n", 3) == 0);
        n = response_chunk_line(buf, 255);
        ck_assert(n == 4 && memcmp(buf, "ff\r\n", 4) == 0);
        n = response_chunk_line(buf, 0x1a2b3c);
        ck_assert(n == 8 && memcmp(buf, "1a2b3c\r\n", 8) == 0);
        n = response_chunk_line(buf, SIZE_MAX);
        ck_assert(n == 18 && memcmp(buf, "ffffffffffffffff\r\n", 18) == 0);
}
END_TEST

/* Parses a canned error as a client would: status line, headers, then exactly Content-Length
 * bytes of body, or none at all for a HEAD request. Returns the body's offset in buf. */
static size_t check_error(char buf[static RESPONSE_ERROR_MAX], int status, const char *reason, bool head_only,
                          const char *message) {
        char line[64];
        size_t n = response_build_error(buf, RESPONSE_ERROR_MAX, status, head_only, message);
        const char *end, *cl;
        long len;

        ck_assert_uint_gt(n, 0);
        ck_assert_uint_lt(n, RESPONSE_ERROR_MAX - 1);
        snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, reason);
        ck_assert_msg(strncmp(buf, line, strlen(line)) == 0, "%d: %.40s", status, buf);
        end = memmem(buf, n, "\r\n\r\n", 4);
        ck_assert_ptr_nonnull(end);
        end += 4;
        ck_assert(memmem(buf, (size_t) (end - buf), "\r\nConnection: close\r\n", 21) != NULL);
        ck_assert(memmem(buf, (size_t) (end - buf), "\r\nDate: ", 8) != NULL);
        cl = memmem(buf, (size_t) (end - buf), "\r\nContent-Length: ", 18);
        ck_assert_ptr_nonnull(cl);
        len = strtol(cl + 18, NULL, 10);
        ck_assert_int_gt(len, 0);
        if (head_only)
                ck_assert_uint_eq(n, (size_t) (end - buf));
        else {
                ck_assert_int_eq(len, (long) (n - (size_t) (end - buf)));
                ck_assert(memmem(end, n - (size_t) (end - buf), reason, strlen(reason)) != NULL);
        }
        /* nothing but the head's own line breaks */
        for (const char *p = buf; p < end - 2; p++)
                ck_assert(*p != '\n' || p[-1] == '\r');
        return (size_t) (end - buf);
}

START_TEST(test_errors) {
        char buf[RESPONSE_ERROR_MAX];

        check_error(buf, 400, "Bad Request", false, NULL);
        check_error(buf, 404, "Not Found", false, NULL);
        check_error(buf, 408, "Request Timeout", false, NULL);
        check_error(buf, 413, "Request Entity Too Large", false, NULL);
        check_error(buf, 414, "Request-URI Too Long", false, NULL);
        check_error(buf, 431, "Request Header Fields Too Large", false, NULL);
        check_error(buf, 500, "Internal Server Error", false, NULL);
        check_error(buf, 501, "Not Implemented", false, NULL);
        check_error(buf, 505, "HTTP Version Not Supported", false, NULL);
        check_error(buf, 599, "Unknown", false, NULL);
        check_error(buf, 500, "Internal Server Error", false, "");
}
END_TEST

/* Gunicorn's util.write_error page, byte for byte, with the parser's reason as its message */
START_TEST(test_error_body_message) {
        char buf[RESPONSE_ERROR_MAX];
        size_t at;

        at = check_error(buf, 400, "Bad Request", false, "Invalid header name");
        ck_assert_str_eq(buf + at, "<html>\n  <head>\n    <title>Bad Request</title>\n  </head>\n  <body>\n"
                                   "    <h1><p>Bad Request</p></h1>\n    Invalid header name\n  </body>\n</html>\n");
        at = check_error(buf, 500, "Internal Server Error", false, NULL);
        ck_assert_str_eq(buf + at, "<html>\n  <head>\n    <title>Internal Server Error</title>\n  </head>\n"
                                   "  <body>\n    <h1><p>Internal Server Error</p></h1>\n    \n  </body>\n</html>\n");
        /* html.escape() */
        at = check_error(buf, 400, "Bad Request", false, "<a href='x'>&\"</a>");
        ck_assert(strstr(buf + at, "\n    &lt;a href=&#x27;x&#x27;&gt;&amp;&quot;&lt;/a&gt;\n  </body>") != NULL);
}
END_TEST

/* Whatever the message, the answer fits and stays well-formed: the message is cut. */
START_TEST(test_error_long_message) {
        char buf[RESPONSE_ERROR_MAX], message[2048];
        size_t at;

        memset(message, '&', sizeof(message) - 1);
        message[sizeof(message) - 1] = 0;
        at = check_error(buf, 431, "Request Header Fields Too Large", false, message);
        ck_assert(strstr(buf + at, "&amp;&amp;") != NULL);
        ck_assert(strstr(buf + at, "\n  </body>\n</html>\n") != NULL);
        memset(message, 'x', sizeof(message) - 1);
        check_error(buf, 505, "HTTP Version Not Supported", false, message);
}
END_TEST

/* RFC 9110 9.3.2: a HEAD request gets the head a GET would get, Content-Length included. */
START_TEST(test_error_head_only) {
        char get[RESPONSE_ERROR_MAX], head[RESPONSE_ERROR_MAX];
        size_t at_get, at_head;

        at_get = check_error(get, 400, "Bad Request", false, "Invalid request line");
        at_head = check_error(head, 400, "Bad Request", true, "Invalid request line");
        ck_assert_uint_eq(at_head, at_get);
        ck_assert_uint_eq(strlen(head), at_head);
        /* the same head, Date aside (the clock may tick between the two) */
        get[at_get] = 0;
        ck_assert_str_eq(strstr(head, "\r\nConnection: "), strstr(get, "\r\nConnection: "));
        check_error(head, 500, "Internal Server Error", true, NULL);
}
END_TEST

START_TEST(test_error_out_of_range_status) {
        char buf[RESPONSE_ERROR_MAX];

        check_error(buf, 500, "Internal Server Error", false, NULL);
        response_build_error(buf, sizeof(buf), 999, false, NULL);
        ck_assert(strncmp(buf, "HTTP/1.1 500 Internal Server Error\r\n", 36) == 0);
        response_build_error(buf, sizeof(buf), 42, false, NULL);
        ck_assert(strncmp(buf, "HTTP/1.1 500 Internal Server Error\r\n", 36) == 0);
        ck_assert(strstr(buf, "<title>Internal Server Error</title>") != NULL);
}
END_TEST

START_TEST(test_error_small_buffer) {
        char buf[32];
        size_t n;

        memset(buf, 'Z', sizeof(buf));
        n = response_build_error(buf, 20, 500, false, "reason");
        ck_assert_uint_eq(n, 19);
        ck_assert_int_eq(buf[19], 0);
        ck_assert_int_eq(buf[20], 'Z');
}
END_TEST

static Suite *response_suite(void) {
        Suite *suite = suite_create("response");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_parse_status);
        tcase_add_test(tc, test_header_validation);
        tcase_add_test(tc, test_header_bytes_exhaustive);
        tcase_add_test(tc, test_content_length);
        tcase_add_test(tc, test_framing_table);
        tcase_add_test(tc, test_date);
        tcase_add_test(tc, test_format_start);
        tcase_add_test(tc, test_chunk_line);
        tcase_add_test(tc, test_errors);
        tcase_add_test(tc, test_error_body_message);
        tcase_add_test(tc, test_error_long_message);
        tcase_add_test(tc, test_error_head_only);
        tcase_add_test(tc, test_error_out_of_range_status);
        tcase_add_test(tc, test_error_small_buffer);
        suite_add_tcase(suite, tc);
        return suite;
}

int main(void) {
        SRunner *runner = srunner_create(response_suite());
        int failed;

        srunner_run_all(runner, CK_NORMAL);
        failed = srunner_ntests_failed(runner);
        srunner_free(runner);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
