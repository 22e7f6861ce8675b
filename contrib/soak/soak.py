#!/usr/bin/python3
"""The soak: a real gcorn under mixed traffic for a long time, reloaded every minute and a
worker killed every five, and the report of what failed and how memory moved.

    contrib/soak/soak.py                  # 30 minutes
    contrib/soak/soak.py --minutes 2      # the smoke run

Traffic, at a fixed rate (--rate, 250 requests/s) from --threads client threads, each
keeping its connection alive for most requests (a quarter say "Connection: close"):
  hello   GET /hello
  upload  PUT /upload, 0 B to 4 MiB of random bytes (a fifth chunked, some large ones with
          "Expect: 100-continue"); the app echoes the body's SHA-256 and length
  stream  GET /stream, 1 to 64 generated chunks of 1 B to 64 KiB, checked byte for byte
  error   GET /error: the app raises, or answers 500 itself; 500 is the right answer
  slow    GET /slow, 20 ms to 2 s in the app

Events: SIGHUP to the master every --hup-every seconds (60). At 30 s and then every
--kill-every seconds (300), half-way between two HUPs, one worker picked at random among the
master's children is stopped (SIGSTOP), the client ports of the connections it holds are
read from /proc, and it is killed with SIGKILL.

Each request ends in exactly one outcome:
  ok      the expected status (500 for /error, 200 otherwise) and the expected bytes
  killed  a request sent before a worker was stopped for its kill, on a connection that
          worker held, that ended in a connection-level error (reset, or closed before a
          whole answer): in flight in the killed worker, the only requests gcorn may lose
  failed  everything else: connection refused, reset or closed early, a timeout (60 s),
          an unparseable response, a wrong status, wrong bytes
A request on a reused keep-alive connection that sees the connection close or reset before
any byte of an answer is sent once more on a new connection, as an HTTP client retries an
idempotent request (RFC 9110 9.2.2; every request here is GET or PUT); the second attempt's
outcome is the request's, and the retries are counted by cause (an idle connection of the
killed worker, or one gcorn closed).

Memory: every --sample-every seconds (5) the RSS (VmRSS) of the master and of each worker is
read from /proc; the report gives first, last and max per worker and for the master. Flat
means: the master's last sample is within max(1 MiB, 2%) of its first; and, as workers live
a minute (one generation per HUP), the series of each generation's largest worker at its
last sample ends within max(2 MiB, 5%) of where it starts (the cold first generation left
out).

The report goes to stdout and to OUT/report.txt; gcorn's log is OUT/gcorn.log.
"""

import argparse
import collections
import datetime
import hashlib
import json
import os
import queue
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from soak_app import PATTERN  # noqa: E402  (the client checks streams against the same bytes)

KINDS = ("hello", "upload", "stream", "error", "slow")
# Shares of the request rate. The slow share is small: a sync worker sleeping in /slow serves
# nobody else, and two workers share two cores with the client.
WEIGHTS = (0.585, 0.18, 0.15, 0.08, 0.005)
SOCK_TIMEOUT = 60.0
HELLO = b"Hello, World!\n"


def now():
        return time.monotonic()


# -- the server -------------------------------------------------------------------------

def find_gcorn(arg):
        if arg:
                return arg
        for p in (os.environ.get("GCORN"), os.path.join(SRC, "build-rel", "src", "gcorn"),
                  os.path.join(SRC, "build", "src", "gcorn")):
                if p and os.access(p, os.X_OK):
                        return p
        return "gcorn"


