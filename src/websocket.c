/* WebSocket sessions over libwslay's event API, fed and drained through memory. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <wslay/wslay.h>

#include "gcorn/macro.h"
#include "gcorn/websocket.h"

typedef struct Queued {
        struct Queued *next;
        WebSocketMessage m;
} Queued;

struct WebSocket {
        wslay_event_context_ptr ctx;
        /* what websocket_feed() was given and wslay has not read yet */
        const uint8_t *in;
        size_t in_len;
        /* encoded frames, out_start..out_len still to go */
        uint8_t *out;
        size_t out_start, out_len, out_cap;
        bool nomem;
        Queued *head, **tail;
};

/* Whether the comma-separated header value holds token (any case), as Connection and
 * Upgrade lists do. */
static bool list_has_token(const HttpHeader *h, const char *token) {
        size_t tl = strlen(token);
        const char *p = h->value.p, *end = h->value.p + h->value.len;

        while (p < end) {
                const char *comma = memchr(p, ',', (size_t) (end - p)), *e = comma ? comma : end;

                while (p < e && (*p == ' ' || *p == '\t'))
                        p++;
                while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
                        e--;
                if ((size_t) (e - p) == tl && strncasecmp(p, token, tl) == 0)
                        return true;
                p = comma ? comma + 1 : end;
        }
        return false;
}

static bool any_header_has_token(const Request *r, const char *name, const char *token) {
        size_t nl = strlen(name);

        for (size_t i = 0; i < r->n_headers; i++)
                if (r->headers[i].name.len == nl && strncasecmp(r->headers[i].name.p, name, nl) == 0 &&
                    list_has_token(&r->headers[i], token))
                        return true;
        return false;
}

bool websocket_requested(const Request *r) {
        return any_header_has_token(r, "Upgrade", "websocket");
}

