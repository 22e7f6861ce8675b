#!/usr/bin/python3
"""Starlette and FastAPI apps (Debian's python3-starlette and python3-fastapi), unchanged,
under the asgi worker: parameters, JSON, forms with files, streaming, files, background
tasks, dependencies with yield, an exception's 500 and traceback, lifespan state, a client
that leaves a stream, and WebSocket echo with the websockets client (python3-websockets)."""
import asyncio
import json
import os
import socket
import struct
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

import websockets  # noqa: E402

LOOP = h.ASGI_LOOP


def multipart(fields, files):
        boundary = uuid.uuid4().hex
        out = b""
        for name, value in fields:
                out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                        % (boundary, name, value)).encode()
        for name, filename, data in files:
                out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                        "Content-Type: application/octet-stream\r\n\r\n" % (boundary, name, filename)).encode()
                out += data + b"\r\n"
        out += ("--%s--\r\n" % boundary).encode()
        return out, "multipart/form-data; boundary=" + boundary


async def ws_echo(port, path, messages):
        got = []
        async with websockets.connect("ws://127.0.0.1:%d%s" % (port, path), open_timeout=10, close_timeout=5) as ws:
                for m in messages:
                        await ws.send(m)
                        got.append(await asyncio.wait_for(ws.recv(), 10))
        return got


class Common:
        APP = None
        PREFIX = None

        @classmethod
        def setUpClass(cls):
                cls.srv = h.Server(cls.APP, args=["-k", "asgi"] + LOOP)

        @classmethod
        def tearDownClass(cls):
                cls.srv.stop()
                log = cls.srv.log()
                assert cls.PREFIX + "shutdown" in log, log

        def test_startup_ran(self):
                self.assertIn(self.PREFIX + "startup", self.srv.log())

        def test_upload(self):
                data = h.pattern_bytes(300 * 1024)
                body, ctype = multipart([("name", "report")], [("file", "data.bin", data)])
                r = self.srv.get("/upload", method="POST", body=body, headers=[("Content-Type", ctype)])
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json(), {"name": "report", "filename": "data.bin", "size": len(data),
                                            "sum": sum(data) % 65536})

        def test_file(self):
                r = self.srv.get("/file")
                self.assertEqual(r.status, 200)
                with open(os.path.join(h.APPS, self.APP.split(":")[0] + ".py"), "rb") as f:
                        self.assertEqual(r.body, f.read())

        def test_background_task(self):
                tag = uuid.uuid4().hex[:8]
                r = self.srv.get("/background?tag=" + tag)
                self.assertEqual(r.body, b"queued")
                self.srv.wait_log(self.PREFIX + "background " + tag)

        def test_exception_is_500_with_traceback(self):
                r = self.srv.get("/boom")
                self.assertEqual(r.status, 500)
                self.srv.wait_log("view failed on purpose")
                self.assertIn("Traceback (most recent call last)", self.srv.log())
                self.assertEqual(self.srv.get("/").status, 200)

        def test_websocket_echo(self):
                got = asyncio.run(ws_echo(self.srv.port, "/ws", ["one", "two"]))
                self.assertEqual(len(got), 2)
                self.assertTrue(got[0].endswith("one") and got[1].endswith("two"), got)


class TestStarlette(Common, unittest.TestCase):
        APP = "starlette_app:app"
        PREFIX = "starlette_app: "

        def test_index_and_params(self):
                self.assertEqual(self.srv.get("/").body, b"Hello, Starlette!\n")
                r = self.srv.get("/items/42?q=abc", headers=[("X-Agent", "tester")])
                self.assertEqual(r.json(), {"id": 42, "q": "abc", "agent": "tester"})
                self.assertEqual(self.srv.get("/items/notanint").status, 404)

        def test_json(self):
                r = self.srv.get("/json", method="POST", body=json.dumps({"a": [1, 2]}).encode(),
                                 headers=[("Content-Type", "application/json")])
                self.assertEqual(r.json(), {"got": {"a": [1, 2]}})

        def test_streaming(self):
                r = self.srv.get("/stream?n=4")
                self.assertTrue(r.chunked)
                self.assertEqual(r.body, b"part 0\npart 1\npart 2\npart 3\n")

        def test_lifespan_state(self):
                self.assertEqual(self.srv.get("/state").body, b"hello from lifespan")

        def test_client_leaves_a_stream(self):
                c = self.srv.client()
                c.send_request("GET", "/endless")
                c.read_head()
                c._fill()
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()
                # Starlette's StreamingResponse stops once receive() says http.disconnect
                self.srv.wait_log(r"starlette_app: stream ended after \d+ chunks")
                self.assertEqual(self.srv.get("/").status, 200)


class TestFastAPI(Common, unittest.TestCase):
        APP = "fastapi_app:app"
        PREFIX = "fastapi_app: "

        def test_path_query_header_params(self):
                r = self.srv.get("/items/7?q=search", headers=[("X-Token", "secret")])
                self.assertEqual(r.json(), {"item_id": 7, "q": "search", "x_token": "secret"})
                r = self.srv.get("/items/seven")
                self.assertEqual(r.status, 422)

        def test_body_model(self):
                r = self.srv.get("/items", method="POST", headers=[("Content-Type", "application/json")],
                                 body=json.dumps({"name": "pen", "price": 1.5, "tags": ["a"]}).encode())
                self.assertEqual(r.json(), {"name": "pen", "price": 1.5, "tags": ["a"], "total": 3.0})
                r = self.srv.get("/items", method="POST", headers=[("Content-Type", "application/json")],
                                 body=b'{"name": "pen"}')
                self.assertEqual(r.status, 422)

        def test_streaming(self):
                r = self.srv.get("/stream?n=3")
                self.assertEqual(r.body, b"chunk 0\nchunk 1\nchunk 2\n")

        def test_dependency_with_yield(self):
                r = self.srv.get("/dep")
                self.assertEqual(r.json(), {"session": "session-1"})
                self.srv.wait_log("fastapi_app: dependency exit")

        def test_lifespan_state(self):
                self.assertEqual(self.srv.get("/state").json(), {"db": "connected"})

        def test_sync_view_in_threadpool(self):
                self.assertEqual(self.srv.get("/sync?n=21").json(), {"double": 42})

        def test_websocket_disconnect_seen(self):
                asyncio.run(ws_echo(self.srv.port, "/ws", ["x"]))
                self.srv.wait_log("fastapi_app: websocket disconnect 1000")


if __name__ == "__main__":
        h.main()
