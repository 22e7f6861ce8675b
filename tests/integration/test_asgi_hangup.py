#!/usr/bin/python3
"""The asgi worker's watch for a client's hang-up once the request body is read (README, "The
asgi worker"): the worker's own loop watches the connection, already in its epoll set, so a
receive() waiting for http.disconnect beside a response (Starlette's StreamingResponse) adds
no reader to the asyncio loop; clients that leave mid-stream are told apart from those that
stay and from a pipelined next request, which is not a hang-up."""
import os
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

APP = "asgi_hangup_app:app"
ASAN = "ASAN_OPTIONS" in os.environ
LOOP = h.ASGI_LOOP


class TestNoReaderPerRequest(unittest.TestCase):
        def test_watch_adds_no_reader_to_the_asyncio_loop(self):
                # asyncio's loop, whose readers the app can list: while a receive() after the
                # body waits for the client to go, the loop watches what it watched before (the
                # worker's epoll fd and its own wake-up pipe), not the connection's socket
                srv = h.Server(APP, args=["-k", "asgi", "-w", "1", "--asgi-loop", "asyncio"])
                self.addCleanup(srv.stop)
                base = srv.get("/readers").json()
                self.assertTrue(base, "the loop watches nothing?")
                with srv.client() as c:
                        c.send_request("GET", "/watching")
                        r = c.read_response()
                        self.assertEqual(r.status, 200)
                        seen = r.json()
                self.assertFalse(seen["listener_done"], seen)
                self.assertEqual(seen["readers"], base, "a reader was added for the connection")
                srv.wait_log("watching: after the response, http.disconnect")
                # one more, on a kept-alive connection this time (the socket in the worker's set)
                with srv.client() as c:
                        self.assertEqual(c.get_json("/readers"), base)
                        c.send_request("GET", "/watching")
                        seen = c.read_response().json()
                        self.assertEqual(seen["readers"], base)
                        self.assertEqual(c.get_json("/readers"), base)


class TestHangups(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
                cls.srv = h.Server(APP, args=["-k", "asgi", "-w", "1"] + LOOP)

        @classmethod
        def tearDownClass(cls):
                cls.srv.stop()

        def test_exactly_the_clients_that_left_are_seen_gone(self):
                # several streams at once; every other client leaves after the first chunks (a
                # close, or a reset), the others read to the end: only those who left are
                # seen gone, each well before its stream's end
                n = 4 if ASAN else 8
                tag = "x%d" % int(time.monotonic() * 1000)
                clients = [self.srv.client(timeout=15) for _ in range(n)]
                try:
                        for i, c in enumerate(clients):
                                c.send_request("GET", "/stream?id=%s-%d" % (tag, i))
                        for c in clients:
                                c._fill()       # the stream began (kept in the buffer for read_response())
                        time.sleep(0.1)
                        for i, c in enumerate(clients):
                                if i % 2:
                                        if i % 4 == 3:
                                                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                                  struct.pack("ii", 1, 0))
                                        c.close()
                        for i, c in enumerate(clients):
                                if i % 2 == 0:
                                        r = c.read_response()
                                        self.assertEqual(r.status, 200)
                                        self.assertTrue(r.body.endswith(b"end\n"), r)
                finally:
                        for c in clients:
                                c.close()
                for i in range(n):
                        name = "%s-%d" % (tag, i)
                        if i % 2:
                                self.srv.wait_log(r"stream %s saw http\.disconnect after \d+ chunks" % name)
                        else:
                                self.srv.wait_log(r"stream %s complete, then http\.disconnect" % name)
                log = self.srv.log()
                for i in range(n):
                        name = "%s-%d" % (tag, i)
                        self.assertEqual(log.count("stream %s " % name), 1, name)
                        if i % 2 == 0:
                                self.assertNotIn("stream %s saw" % name, log)

        def test_pipelined_request_is_not_a_hangup(self):
                # the next request arrives while the stream still runs: it waits in the socket
                # for its turn (looked at, not taken), and the stream goes on to its end
                tag = "p%d" % int(time.monotonic() * 1000)
                with self.srv.client(timeout=15) as c:
                        c.send_request("GET", "/stream?id=%s" % tag)
                        time.sleep(0.1)
                        c.send_request("GET", "/after")
                        r = c.read_response()
                        self.assertEqual(r.status, 200)
                        self.assertTrue(r.body.endswith(b"end\n"), r)
                        r = c.read_response()
                        self.assertEqual(r.json(), {"path": "/after"})
                self.srv.wait_log(r"stream %s complete, then http\.disconnect" % tag)
                self.assertNotIn("stream %s saw" % tag, self.srv.log())

        def test_a_cancelled_receive_leaves_the_other_watching(self):
                # two receive() wait for the client's going; one is cancelled (a task group's
                # end, a timeout): the other still learns that the client left
                tag = "c%d" % int(time.monotonic() * 1000)
                c = self.srv.client(timeout=15)
                try:
                        c.send_request("GET", "/stream?id=%s&extra=1" % tag)
                        c._fill()
                        time.sleep(0.15)        # the extra receive() is cancelled after two chunks
                finally:
                        c.close()
                self.srv.wait_log(r"stream %s (saw|complete)" % tag, timeout=15)
                self.assertRegex(self.srv.log(), r"stream %s saw http\.disconnect after \d+ chunks" % tag)

        def test_half_close_is_a_hangup(self):
                # the client shuts its sending side (FIN) and keeps reading: gone, for the app
                tag = "h%d" % int(time.monotonic() * 1000)
                with self.srv.client(timeout=15) as c:
                        c.send_request("GET", "/stream?id=%s" % tag)
                        c._fill()
                        c.sock.shutdown(socket.SHUT_WR)
                        self.srv.wait_log(r"stream %s saw http\.disconnect after \d+ chunks" % tag)
                self.assertEqual(self.srv.get("/x").json(), {"path": "/x"})


if __name__ == "__main__":
        unittest.main()
