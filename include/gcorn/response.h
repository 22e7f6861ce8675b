/* Response heads: status line, headers, framing decisions. Pure C, never logs.
 *
 * The WSGI layer hands the app's status and headers over; this module validates them (no
 * CR/LF/NUL, a three-digit status) and adds Date, Server, Connection and
 * Transfer-Encoding as HTTP/1.1 wants. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The canned answer for a request gcorn rejects (400, 408, 413, 414, 431, 500, 505 ...) or
 * whose app failed: a full response with "Connection: close" and Gunicorn's HTML page, whose
 * body names message (the parser's short reason, HTML-escaped, cut to fit; NULL: none). With
 * head_only (a HEAD request) the head alone, with the Content-Length a GET would get (RFC
 * 9110 9.3.2). Returns the length written into buf (RESPONSE_ERROR_MAX always suffices). */
#define RESPONSE_ERROR_MAX 512
size_t response_build_error(char *buf, size_t cap, int status, bool head_only, const char *message);

/* "Mon, 01 Jan 2024 00:00:00 GMT", refreshed at most once a second; static storage. */
const char *response_date(void);

/* The reason phrase gcorn uses for its own responses ("Not Found"); "Unknown" otherwise. */
const char *response_reason(int status);

/* Checks a WSGI status string ("200 OK", or "200" alone as Gunicorn accepts): a code from
 * 100 to 599 (RFC 9110 15), then nothing or a space and a reason of visible characters,
 * blanks and obs-text. Returns the status code or -EINVAL. Whether a 1xx may be the final
 * answer is the caller's business. */
int response_parse_status(const char *s, size_t len);

/* RFC 9110 token characters only, at least one. */
bool response_header_name_valid(const char *s, size_t len);

/* Field value characters only (VCHAR, SP, HTAB, obs-text): never CR, LF or NUL. */
bool response_header_value_valid(const char *s, size_t len);

/* Parses an app's Content-Length value: decimal digits only. Returns -EINVAL otherwise or
 * on overflow. */
int response_parse_content_length(const char *s, size_t len, int64_t *ret);

/* False for statuses that never carry a body: 1xx, 204, 304. */
bool response_status_allows_body(int status);

/* How the body is delimited on the wire. */
typedef enum ResponseFraming {
        RESPONSE_FRAMING_NONE,          /* no body is sent: HEAD, 1xx, 204, 304 */
        RESPONSE_FRAMING_LENGTH,        /* the app's Content-Length, excess cut */
        RESPONSE_FRAMING_CHUNKED,       /* HTTP/1.1 without Content-Length */
        RESPONSE_FRAMING_CLOSE,         /* HTTP/1.0 without Content-Length: ends at close */
} ResponseFraming;

/* content_length is -1 when the app gave none. As Gunicorn's Response.is_chunked(), plus
 * no body at all for HEAD and bodiless statuses. */
ResponseFraming response_framing(int http_major, int http_minor, bool is_head, int status,
                                 int64_t content_length);

typedef enum ResponseConnection {
        RESPONSE_CONNECTION_KEEP_ALIVE,
        RESPONSE_CONNECTION_CLOSE,
        RESPONSE_CONNECTION_UPGRADE,
} ResponseConnection;

/* Formats the part of the head gcorn owns, in Gunicorn's order:
 *   "HTTP/<major>.<minor> <status>\r\nServer: gcorn\r\nDate: ...\r\nConnection: ...\r\n"
 *   ["Transfer-Encoding: chunked\r\n"]
 * A status without a reason ("200") still gets the space after the code that RFC 9112 4
 * requires ("HTTP/1.1 200 \r\n").
 * The app's header lines and the final "\r\n" follow. Returns the length needed, which may
 * exceed cap (then nothing useful was written), like snprintf without the NUL. */
size_t response_format_start(char *buf, size_t cap, int http_major, int http_minor,
                             const char *status, size_t status_len, ResponseConnection connection,
                             bool chunked);

/* "1a2b\r\n" for a chunk of n bytes; returns the length (at most RESPONSE_CHUNK_LINE_MAX). */
#define RESPONSE_CHUNK_LINE_MAX 20
size_t response_chunk_line(char buf[static RESPONSE_CHUNK_LINE_MAX], size_t n);

#define RESPONSE_SERVER "gcorn"
