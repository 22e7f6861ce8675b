"""Clients that push the connection core: an endless upload to a route that never reads it,
thousands of pipelined requests in one write, and a worker out of file descriptors. Each is
bounded in bytes and time; the sanitizer pass sends less."""

import os
import re
import resource
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

APP = "conn_app:app"
SANITIZED = "ASAN_OPTIONS" in os.environ



class HostileTest(h.ServerTestCase):
        def test_huge_upload_to_a_route_that_never_reads_it(self):
                srv = self.start(APP, args=["-w", "1", "--timeout", "10"])
                worker = int(srv.get("/pid").body)
                before = h.rss_kib(worker)
                total = (64 if SANITIZED else 1024) << 20
                s = srv.connect()
                self.addCleanup(s.close)
                s.sendall(b"POST /unread?size=5 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
                sent = [0]

                def pour():
                        chunk = b"x" * (1 << 20)
                        try:
                                while sent[0] < total:
                                        s.sendall(chunk)
                                        sent[0] += len(chunk)
                        except OSError:
                                pass  # the server closed after its answer and a lingering while

                t = threading.Thread(target=pour, daemon=True)
                t.start()
                c = h.Client(s)
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"uuuuu")
                self.assertTrue(r.has_token("Connection", "close"))
                t.join(60)
                self.assertFalse(t.is_alive(), "the upload never ended")
                # The worker drops what comes after its answer, and closes once the client is done.
                try:
                        s.shutdown(socket.SHUT_WR)
                except OSError:
                        pass
                self.assertTrue(c.at_eof(10), "the connection stayed open after the answer")
                # What the worker read and dropped did not stay with it.
                self.assertLess(h.rss_kib(worker) - before, 32 * 1024)
                self.assertEqual(int(srv.get("/pid").body), worker)

        def test_pipelined_requests_in_one_write(self):
                srv = self.start(APP, args=["-w", "1"])
                worker = int(srv.get("/pid").body)
                n = 1000 if SANITIZED else 10000
                s = srv.connect(timeout=30)
                self.addCleanup(s.close)
                wire = b"".join(b"GET /pid?i=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(n - 1))
                wire += b"GET /pid?i=last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                sender = threading.Thread(target=s.sendall, args=(wire,), daemon=True)
                sender.start()
                c = h.Client(s)
                for i in range(n):
                        r = c.read_response()
                        self.assertEqual(r.status, 200, "answer %d" % i)
                        self.assertEqual(int(r.body), worker)
                self.assertTrue(c.at_eof(10))
                sender.join(10)
                self.assertLess(h.rss_kib(worker), 256 * 1024 if not SANITIZED else 1 << 30)

        def test_out_of_file_descriptors(self):
                # The worker may hold its listeners, the signal pipe, epoll, logs and a few more:
                # 32 leaves room for about a dozen clients.
                def low_nofile():
                        resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))

                srv = self.start_limited(low_nofile)
                held = []
                self.addCleanup(lambda: [x.close() for x in held])
                for _ in range(40):
                        held.append(srv.connect(timeout=2))
                        held[-1].sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
                # Long enough for three of the one-second pauses: retried, but logged once.
                time.sleep(3.5)
                log = srv.log()
                self.assertEqual(len(re.findall(r"accept\(\) failed", log)), 1, log[-2000:])
                for x in held:
                        x.close()
                held.clear()
                # With the descriptors back, new clients are served again, and the log says so.
                self.assertTrue(h.wait_until(lambda: self.serves(srv), 10))
                srv.wait_log(r"accept\(\) works again on http://")
                if h.worker_kind() != "gevent":
                        # gevent's worker takes in the whole queue of the closed clients before
                        # its greenlets run and close them, so with 32 descriptors it can run
                        # out again, a new episode that is logged again
                        self.assertEqual(len(re.findall(r"accept\(\) failed", srv.log())), 1)

        def serves(self, srv):
                try:
                        return srv.get("/pid").status == 200
                except OSError:
                        return False

        def start_limited(self, preexec):
                """A server whose processes start with the given resource limits."""
                import subprocess

                real_popen = subprocess.Popen

                def popen(*a, **kw):
                        kw["preexec_fn"] = preexec
                        return real_popen(*a, **kw)

                subprocess.Popen = popen
                try:
                        return self.start(APP, args=["-w", "1", "--keep-alive", "60"])
                finally:
                        subprocess.Popen = real_popen


if __name__ == "__main__":
        h.main()
