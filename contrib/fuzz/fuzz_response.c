/* An app's status and headers -> the response checks and framing (src/response.c): the
 * status parser, header name and value validation, the app's Content-Length, the framing
 * decision, the status line gcorn writes, canned error pages and chunk lines.
 *
 * Input: a flags byte, a status code pair of bytes, then three strings separated by NUL
 * bytes (status, header name, header value), the last also the error page's message. What
 * passes the checks must never put CR, LF or NUL on the wire. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "gcorn/httpchar.h"
#include "gcorn/macro.h"
#include "gcorn/response.h"

/* The next NUL-separated piece of the input. */
static void next_piece(const uint8_t **data, size_t *len, const char **ret, size_t *ret_len) {
        const uint8_t *nul = memchr(*data, 0, *len);
        size_t n = nul ? (size_t) (nul - *data) : *len;

        *ret = (const char *) *data;
        *ret_len = n;
        *data += n + (nul ? 1 : 0);
        *len -= n + (nul ? 1 : 0);
}

static bool has_ctl_break(const char *s, size_t len) {
        return memchr(s, '\r', len) || memchr(s, '\n', len) || memchr(s, '\0', len);
}

static void check_status(const char *s, size_t len, uint8_t flags) {
        char line[1024];
        int code = response_parse_status(s, len);
        size_t n;

        FUZZ_CHECK(code == -EINVAL || (code >= 100 && code <= 599));
        if (code < 0)
                return;
        FUZZ_CHECK(len >= 3 && (len == 3 || s[3] == ' '));
        FUZZ_CHECK((s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0') == code);
        FUZZ_CHECK(!has_ctl_break(s, len));

        n = response_format_start(line, sizeof(line), 1, flags & 1, s, len, flags % 3, flags & 4);
        if (n > sizeof(line))
                return;
        /* The status line is "HTTP/1.x " status [" "] CRLF, and every line ends where it should. */
        FUZZ_CHECK(n >= 4 && memcmp(line + n - 2, "\r\n", 2) == 0);
        FUZZ_CHECK(memcmp(line, flags & 1 ? "HTTP/1.1 " : "HTTP/1.0 ", 9) == 0);
        FUZZ_CHECK(memcmp(line + 9, s, len) == 0);
        FUZZ_CHECK(line[9 + len] == (len == 3 ? ' ' : '\r'));
        for (size_t i = 0; i + 1 < n; i++)
                FUZZ_CHECK((line[i] == '\r') == (line[i + 1] == '\n'));
        FUZZ_CHECK(memmem(line, n, "\r\n\r\n", 4) == NULL);
}

static void check_framing(uint8_t flags, int status, int64_t content_length) {
        bool is_head = flags & 8;
        int minor = flags & 1;
        ResponseFraming f = response_framing(1, minor, is_head, status, content_length);

        if (is_head || !response_status_allows_body(status))
                FUZZ_CHECK(f == RESPONSE_FRAMING_NONE);
        else if (content_length >= 0)
                FUZZ_CHECK(f == RESPONSE_FRAMING_LENGTH);
        else
                FUZZ_CHECK(f == (minor ? RESPONSE_FRAMING_CHUNKED : RESPONSE_FRAMING_CLOSE));
        FUZZ_CHECK(response_status_allows_body(status) ==
                   !((status >= 100 && status < 200) || status == 204 || status == 304));
}

static size_t count_tags(const char *s, size_t len) {
        size_t n = 0;

        for (size_t i = 0; i < len; i++)
                n += s[i] == '<';
        return n;
}

static void check_error_page(int status, bool head_only, const char *msg, size_t msg_len) {
        char text[513], buf[RESPONSE_ERROR_MAX], plain[RESPONSE_ERROR_MAX];
        const char *end, *cl;
        size_t n;

        n = MIN(msg_len, sizeof(text) - 1);
        memcpy(text, msg, n);
        text[n] = 0;
        n = response_build_error(buf, sizeof(buf), status, head_only, text);
        FUZZ_CHECK(n > 0 && n <= sizeof(buf));
        end = memmem(buf, n, "\r\n\r\n", 4);
        FUZZ_CHECK(end != NULL);
        /* The message lands in the HTML body, escaped: the head is gcorn's alone. */
        for (const char *c = buf; c < end; c++)
                FUZZ_CHECK((*c == '\r') == (c[1] == '\n') && *c != '\0');
        FUZZ_CHECK(count_tags(buf, n) == count_tags(plain, response_build_error(plain, sizeof(plain), status, head_only, NULL)));
        cl = memmem(buf, (size_t) (end - buf), "Content-Length: ", 16);
        FUZZ_CHECK(cl != NULL);
        if (!head_only)
                FUZZ_CHECK((size_t) strtoul(cl + 16, NULL, 10) == (size_t) (buf + n - (end + 4)));
        else
                FUZZ_CHECK(end + 4 == buf + n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
        uint8_t flags = fuzz_byte(&data, &len);
        int code = 100 + (fuzz_byte(&data, &len) << 8 | fuzz_byte(&data, &len)) % 500;
        const char *status, *name, *value;
        size_t status_len, name_len, value_len;
        char chunk[RESPONSE_CHUNK_LINE_MAX];
        int64_t content_length = -1;
        size_t n;

        next_piece(&data, &len, &status, &status_len);
        next_piece(&data, &len, &name, &name_len);
        next_piece(&data, &len, &value, &value_len);

        check_status(status, status_len, flags);

        if (response_header_name_valid(name, name_len)) {
                FUZZ_CHECK(name_len > 0);
                for (size_t i = 0; i < name_len; i++)
                        FUZZ_CHECK(http_is_tchar((unsigned char) name[i]));
        }
        if (response_header_value_valid(value, value_len))
                FUZZ_CHECK(!has_ctl_break(value, value_len));

        if (response_parse_content_length(value, value_len, &content_length) == 0) {
                int64_t v = 0;

                FUZZ_CHECK(value_len > 0 && content_length >= 0);
                for (size_t i = 0; i < value_len; i++) {
                        FUZZ_CHECK(value[i] >= '0' && value[i] <= '9');
                        v = v * 10 + (value[i] - '0');
                }
                FUZZ_CHECK(v == content_length);
        } else
                content_length = -1;

        check_framing(flags, code, content_length);
        if (code >= 100)
                check_error_page(code, flags & 16, value, value_len);

        n = response_chunk_line(chunk, (size_t) content_length);
        FUZZ_CHECK(n >= 3 && n <= RESPONSE_CHUNK_LINE_MAX && memcmp(chunk + n - 2, "\r\n", 2) == 0);
        FUZZ_CHECK(strtoull(chunk, NULL, 16) == (unsigned long long) (size_t) content_length);
        return 0;
}
