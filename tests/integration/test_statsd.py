"""StatsD: the packets gcorn sends for some requests, captured on a loopback UDP socket, carry
the names and formats Gunicorn sends for the same requests."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

# The same requests against each server.
REQUESTS = (("GET", "/"), ("GET", "/status?code=404"), ("POST", "/echo"), ("GET", "/status?code=503"), ("GET", "/"))


def normalize(packet):
        """A duration's value is the time it took: only its shape is compared."""
        return re.sub(r"duration:[0-9]+(\.[0-9]+)?\|ms", "duration:N|ms", packet)


class TestStatsd(unittest.TestCase):
        def capture(self, argv_for, extra):
                """Runs a server with statsd pointed at a fresh UDP socket; returns the request packets."""
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.addCleanup(udp.close)
                udp.bind(("127.0.0.1", 0))
                args = ["-w", "1", "--statsd-host", "127.0.0.1:%d" % udp.getsockname()[1]] + extra
                srv = argv_for(args)
                try:
                        for method, path in REQUESTS:
                                srv.get(path, method=method, body=b"x" if method == "POST" else b"")
                        packets = []
                        udp.settimeout(2)
                        want = 3 * len(REQUESTS)
                        deadline = time.monotonic() + 10
                        while sum("gunicorn.request" in p for p in packets) < want and time.monotonic() < deadline:
                                try:
                                        packets.append(udp.recv(4096).decode())
                                except socket.timeout:
                                        break
                finally:
                        srv.stop()
                return [normalize(p) for p in packets if "gunicorn.request" in p], packets

        def gcorn(self, args):
                return h.Server("routes:app", args=["--no-control-socket"] + args)

        def test_same_packets_as_gunicorn(self):
                # A one-letter prefix gets no dot in Gunicorn either.
                for extra in ([], ["--statsd-prefix", "myapp"], ["--statsd-prefix", "a"],
                              ["--statsd-prefix", "myapp..", "--dogstatsd-tags", "env:test,team:web"]):
                        ours, raw = self.capture(self.gcorn, extra)
                        theirs, their_raw = self.capture(lambda a: GunicornServer(a), extra)
                        for p in their_raw:
                                if "duration" in p:
                                        self.assertRegex(p, r"duration:(0|[1-9][0-9]*)\.([0-9]*[1-9]|0)\|ms(\||$)")
                        self.assertEqual(len(theirs), 3 * len(REQUESTS), theirs)
                        self.assertEqual(ours, theirs, extra)
                        prefix = {"myapp": "myapp.", "a": "a", "myapp..": "myapp."}[extra[1]] if extra else ""
                        self.assertIn(prefix + "gunicorn.request.status.503:1|c|@1.0", "\n".join(raw))
                        self.assertNotIn("gunicorn.backlog", "\n".join(raw))
                        # Milliseconds as Python prints Gunicorn's float: no trailing zeros but one.
                        durations = [p for p in raw if "duration" in p]
                        self.assertEqual(len(durations), len(REQUESTS))
                        for p in durations:
                                self.assertRegex(p, r"duration:(0|[1-9][0-9]*)\.([0-9]*[1-9]|0)\|ms(\||$)")

        def test_long_prefix_and_tags_whole(self):
                # Gunicorn sends them as given, however long: nothing may be cut off.
                prefix = "p" * 300
                tags = ",".join("tag%d:%s" % (i, "v" * 20) for i in range(20))
                ours, raw = self.capture(self.gcorn, ["--statsd-prefix", prefix, "--dogstatsd-tags", tags])
                self.assertEqual(len(ours), 3 * len(REQUESTS), raw)
                for p in raw:
                        self.assertTrue(p.startswith(prefix + ".gunicorn.") and p.endswith("|#" + tags), p[:40])

        def test_workers_gauge_and_log_counter(self):
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.addCleanup(udp.close)
                udp.bind(("127.0.0.1", 0))
                srv = h.Server("routes:app", args=["-w", "2", "--no-control-socket", "--statsd-host",
                                                   "127.0.0.1:%d" % udp.getsockname()[1], "--statsd-prefix", "pp"])
                self.addCleanup(srv.stop)
                # A worker killed from outside: the master logs an error.
                os.kill(srv.worker_pids()[0], 9)
                srv.wait_log(r"was sent SIGKILL")
                packets = []
                udp.settimeout(1)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not ("pp.gunicorn.workers:2|g" in packets and
                                                             "pp.gunicorn.log.error:1|c|@1.0" in packets):
                        try:
                                packets.append(udp.recv(4096).decode())
                        except socket.timeout:
                                pass
                self.assertIn("pp.gunicorn.workers:2|g", packets)
                self.assertIn("pp.gunicorn.log.error:1|c|@1.0", packets)

        def capture_all(self, argv_for, paths, want):
                """Every packet but the master's gauges for GET paths, until want(packets) holds."""
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.addCleanup(udp.close)
                udp.bind(("127.0.0.1", 0))
                srv = argv_for(["-w", "1", "--statsd-host", "127.0.0.1:%d" % udp.getsockname()[1]])
                packets = []
                try:
                        for path in paths:
                                srv.get(path)
                        udp.settimeout(1)
                        deadline = time.monotonic() + 10
                        while not want(packets) and time.monotonic() < deadline:
                                try:
                                        p = udp.recv(4096).decode()
                                except socket.timeout:
                                        continue
                                if not p.startswith(("gunicorn.workers:", "gunicorn.backlog:")):
                                        packets.append(normalize(p))
                finally:
                        srv.stop()
                return sorted(packets)

        def test_app_exception_counts_as_exception(self):
                # Gunicorn reports an app's exception with log.exception(): gunicorn.log.exception,
                # not gunicorn.log.error.
                def want(packets):
                        return sum("gunicorn.request" in p for p in packets) >= 3 and any("log." in p for p in packets)
                ours = self.capture_all(self.gcorn, ("/raise",), want)
                theirs = self.capture_all(lambda a: GunicornServer(a), ("/raise",), want)
                self.assertIn("gunicorn.log.exception:1|c|@1.0", theirs)
                self.assertEqual(ours, theirs)
                # After the headers: Gunicorn 23 logs the request as answered (its access log
                # entry is in a finally:) and the exception (Debian's Gunicorn 20 logs no access).
                ours = self.capture_all(self.gcorn, ("/raise-after",), want)
                self.assertEqual(ours, sorted(["gunicorn.log.exception:1|c|@1.0", "gunicorn.request.duration:N|ms",
                                               "gunicorn.requests:1|c|@1.0", "gunicorn.request.status.200:1|c|@1.0"]))

        def test_warning_and_critical_counters(self):
                # Gunicorn 23 logs a request it refuses with log.warning ("Invalid request from
                # ip=...", here contradictory scheme headers) and a worker timeout with
                # log.critical ("WORKER TIMEOUT").
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.addCleanup(udp.close)
                udp.bind(("127.0.0.1", 0))
                srv = h.Server("routes:app", args=["-w", "1", "--no-control-socket", "--timeout", "1", "--statsd-host",
                                                   "127.0.0.1:%d" % udp.getsockname()[1]])
                self.addCleanup(srv.stop)
                self.assertIn(b" 400 ", srv.raw(h.build_request("GET", "/", [("Host", "x"), ("X-Forwarded-Proto", "https"),
                                                                        ("X-Forwarded-Ssl", "off")])))
                srv.wait_log(r"Invalid request from ip=127\.0\.0\.1: Contradictory scheme headers")
                slow = srv.connect()
                self.addCleanup(slow.close)
                slow.sendall(b"GET /slow?s=5 HTTP/1.1\r\nHost: x\r\n\r\n")
                srv.wait_log(r"WORKER TIMEOUT")
                packets = []
                udp.settimeout(1)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not ("gunicorn.log.warning:1|c|@1.0" in packets and
                                                             "gunicorn.log.critical:1|c|@1.0" in packets):
                        try:
                                packets.append(udp.recv(4096).decode())
                        except socket.timeout:
                                pass
                self.assertIn("gunicorn.log.warning:1|c|@1.0", packets)
                self.assertIn("gunicorn.log.critical:1|c|@1.0", packets)

        def test_malformed_request_warns(self):
                # Gunicorn 23's handle_error(): "Invalid request from ip=...: <why>" at warning
                # level for every request it cannot parse, so gunicorn.log.warning counts them.
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.addCleanup(udp.close)
                udp.bind(("127.0.0.1", 0))
                srv = h.Server("routes:app", args=["-w", "1", "--no-control-socket", "--statsd-host",
                                                   "127.0.0.1:%d" % udp.getsockname()[1]])
                self.addCleanup(srv.stop)
                for raw, status in ((b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", b" 400 "),
                                    (b"GARBAGE\r\n\r\n", b" 400 "), (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", b" 505 ")):
                        self.assertIn(status, srv.raw(raw).split(b"\r\n")[0])
                srv.wait_log(r"\[WARNING\] Invalid request from ip=127\.0\.0\.1: \S", count=3)
                packets = []
                udp.settimeout(1)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and packets.count("gunicorn.log.warning:1|c|@1.0") < 3:
                        try:
                                packets.append(udp.recv(4096).decode())
                        except socket.timeout:
                                pass
                self.assertEqual(packets.count("gunicorn.log.warning:1|c|@1.0"), 3, packets)
                self.assertEqual(srv.get("/").status, 200)

        def test_backlog_metric(self):
                # One sync worker asleep in the app: the connections that come meanwhile wait in
                # the accept queue, and the packet that counts them can only come from the master.
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.addCleanup(udp.close)
                udp.bind(("127.0.0.1", 0))
                ctl = os.path.join(h.tempdir(self, "gcorn-statsd-"), "ctl")
                srv = h.Server("routes:app", args=["-w", "1", "--control-socket", ctl, "--enable-backlog-metric",
                                                   "--statsd-host", "127.0.0.1:%d" % udp.getsockname()[1],
                                                   "--statsd-prefix", "pp", "--dogstatsd-tags", "env:test"])
                self.addCleanup(srv.stop)
                udp.settimeout(1)
                seen = []

                def wait_for(packet, timeout):
                        deadline = time.monotonic() + timeout
                        while time.monotonic() < deadline:
                                try:
                                        seen.append(udp.recv(4096).decode())
                                except socket.timeout:
                                        continue
                                if seen[-1] == packet:
                                        return True
                        return False
                # Gunicorn's name and type (a histogram), even with nothing waiting.
                self.assertTrue(wait_for("pp.gunicorn.backlog:0|h|#env:test", 5), seen)
                busy = srv.connect()
                self.addCleanup(busy.close)
                busy.sendall(b"GET /slow?s=6 HTTP/1.1\r\nHost: x\r\n\r\n")

                def in_app():
                        p = subprocess.run([h.GCORN, "ctl", "--socket", ctl, "--json", "workers"], capture_output=True,
                                           text=True, timeout=30)
                        return p.returncode == 0 and json.loads(p.stdout)["data"]["workers"][0]["in_flight"]
                # The worker takes no other connection once it is in the app.
                self.assertTrue(h.wait_until(in_app, 5))
                waiting = []
                for _ in range(3):
                        waiting.append(srv.connect())
                        self.addCleanup(waiting[-1].close)
                self.assertTrue(wait_for("pp.gunicorn.backlog:3|h|#env:test", 5), seen)
                self.assertFalse([p for p in seen if "gunicorn.request" in p], "the worker was still in the app")

        def test_backlog_metric_unix_listener_only(self):
                # A UNIX listener has no queue length: Gunicorn sends no backlog then, nor does gcorn.
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.addCleanup(udp.close)
                udp.bind(("127.0.0.1", 0))
                d = h.tempdir(self, "gcorn-statsd-")
                srv = h.Server("routes:app", bind="unix:" + os.path.join(d, "s.sock"),
                               args=["-w", "1", "--no-control-socket", "--enable-backlog-metric",
                                     "--statsd-host", "127.0.0.1:%d" % udp.getsockname()[1]])
                self.addCleanup(srv.stop)
                self.assertEqual(srv.get("/").status, 200)
                udp.settimeout(0.5)
                seen = []
                deadline = time.monotonic() + 2.5
                while time.monotonic() < deadline:
                        try:
                                seen.append(udp.recv(4096).decode())
                        except socket.timeout:
                                pass
                self.assertIn("gunicorn.workers:1|g", seen)
                self.assertFalse([p for p in seen if "backlog" in p], seen)

        def test_no_server_listening_loses_nothing_else(self):
                # Nothing listens there: every send fails, and the requests are answered all the same.
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                udp.bind(("127.0.0.1", 0))
                port = udp.getsockname()[1]
                udp.close()
                srv = h.Server("routes:app", args=["-w", "1", "--no-control-socket", "--statsd-host",
                                                   "127.0.0.1:%d" % port])
                self.addCleanup(srv.stop)
                for _ in range(20):
                        self.assertEqual(srv.get("/").status, 200)

        def test_host_spellings(self):
                # Gunicorn's parse_address() takes a tcp:// in front and a left-out port (8125).
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.addCleanup(udp.close)
                udp.bind(("127.0.0.1", 0))
                udp.settimeout(10)
                for host in ("tcp://127.0.0.1:%d" % udp.getsockname()[1], "127.0.0.1"):
                        with self.subTest(host=host):
                                srv = h.Server("routes:app", args=["-w", "1", "--no-control-socket", "--statsd-host", host])
                                srv.stop()
                                self.assertNotIn("statsd", srv.log())
                self.assertIn(b"gunicorn.workers:1|g", udp.recv(4096))

        def test_bad_host(self):
                for bad in ("a:b:c", "host:99999", "[::1"):
                        p = subprocess.run([h.GCORN, "--statsd-host", bad, "routes:app"], capture_output=True,
                                           text=True, timeout=30, cwd=h.APPS)
                        self.assertEqual(p.returncode, 2, bad)
                        self.assertIn("statsd-host", p.stderr)


class GunicornServer(h.Server):
        """Debian's Gunicorn on the same app, for the reference packets."""

        def __init__(self, args):
                global_gcorn = h.GCORN
                try:
                        h.GCORN = "/usr/bin/gunicorn"
                        super().__init__("routes:app", args=args)
                finally:
                        h.GCORN = global_gcorn


if __name__ == "__main__":
        h.main()
