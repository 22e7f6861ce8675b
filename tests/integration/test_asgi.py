#!/usr/bin/python3
"""The asgi worker (-k asgi and uvicorn's worker class names): its settings; the raw ASGI
conformance app (tests/apps/asgi_app.py) through it: every scope key and message rule of the
http protocol, the bad cases (500, a log line, the worker alive), lifespan, keep-alive and
pipelining, a client leaving mid-stream, a coroutine that never yields, and WebSocket frames
from a client made of the standard library."""
import base64
import hashlib
import json
import os
import re
import select
import socket
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

APP = "asgi_app:app"
ASAN = "ASAN_OPTIONS" in os.environ
LOOP = h.ASGI_LOOP


def run(args, timeout=30, env=None):
        full = dict(os.environ)
        full.update(env or {})
        return subprocess.run([h.GCORN] + list(args), cwd=h.APPS, capture_output=True, text=True,
                              timeout=timeout, env=full, stdin=subprocess.DEVNULL)


def lines(text):
        return [ln for ln in text.splitlines() if ln.strip()]


def start(test, args=(), app=APP, **kw):
        srv = h.Server(app, args=["-k", "asgi"] + LOOP + list(args), **kw)
        test.addCleanup(srv.stop)
        return srv


def get(srv, path, headers=(), method="GET", body=b"", version="HTTP/1.1"):
        return srv.get(path, headers=headers, method=method, body=body, version=version)


class TestSettings(unittest.TestCase):
        def assertRefused(self, args, *words):
                p = run(args)
                self.assertEqual(p.returncode, 2, p)
                err = lines(p.stderr)
                self.assertEqual(len(err), 1, err)
                for w in words:
                        self.assertIn(w, err[0])

        def test_asgi_loop_choices(self):
                self.assertRefused(["--asgi-loop", "tokio", "routes:app"], "--asgi-loop", "'tokio'",
                                   "auto, asyncio, uvloop")

        def test_asgi_lifespan_choices(self):
                self.assertRefused(["--asgi-lifespan", "maybe", "routes:app"], "--asgi-lifespan", "'maybe'",
                                   "auto, on, off")

        def test_websocket_max_message_size(self):
                self.assertRefused(["--websocket-max-message-size", "0", "routes:app"],
                                   "--websocket-max-message-size")
                # any case, blanks around, as Gunicorn's validators take them
                p = run(["--websocket-max-message-size", "1024", "--asgi-loop", " AsyncIO", "--asgi-lifespan", "OFF ",
                         "--root-path", "/api", "--print-config", "routes:app"])
                self.assertEqual(p.returncode, 0, p)
                for name, value in (("websocket_max_message_size", "1024"), ("asgi_loop", "asyncio"),
                                    ("asgi_lifespan", "off"), ("root_path", "/api")):
                        self.assertRegex(p.stdout, r"(?m)^%s +=  *%s$" % (name, re.escape(value)))

        def test_websocket_pings(self):
                self.assertRefused(["--websocket-ping-interval", "-1", "routes:app"], "--websocket-ping-interval")
                self.assertRefused(["--websocket-ping-timeout", "0", "routes:app"], "--websocket-ping-timeout")
                p = run(["--print-config", "routes:app"])
                self.assertEqual(p.returncode, 0, p)
                for name in ("websocket_ping_interval", "websocket_ping_timeout"):
                        self.assertRegex(p.stdout, r"(?m)^%s +=  *20$" % name)
                p = run(["--websocket-ping-interval", "0", "--check-config", "routes:app"])
                self.assertEqual(p.returncode, 0, p)
                self.assertRegex(p.stderr, "Setting websocket_ping_interval = 0 has no effect in gcorn: only the asgi")

        def test_threads_and_worker_connections(self):
                p = run(["-k", "asgi", "--worker-connections", "50", "--threads", "4", "--check-config", APP])
                self.assertEqual(p.returncode, 0, p)
                self.assertNotIn("worker_connections", p.stderr)
                self.assertIn("Setting threads = 4 has no effect in gcorn: the asgi worker", p.stderr)

        def test_uvloop_missing(self):
                d = h.tempdir(self, "gcorn-nouvloop-")
                os.mkdir(os.path.join(d, "uvloop"))
                with open(os.path.join(d, "uvloop", "__init__.py"), "w") as f:
                        f.write("raise ImportError('no uvloop in this test')\n")
                p = run(["-k", "asgi", "--asgi-loop", "uvloop", "-b", "127.0.0.1:0", APP], env={"PYTHONPATH": d})
                self.assertEqual(p.returncode, 1, p)
                err = lines(p.stderr)
                self.assertEqual(len(err), 1, err)
                self.assertIn("--asgi-loop uvloop: uvloop cannot be imported (ImportError: no uvloop in this test)",
                              err[0])
                # auto goes on with asyncio's loop
                srv = h.Server(APP, args=["-k", "asgi", "--asgi-loop", "auto"], env={"PYTHONPATH": d})
                self.addCleanup(srv.stop)
                self.assertEqual(srv.get("/").status, 200)

        def test_asgi_settings_warn_under_other_workers(self):
                p = run(["--root-path", "/api", "--asgi-lifespan", "off", "--check-config", "routes:app"])
                self.assertEqual(p.returncode, 0, p)
                for name in ("root_path", "asgi_lifespan"):
                        self.assertRegex(p.stderr, "Setting %s = .* has no effect in gcorn: only the asgi worker" % name)



