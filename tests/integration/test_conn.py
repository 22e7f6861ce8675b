"""The connection core against the real binary: descriptors an app's fork() keeps, what a
worker keeps of closed connections, answers that must arrive whole while the client is still
sending, slow but moving clients, deadlines, signals during blocking I/O, and accept errors.

Timing bounds here are deadlines of behaviour (a connection must be closed by then), never
speed: each is several times what the server needs."""

import os
import re
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

APP = "conn_app:app"
SANITIZED = "ASAN_OPTIONS" in os.environ



def send_in_background(sock, data):
        """Sends data from a thread (the server may answer before reading it); errors are kept."""
        result = {}

        def run():
                try:
                        sock.sendall(data)
                except OSError as e:
                        result["error"] = e

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t, result


def assert_clean_eof(test, sock, timeout=10.0):
        """The server ends the connection with a FIN (everything it sent is readable), not a reset."""
        sock.settimeout(timeout)
        try:
                while sock.recv(65536):
                        pass
        except ConnectionResetError:
                test.fail("the server reset the connection instead of closing it")


class ForkTest(h.ServerTestCase):
        def test_fork_during_request_then_client_closes(self):
                srv = self.start(APP, args=["-w", "1"])
                c = srv.client()
                c.send_request("GET", "/fork")
                self.assertEqual(c.read_response().status, 200)
                # The connection outlives its first request, so it is in the worker's epoll set
                # when the client closes it while the app's child still holds the socket.
                c.send_request("GET", "/pid")
                r = c.read_response()
                self.assertEqual(r.status, 200)
                worker = int(r.body)
                c.close()
                time.sleep(0.3)
                for _ in range(20):
                        r = srv.get("/pid")
                        self.assertEqual(r.status, 200)
                        self.assertEqual(int(r.body), worker, "the worker died after its app forked")
                self.assertNotIn("double free", srv.log())


def server_sockets(port):
        """(state, unread bytes) of each open server-side TCP socket on port, from ss(8)."""
        out = subprocess.run(["ss", "-Htan", "sport = :%d" % port], capture_output=True, text=True,
                             timeout=10).stdout
        rows = []
        for line in out.splitlines():
                f = line.split()
                if len(f) >= 2 and f[0] not in ("LISTEN", "TIME-WAIT"):
                        rows.append((f[0], int(f[1])))
        return rows


def open_fds(pid):
        return len(os.listdir("/proc/%d/fd" % pid))


class PoolTest(h.ServerTestCase):
        def test_closed_connections_keep_no_large_head_buffers(self):
                # Large blocks straight from mmap() and back to the system when freed, so that
                # the worker's size tells what it keeps rather than how its heap fragmented.
                srv = self.start(APP, args=["-w", "1"], env={"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=131072"})
                worker = int(srv.get("/pid").body)
                before = h.rss_kib(worker)
                line = b"X-Fill: " + b"a" * 8000 + b"\r\n"
                head = b"GET /pid HTTP/1.1\r\nHost: x\r\n" + line * 90  # about 720 KiB, never ended
                conns = [srv.connect() for _ in range(16 if SANITIZED else 64)]
                for s in conns:
                        s.sendall(head)
                # All of it read by the worker, then all closed by the clients and the worker.
                self.assertTrue(h.wait_until(lambda: len(server_sockets(srv.port)) == len(conns) and
                                             all(q == 0 for _, q in server_sockets(srv.port)), 20))
                for s in conns:
                        s.close()
                self.assertTrue(h.wait_until(lambda: not server_sockets(srv.port), 20))
                grown = h.rss_kib(worker) - before
                if not SANITIZED:  # ASan keeps freed memory in quarantine
                        self.assertLess(grown, 24 * 1024,
                                        "%d closed connections left the worker %d KiB larger" % (len(conns), grown))
                self.assertEqual(int(srv.get("/pid").body), worker)


        def test_idle_connections_keep_no_large_head_buffers(self):
                srv = self.start(APP, args=["-w", "1", "--keep-alive", "30"],
                                 env={"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=131072"})
                worker = int(srv.get("/pid").body)
                before = h.rss_kib(worker)
                line = b"X-Fill: " + b"a" * 8000 + b"\r\n"
                clients = []
                for _ in range(8 if SANITIZED else 64):
                        c = srv.client()
                        self.addCleanup(c.close)
                        c.send(b"GET /pid HTTP/1.1\r\nHost: x\r\n" + line * 90 + b"\r\n")
                        self.assertEqual(c.read_response().status, 200)
                        clients.append(c)
                grown = h.rss_kib(worker) - before
                if not SANITIZED:
                        self.assertLess(grown, 24 * 1024, "%d idle keep-alive connections hold %d KiB"
                                        % (len(clients), grown))


