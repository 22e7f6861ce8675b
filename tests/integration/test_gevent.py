#!/usr/bin/python3
"""The gevent worker (-k gevent): requests run side by side in greenlets of one worker, their
blocking calls patched by gevent; the worker's loop keeps every socket; a greenlet that
blocks the hub is reported with its stack and the worker replaced; stops wait for the
greenlets; bodies and answers pass byte for byte; Gunicorn's spellings of the class work,
eventlet's are refused."""
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402
from offload_cases import BulkCases  # noqa: E402

APP = "gevent_app:app"
ASAN = "ASAN_OPTIONS" in os.environ
BOUND = 30.0


def run_gcorn(args):
        env = dict(os.environ)
        env.pop("GCORN_TEST_EXTRA_ARGS", None)
        if "ASAN_OPTIONS" in env:
                # as the harness does for a gevent server
                env["ASAN_OPTIONS"] += ":detect_stack_use_after_return=0:detect_leaks=0"
        return subprocess.run([h.GCORN, "-b", "127.0.0.1:0"] + args, capture_output=True, text=True, timeout=60,
                              cwd=h.APPS, env=env)


class GeventTest(BulkCases, h.ServerTestCase):

        def start_gevent(self, args=(), app=APP, **kw):
                return self.start(app, args=["-w", "1", "-k", "gevent"] + list(args), **kw)

        def start_kind(self, args=()):
                return self.start_gevent(args=args)

        def test_sleeping_requests_overlap(self):
                # One worker, four requests whose app sleeps 0.5 s (time.sleep, patched): every
                # one of them starts (as the app saw it) before any of them ends.
                srv = self.start_gevent()
                got = h.in_parallel(lambda i: srv.get("/slow?s=0.5&n=%d" % i).json(), range(4))
                self.assertLess(max(g["start"] for g in got), min(g["end"] for g in got), got)

        def test_patched_socket_does_not_block_others(self):
                # The app waits on a socket of its own (a server of the test's that answers only
                # when told): the worker serves others meanwhile.
                lsock = socket.socket()
                lsock.bind(("127.0.0.1", 0))
                lsock.listen(1)
                self.addCleanup(lsock.close)
                release = threading.Event()

                def upstream():
                        c, _ = lsock.accept()
                        with c:
                                c.recv(100)
                                release.wait(BOUND)
                                c.sendall(b"pong\n")
                t = threading.Thread(target=upstream, daemon=True)
                t.start()
                srv = self.start_gevent()
                c = srv.client(timeout=BOUND)
                self.addCleanup(c.close)
                c.send_request("GET", "/upstream?port=%d" % lsock.getsockname()[1])
                time.sleep(0.3)
                for _ in range(3):
                        self.assertEqual(srv.get("/").body, b"hello from gevent_app\n")
                release.set()
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.json()["got"], "pong\n")

        def test_hub_waits_with_io_uring_where_libev_can(self):
                # libev's epoll backend rounds the hub's waits up to whole milliseconds, so
                # every gevent timer (an app's time.sleep) fires late and the timers due in
                # the same millisecond fire together; its io_uring backend waits on a timerfd
                # set to the nanosecond. The worker's hub uses it where libev can set it up
                # (what a plain gevent hub asked for it here gets), else epoll.
                probe = subprocess.run(
                        [sys.executable, "-c", "import gevent; gevent.config.libev_backend = 'linux_iouring,epoll'; "
                         "print(gevent.get_hub().loop.backend)"],
                        capture_output=True, text=True, timeout=60, env={k: v for k, v in os.environ.items()
                                                                         if k != "GEVENT_BACKEND"})
                self.assertEqual(probe.returncode, 0, probe.stderr)
                expected = probe.stdout.strip()
                self.assertIn(expected, ("linux_iouring", "epoll"))
                srv = self.start_gevent(env={"GEVENT_BACKEND": ""})
                self.assertEqual(srv.get("/backend").json()["backend"], expected)
                # and an app the worker forks (gevent's os.fork) gets a working hub of its own
                self.assertIn("child", srv.get("/fork").json())
                self.assertEqual(srv.get("/backend").json()["backend"], expected)

        def test_greenlet_runs_the_next_request_with_a_fresh_context(self):
                # A greenlet that ran a request runs the next one (a greenlet per request cost
                # a Greenlet and an mmap()ed chunk for its Python frames each time), and each
                # request still starts with an empty contextvars context.
                srv = self.start_gevent()
                got = [srv.get("/greenlet?mark=%d" % i).json() for i in range(4)]
                self.assertEqual(len({g["greenlet"] for g in got}), 1, got)
                self.assertEqual([g["seen"] for g in got], [None] * 4, got)
                # side by side, each request has a greenlet of its own
                side = h.in_parallel(lambda i: srv.get("/slow?s=0.3").json(), range(3))
                self.assertLess(max(g["start"] for g in side), min(g["end"] for g in side), side)

        def test_timeout_a_request_left_behind_does_not_break_the_worker(self):
                # A gevent.Timeout the app started and never cancelled fires after its request
                # ended, into the greenlet that waits for the next one: that greenlet goes,
                # the worker serves on.
                srv = self.start_gevent()
                pid = srv.get("/pid").json()["pid"]
                self.assertTrue(srv.get("/leave-timeout?s=0.3").json()["left"])
                time.sleep(0.8)
                for i in range(3):
                        r = srv.get("/greenlet")
                        self.assertEqual(r.status, 200, r)
                        self.assertIsNone(r.json()["seen"])
                self.assertEqual(srv.get("/pid").json()["pid"], pid)
                self.assertNotIn("Traceback", srv.log())

        def test_backend_the_user_chose_is_kept(self):
                # GEVENT_BACKEND in the environment, or gevent.config set in the config file
                # (run by the master, before any worker), is the user's choice: the worker
                # does not override it.
                srv = self.start_gevent(env={"GEVENT_BACKEND": "poll"})
                self.assertEqual(srv.get("/backend").json()["backend"], "poll")
                srv.stop()
                conf = os.path.join(h.tempdir(self, "gcorn-gevent-conf-"), "conf.py")
                with open(conf, "w") as f:
                        f.write("import gevent\ngevent.config.libev_backend = 'poll'\n")
                srv = self.start_gevent(args=["-c", conf], env={"GEVENT_BACKEND": ""})
                self.assertEqual(srv.get("/backend").json()["backend"], "poll")

        def test_heartbeat_goes_on_while_greenlets_sleep(self):
                # --timeout 1: the hub idles while the app sleeps three times as long, and the
                # worker's heartbeat must stay fresh all along (no WORKER TIMEOUT).
                srv = self.start_gevent(args=["--timeout", "1"])
                worker = srv.worker_pids()
                self.assertEqual(srv.get("/slow?s=5").status, 200)
                self.assertNotIn("WORKER TIMEOUT", srv.log())
                self.assertEqual(srv.worker_pids(), worker)

        def test_environ_and_patching(self):
                srv = self.start_gevent()
                env = srv.get("/env").json()
                # as Gunicorn's gevent worker sets it
                self.assertIs(env["multithread"], True)
                self.assertIs(env["multiprocess"], False)
                # patched before the app was imported
                self.assertTrue(env["patched"].startswith("gevent"), env)

        def test_worker_connections_bounds_a_worker(self):
                # --worker-connections 1: a second client waits (in the listen queue) until the
                # first closes.
                srv = self.start_gevent(args=["--worker-connections", "1", "--keep-alive", "30"])
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
                self.assertNotIn("worker_connections", srv.log())

        def test_greenlet_blocking_the_hub_is_reported_and_replaced(self):
                srv = self.start_gevent(args=["--timeout", "2"])
                first = srv.worker_pids()
                self.assertEqual(len(first), 1)
                # another request in flight, sleeping: the report names the one that spins
                other = srv.client(timeout=BOUND)
                self.addCleanup(other.close)
                other.send_request("GET", "/slow?s=60")
                time.sleep(0.2)
                s = srv.connect(timeout=BOUND)
                self.addCleanup(s.close)
                s.sendall(h.build_request("GET", "/spin"))
                log = srv.wait_log(r"WORKER TIMEOUT \(pid:%d\) serving GET /spin for \d+\.\d s" % first[0],
                                   timeout=BOUND)
                log = srv.wait_log(r'File "[^"]*gevent_app\.py", line \d+ in app', timeout=BOUND)
                tail = log[log.index("WORKER TIMEOUT"):]
                self.assertIn("most recent call first", tail)
                srv.wait_log(h.WORKER_RE.pattern, count=2, timeout=BOUND)
                closed, data = h.wait_closed(s, BOUND)
                self.assertTrue(closed, "the blocked worker never went")
                self.assertNotIn(b"200 OK", data)
                for _ in range(3):
                        self.assertEqual(srv.get("/").status, 200)

        def test_forked_child_leaves_the_loop_to_the_worker(self):
                # A child the app forks sleeps in its copy of the hub: it must not run the
                # worker's loop (whose epoll instance it shares) nor take its clients.
                srv = self.start_gevent()
                worker = srv.worker_pids()[0]
                self.assertGreater(srv.get("/fork").json()["child"], 0)
                for _ in range(20):
                        self.assertEqual(srv.get("/pid").json()["pid"], worker)
                        time.sleep(0.05)
                time.sleep(1.5)
                self.assertEqual(srv.get("/pid").json()["pid"], worker)
                self.assertEqual(srv.worker_pids(), [worker])

        def test_graceful_stop_waits_for_every_greenlet(self):
                srv = self.start_gevent()
                clients = []
                for i in range(4):
                        c = srv.client(timeout=BOUND)
                        self.addCleanup(c.close)
                        c.send_request("GET", "/slow?s=1.5&n=%d" % i)
                        clients.append(c)
                time.sleep(0.5)         # all four are inside the app
                os.kill(srv.pid, signal.SIGTERM)
                for c in clients:
                        r = c.read_response()
                        self.assertEqual(r.status, 200)
                        self.assertIn("end", r.json())
                self.assertEqual(srv.proc.wait(timeout=BOUND), 0)

        def test_slow_reader_of_a_streamed_answer(self):
                # The greenlet waits (in the hub) for the client to take bytes: a reader that
                # pauses still gets every byte, and others are served meanwhile.
                n, size = 40, 65536
                srv = self.start_gevent(args=["--buffer-response", "65536"])
                want = hashlib.sha256(b"".join(h.pattern(size, i) for i in range(n))).hexdigest()
                for path in ("/write", "/stream"):
                        with srv.connect(timeout=BOUND) as s:
                                s.sendall(h.build_request("GET", "%s?n=%d&size=%d" % (path, n, size),
                                                          headers=[("Connection", "close")]))
                                time.sleep(0.5)
                                self.assertEqual(srv.get("/").status, 200)
                                data = h.recv_all(s, BOUND)
                        r = h.parse_responses(data)[0]
                        self.assertEqual(r.status, 200)
                        self.assertEqual(hashlib.sha256(r.body).hexdigest(), want, path)