class TestScope(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
                cls.srv = h.Server(APP, args=["-k", "asgi", "--root-path", "/api"] + LOOP)

        @classmethod
        def tearDownClass(cls):
                cls.srv.stop()

        def scope(self, path, **kw):
                r = get(self.srv, path, **kw)
                self.assertEqual(r.status, 200, r)
                return r.json()

        def test_every_key(self):
                s = self.scope("/scope/caf%C3%A9/a%2Fb?x=1&y=%20", headers=[("X-Mixed-Case", "Value One"),
                                                                           ("x-mixed-case", "two")])
                self.assertEqual(s["type"], "http")
                self.assertEqual(s["asgi"], {"version": "3.0", "spec_version": "2.4"})
                self.assertEqual(s["http_version"], "1.1")
                self.assertEqual(s["method"], "GET")
                self.assertEqual(s["scheme"], "http")
                # decoded, and never stripped of root_path
                self.assertEqual(s["path"], "/scope/caf\u00e9/a/b")
                self.assertEqual(s["raw_path"], {"bytes": "/scope/caf%C3%A9/a%2Fb"})
                self.assertEqual(s["query_string"], {"bytes": "x=1&y=%20"})
                self.assertEqual(s["root_path"], "/api")
                headers = [(n["bytes"], v["bytes"]) for n, v in s["headers"]]
                self.assertIn(("x-mixed-case", "Value One"), headers)
                self.assertIn(("x-mixed-case", "two"), headers)
                self.assertEqual([n for n, _ in headers], [n.lower() for n, _ in headers])
                self.assertEqual(s["client"][0], "127.0.0.1")
                self.assertIsInstance(s["client"][1], int)
                self.assertEqual(s["server"], ["127.0.0.1", self.srv.port])
                self.assertEqual(s["state"], {"started_at": "boot", "counter": 0})

        def test_http_10_and_methods(self):
                s = self.scope("/scope", version="HTTP/1.0")
                self.assertEqual(s["http_version"], "1.0")
                r = get(self.srv, "/scope", method="DELETE")
                self.assertEqual(r.json()["method"], "DELETE")

        def test_state_is_a_copy_per_request(self):
                for _ in range(2):
                        r = get(self.srv, "/state")
                        self.assertEqual(r.json(), {"started_at": "boot", "counter": 1})


class TestHttp(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
                cls.srv = h.Server(APP, args=["-k", "asgi"] + LOOP)

        @classmethod
        def tearDownClass(cls):
                cls.srv.stop()

        def test_hello_keeps_alive(self):
                with self.srv.client() as c:
                        for _ in range(3):
                                c.send_request("GET", "/")
                                r = c.read_response()
                                self.assertEqual(r.status, 200)
                                self.assertEqual(r.body, b"Hello, World!\n")
                                self.assertEqual(r.header("Content-Length"), "14")

        def test_body_in_request_messages(self):
                r = get(self.srv, "/echo", method="POST", body=b"x" * 10)
                self.assertEqual(r.body, b"x" * 10)
                self.assertEqual(r.header("x-chunks"), "1")
                # a body larger than one read comes in several http.request messages
                big = h.pattern_bytes(1 << 20)
                r = get(self.srv, "/echo", method="POST", body=big)
                self.assertEqual(r.body, big)
                self.assertGreater(int(r.header("x-chunks")), 1)

        def test_chunked_request_body(self):
                with self.srv.client() as c:
                        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
                        r = c.read_response()
                self.assertEqual(r.body, b"hello world")

        def test_slow_reader_reads_all(self):
                # one message at a time, with the app sleeping between them
                n = 256 * 1024 if ASAN else 2 * 1024 * 1024
                r = get(self.srv, "/slowread?delay=0.001", method="POST", body=b"z" * n)
                self.assertEqual(r.body, str(n).encode())

        def test_expect_100_continue_on_first_receive(self):
                with self.srv.client() as c:
                        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
                        interim = c.read_response(skip_interim=False)
                        self.assertEqual(interim.status, 100)
                        c.send(b"ping")
                        r = c.read_response()
                self.assertEqual(r.body, b"ping")

        def test_streaming_response(self):
                r = get(self.srv, "/stream?n=4&size=3")
                self.assertEqual(r.status, 200)
                self.assertTrue(r.chunked)
                self.assertEqual(r.body, b"AAABBBCCCDDD")
                r = get(self.srv, "/stream-length")
                self.assertEqual(r.header("Content-Length"), "6")
                self.assertEqual(r.body, b"abcdef")

        def test_http10_stream_ends_with_close(self):
                data = self.srv.raw(h.build_request("GET", "/stream?n=3&size=2", version="HTTP/1.0"))
                head, _, body = data.partition(b"\r\n\r\n")
                self.assertIn(b"Connection: close", head)
                self.assertNotIn(b"Transfer-Encoding", head)
                self.assertEqual(body, b"AABBCC")

        def test_head(self):
                g = get(self.srv, "/")
                r = get(self.srv, "/", method="HEAD")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"")
                self.assertEqual(r.header("Content-Length"), g.header("Content-Length"))

        def test_bodiless_statuses(self):
                for code in (204, 304):
                        with self.subTest(code=code):
                                with self.srv.client() as c:
                                        c.send_request("GET", "/status?code=%d" % code)
                                        r = c.read_response()
                                        self.assertEqual(r.status, code)
                                        self.assertEqual(r.body, b"")
                                        self.assertIsNone(r.header("Transfer-Encoding"))
                                        # the body the app gave did not go out: the next answer is clean
                                        c.send_request("GET", "/")
                                        self.assertEqual(c.read_response().body, b"Hello, World!\n")

        def test_slow_client_gets_a_long_stream_whole(self):
                # the app's sends wait while the client does not read: nothing lost, in order
                n, size = (64, 65536) if not ASAN else (16, 65536)
                with self.srv.client() as c:
                        c.send_request("GET", "/stream?n=%d&size=%d" % (n, size))
                        time.sleep(1.0)
                        r = c.read_response()
                self.assertEqual(len(r.body), n * size)
                self.assertEqual(r.body, b"".join(bytes([65 + i % 26]) * size for i in range(n)))
                self.assertEqual(get(self.srv, "/").status, 200)

        def test_repeated_headers(self):
                r = get(self.srv, "/headers")
                self.assertEqual(r.header_all("x-multi"), ["1", "2"])

        def test_streamed_chunk_goes_while_the_app_waits(self):
                # chunks of a round go out together, and the round ends when the app waits
                with self.srv.client() as c:
                        c.send(h.build_request("GET", "/stream-then-wait?seconds=2"))
                        c.sock.settimeout(10)
                        data = b""
                        while b"5\r\nfirst\r\n" not in data:
                                chunk = c.sock.recv(4096)
                                self.assertTrue(chunk, data)
                                data += chunk
                        self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data)
                        # not with the end of the body, two seconds later
                        self.assertNotIn(b"\r\n0\r\n\r\n", data)
                        c._fill()

        def test_header_buffers(self):
                # bytearray and memoryview names and values, a generator for the list
                r = get(self.srv, "/header-buffers")
                self.assertEqual((r.status, r.body), (200, b"ok"))
                self.assertEqual((r.header("x-array"), r.header("x-view")), ("a", "v"))

        def test_task_and_context(self):
                # frameworks (sniffio, anyio) need the request's task; each request has its
                # own context, which the app's own changes do not leak out of
                # (a pipelined request is dispatched from the end of the one before, inside its
                # task, whose context leaked into the next one's)
                srv = h.Server(APP, args=["-k", "asgi", "--asgi-loop", "asyncio"])
                self.addCleanup(srv.stop)
                for server in (self.srv, srv):
                        for tag in ("one", "two"):
                                r = get(server, "/task?tag=" + tag)
                                self.assertEqual(json.loads(r.body), {"task": True, "same": True, "before": "unset",
                                                                      "after": tag})
                        with server.client() as c:
                                c.send(b"".join(h.build_request("GET", "/task?tag=" + t) for t in ("one", "two")))
                                for tag in ("one", "two"):
                                        self.assertEqual(json.loads(c.read_response().body),
                                                         {"task": True, "same": True, "before": "unset", "after": tag})

        def test_awaitable_app(self):
                # an app returning an awaitable that is not a coroutine
                srv = start(self, app="asgi_app:awaitable_app")
                for path, body in (("/", b"Hello, World!\n"), ("/sleep?seconds=0.01&tag=x", b"slept x")):
                        r = get(srv, path)
                        self.assertEqual((r.status, r.body), (200, body))

        def test_pipelined_in_order(self):
                with self.srv.client() as c:
                        c.send(b"".join(h.build_request("GET", "/sleep?seconds=%s&tag=%s" % (d, t))
                                        for d, t in (("0.2", "a"), ("0", "b"), ("0.1", "c"))))
                        bodies = [c.read_response().body for _ in range(3)]
                self.assertEqual(bodies, [b"slept a", b"slept b", b"slept c"])

        def test_concurrent_requests_interleave(self):
                # the loop runs many coroutines at once: a sleeping one does not hold back another,
                # whose answer comes first
                slow = self.srv.client()
                self.addCleanup(slow.close)
                slow.send_request("GET", "/sleep?seconds=5&tag=slow")
                r = get(self.srv, "/sleep?seconds=0&tag=quick")
                self.assertEqual(r.body, b"slept quick")
                self.assertEqual(select.select([slow.sock], [], [], 0)[0], [])
                self.assertEqual(slow.read_response().body, b"slept slow")


