/* One server-side WebSocket connection (RFC 6455) over libwslay's frame codec: the
 * opening-handshake checks, Sec-WebSocket-Accept, and a byte-in/byte-out session that never
 * touches a socket. The caller feeds what it received with websocket_feed(), takes whole
 * messages with websocket_next(), and writes out what websocket_output() holds, so the
 * connection core keeps owning the socket. Pings are answered, fragments joined, text
 * checked for UTF-8, a close echoed, and a message over the size limit closes with 1009.
 * Extensions (permessage-deflate) are always declined: no reserved bit is allowed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gcorn/request.h"

#define WEBSOCKET_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WEBSOCKET_KEY_LEN 24            /* base64 of 16 bytes */

typedef enum WebSocketOpcode {
        WEBSOCKET_TEXT = 0x1,
        WEBSOCKET_BINARY = 0x2,
        WEBSOCKET_CLOSE = 0x8,
        WEBSOCKET_PING = 0x9,
        WEBSOCKET_PONG = 0xA,
} WebSocketOpcode;

/* Whether r asks for a WebSocket (an Upgrade: websocket header): the other checks are
 * websocket_handshake_check()'s. */
bool websocket_requested(const Request *r);

/* RFC 6455 4.2.1 on a request that asked for a WebSocket. Returns 0 and points *ret_key at
 * the Sec-WebSocket-Key (WEBSOCKET_KEY_LEN bytes, in r's memory); -EBADMSG for a bad
 * handshake (a 400), -EPROTONOSUPPORT for a version other than 13 (a 426 naming
 * Sec-WebSocket-Version: 13). *ret_reason says what was wrong. */
int websocket_handshake_check(const Request *r, const char **ret_key, const char **ret_reason);

typedef struct WebSocket WebSocket;

typedef struct WebSocketMessage {
        WebSocketOpcode opcode;
        uint8_t *data;                  /* owned by the caller (free()); the reason of a close */
        size_t len;
        uint16_t code;                  /* a close's status: 1005 when it carried none */
} WebSocketMessage;

/* max_message: the largest message taken whole (--websocket-max-message-size). Returns 0 or
 * -ENOMEM. */
int websocket_new(uint64_t max_message, WebSocket **ret);
WebSocket *websocket_free(WebSocket *ws);

/* Decodes len received bytes. Returns 0, or -EPROTO when the peer broke the protocol (a
 * close frame with the reason's code is queued for output: 1002, 1007 or 1009), -ENOMEM. */
int websocket_feed(WebSocket *ws, const void *data, size_t len);

/* Takes the next whole message received: 1 and *ret filled, or 0 when none is waiting. Text,
 * binary, close, and pongs (for the server's own pings); wslay answers pings itself. */
int websocket_next(WebSocket *ws, WebSocketMessage *ret);

/* Queues a text or binary message, or a ping (at most 125 bytes). Returns 0, -EPIPE once a
 * close was queued, -EINVAL (text that is not UTF-8 is the caller's to refuse), -ENOMEM. */
int websocket_send(WebSocket *ws, WebSocketOpcode opcode, const void *data, size_t len);

/* Queues a close frame (code 0: none). Returns 0, -EPIPE when one was already queued,
 * -EINVAL for a reason over 123 bytes or a code a server may not send. */
int websocket_close(WebSocket *ws, uint16_t code, const char *reason, size_t reason_len);

/* The encoded bytes waiting to go out (none: *ret_len 0), and how many of them went. */
void websocket_output(WebSocket *ws, const uint8_t **ret, size_t *ret_len);
void websocket_output_consumed(WebSocket *ws, size_t n);

/* A close frame went out (then nothing more will), and one came in. */
bool websocket_close_sent(WebSocket *ws);
bool websocket_close_received(WebSocket *ws);
/* The code of the close frame that went out (a protocol error's, or the app's); 0: none yet. */
uint16_t websocket_close_code_sent(WebSocket *ws);
