"""--max-worker-memory: a worker whose own memory passes the limit is replaced after its
requests, its replacement forked first, and no request fails on the way."""

import os
import re
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

APP = "conn_app:app"


def own_kib(pid):
        total = 0
        with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                        if line.startswith(("Private_Clean:", "Private_Dirty:")):
                                total += int(line.split()[1])
        return total


class MemoryLimitTest(h.ServerTestCase):
        def idle_worker_mib(self):
                srv = self.start(APP, args=["-w", "1"])
                pid = int(srv.get("/pid").body)
                mib = own_kib(pid) // 1024
                srv.stop()
                return mib

        def test_worker_over_the_limit_is_replaced_without_failures(self):
                # The limit sits 48 MiB above what an idle worker holds here (sanitizers
                # included); the app then takes 96 MiB more.
                limit = self.idle_worker_mib() + 48
                srv = self.start(APP, args=["-w", "1", "--max-worker-memory", str(limit)])
                first = int(srv.get("/pid").body)
                failures, done = [], threading.Event()

                def load():
                        while not done.is_set():
                                try:
                                        r = srv.get("/pid")
                                        if r.status != 200:
                                                failures.append(r.status)
                                except Exception as e:
                                        failures.append(repr(e))
                                time.sleep(0.01)

                t = threading.Thread(target=load, daemon=True)
                t.start()
                self.assertEqual(srv.get("/hog?mb=96").status, 200)
                srv.wait_log(r"Worker \(pid:%d\) holds \d+ MiB of its own memory, over --max-worker-memory %d MiB"
                             % (first, limit), timeout=10)
                self.assertTrue(h.wait_until(lambda: int(srv.get("/pid").body) != first, 10),
                                "no new worker took over")
                done.set()
                t.join(10)
                self.assertEqual(failures, [])
                self.assertRegex(srv.log(), re.compile(r"Worker exiting \(pid: %d\)" % first))

        def test_no_limit_keeps_the_worker(self):
                srv = self.start(APP, args=["-w", "1"])
                first = int(srv.get("/pid").body)
                self.assertEqual(srv.get("/hog?mb=96").status, 200)
                time.sleep(2.5)
                self.assertEqual(int(srv.get("/pid").body), first)
                self.assertNotIn("max-worker-memory", srv.log())


if __name__ == "__main__":
        h.main()