class TestBadApps(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
                cls.srv = h.Server(APP, args=["-k", "asgi"] + LOOP)

        @classmethod
        def tearDownClass(cls):
                cls.srv.stop()

        def check_500(self, path, logged):
                pid = self.srv.worker_pids()
                r = get(self.srv, path)
                self.assertEqual(r.status, 500, r)
                self.srv.wait_log(r"Error handling request GET %s" % re.escape(path))
                self.srv.wait_log(logged)
                # the worker lives on and serves
                self.assertEqual(get(self.srv, "/").status, 200)
                self.assertEqual(self.srv.worker_pids(), pid)

        def test_body_before_start(self):
                self.check_500("/body-before-start", "http.response.body sent before http.response.start")

        def test_start_twice(self):
                self.check_500("/start-twice", "http.response.start sent twice")

        def test_return_without_response(self):
                self.check_500("/no-response", "returned without sending http.response.start")

        def test_exception(self):
                self.check_500("/raise", "ValueError: the app failed on purpose")

        def test_invalid_message(self):
                self.check_500("/bad-message", "invalid status")

        def test_exception_mid_response_cuts_it(self):
                data = self.srv.raw(h.build_request("GET", "/raise-after-start"))
                # what was sent arrives, then the connection closes without the last chunk
                self.assertTrue(data.endswith(b"\r\n\r\n7\r\npartial\r\n"), data)
                self.srv.wait_log("the app failed mid-response")
                self.assertEqual(get(self.srv, "/").status, 200)

        def test_app_returning_no_awaitable(self):
                srv = start(self, app="asgi_app:not_awaitable_app")
                r = get(srv, "/")
                self.assertEqual(r.status, 500, r)
                srv.wait_log("which is not awaitable")
                self.assertEqual(get(srv, "/").status, 500)

        def test_send_after_the_end_raises(self):
                r = get(self.srv, "/send-after-end")
                self.assertEqual(r.body, b"done")
                self.srv.wait_log("send after end raised RuntimeError")


class TestLifecycle(unittest.TestCase):
        def test_lifespan_startup_before_boot_and_shutdown_on_stop(self):
                srv = start(self, ["--log-level", "debug"])
                log = srv.wait_log(r"Worker \(pid:\d+\) booted")
                # the startup ran before the worker counted as booted
                self.assertLess(log.index("lifespan startup"), log.index(") booted"))
                self.assertEqual(get(srv, "/state").json()["started_at"], "boot")
                srv.stop()
                self.assertIn("lifespan shutdown pid=%d" % srv.worker_pids()[0], srv.log())

        def test_lifespan_shutdown_on_reload(self):
                srv = start(self)
                first = srv.worker_pids()[0]
                os.kill(srv.pid, 1)
                srv.wait_log("lifespan shutdown pid=%d" % first)
                srv.wait_log("lifespan startup", count=2)

        def test_failed_startup_fails_the_boot(self):
                # auto takes an app that raises for unsupported; on does not
                for how, mode, why in (("fail", "auto", "no database"), ("raise", "on", "startup exploded")):
                        with self.subTest(how=how):
                                p = run(["-k", "asgi", "--asgi-lifespan", mode] + LOOP + ["-b", "127.0.0.1:0", APP],
                                        env={"ASGI_APP_STARTUP": how})
                                self.assertNotEqual(p.returncode, 0, p)
                                self.assertIn(why, p.stderr)
                                self.assertRegex(p.stderr, "ASGI lifespan startup (failed|raised)")

        def test_lifespan_off(self):
                srv = start(self, ["--asgi-lifespan", "off"], env={"ASGI_APP_STARTUP": "fail"})
                self.assertEqual(get(srv, "/").status, 200)
                self.assertNotIn("lifespan startup", srv.log())

        def test_app_without_lifespan_is_served(self):
                # routes of a plain coroutine that asserts its scope type: auto goes on without
                srv = start(self, app="asgi_plain:app")
                self.assertEqual(get(srv, "/").body, b"plain\n")
                self.assertIn("lifespan' protocol appears unsupported", srv.log())

        def test_asgi2_class_refused(self):
                p = run(["-k", "asgi"] + LOOP + ["-b", "127.0.0.1:0", "asgi_plain:Asgi2App"])
                self.assertNotEqual(p.returncode, 0, p)
                self.assertIn("ASGI 2 app", p.stderr)

        def test_uvicorn_class_logged_once(self):
                srv = h.Server(APP, args=["-k", "uvicorn.workers.UvicornWorker"] + LOOP)
                self.addCleanup(srv.stop)
                self.assertEqual(get(srv, "/").status, 200)
                self.assertEqual(srv.log().count("Using the asgi worker for uvicorn.workers.UvicornWorker"), 1)

        def test_disconnect_during_streaming(self):
                srv = start(self)
                c = srv.client()
                c.send_request("GET", "/forever")
                c.read_head()
                c._fill()
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()
                srv.wait_log(r"saw http\.disconnect after \d+ chunks")
                self.assertEqual(get(srv, "/").status, 200)

        def test_disconnect_grace_period_then_cancel(self):
                srv = start(self, ["--asgi-disconnect-grace-period", "1"])
                c = srv.client()
                c.send_request("GET", "/deaf-stream")
                c.read_head()
                c._fill()
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()
                srv.wait_log("deaf stream cancelled")
                self.assertEqual(get(srv, "/").status, 200)

        def test_body_error_gets_its_status(self):
                # the app sees http.disconnect; the client gets the 413 its body earned
                srv = start(self, ["--limit-request-body", "10"])
                c = srv.client()
                self.addCleanup(c.close)
                c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n" + b"a" * 100 +
                       b"\r\n0\r\n\r\n")
                self.assertEqual(c.read_response().status, 413)
                self.assertEqual(get(srv, "/").status, 200)

        def test_disconnect_while_waiting(self):
                # no response yet, the body read: receive() says http.disconnect once the client goes
                srv = start(self)
                c = srv.client()
                c.send_request("GET", "/wait-disconnect")
                time.sleep(0.3)
                c.close()
                srv.wait_log("wait-disconnect got http.disconnect")
                self.assertEqual(get(srv, "/").status, 200)

        def test_never_yielding_coroutine_replaced(self):
                srv = start(self, ["--timeout", "2"])
                first = srv.worker_pids()[0]
                c = srv.client()
                self.addCleanup(c.close)
                c.send_request("GET", "/block?seconds=60")
                srv.wait_log("blocking pid=%d" % first)
                # the report names the request whose coroutine holds the loop
                srv.wait_log(r"WORKER TIMEOUT \(pid:%d\) serving GET /block\?seconds=60" % first, timeout=15)
                # the stack of the blocked loop is in the log
                srv.wait_log(r'File ".*asgi_app\.py", line \d+ in app', timeout=10)
                srv.wait_log(h.WORKER_RE.pattern, count=2, timeout=15)
                self.assertEqual(get(srv, "/").status, 200)


