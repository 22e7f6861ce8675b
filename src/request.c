/* Request helpers. Pure C: no Python, no sockets. */
#include <string.h>

#include "gcorn/request.h"
#include "gcorn/strutil.h"

const HttpHeader *headers_find(const HttpHeader *h, size_t n, const char *name, size_t len, bool last) {
        const HttpHeader *found = NULL;

        for (size_t i = 0; i < n; i++)
                if (h[i].name.len == len && ascii_case_equal(h[i].name.p, name, len)) {
                        found = &h[i];
                        if (!last)
                                break;
                }
        return found;
}

const HttpHeader *request_find_header(const Request *r, const char *name) {
        return headers_find(r->headers, r->n_headers, name, strlen(name), false);
}
