/* HTTP/1.x request parsing: the head in one pass by gcorn's own scanner (request line, header
 * section, limits, the checks RFC 9112 and Gunicorn ask for, request-smuggling shapes), then
 * the body (Content-Length or chunked). Pure C: no Python, no sockets, never logs.
 *
 * One HttpParser serves one connection: feed the head, then the body, then reset for the
 * next pipelined or keep-alive request. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gcorn/request.h"

/* What to do with a header name that holds '_' (Gunicorn's header_map): once mapped to an
 * HTTP_* key it could pose as the same name spelt with '-'. */
typedef enum HeaderMap {
        HEADER_MAP_DROP,                /* leave it out of the request (the default) */
        HEADER_MAP_REFUSE,              /* answer 400 */
        HEADER_MAP_DANGEROUS,           /* keep it, as if the mapping were safe */
} HeaderMap;

typedef struct HttpLimits {
        size_t request_line;            /* 0 = unlimited (still capped by the head buffer) */
        size_t fields;                  /* header count */
        size_t field_size;              /* one "Name: value" line; 0 = unlimited */
        int64_t body;                   /* 0 = unlimited */

        /* Gunicorn's request-parsing switches, all off (strict) when zeroed. */
        bool strip_header_spaces;       /* "Name :" is "Name:" rather than a 400 */
        bool permit_obsolete_folding;   /* continuation lines join the value with one space */
        bool casefold_http_method;      /* lower-case method letters are upper-cased */
        bool permit_unconventional_http_method; /* any token method: any length, a-z, '#' */
        HeaderMap header_map;
        /* Names with '_' (upper case, as Gunicorn compares them; "*" = all) that a trusted
         * forwarder may send whatever header_map says; NULL-terminated, NULL = none. Not
         * copied: it must outlive the parser. */
        char *const *forwarder_headers;
} HttpLimits;

typedef struct HttpParser HttpParser;

int http_parser_new(HttpParser **ret, const HttpLimits *limits);
HttpParser *http_parser_free(HttpParser *p);

/* How to learn whether the connection's peer is a trusted forwarder (Gunicorn's
 * forwarded_allow_ips), whose forwarder_headers are kept: trusted(peer), called only when a
 * header could be one of them. None (untrusted) until set; kept across http_parser_reset(). */
void http_parser_set_peer(HttpParser *p, bool (*trusted)(const void *peer), const void *peer);

/* Forget the current request; the next http_parser_feed_head() starts a new one. Buffers a
 * long head grew are given back. */
void http_parser_reset(HttpParser *p);

/* Feeds request-head bytes. *ret_consumed tells how many were used: after the head completes
 * nothing past the blank line is consumed (the body and pipelined requests stay with the
 * caller). Returns 0 when more bytes are needed, 1 when the head is complete (see
 * http_parser_request()), or a negative errno on a malformed head; then
 * http_parser_error_status() gives the status to answer (400, 413, 414, 431, 501, 505) and
 * http_parser_error_reason() a short static text for the log. */
int http_parser_feed_head(HttpParser *p, const char *data, size_t len, size_t *ret_consumed);

/* The request whose head is complete; NULL before. */
const Request *http_parser_request(const HttpParser *p);

/* Decodes body bytes (Content-Length or chunked framing) from data into out. Consumes at most
 * what it can decode into out_cap bytes and never consumes bytes past the end of the message.
 * Returns 0 when more input is needed (or out is full), 1 when the message is complete (all
 * of the body has been handed out), or a negative errno on a malformed body (-EBADMSG) or a
 * body over the limit (-EFBIG); the error status as above. Body bytes decoded before a fault
 * in the same call are handed out first (return 0), and the next call reports the fault, so
 * what comes out does not depend on how the bytes were split. */
int http_parser_feed_body(HttpParser *p, const char *data, size_t len, size_t *ret_consumed,
                          char *out, size_t out_cap, size_t *ret_out_len);

/* True once the whole message (head and body) has been parsed. */
bool http_parser_message_complete(const HttpParser *p);

/* Bytes of the body not yet handed out by http_parser_feed_body(): exact for Content-Length,
 * -1 for chunked bodies that have not ended. */
int64_t http_parser_body_remaining(const HttpParser *p);

/* The request line said HEAD (known before the head is complete, for error answers). */
bool http_parser_is_head(const HttpParser *p);

int http_parser_error_status(const HttpParser *p);
const char *http_parser_error_reason(const HttpParser *p);
