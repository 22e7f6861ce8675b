/* Tests for src/http.c and src/request.c: request heads, body framing, limits, smuggling
 * shapes, and the Gunicorn request corpus. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the statics (buffers) are inspected by the reuse test */
#include "../../src/http.c"

#define S(lit) lit, sizeof(lit) - 1

static const HttpLimits default_limits = {
        .request_line = 4094,
        .fields = 100,
        .field_size = 8190,
        .body = 0,
};

typedef struct Parsed {
        int r;                          /* 1: message complete; negative: error */
        int status;
        char reason[128];
        size_t consumed;                /* bytes of the input this message used */
        char method[64], target[16384], path[16384], query[16384];
        int major, minor;
        size_t n_headers;
        char names[64][64], values[64][16384];
        bool keep_alive, expect, upgrade, chunked, is_head, has_body;
        int64_t content_length;
        char body[65536];
        size_t body_len;
} Parsed;

static void copy_slice(char *dst, size_t cap, Slice s) {
        size_t n = MIN(s.len, cap - 1);

        memcpy(dst, s.p, n);
        dst[n] = 0;
}

/* Parses one message from data, offering the parser at most `step` more bytes each round
 * (as a connection receiving them would) and decoding with an out buffer of out_cap. */
static void parse_one(HttpParser *p, const char *data, size_t len, size_t step, size_t out_cap, Parsed *ret) {
        size_t pos = 0, window = 0;
        const Request *req;
        char out[65536];
        int r;

        memset(ret, 0, sizeof(*ret));
        for (;;) {
                size_t consumed = 0;

                window = MIN(window + step, len);
                r = http_parser_feed_head(p, data + pos, window - pos, &consumed);
                ck_assert_uint_le(consumed, window - pos);
                pos += consumed;
                if (r != 0)
                        break;
                if (window == len) {
                        ret->r = 0;
                        ret->consumed = pos;
                        return;
                }
        }
        if (r < 0) {
                ret->r = r;
                ret->status = http_parser_error_status(p);
                ck_assert_ptr_nonnull(http_parser_error_reason(p));
                snprintf(ret->reason, sizeof(ret->reason), "%s", http_parser_error_reason(p));
                ret->consumed = pos;
                return;
        }
        req = http_parser_request(p);
        ck_assert_ptr_nonnull(req);
        copy_slice(ret->method, sizeof(ret->method), req->method);
        copy_slice(ret->target, sizeof(ret->target), req->target);
        copy_slice(ret->path, sizeof(ret->path), req->path);
        copy_slice(ret->query, sizeof(ret->query), req->query);
        ret->major = req->http_major;
        ret->minor = req->http_minor;
        ret->n_headers = req->n_headers;
        for (size_t i = 0; i < req->n_headers && i < 64; i++) {
                copy_slice(ret->names[i], sizeof(ret->names[i]), req->headers[i].name);
                copy_slice(ret->values[i], sizeof(ret->values[i]), req->headers[i].value);
        }
        ret->keep_alive = req->keep_alive;
        ret->expect = req->expect_continue;
        ret->upgrade = req->upgrade;
        ret->chunked = req->chunked;
        ret->is_head = req->is_head;
        ret->has_body = req->has_body;
        ret->content_length = req->content_length;

        for (;;) {
                size_t consumed = 0, out_len = 0;

                if (window == pos)
                        window = MIN(window + step, len);
                r = http_parser_feed_body(p, data + pos, window - pos, &consumed, out, MIN(out_cap, sizeof(out)),
                                          &out_len);
                ck_assert_uint_le(consumed, window - pos);
                ck_assert_uint_le(out_len, out_cap);
                pos += consumed;
                if (r < 0) {
                        ret->r = r;
                        ret->status = http_parser_error_status(p);
                        snprintf(ret->reason, sizeof(ret->reason), "%s", http_parser_error_reason(p));
                        ret->consumed = pos;
                        return;
                }
                ck_assert_uint_le(ret->body_len + out_len, sizeof(ret->body));
                memcpy(ret->body + ret->body_len, out, out_len);
                ret->body_len += out_len;
                if (r == 1)
                        break;
                if (consumed == 0 && window == len) {
                        ret->r = 0;
                        ret->consumed = pos;
                        return;
                }
                if (consumed == 0)
                        window = MIN(window + step, len);
        }
        ck_assert(http_parser_message_complete(p));
        ck_assert_int_eq(http_parser_body_remaining(p), 0);
        ret->r = 1;
        ret->consumed = pos;
}

static Parsed *parse_with(const HttpLimits *limits, const char *data, size_t len, size_t step, size_t out_cap) {
        static Parsed parsed;
        HttpParser *p = NULL;

        ck_assert_int_eq(http_parser_new(&p, limits), 0);
        parse_one(p, data, len, step, out_cap, &parsed);
        http_parser_free(p);
        return &parsed;
}

static Parsed *parse(const char *data, size_t len) {
        return parse_with(&default_limits, data, len, len, 65536);
}

/* asserts an error answered with `status` and, unless NULL, `reason`; a missing Host must
 * never be what refuses a request that means to test something else */
static void assert_error_reason(const char *data, size_t len, int status, const char *reason) {
        Parsed *r = parse(data, len);

        ck_assert_msg(r->r < 0, "accepted: %.*s", (int) len, data);
        ck_assert_msg(r->status == status, "status %d, want %d: %.*s", r->status, status, (int) len, data);
        if (reason)
                ck_assert_msg(strcmp(r->reason, reason) == 0, "reason \"%s\", want \"%s\": %.*s", r->reason,
                              reason, (int) len, data);
        else
                ck_assert_msg(strcmp(r->reason, "Missing Host header") != 0, "refused for its missing Host: %.*s",
                              (int) len, data);
}

static void assert_error(const char *data, size_t len, int status) {
        assert_error_reason(data, len, status, NULL);
}

#define ASSERT_ERROR_REASON(lit, status, reason) assert_error_reason(S(lit), status, reason)

#define ASSERT_ERROR(lit, status) assert_error(S(lit), status)

START_TEST(test_simple_get) {
        Parsed *r = parse(S("GET /a%20b/c?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nX-Mixed-Case: Value  \r\n"
                            "accept:\t*/*\r\nEmpty:\r\n\r\n"));

        ck_assert_int_eq(r->r, 1);
        ck_assert_str_eq(r->method, "GET");
        ck_assert_str_eq(r->target, "/a%20b/c?x=1&y=2");
        ck_assert_str_eq(r->path, "/a%20b/c");
        ck_assert_str_eq(r->query, "x=1&y=2");
        ck_assert_int_eq(r->major, 1);
        ck_assert_int_eq(r->minor, 1);
        ck_assert_uint_eq(r->n_headers, 4);
        ck_assert_str_eq(r->names[0], "Host");
        ck_assert_str_eq(r->values[0], "example.com");
        ck_assert_str_eq(r->names[1], "X-Mixed-Case");
        ck_assert_str_eq(r->values[1], "Value");
        ck_assert_str_eq(r->names[2], "accept");
        ck_assert_str_eq(r->values[2], "*/*");
        ck_assert_str_eq(r->names[3], "Empty");
        ck_assert_str_eq(r->values[3], "");
        ck_assert(r->keep_alive);
        ck_assert(!r->has_body);
        ck_assert(!r->is_head);
        ck_assert(!r->expect);
        ck_assert_int_eq(r->content_length, -1);
        ck_assert_uint_eq(r->consumed, strlen("GET /a%20b/c?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nX-Mixed-Case: "
                                              "Value  \r\naccept:\t*/*\r\nEmpty:\r\n\r\n"));
}
END_TEST

START_TEST(test_find_header) {
        static const char req[] = "GET / HTTP/1.1\r\nHost: h\r\nX-One: 1\r\nx-two: 2\r\nX-ONE: again\r\n\r\n";
        HttpParser *p = NULL;
        const HttpHeader *h;
        size_t consumed;

        ck_assert_int_eq(http_parser_new(&p, &default_limits), 0);
        ck_assert_ptr_null(http_parser_request(p));
        ck_assert_int_eq(http_parser_feed_head(p, S(req), &consumed), 1);
        h = request_find_header(http_parser_request(p), "x-one");
        ck_assert_ptr_nonnull(h);
        ck_assert_int_eq(h->value.len, 1);
        ck_assert_int_eq(h->value.p[0], '1');
        h = request_find_header(http_parser_request(p), "X-TWO");
        ck_assert_ptr_nonnull(h);
        ck_assert_int_eq(h->value.p[0], '2');
        ck_assert_ptr_null(request_find_header(http_parser_request(p), "X-Three"));
        ck_assert_ptr_null(request_find_header(http_parser_request(p), "X-On"));
        http_parser_free(p);
}
END_TEST

/* Every split of the input must give the same result as one whole feed. */
static void assert_split_invariant(const char *data, size_t len) {
        static Parsed whole;
        size_t steps[] = { 1, 2, 3, 7, 13, 64 };
        size_t caps[] = { 1, 2, 5, 65536 };

        whole = *parse(data, len);
        ck_assert_int_eq(whole.r, 1);
        for (size_t s = 0; s < ELEMENTSOF(steps); s++)
                for (size_t c = 0; c < ELEMENTSOF(caps); c++) {
                        Parsed *r = parse_with(&default_limits, data, len, steps[s], caps[c]);

                        ck_assert_int_eq(r->r, 1);
                        ck_assert_uint_eq(r->consumed, whole.consumed);
                        ck_assert_str_eq(r->method, whole.method);
                        ck_assert_str_eq(r->target, whole.target);
                        ck_assert_uint_eq(r->n_headers, whole.n_headers);
                        for (size_t i = 0; i < r->n_headers; i++) {
                                ck_assert_str_eq(r->names[i], whole.names[i]);
                                ck_assert_str_eq(r->values[i], whole.values[i]);
                        }
                        ck_assert_uint_eq(r->body_len, whole.body_len);
                        ck_assert(memcmp(r->body, whole.body, r->body_len) == 0);
                }
}

