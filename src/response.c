/* Response heads: validation of what the app hands over, framing, canned error answers. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gcorn/httpchar.h"
#include "gcorn/macro.h"
#include "gcorn/response.h"
#include "gcorn/strutil.h"

const char *response_date(void) {
        /* C-locale names: strftime's %a/%b follow LC_TIME, which an app may change. */
        static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
        static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
        /* Always 29 characters; the size only quiets the compiler's worst case. */
        static char buf[80];
        static time_t cached = (time_t) -1;
        time_t now = time(NULL);
        struct tm tm;

        if (now == cached)
                return buf;
        if (!gmtime_r(&now, &tm))
                return buf;
        snprintf(buf, sizeof(buf), "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
                 tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                 tm.tm_sec);
        cached = now;
        return buf;
}

const char *response_reason(int status) {
        switch (status) {
        case 100: return "Continue";
        case 200: return "OK";
        case 204: return "No Content";
        case 304: return "Not Modified";
        case 400: return "Bad Request";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 411: return "Length Required";
        case 413: return "Request Entity Too Large";
        case 414: return "Request-URI Too Long";
        case 417: return "Expectation Failed";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
        }
}

/* Room for the message in an error page: with the longest reason twice and the head, the
 * whole answer stays within RESPONSE_ERROR_MAX. */
#define ERROR_MESSAGE_MAX 160

/* s HTML-escaped as Python's html.escape() does, cut before an entity that would not fit;
 * returns the length. */
static size_t html_escape(char *buf, size_t cap, const char *s) {
        size_t at = 0;

        for (; s && *s; s++) {
                const char *e = NULL;
                size_t n;

                switch (*s) {
                case '&': e = "&amp;"; break;
                case '<': e = "&lt;"; break;
                case '>': e = "&gt;"; break;
                case '"': e = "&quot;"; break;
                case '\'': e = "&#x27;"; break;
                }
                n = e ? strlen(e) : 1;
                if (n > cap - at)
                        break;
                if (e)
                        memcpy(buf + at, e, n);
                else
                        buf[at] = *s;
                at += n;
        }
        return at;
}

size_t response_build_error(char *buf, size_t cap, int status, bool head_only, const char *message) {
        char body[384], escaped[ERROR_MESSAGE_MAX];
        const char *reason;
        size_t mlen;
        int blen, n;

        if (status < 100 || status > 599)
                status = 500;
        reason = response_reason(status);
        mlen = html_escape(escaped, sizeof(escaped), message);
        /* Gunicorn's page (util.write_error), byte for byte: the message line is there even
         * when empty. */
        blen = snprintf(body, sizeof(body),
                        "<html>\n  <head>\n    <title>%s</title>\n  </head>\n  <body>\n"
                        "    <h1><p>%s</p></h1>\n    %.*s\n  </body>\n</html>\n",
                        reason, reason, (int) mlen, escaped);
        if (blen < 0 || (size_t) blen >= sizeof(body))
                blen = 0;
        n = snprintf(buf, cap,
                     "HTTP/1.1 %d %s\r\nServer: " RESPONSE_SERVER "\r\nDate: %s\r\n"
                     "Connection: close\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%.*s",
                     status, reason, response_date(), blen, head_only ? 0 : blen, body);
        if (n < 0)
                return 0;
        return MIN((size_t) n, cap > 0 ? cap - 1 : 0);
}

int response_parse_status(const char *s, size_t len) {
        int code;

        if (len < 3)
                return -EINVAL;
        for (size_t i = 0; i < 3; i++)
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
        code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
        if (code < 100 || code > 599)
                return -EINVAL;
        if (len == 3)
                return code;
        if (s[3] != ' ')
                return -EINVAL;
        if (!http_all_in_class(s + 4, len - 4, HTTP_CHAR_FIELD))
                return -EINVAL;
        return code;
}

bool response_header_name_valid(const char *s, size_t len) {
        return len > 0 && http_all_in_class(s, len, HTTP_CHAR_TOKEN);
}

bool response_header_value_valid(const char *s, size_t len) {
        return http_all_in_class(s, len, HTTP_CHAR_FIELD);
}

int response_parse_content_length(const char *s, size_t len, int64_t *ret) {
        return parse_decimal_int64(s, len, ret) < 0 ? -EINVAL : 0;
}

bool response_status_allows_body(int status) {
        return status >= 200 && status != 204 && status != 304;
}

ResponseFraming response_framing(int http_major, int http_minor, bool is_head, int status,
                                 int64_t content_length) {
        if (is_head || !response_status_allows_body(status))
                return RESPONSE_FRAMING_NONE;
        if (content_length >= 0)
                return RESPONSE_FRAMING_LENGTH;
        if (http_major > 1 || (http_major == 1 && http_minor >= 1))
                return RESPONSE_FRAMING_CHUNKED;
        return RESPONSE_FRAMING_CLOSE;
}

static size_t put(char *buf, size_t cap, size_t at, const char *s, size_t len) {
        if (at < cap)
                memcpy(buf + at, s, MIN(len, cap - at));
        return at + len;
}

#define PUT_LITERAL(buf, cap, at, s) put(buf, cap, at, s, sizeof(s) - 1)

size_t response_format_start(char *buf, size_t cap, int http_major, int http_minor,
                             const char *status, size_t status_len, ResponseConnection connection,
                             bool chunked) {
        size_t at = 0;

        /* RFC 9110 §2.5: answer with the highest 1.x we speak, not a minor version we do not
         * implement (HTTP/1.2 requests are served as 1.1). */
        if (http_major == 1 && http_minor == 0)
                at = PUT_LITERAL(buf, cap, at, "HTTP/1.0 ");
        else
                at = PUT_LITERAL(buf, cap, at, "HTTP/1.1 ");
        at = put(buf, cap, at, status, status_len);
        if (status_len == 3)
                at = PUT_LITERAL(buf, cap, at, " ");
        at = PUT_LITERAL(buf, cap, at, "\r\nServer: " RESPONSE_SERVER "\r\nDate: ");
        at = put(buf, cap, at, response_date(), 29);
        switch (connection) {
        case RESPONSE_CONNECTION_KEEP_ALIVE:
                at = PUT_LITERAL(buf, cap, at, "\r\nConnection: keep-alive\r\n");
                break;
        case RESPONSE_CONNECTION_UPGRADE:
                at = PUT_LITERAL(buf, cap, at, "\r\nConnection: upgrade\r\n");
                break;
        default:
                at = PUT_LITERAL(buf, cap, at, "\r\nConnection: close\r\n");
                break;
        }
        if (chunked)
                at = PUT_LITERAL(buf, cap, at, "Transfer-Encoding: chunked\r\n");
        return at;
}

size_t response_chunk_line(char buf[static RESPONSE_CHUNK_LINE_MAX], size_t n) {
        static const char hex[] = "0123456789abcdef";
        char tmp[16];
        size_t len = 0, at = 0;

        do {
                tmp[len++] = hex[n & 0xf];
                n >>= 4;
        } while (n > 0);
        while (len > 0)
                buf[at++] = tmp[--len];
        buf[at++] = '\r';
        buf[at++] = '\n';
        return at;
}
