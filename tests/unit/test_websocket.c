/* Tests for src/websocket.c: the handshake checks and a server session over a socketpair,
 * its client end speaking through a wslay client context or hand-made frames. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wslay/wslay.h>

#include "gcorn/macro.h"
#include "gcorn/websocket.h"

#define SL(lit) ((Slice) { lit, sizeof(lit) - 1 })
#define HDR(n, v) ((HttpHeader) { SL(n), SL(v) })

static int sv[2] = { -1, -1 };         /* [0] the server's end, [1] the client's */
static WebSocket *ws;

static void setup(void) {
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
        ck_assert_int_eq(websocket_new(1024, &ws), 0);
}

static void teardown(void) {
        ws = websocket_free(ws);
        sv[0] = safe_close(sv[0]);
        sv[1] = safe_close(sv[1]);
}

/* The server reads whatever the client end wrote and feeds it; returns websocket_feed(). */
static int server_pump_in(void) {
        uint8_t buf[8192];
        ssize_t n = read(sv[0], buf, sizeof(buf));

        ck_assert_int_gt(n, 0);
        return websocket_feed(ws, buf, (size_t) n);
}

/* The server writes out all its output; returns how many bytes. */
static size_t server_pump_out(void) {
        const uint8_t *p;
        size_t len;
        ssize_t n;

        websocket_output(ws, &p, &len);
        if (len == 0)
                return 0;
        n = write(sv[0], p, len);
        ck_assert_int_eq(n, (ssize_t) len);
        websocket_output_consumed(ws, (size_t) n);
        websocket_output(ws, &p, &len);
        ck_assert_uint_eq(len, 0);
        return (size_t) n;
}

/* A masked client frame, written to the client end. */
static void client_frame(bool fin, uint8_t rsv, uint8_t opcode, const void *payload, size_t len) {
        static const uint8_t mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
        uint8_t f[256];
        size_t o = 0;

        ck_assert_uint_lt(len, sizeof(f) - 14);
        f[o++] = (uint8_t) ((fin ? 0x80 : 0) | (rsv << 4) | opcode);
        if (len < 126)
                f[o++] = (uint8_t) (0x80 | len);
        else {
                f[o++] = 0x80 | 126;
                f[o++] = (uint8_t) (len >> 8);
                f[o++] = (uint8_t) len;
        }
        memcpy(f + o, mask, 4);
        o += 4;
        for (size_t i = 0; i < len; i++)
                f[o++] = ((const uint8_t *) payload)[i] ^ mask[i % 4];
        ck_assert_int_eq(write(sv[1], f, o), (ssize_t) o);
}

/* What the client end received, raw. */
static size_t client_read(uint8_t *buf, size_t cap) {
        ssize_t n = read(sv[1], buf, cap);

        ck_assert_int_gt(n, 0);
        return (size_t) n;
}

static void expect_message(WebSocketOpcode opcode, const char *data, size_t len, uint16_t code) {
        WebSocketMessage m;

        ck_assert_int_eq(websocket_next(ws, &m), 1);
        ck_assert_int_eq(m.opcode, opcode);
        ck_assert_uint_eq(m.len, len);
        ck_assert(memcmp(m.data, data, len) == 0);
        ck_assert_uint_eq(m.code, code);
        free(m.data);
}

/* A close frame from the server: unmasked, the code, then the reason. */
static void expect_close_frame(uint16_t code) {
        uint8_t buf[256];
        size_t n;

        ck_assert_uint_gt(server_pump_out(), 0);
        n = client_read(buf, sizeof(buf));
        ck_assert_uint_ge(n, 4);
        ck_assert_uint_eq(buf[0], 0x88);
        ck_assert_uint_eq(buf[1] & 0x80, 0);
        ck_assert_uint_eq((buf[2] << 8) | buf[3], code);
        ck_assert(websocket_close_sent(ws));
}

START_TEST(test_text_and_binary) {
        client_frame(true, 0, WSLAY_TEXT_FRAME, "héllo", 6);
        client_frame(true, 0, WSLAY_BINARY_FRAME, "\0\1\2", 3);
        ck_assert_int_eq(server_pump_in(), 0);
        expect_message(WEBSOCKET_TEXT, "héllo", 6, 0);
        expect_message(WEBSOCKET_BINARY, "\0\1\2", 3, 0);
        ck_assert_int_eq(websocket_next(ws, &(WebSocketMessage) {}), 0);
}
END_TEST

