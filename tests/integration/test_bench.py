"""Smoke runs of the benchmark: contrib/bench/run.sh --smoke --kinds K (--workloads W) drives the built gcorn
(and, for the worker kinds beyond sync, the peers that are installed) with wrk for a second
per row and must see only successful responses. A check that the benchmark itself still
works, not a timing assertion.

gcorn's gevent and asgi rows run only when the binary accepts `-k gevent` / `-k asgi`; the
tests ask the binary the same way and expect either figures or the report's "not run" row."""
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import unittest

SRC = os.environ.get("GCORN_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
GCORN = os.environ.get("GCORN")
BENCH = os.path.join(SRC, "contrib", "bench")
PY = "/usr/bin/python3"
GUNICORN = "/usr/bin/gunicorn"


def python_has(*modules):
        return subprocess.run([PY, "-c", "import " + ", ".join(modules)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=60).returncode == 0


def gcorn_runs(kind, module):
        """Whether this gcorn accepts `-k KIND` for the bench app MODULE."""
        return subprocess.run([GCORN, "-k", kind, "--check-config", "--chdir", BENCH, module],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=60).returncode == 0


class BenchSmokeTest(unittest.TestCase):
        def setUp(self):
                if not GCORN:
                        self.fail("GCORN is not set")

        def smoke(self, *args):
                with tempfile.TemporaryDirectory(prefix="gcorn-bench-smoke-") as d:
                        env = dict(os.environ, GCORN_BIN=GCORN, BENCH_BUILD_DIR=d)
                        p = subprocess.run(["bash", os.path.join(BENCH, "run.sh"), "--smoke"] + list(args),
                                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                           timeout=120)
                out = p.stdout.decode("utf-8", "replace")
                self.assertEqual(p.returncode, 0, out)
                return out

        def table(self, out, workload):
                """The lines of the report's table for WORKLOAD."""
                m = re.search(r"^### %s: .*?\n\n(\|.*?)(?:\n\n|\Z)" % re.escape(workload), out, re.M | re.S)
                self.assertIsNotNone(m, "no table for %s in:\n%s" % (workload, out))
                return m.group(1).splitlines()

        def assert_row(self, out, workload, server, ran):
                """SERVER's row in WORKLOAD's table has a request rate (ran) or says why it did not run."""
                rows = [r for r in self.table(out, workload) if r.startswith("| %s |" % server)]
                self.assertEqual(len(rows), 1, "%s in %s:\n%s" % (server, workload, out))
                if ran:
                        self.assertRegex(rows[0], r"^\| %s \| \d+ \| " % re.escape(server), out)
                else:
                        self.assertRegex(rows[0], r"^\| %s \| not run: \S" % re.escape(server), out)

        def test_smoke(self):
                out = self.smoke("--kinds", "sync")
                # The report must name gcorn and show a request rate.
                self.assertRegex(out, r"\| gcorn \| \d+", out)
                self.assert_row(out, "hello", "gcorn", True)

        def test_smoke_gthread(self):
                out = self.smoke("--kinds", "gthread")
                self.assert_row(out, "gthread-sleep", "gcorn-gthread", True)
                if os.access(GUNICORN, os.X_OK):
                        self.assert_row(out, "gthread-sleep", "gunicorn-gthread", True)
                # The sleeping app's ceiling: 2 workers x 4 threads / 10 ms = 800 req/s.
                table = self.table(out, "gthread-sleep")
                self.assertIn("ceiling req/s", table[0])
                self.assertRegex(table[2], r"\| 800 \| [\d.]+ \|$", out)

        def test_smoke_gevent(self):
                out = self.smoke("--kinds", "gevent")
                self.assert_row(out, "gevent-sleep", "gcorn-gevent", gcorn_runs("gevent", "app:app"))
                if os.access(GUNICORN, os.X_OK) and python_has("gevent"):
                        self.assert_row(out, "gevent-sleep", "gunicorn-gevent", True)

        def asgi(self, workload):
                """The smoke run of one ASGI workload (--kinds asgi runs three: one at a time keeps
                each test to a few seconds)."""
                if not python_has("fastapi"):
                        self.skipTest("FastAPI is not installed")
                out = self.smoke("--kinds", "asgi", "--workloads", workload)
                self.assert_row(out, workload, "gcorn-asgi", gcorn_runs("asgi", "asgi_app:app"))
                if python_has("uvicorn", "uvloop", "httptools"):
                        self.assert_row(out, workload, "uvicorn", True)
                        if os.access(GUNICORN, os.X_OK):
                                self.assert_row(out, workload, "gunicorn-uvicorn", True)

        def test_smoke_asgi_hello(self):
                self.asgi("asgi-hello")

        def test_smoke_fastapi_echo(self):
                self.asgi("fastapi-echo")

        def test_smoke_fastapi_stream(self):
                self.asgi("fastapi-stream")


class GeventFloorTest(unittest.TestCase):
        """contrib/bench/gevent_floor.py, the bound RESULTS.md gives for the gevent sleep
        workload: each mode answers kept-alive requests with the bench app's hello, and its
        workers go with it."""

        def setUp(self):
                if not python_has("gevent"):
                        self.skipTest("gevent is not installed")

        def start(self, mode):
                with socket.socket() as s:
                        s.bind(("127.0.0.1", 0))
                        port = s.getsockname()[1]
                p = subprocess.Popen([PY, os.path.join(BENCH, "gevent_floor.py"), str(port), "2", mode],
                                     cwd=BENCH, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                self.addCleanup(self.stop, p)
                deadline = time.monotonic() + 30
                while True:
                        try:
                                return p, socket.create_connection(("127.0.0.1", port), timeout=10)
                        except ConnectionRefusedError:
                                if time.monotonic() > deadline or p.poll() is not None:
                                        raise
                                time.sleep(0.05)

        def stop(self, p):
                if p.poll() is None:
                        p.send_signal(signal.SIGTERM)
                        p.wait(timeout=30)
                p.stdout.close()

        def workers(self, p):
                with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
                        return [int(c) for c in f.read().split()]

        def test_each_mode_answers_kept_alive_requests(self):
                for mode in ("hello", "sleep", "wsgi-hello", "wsgi-sleep"):
                        with self.subTest(mode=mode):
                                p, conn = self.start(mode)
                                with conn:
                                        for _ in range(3):
                                                conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                                                got = b""
                                                while not got.endswith(b"Hello, World!"):
                                                        data = conn.recv(4096)
                                                        self.assertTrue(data, got)
                                                        got += data
                                                self.assertTrue(got.startswith(b"HTTP/1.1 200 OK\r\n"), got)
                                                self.assertIn(b"\r\nContent-Length: 13\r\n\r\n", got)
                                workers = self.workers(p)
                                self.assertEqual(len(workers), 2)
                                self.stop(p)
                                for pid in workers:
                                        deadline = time.monotonic() + 10
                                        while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
                                                time.sleep(0.05)
                                        self.assertFalse(os.path.exists("/proc/%d" % pid), "worker %d stayed" % pid)

        def test_an_unknown_mode_is_refused(self):
                p = subprocess.run([PY, os.path.join(BENCH, "gevent_floor.py"), "1", "2", "gzip"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn(b"MODE is one of hello, sleep, wsgi-hello, wsgi-sleep", p.stdout)


if __name__ == "__main__":
        unittest.main(verbosity=2)
