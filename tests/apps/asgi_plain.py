"""ASGI apps without lifespan: a plain coroutine that knows only http (its assert fails on
the lifespan scope, as many small apps do), and an ASGI 2 class, which the asgi worker
refuses."""


async def app(scope, receive, send):
        assert scope["type"] == "http", "only http here"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"6")]})
        await send({"type": "http.response.body", "body": b"plain\n"})


class Asgi2App:
        def __init__(self, scope):
                self.scope = scope

        async def __call__(self, receive, send):
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b""})
