"""A raw ASGI 3 app for the asgi worker's conformance tests (standard library only).

Each route exercises one rule of the spec; what the app saw that the client cannot (a
disconnect, the lifespan's shutdown) it prints, one line each, for the test to read in
the server's log. ASGI_APP_STARTUP=fail makes the lifespan's startup fail; =raise makes it
raise."""

import asyncio
import contextvars
import json
import os
import sys
import time
from urllib.parse import parse_qs


_var = contextvars.ContextVar("asgi_app_var", default="unset")


def say(line):
        print("asgi_app: " + line, file=sys.stderr, flush=True)


def _jsonable(v):
        if isinstance(v, bytes):
                return {"bytes": v.decode("latin-1")}
        if isinstance(v, (list, tuple)):
                return [_jsonable(x) for x in v]
        if isinstance(v, dict):
                return {k: _jsonable(x) for k, x in v.items()}
        return v


def _qs(scope):
        return {k: v[-1] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()}


async def _answer(send, body, status=200, ctype=b"text/plain", extra=()):
        if isinstance(body, str):
                body = body.encode("utf-8")
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())] + list(extra)})
        await send({"type": "http.response.body", "body": body})


async def _read_all(receive):
        chunks = []
        while True:
                m = await receive()
                if m["type"] == "http.disconnect":
                        return None, chunks
                assert m["type"] == "http.request", m
                chunks.append(m.get("body", b""))
                if not m.get("more_body", False):
                        return b"".join(chunks), chunks


async def lifespan(scope, receive, send):
        assert scope["asgi"]["version"] == "3.0", scope
        while True:
                m = await receive()
                if m["type"] == "lifespan.startup":
                        how = os.environ.get("ASGI_APP_STARTUP", "")
                        if how == "fail":
                                await send({"type": "lifespan.startup.failed", "message": "no database"})
                                return
                        if how == "raise":
                                raise RuntimeError("startup exploded")
                        scope["state"]["started_at"] = "boot"
                        scope["state"]["counter"] = 0
                        say("lifespan startup pid=%d" % os.getpid())
                        await send({"type": "lifespan.startup.complete"})
                elif m["type"] == "lifespan.shutdown":
                        say("lifespan shutdown pid=%d" % os.getpid())
                        await send({"type": "lifespan.shutdown.complete"})
                        return


async def websocket(scope, receive, send):
        path = scope["path"]
        m = await receive()
        assert m["type"] == "websocket.connect", m
        if path == "/ws/deny":
                await send({"type": "websocket.http.response.start", "status": 403,
                            "headers": [(b"content-type", b"text/plain")]})
                await send({"type": "websocket.http.response.body", "body": b"go away"})
                return
        if path == "/ws/reject":
                await send({"type": "websocket.close", "code": 1008})
                return
        accept = {"type": "websocket.accept", "headers": [(b"x-ws", b"yes")]}
        if scope["subprotocols"]:
                accept["subprotocol"] = scope["subprotocols"][-1]
        await send(accept)
        if path == "/ws/scope":
                await send({"type": "websocket.send", "text": json.dumps(_jsonable(
                        {k: v for k, v in scope.items() if k != "state"}))})
        if path == "/ws/push":
                # sends and never receives, as a feed does: the server alone sees the client's
                # pings and close, and a send after the client's close raises
                for i in range(600):
                        try:
                                await send({"type": "websocket.send", "text": "tick %d" % i})
                        except OSError as e:
                                say("websocket push ended: %s" % type(e).__name__)
                                return
                        await asyncio.sleep(0.05)
                await send({"type": "websocket.close", "code": 1000})
                return
        while True:
                m = await receive()
                if m["type"] == "websocket.disconnect":
                        say("websocket disconnect code=%s" % m.get("code"))
                        return
                if m.get("text") == "close":
                        await send({"type": "websocket.close", "code": 4001, "reason": "asked"})
                        return
                if m.get("text") is not None:
                        await send({"type": "websocket.send", "text": m["text"]})
                else:
                        await send({"type": "websocket.send", "bytes": m["bytes"]})


