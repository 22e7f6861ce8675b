"""Slow clients hold no worker: request bodies up to --buffer-request-body are received by
the event loop before the app runs, response bytes a client cannot take yet are kept by the
loop (up to --buffer-response, past which the response is pulled as the client drains it),
and thousands of connections dribbling heads or bodies, or reading large answers slowly,
leave normal requests answered and every worker alive. The sanitizer pass uses fewer
connections."""

import hashlib
import os
import re
import resource
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

APP = "slow_app:app"
SANITIZED = "ASAN_OPTIONS" in os.environ


def rss_kib(pid):
        with open("/proc/%d/status" % pid) as f:
                for line in f:
                        if line.startswith("VmRSS:"):
                                return int(line.split()[1])
        raise AssertionError("no VmRSS for %d" % pid)


def timed_get(srv, path="/", timeout=5.0):
        """(status, seconds) of one request on a new connection; status 0 when it failed."""
        start = time.monotonic()
        try:
                c = h.Client(srv.connect(timeout=timeout))
                try:
                        c.send_request("GET", path, headers=[("Connection", "close")])
                        r = c.read_response()
                        return r.status, time.monotonic() - start
                finally:
                        c.close()
        except (OSError, h.ProtocolError):
                return 0, time.monotonic() - start


class BodyBufferTest(h.ServerTestCase):
        """--buffer-request-body: the loop receives the body, the app reads it from memory."""

        @classmethod
        def setUpClass(cls):
                cls.srv = h.Server(APP, args=["-w", "1", "--timeout", "10"],
                                   env={"SLOW_APP_BIG": str(1 << 20)})

        @classmethod
        def tearDownClass(cls):
                cls.srv.stop()

        def dribble(self, head, body, piece=4096):
                """Sends the head and all but the last byte of body, in pieces, while another
                request is answered; then the rest. Returns the echo's fields."""
                s = self.srv.connect(timeout=10)
                self.addCleanup(s.close)
                s.sendall(head)
                for i in range(0, len(body) - 1, piece):
                        s.sendall(body[i:min(i + piece, len(body) - 1)])
                        time.sleep(0.001)
                # The app has not been called: the worker is free for others.
                status, took = timed_get(self.srv, timeout=3)
                self.assertEqual(status, 200, "a dribbled body held the only worker")
                time.sleep(0.3)
                s.sendall(body[-1:])
                c = h.Client(s)
                r = c.read_response()
                self.assertEqual(r.status, 200)
                n, digest, took = r.body.split()
                return int(n), digest.decode(), float(took)

        def test_content_length_body_is_received_before_the_app_runs(self):
                body = os.urandom(300000)
                n, digest, took = self.dribble(
                        b"POST /echo-sha HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body), body)
                self.assertEqual((n, digest), (len(body), hashlib.sha256(body).hexdigest()))
                # read() found the whole body in memory, it waited on nobody
                self.assertLess(took, 0.25)

        def test_chunked_body_is_received_before_the_app_runs(self):
                body = os.urandom(200000)
                framed = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 5000]), body[i:i + 5000])
                                  for i in range(0, len(body), 5000)) + b"0\r\n\r\n"
                n, digest, took = self.dribble(
                        b"POST /echo-sha HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", framed)
                self.assertEqual((n, digest), (len(body), hashlib.sha256(body).hexdigest()))
                self.assertLess(took, 0.25)

        def test_larger_bodies_stream_to_the_app(self):
                # Over the buffer: the app runs first and its read waits for the rest.
                body = os.urandom((1 << 20) + 10000)
                s = self.srv.connect(timeout=10)
                self.addCleanup(s.close)
                s.sendall(b"POST /echo-sha HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
                s.sendall(body[:-1])
                time.sleep(0.5)
                s.sendall(body[-1:])
                r = h.Client(s).read_response()
                n, digest, took = r.body.split()
                self.assertEqual((int(n), digest.decode()), (len(body), hashlib.sha256(body).hexdigest()))
                self.assertGreater(float(took), 0.3)

        def test_expect_continue_body_is_read_when_the_app_asks(self):
                body = os.urandom(1000)
                s = self.srv.connect(timeout=10)
                self.addCleanup(s.close)
                s.sendall(b"POST /echo-sha HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                          b"Expect: 100-continue\r\n\r\n" % len(body))
                c = h.Client(s)
                r = c.read_response(skip_interim=False)
                self.assertEqual(r.status, 100)
                s.sendall(body)
                r = c.read_response()
                n, digest, _ = r.body.split()
                self.assertEqual((int(n), digest.decode()), (len(body), hashlib.sha256(body).hexdigest()))

        def test_buffering_off(self):
                srv = self.start(APP, args=["-w", "1", "--buffer-request-body", "0"],
                                 env={"SLOW_APP_BIG": "4096"})
                body = os.urandom(5000)
                s = srv.connect(timeout=10)
                self.addCleanup(s.close)
                s.sendall(b"POST /echo-sha HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
                s.sendall(body[:100])
                time.sleep(0.4)
                s.sendall(body[100:])
                r = h.Client(s).read_response()
                n, digest, took = r.body.split()
                self.assertEqual(int(n), len(body))
                self.assertGreater(float(took), 0.3, "the body was buffered with --buffer-request-body 0")


if __name__ == "__main__":
        h.main()
