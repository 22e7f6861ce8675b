"""--max-requests and --max-worker-memory together: workers leave by both, under steady load,
no request fails, and the service never has fewer worker processes than -w, as each
replacement is forked before the worker it replaces exits.

One server runs the load once (setUpClass); each test checks one part of the outcome."""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

APP = "conn_app:app"
WORKERS = 2
SANITIZED = "ASAN_OPTIONS" in os.environ
# Enough leavings of each kind for a gap between an exit and its replacement to be seen.
EACH = 3 if SANITIZED else 4
DEADLINE = 90 if SANITIZED else 40


def own_kib(pid):
        total = 0
        with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                        if line.startswith(("Private_Clean:", "Private_Dirty:")):
                                total += int(line.split()[1])
        return total


def live_workers(master):
        """The master's children that are not zombies: its workers, serving, booting or
        finishing their last requests. An exited worker is a zombie until the master reaps
        it, and is not counted."""
        try:
                with open("/proc/%d/task/%d/children" % (master, master)) as f:
                        pids = f.read().split()
        except OSError:
                return None
        n = 0
        for p in pids:
                try:
                        with open("/proc/%s/stat" % p) as f:
                                state = f.read().rsplit(")", 1)[1].split()[0]
                except (OSError, IndexError):
                        continue
                if state != "Z":
                        n += 1
        return n


class Run:
        """Steady load on a server with both limits, the worker count sampled throughout."""

        def __init__(self):
                self.failures = []
                self.served = 0
                self.samples = self.low_samples = self.gaps = 0
                self.lowest = WORKERS
                self.master_gone = False
                self.by_requests = self.by_memory = 0
                self.log = ""

        def go(self):
                # As in test_memory: the limit sits 48 MiB above an idle worker, and /hog takes
                # 64 MiB more, once a second. A worker lives for 30 to 45 requests, at about 20
                # a second.
                probe = h.Server(APP, args=["-w", "1"])
                try:
                        limit = own_kib(int(probe.get("/pid").body)) // 1024 + 48
                finally:
                        probe.stop()
                srv = h.Server(APP, args=["-w", str(WORKERS), "--max-requests", "30", "--max-requests-jitter", "15",
                                          "--max-worker-memory", str(limit)])
                try:
                        self.drive(srv)
                finally:
                        srv.stop()
                        self.log = srv.log()

        def counts(self, srv):
                log = srv.log()
                return (log.count("Autorestarting worker after current request."),
                        log.count("over --max-worker-memory"))

        def drive(self, srv):
                h.wait_until(lambda: live_workers(srv.pid) == WORKERS, 10)
                done = threading.Event()

                def request(path):
                        try:
                                r = srv.get(path)
                                if r.status != 200:
                                        self.failures.append((path, r.status, r.body[:200]))
                                else:
                                        self.served += 1
                        except Exception as e:
                                self.failures.append((path, repr(e)))

                def load():
                        while not done.is_set():
                                request("/pid")
                                time.sleep(0.05)

                def hogs():
                        while not done.wait(1.0):
                                request("/hog?mb=64")

                threads = [threading.Thread(target=load, daemon=True) for _ in range(2)]
                threads.append(threading.Thread(target=hogs, daemon=True))
                for t in threads:
                        t.start()
                # Samples every few hundred microseconds while the load runs: the gap it looks
                # for, between a worker's exit and the fork of its replacement, lasts about a
                # millisecond. Consecutive low samples are one gap.
                was_low = False
                deadline = time.monotonic() + DEADLINE
                next_log_check = 0.0
                while time.monotonic() < deadline:
                        n = live_workers(srv.pid)
                        if n is None:
                                self.master_gone = True
                                break
                        self.samples += 1
                        if n < WORKERS:
                                self.low_samples += 1
                                self.gaps += not was_low
                                self.lowest = min(self.lowest, n)
                        was_low = n < WORKERS
                        if time.monotonic() >= next_log_check:
                                next_log_check = time.monotonic() + 0.5
                                if min(self.counts(srv)) >= EACH:
                                        break
                        time.sleep(0.0002)
                done.set()
                for t in threads:
                        t.join(30)
                self.by_requests, self.by_memory = self.counts(srv)


class LimitsTest(unittest.TestCase):
        outcome = None

        @classmethod
        def setUpClass(cls):
                cls.outcome = Run()
                cls.outcome.go()

        def test_both_limits_replace_workers_without_failures(self):
                r = self.outcome
                self.assertFalse(r.master_gone)
                self.assertGreaterEqual(r.by_requests, EACH, r.log[-3000:])
                self.assertGreaterEqual(r.by_memory, EACH, r.log[-3000:])
                self.assertEqual(r.failures, [])
                self.assertGreater(r.served, 0)
                self.assertNotRegex(r.log, r"was sent signal|exited with code|failed to boot")

        # The master forks a replacement when it reaps the worker that left, or at its next
        # tick (200 ms) if that comes first: a worker that leaves at once, as one at its
        # --max-requests or past its --max-worker-memory with nothing in flight does, is gone
        # before its replacement exists, and the service is a worker short for that long.
        # This passes, and expectedFailure goes, once a leaving worker waits for its replacement.
        # Under the sanitizers a worker's exit (the leak check) outlasts the master's tick, so
        # the replacement comes first by chance and the gap cannot be seen either way.
        @unittest.skipIf(SANITIZED, "the sanitizers' slow exit hides the gap")
        @unittest.expectedFailure
        def test_never_fewer_workers_than_w(self):
                r = self.outcome
                self.assertGreater(r.samples, 0)
                self.assertEqual(r.gaps, 0, "%d times fewer than %d live workers (as few as %d; %d of %d samples), "
                                 "while %d workers left by --max-requests and %d by --max-worker-memory"
                                 % (r.gaps, WORKERS, r.lowest, r.low_samples, r.samples, r.by_requests,
                                    r.by_memory))


if __name__ == "__main__":
        h.main()