class GeventSpellingTest(unittest.TestCase):

        def test_class_spellings_select_gevent(self):
                for spelling in ("gevent", "gunicorn.workers.ggevent.GeventWorker", "egg:gunicorn#gevent"):
                        with self.subTest(spelling=spelling):
                                p = run_gcorn(["-k", spelling, "--check-config", APP])
                                self.assertEqual(p.returncode, 0, p)
                                srv = h.Server(APP, args=["-w", "1", "-k", spelling])
                                try:
                                        self.assertIn("Using worker: gevent", srv.log())
                                        self.assertEqual(srv.get("/env").json()["multithread"], True)
                                finally:
                                        srv.stop()

        def test_eventlet_refused(self):
                p = run_gcorn(["-k", "eventlet", APP])
                self.assertEqual(p.returncode, 2, p)
                err = [line for line in p.stderr.splitlines() if line.strip()]
                self.assertEqual(len(err), 1, err)
                self.assertIn("eventlet", err[0])
                self.assertIn("gevent", err[0])

        def test_missing_gevent_is_one_line(self):
                # a gevent that cannot be imported, first on sys.path
                d = h.tempdir(self, "gcorn-nogevent-")
                os.mkdir(os.path.join(d, "gevent"))
                with open(os.path.join(d, "gevent", "__init__.py"), "w") as f:
                        f.write("raise ImportError('this gevent is broken')\n")
                p = run_gcorn(["-k", "gevent", "--pythonpath", d, APP])
                self.assertEqual(p.returncode, 1, p)
                err = [line for line in p.stderr.splitlines() if line.strip()]
                self.assertEqual(len(err), 1, err)
                self.assertIn("needs gevent", err[0])
                self.assertIn("this gevent is broken", err[0])


if __name__ == "__main__":
        h.main()
