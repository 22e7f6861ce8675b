"""The benchmark's FastAPI app, the same file for every ASGI server.

  GET  /        {"message": "Hello, World!"} (JSON, FastAPI's default response class)
  POST /echo    the JSON object of the request body (about 4 KiB, echo.lua), parsed and
                validated as a dict by FastAPI and sent back
  GET  /stream  a StreamingResponse of 64 chunks of 1 KiB from an async generator
"""
from typing import Any, Dict

from fastapi import Body, FastAPI
from fastapi.responses import StreamingResponse

app = FastAPI()

CHUNK = b"x" * 1024
CHUNKS = 64


@app.get("/")
async def hello():
        return {"message": "Hello, World!"}


@app.post("/echo")
async def echo(payload: Dict[str, Any] = Body(...)):
        return payload


async def _chunks():
        for _ in range(CHUNKS):
                yield CHUNK


@app.get("/stream")
async def stream():
        return StreamingResponse(_chunks(), media_type="application/octet-stream")


application = app
