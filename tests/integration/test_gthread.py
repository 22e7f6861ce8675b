#!/usr/bin/python3
"""The gthread worker (-k gthread, --threads N): requests run side by side on app threads
while the worker's loop keeps every socket; each thread keeps its own Python state; a stuck
thread is reported and its worker replaced; stops wait for every thread; bodies and answers
pass through the threads byte for byte."""
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402
from offload_cases import BulkCases  # noqa: E402

APP = "gthread_app:app"
ASAN = "ASAN_OPTIONS" in os.environ
BOUND = 30.0


class GthreadTest(BulkCases, h.ServerTestCase):

        def start_gthread(self, threads=4, args=()):
                return self.start(APP, args=["-w", "1", "-k", "gthread", "--threads", str(threads)] + list(args))

        def start_kind(self, args=()):
                return self.start_gthread(args=args)

        def test_slow_requests_overlap(self):
                # One worker, four threads, four requests that each wait 0.6 s: every one of them
                # starts (as the app saw it) before any of them ends.
                srv = self.start_gthread()
                got = h.in_parallel(lambda i: srv.get("/slow?s=0.6").json(), range(4))
                self.assertEqual(len({g["thread"] for g in got}), 4, got)
                self.assertLess(max(g["start"] for g in got), min(g["end"] for g in got), got)

        def test_sync_with_threads_means_gthread(self):
                # Gunicorn's rule: --threads above 1 with the default worker class is gthread.
                srv = self.start(APP, args=["-w", "1", "--threads", "2"])
                self.assertIn("Using worker: gthread", srv.log())
                got = h.in_parallel(lambda i: srv.get("/slow?s=0.5").json(), range(2))
                self.assertLess(max(g["start"] for g in got), min(g["end"] for g in got), got)

        def test_threading_local_is_per_thread(self):
                # Each thread counts its own requests in a threading.local: the counts one thread
                # reports are 1, 2, 3... with no gap (the local persists across its requests, and
                # no other thread's requests touch it).
                srv = self.start_gthread(threads=3)
                seen = {}
                for _ in range(4):
                        for g in h.in_parallel(lambda i: srv.get("/local?s=0.2").json(), range(3)):
                                seen.setdefault(g["thread"], []).append(g["count"])
                                # a ContextVar set at the app's top level is the thread's too
                                self.assertEqual(g["context"], g["count"], g)
                self.assertGreater(len(seen), 1, seen)
                self.assertLessEqual(len(seen), 3, seen)
                for counts in seen.values():
                        self.assertEqual(sorted(counts), list(range(1, len(counts) + 1)), seen)

        def test_multithread_in_environ(self):
                srv = self.start_gthread(threads=2)
                self.assertIs(srv.get("/env").json()["multithread"], True)
                srv = self.start(APP, args=["-w", "1"])
                self.assertIs(srv.get("/env").json()["multithread"], False)

        def test_kept_alive_connections_wait_in_the_loop(self):
                # One thread: idle keep-alive connections do not hold it, so a new client is
                # answered while five of them wait for their next request.
                srv = self.start_gthread(threads=1, args=["--keep-alive", "30"])
                idle = self.idle_clients(srv, 5)
                self.assertEqual(srv.get("/").status, 200)
                for c in idle:
                        c.send_request("GET", "/")
                        self.assertEqual(c.read_response().status, 200)

        def test_stuck_thread_reported_and_worker_replaced(self):
                srv = self.start_gthread(args=["--timeout", "2"])
                first = srv.worker_pids()
                self.assertEqual(len(first), 1)
                s = srv.connect(timeout=BOUND)
                self.addCleanup(s.close)
                s.sendall(h.build_request("GET", "/hang"))
                # the other threads keep serving while one hangs
                deadline = time.monotonic() + 1.5
                while time.monotonic() < deadline:
                        self.assertEqual(srv.get("/").status, 200)
                        time.sleep(0.1)
                log = srv.wait_log(r"WORKER TIMEOUT \(pid:%d\) serving GET /hang for \d+\.\d s in thread \d+"
                                   % first[0], timeout=BOUND)
                tail = log[log.index("WORKER TIMEOUT"):]
                self.assertIn("most recent call first", tail)
                self.assertRegex(tail, r'File "[^"]*gthread_app\.py", line \d+ in app')
                # replaced: a new worker boots, the stuck one goes once nothing else is left,
                # and requests are answered all along
                srv.wait_log(h.WORKER_RE.pattern, count=2, timeout=BOUND)
                closed, data = h.wait_closed(s, BOUND)
                self.assertTrue(closed, "the stuck worker never went")
                self.assertNotIn(b"200 OK", data)
                srv.wait_log(r"Worker \(pid:%d\) exited" % first[0], timeout=BOUND)
                self.assertNotIn("killed after timeout", srv.log())
                for _ in range(3):
                        self.assertEqual(srv.get("/").status, 200)

        def test_every_thread_stuck_is_killed_by_the_watchdog(self):
                # With every thread stuck the loop stops beating: the master's watchdog ends the
                # worker as it ends a stuck sync worker.
                srv = self.start_gthread(threads=2, args=["--timeout", "2", "--graceful-timeout", "60"])
                first = srv.worker_pids()[0]
                socks = []
                for _ in range(2):
                        s = srv.connect(timeout=BOUND)
                        self.addCleanup(s.close)
                        s.sendall(h.build_request("GET", "/hang"))
                        socks.append(s)
                srv.wait_log(r"Worker \(pid:%d\) killed after timeout" % first, timeout=BOUND)
                self.assertEqual(srv.get("/").status, 200)

        def test_graceful_stop_waits_for_every_thread(self):
                srv = self.start_gthread()
                clients = []
                for _ in range(4):
                        c = srv.client(timeout=BOUND)
                        self.addCleanup(c.close)
                        c.send_request("GET", "/slow?s=1.5")
                        clients.append(c)
                time.sleep(0.5)         # all four are inside the app
                os.kill(srv.pid, signal.SIGTERM)
                for c in clients:
                        r = c.read_response()
                        self.assertEqual(r.status, 200)
                        self.assertIn("end", r.json())
                self.assertEqual(srv.proc.wait(timeout=BOUND), 0)

        def test_reload_waits_for_every_thread(self):
                srv = self.start_gthread()
                first = srv.worker_pids()
                clients = []
                for _ in range(4):
                        c = srv.client(timeout=BOUND)
                        self.addCleanup(c.close)
                        c.send_request("GET", "/slow?s=1.5")
                        clients.append(c)
                time.sleep(0.5)
                os.kill(srv.pid, signal.SIGHUP)
                for c in clients:
                        r = c.read_response()
                        self.assertEqual(r.status, 200)
                        self.assertIn("end", r.json())
                srv.wait_log(r"Worker exiting \(pid: %d\)" % first[0], timeout=BOUND)
                self.assertEqual(srv.get("/").status, 200)

        def test_slow_reader_of_a_written_answer(self):
                # write() past --buffer-response waits, in the loop, for the client to take bytes:
                # a reader that pauses still gets every byte.
                n, size = 40, 65536
                srv = self.start_gthread(args=["--buffer-response", "65536"])
                with srv.connect(timeout=BOUND) as s:
                        s.sendall(h.build_request("GET", "/write?n=%d&size=%d" % (n, size),
                                                  headers=[("Connection", "close")]))
                        time.sleep(1.0)
                        data = h.recv_all(s, BOUND)
                r = h.parse_responses(data)[0]
                self.assertEqual(r.status, 200)
                self.assertEqual(hashlib.sha256(r.body).hexdigest(),
                                 hashlib.sha256(b"".join(h.pattern(size, i) for i in range(n))).hexdigest())

        def handover_case(self, srv, case, a_size, wait):
                """One thread. While the loop stands still (inside the generator of a streamed
                answer it pulls), the thread finishes request A, whose list answer is a_size bytes,
                and request B is queued behind it: returns what the generator saw, B-RAN when B ran
                meanwhile, and A's and B's answers."""
                tmp = h.tempdir(self, "handover")
                mark = os.path.join(tmp, "a-runs")
                # more than the kernel's send buffer can take: the rest stays queued in the worker
                # until the client reads
                with open("/proc/sys/net/ipv4/tcp_wmem") as f:
                        size = 2 * int(f.read().split()[2])
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self.addCleanup(s.close)
                # a small window: the client takes little unless it reads
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.settimeout(BOUND)
                s.connect(srv.address())
                stream = h.Client(s)
                stream.send_request("GET", "/handover/stream?case=%s&size=%d&wait=%s" % (case, size, wait),
                                    headers=[("Connection", "close")])
                a = srv.client(timeout=BOUND)
                self.addCleanup(a.close)
                a.send_request("GET", "/handover/a?case=%s&size=%d&mark=%s&wait=%d" % (case, a_size, mark, BOUND),
                               headers=[("Connection", "close")])
                self.assertTrue(h.wait_until(lambda: os.path.exists(mark), BOUND), "A never ran")
                b = srv.client(timeout=BOUND)
                self.addCleanup(b.close)
                b.send_request("GET", "/handover/b?case=%s" % case, headers=[("Connection", "close")])
                # The loop answers a malformed request itself: once it did, it has taken B's
                # request (sent before that connection was made) and queued it for the thread.
                self.assertTrue(srv.raw(b"NOT HTTP\r\n\r\n", timeout=BOUND).startswith(b"HTTP/1.1 400 "))
                got = stream.read_response()
                self.assertEqual(got.status, 200)
                self.assertEqual(got.body[:size], b"s" * size)
                marker = got.body[size:]
                ra, rb = a.read_response(), b.read_response()
                self.assertEqual((ra.status, ra.body), (200, b"a" * a_size))
                self.assertEqual((rb.status, rb.body), (200, b"b"))
                return marker

        def test_answer_handed_to_the_loop_frees_the_thread(self):
                # An answer that fits --buffer-response is handed to the loop: the thread takes its
                # next request without waiting for the loop to send it (here the loop stands still
                # until that next request ran). One past the bound is waited for, as before: the
                # next request runs only once the loop took it.
                srv = self.start_gthread(threads=1, args=["--buffer-response", "65536"])
                self.assertEqual(self.handover_case(srv, "fits", 1000, 10), b"B-RAN")
                self.assertEqual(self.handover_case(srv, "full", 200000, 2), b"B-NOT-RAN")

        def test_ctl_shows_every_request_in_flight(self):
                sock = os.path.join(h.tempdir(self, "gcorn-gthread-ctl-"), "ctl")
                srv = self.start_gthread(args=["--control-socket", sock])

                def in_flight():
                        p = subprocess.run([h.GCORN, "ctl", "--socket", sock, "--json", "status"], capture_output=True,
                                           text=True, timeout=30)
                        self.assertEqual(p.returncode, 0, p)
                        return [q["path"] for w in json.loads(p.stdout)["data"]["workers"] for q in w["in_flight"]]
                clients = []
                for i in range(3):
                        c = srv.client(timeout=BOUND)
                        self.addCleanup(c.close)
                        c.send_request("GET", "/slow?s=%s&n=%d" % ("0.3" if i == 0 else "3", i))
                        clients.append(c)
                self.assertTrue(h.wait_until(lambda: len(in_flight()) == 3, 10), in_flight())
                # the first one ends: the others stay listed
                self.assertEqual(clients[0].read_response().status, 200)
                self.assertTrue(h.wait_until(lambda: sorted(in_flight()) == ["/slow?s=3&n=1", "/slow?s=3&n=2"], 10),
                                in_flight())
                for c in clients[1:]:
                        self.assertEqual(c.read_response().status, 200)
                self.assertTrue(h.wait_until(lambda: in_flight() == [], 10), in_flight())

        def test_worker_connections_bounds_a_worker(self):
                # --worker-connections 1: a second client waits (in the listen queue) until the
                # first closes.
                srv = self.start_gthread(args=["--worker-connections", "1", "--keep-alive", "30"])
                first = srv.client()
                self.addCleanup(first.close)
                first.send_request("GET", "/")
                self.assertEqual(first.read_response().status, 200)
                second = srv.client(timeout=BOUND)
                self.addCleanup(second.close)
                second.send_request("GET", "/", headers=[("Connection", "close")])
                second.sock.settimeout(1.0)
                with self.assertRaises(OSError):
                        second.read_response()
                first.close()
                second.sock.settimeout(BOUND)
                self.assertEqual(second.read_response().status, 200)

        def test_busy_workers_still_share_new_connections(self):
                # Two workers of two threads, every thread busy: the connections that keep
                # arriving must still be split evenly, since each worker queues its own
                # connections' requests and the wait grows with what it holds. A worker whose
                # threads are all busy was left out of the accept balancing (as a busy sync
                # worker is), and the other one took the rest.
                srv = self.start(APP, args=["-w", "2", "-k", "gthread", "--threads", "2", "--keep-alive", "30"])
                # both booted (the second can come a moment after the first answers, under ASan)
                self.assertTrue(h.wait_until(lambda: len(srv.worker_pids()) == 2, BOUND), srv.worker_pids())
                workers = sorted(srv.worker_pids())
                self.assertEqual(len(workers), 2)

                def sockets(pid):
                        n = 0
                        for fd in os.listdir("/proc/%d/fd" % pid):
                                try:
                                        n += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
                                except OSError:
                                        pass
                        return n
                base = {p: sockets(p) for p in workers}
                clients = []
                for i in range(24):
                        c = srv.client(timeout=BOUND)
                        self.addCleanup(c.close)
                        c.send_request("GET", "/slow?s=0.5")
                        clients.append(c)
                        time.sleep(0.02)
                time.sleep(0.3)
                held = [sockets(p) - base[p] for p in workers]
                self.assertEqual(sum(held), 24, held)
                self.assertLessEqual(max(held) - min(held), 4, "connections per worker: %s" % held)
                for c in clients:
                        self.assertEqual(c.read_response().status, 200)

        def test_a_burst_of_connections_is_served_in_arrival_order(self):
                # Two workers of one thread, 500 connections that each send a request as they
                # open, then (a moment later) a second one on each as its first is answered: in
                # each worker the first requests start before the second ones, as they arrived.
                # A worker that yielded its turn at the listeners slept out its 2 ms even once
                # the other had caught up, so the two were both off the listeners most of the
                # time: the burst took about 100 ms to be accepted, four connections every
                # 2 ms, and the first requests of the last ones ran after the second requests
                # of the first.
                srv = self.start(APP, args=["-w", "2", "-k", "gthread", "--threads", "1", "--keep-alive", "30"])
                self.assertTrue(h.wait_until(lambda: len(srv.worker_pids()) == 2, BOUND), srv.worker_pids())
                clients = []
                # one new connection every 0.2 ms: faster than the two took them in turns
                # (four every 2 ms), slower than one worker takes them (under ASan, slower)
                pace, step = time.monotonic(), 0.0005 if ASAN else 0.0002
                for _ in range(300 if ASAN else 500):
                        while time.monotonic() < pace:
                                pass
                        pace += step
                        c = srv.client(timeout=BOUND)
                        self.addCleanup(c.close)
                        c.send_request("GET", "/order?s=0.002")
                        clients.append(c)
                time.sleep(0.005)
                seen = {}
                for c in clients:
                        r = c.read_response()
                        self.assertEqual(r.status, 200, r)
                        c.send_request("GET", "/order?s=0.002")
                        g = json.loads(r.body)
                        seen.setdefault(g["pid"], ([], []))[0].append(g["seq"])
                for c in clients:
                        r = c.read_response()
                        self.assertEqual(r.status, 200, r)
                        g = json.loads(r.body)
                        seen.setdefault(g["pid"], ([], []))[1].append(g["seq"])
                self.assertEqual(len(seen), 2, list(seen))
                for pid, (first, second) in seen.items():
                        self.assertEqual(len(first), len(second), (pid, len(first), len(second)))
                        # The last few connections of a burst can still wait a moment in the
                        # listen queue (both workers off the listeners when no more arrive);
                        # taken in turns, a hundred and more did.
                        late = sorted(s for s in first if s > min(second))
                        self.assertLessEqual(len(late), 5, "worker %d started %d of %d first requests after "
                                             "a second one: %s" % (pid, len(late), len(first), late))

        def test_worker_connections_warns_with_sync(self):
                srv = self.start(APP, args=["-w", "1", "--worker-connections", "5"])
                self.assertIn("Setting worker_connections = 5 has no effect in gcorn: only the gthread, gevent and asgi workers use it",
                              srv.log())
                srv = self.start_gthread(args=["--worker-connections", "5"])
                self.assertNotIn("worker_connections", srv.log())


if __name__ == "__main__":
        h.main()
