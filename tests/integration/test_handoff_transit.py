"""A kept-alive connection the master passed on the ready queue is never stranded in transit:
when the worker that receives the message cannot take it (out of descriptors, so the message
comes without its descriptor; or dead right after receiving it), the connection goes back to
the master and is offered again, and its client gets its answer.

Every case runs 2 sync workers on tests/apps/transit_app.py (the serving worker's pid, the
request's id echoed, the app's start and end times; /exhaust and /restore lower and restore
the serving worker's descriptor limit). Worker x holds two idle connections, a and b; x goes
into a slow request on a, and b's next request is then passed on to the ready queue, where
the only idle worker, y, receives it."""

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gcorn_harness import ServerTestCase, main, skip_unless_sync, tempdir, wait_until  # noqa: E402

ASAN = "ASAN_OPTIONS" in os.environ
SLOW = 2.0
# Well past SLOW and a retry of the worker that gave it back, far below "never".
BOUND = 10.0 if ASAN else 8.0


@skip_unless_sync("the sync worker runs its app inline; the other kinds' loops keep reading")
class HandoffTransitTest(ServerTestCase):
        def server(self, env=None):
                srv = self.start("transit_app:app", args=["-w", "2", "-t", "30", "--keep-alive", "30"],
                                 **({"env": env} if env else {}))
                srv.wait_log(r"Booting worker with pid", count=2)
                wait_until(lambda: len(set(srv.worker_pids())) >= 2, 10)
                return srv

        def on_the_other(self, srv, busy):
                """A new kept-alive client made while busy's worker is inside a request, so on
                the other worker: (busy's pid, the client, its pid)."""
                t, result = self.get_json_in_thread(busy, "/hold?sleep=0.5&id=hold")
                time.sleep(0.15)
                c = srv.client()
                self.addCleanup(c.close)
                pid = c.get_json("/first?id=other")["pid"]
                t.join(30)
                self.assertNotEqual(pid, result["pid"])
                return result["pid"], c, pid

        def placed(self, srv):
                """Worker x with two idle kept-alive clients, a and b, and worker y with one, e:
                (x, a, b, y, e)."""
                a = srv.client()
                self.addCleanup(a.close)
                a.get_json("/first?id=a")
                x, e, y = self.on_the_other(srv, a)
                y2, b, x2 = self.on_the_other(srv, e)
                self.assertEqual((x2, y2), (x, y))
                # Every answer is out and every connection idle in its worker.
                time.sleep(0.2)
                return x, a, b, y, e

        def start_slow(self, c, rid="slow"):
                """Sends a SLOW-second request on c; returns the thread that reads its answer."""
                return self.get_json_in_thread(c, "/slow?sleep=%s&id=%s" % (SLOW, rid))

        def moved(self, b, rid):
                """b's request, which the master passes on: its answer, within BOUND seconds."""
                b.sock.settimeout(BOUND)
                try:
                        return b.get_json("/moved?id=" + rid)
                except OSError as e:
                        self.fail("the request on the passed-on connection had no answer in %ss: %r" % (BOUND, e))

        def test_worker_out_of_descriptors_gives_the_connection_back(self):
                srv = self.server()
                x, a, b, y, e = self.placed(srv)
                ex = e.get_json("/exhaust?id=exhaust")
                self.assertEqual(ex["pid"], y)
                self.assertLess(ex["limit"], ex["was"])
                t, slow = self.start_slow(a)
                time.sleep(0.3)         # x is inside the slow request: y is the only idle worker
                r = self.moved(b, "m1")
                t.join(30)
                self.assertEqual(slow["pid"], x)
                self.assertEqual(r["id"], "m1")
                # y could not take it; x, once out of its slow request, did.
                self.assertEqual(r["pid"], x)
                log = srv.wait_log(r"Worker out of file descriptors \(RLIMIT_NOFILE \d+\)")
                # Said once, however often the connection came back to y meanwhile.
                self.assertEqual(len(re.findall(r"Worker out of file descriptors", log)), 1, log[-3000:])
                # With its descriptors back, y takes passed-on connections again.
                self.assertEqual(e.get_json("/restore?id=restore")["pid"], y)
                t, slow = self.start_slow(a, "slow2")
                time.sleep(0.3)
                r = self.moved(b, "m2")
                t.join(30)
                self.assertEqual(slow["pid"], x)
                self.assertEqual(r["pid"], y)
                self.assertLess(r["end"], slow["end"], "b waited for the busy worker")
                srv.wait_log(r"Worker takes kept-alive connections from the others again")
                # Every connection goes on, and so does the server.
                for i, c in enumerate((a, b, e)):
                        self.assertEqual(c.get_json("/again?id=z%d" % i)["id"], "z%d" % i)
                n = srv.client()
                self.addCleanup(n.close)
                self.assertEqual(n.get_json("/new?id=n")["id"], "n")
                self.assertTrue(srv.alive())

        @unittest.skipUnless(os.environ.get("GCORN_FAULT_LIB"), "needs the fault-injection library")
        def test_worker_dead_after_receiving_loses_no_connection(self):
                marker = os.path.join(tempdir(self, "gcorn-transit-"), "exited")
                env = {"LD_PRELOAD": os.environ["GCORN_FAULT_LIB"], "GCORN_FAULT_RECV_EXIT": marker}
                if ASAN:
                        env["ASAN_OPTIONS"] = os.environ["ASAN_OPTIONS"] + ":verify_asan_link_order=0"
                srv = self.server(env)
                x, a, b, y, e = self.placed(srv)
                t, slow = self.start_slow(a)
                time.sleep(0.3)
                # y receives b's message and exits before it takes the connection.
                r = self.moved(b, "m1")
                t.join(30)
                self.assertTrue(os.path.exists(marker), "no worker received the passed-on connection")
                self.assertEqual(r["id"], "m1")
                self.assertNotEqual(r["pid"], y)
                log = srv.wait_log(r"A kept-alive connection passed on to a worker never reached it")
                self.assertEqual(len(re.findall(r"never reached it", log)), 1, log[-3000:])
                self.assertEqual(b.get_json("/again?id=b2")["id"], "b2")
                self.assertEqual(a.get_json("/again?id=a2")["id"], "a2")
                self.assertTrue(srv.alive())


if __name__ == "__main__":
        main()