async def app(scope, receive, send):
        if scope["type"] == "lifespan":
                return await lifespan(scope, receive, send)
        if scope["type"] == "websocket":
                return await websocket(scope, receive, send)
        assert scope["type"] == "http", scope
        path = scope["path"]
        q = _qs(scope)

        if path == "/":
                return await _answer(send, b"Hello, World!\n")
        if path.startswith("/scope"):
                s = {k: v for k, v in scope.items() if k != "state"}
                s["state"] = dict(scope.get("state", {}))
                return await _answer(send, json.dumps(_jsonable(s)), ctype=b"application/json")
        if path == "/state":
                # each request gets its own shallow copy: this write is not seen by the next
                scope["state"]["counter"] += 1
                return await _answer(send, json.dumps(scope["state"]), ctype=b"application/json")
        if path == "/echo":
                body, chunks = await _read_all(receive)
                return await _answer(send, body, extra=[(b"x-chunks", str(len(chunks)).encode())])
        if path == "/slowread":
                # reads one message at a time, slowly: the server must not buffer the rest
                total = 0
                while True:
                        m = await receive()
                        total += len(m.get("body", b""))
                        if not m.get("more_body"):
                                break
                        await asyncio.sleep(float(q.get("delay", "0.01")))
                return await _answer(send, str(total))
        if path == "/stream":
                n, size = int(q.get("n", "5")), int(q.get("size", "10"))
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/octet-stream")]})
                for i in range(n):
                        await send({"type": "http.response.body", "body": bytes([65 + i % 26]) * size,
                                    "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
        if path == "/stream-length":
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-length", b"6")]})
                await send({"type": "http.response.body", "body": b"abc", "more_body": True})
                await send({"type": "http.response.body", "body": b"def"})
                return
        if path == "/forever":
                # streams until the client goes: the app must see http.disconnect
                await _read_all(receive)
                await send({"type": "http.response.start", "status": 200, "headers": []})
                task = asyncio.ensure_future(receive())
                i = 0
                while True:
                        await send({"type": "http.response.body", "body": b"x" * 1024, "more_body": True})
                        i += 1
                        await asyncio.sleep(0.01)
                        if task.done():
                                say("saw %s after %d chunks" % (task.result()["type"], i))
                                return
        if path == "/deaf-stream":
                # streams without ever asking receive(): only the grace period's cancel ends it
                await _read_all(receive)
                await send({"type": "http.response.start", "status": 200, "headers": []})
                try:
                        while True:
                                await send({"type": "http.response.body", "body": b"d" * 1024, "more_body": True})
                                await asyncio.sleep(0.01)
                except asyncio.CancelledError:
                        say("deaf stream cancelled")
                        raise
        if path == "/wait-disconnect":
                # no response yet: the next receive after the body is http.disconnect once the client goes
                await _read_all(receive)
                m = await receive()
                say("wait-disconnect got %s" % m["type"])
                return
        if path == "/status":
                code = int(q.get("code", "200"))
                await send({"type": "http.response.start", "status": code,
                            "headers": [(b"x-status", str(code).encode())]})
                await send({"type": "http.response.body", "body": b"body-that-may-not-go"})
                return
        if path == "/headers":
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"x-multi", b"1"), (b"x-multi", b"2"), (b"content-length", b"2")]})
                await send({"type": "http.response.body", "body": b"ok"})
                return
        if path == "/body-before-start":
                await send({"type": "http.response.body", "body": b"too early"})
                return
        if path == "/start-twice":
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.start", "status": 200, "headers": []})
                return
        if path == "/no-response":
                return
        if path == "/raise":
                raise ValueError("the app failed on purpose")
        if path == "/raise-after-start":
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"partial", "more_body": True})
                raise ValueError("the app failed mid-response")
        if path == "/bad-message":
                await send({"type": "http.response.start", "status": "200", "headers": []})
                return
        if path == "/send-after-end":
                await _answer(send, b"done")
                try:
                        await send({"type": "http.response.body", "body": b"more"})
                except Exception as e:       # noqa: B902 - what the server raised is the answer
                        say("send after end raised %s" % type(e).__name__)
                return
        if path == "/block":
                # a coroutine that never yields: the worker's loop is stuck
                say("blocking pid=%d" % os.getpid())
                time.sleep(float(q.get("seconds", "60")))
                return await _answer(send, b"woke")
        if path == "/sleep":
                await asyncio.sleep(float(q.get("seconds", "0.2")))
                return await _answer(send, "slept " + q.get("tag", ""))
        if path == "/pid":
                return await _answer(send, str(os.getpid()))
        if path == "/stream-then-wait":
                # a chunk, then a long wait: the chunk reaches the client meanwhile
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"first", "more_body": True})
                await asyncio.sleep(float(q.get("seconds", "30")))
                await send({"type": "http.response.body", "body": b""})
                return
        if path == "/header-buffers":
                # names and values as other buffers than bytes, the list made by a generator
                pairs = ((bytearray(b"x-array"), bytearray(b"a")), (memoryview(b"x-view"), memoryview(b"v")),
                         (b"content-length", b"2"))
                await send({"type": "http.response.start", "status": 200, "headers": (p for p in pairs)})
                await send({"type": "http.response.body", "body": bytearray(b"ok")})
                return
        if path == "/task":
                # the request runs in a task of its own, the same one across a wait, in a
                # context of its own: a value set here is not seen by the next request
                task = asyncio.current_task()
                before = _var.get()
                _var.set(q.get("tag", ""))
                await asyncio.sleep(0.01)
                same = asyncio.current_task() is task
                return await _answer(send, json.dumps({"task": task is not None, "same": same, "before": before,
                                                       "after": _var.get()}), ctype=b"application/json")
        return await _answer(send, b"not found", status=404)


class _Later:
        """An awaitable that is not a coroutine: ASGI asks only for an awaitable."""

        def __init__(self, scope, receive, send):
                self.args = (scope, receive, send)

        def __await__(self):
                return app(*self.args).__await__()


def awaitable_app(scope, receive, send):
        return _Later(scope, receive, send)


def not_awaitable_app(scope, receive, send):
        if scope["type"] == "lifespan":
                return lifespan(scope, receive, send)
        return None
