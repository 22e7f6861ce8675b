/* Tests for src/proxyproto.c: PROXY protocol v1 and v2 headers, the modes, malformed
 * headers, and the same answer however the bytes are split. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcorn/macro.h"
#include "gcorn/proxyproto.h"

#define S(lit) lit, sizeof(lit) - 1

static const char v2_sig[] = "\r\n\r\n\0\r\nQUIT\n";

/* A v2 header: signature, version/command, family/protocol, length, then body. */
static size_t v2(char *buf, unsigned char ver_cmd, unsigned char fam, const void *body, size_t n) {
        memcpy(buf, v2_sig, 12);
        buf[12] = (char) ver_cmd;
        buf[13] = (char) fam;
        buf[14] = (char) (n >> 8);
        buf[15] = (char) (n & 0xff);
        memcpy(buf + 16, body, n);
        return 16 + n;
}

static int scan(ProxyMode mode, const char *data, size_t len, ProxyHeader *h) {
        const char *reason = NULL;
        int r = proxy_scan(mode, data, len, h, &reason);

        if (r < 0)
                ck_assert_ptr_nonnull(reason);
        return r;
}

START_TEST(test_modes) {
        ck_assert_int_eq(proxy_mode_from_string("off"), PROXY_OFF);
        ck_assert_int_eq(proxy_mode_from_string("v1"), PROXY_V1);
        ck_assert_int_eq(proxy_mode_from_string("v2"), PROXY_V2);
        ck_assert_int_eq(proxy_mode_from_string("auto"), PROXY_AUTO);
        ck_assert_int_eq(proxy_mode_from_string("on"), -EINVAL);
}
END_TEST

START_TEST(test_v1_tcp4) {
        static const char line[] = "PROXY TCP4 198.51.100.7 192.0.2.1 40000 443\r\nGET / HTTP/1.1\r\n";
        ProxyHeader h;

        ck_assert_int_eq(scan(PROXY_V1, S(line), &h), PROXY_SCAN_DONE);
        ck_assert_int_eq(h.version, 1);
        ck_assert_str_eq(h.protocol, "TCP4");
        ck_assert(h.has_addresses);
        ck_assert_str_eq(h.src_addr, "198.51.100.7");
        ck_assert_str_eq(h.dst_addr, "192.0.2.1");
        ck_assert_uint_eq(h.src_port, 40000);
        ck_assert_uint_eq(h.dst_port, 443);
        ck_assert_uint_eq(h.length, strlen("PROXY TCP4 198.51.100.7 192.0.2.1 40000 443\r\n"));
        ck_assert_int_eq(scan(PROXY_AUTO, S(line), &h), PROXY_SCAN_DONE);
        /* v2 only: the bytes are the request's (and the HTTP parser will refuse them) */
        ck_assert_int_eq(scan(PROXY_V2, S(line), &h), PROXY_SCAN_NOT);
}
END_TEST

START_TEST(test_v1_tcp6_and_unknown) {
        ProxyHeader h;

        ck_assert_int_eq(scan(PROXY_V1, S("PROXY TCP6 2001:db8::7 ::1 1 65535\r\n"), &h), PROXY_SCAN_DONE);
        ck_assert_str_eq(h.protocol, "TCP6");
        ck_assert_str_eq(h.src_addr, "2001:db8::7");
        ck_assert_uint_eq(h.dst_port, 65535);

        ck_assert_int_eq(scan(PROXY_V1, S("PROXY UNKNOWN\r\n"), &h), PROXY_SCAN_DONE);
        ck_assert_str_eq(h.protocol, "UNKNOWN");
        ck_assert(!h.has_addresses);
        ck_assert_uint_eq(h.length, 15);
        /* the rest of an UNKNOWN line is ignored */
        ck_assert_int_eq(scan(PROXY_V1, S("PROXY UNKNOWN whatever 1 2\r\n"), &h), PROXY_SCAN_DONE);
        ck_assert_str_eq(h.protocol, "UNKNOWN");
}
END_TEST

