"""Idle, stalled and slow clients: the server drops them in bounded time and keeps serving.

No test asserts a tight timing: every wait is a generous upper bound."""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

BOUND = 12.0


class TimeoutTest(h.SharedServerTestCase):
        APP = "routes:app"
        ARGS = ["--timeout", "2", "--keep-alive", "1"]

        def assertServes(self, timeout=5.0):
                c = h.Client(self.srv.connect(timeout))
                self.addCleanup(c.close)
                c.send_request("GET", "/", headers=[("Connection", "close")])
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"Hello, World!\n")

        def assertClosedWith408OrNothing(self, data):
                if data:
                        m = re.match(rb"HTTP/1\.[01] (\d{3}) ", data)
                        self.assertTrue(m, data[:200])
                        self.assertEqual(m.group(1), b"408", data[:200])

        def test_silent_client_is_dropped(self):
                s = self.srv.connect()
                self.addCleanup(s.close)
                closed, data = h.wait_closed(s, BOUND)
                self.assertTrue(closed, "a client that sent nothing was never dropped")
                self.assertClosedWith408OrNothing(data)
                self.assertServes()

        def test_half_head_then_stall(self):
                s = self.srv.connect()
                self.addCleanup(s.close)
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Partial: ab")
                closed, data = h.wait_closed(s, BOUND)
                self.assertTrue(closed, "a client stalled mid-head was never dropped")
                self.assertClosedWith408OrNothing(data)
                self.assertServes()

        def test_idle_keepalive_closed(self):
                c = self.srv.client()
                self.addCleanup(c.close)
                c.send_request("GET", "/")
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertFalse(r.has_token("Connection", "close"))
                self.assertTrue(c.at_eof(BOUND), "idle keep-alive connection never closed")

        def test_idle_clients_do_not_block_others(self):
                idle = []
                try:
                        for i in range(50):
                                s = self.srv.connect()
                                if i % 5 == 0:
                                        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
                                idle.append(s)
                        # Served while all fifty are still connected (well inside the timeouts).
                        self.assertServes(timeout=1.5)
                        self.assertServes(timeout=1.5)
                finally:
                        for s in idle:
                                s.close()

        def test_body_stall(self):
                s = self.srv.connect()
                self.addCleanup(s.close)
                s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n0123456789")
                closed, data = h.wait_closed(s, BOUND)
                self.assertTrue(closed, "a client stalled mid-body was never dropped")
                self.assertClosedWith408OrNothing(data)
                self.assertServes()

        def test_slow_app_within_timeout(self):
                # Sleeping in the app is not a client stall; a 1 s app under --timeout 2 completes.
                r = self.srv.get("/slow?s=1")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"slept 1\n")


class WorkerTimeoutTest(unittest.TestCase):
        @unittest.skipIf(h.worker_kind() == "gevent", "gevent: the app's time.sleep() yields to the hub, so "
                         "the worker is not stuck (test_gevent blocks the hub with a busy loop)")
        def test_stuck_worker_replaced(self):
                srv = h.Server("routes:app", args=["--timeout", "1"])
                self.addCleanup(srv.stop)
                first = srv.worker_pids()
                self.assertEqual(len(first), 1, srv.log())
                s = srv.connect(timeout=BOUND)
                self.addCleanup(s.close)
                s.sendall(h.build_request("GET", "/slow?s=30"))
                closed, data = h.wait_closed(s, BOUND)
                self.assertTrue(closed, "a stuck worker was never stopped")
                self.assertNotIn(b"slept", data)
                srv.wait_log(h.WORKER_RE.pattern, count=2, timeout=BOUND)
                self.assertIn("WORKER TIMEOUT", srv.log())
                r = srv.get("/")
                self.assertEqual(r.status, 200)


if __name__ == "__main__":
        h.main()