class Server:
        def __init__(self, gcorn, workers, out):
                self.gcorn = gcorn
                self.ctl_sock = os.path.join(out, "ctl")
                self.log_path = os.path.join(out, "gcorn.log")
                self.argv = [gcorn, "-b", "127.0.0.1:0", "-w", str(workers), "--chdir", HERE,
                             "--control-socket", self.ctl_sock, "soak_app:app"]
                env = dict(os.environ)
                env.pop("GUNICORN_CMD_ARGS", None)
                env.pop("GCORN_CMD_ARGS", None)
                env["PYTHONDONTWRITEBYTECODE"] = "1"
                self.log = open(self.log_path, "wb")
                self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                             stderr=self.log, env=env, start_new_session=True)
                self.pid = self.proc.pid
                self.port = None
                deadline = now() + 30
                while self.port is None:
                        m = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", self.read_log())
                        if m:
                                self.port = int(m.group(1))
                        elif self.proc.poll() is not None or now() > deadline:
                                raise SystemExit("gcorn did not start:\n" + self.read_log())
                        else:
                                time.sleep(0.05)
                while len(self.children()) < workers:
                        if now() > deadline:
                                raise SystemExit("gcorn's workers did not start:\n" + self.read_log())
                        time.sleep(0.05)

        def read_log(self):
                with open(self.log_path, "rb") as f:
                        return f.read().decode("utf-8", "replace")

        def children(self):
                """The master's live children (zombies left out): its workers."""
                try:
                        with open("/proc/%d/task/%d/children" % (self.pid, self.pid)) as f:
                                pids = [int(p) for p in f.read().split()]
                except OSError:
                        return []
                return [p for p in pids if proc_state(p) not in (None, "Z")]

        def generations(self):
                """pid -> generation, from gcorn ctl."""
                try:
                        p = subprocess.run([self.gcorn, "ctl", "--socket", self.ctl_sock, "--json", "status"],
                                           capture_output=True, text=True, timeout=20)
                        return {w["pid"]: w["generation"] for w in json.loads(p.stdout)["data"]["workers"]}
                except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
                        return {}

        def stop(self):
                if self.proc.poll() is None:
                        self.proc.send_signal(signal.SIGTERM)
                        try:
                                self.proc.wait(timeout=60)
                        except subprocess.TimeoutExpired:
                                self.proc.kill()
                                self.proc.wait()
                self.log.close()
                return self.proc.returncode


def proc_state(pid):
        try:
                with open("/proc/%d/stat" % pid) as f:
                        return f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
                return None


def rss_kib(pid):
        try:
                with open("/proc/%d/status" % pid) as f:
                        for line in f:
                                if line.startswith("VmRSS:"):
                                        return int(line.split()[1])
        except OSError:
                pass
        return None


def client_ports_held_by(pid, server_port):
        """The client-side ports of the TCP connections the process holds to server_port."""
        inodes = set()
        fd_dir = "/proc/%d/fd" % pid
        for fd in os.listdir(fd_dir):
                try:
                        link = os.readlink(os.path.join(fd_dir, fd))
                except OSError:
                        continue
                if link.startswith("socket:["):
                        inodes.add(int(link[8:-1]))
        ports = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
                try:
                        with open(table) as f:
                                lines = f.readlines()[1:]
                except OSError:
                        continue
                for line in lines:
                        fields = line.split()
                        if int(fields[9]) not in inodes:
                                continue
                        lport = int(fields[1].rsplit(":", 1)[1], 16)
                        rport = int(fields[2].rsplit(":", 1)[1], 16)
                        if lport == server_port and rport:
                                ports.add(rport)
        return ports


# -- the client -------------------------------------------------------------------------

class ConnLost(Exception):
        """The connection reset or closed; got_bytes says whether any answer had begun."""

        def __init__(self, what, got_bytes):
                super().__init__(what)
                self.what = what
                self.got_bytes = got_bytes


class BadAnswer(Exception):
        def __init__(self, what, detail):
                super().__init__(what)
                self.what = what
                self.detail = detail