class LostResponseTest(h.ServerTestCase):
        @classmethod
        def setUpClass(cls):
                cls.srv = h.Server(APP, args=["-w", "1", "--timeout", "5"])

        @classmethod
        def tearDownClass(cls):
                cls.srv.stop()

        def test_unread_upload_large_answer_arrives_whole(self):
                s = self.srv.connect()
                self.addCleanup(s.close)
                s.sendall(b"POST /unread?size=3000000 HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n")
                sender, _ = send_in_background(s, b"p" * 500000)
                c = h.Client(s)
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertTrue(r.has_token("Connection", "close"),
                                "keep-alive promised with 4.5 MB of body unread")
                self.assertTrue(r.complete, "the answer was cut")
                self.assertEqual(len(r.body), 3000000)
                sender.join(10)
                s.shutdown(socket.SHUT_WR)
                assert_clean_eof(self, s)

        def test_unread_small_bodies_keep_the_connection(self):
                c = self.srv.client()
                self.addCleanup(c.close)
                body = b"q" * 200000
                for i in range(10):
                        c.send_request("POST", "/unread?size=10", body=body)
                        r = c.read_response()
                        self.assertEqual(r.status, 200, "request %d" % i)
                        self.assertFalse(r.has_token("Connection", "close"), "request %d" % i)
                c.send_request("GET", "/pid")
                self.assertEqual(c.read_response().status, 200)

        def test_unread_chunked_body_closes_without_reset(self):
                s = self.srv.connect()
                self.addCleanup(s.close)
                # More than --buffer-request-body (1 MiB) before the answer: the app runs while
                # the rest of the body is still to come.
                s.sendall(b"POST /unread?size=100000 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          + (b"1000\r\n" + b"c" * 4096 + b"\r\n") * 257)
                c = h.Client(s)
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertTrue(r.has_token("Connection", "close"))
                self.assertEqual(len(r.body), 100000)
                s.sendall((b"1000\r\n" + b"c" * 4096 + b"\r\n") * 16)
                s.shutdown(socket.SHUT_WR)
                assert_clean_eof(self, s)

        def test_expect_continue_body_never_asked_for(self):
                s = self.srv.connect()
                self.addCleanup(s.close)
                s.sendall(b"POST /unread?size=5 HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n"
                          b"Expect: 100-continue\r\n\r\n")
                c = h.Client(s)
                r = c.read_response(skip_interim=False)
                self.assertEqual(r.status, 200)
                self.assertTrue(r.has_token("Connection", "close"),
                                "keep-alive promised for a body the client holds back")
                # A client that gave up waiting for 100 Continue sends the body anyway.
                s.sendall(b"e" * 300000)
                s.shutdown(socket.SHUT_WR)
                assert_clean_eof(self, s)

        def test_no_interim_response_inside_the_body(self):
                s = self.srv.connect()
                self.addCleanup(s.close)
                s.sendall(b"POST /write-then-read HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                          b"Expect: 100-continue\r\n\r\n")
                got = b""
                s.settimeout(10)
                while b"first;" not in got:
                        part = s.recv(65536)
                        self.assertTrue(part, got)
                        got += part
                s.sendall(b"hello")
                while not got.endswith(b"0\r\n\r\n"):
                        part = s.recv(65536)
                        if not part:
                                break
                        got += part
                self.assertNotIn(b"100 Continue", got)
                r = h.parse_responses(got)
                self.assertEqual(len(r), 1, got)
                self.assertEqual(r[0].body, b"first;hello")

        def test_error_answer_to_head_has_no_body(self):
                s = self.srv.connect()
                self.addCleanup(s.close)
                s.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n")
                data = h.recv_all(s)
                head, sep, body = data.partition(b"\r\n\r\n")
                self.assertTrue(head.startswith(b"HTTP/1.1 400 "), data)
                self.assertEqual(body, b"", "an error answer to HEAD carried a body")

        def test_error_answer_lingers(self):
                worker = int(self.srv.get("/pid").body)
                fds = open_fds(worker)
                s = self.srv.connect()
                self.addCleanup(s.close)
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n" + b"j" * 200000)
                c = h.Client(s)
                r = c.read_response()
                self.assertEqual(r.status, 400)
                s.sendall(b"j" * 200000)
                s.shutdown(socket.SHUT_WR)
                assert_clean_eof(self, s)
                # The worker closes its side once the client is done, not at the linger deadline.
                self.assertTrue(h.wait_until(lambda: open_fds(worker) <= fds, 2.5),
                                "a lingering connection outlived its client")


class SlowClientTest(h.ServerTestCase):
        # Short enough that a slow transfer outlasts it, long enough that a loaded machine
        # does not starve the worker past it.
        ARGS = ["-w", "1", "--timeout", "2"]

        def test_slow_download_outlasting_timeout(self):
                srv = self.start(APP, args=self.ARGS)
                worker = int(srv.get("/pid").body)
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 262144)
                s.settimeout(10)
                s.connect(srv.address())
                self.addCleanup(s.close)
                # Past what the kernel buffers on both sides (4 MiB and more), the rest takes
                # seconds at this pace.
                size = 10000000
                s.sendall(b"GET /big?size=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % size)
                got = b""
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                        part = s.recv(131072)
                        if not part:
                                break
                        got += part
                        time.sleep(0.1)  # 1.3 MB/s at most
                head, _, body = got.partition(b"\r\n\r\n")
                self.assertEqual(len(body), size, "the download was cut after %d bytes" % len(body))
                self.assertNotIn("WORKER TIMEOUT", srv.log())
                self.assertEqual(int(srv.get("/pid").body), worker)

        def test_slow_upload_outlasting_timeout(self):
                srv = self.start(APP, args=self.ARGS)
                worker = int(srv.get("/pid").body)
                c = srv.client()
                self.addCleanup(c.close)
                piece = b"u" * 100000
                n = 16
                c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (len(piece) * n))
                for _ in range(n):
                        c.send(piece)
                        time.sleep(0.2)
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(len(r.body), len(piece) * n)
                self.assertNotIn("WORKER TIMEOUT", srv.log())
                self.assertEqual(int(srv.get("/pid").body), worker)

        def test_408_lingers(self):
                srv = self.start(APP, args=self.ARGS)
                s = srv.connect()
                self.addCleanup(s.close)
                s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\n")
                s.settimeout(10)
                self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 408 "))
                # The client, late, sends the rest of its request.
                s.sendall(b"Content-Length: 100000\r\n\r\n" + b"l" * 100000)
                s.shutdown(socket.SHUT_WR)
                assert_clean_eof(self, s)

        def test_trickling_head_expires_despite_new_connections(self):
                srv = self.start(APP, args=self.ARGS)
                slow = srv.connect()
                self.addCleanup(slow.close)
                slow.sendall(b"GET /pid HTTP/1.1\r\n")
                others = []
                self.addCleanup(lambda: [o.close() for o in others])
                start = time.monotonic()
                closed_after = None
                slow.settimeout(0.3)
                while time.monotonic() - start < 8:
                        try:
                                slow.sendall(b"X")
                                slow.recv(4096)  # a 408 or the end: the server dropped it
                                closed_after = time.monotonic() - start
                                break
                        except socket.timeout:
                                pass
                        except OSError:
                                closed_after = time.monotonic() - start
                                break
                        # A new connection with a started head every turn.
                        o = srv.connect()
                        o.sendall(b"G")
                        others.append(o)
                self.assertIsNotNone(closed_after, "a client trickling its head outlived the 2 s head deadline")


class SignalTest(h.ServerTestCase):
        @classmethod
        def setUpClass(cls):
                cls.srv = h.Server(APP, args=["-w", "1", "--timeout", "30"])

        @classmethod
        def tearDownClass(cls):
                cls.srv.stop()

        def test_handler_runs_while_reading_the_body(self):
                c = h.Client(self.srv.connect(timeout=5))
                self.addCleanup(c.close)
                # Over --buffer-request-body (1 MiB), so the app runs before the body is there.
                c.send(b"POST /alarm-read HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n")
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"interrupted")

        def test_handler_runs_while_writing(self):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
                s.settimeout(5)
                s.connect(self.srv.address())
                self.addCleanup(s.close)
                s.sendall(b"GET /alarm-write HTTP/1.1\r\nHost: x\r\n\r\n")
                # Nothing is read: the worker blocks on a full socket until the alarm.
                self.srv.wait_log(r"AlarmInterrupted", timeout=5)


