"""The least any asyncio ASGI server does per request, without sockets or HTTP: a scope dict,
an asyncio Task running the raw ASGI hello (asgi_app.py) with receive() and send() that
never wait, and a share of a uvloop round (50 requests a round). What a server spends above
this is its own: reading, parsing, framing, writing and its glue to the loop.

  valgrind --tool=callgrind python3 asgi_floor.py 1000    (and 5000: the difference / 4000
                                                             is the instructions per request)
"""
import asyncio
import os
import sys

import uvloop

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from asgi_app import app  # noqa: E402

ROUND = 50
SCOPE = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
         "method": "GET", "scheme": "http", "path": "/", "raw_path": b"/", "query_string": b"",
         "root_path": "", "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"),
                                      (b"accept", b"*/*")],
         "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000), "state": {}}
sent = []


async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}


async def send(message):
        sent.append(message)


async def main(n):
        loop = asyncio.get_running_loop()
        for _ in range(n // ROUND):
                for _ in range(ROUND):
                        scope = dict(SCOPE)
                        scope["headers"] = list(SCOPE["headers"])
                        loop.create_task(app(scope, receive, send))
                await asyncio.sleep(0)
                assert len(sent) == 2 * ROUND, sent
                sent.clear()


if __name__ == "__main__":
        uvloop.new_event_loop().run_until_complete(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
