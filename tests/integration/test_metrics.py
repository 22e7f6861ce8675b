"""--metrics-bind: a Prometheus parser reads what the master serves, and the counters match
the requests sent."""

import collections
import os
import re
import signal
import socket
import sys
import unittest

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

METRICS_RE = re.compile(r"Metrics at: http://([^ ]+)/metrics")


def http(host, port, request):
        with socket.create_connection((host, port), timeout=10) as s:
                s.sendall(request)
                return h.recv_all(s)


class TestMetrics(unittest.TestCase):
        def start(self, args=()):
                srv = h.Server("routes:app", args=["-w", "2", "--no-control-socket", "--metrics-bind", "127.0.0.1:0"]
                               + list(args))
                self.addCleanup(srv.stop)
                self.mhost, self.mport = h.split_hostport(METRICS_RE.search(srv.log()).group(1))
                return srv

        def scrape(self):
                data = http(self.mhost, self.mport, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                head, _, body = data.partition(b"\r\n\r\n")
                self.assertTrue(head.startswith(b"HTTP/1.1 200 OK"), head)
                self.assertIn(b"Content-Type: text/plain; version=0.0.4", head)
                samples = {}
                for fam in text_string_to_metric_families(body.decode()):
                        for s in fam.samples:
                                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
                return samples

        def test_counters_match_requests(self):
                srv = self.start()
                before = self.scrape()
                self.assertEqual(before[("gcorn_workers_wanted", ())], 2)
                self.assertEqual(before[("gcorn_generation", ())], 1)
                self.assertEqual(before[("gcorn_build_info", (("version", "0.1.0"),))], 1)
                for _ in range(7):
                        self.assertEqual(srv.get("/").status, 200)
                for _ in range(3):
                        self.assertEqual(srv.get("/status?code=404").status, 404)
                for _ in range(2):
                        self.assertEqual(srv.get("/echo", method="POST", body=b"abc").status, 200)
                self.assertEqual(srv.get("/", method="HEAD").status, 200)
                # A worker counts a request once its answer is out: the last one may lag a little.
                h.wait_until(lambda: self.scrape()[("gcorn_http_request_duration_seconds_count", ())] >= 13, 10)
                s = self.scrape()
                req = {k[1]: v for k, v in s.items() if k[0] == "gcorn_http_requests_total"}
                self.assertEqual(req, {
                        (("method", "GET"), ("status", "2xx")): 7,
                        (("method", "GET"), ("status", "4xx")): 3,
                        (("method", "POST"), ("status", "2xx")): 2,
                        (("method", "HEAD"), ("status", "2xx")): 1,
                })
                self.assertEqual(s[("gcorn_http_request_duration_seconds_count", ())], 13)
                self.assertEqual(s[("gcorn_http_request_duration_seconds_bucket", (("le", "+Inf"),))], 13)
                self.assertEqual(s[("gcorn_connections_accepted_total", ())], 13)
                self.assertGreater(s[("gcorn_http_response_body_bytes_total", ())], 0)
                self.assertEqual(sum(v for k, v in s.items() if k[0] == "gcorn_workers"), 2)
                # Both booted (the second may still import the app when the first serves).
                self.assertTrue(h.wait_until(lambda: self.scrape()[("gcorn_workers", (("state", "idle"),))] == 2, 10))
                self.assertEqual(s[("gcorn_listen_queue_length", (("listener", "http://%s:%d" % (srv.host, srv.port)),))], 0)
                self.assertEqual(s[("gcorn_listen_queue_limit", (("listener", "http://%s:%d" % (srv.host, srv.port)),))],
                                 2048)

        def test_counters_survive_worker_exit(self):
                srv = self.start(args=["--max-requests", "3"])
                for _ in range(10):
                        self.assertEqual(srv.get("/").status, 200)
                # At least one worker served its 3 and was reaped (the master's line).
                srv.wait_log(r"Worker \(pid:\d+\) exited")
                self.assertTrue(h.wait_until(lambda: self.scrape()[("gcorn_http_request_duration_seconds_count", ())]
                                             == 10, 10))
                s = self.scrape()
                self.assertEqual(s[("gcorn_http_requests_total", (("method", "GET"), ("status", "2xx")))], 10)

        def test_slow_request_and_reload(self):
                srv = self.start()
                self.assertEqual(srv.get("/slow?s=0.3").status, 200)
                h.wait_until(lambda: self.scrape()[("gcorn_http_request_duration_seconds_count", ())] >= 1, 10)
                s = self.scrape()
                self.assertEqual(s[("gcorn_http_request_duration_seconds_bucket", (("le", "0.25"),))], 0)
                self.assertEqual(s[("gcorn_http_request_duration_seconds_bucket", (("le", "0.5"),))], 1)
                self.assertGreaterEqual(s[("gcorn_http_request_duration_seconds_sum", ())], 0.3)
                os.kill(srv.pid, 1)
                srv.wait_log(r"Reload complete")
                s = self.scrape()
                self.assertEqual(s[("gcorn_reloads_total", ())], 1)
                self.assertEqual(s[("gcorn_generation", ())], 2)

        def test_restarts_by_cause(self):
                srv = self.start(args=["--timeout", "1"])
                os.kill(srv.worker_pids()[0], 9)
                srv.wait_log(r"was sent SIGKILL")
                # A request that outlives --timeout: the master kills its worker.
                slow = srv.connect()
                self.addCleanup(slow.close)
                slow.sendall(b"GET /slow?s=5 HTTP/1.1\r\nHost: x\r\n\r\n")
                srv.wait_log(r"WORKER TIMEOUT")

                def counted():
                        m = self.scrape()
                        return m if m[("gcorn_worker_restarts_total", (("cause", "timeout"),))] == 1 else None
                s = h.wait_until(counted, 10)
                self.assertTrue(s)
                self.assertEqual(s[("gcorn_worker_restarts_total", (("cause", "crash"),))], 1)

        def test_planned_restarts_by_cause(self):
                # Workers that leave at --max-requests are counted under their own cause, not
                # as crashes; a TTOU (asked by the master) counts nowhere.
                srv = self.start(args=["--max-requests", "2"])
                served_by = collections.Counter()
                for _ in range(20):
                        r = srv.get("/pid")
                        self.assertEqual(r.status, 200)
                        served_by[r.body] += 1
                # A retiring worker takes what is queued when it retires, once: here the one
                # connection a sequential client may have opened meanwhile, not all that follow.
                self.assertLessEqual(max(served_by.values()), 3, served_by)
                # Once every worker that said it restarts has gone, each counts once.
                def settled():
                        m, said = self.scrape(), srv.log().count("Autorestarting worker")
                        return m if m[("gcorn_worker_restarts_total", (("cause", "max_requests"),))] == said else None
                s = h.wait_until(settled, 15)
                self.assertTrue(s, self.scrape())
                self.assertGreaterEqual(s[("gcorn_worker_restarts_total", (("cause", "max_requests"),))], 6)
                for cause in ("crash", "timeout", "max_worker_memory", "reload"):
                        self.assertEqual(s[("gcorn_worker_restarts_total", (("cause", cause),))], 0, cause)
                before = s[("gcorn_worker_restarts_total", (("cause", "max_requests"),))]
                os.kill(srv.pid, signal.SIGTTOU)
                self.assertTrue(h.wait_until(lambda: self.scrape()[("gcorn_workers", (("state", "idle"),))] == 1, 15))
                s = self.scrape()
                self.assertEqual(s[("gcorn_worker_restarts_total", (("cause", "max_requests"),))], before)
                self.assertEqual(s[("gcorn_worker_restarts_total", (("cause", "crash"),))], 0)

        def test_exit_status_counts_as_crash(self):
                # A worker that ends itself unasked with a non-zero status crashed as much as one
                # killed by a signal: the master replaces it.
                srv = h.Server("exit_app:app", args=["-w", "1", "--no-control-socket", "--metrics-bind", "127.0.0.1:0"])
                self.addCleanup(srv.stop)
                self.mhost, self.mport = h.split_hostport(METRICS_RE.search(srv.log()).group(1))
                with self.assertRaises(Exception):
                        srv.get("/exit?code=7")
                srv.wait_log(r"Worker \(pid:\d+\) exited with code 7")
                self.assertTrue(h.wait_until(lambda: self.scrape()[("gcorn_worker_restarts_total", (("cause", "crash"),))]
                                             == 1, 10))
                self.assertEqual(self.scrape()[("gcorn_worker_restarts_total", (("cause", "timeout"),))], 0)
                self.assertTrue(h.wait_until(lambda: srv.get("/").status == 200, 10))

        def test_busy_worker_open_connections_and_listen_queue(self):
                # One sync worker asleep in the app: it is busy and holds its connection; the
                # connections that come meanwhile wait in the listener's accept queue.
                srv = h.Server("routes:app", args=["-w", "1", "--no-control-socket", "--metrics-bind", "127.0.0.1:0"])
                self.addCleanup(srv.stop)
                self.mhost, self.mport = h.split_hostport(METRICS_RE.search(srv.log()).group(1))
                listener = (("listener", "http://%s:%d" % (srv.host, srv.port)),)
                busy = srv.connect()
                self.addCleanup(busy.close)
                busy.sendall(b"GET /slow?s=6 HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertTrue(h.wait_until(lambda: self.scrape()[("gcorn_workers", (("state", "busy"),))] == 1, 5))
                for _ in range(3):
                        self.addCleanup(srv.connect().close)
                s = h.wait_until(lambda: (lambda m: m if m[("gcorn_listen_queue_length", listener)] == 3 else None)(
                        self.scrape()), 5)
                self.assertTrue(s, "the queue never showed the 3 waiting connections")
                self.assertEqual(s[("gcorn_workers", (("state", "busy"),))], 1)
                self.assertEqual(s[("gcorn_workers", (("state", "idle"),))], 0)
                self.assertEqual(s[("gcorn_connections_open", ())], 1)
                self.assertEqual(s[("gcorn_connections_accepted_total", ())], 1)

        def test_unix_listener_queue(self):
                # A UNIX listener's queue comes from NETLINK_SOCK_DIAG (AF_NETLINK is allowed here).
                d = h.tempdir(self, "gcorn-metrics-")
                path = os.path.join(d, "s.sock")
                srv = h.Server("routes:app", bind="unix:" + path,
                               args=["-w", "1", "--no-control-socket", "--metrics-bind", "127.0.0.1:0", "--backlog", "64"])
                self.addCleanup(srv.stop)
                self.mhost, self.mport = h.split_hostport(METRICS_RE.search(srv.log()).group(1))
                listener = (("listener", "unix:" + path),)
                s = self.scrape()
                self.assertEqual(s[("gcorn_listen_queue_length", listener)], 0)
                self.assertEqual(s[("gcorn_listen_queue_limit", listener)], 64)
                busy = srv.connect()
                self.addCleanup(busy.close)
                busy.sendall(b"GET /slow?s=6 HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertTrue(h.wait_until(lambda: self.scrape()[("gcorn_workers", (("state", "busy"),))] == 1, 5))
                for _ in range(2):
                        self.addCleanup(srv.connect().close)
                self.assertTrue(h.wait_until(lambda: self.scrape()[("gcorn_listen_queue_length", listener)] == 2, 5))

        def test_other_paths_and_garbage(self):
                srv = self.start()
                self.assertIn(b"404 Not Found", http(self.mhost, self.mport, b"GET / HTTP/1.1\r\n\r\n"))
                self.assertIn(b"431", http(self.mhost, self.mport, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000))
                self.assertEqual(srv.get("/").status, 200)
                self.scrape()

        def test_bad_address(self):
                p = h.subprocess.run([h.GCORN, "--metrics-bind", "nope", "routes:app"], capture_output=True, text=True,
                                     timeout=30, cwd=h.APPS)
                self.assertEqual(p.returncode, 2)
                self.assertIn("metrics-bind", p.stderr)


if __name__ == "__main__":
        h.main()