class RetireOrderTest(h.ServerTestCase):
        def test_backlog_is_served_after_the_request_that_retires(self):
                srv = self.start(APP, args=["-w", "1", "--max-requests", "2", "--access-logfile", "-"])
                first = srv.client()
                self.addCleanup(first.close)
                first.send_request("GET", "/sleep?s=0.5")
                time.sleep(0.1)
                a = srv.client()
                self.addCleanup(a.close)
                a.send_request("GET", "/pid?tag=a", headers=[("Connection", "close")])
                time.sleep(0.05)
                b = srv.client()
                self.addCleanup(b.close)
                b.send_request("GET", "/pid?tag=b", headers=[("Connection", "close")])
                self.assertEqual(first.read_response().status, 200)
                self.assertEqual(a.read_response().status, 200)
                self.assertEqual(b.read_response().status, 200)
                h.wait_until(lambda: "tag=b" in srv.stdout(), 5)
                log = srv.stdout()
                self.assertLess(log.index("tag=a"), log.index("tag=b"),
                                "a request from the backlog was served inside an earlier one:\n" + log)


class BodyLimitTest(h.ServerTestCase):
        def test_chunked_body_over_limit_is_413_even_through_a_framework(self):
                # Flask turns the failed read into its own 500; the client is owed a 413.
                srv = self.start("flask_app:app", args=["-w", "1", "--limit-request-body", "20000"])
                data = b"0123456789" * 5000
                wire = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + 4000]), data[i:i + 4000])
                                for i in range(0, len(data), 4000)) + b"0\r\n\r\n"
                c = srv.client()
                self.addCleanup(c.close)
                c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                       b"Content-Type: application/octet-stream\r\n\r\n" + wire)
                r = c.read_response()
                self.assertEqual(r.status, 413)
                self.assertTrue(r.has_token("Connection", "close"))


