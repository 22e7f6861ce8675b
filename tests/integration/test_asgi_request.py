#!/usr/bin/python3
"""The asgi worker's request path: the task and context each request runs in (current_task()
is the request's own asyncio.Task, on both loops; a context variable one request sets never
reaches the next, on one keep-alive connection or pipelined), and the WSGI environ an ASGI
request no longer builds for itself still reaching post_request and the access log's
%({var}e)s fields, and still refusing a path outside SCRIPT_NAME."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

APP = "asgi_request_app:app"
ASAN = "ASAN_OPTIONS" in os.environ


def _uvloop():
        try:
                import uvloop  # noqa: F401
        except ImportError:
                return False
        return True


# uvloop's extension leaves interpreter memory LeakSanitizer reports (README): asyncio's loop
# only under the sanitizers
LOOPS = ["asyncio"] + (["uvloop"] if _uvloop() and not ASAN else [])


def _read(path):
        try:
                with open(path) as f:
                        return f.read()
        except FileNotFoundError:
                return ""


def start(test, args=(), env=None):
        srv = h.Server(APP, args=["-k", "asgi", "-w", "1"] + list(args), env=env)
        test.addCleanup(srv.stop)
        return srv


class TestTaskAndContext(unittest.TestCase):
        def each_loop(self, check):
                for loop in LOOPS:
                        with self.subTest(loop=loop):
                                check(start(self, ["--asgi-loop", loop]))

        def test_current_task_is_the_requests_task(self):
                def check(srv):
                        ids = []
                        with srv.client() as c:
                                for _ in range(3):
                                        c.send_request("GET", "/task")
                                        r = c.read_response()
                                        self.assertEqual(r.status, 200, r)
                                        t = r.json()
                                        self.assertTrue(t["task"], t)
                                        self.assertTrue(t["same_after_sleep"], t)
                                        self.assertFalse(t["done"], t)
                                        ids.append(t["id"])
                        self.assertTrue(srv.alive())
                self.each_loop(check)

        def test_context_does_not_leak_between_requests(self):
                def check(srv):
                        with srv.client() as c:
                                for i in range(4):
                                        c.send_request("GET", "/ctx?v=keepalive%d" % i)
                                        r = c.read_response()
                                        self.assertEqual(r.status, 200, r)
                                        self.assertIsNone(r.json()["seen"], r)
                        # pipelined: the next request is dispatched from the end of the last
                        with srv.client() as c:
                                c.send(b"".join(b"GET /ctx?v=piped%d HTTP/1.1\r\nHost: x\r\n\r\n" % i
                                                for i in range(4)))
                                for i in range(4):
                                        r = c.read_response()
                                        self.assertEqual(r.status, 200, r)
                                        self.assertIsNone(r.json()["seen"], r)
                self.each_loop(check)


class TestEnviron(unittest.TestCase):
        def test_post_request_sees_an_environ(self):
                out = os.path.join(h.tempdir(self, "gcorn-asgi-req-"), "hooks.jsonl")
                srv = start(self, ["--asgi-loop", "asyncio", "-c", os.path.join(h.APPS, "asgi_request_conf.py")], env={"HOOKS_OUT": out})
                r = srv.get("/hello?a=1", headers=[("X-Trace", "t1")])
                self.assertEqual((r.status, r.body), (200, b"hello"), r)
                self.assertTrue(h.wait_until(lambda: _read(out).endswith("\n"), 10))
                seen = [json.loads(line) for line in _read(out).splitlines()]
                self.assertEqual(seen, [{"REQUEST_METHOD": "GET", "PATH_INFO": "/hello", "QUERY_STRING": "a=1",
                                         "HTTP_X_TRACE": "t1"}])

        def test_access_log_environ_fields(self):
                srv = start(self, ["--asgi-loop", "asyncio", "--access-logfile", "-",
                                   "--access-logformat", "env %({PATH_INFO}e)s %({QUERY_STRING}e)s %(s)s"])
                r = srv.get("/hello?b=2")
                self.assertEqual(r.status, 200, r)
                self.assertTrue(h.wait_until(lambda: "env /hello b=2 200" in srv.stdout(), 10), srv.stdout())

        def test_path_outside_script_name_is_refused(self):
                srv = start(self, ["--asgi-loop", "asyncio"], env={"SCRIPT_NAME": "/mount"})
                r = srv.get("/elsewhere")
                self.assertEqual(r.status, 500, r)
                srv.wait_log("does not start with SCRIPT_NAME /mount")
                r = srv.get("/mount/hello")
                self.assertEqual((r.status, r.body), (200, b"hello"), r)


if __name__ == "__main__":
        unittest.main()
