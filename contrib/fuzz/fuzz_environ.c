/* Raw bytes -> what a connection does with them before the app: the PROXY header, the
 * request parser, then the WSGI environ builder (src/environ.c) for every complete head,
 * against the embedded interpreter, initialised once.
 *
 * Input: a PROXY mode byte, a switches byte, a limits byte, a peer byte, then the bytes of
 * the connection. The peer byte picks the socket's peer: trusted (forwarded_allow_ips is
 * 127.0.0.1), untrusted, or a UNIX socket. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "gcorn/conn.h"
#include "gcorn/environ.h"
#include "gcorn/forwarded.h"
#include "gcorn/macro.h"
#include "gcorn/proxyproto.h"
#include "gcorn/python.h"
#include "gcorn/settings.h"

static char *const forwarder_headers[] = { "X_FORWARDED_PROTO", "X_SCRIPT_NAME", "SCRIPT_NAME", NULL };
static Settings settings;
static PyObject *input;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(_unused_ int *argc, _unused_ char ***argv) {
        char *error = NULL;

        unsetenv("SCRIPT_NAME");
        FUZZ_CHECK(settings_init(&settings) == 0);
        FUZZ_CHECK(settings_set(&settings, "forwarded_allow_ips", "127.0.0.1", &error) == 0);
        FUZZ_CHECK(python_init() == 0);
        python_gil_acquire();
        FUZZ_CHECK(environ_init(&settings) == 0);
        input = PyList_New(0);
        FUZZ_CHECK(input != NULL);
        return 0;
}

static void build(const Request *r, void *userdata) {
        const ConnInfo *info = userdata;
        PyObject *env = NULL;
        int k;

        k = environ_build(r, info, input, &env);
        if (k == -ENOMEM && PyErr_Occurred())
                PyErr_Print();
        FUZZ_CHECK(k == 0 || k == -EXDEV || k == -EPROTO);
        FUZZ_CHECK(!PyErr_Occurred());
        if (k < 0) {
                FUZZ_CHECK(env == NULL);
                return;
        }
        FUZZ_CHECK(PyDict_CheckExact(env));
        /* The suppressions hide the interpreter's allocations from LeakSanitizer, so a
         * reference the builder kept would go unseen: the environ must be ours alone. */
        FUZZ_CHECK(Py_REFCNT(env) == 1);
        FUZZ_CHECK(PyDict_GetItemString(env, "PATH_INFO") != NULL);
        FUZZ_CHECK(PyDict_GetItemString(env, "REQUEST_METHOD") != NULL);
        Py_DECREF(env);
}

/* As conn.c asks: the forwarded_allow_ips rule on the connection's addresses. */
static bool peer_trusted(const void *info) {
        return forwarded_peer_trusted(info);
}

static void fill_port(char *buf, size_t cap, unsigned port) {
        snprintf(buf, cap, "%u", port);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
        static const ProxyMode modes[] = { PROXY_OFF, PROXY_V1, PROXY_V2, PROXY_AUTO };
        ProxyMode mode = modes[fuzz_byte(&data, &len) % 4];
        uint8_t sw = fuzz_byte(&data, &len), lim = fuzz_byte(&data, &len), peer = fuzz_byte(&data, &len);
        ConnInfo info = {
                .server_name = "127.0.0.1",
                .server_port = "8000",
                .remote_port = "54321",
        };
        HttpParser *p = NULL;
        HttpLimits limits;

        switch (peer % 3) {
        case 0:
                strcpy(info.remote_addr, "127.0.0.1");
                break;
        case 1:
                strcpy(info.remote_addr, "10.9.8.7");
                break;
        default:
                info.is_unix = true;
                info.server_name[0] = info.server_port[0] = info.remote_port[0] = 0;
        }

        if (mode != PROXY_OFF) {
                const char *reason = NULL;
                ProxyHeader h;
                int r;

                r = proxy_scan(mode, (const char *) data, len, &h, &reason);
                if (r != PROXY_SCAN_NOT && r != PROXY_SCAN_DONE)
                        return 0;
                if (r == PROXY_SCAN_DONE) {
                        info.proxy_protocol = h.protocol;
                        if (h.has_addresses) {
                                memcpy(info.peer_addr, info.remote_addr, sizeof(info.peer_addr));
                                snprintf(info.remote_addr, sizeof(info.remote_addr), "%s", h.src_addr);
                                fill_port(info.remote_port, sizeof(info.remote_port), h.src_port);
                                snprintf(info.proxy_addr, sizeof(info.proxy_addr), "%s", h.dst_addr);
                                fill_port(info.proxy_port, sizeof(info.proxy_port), h.dst_port);
                        }
                        data += h.length;
                        len -= h.length;
                }
        }

        fuzz_limits(&limits, sw, lim, forwarder_headers);
        FUZZ_CHECK(http_parser_new(&p, &limits) == 0);
        http_parser_set_peer(p, peer_trusted, &info);
        for (int i = 0; i < 4 && len > 0; i++) {
                FuzzMessage m;

                if (fuzz_parse_one(p, data, len, 0, 255, build, &info, &m) != 1)
                        break;
                data += m.consumed;
                len -= m.consumed;
                http_parser_reset(p);
        }
        http_parser_free(p);
        return 0;
}