START_TEST(test_v1_malformed) {
        static const char *const bad[] = {
                "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",             /* a field short */
                "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",         /* one too many */
                "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",          /* an empty field */
                "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",          /* trailing blank */
                "PROXY TCP4 1.2.3.4 ::1 1 2\r\n",               /* family mismatch */
                "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
                "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
                "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
                "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
                "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
                "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
                "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",             /* LF alone */
                "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",
                "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
                "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
                "PROXY \r\n",
        };
        char longline[200];
        ProxyHeader h;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(scan(PROXY_AUTO, bad[i], strlen(bad[i]), &h) == -EBADMSG, "%s", bad[i]);

        /* at most 107 bytes, CRLF included */
        memset(longline, 'x', sizeof(longline));
        memcpy(longline, "PROXY ", 6);
        ck_assert_int_eq(scan(PROXY_V1, longline, 105, &h), PROXY_SCAN_PARTIAL);
        ck_assert_int_eq(scan(PROXY_V1, longline, 106, &h), -EBADMSG);
        ck_assert_int_eq(scan(PROXY_V1, longline, sizeof(longline), &h), -EBADMSG);
}
END_TEST

START_TEST(test_v1_longest_line) {
        /* the spec's worst case is 107 bytes: accepted */
        static const char line[] = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                                   "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
        ProxyHeader h;

        ck_assert_uint_eq(sizeof(line) - 1, 104);
        ck_assert_int_eq(scan(PROXY_V1, S(line), &h), PROXY_SCAN_DONE);
        ck_assert_uint_eq(h.length, 104);
}
END_TEST

START_TEST(test_not_proxy) {
        ProxyHeader h;

        ck_assert_int_eq(scan(PROXY_AUTO, S("GET / HTTP/1.1\r\n"), &h), PROXY_SCAN_NOT);
        ck_assert_int_eq(scan(PROXY_AUTO, S("PROXZ"), &h), PROXY_SCAN_NOT);
        ck_assert_int_eq(scan(PROXY_AUTO, S("PROXYTCP4"), &h), PROXY_SCAN_NOT);
        ck_assert_int_eq(scan(PROXY_AUTO, S("\r\nGET"), &h), PROXY_SCAN_NOT);
        /* too short to tell */
        ck_assert_int_eq(scan(PROXY_AUTO, S("PROX"), &h), PROXY_SCAN_MAYBE);
        ck_assert_int_eq(scan(PROXY_AUTO, "\r\n\r\n\0\r", 6, &h), PROXY_SCAN_MAYBE);
        ck_assert_int_eq(scan(PROXY_V1, "\r\n\r\n\0\r", 6, &h), PROXY_SCAN_NOT);
        ck_assert_int_eq(scan(PROXY_AUTO, "", 0, &h), PROXY_SCAN_MAYBE);
        /* the signature is in: it is a PROXY header from now on */
        ck_assert_int_eq(scan(PROXY_AUTO, S("PROXY "), &h), PROXY_SCAN_PARTIAL);
        ck_assert_int_eq(scan(PROXY_AUTO, v2_sig, 12, &h), PROXY_SCAN_PARTIAL);
}
END_TEST

