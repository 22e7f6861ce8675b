"""Kept-alive connections are not held by one sync worker alone: a request on a connection
whose worker is inside another request, stopped or dead is answered by another worker.

Every case runs 2 sync workers on tests/apps/handoff_app.py, which answers with the serving
worker's pid, the request's id echoed, and its own start and end times."""

import os
import re
import resource
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gcorn_harness import ServerTestCase, build_request, main, skip_unless_sync, wait_until  # noqa: E402

ASAN = "ASAN_OPTIONS" in os.environ
SLOW = 2.0


@skip_unless_sync("the sync worker runs its app inline; the other kinds' loops keep reading")
class HandoffTest(ServerTestCase):
        def server(self, workers=2, extra=()):
                # --timeout long enough that the watchdog never ends a stopped worker here, and a
                # keep-alive time that outlasts every pause of the tests.
                srv = self.start("handoff_app:app", args=["-w", str(workers), "-t", "30", "--keep-alive", "30",
                                                          *extra])
                srv.wait_log(r"Booting worker with pid", count=workers)
                wait_until(lambda: len(set(srv.worker_pids())) >= workers, 10)
                return srv

        def clients(self, srv, n):
                """n kept-alive clients, each after one request: [(client, pid of its worker)]."""
                out = []
                for i in range(n):
                        c = srv.client()
                        self.addCleanup(c.close)
                        out.append((c, c.get_json("/first?id=c%d" % i)["pid"]))
                return out

        def two_on_one_worker(self, srv):
                """Two kept-alive clients on the same worker, and its pid."""
                held = self.clients(srv, 8)
                by_pid = {}
                for c, pid in held:
                        by_pid.setdefault(pid, []).append(c)
                pid, cs = max(by_pid.items(), key=lambda kv: len(kv[1]))
                self.assertGreaterEqual(len(cs), 2, by_pid)
                return pid, cs[0], cs[1]

        def start_slow(self, c, rid="slow"):
                """Sends a SLOW-second request on c; returns the thread that reads its answer."""
                return self.get_json_in_thread(c, "/slow?sleep=%s&id=%s" % (SLOW, rid))

        def test_busy_worker_does_not_hold_an_idle_connection(self):
                srv = self.server()
                x, a, b = self.two_on_one_worker(srv)
                t, slow = self.start_slow(a)
                time.sleep(0.3)         # the slow request is running in worker x
                r = b.get_json("/next?id=b1")
                t.join(30)
                self.assertEqual(slow["pid"], x)
                self.assertEqual(r["id"], "b1")
                self.assertNotEqual(r["pid"], x, "answered by the busy worker")
                self.assertLess(r["end"], slow["end"], "b waited for the busy worker's request")
                # the worker that took the connection over sees the same client
                host, port = b.sock.getsockname()[:2]
                self.assertEqual(r["remote"], [host, str(port)])
                # The connection goes on, wherever it is now, and so does a's.
                self.assertEqual(b.get_json("/again?id=b2")["id"], "b2")
                self.assertEqual(a.get_json("/again?id=a2")["id"], "a2")

        def test_pipelined_requests_keep_their_order_across_a_handoff(self):
                srv = self.server()
                x, a, b = self.two_on_one_worker(srv)
                # c has half a request read by worker x before x gets busy: that connection is
                # x's until its request is done, wherever its next bytes land.
                c = srv.client()
                self.addCleanup(c.close)
                cpid = c.get_json("/first?id=c0")["pid"]
                while cpid != x:
                        c.close()
                        c = srv.client()
                        self.addCleanup(c.close)
                        cpid = c.get_json("/first?id=c0")["pid"]
                head = build_request("GET", "/partial?id=c1")
                c.send(head[:12])
                time.sleep(0.2)         # read by x, which now waits for the rest
                t, slow = self.start_slow(a)
                time.sleep(0.3)
                b.send(b"".join(build_request("GET", "/p?id=p%d" % i) for i in range(3)))
                got = [b.read_response().json() for _ in range(3)]
                c.send(head[12:])
                partial = c.read_response().json()
                t.join(30)
                self.assertEqual([g["id"] for g in got], ["p0", "p1", "p2"])
                for g in got:
                        self.assertNotEqual(g["pid"], x)
                        self.assertLess(g["end"], slow["end"])
                self.assertEqual(partial["id"], "c1")
                self.assertEqual(partial["pid"], x)
                self.assertGreaterEqual(partial["start"], slow["end"])

        def test_stopped_worker_does_not_hold_idle_clients(self):
                srv = self.server()
                held = self.clients(srv, 16)
                counts = {}
                for _, p in held:
                        counts[p] = counts.get(p, 0) + 1
                victim = max(counts, key=counts.get)
                other = (set(srv.worker_pids()) - {victim}).pop()
                # A client has its answer a moment before its worker is done with the request:
                # until then the connection is in flight, not idle.
                time.sleep(0.2)
                os.kill(victim, signal.SIGSTOP)
                try:
                        for i, (c, _) in enumerate(held):
                                c.sock.settimeout(10)
                                r = c.get_json("/stopped?id=s%d" % i)
                                self.assertEqual(r["id"], "s%d" % i)
                                self.assertEqual(r["pid"], other)
                finally:
                        os.kill(victim, signal.SIGCONT)
                # The stopped worker goes on: it lets go of what was taken, nothing is read
                # twice, every answer is its request's.
                time.sleep(0.2)
                for rnd in range(3):
                        for i, (c, _) in enumerate(held):
                                self.assertEqual(c.get_json("/after?id=r%d-%d" % (rnd, i))["id"], "r%d-%d" % (rnd, i))
                seen = set()
                for i in range(8):
                        c = srv.client()
                        self.addCleanup(c.close)
                        seen.add(c.get_json("/new?id=n%d" % i)["pid"])
                self.assertIn(victim, srv.worker_pids())
                self.assertTrue(srv.alive())

        def test_killed_worker_loses_no_idle_client(self):
                srv = self.server()
                held = self.clients(srv, 12)
                victim = held[0][1]
                self.assertGreaterEqual(sum(1 for _, p in held if p == victim), 1)
                time.sleep(0.2)         # as above: every client idle
                os.kill(victim, signal.SIGKILL)
                for i, (c, _) in enumerate(held):
                        try:
                                r = c.get_json("/afterkill?id=k%d" % i)
                        except (OSError, AssertionError) as e:
                                self.fail("client %d lost with the killed worker: %r" % (i, e))
                        self.assertEqual(r["id"], "k%d" % i)
                        self.assertNotEqual(r["pid"], victim)

        def test_worker_retiring_for_max_requests_leaves_its_idle_clients_to_the_others(self):
                srv = self.server(extra=["--max-requests", "12"])
                x, a, b = self.two_on_one_worker(srv)
                for i in range(20):
                        a.send_request("GET", "/count?id=a%d" % i)
                        r = a.read_response()
                        if r.has_token("Connection", "close"):
                                break
                self.assertTrue(r.has_token("Connection", "close"), "worker %d never reached --max-requests" % x)
                self.assertEqual(r.json()["pid"], x)
                time.sleep(0.3)         # x has retired and waits for its replacement
                for i in range(3):
                        b.send_request("GET", "/after?id=b%d" % i)
                        r = b.read_response()
                        self.assertEqual(r.status, 200)
                        self.assertEqual(r.json()["id"], "b%d" % i)
                        self.assertNotEqual(r.json()["pid"], x)
                        self.assertFalse(r.has_token("Connection", "close"), r)

        def assert_kept_by_others(self, srv, held, gone, rid):
                """Each held client's next request, on its own connection, is answered by a worker
                not in gone, and the connection stays open."""
                for i, (c, _) in enumerate(held):
                        c.send_request("GET", "/after?id=%s%d" % (rid, i))
                        r = c.read_response()
                        self.assertEqual(r.status, 200, r)
                        self.assertEqual(r.json()["id"], "%s%d" % (rid, i))
                        self.assertNotIn(r.json()["pid"], gone, "answered by a worker told to leave")
                        self.assertFalse(r.has_token("Connection", "close"), r)

        def test_reload_leaves_idle_clients_to_the_new_workers(self):
                srv = self.server()
                held = self.clients(srv, 8)
                old = {p for _, p in held}
                time.sleep(0.2)         # every client idle
                os.kill(srv.pid, signal.SIGHUP)
                srv.wait_log(r"Reload complete", timeout=20)
                # The old workers leave at once, not when their clients' keep-alive time (30 s)
                # ends, and their clients keep their connections: the new generation answers.
                for p in old:
                        srv.wait_log(r"Worker exiting \(pid: %d\)" % p, timeout=10)
                self.assert_kept_by_others(srv, held, old, "h")
                self.assertTrue(srv.alive())

        def test_fewer_workers_leave_idle_clients_to_the_rest(self):
                srv = self.server(workers=3)
                # slow first requests made at once, so that every worker holds some clients
                started = []
                for i in range(9):
                        c = srv.client()
                        self.addCleanup(c.close)
                        started.append((c,) + self.get_json_in_thread(c, "/slow?sleep=0.5&id=s%d" % i))
                        time.sleep(0.05)
                held = []
                for c, t, res in started:
                        t.join(30)
                        held.append((c, res["pid"]))
                self.assertEqual(len({p for _, p in held}), 3, held)
                time.sleep(0.2)
                os.kill(srv.pid, signal.SIGTTOU)
                # it leaves at once (the keep-alive time is 30 s), and its clients stay
                log = srv.wait_log(r"Worker exiting \(pid: \d+\)", timeout=10)
                gone = int(re.search(r"Worker exiting \(pid: (\d+)\)", log).group(1))
                self.assertIn(gone, {p for _, p in held})
                self.assert_kept_by_others(srv, held, {gone}, "t")

        def test_full_table_leaves_connections_with_their_worker(self):
                # The table is sized for the master's descriptor limit: 300 leaves 44 entries.
                soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                resource.setrlimit(resource.RLIMIT_NOFILE, (300, hard))
                try:
                        srv = self.server()
                finally:
                        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
                held = self.clients(srv, 60)
                for rnd in range(2):
                        for i, (c, _) in enumerate(held):
                                self.assertEqual(c.get_json("/again?id=f%d-%d" % (rnd, i))["id"], "f%d-%d" % (rnd, i))
                log = srv.log()
                self.assertIn("The table of kept-alive connections is full", log)
                self.assertLessEqual(log.count("The table of kept-alive connections is full"), 2, log)

        def test_kill_under_load_costs_only_requests_in_flight(self):
                srv = self.server()
                n_clients, per_client = (8, 25) if ASAN else (16, 40)
                failures = []
                done = [0]
                lock = threading.Lock()

                def run(k):
                        c = srv.client()
                        for j in range(per_client):
                                rid = "l%d-%d" % (k, j)
                                try:
                                        c.send_request("GET", "/load?sleep=0.002&id=" + rid)
                                        r = c.read_response()
                                        ok = r.status == 200 and r.json()["id"] == rid
                                except Exception as e:
                                        ok, r = False, e
                                with lock:
                                        done[0] += 1
                                        if not ok:
                                                failures.append((rid, repr(r)))
                                if not ok:
                                        c.close()
                                        c = srv.client()
                        c.close()

                threads = [threading.Thread(target=run, args=(k,)) for k in range(n_clients)]
                for t in threads:
                        t.start()
                total = n_clients * per_client
                kills = 0
                for frac in (0.3, 0.6):
                        wait_until(lambda: done[0] >= total * frac, 30)
                        pids = [p for p in srv.worker_pids() if os.path.exists("/proc/%d" % p)
                                and srv._pgid_is_ours(p)]
                        os.kill(pids[-1], signal.SIGKILL)
                        kills += 1
                        time.sleep(0.1)
                for t in threads:
                        t.join(60)
                self.assertEqual(done[0], total)
                # A sync worker has one request in flight at a time: that is all a kill may cost.
                self.assertLessEqual(len(failures), kills, failures)


if __name__ == "__main__":
        main()
