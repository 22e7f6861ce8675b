"""An ASGI app for the asgi worker's watch for a client's hang-up (test_asgi_hangup.py):
what receive() says after the body, while the app still answers, as Starlette's
StreamingResponse asks it (its listen_for_disconnect() beside the stream).

  /readers        the fds the asyncio loop watches for reading, as JSON (no watch running)
  /watching       the same while a receive() after the body waits for the client's hang-up
  /stream?id=X    CHUNKS chunks 20 ms apart, a receive() waiting beside them; prints
                  "stream X saw http.disconnect after N chunks" if it says so before the
                  end, else "stream X complete, then <its message>" once the response is
                  complete; with &extra=1 a second receive() waits beside it and is
                  cancelled after two chunks
"""
import asyncio
import json
import selectors
import sys
from urllib.parse import parse_qs

CHUNKS = 50


def say(line):
        print("asgi_hangup_app: " + line, file=sys.stderr, flush=True)


def _readers():
        # asyncio's selector loop only (the test runs it with --asgi-loop asyncio)
        loop = asyncio.get_running_loop()
        return sorted(k.fd for k in loop._selector.get_map().values() if k.events & selectors.EVENT_READ)


async def _body(receive):
        while True:
                m = await receive()
                if m["type"] != "http.request" or not m.get("more_body", False):
                        return m


async def _json(send, obj):
        body = json.dumps(obj).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
        if scope["type"] == "lifespan":
                while True:
                        m = await receive()
                        if m["type"] == "lifespan.startup":
                                await send({"type": "lifespan.startup.complete"})
                        elif m["type"] == "lifespan.shutdown":
                                await send({"type": "lifespan.shutdown.complete"})
                                return
        path = scope["path"]
        await _body(receive)
        if path == "/readers":
                await _json(send, _readers())
                return
        if path == "/watching":
                listener = asyncio.ensure_future(receive())
                for _ in range(10):
                        await asyncio.sleep(0)
                during = _readers()
                done = listener.done()
                await _json(send, {"readers": during, "listener_done": done})
                m = await listener
                say("watching: after the response, %s" % m["type"])
                return
        if path == "/stream":
                q = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}
                name = q.get("id", "?")
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"text/plain")]})
                listener = asyncio.ensure_future(receive())
                # &extra=1: a second receive() waits too, and is cancelled after two chunks
                extra = asyncio.ensure_future(receive()) if q.get("extra") else None
                for i in range(CHUNKS):
                        if extra is not None and i == 2:
                                extra.cancel()
                        if listener.done():
                                say("stream %s saw %s after %d chunks" % (name, listener.result()["type"], i))
                                return
                        await send({"type": "http.response.body", "body": b"%s:%d\n" % (name.encode(), i),
                                    "more_body": True})
                        await asyncio.sleep(0.02)
                await send({"type": "http.response.body", "body": b"end\n"})
                m = await listener
                say("stream %s complete, then %s" % (name, m["type"]))
                return
        await _json(send, {"path": path})