class WsClient:
        """A WebSocket client made of the standard library (RFC 6455 framing, masked)."""

        def __init__(self, srv, path, headers=(), key=None):
                self.sock = srv.connect()
                self.key = key or base64.b64encode(os.urandom(16)).decode()
                req = ("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % (path, self.key))
                for n, v in headers:
                        req += "%s: %s\r\n" % (n, v)
                self.sock.sendall((req + "\r\n").encode())
                self.buf = b""
                while b"\r\n\r\n" not in self.buf:
                        d = self.sock.recv(65536)
                        if not d:
                                break
                        self.buf += d
                head, _, self.buf = self.buf.partition(b"\r\n\r\n")
                self.head = head.decode("latin-1")
                self.status = int(self.head.split(" ", 2)[1]) if self.head else 0

        def header(self, name):
                for line in self.head.split("\r\n")[1:]:
                        n, _, v = line.partition(":")
                        if n.strip().lower() == name.lower():
                                return v.strip()
                return None

        def send_frame(self, opcode, payload, fin=True, rsv=0):
                mask = os.urandom(4)
                b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
                n = len(payload)
                if n < 126:
                        hdr = struct.pack("!BB", b0, 0x80 | n)
                elif n < 65536:
                        hdr = struct.pack("!BBH", b0, 0x80 | 126, n)
                else:
                        hdr = struct.pack("!BBQ", b0, 0x80 | 127, n)
                masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                self.sock.sendall(hdr + mask + masked)

        def _need(self, n):
                while len(self.buf) < n:
                        d = self.sock.recv(65536)
                        if not d:
                                raise EOFError("closed")
                        self.buf += d
                out, self.buf = self.buf[:n], self.buf[n:]
                return out

        def recv_frame(self):
                b0, b1 = self._need(2)
                self.assertion = not (b1 & 0x80)        # a server never masks
                n = b1 & 0x7F
                if n == 126:
                        n = struct.unpack("!H", self._need(2))[0]
                elif n == 127:
                        n = struct.unpack("!Q", self._need(8))[0]
                return b0 & 0x80, b0 & 0x0F, self._need(n)

        def close(self):
                self.sock.close()


class TestWebSocketPings(unittest.TestCase):
        """The server's keepalive pings (--websocket-ping-interval/-timeout, as uvicorn's)."""

        def next_control(self, ws):
                ws.sock.settimeout(10)
                while True:
                        fin, op, payload = ws.recv_frame()
                        if op in (8, 9):
                                return op, payload

        def pong(self, ws, payload):
                ws.send_frame(10, payload)

        def test_pings_answered_keep_it_open_and_silence_closes_it(self):
                srv = start(self, ["--websocket-ping-interval", "1", "--websocket-ping-timeout", "1"])
                ws = WsClient(srv, "/ws")
                self.addCleanup(ws.close)
                self.assertEqual(ws.status, 101)
                for n in range(2):
                        op, payload = self.next_control(ws)
                        self.assertEqual(op, 9)
                        self.assertEqual(len(payload), 4)
                        self.pong(ws, payload)
                        ws.send_frame(1, b"still here %d" % n)
                        self.assertEqual(ws.recv_frame(), (0x80, 1, b"still here %d" % n))
                # a pong that does not carry the ping's payload answers nothing
                op, payload = self.next_control(ws)
                self.assertEqual(op, 9)
                self.pong(ws, b"????")
                op, payload = self.next_control(ws)
                self.assertEqual((op, struct.unpack("!H", payload[:2])[0], payload[2:]),
                                 (8, 1011, b"keepalive ping timeout"))
                srv.wait_log("websocket disconnect code=1011")

        def test_no_pings_at_0(self):
                # 0 is no pings, not pings without pause, and the 1 s timeout is no interval:
                # either mistake shows a ping (then a 1011 close) within the 3 s
                srv = start(self, ["--websocket-ping-interval", "0", "--websocket-ping-timeout", "1"])
                ws = WsClient(srv, "/ws")
                self.addCleanup(ws.close)
                ws.sock.settimeout(3)
                with self.assertRaises(socket.timeout):
                        ws.recv_frame()
                ws.send_frame(1, b"quiet")
                self.assertEqual(ws.recv_frame(), (0x80, 1, b"quiet"))


class TestWebSocket(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
                cls.srv = h.Server(APP, args=["-k", "asgi", "--websocket-max-message-size", "1024"] + LOOP)

        @classmethod
        def tearDownClass(cls):
                cls.srv.stop()

        def connect(self, path="/ws", **kw):
                ws = WsClient(self.srv, path, **kw)
                self.addCleanup(ws.close)
                return ws

        def test_handshake_and_echo(self):
                ws = self.connect(headers=[("Sec-WebSocket-Protocol", "chat, superchat"),
                                           ("Sec-WebSocket-Extensions", "permessage-deflate")])
                self.assertEqual(ws.status, 101, ws.head)
                want = base64.b64encode(hashlib.sha1(ws.key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
                self.assertEqual(ws.header("Sec-WebSocket-Accept"), want.decode())
                self.assertEqual(ws.header("Sec-WebSocket-Protocol"), "superchat")
                self.assertEqual(ws.header("x-ws"), "yes")
                # permessage-deflate is declined
                self.assertIsNone(ws.header("Sec-WebSocket-Extensions"))
                ws.send_frame(1, "h\u00e9llo".encode())
                self.assertEqual(ws.recv_frame(), (0x80, 1, "h\u00e9llo".encode()))
                ws.send_frame(2, b"\x00\x01\x02")
                self.assertEqual(ws.recv_frame(), (0x80, 2, b"\x00\x01\x02"))
                self.assertTrue(ws.assertion)

        def test_fragments_and_ping(self):
                ws = self.connect()
                ws.send_frame(1, b"frag", fin=False)
                ws.send_frame(9, b"are you there")
                ws.send_frame(0, b"mented", fin=True)
                self.assertEqual(ws.recv_frame(), (0x80, 10, b"are you there"))
                self.assertEqual(ws.recv_frame(), (0x80, 1, b"fragmented"))

        def frames_until(self, ws, opcode):
                """The frames up to the first of opcode (the push route's ticks before it)."""
                ws.sock.settimeout(10)
                seen = []
                while True:
                        fin, op, payload = ws.recv_frame()
                        seen.append((op, payload))
                        if op == opcode:
                                return seen

        def test_pings_answered_while_the_app_only_sends(self):
                # python-websockets clients ping every 20 s and close the connection (1011)
                # when no pong comes, whatever the app does
                ws = self.connect("/ws/push")
                self.assertEqual(ws.recv_frame(), (0x80, 1, b"tick 0"))
                for n in range(3):
                        ws.send_frame(9, b"ping %d" % n)
                        seen = self.frames_until(ws, 10)
                        self.assertEqual(seen[-1], (10, b"ping %d" % n))
                        self.assertTrue(all(op == 1 for op, _ in seen[:-1]), seen)

        def test_client_close_seen_while_the_app_only_sends(self):
                ws = self.connect("/ws/push")
                self.assertEqual(ws.recv_frame(), (0x80, 1, b"tick 0"))
                ws.send_frame(8, struct.pack("!H", 1000) + b"done")
                op, payload = self.frames_until(ws, 8)[-1]
                self.assertEqual(struct.unpack("!H", payload[:2])[0], 1000)
                # the app's next send raises, as the spec asks of a closed connection
                self.srv.wait_log("websocket push ended: OSError")

        def test_messages_the_app_does_not_take_wait_in_the_kernel(self):
                # 32 messages are read ahead of the app (and the rest of the read that brought
                # the 32nd, 64 KiB at most); the rest stays in the socket's receive queue,
                # where TCP holds the client back
                ws = self.connect("/ws/push")
                self.assertEqual(ws.recv_frame(), (0x80, 1, b"tick 0"))
                ws.sock.settimeout(2)
                sent = 0
                try:
                        for _ in range(200):
                                ws.send_frame(2, b"m" * 1000)
                                sent += 1
                except socket.timeout:
                        pass
                self.assertGreater(sent, 150)
                client_port = ws.sock.getsockname()[1]

                def unread():
                        """Bytes the server has not read: its socket's Recv-Q and what still
                        waits in the client's Send-Q."""
                        out = subprocess.run(["ss", "-Htn", "state", "established", "( sport = :%d or dport = :%d )"
                                              % (client_port, client_port)],
                                             stdout=subprocess.PIPE, text=True, timeout=10).stdout
                        total = 0
                        for line in out.splitlines():
                                recv_q, send_q, local = line.split()[:3]
                                if local.endswith(":%d" % self.srv.port):
                                        total += int(recv_q)
                                elif local.endswith(":%d" % client_port):
                                        total += int(send_q)
                        return total
                # what the server took: 32 messages and the rest of one read at most
                self.assertTrue(h.wait_until(lambda: unread() >= (sent - 32) * 1000 - 65536, 10),
                                "read %d of %d messages' bytes" % (sent * 1000 - unread(), sent * 1000))

        def test_close_codes(self):
                ws = self.connect()
                ws.send_frame(1, b"close")
                fin, op, payload = ws.recv_frame()
                self.assertEqual(op, 8)
                self.assertEqual(struct.unpack("!H", payload[:2])[0], 4001)
                self.assertEqual(payload[2:], b"asked")
                # a client's close reaches the app as websocket.disconnect with its code
                ws = self.connect()
                ws.send_frame(8, struct.pack("!H", 1001) + b"bye")
                fin, op, payload = ws.recv_frame()
                self.assertEqual((op, struct.unpack("!H", payload[:2])[0]), (8, 1001))
                self.srv.wait_log("websocket disconnect code=1001")

        def test_message_too_big(self):
                ws = self.connect()
                ws.send_frame(2, b"y" * 2000)
                fin, op, payload = ws.recv_frame()
                self.assertEqual((op, struct.unpack("!H", payload[:2])[0]), (8, 1009))

        def test_bad_frames(self):
                for frame, code in ((lambda w: w.send_frame(1, b"\xff\xfe"), 1007),
                                    (lambda w: w.send_frame(1, b"x", rsv=4), 1002)):
                        ws = self.connect()
                        frame(ws)
                        fin, op, payload = ws.recv_frame()
                        self.assertEqual((op, struct.unpack("!H", payload[:2])[0]), (8, code))

        def test_graceful_stop_closes_with_1001(self):
                # an open WebSocket does not hold a leaving worker for --graceful-timeout
                srv = start(self, ["--graceful-timeout", "120"])
                ws = WsClient(srv, "/ws")
                self.addCleanup(ws.close)
                self.assertEqual(ws.status, 101)
                os.kill(srv.pid, 15)
                fin, op, payload = ws.recv_frame()
                self.assertEqual((op, struct.unpack("!H", payload[:2])[0]), (8, 1001))
                self.assertEqual(srv.wait_exit(30), 0)
                self.assertIn("websocket disconnect code=1001", srv.log())
                self.assertIn("lifespan shutdown", srv.log())

        def test_access_log(self):
                srv = start(self, ["--access-logfile", "-"])
                ws = WsClient(srv, "/ws")
                self.addCleanup(ws.close)
                self.assertEqual(ws.status, 101)
                ws.send_frame(8, struct.pack("!H", 1000))
                ws.recv_frame()
                deadline = time.monotonic() + 10
                while '"GET /ws HTTP/1.1" 101 ' not in srv.stdout() and time.monotonic() < deadline:
                        time.sleep(0.05)
                self.assertIn('"GET /ws HTTP/1.1" 101 ', srv.stdout())

        def test_scope(self):
                ws = self.connect("/ws/scope?room=1", headers=[("Sec-WebSocket-Protocol", "v1")])
                s = json.loads(ws.recv_frame()[2])
                self.assertEqual(s["type"], "websocket")
                self.assertEqual(s["scheme"], "ws")
                self.assertEqual(s["path"], "/ws/scope")
                self.assertEqual(s["query_string"], {"bytes": "room=1"})
                self.assertEqual(s["subprotocols"], ["v1"])
                self.assertNotIn("method", s)

        def test_denied(self):
                ws = self.connect("/ws/deny")
                self.assertEqual(ws.status, 403)
                self.assertEqual(ws.header("content-type"), "text/plain")
                self.assertEqual(ws.buf, b"go away")
                ws = self.connect("/ws/reject")
                self.assertEqual(ws.status, 403)

        def test_bad_handshakes(self):
                r = get(self.srv, "/ws", headers=[("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                                  ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                                                  ("Sec-WebSocket-Version", "8")])
                self.assertEqual(r.status, 426)
                self.assertEqual(r.header("Sec-WebSocket-Version"), "13")
                r = get(self.srv, "/ws", headers=[("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                                  ("Sec-WebSocket-Key", "short"), ("Sec-WebSocket-Version", "13")])
                self.assertEqual(r.status, 400)
                self.assertEqual(get(self.srv, "/").status, 200)


if __name__ == "__main__":
        h.main()
