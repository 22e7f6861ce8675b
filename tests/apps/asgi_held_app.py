"""Routes for tests/integration/test_asgi_held.py: when the answers of the asgi worker's
tasks leave (held in the connection's queue until the event loop's round ends)."""
import asyncio
import os
import time

MARKS = os.environ.get("GCORN_TEST_MARKS", "/tmp")
_release = None


async def _answer(send, body, status=200):
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
        global _release
        if scope["type"] != "http":
                return
        path = scope["path"]
        query = scope["query_string"].decode()
        if path == "/then-block":
                # the whole answer, then the loop blocked (no await) before the task ends
                await _answer(send, b"sent before the block\n")
                time.sleep(float(query or "0.5"))
                with open(os.path.join(MARKS, "blocked-done"), "w"):
                        pass
                return
        if path == "/then-wait":
                # the whole answer, then the task waits (the loop goes on) for /release
                _release = asyncio.Event()
                await _answer(send, b"sent before the wait\n")
                try:
                        await asyncio.wait_for(_release.wait(), 20)
                except asyncio.TimeoutError:
                        pass
                return
        if path == "/release":
                if _release is not None:
                        _release.set()
                await _answer(send, b"released\n")
                return
        if path == "/echo":
                body = b""
                while True:
                        m = await receive()
                        body += m.get("body", b"")
                        if not m.get("more_body"):
                                break
                await _answer(send, body)
                return
        if path == "/small-then-large":
                # a small chunk the round holds, then one too large to hold: in order
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"a" * 100, "more_body": True})
                await asyncio.sleep(0)
                await send({"type": "http.response.body", "body": b"b" * 200000})
                return
        await _answer(send, b"not found\n", 404)