START_TEST(test_v2_inet_with_tlvs) {
        const unsigned char body[] = {
                198, 51, 100, 8,  192, 0, 2, 1,  0x9c, 0x42,  0x20, 0xfb,
                0x01, 0x00, 0x02, 'h', '2',     /* ALPN TLV */
                0x04, 0x00, 0x00,               /* NOOP TLV */
        };
        char buf[128];
        size_t n = v2(buf, 0x21, 0x11, body, sizeof(body));
        ProxyHeader h;

        memcpy(buf + n, "GET", 3);
        ck_assert_int_eq(scan(PROXY_V2, buf, n + 3, &h), PROXY_SCAN_DONE);
        ck_assert_int_eq(h.version, 2);
        ck_assert_str_eq(h.protocol, "TCP4");
        ck_assert_str_eq(h.src_addr, "198.51.100.8");
        ck_assert_str_eq(h.dst_addr, "192.0.2.1");
        ck_assert_uint_eq(h.src_port, 0x9c42);
        ck_assert_uint_eq(h.dst_port, 0x20fb);
        ck_assert_uint_eq(h.length, n);
        ck_assert_int_eq(scan(PROXY_AUTO, buf, n, &h), PROXY_SCAN_DONE);
        ck_assert_int_eq(scan(PROXY_V1, buf, n, &h), PROXY_SCAN_NOT);
        ck_assert_int_eq(scan(PROXY_V2, buf, n - 1, &h), PROXY_SCAN_PARTIAL);
}
END_TEST

START_TEST(test_v2_inet6_local_unspec_unix) {
        unsigned char body[216] = { 0x20, 0x01, 0x0d, 0xb8 };
        char buf[300];
        size_t n;
        ProxyHeader h;

        body[15] = 8;
        body[31] = 1;
        body[33] = 5;
        body[35] = 6;
        n = v2(buf, 0x21, 0x21, body, 36);
        ck_assert_int_eq(scan(PROXY_V2, buf, n, &h), PROXY_SCAN_DONE);
        ck_assert_str_eq(h.protocol, "TCP6");
        ck_assert_str_eq(h.src_addr, "2001:db8::8");
        ck_assert_str_eq(h.dst_addr, "::1");
        ck_assert_uint_eq(h.src_port, 5);

        /* LOCAL: whatever the family, no client to use */
        n = v2(buf, 0x20, 0x11, body, 12);
        ck_assert_int_eq(scan(PROXY_V2, buf, n, &h), PROXY_SCAN_DONE);
        ck_assert_str_eq(h.protocol, "LOCAL");
        ck_assert(!h.has_addresses);
        ck_assert_uint_eq(h.length, 28);
        n = v2(buf, 0x20, 0x00, body, 0);
        ck_assert_int_eq(scan(PROXY_V2, buf, n, &h), PROXY_SCAN_DONE);
        ck_assert_str_eq(h.protocol, "LOCAL");

        n = v2(buf, 0x21, 0x00, body, 0);
        ck_assert_int_eq(scan(PROXY_V2, buf, n, &h), PROXY_SCAN_DONE);
        ck_assert_str_eq(h.protocol, "UNSPEC");
        ck_assert(!h.has_addresses);

        n = v2(buf, 0x21, 0x31, body, 216);
        ck_assert_int_eq(scan(PROXY_V2, buf, n, &h), PROXY_SCAN_DONE);
        ck_assert_str_eq(h.protocol, "UNSPEC");
}
END_TEST

START_TEST(test_v2_malformed) {
        const unsigned char body[36] = {};
        char buf[128];
        ProxyHeader h;

        ck_assert_int_eq(scan(PROXY_V2, buf, v2(buf, 0x11, 0x11, body, 12), &h), -EBADMSG);  /* version 1 */
        ck_assert_int_eq(scan(PROXY_V2, buf, v2(buf, 0x31, 0x11, body, 12), &h), -EBADMSG);  /* version 3 */
        ck_assert_int_eq(scan(PROXY_V2, buf, v2(buf, 0x22, 0x11, body, 12), &h), -EBADMSG);  /* command 2 */
        ck_assert_int_eq(scan(PROXY_V2, buf, v2(buf, 0x21, 0x12, body, 12), &h), -EBADMSG);  /* UDP */
        ck_assert_int_eq(scan(PROXY_V2, buf, v2(buf, 0x21, 0x41, body, 12), &h), -EBADMSG);  /* family 4 */
        ck_assert_int_eq(scan(PROXY_V2, buf, v2(buf, 0x21, 0x11, body, 11), &h), -EBADMSG);  /* short */
        ck_assert_int_eq(scan(PROXY_V2, buf, v2(buf, 0x21, 0x21, body, 35), &h), -EBADMSG);
        ck_assert_int_eq(scan(PROXY_V2, buf, v2(buf, 0x21, 0x31, body, 36), &h), -EBADMSG);
        /* the version is known from the 13th byte on: no need to wait for the rest */
        v2(buf, 0x11, 0x11, body, 12);
        ck_assert_int_eq(scan(PROXY_V2, buf, 16, &h), -EBADMSG);
}
END_TEST