@unittest.skipUnless(os.environ.get("GCORN_FAULT_LIB"), "needs the fault-injection library")
class AcceptErrorTest(h.ServerTestCase):
        def fault_env(self, **faults):
                env = {"LD_PRELOAD": os.environ["GCORN_FAULT_LIB"]}
                if SANITIZED:
                        env["ASAN_OPTIONS"] = os.environ["ASAN_OPTIONS"] + ":verify_asan_link_order=0"
                env.update({k: str(v) for k, v in faults.items()})
                return env

        def test_unexpected_accept_error_pauses_instead_of_spinning(self):
                tally = os.path.join(h.tempdir(self, "gcorn-tally-"), "accept-failures")
                srv = self.start(APP, args=["-w", "1"], env=self.fault_env(
                        GCORN_FAULT_ACCEPT_ERRNO=22, GCORN_FAULT_ACCEPT_MS=1200, GCORN_FAULT_ACCEPT_TALLY=tally))
                c = srv.client(timeout=10)
                self.addCleanup(c.close)
                c.send_request("GET", "/pid")
                self.assertEqual(c.read_response().status, 200)
                # Tried again once a second, not at once; logged once.
                with open(tally) as f:
                        tried = len(f.read())
                self.assertGreaterEqual(tried, 1)
                self.assertLessEqual(tried, 3, "accept() errors were retried at once:\n" + srv.log()[-2000:])
                self.assertEqual(len(re.findall(r"accept\(\) failed", srv.log())), 1, srv.log()[-2000:])
                srv.wait_log(r"accept\(\) works again")

        def test_failed_listener_watch_is_retried(self):
                srv = self.start(APP, args=["-w", "1"], env=self.fault_env(GCORN_FAULT_WATCH_LISTENER_ERRNO=12))
                c = srv.client(timeout=10)
                self.addCleanup(c.close)
                c.send_request("GET", "/pid")
                self.assertEqual(c.read_response().status, 200)
                self.assertRegex(srv.log(), r"Failed to watch listener")


if __name__ == "__main__":
        h.main()