class Conn:
        def __init__(self, port):
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=SOCK_TIMEOUT)
                self.opened = now()
                self.port = self.sock.getsockname()[1]
                self.buf = bytearray()
                self.uses = 0
                self.got = False

        def close(self):
                try:
                        self.sock.close()
                except OSError:
                        pass

        def send(self, data):
                try:
                        self.sock.sendall(data)
                except (ConnectionResetError, BrokenPipeError):
                        raise ConnLost("reset while sending", self.got)

        def fill(self):
                try:
                        chunk = self.sock.recv(262144)
                except (ConnectionResetError, BrokenPipeError):
                        raise ConnLost("reset while receiving", self.got)
                if not chunk:
                        raise ConnLost("closed before a whole answer", self.got)
                self.got = True
                self.buf += chunk

        def until(self, sep):
                while True:
                        i = self.buf.find(sep)
                        if i >= 0:
                                out = bytes(self.buf[:i])
                                del self.buf[:i + len(sep)]
                                return out
                        if len(self.buf) > 65536:
                                raise BadAnswer("protocol", "no %r in %r" % (sep, bytes(self.buf[:200])))
                        self.fill()

        def exact(self, n):
                while len(self.buf) < n:
                        self.fill()
                out = bytes(self.buf[:n])
                del self.buf[:n]
                return out

        def head(self):
                lines = self.until(b"\r\n\r\n").split(b"\r\n")
                m = re.match(rb"HTTP/1\.[01] (\d{3})", lines[0])
                if not m:
                        raise BadAnswer("protocol", "status line %r" % lines[0][:200])
                headers = {}
                for line in lines[1:]:
                        k, sep, v = line.partition(b":")
                        if not sep:
                                raise BadAnswer("protocol", "header line %r" % line[:200])
                        headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
                return int(m.group(1)), headers

        def response(self):
                """(status, headers, body, closes)."""
                while True:
                        status, headers = self.head()
                        if not 100 <= status < 200:
                                break
                te = headers.get("transfer-encoding", "").lower()
                if "chunked" in te:
                        body = bytearray()
                        while True:
                                size = int(self.until(b"\r\n").split(b";")[0].strip() or b"x", 16)
                                if size == 0:
                                        while self.until(b"\r\n"):
                                                pass
                                        break
                                body += self.exact(size)
                                if self.exact(2) != b"\r\n":
                                        raise BadAnswer("protocol", "chunk without CRLF")
                elif "content-length" in headers:
                        body = self.exact(int(headers["content-length"]))
                else:
                        body = bytearray(self.buf)
                        self.buf.clear()
                        try:
                                while True:
                                        self.fill()
                                        body += self.buf
                                        self.buf.clear()
                        except ConnLost:
                                pass
                        headers["connection"] = "close"
                closes = "close" in headers.get("connection", "").lower()
                return status, headers, bytes(body), closes

        def wait_continue(self, timeout):
                """Waits up to timeout for 100 Continue; True if it came, False if nothing did.
                A final answer instead stays in the buffer for response()."""
                self.sock.settimeout(timeout)
                try:
                        while b"\r\n\r\n" not in self.buf:
                                self.fill()
                except socket.timeout:
                        return False
                finally:
                        self.sock.settimeout(SOCK_TIMEOUT)
                if re.match(rb"HTTP/1\.[01] 100", self.buf):
                        self.until(b"\r\n\r\n")
                        return True
                return False


def chunked(body, rng):
        out = bytearray()
        i = 0
        while i < len(body):
                n = rng.randint(1, 65536)
                part = body[i:i + n]
                out += b"%x\r\n" % len(part) + part + b"\r\n"
                i += n
        return bytes(out + b"0\r\n\r\n")