START_TEST(test_fragments_joined_around_a_ping) {
        uint8_t buf[64];
        size_t n;

        client_frame(false, 0, WSLAY_TEXT_FRAME, "ab", 2);
        client_frame(true, 0, WSLAY_PING, "pi", 2);     /* control frames may come in between */
        client_frame(false, 0, WSLAY_CONTINUATION_FRAME, "cd", 2);
        client_frame(true, 0, WSLAY_CONTINUATION_FRAME, "ef", 2);
        ck_assert_int_eq(server_pump_in(), 0);
        expect_message(WEBSOCKET_TEXT, "abcdef", 6, 0);
        ck_assert_int_eq(websocket_next(ws, &(WebSocketMessage) {}), 0);
        /* the ping was answered with a pong carrying its payload */
        ck_assert_uint_eq(server_pump_out(), 4);
        n = client_read(buf, sizeof(buf));
        ck_assert_uint_eq(n, 4);
        ck_assert(memcmp(buf, "\x8a\x02pi", 4) == 0);
}
END_TEST

START_TEST(test_server_ping_and_its_pong) {
        uint8_t buf[256], big[126] = { 0 };
        size_t n;

        /* the server's keepalive ping goes out unmasked, with its payload */
        ck_assert_int_eq(websocket_send(ws, WEBSOCKET_PING, "k123", 4), 0);
        ck_assert_uint_eq(server_pump_out(), 6);
        n = client_read(buf, sizeof(buf));
        ck_assert_uint_eq(n, 6);
        ck_assert(memcmp(buf, "\x89\x04k123", 6) == 0);
        /* a control frame carries at most 125 bytes */
        ck_assert_int_eq(websocket_send(ws, WEBSOCKET_PING, big, sizeof(big)), -EINVAL);
        ck_assert_int_eq(websocket_send(ws, WEBSOCKET_PONG, "x", 1), -EINVAL);
        /* the client's pong is handed over, for the keepalive to match; its ping is not */
        client_frame(true, 0, WSLAY_PONG, "k123", 4);
        client_frame(true, 0, WSLAY_PING, "p", 1);
        ck_assert_int_eq(server_pump_in(), 0);
        expect_message(WEBSOCKET_PONG, "k123", 4, 0);
        ck_assert_int_eq(websocket_next(ws, &(WebSocketMessage) {}), 0);
        ck_assert_uint_eq(server_pump_out(), 3);
}
END_TEST

START_TEST(test_frames_split_anywhere) {
        uint8_t all[64];
        ssize_t n;

        /* the frame arrives a byte at a time, as a slow client sends it */
        client_frame(true, 0, WSLAY_TEXT_FRAME, "split", 5);
        n = read(sv[0], all, sizeof(all));
        ck_assert_int_eq(n, 11);
        for (ssize_t i = 0; i < n - 1; i++) {
                ck_assert_int_eq(websocket_feed(ws, all + i, 1), 0);
                ck_assert_int_eq(websocket_next(ws, &(WebSocketMessage) {}), 0);
        }
        ck_assert_int_eq(websocket_feed(ws, all + n - 1, 1), 0);
        expect_message(WEBSOCKET_TEXT, "split", 5, 0);
}
END_TEST

START_TEST(test_close_from_client_echoed) {
        client_frame(true, 0, WSLAY_CONNECTION_CLOSE, "\x03\xe9" "bye", 5);  /* 1001 */
        ck_assert_int_eq(server_pump_in(), 0);
        ck_assert(websocket_close_received(ws));
        expect_message(WEBSOCKET_CLOSE, "bye", 3, 1001);
        expect_close_frame(1001);
        ck_assert_int_eq(websocket_send(ws, WEBSOCKET_TEXT, "late", 4), -EPIPE);
}
END_TEST

START_TEST(test_close_without_code) {
        client_frame(true, 0, WSLAY_CONNECTION_CLOSE, "", 0);
        ck_assert_int_eq(server_pump_in(), 0);
        expect_message(WEBSOCKET_CLOSE, "", 0, 1005);
}
END_TEST

START_TEST(test_message_too_big) {
        static char big[200];

        ws = websocket_free(ws);
        ck_assert_int_eq(websocket_new(100, &ws), 0);
        memset(big, 'x', sizeof(big));
        client_frame(true, 0, WSLAY_BINARY_FRAME, big, sizeof(big));
        ck_assert_int_eq(server_pump_in(), -EPROTO);
        ck_assert_int_eq(websocket_next(ws, &(WebSocketMessage) {}), 0);
        expect_close_frame(1009);
}
END_TEST

START_TEST(test_fragments_too_big_together) {
        static char part[60];

        ws = websocket_free(ws);
        ck_assert_int_eq(websocket_new(100, &ws), 0);
        memset(part, 'y', sizeof(part));
        client_frame(false, 0, WSLAY_BINARY_FRAME, part, sizeof(part));
        client_frame(true, 0, WSLAY_CONTINUATION_FRAME, part, sizeof(part));
        ck_assert_int_eq(server_pump_in(), -EPROTO);
        expect_close_frame(1009);
}
END_TEST

