"""An ASGI app that reports, per request, what it sees of the task and context it runs in:
whether current_task() is an asyncio.Task, whether it is the same task after a suspension,
and what a context variable held when the request began (a value one request sets must not
reach the next).

  /task           {"task": bool, "same_after_sleep": bool, "id": id of the task}
  /ctx?v=VALUE    {"seen": what the variable held on entry}, then sets it to VALUE
  /hello          "hello"
"""
import asyncio
import contextvars
import json

var = contextvars.ContextVar("request_var", default=None)


async def _send_json(send, obj):
        body = json.dumps(obj).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
        if scope["type"] != "http":
                return
        path = scope["path"]
        if path == "/task":
                task = asyncio.current_task()
                await asyncio.sleep(0)
                await _send_json(send, {"task": isinstance(task, asyncio.Task),
                                        "same_after_sleep": asyncio.current_task() is task,
                                        "done": task.done() if task is not None else None,
                                        "id": id(task)})
                return
        if path == "/ctx":
                seen = var.get()
                var.set(scope["query_string"].decode().partition("=")[2])
                await _send_json(send, {"seen": seen})
                return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")]})
        await send({"type": "http.response.body", "body": b"hello"})