class Job:
        """One request: what to send and what must come back."""

        def __init__(self, kind, rng, blob):
                self.kind = kind
                self.keep = rng.random() < 0.75
                self.method, self.body, self.expect_100, self.chunked = "GET", b"", False, False
                if kind == "hello":
                        self.path, self.status, self.want = "/hello", 200, HELLO
                elif kind == "upload":
                        r = rng.random()
                        if r < 0.05:
                                n = 0
                        elif r < 0.45:
                                n = rng.randint(1, 1024)
                        elif r < 0.80:
                                n = rng.randint(1025, 65536)
                        elif r < 0.97:
                                n = rng.randint(65537, 1 << 20)
                        else:
                                n = rng.randint((1 << 20) + 1, 4 << 20)
                        off = rng.randint(0, len(blob) - n)
                        self.body = blob[off:off + n]
                        self.method, self.path, self.status = "PUT", "/upload", 200
                        self.chunked = rng.random() < 0.2
                        self.expect_100 = n > 65536 and rng.random() < 0.3
                        self.want = ("%s %d" % (hashlib.sha256(self.body).hexdigest(), n)).encode()
                elif kind == "stream":
                        size = rng.choice((1, 100, 1000, 4096, 16384, 65536))
                        n = min(rng.randint(1, 64), max(1, (1 << 20) // size))
                        seed = rng.randint(0, 255)
                        self.path, self.status = "/stream?n=%d&size=%d&seed=%d" % (n, size, seed), 200
                        self.want = b"".join(PATTERN[(seed + 7 * i) % 256:(seed + 7 * i) % 256 + size] for i in range(n))
                elif kind == "error":
                        how = rng.choice(("raise", "status"))
                        self.path, self.status = "/error?how=" + how, 500
                        self.want = b"intended 500\n" if how == "status" else None
                else:
                        ms = rng.randint(20, 300) if rng.random() < 0.9 else rng.randint(1000, 2000)
                        self.path, self.status, self.want = "/slow?ms=%d" % ms, 200, b"slept %d" % ms

        def head(self):
                h = ["%s %s HTTP/1.1" % (self.method, self.path), "Host: 127.0.0.1"]
                if self.method == "PUT":
                        h.append("Transfer-Encoding: chunked" if self.chunked else "Content-Length: %d" % len(self.body))
                        if self.expect_100:
                                h.append("Expect: 100-continue")
                if not self.keep:
                        h.append("Connection: close")
                return ("\r\n".join(h) + "\r\n\r\n").encode()


class Stats:
        def __init__(self):
                self.lock = threading.Lock()
                self.count = {k: collections.Counter() for k in KINDS}
                self.times = {k: [] for k in KINDS}
                self.failures = []              # (t, kind, path, what, detail)
                self.killed = []                # (t, kind, path, what, pid)
                self.retries = []               # (t, kind, what)
                self.kills = []                 # dicts: t, pid, ports
                self.hups = []                  # t
                self.t0 = now()

        def add(self, kind, outcome, secs=None):
                with self.lock:
                        self.count[kind][outcome] += 1
                        if secs is not None:
                                self.times[kind].append(secs)


class Client(threading.Thread):
        def __init__(self, n, port, jobs, stats, blob, seed):
                super().__init__(name="client-%d" % n, daemon=True)
                self.port, self.jobs, self.stats, self.blob = port, jobs, stats, blob
                self.rng = random.Random(seed)
                self.conn = None

        def drop(self):
                if self.conn:
                        self.conn.close()
                        self.conn = None

        def attempt(self, job):
                if self.conn is None:
                        self.conn = Conn(self.port)
                c = self.conn
                c.got = False
                c.uses += 1
                body = chunked(job.body, self.rng) if job.chunked else job.body
                if job.expect_100:
                        c.send(job.head())
                        c.wait_continue(1.0)
                        # A final answer before the body (it must not come here) is read below.
                        if not c.buf:
                                c.send(body)
                else:
                        c.send(job.head() + body)
                status, headers, got, closes = c.response()
                if closes:
                        self.drop()
                if status != job.status:
                        raise BadAnswer("status", "%d, wanted %d: %r" % (status, job.status, got[:200]))
                if job.want is not None and got != job.want:
                        raise BadAnswer("bytes", "%d bytes, wanted %d; first difference at %d" % (
                                len(got), len(job.want), next((i for i, (a, b) in enumerate(zip(got, job.want))
                                                               if a != b), min(len(got), len(job.want)))))
                if not job.keep:
                        self.drop()

        def killed_by(self, conn, t):
                """The kill whose stopped worker held this connection, if one did."""
                with self.stats.lock:
                        kills = list(self.stats.kills)
                for k in kills:
                        if conn.opened < k["t"] <= t and conn.port in k["ports"]:
                                return k
                return None

        def run_job(self, job):
                start = now()
                retried = False
                while True:
                        conn = self.conn
                        reused = conn is not None and conn.uses > 0
                        sending = now()
                        try:
                                self.attempt(job)
                                self.stats.add(job.kind, "ok", now() - start)
                                return
                        except ConnectionRefusedError:
                                self.drop()
                                self.fail(job, "refused", "connection refused")
                                return
                        except socket.timeout:
                                self.drop()
                                self.fail(job, "timeout", "no progress in %.0f s" % SOCK_TIMEOUT)
                                return
                        except ConnLost as e:
                                conn = conn or self.conn
                                self.drop()
                                k = self.killed_by(conn, now()) if conn else None
                                if k and sending < k["t"]:
                                        self.stats.add(job.kind, "killed")
                                        with self.stats.lock:
                                                self.stats.killed.append((now() - self.stats.t0, job.kind, job.path,
                                                                          e.what, k["pid"]))
                                        return
                                if reused and not e.got_bytes and not retried:
                                        retried = True
                                        self.stats.add(job.kind, "retried")
                                        cause = "an idle connection of killed worker %d" % k["pid"] if k else "closed by gcorn"
                                        with self.stats.lock:
                                                self.stats.retries.append((now() - self.stats.t0, job.kind, e.what,
                                                                           cause))
                                        continue
                                self.fail(job, "lost", e.what)
                                return
                        except BadAnswer as e:
                                self.drop()
                                self.fail(job, e.what, e.detail)
                                return
                        except OSError as e:
                                self.drop()
                                self.fail(job, "oserror", repr(e))
                                return

        def fail(self, job, what, detail):
                self.stats.add(job.kind, "failed")
                with self.stats.lock:
                        self.stats.failures.append((now() - self.stats.t0, job.kind, job.path, what, detail))

        def run(self):
                while True:
                        job = self.jobs.get()
                        if job is None:
                                self.drop()
                                return
                        self.run_job(job)


# -- the run ----------------------------------------------------------------------------

def kill_one(srv, stats, rng, log):
        kids = srv.children()
        if not kids:
                log("no worker to kill")
                return
        victim = rng.choice(kids)
        t_stop = now()
        try:
                os.kill(victim, signal.SIGSTOP)
                deadline = now() + 2
                while proc_state(victim) not in ("T", None) and now() < deadline:
                        time.sleep(0.001)
                ports = client_ports_held_by(victim, srv.port)
        except (ProcessLookupError, FileNotFoundError):
                log("worker %d went away before the kill" % victim)
                return
        with stats.lock:
                stats.kills.append({"t": t_stop, "pid": victim, "ports": ports})
        os.kill(victim, signal.SIGKILL)
        log("killed worker %d holding %d connections" % (victim, len(ports)))


def sample(srv, samples, gens):
        pids = [srv.pid] + srv.children()
        if any(p not in gens for p in pids[1:]):
                gens.update(srv.generations())
        t = now()
        for p in pids:
                r = rss_kib(p)
                if r is not None:
                        samples.setdefault(p, []).append((t, r))


def flatness(first, last, slack_kib, slack_frac):
        """Flat when last - first stays within max(slack_kib, slack_frac * first)."""
        allowed = max(slack_kib, slack_frac * first)
        return last - first <= allowed, allowed


def pct(xs, q):
        if not xs:
                return float("nan")
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(q * len(xs)))]