START_TEST(test_invalid_utf8) {
        client_frame(true, 0, WSLAY_TEXT_FRAME, "\xff\xfe", 2);
        ck_assert_int_eq(server_pump_in(), -EPROTO);
        expect_close_frame(1007);
}
END_TEST

START_TEST(test_extension_bit_refused) {
        /* RSV1 is permessage-deflate's, which was declined */
        client_frame(true, 4, WSLAY_TEXT_FRAME, "x", 1);
        ck_assert_int_eq(server_pump_in(), -EPROTO);
        expect_close_frame(1002);
}
END_TEST

START_TEST(test_unmasked_client_frame) {
        ck_assert_int_eq(write(sv[1], "\x81\x01x", 3), 3);
        ck_assert_int_eq(server_pump_in(), -EPROTO);
        expect_close_frame(1002);
}
END_TEST

/* The client's side of the socketpair through a wslay client context. */
typedef struct Client {
        int fd;
        int n_msgs;
        uint8_t opcode[4];
        char data[4][64];
        size_t len[4];
} Client;

static ssize_t client_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *u) {
        Client *c = u;
        ssize_t n = read(c->fd, buf, len);

        (void) flags;
        if (n <= 0) {
                wslay_event_set_error(ctx, n < 0 && errno == EAGAIN ? WSLAY_ERR_WOULDBLOCK : WSLAY_ERR_CALLBACK_FAILURE);
                return -1;
        }
        return n;
}

static ssize_t client_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *u) {
        Client *c = u;

        (void) ctx;
        (void) flags;
        return write(c->fd, data, len);
}

static int client_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *u) {
        (void) ctx;
        (void) u;
        memset(buf, 0x5a, len);
        return 0;
}

static void client_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *u) {
        Client *c = u;

        (void) ctx;
        ck_assert_int_lt(c->n_msgs, 4);
        ck_assert_uint_lt(arg->msg_length, 64);
        c->opcode[c->n_msgs] = arg->opcode;
        memcpy(c->data[c->n_msgs], arg->msg, arg->msg_length);
        c->len[c->n_msgs++] = arg->msg_length;
}

START_TEST(test_server_messages_reach_a_client) {
        static const struct wslay_event_callbacks cb = {
                .recv_callback = client_recv,
                .send_callback = client_send,
                .genmask_callback = client_genmask,
                .on_msg_recv_callback = client_msg,
        };
        Client c = { .fd = sv[1] };
        wslay_event_context_ptr ctx;
        struct wslay_event_msg hello = { .opcode = WSLAY_TEXT_FRAME, .msg = (const uint8_t *) "hello", .msg_length = 5 };

        ck_assert_int_eq(wslay_event_context_client_init(&ctx, &cb, &c), 0);
        /* the client's masked frames reach the server */
        ck_assert_int_eq(wslay_event_queue_msg(ctx, &hello), 0);
        ck_assert_int_eq(wslay_event_send(ctx), 0);
        ck_assert_int_eq(server_pump_in(), 0);
        expect_message(WEBSOCKET_TEXT, "hello", 5, 0);

        ck_assert_int_eq(websocket_send(ws, WEBSOCKET_TEXT, "to you", 6), 0);
        ck_assert_int_eq(websocket_send(ws, WEBSOCKET_BINARY, "\x00\x01", 2), 0);
        ck_assert_int_eq(websocket_close(ws, 1000, "done", 4), 0);
        ck_assert_int_eq(websocket_close(ws, 1000, NULL, 0), -EPIPE);
        server_pump_out();
        ck_assert_int_eq(wslay_event_recv(ctx), 0);
        ck_assert_int_eq(c.n_msgs, 3);
        ck_assert_int_eq(c.opcode[0], WSLAY_TEXT_FRAME);
        ck_assert(c.len[0] == 6 && memcmp(c.data[0], "to you", 6) == 0);
        ck_assert_int_eq(c.opcode[1], WSLAY_BINARY_FRAME);
        ck_assert(c.len[1] == 2 && memcmp(c.data[1], "\x00\x01", 2) == 0);
        ck_assert_int_eq(c.opcode[2], WSLAY_CONNECTION_CLOSE);
        ck_assert_uint_eq(wslay_event_get_status_code_received(ctx), 1000);
        wslay_event_context_free(ctx);
}
END_TEST

START_TEST(test_close_codes_checked) {
        ck_assert_int_eq(websocket_close(ws, 1005, NULL, 0), -EINVAL);
        ck_assert_int_eq(websocket_close(ws, 1006, NULL, 0), -EINVAL);
        ck_assert_int_eq(websocket_close(ws, 2000, NULL, 0), -EINVAL);
        ck_assert_int_eq(websocket_close(ws, 1000, "x", 124), -EINVAL);
        ck_assert_int_eq(websocket_close(ws, 4000, "app", 3), 0);
        expect_close_frame(4000);
}
END_TEST