static bool is_base64(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* base64 of exactly 16 bytes: 22 digits, the last one with its 4 low bits clear, then "==". */
static bool key_valid(const Slice *k) {
        static const char last[] = "AQgw";

        if (k->len != WEBSOCKET_KEY_LEN || k->p[22] != '=' || k->p[23] != '=')
                return false;
        for (size_t i = 0; i < 22; i++)
                if (!is_base64(k->p[i]))
                        return false;
        return memchr(last, k->p[21], 4) != NULL;
}

int websocket_handshake_check(const Request *r, const char **ret_key, const char **ret_reason) {
        const HttpHeader *key, *version;

        if (r->method.len != 3 || memcmp(r->method.p, "GET", 3) != 0) {
                *ret_reason = "a WebSocket handshake is a GET";
                return -EBADMSG;
        }
        if (r->http_major < 1 || (r->http_major == 1 && r->http_minor < 1)) {
                *ret_reason = "a WebSocket handshake needs HTTP/1.1";
                return -EBADMSG;
        }
        if (!request_find_header(r, "Host")) {
                *ret_reason = "a WebSocket handshake needs Host";
                return -EBADMSG;
        }
        if (!any_header_has_token(r, "Connection", "upgrade")) {
                *ret_reason = "a WebSocket handshake needs Connection: Upgrade";
                return -EBADMSG;
        }
        /* RFC 6455 4.2.2: an unsupported version gets 426 with the versions there are */
        version = request_find_header(r, "Sec-WebSocket-Version");
        if (!version || version->value.len != 2 || memcmp(version->value.p, "13", 2) != 0) {
                *ret_reason = "Sec-WebSocket-Version must be 13";
                return -EPROTONOSUPPORT;
        }
        key = request_find_header(r, "Sec-WebSocket-Key");
        if (!key || !key_valid(&key->value) ||
            headers_find(r->headers, r->n_headers, "Sec-WebSocket-Key", 17, true) != key) {
                *ret_reason = "Sec-WebSocket-Key must be one base64 nonce of 16 bytes";
                return -EBADMSG;
        }
        *ret_key = key->value.p;
        return 0;
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user_data) {
        WebSocket *ws = user_data;
        size_t n = MIN(len, ws->in_len);

        (void) flags;
        if (n == 0) {
                wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
                return -1;
        }
        memcpy(buf, ws->in, n);
        ws->in += n;
        ws->in_len -= n;
        return (ssize_t) n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user_data) {
        WebSocket *ws = user_data;

        (void) flags;
        if (ws->out_start > 0 && ws->out_start == ws->out_len)
                ws->out_start = ws->out_len = 0;
        if (ws->out_len + len > ws->out_cap) {
                size_t cap = MAX(ws->out_cap * 2, ws->out_len + len);
                uint8_t *p;

                /* slide what is left to the front rather than grow when that suffices */
                if (ws->out_start > 0 && ws->out_len - ws->out_start + len <= ws->out_cap) {
                        memmove(ws->out, ws->out + ws->out_start, ws->out_len - ws->out_start);
                        ws->out_len -= ws->out_start;
                        ws->out_start = 0;
                } else {
                        p = realloc(ws->out, cap);
                        if (!p) {
                                ws->nomem = true;
                                wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
                                return -1;
                        }
                        ws->out = p;
                        ws->out_cap = cap;
                }
        }
        memcpy(ws->out + ws->out_len, data, len);
        ws->out_len += len;
        return (ssize_t) len;
}

static void push(WebSocket *ws, const WebSocketMessage *m) {
        Queued *q = calloc(1, sizeof(Queued));

        if (!q) {
                free(m->data);
                ws->nomem = true;
                return;
        }
        q->m = *m;
        *ws->tail = q;
        ws->tail = &q->next;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user_data) {
        WebSocket *ws = user_data;
        WebSocketMessage m = { .opcode = arg->opcode };
        const uint8_t *p = arg->msg;
        size_t len = arg->msg_length;

        (void) ctx;
        switch (arg->opcode) {
        case WSLAY_TEXT_FRAME:
        case WSLAY_BINARY_FRAME:
        case WSLAY_PONG:
                break;
        case WSLAY_CONNECTION_CLOSE:
                m.code = arg->status_code ? arg->status_code : 1005;
                /* the payload is the code (2 bytes) and then the reason */
                p = len >= 2 ? p + 2 : p;
                len = len >= 2 ? len - 2 : 0;
                break;
        default:
                return;         /* a ping: wslay answers it itself */
        }
        m.data = malloc(len + 1);
        if (!m.data) {
                ws->nomem = true;
                return;
        }
        if (len > 0)
                memcpy(m.data, p, len);
        m.data[len] = 0;
        m.len = len;
        push(ws, &m);
}

int websocket_new(uint64_t max_message, WebSocket **ret) {
        static const struct wslay_event_callbacks callbacks = {
                .recv_callback = recv_cb,
                .send_callback = send_cb,
                .on_msg_recv_callback = on_msg,
        };
        _cleanup_free_ WebSocket *ws = calloc(1, sizeof(WebSocket));

        if (!ws)
                return -ENOMEM;
        if (wslay_event_context_server_init(&ws->ctx, &callbacks, ws) < 0)
                return -ENOMEM;
        wslay_event_config_set_max_recv_msg_length(ws->ctx, max_message);
        /* permessage-deflate is declined, so a frame with RSV1 set is a protocol error */
        wslay_event_config_set_allowed_rsv_bits(ws->ctx, WSLAY_RSV_NONE);
        ws->tail = &ws->head;
        *ret = TAKE_PTR(ws);
        return 0;
}

WebSocket *websocket_free(WebSocket *ws) {
        if (!ws)
                return NULL;
        for (Queued *q = ws->head, *next; q; q = next) {
                next = q->next;
                free(q->m.data);
                free(q);
        }
        if (ws->ctx)
                wslay_event_context_free(ws->ctx);
        free(ws->out);
        free(ws);
        return NULL;
}

/* Encodes whatever wslay queued (answers to pings, closes) into the output. */
static int flush(WebSocket *ws) {
        if (wslay_event_want_write(ws->ctx) && wslay_event_send(ws->ctx) < 0)
                return -ENOMEM;
        return ws->nomem ? -ENOMEM : 0;
}

int websocket_feed(WebSocket *ws, const void *data, size_t len) {
        int r;

        ws->in = data;
        ws->in_len = len;
        if (wslay_event_get_read_enabled(ws->ctx) && wslay_event_recv(ws->ctx) < 0 && !ws->nomem) {
                ws->in_len = 0;
                return -EPROTO;
        }
        ws->in_len = 0;
        r = flush(ws);
        if (r < 0)
                return r;
        /* wslay stops reading and queues its close on a protocol error, invalid UTF-8 or an
         * oversized message; a close from the peer stops reading too, and is no error */
        if (!wslay_event_get_read_enabled(ws->ctx) && !wslay_event_get_close_received(ws->ctx))
                return -EPROTO;
        return 0;
}

int websocket_next(WebSocket *ws, WebSocketMessage *ret) {
        Queued *q = ws->head;

        if (!q)
                return 0;
        ws->head = q->next;
        if (!ws->head)
                ws->tail = &ws->head;
        *ret = q->m;
        free(q);
        return 1;
}

int websocket_send(WebSocket *ws, WebSocketOpcode opcode, const void *data, size_t len) {
        struct wslay_event_msg msg = { .opcode = (uint8_t) opcode, .msg = data, .msg_length = len };
        int r;

        if (opcode != WEBSOCKET_TEXT && opcode != WEBSOCKET_BINARY && !(opcode == WEBSOCKET_PING && len <= 125))
                return -EINVAL;
        r = wslay_event_queue_msg(ws->ctx, &msg);
        if (r == WSLAY_ERR_NO_MORE_MSG)
                return -EPIPE;
        if (r < 0)
                return r == WSLAY_ERR_NOMEM ? -ENOMEM : -EINVAL;
        return flush(ws);
}

/* RFC 6455 7.4: 1004-1006 and 1015 are never sent; 1016-2999 are unassigned. */
static bool close_code_sendable(uint16_t code) {
        return code == 0 || (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                (code >= 3000 && code <= 4999);
}

int websocket_close(WebSocket *ws, uint16_t code, const char *reason, size_t reason_len) {
        int r;

        if (!close_code_sendable(code) || reason_len > 123 || (code == 0 && reason_len > 0))
                return -EINVAL;
        r = wslay_event_queue_close(ws->ctx, code, (const uint8_t *) reason, reason_len);
        if (r == WSLAY_ERR_NO_MORE_MSG)
                return -EPIPE;
        if (r < 0)
                return r == WSLAY_ERR_NOMEM ? -ENOMEM : -EINVAL;
        return flush(ws);
}

void websocket_output(WebSocket *ws, const uint8_t **ret, size_t *ret_len) {
        *ret = ws->out + ws->out_start;
        *ret_len = ws->out_len - ws->out_start;
}

void websocket_output_consumed(WebSocket *ws, size_t n) {
        ws->out_start += MIN(n, ws->out_len - ws->out_start);
}

bool websocket_close_sent(WebSocket *ws) {
        return wslay_event_get_close_sent(ws->ctx);
}

uint16_t websocket_close_code_sent(WebSocket *ws) {
        return wslay_event_get_close_sent(ws->ctx) ? wslay_event_get_status_code_sent(ws->ctx) : 0;
}

bool websocket_close_received(WebSocket *ws) {
        return wslay_event_get_close_received(ws->ctx);
}
