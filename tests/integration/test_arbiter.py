"""The master process: worker crashes, hangs and stops, reloads under load, worker recycling,
boot failures, stop signals, process titles.

Every wait is a bounded poll; every server is stopped when its test ends (the harness sends
TERM, then KILL, and kills leftover workers of that server by PID)."""

import errno
import http.client
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

APP = "arbiter_app:app"
BODY_RE = re.compile(r"^version=(\S+) pid=(\d+)\n$")


def children(pid):
        """The live child PIDs of pid (zombies are not counted)."""
        out = set()
        try:
                tasks = os.listdir("/proc/%d/task" % pid)
        except OSError:
                return out
        for t in tasks:
                try:
                        with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                                out.update(int(x) for x in f.read().split())
                except OSError:
                        pass
        return {p for p in out if process_alive(p)}


def process_alive(pid):
        """True while pid exists and is not a zombie."""
        try:
                with open("/proc/%d/stat" % pid) as f:
                        state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
                return False
        return state not in ("Z", "X")


def cmdline(pid):
        with open("/proc/%d/cmdline" % pid, "rb") as f:
                return f.read().replace(b"\0", b" ").decode("utf-8", "replace")


def parse_body(body):
        m = BODY_RE.match(body.decode("utf-8", "replace"))
        if not m:
                return None, None
        return m.group(1), int(m.group(2))


def listening(srv, pid):
        """Whether the worker pid has the TCP listener of srv in its epoll set (from /proc)."""
        inode = None
        with open("/proc/net/tcp") as f:
                for line in f.readlines()[1:]:
                        fields = line.split()
                        if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == srv.port:
                                inode = fields[9]
        try:
                fds = {fd: os.readlink("/proc/%d/fd/%s" % (pid, fd)) for fd in os.listdir("/proc/%d/fd" % pid)}
                listener = [fd for fd, target in fds.items() if target == "socket:[%s]" % inode]
                for fd, target in fds.items():
                        if target == "anon_inode:[eventpoll]":
                                with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                                        if any(l.split()[:2] == ["tfd:", n] for l in f for n in listener):
                                                return True
        except OSError:
                pass
        return False


def http_get(srv, path="/", timeout=10.0):
        """One GET on a new connection: (status, version, pid)."""
        c = http.client.HTTPConnection(srv.host, srv.port, timeout=timeout)
        try:
                c.request("GET", path)
                r = c.getresponse()
                body = r.read()
                v, pid = parse_body(body)
                return r.status, v, pid
        finally:
                c.close()


class Load:
        """Client threads sending GET / until stopped: keep-alive runs of requests alternating
        with one-request connections, each thread at most one request per pause. Every
        exception and every non-200 is a failure."""

        def __init__(self, srv, threads=4, max_seconds=30.0, per_conn=(1, 30), pause=0.001):
                self.srv = srv
                self.per_conn = per_conn
                self.pause = pause
                self.stop_ev = threading.Event()
                self.lock = threading.Lock()
                self.ok = 0
                self.failures = []              # (monotonic time, what)
                self.seen = []                  # (request start time, version, pid)
                self.deadline = time.monotonic() + max_seconds
                self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                                for i in range(threads)]

        def start(self):
                for t in self.threads:
                        t.start()
                return self

        def stop(self):
                self.stop_ev.set()
                for t in self.threads:
                        t.join(15)
                return self

        def running(self):
                return not self.stop_ev.is_set() and time.monotonic() < self.deadline

        def _run(self, idx):
                run = 0
                while self.running():
                        run += 1
                        per_conn = self.per_conn[run % len(self.per_conn)]
                        c = http.client.HTTPConnection(self.srv.host, self.srv.port, timeout=10)
                        try:
                                for _ in range(per_conn):
                                        if not self.running():
                                                break
                                        t0 = time.monotonic()
                                        try:
                                                c.request("GET", "/")
                                                r = c.getresponse()
                                                body = r.read()
                                        except Exception as e:
                                                with self.lock:
                                                        self.failures.append((t0, "thread %d: %r" % (idx, e)))
                                                break
                                        v, pid = parse_body(body)
                                        with self.lock:
                                                if r.status != 200 or v is None:
                                                        self.failures.append((t0, "status %d body %r"
                                                                              % (r.status, body[:100])))
                                                else:
                                                        self.ok += 1
                                                        self.seen.append((t0, v, pid))
                                        time.sleep(self.pause)
                        finally:
                                c.close()

        def summary(self):
                return "ok=%d failed=%d first failures: %s" % (
                        self.ok, len(self.failures), [f[1] for f in self.failures[:5]])


