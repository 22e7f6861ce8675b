"""Smoke runs of the benchmark: contrib/bench/run.sh --smoke --kinds K (--workloads W) drives the built gcorn
(and, for the worker kinds beyond sync, the peers that are installed) with wrk for a second
per row and must see only successful responses. A check that the benchmark itself still
works, not a timing assertion.

gcorn's gevent and asgi rows run only when the binary accepts `-k gevent` / `-k asgi`; the
tests ask the binary the same way and expect either figures or the report's "not run" row."""
import os
import re
import subprocess
import tempfile
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


if __name__ == "__main__":
        unittest.main(verbosity=2)
