"""Smoke run of the benchmark: contrib/bench/run.sh --smoke drives the built gcorn with wrk
for a second and must see only successful responses. A check that the benchmark itself
still works, not a timing assertion."""
import os
import subprocess
import sys
import tempfile
import unittest

SRC = os.environ.get("GCORN_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
GCORN = os.environ.get("GCORN")


class BenchSmokeTest(unittest.TestCase):
        def test_smoke(self):
                if not GCORN:
                        self.fail("GCORN is not set")
                with tempfile.TemporaryDirectory(prefix="gcorn-bench-smoke-") as d:
                        env = dict(os.environ, GCORN_BIN=GCORN, BENCH_BUILD_DIR=d)
                        p = subprocess.run(["bash", os.path.join(SRC, "contrib", "bench", "run.sh"), "--smoke"],
                                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                           timeout=120)
                out = p.stdout.decode("utf-8", "replace")
                self.assertEqual(p.returncode, 0, out)
                # The report must name gcorn and show a request rate.
                self.assertRegex(out, r"\| gcorn \| \d+", out)


if __name__ == "__main__":
        unittest.main(verbosity=2)