class ArbiterTest(h.ServerTestCase):

        def setUp(self):
                self.tmp = tempfile.mkdtemp(prefix="gcorn-arbiter-")
                self.addCleanup(shutil.rmtree, self.tmp, True)
                self.version_file = os.path.join(self.tmp, "version")
                self.set_version("v1")
                self.ready_dir = os.path.join(self.tmp, "ready")
                os.mkdir(self.ready_dir)

        def set_version(self, v):
                tmp = self.version_file + ".new"
                with open(tmp, "w") as f:
                        f.write(v + "\n")
                os.replace(tmp, self.version_file)

        def start_app(self, args=(), **kw):
                env = dict(kw.pop("env", {}) or {})
                env["ARBITER_VERSION_FILE"] = self.version_file
                env["ARBITER_READY_DIR"] = self.ready_dir
                return self.start(APP, args=list(args), env=env, **kw)

        def start_load(self, srv, **kw):
                load = Load(srv, **kw).start()
                self.addCleanup(load.stop)
                return load

        def wait_workers(self, srv, n, timeout=10.0):
                """Waits until the master has exactly n live children; returns them."""
                got = h.wait_until(lambda: len(children(srv.pid)) == n, timeout)
                kids = children(srv.pid)
                self.assertTrue(got, "expected %d workers, have %r; log:\n%s" % (n, kids, srv.log()))
                return kids

        def imported(self, pid):
                return os.path.exists(os.path.join(self.ready_dir, str(pid)))

        def wait_ready(self, srv, n, timeout=30.0):
                """Waits until the master has exactly n live children, all done importing the app."""
                def ready():
                        kids = children(srv.pid)
                        return len(kids) == n and all(self.imported(k) for k in kids)
                got = h.wait_until(ready, timeout)
                kids = children(srv.pid)
                self.assertTrue(got, "expected %d booted workers, have %r; log:\n%s"
                                % (n, kids, srv.log()))
                return kids

        def signal_master(self, srv, sig):
                self.assertTrue(srv.alive(), "master died; log:\n%s" % srv.log())
                os.kill(srv.pid, sig)

        def get(self, srv, path="/", timeout=10.0):
                """http_get, failing the test with the server log when the request fails."""
                try:
                        return http_get(srv, path, timeout)
                except Exception as e:
                        self.fail("GET %s failed: %r; log:\n%s" % (path, e, srv.log()))

        def kill_if_ours(self, srv, pid, sig=signal.SIGKILL):
                if srv._pgid_is_ours(pid):
                        try:
                                os.kill(pid, sig)
                        except ProcessLookupError:
                                pass

        # 1 ------------------------------------------------------------------

        def test_killed_worker_is_replaced(self):
                srv = self.start_app(["-w", "2"])
                before = self.wait_ready(srv, 2)
                victim = min(before)
                os.kill(victim, signal.SIGKILL)
                after = h.wait_until(lambda: (lambda k: k if len(k) == 2 and victim not in k else None)(
                        children(srv.pid)), 10)
                self.assertTrue(after, "no replacement for a killed worker; log:\n%s" % srv.log())
                self.assertTrue(after - before, "no new worker pid: %r -> %r" % (before, after))
                srv.wait_log(r"Worker \(pid:%d\) was sent SIGKILL! Perhaps out of memory\?" % victim)
                status, v, pid = self.get(srv)
                self.assertEqual(status, 200)
                self.assertIn(pid, after)

        # 2 ------------------------------------------------------------------

        def test_hung_worker_is_killed_with_stack(self):
                srv = self.start_app(["-w", "1", "-t", "2"])
                status, _, first = self.get(srv)
                self.assertEqual(status, 200)
                t0 = time.monotonic()
                s = srv.connect(timeout=20)
                self.addCleanup(s.close)
                s.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
                closed, data = h.wait_closed(s, 20)
                elapsed = time.monotonic() - t0
                self.assertTrue(closed, "the hung request's connection was never closed")
                self.assertGreater(elapsed, 1.5, "killed before the timeout")
                self.assertLess(elapsed, 12, "hung worker lived too long")
                log = srv.wait_log(r"WORKER TIMEOUT \(pid:%d\) serving GET /hang for \d+\.\d s" % first)
                log = srv.wait_log(r'File "[^"]*arbiter_app\.py", line \d+ in hang_forever')
                self.assertRegex(log, r'File "[^"]*arbiter_app\.py", line \d+ in app')
                status, _, pid = self.get(srv, timeout=15)
                self.assertEqual(status, 200)
                self.assertNotEqual(pid, first)
                self.assertFalse(process_alive(first))

        # 3 ------------------------------------------------------------------

        @h.skip_unless_sync("a sync worker holds only the crashing request inside its app; a gthread "
                            "worker's other threads may be inside other clients' requests, which die "
                            "with the process")
        def test_segfault_does_not_disturb_other_clients(self):
                # Under AddressSanitizer the worker must die of the signal, not of ASan's report.
                asan = os.environ.get("ASAN_OPTIONS", "")
                srv = self.start_app(["-w", "2"], env={"ASAN_OPTIONS": asan + ":handle_segv=0"})
                before = self.wait_ready(srv, 2)
                # Clients on connections of their own: a crash also ends the connections the
                # crashing worker holds, keep-alive ones included.
                load = self.start_load(srv, threads=2, per_conn=(1,))
                time.sleep(0.3)
                s = srv.connect(timeout=10)
                self.addCleanup(s.close)
                s.sendall(b"GET /segv HTTP/1.1\r\nHost: x\r\n\r\n")
                closed, data = h.wait_closed(s, 10)
                self.assertTrue(closed)
                self.assertFalse(data.startswith(b"HTTP/1.1 200"), data[:100])
                log = srv.wait_log(r"Worker \(pid:(\d+)\) was sent signal 11")
                crashed = int(re.search(r"Worker \(pid:(\d+)\) was sent signal 11", log).group(1))
                self.assertIn(crashed, before)
                after = h.wait_until(lambda: (lambda k: k if len(k) == 2 and crashed not in k else None)(
                        children(srv.pid)), 10)
                self.assertTrue(after, "crashed worker not replaced; log:\n%s" % log)
                n_before = load.ok
                time.sleep(1.0)
                load.stop()
                self.assertGreater(load.ok, n_before, "no requests served after the crash")
                self.assertEqual(len(load.failures), 0, load.summary())
                self.assertTrue({p for _, _, p in load.seen} & (after - before),
                                "the replacement never served")

        # 4 ------------------------------------------------------------------

        def test_rolling_reloads_under_load(self):
                srv = self.start_app(["-w", "2", "-t", "10"])
                self.wait_ready(srv, 2)
                load = self.start_load(srv, threads=4)
                time.sleep(0.7)
                self.set_version("v2")
                for _ in range(10):
                        self.signal_master(srv, signal.SIGHUP)
                        time.sleep(0.5)
                # Each HUP either completed a reload or was refused while one was running.
                done_rx = r"Reload complete: generation \d+ serving|Reload already in progress"
                srv.wait_log(done_rx, timeout=10, count=10)
                # HUPs that arrive during a reload are folded into one that follows it, so
                # every HUP is followed by a reload that read the code after it.
                h.wait_until(lambda: (lambda lg: "Reload complete" in lg and lg.rindex("Reload complete") >
                                    lg.rindex("Handling signal: hup"))(srv.log()), 20)
                t_switch = time.monotonic()
                log = srv.log()
                self.assertEqual(len(re.findall(r"Handling signal: hup", log)), 10)
                completed = len(re.findall(r"Reload complete", log))
                self.assertGreaterEqual(completed, 2, log)
                self.assertGreater(log.rindex("Reload complete"), log.rindex("Handling signal: hup"), log)
                self.assertNotIn("Reload failed", log)
                self.wait_ready(srv, 2)

                for _ in range(2):
                        self.signal_master(srv, signal.SIGTTIN)
                        time.sleep(0.2)
                self.wait_ready(srv, 4)
                self.signal_master(srv, signal.SIGTTOU)
                self.wait_ready(srv, 3)
                time.sleep(0.5)
                load.stop()

                self.assertEqual(len(load.failures), 0, load.summary() + "\n" + srv.log())
                self.assertGreater(load.ok, 2000, load.summary())
                print("\n  rolling reloads: %s, %d reloads completed" % (load.summary(), completed),
                      file=sys.stderr)
                versions = [v for _, v, _ in load.seen]
                self.assertIn("v1", versions)
                self.assertIn("v2", versions)
                late_old = [x for x in load.seen if x[0] > t_switch + 0.5 and x[1] != "v2"]
                self.assertEqual(late_old, [], "old code served after the reloads")
                for _ in range(5):
                        status, v, _ = self.get(srv)
                        self.assertEqual((status, v), (200, "v2"))
                self.assertTrue(srv.alive())

        # 5 ------------------------------------------------------------------

        def test_term_lets_slow_request_finish(self):
                srv = self.start_app(["-w", "1", "--graceful-timeout", "10"])
                result = {}

                def slow():
                        try:
                                result["r"] = self.get(srv, "/slow?s=2", timeout=15)
                        except Exception as e:
                                result["e"] = e
                        result["t"] = time.monotonic()

                t = threading.Thread(target=slow, daemon=True)
                t.start()
                self.addCleanup(t.join, 20)
                time.sleep(0.5)
                t0 = time.monotonic()
                self.signal_master(srv, signal.SIGTERM)
                rc = srv.wait_exit(12)
                t.join(15)
                self.assertEqual(rc, 0, srv.log())
                self.assertNotIn("e", result, result)
                self.assertEqual(result["r"][0], 200)
                self.assertGreater(result["t"] - t0, 1.0, "the request did not take its time")
                self.assertLessEqual(result["t"], time.monotonic())
                log = srv.log()
                self.assertIn("Handling signal: term", log)
                self.assertIn("Shutting down: Master", log)

        # 6 ------------------------------------------------------------------

        def test_max_requests_recycles_workers(self):
                srv = self.start_app(["-w", "2", "--max-requests", "50", "--max-requests-jitter", "10"])
                self.wait_ready(srv, 2)
                # Bounded by count, not by time: under the sanitizers every recycled worker
                # takes a second or more to boot.
                load = self.start_load(srv, threads=4, max_seconds=120)
                h.wait_until(lambda: load.ok + len(load.failures) >= 1200, 120)
                load.stop()
                self.assertEqual(len(load.failures), 0, load.summary())
                self.assertGreaterEqual(load.ok, 1200, load.summary())
                pids = {p for _, _, p in load.seen}
                # 1200 requests at most 60 per worker: a score of workers.
                self.assertGreater(len(pids), 1200 // 60, pids)
                log = srv.log()
                self.assertIn("Autorestarting worker after current request.", log)
                self.assertNotRegex(log, r"was sent signal|exited with code")
                self.wait_workers(srv, 2)

        def test_keepalive_connections_spread_over_workers(self):
                # Connections opened one after another, each kept open: the kernel would wake
                # the same idle worker for every one of them, which would then hold them all
                # for their whole life. Each worker must end up with its share.
                srv = self.start_app(["-w", "2", "--keep-alive", "60"])
                workers = set(self.wait_ready(srv, 2))
                # A worker imports the app a moment before it listens: wait until both have
                # the listener in their epoll sets.
                self.assertTrue(h.wait_until(lambda: all(listening(srv, pid) for pid in workers), 10),
                                "the workers never listened")
                conns, owner = [], {}
                try:
                        for i in range(20):
                                c = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
                                conns.append(c)
                                c.request("GET", "/")
                                r = c.getresponse()
                                _, pid = parse_body(r.read())
                                self.assertEqual(r.status, 200)
                                self.assertFalse(r.will_close)
                                owner[i] = pid
                        # Still the same worker on each connection: they were kept open.
                        for i, c in enumerate(conns):
                                c.request("GET", "/")
                                r = c.getresponse()
                                self.assertEqual(parse_body(r.read())[1], owner[i])
                finally:
                        for c in conns:
                                c.close()
                counts = {p: list(owner.values()).count(p) for p in workers}
                self.assertEqual(set(owner.values()), workers, counts)
                self.assertGreaterEqual(min(counts.values()), 7, counts)

        # 7 ------------------------------------------------------------------

        def test_broken_app_exits_without_fork_loop(self):
                srv = self.start_app(["-w", "2"], env={"ARBITER_APP_BROKEN": "1"}, wait=False)
                rc = srv.wait_exit(10)
                log = srv.log()
                self.assertEqual(rc, 3, log)
                self.assertRegex(log, r"No module named '?arbiter_missing_dependency")
                self.assertRegex(log, r"failed to boot; shutting down")
                boots = len(h.WORKER_RE.findall(log))
                self.assertGreaterEqual(boots, 1, log)
                self.assertLessEqual(boots, 3, log)

        # 8 ------------------------------------------------------------------

        def test_reload_with_broken_code_keeps_old_workers(self):
                srv = self.start_app(["-w", "2"])
                old = self.wait_ready(srv, 2)
                self.set_version("raise")
                self.signal_master(srv, signal.SIGHUP)
                log = srv.wait_log(r"Reload failed", timeout=10)
                self.assertIn("the version file asks for a failed import", log)
                for _ in range(6):
                        status, v, pid = self.get(srv)
                        self.assertEqual((status, v), (200, "v1"))
                        self.assertIn(pid, old)
                self.assertTrue(srv.alive())
                self.assertEqual(self.wait_workers(srv, 2), old)

                self.set_version("v3")
                self.signal_master(srv, signal.SIGHUP)
                srv.wait_log(r"Reload complete", timeout=10)
                got = h.wait_until(lambda: self.get(srv)[1] == "v3", 5)
                self.assertTrue(got, srv.log())
                for _ in range(4):
                        status, v, pid = self.get(srv)
                        self.assertEqual((status, v), (200, "v3"))
                        self.assertNotIn(pid, old)

        # 9 ------------------------------------------------------------------

        def test_preload_reload_replaces_workers(self):
                srv = self.start_app(["-w", "2", "--preload"])
                old = self.wait_workers(srv, 2)
                status, v, pid = self.get(srv)
                self.assertEqual((status, v), (200, "v1"))
                self.assertIn(pid, old)
                self.set_version("v2")
                self.signal_master(srv, signal.SIGHUP)
                log = srv.wait_log(r"Reload complete", timeout=10)
                self.assertRegex(log, r"(?i)preload")
                new = h.wait_until(lambda: (lambda k: k if len(k) == 2 and not (k & old) else None)(
                        children(srv.pid)), 10)
                self.assertTrue(new, "old workers still there: %r; log:\n%s" % (children(srv.pid), log))
                for _ in range(4):
                        status, v, pid = self.get(srv)
                        # The code was imported once, in the master: still the old version.
                        self.assertEqual((status, v), (200, "v1"))
                        self.assertIn(pid, new)

        # 10 -----------------------------------------------------------------

        def test_stopped_worker_is_replaced(self):
                srv = self.start_app(["-w", "2", "-t", "2", "--log-level", "debug"])
                before = self.wait_ready(srv, 2)
                # Until the master has seen a worker boot, --boot-timeout applies, not -t.
                srv.wait_log(r"Worker \(pid:\d+\) booted", timeout=30, count=2)
                victim = min(before)
                self.addCleanup(self.kill_if_ours, srv, victim)
                os.kill(victim, signal.SIGSTOP)
                t0 = time.monotonic()
                after = h.wait_until(lambda: (lambda k: k if len(k) == 2 and victim not in k else None)(
                        children(srv.pid)), 10)
                self.assertTrue(after, "stopped worker never replaced; log:\n%s" % srv.log())
                self.assertLess(time.monotonic() - t0, 10)
                self.assertFalse(process_alive(victim))
                self.assertIn("WORKER TIMEOUT (pid:%d)" % victim, srv.log())
                for _ in range(4):
                        status, _, pid = self.get(srv)
                        self.assertEqual(status, 200)
                        self.assertIn(pid, after)

        # 11 -----------------------------------------------------------------

        def test_int_stops_fast(self):
                srv = self.start_app(["-w", "2", "--graceful-timeout", "30"])
                workers = self.wait_ready(srv, 2)
                s = srv.connect(timeout=10)
                self.addCleanup(s.close)
                s.sendall(b"GET /slow?s=20 HTTP/1.1\r\nHost: x\r\n\r\n")
                time.sleep(0.5)
                t0 = time.monotonic()
                self.signal_master(srv, signal.SIGINT)
                rc = srv.wait_exit(3.0)
                self.assertIsNotNone(rc, "master still running 3 s after INT; log:\n%s" % srv.log())
                self.assertLess(time.monotonic() - t0, 3.0)
                self.assertIn("Handling signal: int", srv.log())
                gone = h.wait_until(lambda: not any(process_alive(w) for w in workers), 2)
                self.assertTrue(gone, "workers outlived the master")

        # 12 -----------------------------------------------------------------

        def test_process_titles(self):
                srv = self.start_app(["-w", "2"])
                workers = self.wait_ready(srv, 2)
                self.assertTrue(cmdline(srv.pid).startswith("gcorn: master [" + APP + "]"),
                                cmdline(srv.pid))
                for w in workers:
                        self.assertTrue(cmdline(w).startswith("gcorn: worker [" + APP + "]"), cmdline(w))

        # 13 -----------------------------------------------------------------

        def test_graceful_exit_runs_atexit_and_logging_shutdown(self):
                done = os.path.join(self.tmp, "atexit")
                os.mkdir(done)
                srv = self.start_app(["-w", "2"], env={"ARBITER_ATEXIT_DIR": done})
                workers = self.wait_ready(srv, 2)
                self.assertEqual(srv.stop(), 0)
                names = set(os.listdir(done))
                for pid in workers:
                        self.assertIn("atexit-%d" % pid, names, names)
                        self.assertIn("flush-%d" % pid, names, names)

        def test_usr1_reopens_log_files(self):
                logfile = os.path.join(self.tmp, "error.log")
                access = os.path.join(self.tmp, "access.log")
                srv = self.start_app(["-w", "1", "--error-logfile", logfile, "--access-logfile", access],
                                     log_path=logfile)
                self.wait_ready(srv, 1)
                self.assertEqual(self.get(srv)[0], 200)
                # logrotate's way: move the files away, then USR1.
                os.rename(logfile, logfile + ".1")
                os.rename(access, access + ".1")
                self.signal_master(srv, signal.SIGUSR1)
                self.assertTrue(h.wait_until(lambda: os.path.exists(logfile) and os.path.exists(access), 5),
                                "log files not reopened")
                def text(path):
                        with open(path) as f:
                                return f.read()
                # Workers reopen theirs too: the next access entry lands in the new file.
                ok = h.wait_until(lambda: self.get(srv)[0] == 200 and "GET / HTTP/1.1" in text(access), 5)
                self.assertTrue(ok, text(access))
                self.assertIn("Handling signal: usr1", text(logfile))
                self.assertIn("GET / HTTP/1.1", text(access + ".1"))

        def test_workers_die_with_master(self):
                srv = self.start_app(["-w", "3"])
                workers = self.wait_ready(srv, 3)
                for w in workers:
                        self.addCleanup(self.kill_if_ours, srv, w)
                os.kill(srv.pid, signal.SIGKILL)
                srv.wait_exit(5)
                gone = h.wait_until(lambda: not any(process_alive(w) for w in workers), 5)
                self.assertTrue(gone, "workers alive 5 s after the master was killed: %r"
                                % [w for w in workers if process_alive(w)])

        # 14 -----------------------------------------------------------------

        @h.skip_unless_sync("the master's SIGABRT ends a worker stuck in its one request; a gthread "
                            "worker with one stuck thread of four is replaced, not killed (test_gthread)")
        def test_timeout_abort_writes_no_core(self):
                # The SIGABRT that ends a hung worker prints its Python stack; with cores
                # enabled it must not also leave a core file (one the size of the worker per
                # timeout). The worker runs in a directory of its own, where a plain
                # core_pattern would put the file; the master logs "(core dumped)" whatever
                # core_pattern is.
                soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
                if hard == 0:
                        self.skipTest("RLIMIT_CORE hard limit is 0: no core can be written")
                resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
                self.addCleanup(resource.setrlimit, resource.RLIMIT_CORE, (soft, hard))
                with open("/proc/sys/kernel/core_pattern") as f:
                        pattern = f.read().strip()
                cwd = h.tempdir(self, "gcorn-core-")
                srv = self.start_app(["-w", "1", "-t", "2", "--pythonpath", h.APPS], chdir=cwd)
                status, _, first = self.get(srv)
                self.assertEqual(status, 200)
                s = srv.connect(timeout=20)
                self.addCleanup(s.close)
                s.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
                closed, _ = h.wait_closed(s, 20)
                self.assertTrue(closed, "the hung request's connection was never closed")
                log = srv.wait_log(r"Worker \(pid:%d\) killed after timeout" % first)
                self.assertRegex(log, r'File "[^"]*arbiter_app\.py", line \d+ in hang_forever')
                self.assertNotIn("core dumped", log)
                self.assertFalse(process_alive(first))
                if not pattern.startswith("|") and not pattern.startswith("/"):
                        self.assertEqual([n for n in os.listdir(cwd) if n.startswith("core")], [],
                                         "core file(s) left by the timed-out worker (core_pattern %r)" % pattern)
                status, _, pid = self.get(srv, timeout=15)
                self.assertEqual(status, 200)

        # 15 -----------------------------------------------------------------

        def test_kill_at_graceful_timeout_is_logged(self):
                srv = self.start_app(["-w", "1", "--graceful-timeout", "1"])
                worker = self.wait_ready(srv, 1).pop()
                s = srv.connect(timeout=20)
                self.addCleanup(s.close)
                s.sendall(b"GET /slow?s=30 HTTP/1.1\r\nHost: x\r\n\r\n")
                time.sleep(0.5)
                self.signal_master(srv, signal.SIGTERM)
                rc = srv.wait_exit(10)
                self.assertEqual(rc, 0, srv.log())
                self.assertRegex(srv.log(), r"Worker \(pid:%d\) was sent SIGKILL after the graceful timeout \(1 s\)"
                                 % worker)

        # 16 -----------------------------------------------------------------

        def slow_reload_config(self, seconds):
                """A config file that takes `seconds` to run once the returned marker exists:
                the master is busy reading it when a reload starts."""
                marker = os.path.join(self.tmp, "slow-config")
                conf = os.path.join(self.tmp, "gcorn.conf.py")
                with open(conf, "w") as f:
                        f.write("import os, time\nif os.path.exists(%r):\n    time.sleep(%r)\n" % (marker, seconds))
                return conf, marker

        def test_ttin_while_master_busy_each_count(self):
                # Signals that arrive while the master is busy (here reading the config file
                # for a reload) all count: each TTIN adds a worker.
                conf, marker = self.slow_reload_config(2.0)
                srv = self.start_app(["-w", "1", "-c", conf])
                self.wait_ready(srv, 1)
                open(marker, "w").close()
                self.signal_master(srv, signal.SIGHUP)
                srv.wait_log(r"Handling signal: hup")
                for _ in range(4):
                        self.signal_master(srv, signal.SIGTTIN)
                        time.sleep(0.1)
                srv.wait_log(r"Reload complete", timeout=20)
                self.wait_ready(srv, 5, timeout=30)
                self.assertEqual(len(re.findall(r"Handling signal: ttin", srv.log())), 4, srv.log())

        def reload_and_wait(self, srv):
                return subprocess.Popen([h.GCORN, "--reload-and-wait", str(srv.pid)], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)

        def finish(self, proc, timeout):
                try:
                        out, err = proc.communicate(timeout=timeout)
                except subprocess.TimeoutExpired:
                        proc.kill()
                        out, err = proc.communicate()
                        return None, err
                return proc.returncode, err

        def test_concurrent_reload_and_wait_are_all_answered(self):
                conf, marker = self.slow_reload_config(1.5)
                srv = self.start_app(["-w", "1", "-c", conf])
                self.wait_ready(srv, 1)
                open(marker, "w").close()
                # The master is busy with a reload while both helpers send their HUP.
                self.signal_master(srv, signal.SIGHUP)
                srv.wait_log(r"Handling signal: hup")
                helpers = [self.reload_and_wait(srv) for _ in range(2)]
                for p in helpers:
                        self.addCleanup(self._kill, p)
                results = [self.finish(p, 30) for p in helpers]
                self.assertEqual([rc for rc, _ in results], [0, 0], "%r\nlog:\n%s" % (results, srv.log()))
                self.assertTrue(srv.alive())

        @staticmethod
        def _kill(p):
                if p.poll() is None:
                        p.kill()
                        p.communicate()

        def test_reload_and_wait_follows_boot_timeout(self):
                # The helper waits as long as the master says a reload may take (its
                # boot_timeout and a margin), not a fixed time: with --boot-timeout 4 and a
                # master that stopped answering, it gives up within that.
                slow = os.path.join(self.tmp, "slow-import")
                srv = self.start_app(["-w", "1", "--boot-timeout", "4"], env={"ARBITER_SLOW_IMPORT": slow})
                self.wait_ready(srv, 1)
                open(slow, "w").close()
                helper = self.reload_and_wait(srv)
                self.addCleanup(self._kill, helper)
                srv.wait_log(r"Reloading: starting generation 2")
                os.kill(srv.pid, signal.SIGSTOP)
                self.addCleanup(lambda: srv.alive() and os.kill(srv.pid, signal.SIGCONT))
                rc, err = self.finish(helper, 40)
                os.kill(srv.pid, signal.SIGCONT)
                self.assertIsNotNone(rc, "--reload-and-wait still waiting 40 s after a reload with --boot-timeout 4")
                self.assertEqual(rc, 1, err)
                self.assertIn("no answer from the master in time", err)

        # 17 -----------------------------------------------------------------

        def test_preload_child_is_not_reaped_by_master(self):
                # A process the app starts in the master (--preload) is the app's to wait for:
                # its exit status must not be taken by the master.
                result = os.path.join(self.tmp, "child-result")
                srv = self.start_app(["-w", "1", "--preload"], env={"ARBITER_CHILD_RESULT": result})
                self.wait_workers(srv, 1)
                status, _, _ = self.get(srv)
                self.assertEqual(status, 200)
                # The child exited long ago; the app waits for it as the master exits.
                time.sleep(0.5)
                self.assertEqual(srv.stop(), 0)
                self.assertTrue(os.path.exists(result), "the app never wrote its result; log:\n%s" % srv.log())
                with open(result) as f:
                        self.assertEqual(f.read(), "returncode=7")

        def test_worker_whose_master_died_while_it_forked_exits(self):
                # The master dies while a new worker is still in its fork hooks, before
                # PR_SET_PDEATHSIG: the worker must notice and exit rather than serve on as
                # an orphan nobody stops.
                marker = os.path.join(self.tmp, "slow-fork")
                srv = self.start_app(["-w", "1", "--preload"], env={"ARBITER_SLOW_FORK": marker})
                self.wait_workers(srv, 1)
                open(marker, "w").close()
                self.signal_master(srv, signal.SIGTTIN)
                got = h.wait_until(lambda: os.path.getsize(marker) > 0, 10)
                self.assertTrue(got, "no new worker forked; log:\n%s" % srv.log())
                with open(marker) as f:
                        orphan = int(f.read())
                self.addCleanup(self.kill_if_ours, srv, orphan)
                os.kill(srv.pid, signal.SIGKILL)
                srv.wait_exit(5)
                gone = h.wait_until(lambda: not process_alive(orphan), 10)
                self.assertTrue(gone, "worker %d outlived its master by 10 s; log:\n%s" % (orphan, srv.log()))

        # 18 -----------------------------------------------------------------

        def test_stop_refuses_new_connections(self):
                # During a graceful stop, the sockets gcorn bound itself are closed: a new
                # client is refused at once instead of waiting in the backlog and being reset
                # when the server exits. A request already under way still completes.
                srv = self.start_app(["-w", "1", "--graceful-timeout", "20"])
                self.wait_ready(srv, 1)
                s = srv.connect(timeout=15)
                self.addCleanup(s.close)
                # Half a request: the worker holds the connection and is idle when TERM comes.
                s.sendall(b"GET /slow?s=1 HTTP/1.1\r\nHost: x\r\n")
                time.sleep(0.3)
                self.signal_master(srv, signal.SIGTERM)
                srv.wait_log(r"Handling signal: term")

                def refused():
                        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                        c.settimeout(2)
                        try:
                                c.connect((srv.host, srv.port))
                        except OSError as e:
                                return e.errno == errno.ECONNREFUSED
                        finally:
                                c.close()
                        return False
                self.assertTrue(h.wait_until(refused, 5, 0.1), "new connections still accepted while stopping")
                self.assertTrue(srv.alive(), "the master exited with a request under way")
                s.sendall(b"Connection: close\r\n\r\n")
                c = h.Client(s)
                r = c.read_response()
                self.assertEqual(r.status, 200, r)
                self.assertEqual(srv.wait_exit(15), 0, srv.log())


if __name__ == "__main__":
        h.main()