/* Every split of the input, fed as a growing prefix the way conn.c feeds it, ends in the
 * same answer, and no prefix answers NOT or an error before the whole header has. */
static void check_split(ProxyMode mode, const char *data, size_t len) {
        ProxyHeader whole, part;
        int want = scan(mode, data, len, &whole);

        for (size_t cut = 0; cut < len; cut++) {
                int r = scan(mode, data, cut, &part);

                if (r == want)
                        continue;
                ck_assert_msg(r == PROXY_SCAN_MAYBE || r == PROXY_SCAN_PARTIAL,
                              "prefix of %zu bytes answered %d, the whole %d", cut, r, want);
        }
        if (want == PROXY_SCAN_DONE)
                for (size_t cut = whole.length; cut <= len; cut++) {
                        ck_assert_int_eq(scan(mode, data, cut, &part), PROXY_SCAN_DONE);
                        ck_assert_uint_eq(part.length, whole.length);
                        ck_assert_str_eq(part.protocol, whole.protocol);
                        ck_assert_str_eq(part.src_addr, whole.src_addr);
                        ck_assert_uint_eq(part.src_port, whole.src_port);
                }
}

START_TEST(test_split_feed_invariance) {
        static const char *const v1[] = {
                "PROXY TCP4 198.51.100.7 192.0.2.1 40000 443\r\nGET / HTTP/1.1\r\n\r\n",
                "PROXY TCP6 2001:db8::7 ::1 1 2\r\nGET",
                "PROXY UNKNOWN\r\n",
                "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\nGET",
                "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
                "GET / HTTP/1.1\r\n",
        };
        const unsigned char body[] = { 10, 0, 0, 1, 10, 0, 0, 2, 0, 80, 1, 187, 0x04, 0x00, 0x01, 'x' };
        char buf[64];
        size_t n;

        for (size_t i = 0; i < ELEMENTSOF(v1); i++)
                for (ProxyMode m = PROXY_V1; m <= PROXY_AUTO; m++)
                        check_split(m, v1[i], strlen(v1[i]));
        n = v2(buf, 0x21, 0x11, body, sizeof(body));
        memcpy(buf + n, "GET ", 4);
        for (ProxyMode m = PROXY_V1; m <= PROXY_AUTO; m++)
                check_split(m, buf, n + 4);
        n = v2(buf, 0x31, 0x11, body, sizeof(body));
        check_split(PROXY_AUTO, buf, n);
}
END_TEST

static Suite *proxyproto_suite(void) {
        Suite *suite = suite_create("proxyproto");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_modes);
        tcase_add_test(tc, test_v1_tcp4);
        tcase_add_test(tc, test_v1_tcp6_and_unknown);
        tcase_add_test(tc, test_v1_malformed);
        tcase_add_test(tc, test_v1_longest_line);
        tcase_add_test(tc, test_not_proxy);
        tcase_add_test(tc, test_v2_inet_with_tlvs);
        tcase_add_test(tc, test_v2_inet6_local_unspec_unix);
        tcase_add_test(tc, test_v2_malformed);
        tcase_add_test(tc, test_split_feed_invariance);
        suite_add_tcase(suite, tc);
        return suite;
}

int main(void) {
        SRunner *runner = srunner_create(proxyproto_suite());
        int failed;

        srunner_run_all(runner, CK_NORMAL);
        failed = srunner_ntests_failed(runner);
        srunner_free(runner);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
