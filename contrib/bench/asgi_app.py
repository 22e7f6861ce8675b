"""The benchmark's raw ASGI app (no framework), the same file for every ASGI server.

  /        "Hello, World!" (13 bytes) with Content-Length
  /stream  64 chunks of 1 KiB, each in its own http.response.body message (chunked)

Lifespan messages are answered so that servers which run lifespan by default start cleanly.
"""

HELLO = b"Hello, World!"
HELLO_START = {"type": "http.response.start", "status": 200,
               "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]}
HELLO_BODY = {"type": "http.response.body", "body": HELLO}
CHUNK = b"x" * 1024
CHUNKS = 64


async def _lifespan(receive, send):
        while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                        await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                        await send({"type": "lifespan.shutdown.complete"})
                        return


async def app(scope, receive, send):
        if scope["type"] == "lifespan":
                return await _lifespan(receive, send)
        if scope["type"] != "http":
                return
        path = scope["path"]
        if path == "/":
                await send(HELLO_START)
                await send(HELLO_BODY)
                return
        if path == "/stream":
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/octet-stream")]})
                for _ in range(CHUNKS):
                        await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
                return
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"9")]})
        await send({"type": "http.response.body", "body": b"Not Found"})


application = app
