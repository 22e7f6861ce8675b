/* One parsed HTTP request head. Pure C: no Python, no sockets.
 *
 * Every pointer points into memory owned by the HttpParser that produced the Request and
 * stays valid until http_parser_reset() or http_parser_free(). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Slice {
        const char *p;
        size_t len;
} Slice;

typedef struct HttpHeader {
        Slice name;                     /* as received (case preserved) */
        Slice value;                    /* leading/trailing blanks stripped */
} HttpHeader;

typedef struct Request {
        Slice method;                   /* "GET" */
        Slice target;                   /* raw request-target, the RAW_URI: "/a%20b?x=1" */
        Slice path;                     /* the path part of target, still percent-encoded; for an
                                         * absolute-form target ("http://h/p?q") only "/p" */
        Slice query;                    /* after '?', without the fragment; empty when none */
        int http_major, http_minor;

        HttpHeader *headers;            /* in wire order, n_headers of them */
        size_t n_headers;

        int64_t content_length;         /* -1 when there is no Content-Length */
        bool chunked;                   /* Transfer-Encoding: chunked (last coding) */
        bool has_body;                  /* chunked, or content_length > 0 */
        bool keep_alive;                /* HTTP/1.1 unless "close"; HTTP/1.0 only with "keep-alive" */
        bool expect_continue;           /* Expect: 100-continue on HTTP/1.1 */
        bool upgrade;                   /* an Upgrade request; served as an ordinary one */
        bool is_head;                   /* method is HEAD */

        /* The parser already applied header_map: every name with '_' still in headers was
         * allowed (a Request made by hand has this false, and the environ drops them). */
        bool header_map_applied;
        /* Headers header_map "drop" took out; they follow the n_headers kept ones in headers,
         * in no particular order. Gunicorn still reads the scheme from them. */
        size_t n_dropped;
        /* A name with '_' was kept (header_map "dangerous", or a trusted forwarder's
         * forwarder_headers): a SCRIPT_NAME header may be among them. */
        bool underscore_kept;
} Request;

/* The first (or, with last, the last) of the n headers h named name (len bytes, any case). */
const HttpHeader *headers_find(const HttpHeader *h, size_t n, const char *name, size_t len, bool last);

/* Case-insensitive lookup of the first header with this name; NULL when absent. */
const HttpHeader *request_find_header(const Request *r, const char *name);
