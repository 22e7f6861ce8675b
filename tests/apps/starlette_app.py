"""A Starlette app (Debian's python3-starlette), unchanged from how Starlette is written:
routes with path and query parameters, JSON, a form with a file, streaming, a file,
background tasks, lifespan state, an exception, and a WebSocket echo."""

import asyncio
import contextlib
import os
import sys

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute

HERE = os.path.dirname(os.path.abspath(__file__))


@contextlib.asynccontextmanager
async def lifespan(app):
        print("starlette_app: startup", file=sys.stderr, flush=True)
        yield {"greeting": "hello from lifespan"}
        print("starlette_app: shutdown", file=sys.stderr, flush=True)


async def index(request):
        return PlainTextResponse("Hello, Starlette!\n")


async def item(request):
        return JSONResponse({"id": request.path_params["item_id"], "q": request.query_params.get("q"),
                             "agent": request.headers.get("x-agent")})


async def echo_json(request):
        return JSONResponse({"got": await request.json()})


async def upload(request):
        form = await request.form()
        f = form["file"]
        data = await f.read()
        return JSONResponse({"name": form["name"], "filename": f.filename, "size": len(data),
                             "sum": sum(data) % 65536})


async def stream(request):
        n = int(request.query_params.get("n", "3"))

        async def gen():
                for i in range(n):
                        yield ("part %d\n" % i).encode()
                        await asyncio.sleep(0)
        return StreamingResponse(gen(), media_type="text/plain")


async def endless(request):
        async def gen():
                i = 0
                try:
                        while True:
                                yield b"y" * 1024
                                i += 1
                                await asyncio.sleep(0.01)
                finally:
                        print("starlette_app: stream ended after %d chunks" % i, file=sys.stderr, flush=True)
        return StreamingResponse(gen())


async def a_file(request):
        return FileResponse(os.path.join(HERE, "starlette_app.py"), media_type="text/x-python")


def note(text):
        print("starlette_app: background " + text, file=sys.stderr, flush=True)


async def background(request):
        return PlainTextResponse("queued", background=BackgroundTask(note, request.query_params.get("tag", "")))


async def state(request):
        return PlainTextResponse(request.state.greeting)


async def boom(request):
        raise RuntimeError("starlette view failed on purpose")


async def ws_echo(websocket):
        await websocket.accept()
        try:
                while True:
                        msg = await websocket.receive()
                        if msg["type"] == "websocket.disconnect":
                                return
                        if msg.get("text") is not None:
                                await websocket.send_text(msg["text"])
                        else:
                                await websocket.send_bytes(msg["bytes"])
        finally:
                print("starlette_app: websocket done", file=sys.stderr, flush=True)


app = Starlette(routes=[
        Route("/", index),
        Route("/items/{item_id:int}", item),
        Route("/json", echo_json, methods=["POST"]),
        Route("/upload", upload, methods=["POST"]),
        Route("/stream", stream),
        Route("/endless", endless),
        Route("/file", a_file),
        Route("/background", background),
        Route("/state", state),
        Route("/boom", boom),
        WebSocketRoute("/ws", ws_echo),
], lifespan=lifespan)