START_TEST(test_split_feeding) {
        assert_split_invariant(S("GET /split?me=1 HTTP/1.1\r\nHost: h\r\nX-Long-Header-Name: some longer value\r\n\r\n"));
        assert_split_invariant(S("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world"));
        assert_split_invariant(S("POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "5;name=value;quoted=\"a b\"\r\nhello\r\n6\r\n world\r\n"
                                 "0\r\nX-Trailer: yes\r\nVary: *\r\n\r\n"));
}
END_TEST

START_TEST(test_pipelined) {
        static const char two[] = "POST /first HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                                  "GET /second HTTP/1.1\r\nHost: h\r\n\r\n"
                                  "POST /third HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n"
                                  "GET /fourth HTTP/1.0\r\n\r\n";
        const char *expect[] = { "/first", "/second", "/third", "/fourth" };
        const char *bodies[] = { "abc", "", "xyz", "" };
        HttpParser *p = NULL;
        size_t pos = 0;
        static Parsed r;

        ck_assert_int_eq(http_parser_new(&p, &default_limits), 0);
        for (size_t i = 0; i < 4; i++) {
                parse_one(p, two + pos, sizeof(two) - 1 - pos, sizeof(two), 65536, &r);
                ck_assert_int_eq(r.r, 1);
                ck_assert_str_eq(r.target, expect[i]);
                ck_assert_uint_eq(r.body_len, strlen(bodies[i]));
                ck_assert(memcmp(r.body, bodies[i], r.body_len) == 0);
                pos += r.consumed;
                /* the head alone never reaches into the next request */
                http_parser_reset(p);
        }
        ck_assert_uint_eq(pos, sizeof(two) - 1);
        http_parser_free(p);
}
END_TEST

