/* The request-parser driver of fuzz.h. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "gcorn/httpchar.h"
#include "gcorn/macro.h"

static bool status_known(int status) {
        static const int statuses[] = { 400, 413, 414, 431, 500, 501, 505 };

        for (size_t i = 0; i < ELEMENTSOF(statuses); i++)
                if (status == statuses[i])
                        return true;
        return false;
}

/* What every completed head promises the environ and the app: the smuggling shapes are gone. */
static void check_head(const Request *r) {
        FUZZ_CHECK(r->method.len > 0 && r->target.len > 0);
        FUZZ_CHECK(r->http_major == 1 && r->http_minor >= 0 && r->http_minor <= 9);
        FUZZ_CHECK(r->has_body == (r->chunked || r->content_length > 0));
        FUZZ_CHECK(!(r->chunked && r->content_length >= 0));
        for (size_t i = 0; i < r->method.len; i++)
                FUZZ_CHECK(http_is_tchar((unsigned char) r->method.p[i]));
        for (size_t i = 0; i < r->n_headers + r->n_dropped; i++) {
                const HttpHeader *h = &r->headers[i];

                FUZZ_CHECK(h->name.len > 0);
                for (size_t j = 0; j < h->name.len; j++)
                        FUZZ_CHECK(http_is_tchar((unsigned char) h->name.p[j]));
                for (size_t j = 0; j < h->value.len; j++) {
                        char c = h->value.p[j];

                        FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0');
                }
        }
        FUZZ_CHECK(r->path.len <= r->target.len);
}

static int failed(const HttpParser *p, int r, FuzzMessage *ret) {
        ret->status = http_parser_error_status(p);
        FUZZ_CHECK(r == -EBADMSG || r == -EFBIG || r == -ENOMEM);
        FUZZ_CHECK(status_known(ret->status));
        FUZZ_CHECK(http_parser_error_reason(p) != NULL);
        return r;
}

int fuzz_parse_one(HttpParser *p, const uint8_t *data, size_t len, size_t step, size_t out_cap,
                   void (*on_head)(const Request *r, void *userdata), void *userdata,
                   FuzzMessage *ret) {
        const char *d = (const char *) data;
        char out[256];
        size_t pos = 0, window = 0;
        int r;

        *ret = (FuzzMessage) {};
        if (step == 0)
                step = len;
        out_cap = MIN(MAX(out_cap, 1u), sizeof(out));

        for (;;) {
                size_t consumed = 0;

                window = MIN(window + step, len);
                r = http_parser_feed_head(p, d + pos, window - pos, &consumed);
                FUZZ_CHECK(consumed <= window - pos);
                pos += consumed;
                ret->head = r;
                if (r < 0) {
                        ret->consumed = pos;
                        return failed(p, r, ret);
                }
                if (r == 1)
                        break;
                FUZZ_CHECK(http_parser_request(p) == NULL);
                if (window == len) {
                        ret->consumed = pos;
                        return 0;       /* the head never ended */
                }
        }

        check_head(http_parser_request(p));
        if (on_head)
                on_head(http_parser_request(p), userdata);

        for (;;) {
                size_t consumed = 0, n = 0;
                int64_t before = http_parser_body_remaining(p);

                r = http_parser_feed_body(p, d + pos, window - pos, &consumed, out, out_cap, &n);
                FUZZ_CHECK(consumed <= window - pos);
                FUZZ_CHECK(n <= out_cap);
                if (before >= 0 && r >= 0)
                        FUZZ_CHECK(http_parser_body_remaining(p) == before - (int64_t) n);
                pos += consumed;
                ret->body_len += n;
                ret->body = r;
                if (r < 0) {
                        ret->consumed = pos;
                        return failed(p, r, ret);
                }
                if (r == 1) {
                        FUZZ_CHECK(http_parser_message_complete(p));
                        break;
                }
                if (consumed == 0 && n == 0) {
                        if (window == len) {
                                ret->consumed = pos;
                                return 0;       /* the body never ended */
                        }
                        window = MIN(window + step, len);
                }
        }
        ret->consumed = pos;
        return 1;
}