static Request ws_request(HttpHeader *h, size_t n) {
        return (Request) {
                .method = SL("GET"), .target = SL("/ws"), .path = SL("/ws"), .query = SL(""),
                .http_major = 1, .http_minor = 1, .headers = h, .n_headers = n, .content_length = -1,
        };
}

START_TEST(test_handshake) {
        HttpHeader good[] = {
                HDR("Host", "example.com"), HDR("Upgrade", "WebSocket"), HDR("Connection", "keep-alive, Upgrade"),
                HDR("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), HDR("Sec-WebSocket-Version", "13"),
        };
        Request r = ws_request(good, ELEMENTSOF(good));
        const char *key = NULL, *why = NULL;

        ck_assert(websocket_requested(&r));
        ck_assert_int_eq(websocket_handshake_check(&r, &key, &why), 0);
        ck_assert(memcmp(key, "dGhlIHNhbXBsZSBub25jZQ==", WEBSOCKET_KEY_LEN) == 0);

        r.n_headers = 1;
        ck_assert(!websocket_requested(&r));
}
END_TEST

START_TEST(test_handshake_refusals) {
        static const struct {
                const char *header, *value;     /* replaces the header of that name; value NULL: drops it */
                int want;
        } cases[] = {
                { "Host", NULL, -EBADMSG },
                { "Connection", "keep-alive", -EBADMSG },
                { "Sec-WebSocket-Key", NULL, -EBADMSG },
                { "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=", -EBADMSG },   /* 23 bytes */
                { "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZR==", -EBADMSG },  /* 17 bytes' worth */
                { "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25j*Q==", -EBADMSG },
                { "Sec-WebSocket-Version", "8", -EPROTONOSUPPORT },
                { "Sec-WebSocket-Version", NULL, -EPROTONOSUPPORT },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                HttpHeader h[] = {
                        HDR("Host", "example.com"), HDR("Upgrade", "websocket"), HDR("Connection", "Upgrade"),
                        HDR("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), HDR("Sec-WebSocket-Version", "13"),
                };
                HttpHeader kept[ELEMENTSOF(h)];
                size_t n = 0;
                Request r;
                const char *key = NULL, *why = NULL;

                for (size_t j = 0; j < ELEMENTSOF(h); j++) {
                        if (h[j].name.len == strlen(cases[i].header) &&
                            memcmp(h[j].name.p, cases[i].header, h[j].name.len) == 0) {
                                if (!cases[i].value)
                                        continue;
                                h[j].value = (Slice) { cases[i].value, strlen(cases[i].value) };
                        }
                        kept[n++] = h[j];
                }
                r = ws_request(kept, n);
                ck_assert_msg(websocket_handshake_check(&r, &key, &why) == cases[i].want, "case %zu", i);
                ck_assert_ptr_nonnull(why);
        }
}
END_TEST

START_TEST(test_handshake_post_and_http10) {
        HttpHeader h[] = {
                HDR("Host", "example.com"), HDR("Upgrade", "websocket"), HDR("Connection", "Upgrade"),
                HDR("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), HDR("Sec-WebSocket-Version", "13"),
        };
        Request r = ws_request(h, ELEMENTSOF(h));
        const char *key, *why;

        r.method = SL("POST");
        ck_assert_int_eq(websocket_handshake_check(&r, &key, &why), -EBADMSG);
        r.method = SL("GET");
        r.http_minor = 0;
        ck_assert_int_eq(websocket_handshake_check(&r, &key, &why), -EBADMSG);
}
END_TEST

static Suite *websocket_suite(void) {
        Suite *suite = suite_create("websocket");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_text_and_binary);
        tcase_add_test(tc, test_fragments_joined_around_a_ping);
        tcase_add_test(tc, test_server_ping_and_its_pong);
        tcase_add_test(tc, test_frames_split_anywhere);
        tcase_add_test(tc, test_close_from_client_echoed);
        tcase_add_test(tc, test_close_without_code);
        tcase_add_test(tc, test_message_too_big);
        tcase_add_test(tc, test_fragments_too_big_together);
        tcase_add_test(tc, test_invalid_utf8);
        tcase_add_test(tc, test_extension_bit_refused);
        tcase_add_test(tc, test_unmasked_client_frame);
        tcase_add_test(tc, test_server_messages_reach_a_client);
        tcase_add_test(tc, test_close_codes_checked);
        tcase_add_test(tc, test_handshake);
        tcase_add_test(tc, test_handshake_refusals);
        tcase_add_test(tc, test_handshake_post_and_http10);
        suite_add_tcase(suite, tc);
        return suite;
}

int main(void) {
        SRunner *runner = srunner_create(websocket_suite());
        int failed;

        srunner_run_all(runner, CK_NORMAL);
        failed = srunner_ntests_failed(runner);
        srunner_free(runner);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