def report(args, srv, stats, samples, gens, started, elapsed, exit_code, sent, lag_max):
        out = []
        p = out.append
        t0 = stats.t0
        p("gcorn soak report")
        p("=================")
        p("started %s UTC, %.1f minutes of traffic; %s" % (started.strftime("%Y-%m-%d %H:%M:%S"), elapsed / 60,
                                                           " ".join(srv.argv)))
        ver = subprocess.run([srv.gcorn, "--version"], capture_output=True, text=True).stdout.strip()
        p("%s; %d workers; %d req/s from %d client threads; HUP every %d s; a worker killed every %d s"
          % (ver, args.workers, args.rate, args.threads, args.hup_every, args.kill_every))
        p("")
        p("Requests by kind (service time: from sending the request to the last byte of the answer)")
        p("%-7s %8s %8s %7s %7s %8s %8s %8s %8s" % ("kind", "sent", "ok", "failed", "killed", "retried", "p50 ms",
                                                    "p99 ms", "max ms"))
        tot = collections.Counter()
        for k in KINDS:
                c = stats.count[k]
                tot.update(c)
                ts = stats.times[k]
                p("%-7s %8d %8d %7d %7d %8d %8.1f %8.1f %8.1f" % (k, sent[k], c["ok"], c["failed"], c["killed"],
                                                                 c["retried"], pct(ts, .5) * 1e3, pct(ts, .99) * 1e3,
                                                                 max(ts or [float("nan")]) * 1e3))
        p("%-7s %8d %8d %7d %7d %8d" % ("all", sum(sent.values()), tot["ok"], tot["failed"], tot["killed"],
                                        tot["retried"]))
        p("achieved %.1f req/s; the client ran at most %.1f s behind its schedule" % (sum(sent.values()) / elapsed,
                                                                                      lag_max))
        p("")
        p("FAILED REQUESTS: %d (expected 0)" % tot["failed"])
        for t, kind, path, what, detail in stats.failures[:40]:
                p("  t=%7.1fs %-6s %-40s %-8s %s" % (t, kind, path[:40], what, detail))
        if len(stats.failures) > 40:
                p("  ... and %d more" % (len(stats.failures) - 40))
        p("")
        p("Worker kills: %d; requests in flight on their connections that were lost: %d" % (len(stats.kills),
                                                                                          tot["killed"]))
        for k in stats.kills:
                lost = [x for x in stats.killed if x[4] == k["pid"]]
                p("  t=%7.1fs worker %d held %d connections; %d requests lost: %s" % (
                        k["t"] - t0, k["pid"], len(k["ports"]), len(lost),
                        ", ".join(sorted(collections.Counter(x[1] for x in lost).elements())) or "-"))
        p("HUPs: %d" % len(stats.hups))
        causes = collections.Counter(r[3] for r in stats.retries)
        p("Keep-alive retries (a reused connection closed before any answer byte; sent again): %d" % tot["retried"])
        for cause, n in sorted(causes.items()):
                p("  %d on %s" % (n, cause))
        for t, kind, what, cause in [r for r in stats.retries if not r[3].startswith("an idle")][:20]:
                near = min((abs(t - (h - t0)) for h in stats.hups), default=float("inf"))
                p("  t=%7.1fs %-6s %s (%.1f s from a HUP)" % (t, kind, what, near))
        p("")

        # Memory.
        master = samples.get(srv.pid, [])
        p("RSS (VmRSS, KiB), sampled every %d s" % args.sample_every)
        verdicts = []
        if master:
                first, last, mx = master[0][1], master[-1][1], max(r for _, r in master)
                ok, allowed = flatness(first, last, 1024, 0.02)
                verdicts.append(ok)
                p("master %d: first %d, last %d, max %d over %.0f s: %s (growth %+d, allowed %d)" % (
                        srv.pid, first, last, mx, master[-1][0] - master[0][0], "flat" if ok else "NOT FLAT",
                        last - first, allowed))
        by_gen = collections.defaultdict(list)
        for pid, ss in samples.items():
                if pid != srv.pid:
                        by_gen[gens.get(pid, 0)].append(pid)
        p("%-4s %-8s %8s %8s %8s %8s %8s %7s" % ("gen", "worker", "from s", "to s", "samples", "first", "last", "max"))
        gen_last = []
        worst = 0
        for g in sorted(by_gen):
                lasts = []
                for pid in sorted(by_gen[g], key=lambda x: samples[x][0][0]):
                        ss = samples[pid]
                        first, last, mx = ss[0][1], ss[-1][1], max(r for _, r in ss)
                        lasts.append(last)
                        # A worker's first sample may come before it served its first large
                        # requests: growth within a worker is measured from its second sample.
                        base = ss[1][1] if len(ss) > 2 else first
                        worst = max(worst, last - base)
                        p("%-4s %-8d %8.0f %8.0f %8d %8d %8d %7d%s" % (g or "?", pid, ss[0][0] - t0, ss[-1][0] - t0, len(ss),
                                                                      first, last, mx,
                                                                      "  (killed)" if any(k["pid"] == pid for k in
                                                                                          stats.kills) else ""))
                gen_last.append((g, max(lasts)))
        if gen_last:
                # The memory of a generation: its largest worker at its last sample. Generations
                # live a minute each, so the series over generations is the run's memory over time;
                # its first entry, the cold start, is left out when there are more.
                series = gen_last[1:] if len(gen_last) > 2 else gen_last
                first, last = series[0][1], series[-1][1]
                hi = max(v for _, v in series)
                ok, allowed = flatness(first, last, 2048, 0.05)
                verdicts.append(ok)
                p("workers by generation (largest worker at its last sample): first %d (gen %s), last %d (gen %s), "
                  "max %d: %s (growth %+d, allowed %d)" % (first, series[0][0], last, series[-1][0], hi,
                                                          "flat" if ok else "NOT FLAT", last - first, allowed))
                p("largest growth within one worker, from its second sample to its last: %+d KiB" % worst)
        p("")
        log = srv.read_log()
        levels = collections.Counter(re.findall(r"\] \[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\] ", log))
        killed_pids = {k["pid"] for k in stats.kills}
        unexpected = []
        for line in log.splitlines():
                m = re.search(r"\] \[(WARNING|ERROR|CRITICAL)\] (.*)", line)
                if not m:
                        continue
                msg = m.group(2)
                if msg.startswith("Error handling request GET /error?how=raise"):
                        continue
                k = re.match(r"Worker \(pid:(\d+)\) was sent SIGKILL!", msg)
                if k and int(k.group(1)) in killed_pids:
                        continue
                unexpected.append(line)
        p("gcorn log: %s; master exit status %s" % (", ".join("%s %d" % kv for kv in sorted(levels.items())),
                                                     exit_code))
        p("warnings and errors other than the intended ones (app errors, the kills): %d" % len(unexpected))
        for line in unexpected[:30]:
                p("  " + line[:300])
        p("")
        passed = tot["failed"] == 0 and all(verdicts) and not unexpected and exit_code == 0
        p("RESULT: %s" % ("PASS" if passed else "FAIL"))
        return "\n".join(out) + "\n", passed