START_TEST(test_head_consumed_exact) {
        static const char req[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET";
        HttpParser *p = NULL;
        size_t consumed = 0, out_len = 0;
        char out[64];

        ck_assert_int_eq(http_parser_new(&p, &default_limits), 0);
        ck_assert_int_eq(http_parser_feed_head(p, S(req), &consumed), 1);
        ck_assert_uint_eq(consumed, sizeof(req) - 1 - strlen("helloGET"));
        ck_assert_int_eq(http_parser_body_remaining(p), 5);
        ck_assert(!http_parser_message_complete(p));
        /* a second feed of the head is a no-op */
        ck_assert_int_eq(http_parser_feed_head(p, S(req), &consumed), 1);
        ck_assert_uint_eq(consumed, 0);
        ck_assert_int_eq(http_parser_feed_body(p, S("hel"), &consumed, out, sizeof(out), &out_len), 0);
        ck_assert_uint_eq(consumed, 3);
        ck_assert_int_eq(http_parser_body_remaining(p), 2);
        ck_assert_int_eq(http_parser_feed_body(p, S("loGET"), &consumed, out, sizeof(out), &out_len), 1);
        ck_assert_uint_eq(consumed, 2);
        ck_assert_uint_eq(out_len, 2);
        ck_assert(http_parser_message_complete(p));
        /* no body: complete at once, nothing consumed */
        http_parser_reset(p);
        ck_assert_int_eq(http_parser_feed_head(p, S("GET / HTTP/1.1\r\nHost: h\r\n\r\nGET"), &consumed), 1);
        ck_assert_uint_eq(consumed, strlen("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
        ck_assert(http_parser_message_complete(p));
        ck_assert_int_eq(http_parser_feed_body(p, S("GET"), &consumed, out, sizeof(out), &out_len), 1);
        ck_assert_uint_eq(consumed, 0);
        ck_assert_uint_eq(out_len, 0);
        http_parser_free(p);
}
END_TEST

START_TEST(test_head_keepalive_expect) {
        Parsed *r;

        r = parse(S("HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n"));
        ck_assert(r->is_head);
        ck_assert(r->keep_alive);
        r = parse(S("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
        ck_assert(!r->keep_alive);
        r = parse(S("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, Close\r\n\r\n"));
        ck_assert(!r->keep_alive);
        r = parse(S("GET / HTTP/1.0\r\n\r\n"));
        ck_assert(!r->keep_alive);
        ck_assert_int_eq(r->minor, 0);
        r = parse(S("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        ck_assert(r->keep_alive);
        r = parse(S("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx"));
        ck_assert(r->expect);
        ck_assert(r->keep_alive);
        r = parse(S("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx"));
        ck_assert(!r->expect);
        r = parse(S("POST / HTTP/1.1\r\nHost: h\r\nExpect: something-else\r\nContent-Length: 1\r\n\r\nx"));
        ck_assert(!r->expect);
        r = parse(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
        ck_assert_int_eq(r->r, 1);
        ck_assert(r->keep_alive);
        /* a higher 1.x minor version is served as 1.1 would be */
        r = parse(S("GET / HTTP/1.2\r\nHost: h\r\n\r\n"));
        ck_assert_int_eq(r->r, 1);
        ck_assert_int_eq(r->minor, 2);
        ck_assert(r->keep_alive);
}
END_TEST

START_TEST(test_bodies) {
        Parsed *r;

        r = parse_with(&default_limits, S("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789"), 1000, 3);
        ck_assert_int_eq(r->r, 1);
        ck_assert(r->has_body);
        ck_assert_int_eq(r->content_length, 10);
        ck_assert_uint_eq(r->body_len, 10);
        ck_assert(memcmp(r->body, "0123456789", 10) == 0);

        r = parse(S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"));
        ck_assert_int_eq(r->r, 1);
        ck_assert(!r->has_body);
        ck_assert_int_eq(r->content_length, 0);

        r = parse_with(&default_limits,
                       S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "A; ext\r\n0123456789\r\n1;a=\"b;c\"\r\n!\r\n000\r\nTrailer-One: 1\r\n\r\n"),
                       1000, 4);
        ck_assert_int_eq(r->r, 1);
        ck_assert(r->chunked);
        ck_assert_uint_eq(r->body_len, 11);
        ck_assert(memcmp(r->body, "0123456789!", 11) == 0);

        /* incomplete bodies want more */
        r = parse(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"));
        ck_assert_int_eq(r->r, 0);
        r = parse(S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhel"));
        ck_assert_int_eq(r->r, 0);
        ck_assert_uint_eq(r->body_len, 3);
}
END_TEST

START_TEST(test_body_remaining_chunked) {
        static const char head[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
        HttpParser *p = NULL;
        size_t consumed, out_len;
        char out[16];

        ck_assert_int_eq(http_parser_new(&p, &default_limits), 0);
        ck_assert_int_eq(http_parser_feed_head(p, S(head), &consumed), 1);
        ck_assert_int_eq(http_parser_body_remaining(p), -1);
        /* out_cap 0: nothing happens */
        ck_assert_int_eq(http_parser_feed_body(p, S("3\r\nabc\r\n"), &consumed, out, 0, &out_len), 0);
        ck_assert_uint_eq(consumed, 0);
        ck_assert_int_eq(http_parser_feed_body(p, S("3\r\nabc\r\n0\r\n\r\nNEXT"), &consumed, out, sizeof(out), &out_len),
                         1);
        ck_assert_uint_eq(consumed, strlen("3\r\nabc\r\n0\r\n\r\n"));
        ck_assert_uint_eq(out_len, 3);
        ck_assert_int_eq(http_parser_body_remaining(p), 0);
        http_parser_free(p);
}
END_TEST

static void make_request_line(char *buf, size_t line_len) {
        /* "GET /aaaa HTTP/1.1" of exactly line_len bytes, then CRLF CRLF */
        size_t path = line_len - strlen("GET  HTTP/1.1");

        strcpy(buf, "GET /");
        memset(buf + 5, 'a', path - 1);
        strcpy(buf + 4 + path, " HTTP/1.1\r\nHost: h\r\n\r\n");
}

START_TEST(test_limit_request_line) {
        HttpLimits limits = default_limits;
        static char buf[10000];
        HttpParser *p = NULL;
        size_t consumed;
        Parsed *r;

        limits.request_line = 100;
        make_request_line(buf, 100);
        r = parse_with(&limits, buf, strlen(buf), 1, 64);
        ck_assert_int_eq(r->r, 1);
        make_request_line(buf, 101);
        r = parse_with(&limits, buf, strlen(buf), 1, 64);
        ck_assert_int_eq(r->r, -EBADMSG);
        ck_assert_int_eq(r->status, 414);

        /* a huge line fails before its end arrives */
        ck_assert_int_eq(http_parser_new(&p, &limits), 0);
        memset(buf, 'a', 200);
        memcpy(buf, "GET /", 5);
        ck_assert_int_eq(http_parser_feed_head(p, buf, 102, &consumed), -EBADMSG);
        ck_assert_int_eq(http_parser_error_status(p), 414);
        ck_assert_str_eq(http_parser_error_reason(p), "Request Line is too large");
        /* errors stick */
        ck_assert_int_eq(http_parser_feed_head(p, S("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), &consumed), -EBADMSG);
        ck_assert_int_eq(http_parser_error_status(p), 414);
        http_parser_reset(p);
        ck_assert_int_eq(http_parser_feed_head(p, S("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), &consumed), 1);
        http_parser_free(p);

        /* 0 is Gunicorn's ceiling, 8190 */
        limits.request_line = 0;
        make_request_line(buf, 8190);
        ck_assert_int_eq(parse_with(&limits, buf, strlen(buf), 4096, 64)->r, 1);
        make_request_line(buf, 8191);
        ck_assert_int_eq(parse_with(&limits, buf, strlen(buf), 4096, 64)->status, 414);
}
END_TEST

START_TEST(test_limit_fields) {
        HttpLimits limits = default_limits;
        static char buf[4096];
        size_t n;

        limits.fields = 5;
        for (size_t count = 5; count <= 6; count++) {
                /* Host is one of them */
                n = (size_t) sprintf(buf, "GET / HTTP/1.1\r\nHost: h\r\n");
                for (size_t i = 1; i < count; i++)
                        n += (size_t) sprintf(buf + n, "H%zu: v\r\n", i);
                n += (size_t) sprintf(buf + n, "\r\n");
                if (count == 5)
                        ck_assert_int_eq(parse_with(&limits, buf, n, 1, 64)->r, 1);
                else {
                        Parsed *r = parse_with(&limits, buf, n, 1, 64);

                        ck_assert_int_eq(r->r, -EBADMSG);
                        ck_assert_int_eq(r->status, 431);
                }
        }
}
END_TEST

START_TEST(test_limit_field_size) {
        HttpLimits limits = default_limits;
        static char buf[4096];
        Parsed *r;

        /* Gunicorn counts "Name: value" plus its CRLF */
        limits.field_size = 20;
        sprintf(buf, "GET / HTTP/1.1\r\nHost: h\r\nName: 0123456789ab\r\n\r\n");   /* 18 + 2 */
        r = parse_with(&limits, buf, strlen(buf), 1, 64);
        ck_assert_int_eq(r->r, 1);
        sprintf(buf, "GET / HTTP/1.1\r\nHost: h\r\nName: 0123456789abc\r\n\r\n");  /* 19 + 2 */
        r = parse_with(&limits, buf, strlen(buf), 1, 64);
        ck_assert_int_eq(r->r, -EBADMSG);
        ck_assert_int_eq(r->status, 431);
        r = parse_with(&limits, buf, strlen(buf), 4096, 64);
        ck_assert_int_eq(r->status, 431);

        /* 0 is Gunicorn's default, 8190 */
        limits.field_size = 0;
        memset(buf, 'x', sizeof(buf));
        memcpy(buf, "GET / HTTP/1.0\r\nX: ", 19);
        memcpy(buf + 19 + 4000, "\r\n\r\n", 4);
        ck_assert_int_eq(parse_with(&limits, buf, 19 + 4004, 512, 64)->r, 1);
}
END_TEST

START_TEST(test_limit_body) {
        HttpLimits limits = default_limits;
        Parsed *r;

        limits.body = 10;
        r = parse_with(&limits, S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789"), 100, 100);
        ck_assert_int_eq(r->r, 1);
        r = parse_with(&limits, S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n0123456789a"), 100, 100);
        ck_assert_int_eq(r->r, -EFBIG);
        ck_assert_int_eq(r->status, 413);
        r = parse_with(&limits, S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n"),
                       3, 2);
        ck_assert_int_eq(r->r, 1);
        ck_assert_uint_eq(r->body_len, 10);
        r = parse_with(&limits, S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n6\r\n56789a\r\n0\r\n\r\n"),
                       3, 2);
        ck_assert_int_eq(r->r, -EFBIG);
        ck_assert_int_eq(r->status, 413);
        ck_assert_uint_le(r->body_len, 10);
}
END_TEST

START_TEST(test_malformed_heads) {
        ASSERT_ERROR("GET / HTTP/1.1\r\nHost: h\r\nLong: one\r\n two\r\n\r\n", 400);                  /* obs-fold */
        ASSERT_ERROR("GET / HTTP/1.1\r\nHost: h\r\nLong: one\r\n\ttwo\r\n\r\n", 400);
        ASSERT_ERROR("GET / HTTP/1.1\r\nHost: h\r\n: empty\r\n\r\n", 400);
        ASSERT_ERROR("GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n", 400);
        ASSERT_ERROR("GET / HTTP/1.1\r\nHost: h\r\nName : x\r\n\r\n", 400);
        ASSERT_ERROR("GET / HTTP/1.1\r\nHost: h\r\nNa\"me: x\r\n\r\n", 400);
        ASSERT_ERROR("GET / HTTP/1.1\r\nHost: h\r\nA: x\x7fy\r\n\r\n", 400);
        ASSERT_ERROR("GET / HTTP/1.1\r\nHost: h\r\nA: x\x07y\r\n\r\n", 400);
        assert_error(S("GET / HTTP/1.1\r\nHost: h\r\nA: x\0y\r\n\r\n"), 400);
        ASSERT_ERROR("GET / HTTP/1.1\r\nHost: h\r\nA: x\ry\r\n\r\n", 400);
        ASSERT_ERROR("GET / HTTP/1.1\r\nHost: h\r\nA: x\nContent-Length: 5\r\n\r\nhello", 400);  /* bare LF */
        ASSERT_ERROR("GET / HTTP/1.1\nA: x\r\n\r\n", 400);
        ASSERT_ERROR("GET / HTTP/1.1\r\nHost: h\r\nA: x\r\n\n", 400);
        ASSERT_ERROR("GET / HTTP/1.1\r\nHost: h\r\nNo colon\r\n\r\n", 400);
        ASSERT_ERROR("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
}
END_TEST

START_TEST(test_request_lines) {
        Parsed *r;

        ASSERT_ERROR("GET\r\n\r\n", 400);
        ASSERT_ERROR("GET /\r\n\r\n", 400);
        ASSERT_ERROR("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
        ASSERT_ERROR("GET / HTTP/1.1 \r\n\r\n", 400);
        ASSERT_ERROR("get / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
        ASSERT_ERROR("GE / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
        ASSERT_ERROR("ABCDEFGHIJKLMNOPQRSTU / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
        ASSERT_ERROR("G#T / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
        ASSERT_ERROR("GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
        ASSERT_ERROR("GET / HTTP/1.1\n\r\n", 400);
        ASSERT_ERROR("GET / FTP/1.1\r\n\r\n", 400);
        ASSERT_ERROR("GET / HTTP/11\r\n\r\n", 400);
        ASSERT_ERROR("GET / HTTP/1.10\r\n\r\n", 400);
        ASSERT_ERROR("GET / http/1.1\r\n\r\n", 400);
        ASSERT_ERROR("GET / HTTP/2.0\r\n\r\n", 505);
        ASSERT_ERROR("GET / HTTP/0.9\r\n\r\n", 505);
        ASSERT_ERROR("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505);
        ASSERT_ERROR("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400);
        ASSERT_ERROR("GET foo/bar HTTP/1.1\r\nHost: h\r\n\r\n", 400);
        ASSERT_ERROR("GET example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
        ASSERT_ERROR("GET http://[::1/x HTTP/1.1\r\nHost: h\r\n\r\n", 400);

        /* any upper-case token method, as Gunicorn */
        r = parse(S("-BLARGH /foo HTTP/1.1\r\nHost: h\r\n\r\n"));
        ck_assert_int_eq(r->r, 1);
        ck_assert_str_eq(r->method, "-BLARGH");
        r = parse(S("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"));
        ck_assert_int_eq(r->r, 1);
        ck_assert_str_eq(r->path, "*");
        /* CONNECT is an ordinary request; the path is what urlsplit() makes of it */
        r = parse(S("CONNECT example.com:443 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"));
        ck_assert_int_eq(r->r, 1);
        ck_assert_str_eq(r->target, "example.com:443");
        ck_assert_str_eq(r->path, "443");
        ck_assert_uint_eq(r->body_len, 2);
        r = parse(S("CONNECT [::1]:443 HTTP/1.1\r\nHost: h\r\n\r\n"));
        ck_assert_str_eq(r->path, "[::1]:443");
        /* leading empty lines are skipped */
        r = parse(S("\r\n\r\nGET /after-blank HTTP/1.1\r\nHost: h\r\n\r\n"));
        ck_assert_int_eq(r->r, 1);
        ck_assert_str_eq(r->target, "/after-blank");
}
END_TEST

START_TEST(test_targets) {
        Parsed *r;

        r = parse(S("GET http://user:pass@example.com:8080/p/q?a=b#frag HTTP/1.1\r\nHost: h\r\n\r\n"));
        ck_assert_int_eq(r->r, 1);
        ck_assert_str_eq(r->target, "http://user:pass@example.com:8080/p/q?a=b#frag");
        ck_assert_str_eq(r->path, "/p/q");
        ck_assert_str_eq(r->query, "a=b");
        r = parse(S("GET https://[::1]:8443 HTTP/1.1\r\nHost: h\r\n\r\n"));
        ck_assert_int_eq(r->r, 1);
        ck_assert_str_eq(r->path, "");
        r = parse(S("GET /p#f?notquery HTTP/1.1\r\nHost: h\r\n\r\n"));
        ck_assert_str_eq(r->path, "/p");
        ck_assert_str_eq(r->query, "");
        r = parse(S("GET ///keep//slashes?x HTTP/1.1\r\nHost: h\r\n\r\n"));
        ck_assert_str_eq(r->path, "///keep//slashes");
        ck_assert_str_eq(r->query, "x");
        r = parse(S("GET /with_\"quotes\"?foo=\"bar\" HTTP/1.1\r\nHost: h\r\n\r\n"));
        ck_assert_str_eq(r->path, "/with_\"quotes\"");
        r = parse(S("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n"));
        ck_assert_int_eq(r->r, 1);
        ck_assert_str_eq(r->path, "/caf\xc3\xa9");
}
END_TEST

START_TEST(test_smuggling) {
        ASSERT_ERROR("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
        ASSERT_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", 400);
        ASSERT_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400);
        ASSERT_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n", 400);
        ASSERT_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400);
        ASSERT_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
        ASSERT_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: foo, chunked\r\n\r\n0\r\n\r\n", 501);
        /* an empty last coding: chunked is not last (Gunicorn: 501) */
        ASSERT_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", 400);
        ASSERT_ERROR("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
        ASSERT_ERROR("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 2\r\n\r\nab", 400);
        ASSERT_ERROR("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\na", 400);
        ASSERT_ERROR("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\na", 400);
        ASSERT_ERROR("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\na", 400);
        ASSERT_ERROR("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -0\r\n\r\n", 400);
        ASSERT_ERROR("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\nab", 400);
        ASSERT_ERROR("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", 400);
        ASSERT_ERROR("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400);
        ASSERT_ERROR("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na", 400);
        ASSERT_ERROR("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400);
        /* surrounding blanks are fine */
        ck_assert_int_eq(parse(S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:  3 \r\n\r\nabc"))->r, 1);
}
END_TEST

START_TEST(test_bad_chunks) {
        static const char *bodies[] = {
                "6_0\r\n world\r\n0\r\n\r\n",
                "0 \r\n\r\n",
                " 0\r\n\r\n",
                "5\n;\r\nhello\r\n0\r\n\r\n",
                "\r\nhello\r\n0\r\n\r\n",
                "-5\r\nhello\r\n0\r\n\r\n",
                "+5\r\nhello\r\n0\r\n\r\n",
                "5;ext=val\rue\r\nhello\r\n0\r\n\r\n",
                "5\r\nhelloXX0\r\n\r\n",
                "5\r\nhello\n0\r\n\r\n",
                "ffffffffffffffffffff\r\n",
                "0\r\nContent-Length: 99\r\n\r\n",
                "0\r\nHost: evil\r\n\r\n",
                "0\r\nTransfer-Encoding: chunked\r\n\r\n",
                "0\r\nX: a\r\n folded\r\n\r\n",
                "0\r\nX: a\nY: b\r\n\r\n",
                "0\r\n: empty\r\n\r\n",
        };
        static char buf[512];

        for (size_t i = 0; i < ELEMENTSOF(bodies); i++) {
                Parsed *r;
                size_t n = (size_t) snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n%s",
                                             bodies[i]);

                for (size_t step = 1; step <= n; step += n - 1) {
                        r = parse_with(&default_limits, buf, n, step, 4);
                        ck_assert_msg(r->r == -EBADMSG, "chunked body %zu accepted (step %zu): %d", i, step, r->r);
                        ck_assert_int_eq(r->status, 400);
                }
        }
}
END_TEST

/* RFC 9112 3.2: HTTP/1.1 needs exactly one Host, and it must be an RFC 3986 host[:port]. */
START_TEST(test_host) {
        static const char *const good[] = {
                "example.com", "example.com:8080", "0.0.0.0=5000", "127.0.0.1", "127.0.0.1:", "[::1]",
                "[::1]:443", "[::ffff:192.0.2.1]:80", "[v1.fe:x]", "a%20b", "xn--bcher-kva.example",
                "sub_delims!$&'()*+,;=", "~user-name.", "", ":80",
        };
        static const char *const bad[] = {
                "a b", "a/b", "a@b", "a?b", "a#b", "a:b", "a:80x", "a:80:90", "a%2", "a%zz", "[::1", "::1",
                "[::1]x", "[::1]:8x", "[::g]", "[1.2.3.4]", "[v1]", "[v.x]", "[vz.x]", "[fe80::1%25eth0]",
                "caf\xc3\xa9", "a\"b", "[]",
        };
        static char buf[512];
        Parsed *r;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                size_t n = (size_t) snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", good[i]);

                r = parse(buf, n);
                ck_assert_msg(r->r == 1, "Host [%s] refused: %d %s", good[i], r->status, r->reason);
                /* surrounding blanks are not part of the value */
                n = (size_t) snprintf(buf, sizeof(buf), "GET / HTTP/1.0\r\nHost: \t%s \r\n\r\n", good[i]);
                ck_assert_msg(parse(buf, n)->r == 1, "Host [%s] refused on HTTP/1.0", good[i]);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                for (int minor = 0; minor <= 1; minor++) {
                        size_t n = (size_t) snprintf(buf, sizeof(buf), "GET / HTTP/1.%d\r\nHost: %s\r\n\r\n", minor,
                                                     bad[i]);

                        assert_error_reason(buf, n, 400, "Invalid Host header");
                }

        ASSERT_ERROR_REASON("GET / HTTP/1.1\r\n\r\n", 400, "Missing Host header");
        ASSERT_ERROR_REASON("GET / HTTP/1.1\r\nX-Host: a\r\nHosts: b\r\n\r\n", 400, "Missing Host header");
        ASSERT_ERROR_REASON("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", 400, "Missing Host header");
        /* the absolute form names the host too, but Host is still required */
        ASSERT_ERROR_REASON("GET http://example.com/ HTTP/1.1\r\n\r\n", 400, "Missing Host header");
        ASSERT_ERROR_REASON("GET / HTTP/1.2\r\n\r\n", 400, "Missing Host header");
        ASSERT_ERROR_REASON("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, "Duplicate Host header");
        ASSERT_ERROR_REASON("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400, "Duplicate Host header");
        ASSERT_ERROR_REASON("GET / HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n", 400, "Duplicate Host header");

        /* HTTP/1.0 had no Host */
        r = parse(S("GET / HTTP/1.0\r\n\r\n"));
        ck_assert_int_eq(r->r, 1);
        r = parse(S("GET / HTTP/1.1\r\nhOsT: example.com\r\n\r\n"));
        ck_assert_int_eq(r->r, 1);
        ck_assert_str_eq(r->values[0], "example.com");
}
END_TEST

/* RFC 9112 6.1 and 6.3: chunked must be the last coding (else 400), and a coding gcorn does
 * not decode gets 501 rather than reaching the app still encoded. */
START_TEST(test_transfer_codings) {
        static const char *const undecoded[] = {
                "gzip, chunked", "deflate, chunked", "compress, chunked", "x-gzip, chunked", "br, chunked",
                "GZIP,chunked", "identity, gzip, chunked", "foo, chunked", ", chunked",
        };
        static const char *const not_last[] = {
                "gzip", "deflate", "identity", "foo", "chunked, gzip", "chunked, identity", "gzip, identity",
                "chunked,",
        };
        static char buf[512];
        Parsed *r;

        for (size_t i = 0; i < ELEMENTSOF(undecoded); i++) {
                size_t n = (size_t) snprintf(buf, sizeof(buf),
                                             "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: %s\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                                             undecoded[i]);

                assert_error_reason(buf, n, 501, "Unsupported transfer coding");
        }
        for (size_t i = 0; i < ELEMENTSOF(not_last); i++) {
                size_t n = (size_t) snprintf(buf, sizeof(buf),
                                             "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: %s\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                                             not_last[i]);

                assert_error_reason(buf, n, 400, "Transfer-Encoding without chunked last");
                /* nor does a Content-Length frame it */
                n = (size_t) snprintf(buf, sizeof(buf),
                                      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: %s\r\nContent-Length: 5\r\n\r\nhello",
                                      not_last[i]);
                assert_error_reason(buf, n, 400, "Transfer-Encoding without chunked last");
        }
        /* the codings of every line, in order */
        ASSERT_ERROR_REASON("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "0\r\n\r\n", 501, "Unsupported transfer coding");
        ASSERT_ERROR_REASON("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"
                            "0\r\n\r\n", 400, "Transfer-Encoding without chunked last");
        ASSERT_ERROR_REASON("POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\nhello", 400,
                            "Transfer-Encoding without chunked last");

        /* identity is no coding at all */
        r = parse(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"));
        ck_assert_int_eq(r->r, 1);
        ck_assert(r->chunked);
        ck_assert(r->keep_alive);
        ck_assert_uint_eq(r->body_len, 5);
        r = parse(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"));
        ck_assert_int_eq(r->r, 1);
        ck_assert_uint_eq(r->body_len, 5);
}
END_TEST

/* RFC 9112 7.1.1: blanks (BWS) may come between a chunk size and its extensions. */
/* A fault after chunk data: the data goes out first, then the fault, however the bytes were
 * split (found by fuzz_http: whole and byte-by-byte feeds disagreed). */
START_TEST(test_chunk_fault_after_data) {
        static const char head[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
        static const char body[] = "5\r\nabcdeXX";
        HttpParser *p = NULL;
        size_t used = 0, consumed = 0, out_len = 0;
        char out[64];

        ck_assert_int_eq(http_parser_new(&p, &default_limits), 0);
        ck_assert_int_eq(http_parser_feed_head(p, head, strlen(head), &used), 1);
        ck_assert_int_eq(http_parser_feed_body(p, body, strlen(body), &consumed, out, sizeof(out), &out_len), 0);
        ck_assert_uint_eq(out_len, 5);
        ck_assert(memcmp(out, "abcde", 5) == 0);
        ck_assert_int_eq(http_parser_feed_body(p, body + consumed, strlen(body) - consumed, &consumed, out,
                                               sizeof(out), &out_len),
                         -EBADMSG);
        ck_assert_uint_eq(out_len, 0);
        ck_assert_int_eq(http_parser_error_status(p), 400);
        http_parser_free(p);
}
END_TEST

START_TEST(test_chunk_ext_bws) {
        static const char *const good[] = {
                "5 ;ext\r\nhello\r\n0\r\n\r\n",
                "5\t;ext\r\nhello\r\n0\r\n\r\n",
                "5 \t ;a=b;c=\"d e\"\r\nhello\r\n0 ;last\r\n\r\n",
                "5 ;\r\nhello\r\n0\r\n\r\n",
        };
        /* as Gunicorn: blanks before the size, or after it with no extension, stay refused */
        static const char *const bad[] = {
                "5 \r\nhello\r\n0\r\n\r\n",
                "5\t\r\nhello\r\n0\r\n\r\n",
                " 5;ext\r\nhello\r\n0\r\n\r\n",
                "5 x;ext\r\nhello\r\n0\r\n\r\n",
                "5 5;ext\r\nhello\r\n0\r\n\r\n",
                " ;ext\r\nhello\r\n0\r\n\r\n",
        };
        static char buf[512];

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                size_t n = (size_t) snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n%s",
                                             good[i]);

                for (size_t step = 1; step <= n; step += n - 1) {
                        Parsed *r = parse_with(&default_limits, buf, n, step, 4);

                        ck_assert_msg(r->r == 1, "chunked body %zu refused (step %zu): %s", i, step, r->reason);
                        ck_assert_uint_eq(r->body_len, 5);
                        ck_assert(memcmp(r->body, "hello", 5) == 0);
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                size_t n = (size_t) snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n%s",
                                             bad[i]);

                for (size_t step = 1; step <= n; step += n - 1) {
                        Parsed *r = parse_with(&default_limits, buf, n, step, 4);

                        ck_assert_msg(r->r == -EBADMSG, "chunked body %zu accepted (step %zu)", i, step);
                        ck_assert_int_eq(r->status, 400);
                }
        }
}
END_TEST

/* Feeds data[0..len) to a new parser in chunks: all at once (seed 0), byte by byte (seed 1)
 * or in random sizes. Fills *ret as parse_one() does for the head. */
static void feed_head_split(const HttpLimits *limits, const char *data, size_t len, unsigned seed, Parsed *ret) {
        HttpParser *p = NULL;
        size_t pos = 0, window = 0;
        int r = 0;

        memset(ret, 0, sizeof(*ret));
        ck_assert_int_eq(http_parser_new(&p, limits), 0);
        while (r == 0 && window < len) {
                size_t consumed = 0;

                window += seed == 0 ? len : seed == 1 ? 1 : 1 + (size_t) (rand_r(&seed) % 9);
                window = MIN(window, len);
                r = http_parser_feed_head(p, data + pos, window - pos, &consumed);
                ck_assert_uint_le(consumed, window - pos);
                pos += consumed;
        }
        ret->r = r;
        ret->consumed = pos;
        if (r < 0) {
                const char *reason = http_parser_error_reason(p);

                ck_assert_ptr_nonnull(reason);
                ret->status = http_parser_error_status(p);
                snprintf(ret->reason, sizeof(ret->reason), "%s", reason ? reason : "");
        } else if (r == 1) {
                const Request *req = http_parser_request(p);

                copy_slice(ret->method, sizeof(ret->method), req->method);
                copy_slice(ret->target, sizeof(ret->target), req->target);
                ret->n_headers = req->n_headers;
                for (size_t i = 0; i < req->n_headers && i < 64; i++) {
                        copy_slice(ret->names[i], sizeof(ret->names[i]), req->headers[i].name);
                        copy_slice(ret->values[i], sizeof(ret->values[i]), req->headers[i].value);
                }
                ret->keep_alive = req->keep_alive;
                ret->content_length = req->content_length;
                ret->chunked = req->chunked;
        }
        http_parser_free(p);
}

/* A head cut anywhere gives what the whole head gives: the same request, or the same error
 * (an error may show after fewer bytes when the input is cut, never a different one). Random
 * heads from pieces of good and bad lines, with limits small enough to be reached. */
START_TEST(test_head_split_invariant) {
        static const char *const good[] = {
                "X-A: b c\r\n", "Content-Length: 3\r\n", "Transfer-Encoding: chunked\r\n", "Connection: close\r\n",
                "A:\r\n", "Long-Header-Name: a longer value here\r\n", "Accept:\t*/*  \r\n", "X-Obs: caf\xe9\r\n",
        };
        static const char *const bad[] = {
                "\r\n", " fold\r\n", "\tfold\r\n", "Bad Name: x\r\n", ": empty\r\n", "X: a\x01\r\n", "X: a\rb\r\n",
                "X: a\n", "\n", "\r", ":", " ", "\t", "X", "\x7f", "Host: a b\r\n", "Nocolon\r\n", "Host: h\r\n",
        };
        static const char *const hosts[] = { "Host: h\r\n", "Host: [::1]:80\r\n", "host:0.0.0.0=5000\r\n" };
        static const char *const lines[] = { "GET / HTTP/1.1\r\n", "POST /p?q HTTP/1.0\r\n", "\r\nGET / HTTP/1.1\r\n" };
        const HttpLimits limits[] = {
                default_limits,
                { .fields = 4, .field_size = 24 },
        };
        static Parsed whole, cut;
        unsigned seed = 4242;

        for (int iter = 0; iter < 6000; iter++) {
                const HttpLimits *lim = &limits[iter % 2];
                /* from none to a third of the pieces bad */
                unsigned bad_in = (unsigned[]) { 0, 24, 3 }[iter % 3];
                size_t len, n_pieces = (size_t) (rand_r(&seed) % 8);
                char data[512];

                len = (size_t) snprintf(data, sizeof(data), "%s", lines[rand_r(&seed) % ELEMENTSOF(lines)]);
                if (rand_r(&seed) % 4 != 0)
                        len += (size_t) snprintf(data + len, sizeof(data) - len, "%s",
                                                 hosts[rand_r(&seed) % ELEMENTSOF(hosts)]);
                for (size_t k = 0; k < n_pieces; k++) {
                        const char *piece = bad_in > 0 && rand_r(&seed) % bad_in == 0
                                                    ? bad[rand_r(&seed) % ELEMENTSOF(bad)]
                                                    : good[rand_r(&seed) % ELEMENTSOF(good)];

                        len += (size_t) snprintf(data + len, sizeof(data) - len, "%s", piece);
                }
                if (rand_r(&seed) % 8 != 0)
                        len += (size_t) snprintf(data + len, sizeof(data) - len, "\r\n");

                feed_head_split(lim, data, len, 0, &whole);
                for (unsigned s = 1; s < 5; s++) {
                        feed_head_split(lim, data, len, s == 1 ? 1 : seed + s, &cut);
                        ck_assert_msg(cut.r == whole.r, "split %u: %d, whole: %d: %.*s", s, cut.r, whole.r, (int) len,
                                      data);
                        if (whole.r < 0) {
                                ck_assert_int_eq(cut.status, whole.status);
                                ck_assert_str_eq(cut.reason, whole.reason);
                                ck_assert_uint_le(cut.consumed, whole.consumed);
                                continue;
                        }
                        ck_assert_uint_eq(cut.consumed, whole.consumed);
                        if (whole.r == 0)
                                continue;
                        ck_assert_str_eq(cut.method, whole.method);
                        ck_assert_str_eq(cut.target, whole.target);
                        ck_assert_uint_eq(cut.n_headers, whole.n_headers);
                        for (size_t i = 0; i < whole.n_headers && i < 64; i++) {
                                ck_assert_str_eq(cut.names[i], whole.names[i]);
                                ck_assert_str_eq(cut.values[i], whole.values[i]);
                        }
                        ck_assert(cut.keep_alive == whole.keep_alive);
                        ck_assert_int_eq(cut.content_length, whole.content_length);
                        ck_assert(cut.chunked == whole.chunked);
                }
        }
}
END_TEST

START_TEST(test_upgrade) {
        static const char req[] = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\nhi"
                                  "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
        HttpParser *p = NULL;
        static Parsed r;

        ck_assert_int_eq(http_parser_new(&p, &default_limits), 0);
        parse_one(p, S(req), 1000, 1000, &r);
        ck_assert_int_eq(r.r, 1);
        ck_assert(r.upgrade);
        ck_assert_uint_eq(r.body_len, 2);
        http_parser_reset(p);
        parse_one(p, req + r.consumed, sizeof(req) - 1 - r.consumed, 1000, 1000, &r);
        ck_assert_int_eq(r.r, 1);
        ck_assert(!r.upgrade);
        ck_assert_str_eq(r.target, "/next");
        http_parser_free(p);
}
END_TEST

START_TEST(test_buffers_reused) {
        static const char req[] = "POST /reuse HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "3\r\nabc\r\n0\r\n\r\n";
        HttpParser *p = NULL;
        char *buf;
        FieldOffsets *fields;
        HttpHeader *headers;
        static Parsed r;

        ck_assert_int_eq(http_parser_new(&p, &default_limits), 0);
        parse_one(p, S(req), 7, 2, &r);
        ck_assert_int_eq(r.r, 1);
        buf = p->buf;
        fields = p->fields;
        headers = p->headers;
        for (int i = 0; i < 100; i++) {
                http_parser_reset(p);
                parse_one(p, S(req), (size_t) (i % 13) + 1, 3, &r);
                ck_assert_int_eq(r.r, 1);
                ck_assert_uint_eq(r.body_len, 3);
        }
        ck_assert_ptr_eq(p->buf, buf);
        ck_assert_ptr_eq(p->fields, fields);
        ck_assert_ptr_eq(p->headers, headers);
        http_parser_free(p);
}
END_TEST

/* ---- the Gunicorn request corpus ---- */

typedef enum TokenType { TOK_END, TOK_PUNCT, TOK_STRING, TOK_NUMBER, TOK_WORD } TokenType;

typedef struct Json {
        const char *s;
        TokenType type;
        char punct;
        char str[65536];
        size_t str_len;
        long num;
} Json;

/* One token; strings are decoded to Latin-1 bytes (the corpus escapes bytes as \u00XX). */
static void json_next(Json *j) {
        while (*j->s == ' ' || *j->s == '\n' || *j->s == '\r' || *j->s == '\t')
                j->s++;
        j->str_len = 0;
        if (!*j->s) {
                j->type = TOK_END;
                return;
        }
        if (strchr("{}[]:,", *j->s)) {
                j->type = TOK_PUNCT;
                j->punct = *j->s++;
                return;
        }
        if (*j->s == '"') {
                j->type = TOK_STRING;
                for (j->s++; *j->s && *j->s != '"'; j->s++) {
                        char c = *j->s;

                        if (c == '\\') {
                                c = *++j->s;
                                if (c == 'n')
                                        c = '\n';
                                else if (c == 'r')
                                        c = '\r';
                                else if (c == 't')
                                        c = '\t';
                                else if (c == 'u') {
                                        c = (char) strtol((char[]) { j->s[1], j->s[2], j->s[3], j->s[4], 0 }, NULL, 16);
                                        j->s += 4;
                                }
                        }
                        if (j->str_len < sizeof(j->str) - 1)
                                j->str[j->str_len++] = c;
                }
                j->str[j->str_len] = 0;
                j->s++;
                return;
        }
        if ((*j->s >= '0' && *j->s <= '9') || *j->s == '-') {
                j->type = TOK_NUMBER;
                j->num = strtol(j->s, (char **) &j->s, 10);
                return;
        }
        j->type = TOK_WORD;
        while (*j->s >= 'a' && *j->s <= 'z' && j->str_len < sizeof(j->str) - 1)
                j->str[j->str_len++] = *j->s++;
        j->str[j->str_len] = 0;
}

static size_t b64_decode(const char *in, char *out) {
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t n = 0, bits = 0;
        unsigned acc = 0;

        for (; *in && *in != '='; in++) {
                const char *c = strchr(alphabet, *in);

                if (!c)
                        continue;
                acc = (acc << 6) | (unsigned) (c - alphabet);
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[n++] = (char) ((acc >> bits) & 0xff);
                }
        }
        return n;
}

static char *read_file(const char *path, size_t *ret_len) {
        FILE *f = fopen(path, "rbe");
        char *data;
        long n;

        if (!f)
                return NULL;
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        data = malloc((size_t) n + 1);
        ck_assert_ptr_nonnull(data);
        ck_assert_uint_eq(fread(data, 1, (size_t) n, f), (size_t) n);
        data[n] = 0;
        fclose(f);
        *ret_len = (size_t) n;
        return data;
}

/* The settings a case needs, as limits; false for settings outside the parser's reach. */
static bool corpus_settings(Json *j, HttpLimits *limits, char *unsupported, size_t cap) {
        bool ok = true;

        *limits = default_limits;
        unsupported[0] = 0;
        json_next(j);   /* '{' */
        for (json_next(j); j->type == TOK_STRING; json_next(j)) {
                char key[128];

                snprintf(key, sizeof(key), "%.100s", j->str);
                json_next(j);   /* ':' */
                json_next(j);
                if (strcmp(key, "limit_request_line") == 0)
                        limits->request_line = (size_t) j->num;
                else if (strcmp(key, "limit_request_fields") == 0)
                        limits->fields = (size_t) j->num;
                else if (strcmp(key, "limit_request_field_size") == 0)
                        limits->field_size = (size_t) j->num;
                else if (strcmp(key, "strip_header_spaces") == 0)
                        limits->strip_header_spaces = j->type == TOK_WORD && strcmp(j->str, "true") == 0;
                else if (strcmp(key, "permit_obsolete_folding") == 0)
                        limits->permit_obsolete_folding = j->type == TOK_WORD && strcmp(j->str, "true") == 0;
                else if (strcmp(key, "casefold_http_method") == 0)
                        limits->casefold_http_method = j->type == TOK_WORD && strcmp(j->str, "true") == 0;
                else if (strcmp(key, "permit_unconventional_http_method") == 0)
                        limits->permit_unconventional_http_method = j->type == TOK_WORD && strcmp(j->str, "true") == 0;
                else if (strcmp(key, "header_map") == 0)
                        limits->header_map = strcmp(j->str, "refuse") == 0    ? HEADER_MAP_REFUSE :
                                             strcmp(j->str, "dangerous") == 0 ? HEADER_MAP_DANGEROUS :
                                                                                HEADER_MAP_DROP;
                else {
                        ok = false;
                        snprintf(unsupported, cap, "%.100s", key);
                }
                json_next(j);   /* ',' or '}' */
                if (j->type == TOK_PUNCT && j->punct == '}')
                        break;
        }
        return ok;
}

static bool corpus_dir(char *path, size_t cap, const char *sub) {
        const char *base = getenv("GCORN_CORPUS");
        DIR *d;

        if (!base || !*base)
                return false;
        snprintf(path, cap, "%s/%s", base, sub);
        d = opendir(path);
        if (!d)
                return false;
        closedir(d);
        return true;
}

static int compare_names(const struct dirent **a, const struct dirent **b) {
        return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_raw(const struct dirent *d) {
        size_t n = strlen(d->d_name);

        return n > 4 && strcmp(d->d_name + n - 4, ".raw") == 0;
}

/* The status tests/integration/corpus_deviations.json lists for a case gcorn answers
 * differently from Gunicorn ("status": N in its entry), or 0. */
static int deviation_status(const char *kind, const char *name) {
        char path[4096], key[512];
        const char *src = getenv("GCORN_SRC"), *e, *end, *st;
        size_t len;
        char *text;
        int status = 0;

        snprintf(path, sizeof(path), "%s/tests/integration/corpus_deviations.json", src ? src : ".");
        text = read_file(path, &len);
        ck_assert_msg(text, "cannot read %s", path);
        snprintf(key, sizeof(key), "\"%s/%s\":", kind, name);
        e = strstr(text, key);
        if (e) {
                end = strchr(e, '}');
                st = strstr(e, "\"status\":");
                if (end && st && st < end)
                        status = atoi(st + strlen("\"status\":"));
        }
        free(text);
        return status;
}

/* raw with "Host: h" after the request line that starts at (or after blank lines
 * from) start: RFC 9112 3.2 wants one where Gunicorn does not. */
static char *insert_host(char *raw, size_t *len, size_t start) {
        static const char host[] = "Host: h\r\n";
        size_t at = start;
        const char *lf;
        char *n;

        while (at < *len && (raw[at] == '\r' || raw[at] == '\n'))
                at++;
        lf = memchr(raw + at, '\n', *len - at);
        ck_assert_ptr_nonnull(lf);
        at = (size_t) (lf - raw) + 1;
        n = malloc(*len + sizeof(host));
        ck_assert_ptr_nonnull(n);
        memcpy(n, raw, at);
        memcpy(n + at, host, sizeof(host) - 1);
        memcpy(n + at + sizeof(host) - 1, raw + at, *len - at + 1);
        *len += sizeof(host) - 1;
        free(raw);
        return n;
}

/* As test_corpus.py sends invalid cases: with a Host line after the first request line when
 * that is HTTP/1.1 (or a later 1.x) and its head has none, so that each case is refused for
 * its own fault. */
static char *insert_host_first(char *raw, size_t *len) {
        const char *end, *head_end;
        size_t start = 0;

        while (start < *len && (raw[start] == '\r' || raw[start] == '\n'))
                start++;
        end = memmem(raw + start, *len - start, "\r\n", 2);
        if (!end || end - (raw + start) < 9 || memcmp(end - 9, " HTTP/1.", 8) != 0 || end[-1] < '1' ||
            end[-1] > '9')
                return raw;
        head_end = memmem(end, (size_t) (raw + *len - end), "\r\n\r\n", 4);
        if (!head_end)
                head_end = raw + *len;
        for (const char *l = end; l && l < head_end; l = memmem(l + 2, (size_t) (head_end - l - 2), "\r\n", 2))
                if (head_end - l >= 7 && strncasecmp(l + 2, "host:", 5) == 0)
                        return raw;
        return insert_host(raw, len, start);
}

static void check_valid_case(const char *dir, const char *name) {
        static Json j;
        static Parsed r;
        static char body[65536];
        char path[8192], unsupported[256];
        HttpLimits limits;
        HttpParser *p = NULL;
        size_t raw_len, json_len, pos = 0, nreq = 0;
        bool host_added = false;
        char *raw, *json;

        snprintf(path, sizeof(path), "%s/%s.raw", dir, name);
        raw = read_file(path, &raw_len);
        snprintf(path, sizeof(path), "%s/%s.json", dir, name);
        json = read_file(path, &json_len);
        ck_assert_ptr_nonnull(raw);
        ck_assert_ptr_nonnull(json);

        j.s = json;
        json_next(&j);  /* '{' */
        json_next(&j);
        ck_assert_str_eq(j.str, "settings");
        json_next(&j);
        if (!corpus_settings(&j, &limits, unsupported, sizeof(unsupported))) {
                printf("corpus valid/%s: skipped (setting %s)\n", name, unsupported);
                goto out;
        }
        ck_assert_int_eq(http_parser_new(&p, &limits), 0);
        /* walk "requests": [ {...}, ... ] */
        for (json_next(&j); j.type != TOK_END; json_next(&j)) {
                if (j.type != TOK_STRING)
                        continue;
                if (strcmp(j.str, "method") == 0) {
                        size_t start = pos;

                        if (nreq > 0)
                                http_parser_reset(p);
                        parse_one(p, raw + start, raw_len - start, raw_len, 65536, &r);
                        host_added = false;
                        if (r.r < 0 && strcmp(r.reason, "Missing Host header") == 0) {
                                raw = insert_host(raw, &raw_len, start);
                                host_added = true;
                                http_parser_reset(p);
                                parse_one(p, raw + start, raw_len - start, raw_len, 65536, &r);
                        }
                        if (r.r < 0) {
                                int want = deviation_status("valid", name);

                                ck_assert_msg(want != 0 && r.status == want,
                                              "corpus valid/%s request %zu: %d (%d %s), listed status %d", name, nreq,
                                              r.r, r.status, r.reason, want);
                                printf("corpus valid/%s request %zu: answered %d (%s), a listed deviation\n", name,
                                       nreq, r.status, r.reason);
                                goto out;
                        }
                        pos = start + r.consumed;
                        /* valid/099 holds less body than its Content-Length: the rest never comes */
                        if (r.r == 0 && pos == raw_len && r.has_body)
                                printf("corpus valid/%s: body shorter than announced\n", name);
                        else
                                ck_assert_msg(r.r == 1, "corpus valid/%s request %zu: %d (%d %s)", name, nreq, r.r,
                                              r.status, http_parser_error_reason(p));
                        nreq++;
                        json_next(&j);
                        json_next(&j);
                        ck_assert_str_eq(r.method, j.str);
                } else if (strcmp(j.str, "raw_uri") == 0) {
                        json_next(&j);
                        json_next(&j);
                        ck_assert_msg(strcmp(r.target, j.str) == 0, "corpus valid/%s: target %.200s, want %.200s",
                                      name, r.target, j.str);
                } else if (strcmp(j.str, "path") == 0) {
                        json_next(&j);
                        json_next(&j);
                        /* the corpus holds the path as received (valid/027 keeps its %20) */
                        ck_assert_msg(strcmp(r.path, j.str) == 0, "corpus valid/%s: path %.200s, want %.200s", name,
                                      r.path, j.str);
                } else if (strcmp(j.str, "query") == 0) {
                        json_next(&j);
                        json_next(&j);
                        ck_assert_msg(strcmp(r.query, j.str) == 0, "corpus valid/%s: query %.200s, want %.200s", name,
                                      r.query, j.str);
                } else if (strcmp(j.str, "version") == 0) {
                        json_next(&j);
                        json_next(&j);
                        json_next(&j);
                        ck_assert_int_eq(r.major, j.num);
                        json_next(&j);
                        json_next(&j);
                        ck_assert_int_eq(r.minor, j.num);
                } else if (strcmp(j.str, "headers") == 0) {
                        /* skip the Host line added above */
                        size_t i = 0, k = host_added ? 1 : 0;

                        json_next(&j);  /* ':' */
                        json_next(&j);  /* '[' */
                        for (json_next(&j); !(j.type == TOK_PUNCT && j.punct == ']'); json_next(&j)) {
                                char want[256];

                                if (j.type != TOK_PUNCT || j.punct != '[')
                                        continue;
                                json_next(&j);
                                snprintf(want, sizeof(want), "%.200s", j.str);
                                /* names with '_' are left to header_map, as in Gunicorn */
                                ck_assert_uint_lt(k, r.n_headers);
                                ck_assert_msg(strcasecmp(r.names[k], want) == 0, "corpus valid/%s: header %s, want %s",
                                              name, r.names[k], want);
                                json_next(&j);
                                json_next(&j);
                                ck_assert_msg(strcmp(r.values[k], j.str) == 0, "corpus valid/%s: %s: [%.200s], want [%.200s]",
                                              name, want, r.values[k], j.str);
                                json_next(&j);  /* ']' */
                                i++;
                                k++;
                        }
                        (void) i;
                } else if (strcmp(j.str, "body_b64") == 0) {
                        size_t n;

                        json_next(&j);
                        json_next(&j);
                        n = b64_decode(j.str, body);
                        ck_assert_uint_eq(r.body_len, n);
                        ck_assert(memcmp(r.body, body, n) == 0);
                }
        }
        ck_assert_uint_gt(nreq, 0);
out:
        http_parser_free(p);
        free(raw);
        free(json);
}

START_TEST(test_corpus_valid) {
        struct dirent **names;
        char dir[4096];
        int n;

        if (!corpus_dir(dir, sizeof(dir), "valid")) {
                printf("GCORN_CORPUS not set or missing: corpus test skipped\n");
                return;
        }
        n = scandir(dir, &names, is_raw, compare_names);
        ck_assert_int_gt(n, 0);
        for (int i = 0; i < n; i++) {
                names[i]->d_name[strlen(names[i]->d_name) - 4] = 0;
                check_valid_case(dir, names[i]->d_name);
                free(names[i]);
        }
        free(names);
}
END_TEST

/* Every invalid case must fail, in the head or (for body faults) in the body. */
START_TEST(test_corpus_invalid) {
        static Json j;
        static Parsed r;
        struct dirent **names;
        char dir[4096], path[8192], unsupported[256];
        int n, missed = 0;

        if (!corpus_dir(dir, sizeof(dir), "invalid")) {
                printf("GCORN_CORPUS not set or missing: corpus test skipped\n");
                return;
        }
        n = scandir(dir, &names, is_raw, compare_names);
        ck_assert_int_gt(n, 0);
        for (int i = 0; i < n; i++) {
                HttpLimits limits;
                HttpParser *p = NULL;
                size_t raw_len, json_len, pos = 0, start = 0;
                char *raw, *json;
                bool failed = false, supported;

                names[i]->d_name[strlen(names[i]->d_name) - 4] = 0;
                snprintf(path, sizeof(path), "%s/%s.raw", dir, names[i]->d_name);
                raw = read_file(path, &raw_len);
                snprintf(path, sizeof(path), "%s/%s.json", dir, names[i]->d_name);
                json = read_file(path, &json_len);
                j.s = json;
                json_next(&j);
                json_next(&j);
                json_next(&j);
                supported = corpus_settings(&j, &limits, unsupported, sizeof(unsupported));
                raw = insert_host_first(raw, &raw_len);

                ck_assert_int_eq(http_parser_new(&p, &limits), 0);
                /* all pipelined requests: the fault may be in any of them */
                while (pos < raw_len) {
                        start = pos;
                        parse_one(p, raw + pos, raw_len - pos, raw_len, 65536, &r);
                        pos += r.consumed;
                        if (r.r < 0)
                                failed = true;
                        ck_assert_msg(r.r >= 0 || strcmp(r.reason, "Missing Host header") != 0,
                                      "corpus invalid/%s: refused only for its missing Host", names[i]->d_name);
                        if (r.r != 1)
                                break;
                        http_parser_reset(p);
                }
                /* a truncated request (the peer closes) is a failure too; stray CRLFs are not */
                if (!failed && r.r == 0)
                        for (size_t k = start; k < raw_len; k++)
                                if (raw[k] != '\r' && raw[k] != '\n')
                                        failed = true;
                /* Gunicorn's answer, to note where ours differs */
                while (j.type != TOK_END && !(j.type == TOK_STRING && strcmp(j.str, "expect") == 0))
                        json_next(&j);
                json_next(&j);
                json_next(&j);
                if (r.r < 0 && atoi(j.str) != r.status)
                        printf("corpus invalid/%s: answered %d, Gunicorn %s\n", names[i]->d_name, r.status, j.str);
                if (!failed) {
                        printf("corpus invalid/%s: accepted%s%s\n", names[i]->d_name, supported ? "" : ", needs setting ",
                               supported ? "" : unsupported);
                        if (supported)
                                missed++;
                }
                http_parser_free(p);
                free(raw);
                free(json);
                free(names[i]);
        }
        free(names);
        ck_assert_int_eq(missed, 0);
}
END_TEST

/* Gunicorn's request-parsing switches: off, each is a 400; on, Gunicorn's result, however
 * the network cuts the head. */
/* Peers for http_parser_set_peer(): a trusted forwarder or not. */
static bool peer_yes(const void *peer) {
        (void) peer;
        return true;
}

static bool peer_no(const void *peer) {
        (void) peer;
        return false;
}

static Parsed *parse_switched(const HttpLimits *limits, bool trusted, const char *data, size_t len, size_t step) {
        static Parsed parsed;
        HttpParser *p = NULL;

        ck_assert_int_eq(http_parser_new(&p, limits), 0);
        http_parser_set_peer(p, trusted ? peer_yes : peer_no, NULL);
        parse_one(p, data, len, step, 65536, &parsed);
        http_parser_free(p);
        return &parsed;
}

START_TEST(test_switches) {
        static const char spaced[] = "GET / HTTP/1.1\r\nHost: h\r\nX-A \t : 1\r\nX-B: 2\r\n\r\n";
        static const char folded[] = "GET / HTTP/1.1\r\nX-Long: one \r\n  two\r\n\tthree\r\nHost: h\r\n\r\n";
        static const char emptyfold[] = "GET / HTTP/1.1\r\nHost: h\r\nX-E: a\r\n \r\n\r\n";
        static const char under[] = "GET / HTTP/1.1\r\nHost: h\r\nX_Foo: u\r\nX-Foo: d\r\nScript_Name: /app\r\n\r\n";
        char *const forwarders[] = { (char *) "SCRIPT_NAME", (char *) "PATH_INFO", NULL };
        char *const all[] = { (char *) "*", NULL };
        char *const lower[] = { (char *) "script_name", NULL };
        HttpLimits l = default_limits;
        Parsed *r;

        /* strip_header_spaces */
        ASSERT_ERROR_REASON("GET / HTTP/1.1\r\nHost: h\r\nX-A : 1\r\n\r\n", 400, "Invalid header name");
        l.strip_header_spaces = true;
        for (size_t step = 1; step <= sizeof(spaced) - 1; step++) {
                r = parse_switched(&l, false, S(spaced), step);
                ck_assert_int_eq(r->r, 1);
                ck_assert_uint_eq(r->n_headers, 3);
                ck_assert_str_eq(r->names[1], "X-A");
                ck_assert_str_eq(r->values[1], "1");
                ck_assert_str_eq(r->names[2], "X-B");
        }
        /* only blanks before the colon: the name itself is still a token */
        r = parse_switched(&l, false, S("GET / HTTP/1.1\r\nHost: h\r\nX A: 1\r\n\r\n"), 64);
        ck_assert_int_eq(r->status, 400);
        r = parse_switched(&l, false, S("GET / HTTP/1.1\r\nHost: h\r\n : 1\r\n\r\n"), 64);
        ck_assert_int_eq(r->status, 400);
        l = default_limits;

        /* permit_obsolete_folding */
        ASSERT_ERROR_REASON("GET / HTTP/1.1\r\nHost: h\r\nX-Long: one\r\n two\r\n\r\n", 400, "Obsolete line folding");
        l.permit_obsolete_folding = true;
        for (size_t step = 1; step <= sizeof(folded) - 1; step++) {
                r = parse_switched(&l, false, S(folded), step);
                ck_assert_int_eq(r->r, 1);
                ck_assert_uint_eq(r->n_headers, 2);
                ck_assert_str_eq(r->names[0], "X-Long");
                ck_assert_str_eq(r->values[0], "one two three");
                ck_assert_str_eq(r->values[1], "h");
        }
        /* Gunicorn joins the stripped lines, an empty last one too */
        r = parse_switched(&l, false, S(emptyfold), 64);
        ck_assert_int_eq(r->r, 1);
        ck_assert_str_eq(r->values[1], "a ");
        /* nothing to continue: still refused */
        r = parse_switched(&l, false, S("GET / HTTP/1.1\r\n X: 1\r\nHost: h\r\n\r\n"), 64);
        ck_assert_int_eq(r->status, 400);
        /* the folded field counts whole against limit_request_field_size, as Gunicorn's */
        l.field_size = 14;
        r = parse_switched(&l, false, S("GET / HTTP/1.1\r\nAccept:\r\n */*\r\n\r\n"), 64);
        ck_assert_int_eq(r->status, 431);
        l = default_limits;

        /* methods: Gunicorn's conventional shape unless permitted; casefold alone lets nothing in */
        ASSERT_ERROR_REASON("get / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "Invalid request method");
        ASSERT_ERROR_REASON("GO / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "Invalid request method");
        ASSERT_ERROR_REASON("G#T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "Invalid request method");
        ASSERT_ERROR_REASON("ABCDEFGHIJKLMNOPQRSTU / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "Invalid request method");
        l.casefold_http_method = true;
        r = parse_switched(&l, false, S("get / HTTP/1.1\r\nHost: h\r\n\r\n"), 64);
        ck_assert_int_eq(r->status, 400);
        l.casefold_http_method = false;
        l.permit_unconventional_http_method = true;
        r = parse_switched(&l, false, S("-blargh / HTTP/1.1\r\nHost: h\r\n\r\n"), 3);
        ck_assert_int_eq(r->r, 1);
        ck_assert_str_eq(r->method, "-blargh");
        r = parse_switched(&l, false, S("G / HTTP/1.1\r\nHost: h\r\n\r\n"), 64);
        ck_assert_str_eq(r->method, "G");
        r = parse_switched(&l, false, S("G#T / HTTP/1.1\r\nHost: h\r\n\r\n"), 64);
        ck_assert_str_eq(r->method, "G#T");
        r = parse_switched(&l, false, S("ABCDEFGHIJKLMNOPQRSTU / HTTP/1.1\r\nHost: h\r\n\r\n"), 64);
        ck_assert_int_eq(r->r, 1);
        /* still a token */
        r = parse_switched(&l, false, S("G(T / HTTP/1.1\r\nHost: h\r\n\r\n"), 64);
        ck_assert_int_eq(r->status, 400);
        r = parse_switched(&l, false, S("head / HTTP/1.1\r\nHost: h\r\n\r\n"), 64);
        ck_assert(!r->is_head);
        l.casefold_http_method = true;
        r = parse_switched(&l, false, S("-blargh# / HTTP/1.1\r\nHost: h\r\n\r\n"), 64);
        ck_assert_str_eq(r->method, "-BLARGH#");
        r = parse_switched(&l, false, S("head / HTTP/1.1\r\nHost: h\r\n\r\n"), 64);
        ck_assert_str_eq(r->method, "HEAD");
        ck_assert(r->is_head);
        l = default_limits;

        /* header_map: drop by default, refuse, dangerous */
        for (size_t step = 1; step <= sizeof(under) - 1; step++) {
                r = parse_switched(&l, false, S(under), step);
                ck_assert_int_eq(r->r, 1);
                ck_assert_uint_eq(r->n_headers, 2);
                ck_assert_str_eq(r->names[1], "X-Foo");
        }
        l.header_map = HEADER_MAP_REFUSE;
        r = parse_switched(&l, false, S(under), 64);
        ck_assert_int_eq(r->status, 400);
        ck_assert_str_eq(r->reason, "Invalid header name");
        l.header_map = HEADER_MAP_DANGEROUS;
        r = parse_switched(&l, false, S(under), 7);
        ck_assert_uint_eq(r->n_headers, 4);
        ck_assert_str_eq(r->names[1], "X_Foo");
        ck_assert_str_eq(r->names[3], "Script_Name");

        /* forwarder_headers: kept from a trusted forwarder whatever header_map says */
        l.header_map = HEADER_MAP_REFUSE;
        l.forwarder_headers = forwarders;
        r = parse_switched(&l, true, S("GET / HTTP/1.1\r\nHost: h\r\nScript_Name: /app\r\nPATH_INFO: /x\r\n\r\n"), 64);
        ck_assert_int_eq(r->r, 1);
        ck_assert_uint_eq(r->n_headers, 3);
        r = parse_switched(&l, true, S(under), 64);
        ck_assert_int_eq(r->status, 400);
        r = parse_switched(&l, false, S("GET / HTTP/1.1\r\nHost: h\r\nScript_Name: /app\r\n\r\n"), 64);
        ck_assert_int_eq(r->status, 400);
        l.header_map = HEADER_MAP_DROP;
        r = parse_switched(&l, false, S(under), 64);
        ck_assert_uint_eq(r->n_headers, 2);
        r = parse_switched(&l, true, S(under), 64);
        ck_assert_uint_eq(r->n_headers, 3);
        ck_assert_str_eq(r->names[2], "Script_Name");
        /* Gunicorn compares upper-cased names with the list as it is */
        l.forwarder_headers = lower;
        r = parse_switched(&l, true, S(under), 64);
        ck_assert_uint_eq(r->n_headers, 2);
        l.forwarder_headers = all;
        r = parse_switched(&l, true, S(under), 64);
        ck_assert_uint_eq(r->n_headers, 4);
}
END_TEST

START_TEST(test_forwarded_script_name) {
        char *const forwarders[] = { (char *) "SCRIPT_NAME", NULL };
        HttpLimits l = default_limits;
        HttpParser *p = NULL;
        const Request *req;
        size_t used;

        l.forwarder_headers = forwarders;
        ck_assert_int_eq(http_parser_new(&p, &l), 0);
        http_parser_set_peer(p, peer_yes, NULL);
        ck_assert_int_eq(http_parser_feed_head(p, S("GET /app/x HTTP/1.1\r\nHost: h\r\nScript_Name: /a\r\n"
                                                    "SCRIPT_NAME: /app \r\n\r\n"), &used), 1);
        req = http_parser_request(p);
        ck_assert(req->header_map_applied);
        ck_assert(req->underscore_kept);
        ck_assert_uint_eq(req->n_headers, 3);
        /* the next request has none */
        http_parser_reset(p);
        ck_assert_int_eq(http_parser_feed_head(p, S("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), &used), 1);
        ck_assert(!http_parser_request(p)->underscore_kept);
        ck_assert(http_parser_request(p)->header_map_applied);
        http_parser_free(p);
}
END_TEST

/* Gunicorn parses trailers as headers: the switches apply to them too, and no forwarder
 * may send one with '_'. */
START_TEST(test_switches_trailers) {
        static const char folded[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     "1\r\na\r\n0\r\nX-T: 1\r\n 2\r\n\r\n";
        static const char spaced[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     "1\r\na\r\n0\r\nX-T \t: 1\r\n\r\n";
        static const char under[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    "1\r\na\r\n0\r\nX_T: 1\r\n\r\n";
        char *const all[] = { (char *) "*", NULL };
        HttpLimits l = default_limits;
        Parsed *r;

        ck_assert_int_eq(parse(S(folded))->status, 400);
        ck_assert_int_eq(parse(S(spaced))->status, 400);
        ck_assert_int_eq(parse(S(under))->r, 1);
        l.permit_obsolete_folding = true;
        r = parse_switched(&l, false, S(folded), 3);
        ck_assert_int_eq(r->r, 1);
        ck_assert_str_eq(r->body, "a");
        /* nothing to continue */
        r = parse_switched(&l, false, S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                                        "1\r\na\r\n0\r\n X: 1\r\n\r\n"), 64);
        ck_assert_int_eq(r->status, 400);
        l = default_limits;
        l.strip_header_spaces = true;
        r = parse_switched(&l, false, S(spaced), 1);
        ck_assert_int_eq(r->r, 1);
        r = parse_switched(&l, false, S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                                        "1\r\na\r\n0\r\nHost : x\r\n\r\n"), 64);
        ck_assert_str_eq(r->reason, "Forbidden trailer field");
        l = default_limits;
        l.header_map = HEADER_MAP_REFUSE;
        l.forwarder_headers = all;
        r = parse_switched(&l, true, S(under), 64);
        ck_assert_int_eq(r->status, 400);
}
END_TEST

static Suite *http_suite(void) {
        Suite *suite = suite_create("http");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_simple_get);
        tcase_add_test(tc, test_find_header);
        tcase_add_test(tc, test_split_feeding);
        tcase_add_test(tc, test_pipelined);
        tcase_add_test(tc, test_head_consumed_exact);
        tcase_add_test(tc, test_head_keepalive_expect);
        tcase_add_test(tc, test_bodies);
        tcase_add_test(tc, test_body_remaining_chunked);
        tcase_add_test(tc, test_limit_request_line);
        tcase_add_test(tc, test_limit_fields);
        tcase_add_test(tc, test_limit_field_size);
        tcase_add_test(tc, test_limit_body);
        tcase_add_test(tc, test_malformed_heads);
        tcase_add_test(tc, test_request_lines);
        tcase_add_test(tc, test_targets);
        tcase_add_test(tc, test_smuggling);
        tcase_add_test(tc, test_bad_chunks);
        tcase_add_test(tc, test_upgrade);
        tcase_add_test(tc, test_host);
        tcase_add_test(tc, test_transfer_codings);
        tcase_add_test(tc, test_chunk_ext_bws);
        tcase_add_test(tc, test_chunk_fault_after_data);
        tcase_add_test(tc, test_head_split_invariant);
        tcase_add_test(tc, test_buffers_reused);
        tcase_add_test(tc, test_corpus_valid);
        tcase_add_test(tc, test_corpus_invalid);
        tcase_add_test(tc, test_switches);
        tcase_add_test(tc, test_forwarded_script_name);
        tcase_add_test(tc, test_switches_trailers);
        suite_add_tcase(suite, tc);
        return suite;
}

int main(void) {
        SRunner *runner = srunner_create(http_suite());
        int failed;

        /* the corpus notes must survive a failing (forked) test */
        setvbuf(stdout, NULL, _IONBF, 0);
        srunner_run_all(runner, CK_NORMAL);
        failed = srunner_ntests_failed(runner);
        srunner_free(runner);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
