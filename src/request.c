/* Request helpers. Pure C: no Python, no sockets. */
#include <string.h>
#include <strings.h>

#include "gcorn/request.h"

const HttpHeader *request_find_header(const Request *r, const char *name) {
        size_t n = strlen(name);

        for (size_t i = 0; i < r->n_headers; i++) {
                const HttpHeader *h = &r->headers[i];

                if (h->name.len == n && strncasecmp(h->name.p, name, n) == 0)
                        return h;
        }
        return NULL;
}
