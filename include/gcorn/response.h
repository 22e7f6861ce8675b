/* Response heads: status line, headers, framing decisions. Pure C, never logs.
 *
 * The WSGI layer hands the app's status and headers over; this module validates them (no
 * CR/LF/NUL, a three-digit status) and adds Date, Server, Connection and
 * Transfer-Encoding as HTTP/1.1 wants. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The canned answer for a request gcorn rejects before any app runs (400, 408, 413, 414,
 * 431, 500, 505 ...): a full response with "Connection: close" and a short text body.
 * Returns the length written into buf (a 512-byte buffer always suffices). */
size_t response_build_error(char *buf, size_t cap, int status);

/* "Mon, 01 Jan 2024 00:00:00 GMT", refreshed at most once a second; static storage. */
const char *response_date(void);