def main():
        ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        ap.add_argument("--minutes", type=float, default=30)
        ap.add_argument("--rate", type=int, default=250, help="requests per second, all kinds together")
        ap.add_argument("--workers", type=int, default=2)
        ap.add_argument("--threads", type=int, default=48, help="client threads")
        ap.add_argument("--hup-every", type=int, default=60, metavar="S")
        ap.add_argument("--kill-every", type=int, default=300, metavar="S")
        ap.add_argument("--sample-every", type=int, default=5, metavar="S")
        ap.add_argument("--gcorn", help="the binary (default: $GCORN, build-rel/, build/, then PATH)")
        ap.add_argument("--out", help="directory for report.txt and gcorn.log (default: ./soak-DATE)")
        ap.add_argument("--seed", type=int, default=1)
        args = ap.parse_args()
        started = datetime.datetime.now(datetime.timezone.utc)
        out = args.out or "soak-" + started.strftime("%Y%m%d-%H%M%S")
        os.makedirs(out, exist_ok=True)

        def log(msg):
                print("[soak %7.1fs] %s" % (now() - stats.t0, msg), file=sys.stderr, flush=True)

        rng = random.Random(args.seed)
        blob = rng.randbytes((4 << 20) + 65536)
        srv = Server(find_gcorn(args.gcorn), args.workers, out)
        stats = Stats()
        log("gcorn %d on port %d; log in %s" % (srv.pid, srv.port, srv.log_path))
        jobs = queue.Queue()
        clients = [Client(i, srv.port, jobs, stats, blob, args.seed * 1000 + i) for i in range(args.threads)]
        for c in clients:
                c.start()
        samples, gens = {}, {}
        sent = collections.Counter()
        duration = args.minutes * 60
        t0 = stats.t0 = now()
        next_hup, next_kill, next_sample = t0 + args.hup_every, t0 + 30, t0
        step = 0.02
        due = 0.0
        lag_max = 0.0
        tick = t0
        try:
                while True:
                        t = now()
                        if t - t0 >= duration:
                                break
                        if t >= next_sample:
                                sample(srv, samples, gens)
                                next_sample += args.sample_every
                        if t >= next_hup:
                                os.kill(srv.pid, signal.SIGHUP)
                                stats.hups.append(t)
                                log("HUP")
                                next_hup += args.hup_every
                        if t >= next_kill:
                                kill_one(srv, stats, rng, log)
                                next_kill += args.kill_every
                        due += args.rate * (t - tick)
                        tick = t
                        while due >= 1:
                                kind = rng.choices(KINDS, WEIGHTS)[0]
                                jobs.put(Job(kind, rng, blob))
                                sent[kind] += 1
                                due -= 1
                        lag_max = max(lag_max, jobs.qsize() / args.rate)
                        if srv.proc.poll() is not None:
                                log("the master exited")
                                break
                        time.sleep(max(0.0, tick + step - now()))
                        if int(t - t0) // 60 != int(now() - t0) // 60:
                                c = collections.Counter()
                                for k in KINDS:
                                        c.update(stats.count[k])
                                log("%d sent, %d ok, %d failed, %d killed, %d retried" % (
                                        sum(sent.values()), c["ok"], c["failed"], c["killed"], c["retried"]))
        except KeyboardInterrupt:
                log("interrupted")
        elapsed = now() - t0
        for _ in clients:
                jobs.put(None)
        for c in clients:
                c.join(SOCK_TIMEOUT + 10)
        sample(srv, samples, gens)
        exit_code = srv.stop()
        text, passed = report(args, srv, stats, samples, gens, started, elapsed, exit_code, sent, lag_max)
        with open(os.path.join(out, "report.txt"), "w") as f:
                f.write(text)
        sys.stdout.write(text)
        return 0 if passed else 1


if __name__ == "__main__":
        sys.exit(main())
