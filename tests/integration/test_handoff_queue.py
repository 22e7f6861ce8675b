"""The ready queue of kept-alive connections: connections the master passed on because their
worker was inside a request are served by the worker that takes them, one after another,
before it turns to its own connections' requests.

Runs 2 sync workers on tests/apps/handoff_app.py (the serving worker's pid, the request's id
echoed, the app's start and end times)."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gcorn_harness import ServerTestCase, build_request, main, skip_unless_sync, wait_until  # noqa: E402


@skip_unless_sync("the sync worker runs its app inline; the other kinds' loops keep reading")
class HandoffQueueTest(ServerTestCase):
        def server(self):
                srv = self.start("handoff_app:app", args=["-w", "2", "-t", "30", "--keep-alive", "30"])
                srv.wait_log(r"Booting worker with pid", count=2)
                wait_until(lambda: len(set(srv.worker_pids())) >= 2, 10)
                return srv

        def on_the_other(self, srv, busy, n):
                """n new kept-alive clients, each after one request, while busy's worker is
                inside a request: all on the other worker. Returns (busy's pid, other's pid,
                the clients)."""
                t, r = self.in_thread(lambda: busy.get_json("/hold?sleep=0.6&id=hold"))
                time.sleep(0.15)
                out, pids = [], set()
                for i in range(n):
                        c = srv.client()
                        self.addCleanup(c.close)
                        out.append(c)
                        pids.add(c.get_json("/first?id=c%d" % i)["pid"])
                t.join(30)
                self.assertEqual(len(pids), 1, pids)
                self.assertNotIn(r["pid"], pids)
                return r["pid"], pids.pop(), out

        def in_thread(self, fn):
                result = {}

                def run():
                        result.update(fn())

                t = threading.Thread(target=run)
                t.start()
                self.addCleanup(t.join, 30)
                return t, result

        def test_taker_serves_the_whole_queue_before_its_own_slow_request(self):
                srv = self.server()
                first = srv.client()
                self.addCleanup(first.close)
                first.get_json("/first?id=first")
                y, x, xs = self.on_the_other(srv, first, 5)
                x2, y2, ys = self.on_the_other(srv, xs[0], 2)
                self.assertEqual((x2, y2), (x, y))
                a, moved = xs[0], xs[1:5]
                e, g = ys
                # g: half a request read by y, so the connection stays y's (a connection with
                # part of a request read is never handed over).
                head = build_request("GET", "/own?sleep=1.0&id=g")
                g.send(head[:12])
                time.sleep(0.2)
                # x is inside a request until every moved one is long answered; y for a while.
                ta, ra = self.in_thread(lambda: a.get_json("/slow?sleep=3.0&id=a"))
                te, re_ = self.in_thread(lambda: e.get_json("/slow?sleep=0.8&id=e"))
                time.sleep(0.2)
                # Requests on x's idle connections: x is busy, so the master passes them to the
                # ready queue; y is busy too, so they wait there.
                for i, c in enumerate(moved):
                        c.send_request("GET", "/moved?id=m%d" % i)
                time.sleep(0.3)
                # Then g's request is complete: y's own, and slow.
                g.send(head[12:])
                got = [c.read_response().json() for c in moved]
                own = g.read_response().json()
                te.join(30)
                ta.join(30)
                self.assertEqual(ra["pid"], x)
                self.assertEqual(re_["pid"], y)
                self.assertEqual(own["pid"], y)
                self.assertEqual(own["id"], "g")
                for i, r in enumerate(got):
                        self.assertEqual(r["id"], "m%d" % i)
                        self.assertEqual(r["pid"], y, "moved while x was busy: y serves it")
                        self.assertLess(r["end"], ra["end"])
                        # The queue held them before g's request was complete: y took them
                        # all, not one per round with g's second in between.
                        self.assertLessEqual(r["end"], own["start"],
                                             "m%d waited for y's own slow request" % i)
                # Every connection goes on.
                for i, c in enumerate(moved + [a, e, g, first]):
                        self.assertEqual(c.get_json("/again?id=z%d" % i)["id"], "z%d" % i)


if __name__ == "__main__":
        main()
