"""A FastAPI app (Debian's python3-fastapi 0.92), written as FastAPI apps are: path, query,
header and body parameters, a pydantic model, a form with a file, streaming, a file,
background tasks, a dependency with yield, lifespan state, an exception, a WebSocket."""

import asyncio
import contextlib
import os
import sys
from typing import Optional

from fastapi import BackgroundTasks, Depends, FastAPI, File, Form, Header, Request, UploadFile, WebSocket
from fastapi.responses import FileResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel
from starlette.websockets import WebSocketDisconnect

HERE = os.path.dirname(os.path.abspath(__file__))


def say(line):
        print("fastapi_app: " + line, file=sys.stderr, flush=True)


@contextlib.asynccontextmanager
async def lifespan(app):
        say("startup")
        yield {"db": "connected"}
        say("shutdown")


app = FastAPI()
# FastAPI 0.92 has no lifespan= argument yet; its router is Starlette's, which takes one
app.router.lifespan_context = lifespan


class Item(BaseModel):
        name: str
        price: float
        tags: list = []


@app.get("/")
async def index():
        return {"hello": "fastapi"}


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: Optional[str] = None, x_token: Optional[str] = Header(None)):
        return {"item_id": item_id, "q": q, "x_token": x_token}


@app.post("/items")
async def create_item(item: Item):
        return {"name": item.name, "price": item.price, "tags": item.tags, "total": item.price * 2}


@app.post("/upload")
async def upload(name: str = Form(...), file: UploadFile = File(...)):
        data = await file.read()
        return {"name": name, "filename": file.filename, "size": len(data), "sum": sum(data) % 65536}


@app.get("/stream")
async def stream(n: int = 3):
        async def gen():
                for i in range(n):
                        yield "chunk %d\n" % i
                        await asyncio.sleep(0)
        return StreamingResponse(gen(), media_type="text/plain")


@app.get("/file")
async def a_file():
        return FileResponse(os.path.join(HERE, "fastapi_app.py"))


@app.get("/background")
async def background(tasks: BackgroundTasks, tag: str = ""):
        tasks.add_task(say, "background " + tag)
        return PlainTextResponse("queued")


async def session():
        say("dependency enter")
        try:
                yield "session-1"
        finally:
                say("dependency exit")


@app.get("/dep")
async def with_dependency(s: str = Depends(session)):
        return {"session": s}


@app.get("/state")
async def state(request: Request):
        return {"db": request.state.db}


@app.get("/sync")
def sync_view(n: int = 1):
        # a plain def runs in Starlette's thread pool
        return {"double": n * 2}


@app.get("/boom")
async def boom():
        raise RuntimeError("fastapi view failed on purpose")


@app.websocket("/ws")
async def ws_echo(websocket: WebSocket):
        await websocket.accept()
        try:
                while True:
                        text = await websocket.receive_text()
                        await websocket.send_text("echo: " + text)
        except WebSocketDisconnect as e:
                say("websocket disconnect %s" % e.code)
