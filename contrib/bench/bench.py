"""The benchmark driver behind run.sh (stdlib only, run with /usr/bin/python3).

For each mode (pinned, unpinned), run and workload it starts each server on 127.0.0.1 with
the same number of worker processes, waits until every worker is up, warms it up with wrk,
then drives it with wrk while sampling the memory of the server's whole process tree, and
reads the tree's CPU time before and after. Servers are stopped by PID: SIGTERM to the
process started, SIGKILL after a timeout, then SIGKILL to any of its descendants left.
Results: a markdown report (medians over the runs) and the raw runs as JSON.
"""
import argparse
import collections
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

import slowclients

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

# The servers, in the order their rows appear. gcorn-gevent and gcorn-asgi run only when the
# gcorn binary accepts `-k gevent` / `-k asgi` (asked with --check-config); otherwise their
# rows are skipped with a line saying why.
SERVERS = ["gcorn", "gcorn-noka", "gunicorn-sync", "gcorn-gthread", "gunicorn-gthread", "uwsgi",
           "responder", "gcorn-gevent", "gunicorn-gevent", "gcorn-asgi", "uvicorn",
           "gunicorn-uvicorn"]
SYNC_SERVERS = ["gcorn", "gunicorn-sync", "gunicorn-gthread", "uwsgi"]
GTHREAD_SERVERS = ["gcorn-gthread", "gunicorn-gthread"]
GEVENT_SERVERS = ["gcorn-gevent", "gunicorn-gevent"]
ASGI_SERVERS = ["gcorn-asgi", "uvicorn", "gunicorn-uvicorn"]
# Which gcorn row a peer's ratios are taken against, when that row is in the table
# (otherwise against "gcorn").
REFERENCE = {"gunicorn-gthread": "gcorn-gthread", "gunicorn-gevent": "gcorn-gevent",
             "uvicorn": "gcorn-asgi", "gunicorn-uvicorn": "gcorn-asgi"}
GCORN_KIND = {"gcorn-gevent": ("gevent", "app:app"), "gcorn-asgi": ("asgi", "asgi_app:app")}

# The app that /sleep stands for waits 10 ms (app.py's SLEEP_S): a server that runs K requests
# at a time can answer at most K / 10 ms of them a second.
SLEEP_S = 0.010

KINDS = ["sync", "gthread", "gevent", "asgi"]

# desc: the table's title ("{c}" is replaced with the connection count); path: what wrk asks
# for; extra: wrk's extra arguments; app: hello (app.py), flask, asgi (asgi_app.py) or fastapi
# (fastapi_app.py); idle: idle keep-alive connections held open beside wrk's; kinds: the
# --kinds that include it; servers: its rows, in order; connections: wrk's -c ("many" for
# --many-connections, None for --connections); ready: the path that must answer 200 before
# the run (default: path); sleep: the app waits SLEEP_S per request (ceiling columns).
Workload = collections.namedtuple(
        "Workload", "desc path extra app idle kinds servers connections ready sleep",
        defaults=(None, None, False))

WORKLOADS = {
        "hello": Workload("hello, keep-alive, {c} connections", "/", [], "hello", 0, ("sync",),
                          SYNC_SERVERS + ["responder"]),
        "close": Workload("hello, `Connection: close`, {c} connections", "/",
                          ["-H", "Connection: close"], "hello", 0, ("sync",),
                          SYNC_SERVERS + ["responder"]),
        "upload": Workload("POST of a 16 KiB body, read fully by the app", "/upload",
                           ["-s", os.path.join(HERE, "post.lua")], "hello", 0, ("sync",),
                           SYNC_SERVERS),
        "file": Workload("1 MiB download through wsgi.file_wrapper", "/file", [], "hello", 0,
                         ("sync",), SYNC_SERVERS),
        "json": Workload("~4 KiB JSON from a Flask view", "/json", [], "flask", 0, ("sync",),
                         SYNC_SERVERS),
        "idle": Workload("1,000 open keep-alive connections, {c} active (936 idle + wrk -c{c})", "/", [],
                         "hello", 936, ("sync",), SYNC_SERVERS + ["responder"]),
        # gcorn-noka (gcorn with --keep-alive 0, closing after every response as gunicorn sync
        # and uWSGI do) shows the other side of keep-alive where a slow endpoint is mixed in.
        "mixed": Workload("hello with 1 request in 200 to a 50 ms endpoint, keep-alive, {c} "
                          "connections (p99: fast requests behind slow ones)",
                          "/", ["-s", os.path.join(HERE, "mixed.lua")], "hello", 0,
                          ("sync", "gthread"),
                          ["gcorn", "gcorn-noka", "gunicorn-sync", "gcorn-gthread", "gunicorn-gthread",
                           "uwsgi"]),
        "mixed-paced": Workload("as mixed, at a fixed offered load: each of the {c} connections waits "
                                "20 ms between an answer and its next request (p99 at the same "
                                "request rate for every server)",
                                "/", ["-s", os.path.join(HERE, "mixed_paced.lua")], "hello", 0,
                                ("sync", "gthread"),
                                ["gcorn", "gcorn-noka", "gunicorn-sync", "gcorn-gthread",
                                 "gunicorn-gthread", "uwsgi"]),
        "gthread-hello": Workload("gthread, hello, keep-alive, {c} connections", "/", [], "hello", 0,
                                  ("gthread",), GTHREAD_SERVERS),
        "gthread-hello-many": Workload("gthread, hello, keep-alive, {c} connections", "/", [], "hello",
                                       0, ("gthread",), GTHREAD_SERVERS, "many"),
        "gthread-sleep": Workload("gthread, 10 ms `time.sleep` per request (I/O bound), keep-alive, "
                                  "{c} connections", "/sleep", [], "hello", 0, ("gthread",),
                                  GTHREAD_SERVERS, None, None, True),
        "gthread-sleep-many": Workload("gthread, 10 ms `time.sleep` per request (I/O bound), "
                                       "keep-alive, {c} connections", "/sleep", [], "hello", 0,
                                       ("gthread",), GTHREAD_SERVERS, "many", None, True),
        "gevent-hello": Workload("gevent, hello, keep-alive, {c} connections", "/", [], "hello", 0,
                                 ("gevent",), GEVENT_SERVERS),
        "gevent-hello-many": Workload("gevent, hello, keep-alive, {c} connections", "/", [], "hello",
                                      0, ("gevent",), GEVENT_SERVERS, "many"),
        "gevent-sleep": Workload("gevent, 10 ms `time.sleep` per request (I/O bound, patched by "
                                 "gevent), keep-alive, {c} connections", "/sleep", [], "hello", 0,
                                 ("gevent",), GEVENT_SERVERS, None, None, True),
        "gevent-sleep-many": Workload("gevent, 10 ms `time.sleep` per request (I/O bound, patched "
                                      "by gevent), keep-alive, {c} connections", "/sleep", [], "hello",
                                      0, ("gevent",), GEVENT_SERVERS, "many", None, True),
        "asgi-hello": Workload("ASGI, raw app (no framework), hello, keep-alive, {c} connections", "/",
                               [], "asgi", 0, ("asgi",), ASGI_SERVERS),
        "fastapi-hello": Workload("ASGI, FastAPI, hello (a JSON dict), keep-alive, {c} connections",
                                  "/", [], "fastapi", 0, ("asgi",), ASGI_SERVERS),
        "fastapi-echo": Workload("ASGI, FastAPI, POST of a 4 KiB JSON object echoed back, keep-alive, "
                                 "{c} connections", "/echo", ["-s", os.path.join(HERE, "echo.lua")],
                                 "fastapi", 0, ("asgi",), ASGI_SERVERS, None, "/"),
        "fastapi-stream": Workload("ASGI, FastAPI `StreamingResponse` of 64 chunks of 1 KiB, "
                                   "keep-alive, {c} connections", "/stream", [], "fastapi", 0,
                                   ("asgi",), ASGI_SERVERS),
}
# --smoke: the workloads of each kind, and the servers of the sync kind (only gcorn: the
# smoke run needs no peer installed; the other kinds' peers run when they are installed).
SMOKE_WORKLOADS = {"sync": ["hello"], "gthread": ["gthread-sleep"], "gevent": ["gevent-sleep"],
                   "asgi": ["asgi-hello", "fastapi-echo", "fastapi-stream"]}
SMOKE_SYNC_SERVERS = ["gcorn"]


def log(*a):
        print("bench:", *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- process tree and /proc

def _children_map():
        kids = {}
        for d in os.listdir("/proc"):
                if not d.isdigit():
                        continue
                try:
                        with open("/proc/%s/stat" % d, "rb") as f:
                                s = f.read()
                except OSError:
                        continue
                ppid = int(s[s.rindex(b")") + 2:].split()[1])
                kids.setdefault(ppid, []).append(int(d))
        return kids


def tree(pid):
        """pid and all its descendants."""
        kids = _children_map()
        out, todo = [], [pid]
        while todo:
                p = todo.pop()
                out.append(p)
                todo.extend(kids.get(p, []))
        return out


def cpu_ticks(pids):
        total = 0
        for p in pids:
                try:
                        with open("/proc/%d/stat" % p, "rb") as f:
                                s = f.read()
                except OSError:
                        continue
                fields = s[s.rindex(b")") + 2:].split()
                total += int(fields[11]) + int(fields[12])      # utime, stime
        return total


def machine_ticks():
        """CPU time the whole machine spent busy (user, nice, system, irq, softirq), in ticks."""
        with open("/proc/stat") as f:
                fields = f.readline().split()
        return sum(int(fields[i]) for i in (1, 2, 3, 6, 7))


def mem_kib(pids):
        """(sum of Rss, sum of Pss) in KiB over pids, from smaps_rollup."""
        rss = pss = 0
        for p in pids:
                try:
                        with open("/proc/%d/smaps_rollup" % p) as f:
                                for line in f:
                                        if line.startswith("Rss:"):
                                                rss += int(line.split()[1])
                                        elif line.startswith("Pss:"):
                                                pss += int(line.split()[1])
                except OSError:
                        continue
        return rss, pss


class MemSampler(threading.Thread):
        """Peak summed RSS/PSS of a process tree, sampled every `interval` seconds."""

        def __init__(self, pid, interval=0.1):
                super().__init__(daemon=True)
                self.pid, self.interval = pid, interval
                self.peak_rss = self.peak_pss = 0
                self._halt = threading.Event()

        def run(self):
                pids, rescan = tree(self.pid), time.monotonic() + 1.0
                while not self._halt.is_set():
                        if time.monotonic() > rescan:
                                pids, rescan = tree(self.pid), time.monotonic() + 1.0
                        rss, pss = mem_kib(pids)
                        self.peak_rss = max(self.peak_rss, rss)
                        self.peak_pss = max(self.peak_pss, pss)
                        self._halt.wait(self.interval)

        def stop(self):
                self._halt.set()
                self.join(5)


# ---------------------------------------------------------------- servers

def free_port():
        with socket.socket() as s:
                s.bind((HOST, 0))
                return s.getsockname()[1]


APP_MODULES = {"hello": ("app:app", "app.py"), "flask": ("flask_app:app", "flask_app.py"),
               "asgi": ("asgi_app:app", "asgi_app.py"), "fastapi": ("fastapi_app:app", "fastapi_app.py")}


def server_cmd(cfg, name, port, workers, app, keepalive=None):
        module, wsgi_file = APP_MODULES[app]
        bind = "%s:%d" % (HOST, port)
        if name.startswith("gcorn"):
                cmd = [cfg.gcorn, "-b", bind, "-w", str(workers), "--chdir", HERE]
                if name == "gcorn-noka":
                        cmd += ["--keep-alive", "0"]
                elif keepalive:
                        cmd += ["--keep-alive", str(keepalive)]
                if name == "gcorn-gthread":
                        cmd += ["-k", "gthread", "--threads", str(cfg.threads),
                                "--worker-connections", str(cfg.worker_connections)]
                elif name == "gcorn-gevent":
                        cmd += ["-k", "gevent", "--worker-connections", str(cfg.worker_connections)]
                elif name == "gcorn-asgi":
                        cmd += ["-k", "asgi"]
                return cmd + [module]
        if name.startswith("gunicorn"):
                cmd = [cfg.gunicorn, "-b", bind, "-w", str(workers), "--chdir", HERE]
                if name == "gunicorn-gthread":
                        cmd += ["-k", "gthread", "--threads", str(cfg.threads),
                                "--worker-connections", str(cfg.worker_connections)]
                elif name == "gunicorn-gevent":
                        cmd += ["-k", "gevent", "--worker-connections", str(cfg.worker_connections)]
                elif name == "gunicorn-uvicorn":
                        cmd += ["-k", "uvicorn.workers.UvicornWorker"]
                else:
                        cmd += ["-k", "sync"]
                if keepalive:
                        cmd += ["--keep-alive", str(keepalive)]
                return cmd + [module]
        if name == "uvicorn":
                # Debian's uvicorn with its fast paths (as `pip install uvicorn[standard]`);
                # no access log, as gcorn and gunicorn by default.
                return [cfg.python, "-m", "uvicorn", "--host", HOST, "--port", str(port),
                        "--workers", str(workers), "--loop", "uvloop", "--http", "httptools",
                        "--no-access-log", "--log-level", "warning", "--app-dir", HERE, module]
        if name == "uwsgi":
                return [cfg.uwsgi, "--plugin", "python3", "--http-socket", bind,
                        "--processes", str(workers), "--chdir", HERE,
                        "--wsgi-file", os.path.join(HERE, wsgi_file), "--callable", "app",
                        "--master", "--die-on-term", "--disable-logging", "--need-app",
                        "--listen", str(cfg.uwsgi_listen)]
        if name == "responder":
                return [cfg.responder, HOST, str(port), str(workers)]
        raise ValueError(name)


def _python_has(cfg, modules):
        """None when every module imports in cfg.python, else the last line of the error."""
        p = subprocess.run([cfg.python, "-c", "import " + ", ".join(modules)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        if p.returncode == 0:
                return None
        lines = p.stdout.strip().splitlines()
        return lines[-1] if lines else "exit status %d" % p.returncode


def unavailable(cfg, name):
        """Why the server cannot run here (None when it can); asked once per server."""
        cache = cfg.unavailable_cache
        if name in cache:
                return cache[name]
        why = None
        if name in GCORN_KIND:
                kind, module = GCORN_KIND[name]
                # The gcorn binary of this tree may not have the worker kind yet: ask it.
                cmd = [cfg.gcorn, "-k", kind, "--check-config", "--chdir", HERE, module]
                try:
                        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                           timeout=60, cwd=HERE)
                        if p.returncode != 0:
                                lines = p.stdout.strip().splitlines()
                                why = "this gcorn does not run `-k %s`" % kind
                                log("%s: `%s` answered: %s" % (name, " ".join(cmd[:4]),
                                                               lines[-1] if lines else "exit status %d" % p.returncode))
                except subprocess.TimeoutExpired:
                        why = "`gcorn -k %s --check-config` did not finish in 60 s" % kind
        elif name.startswith("gunicorn") and not os.access(cfg.gunicorn, os.X_OK):
                why = "%s is not installed" % cfg.gunicorn
        elif name == "uwsgi" and not os.access(cfg.uwsgi, os.X_OK):
                why = "%s is not installed" % cfg.uwsgi
        if why is None and name == "gunicorn-gevent":
                why = _python_has(cfg, ["gevent"])
        elif why is None and name == "gunicorn-uvicorn":
                why = _python_has(cfg, ["uvicorn.workers"])
        elif why is None and name == "uvicorn":
                why = _python_has(cfg, ["uvicorn", "uvloop", "httptools"])
        cache[name] = why
        return why


def app_unavailable(cfg, app):
        """Why the app cannot be imported here (None when it can)."""
        key = "app:" + app
        if key not in cfg.unavailable_cache:
                needs = {"flask": ["flask"], "fastapi": ["fastapi"]}.get(app)
                cfg.unavailable_cache[key] = _python_has(cfg, needs) if needs else None
        return cfg.unavailable_cache[key]


def http_get(port, path, timeout=2.0):
        """Status code of one GET, or None."""
        try:
                with socket.create_connection((HOST, port), timeout=timeout) as s:
                        s.sendall(("GET %s HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
                                   % path).encode())
                        data = b""
                        while b"\r\n" not in data:
                                chunk = s.recv(4096)
                                if not chunk:
                                        break
                                data += chunk
                m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
                return int(m.group(1)) if m else None
        except OSError:
                return None


class Server:
        def __init__(self, cfg, name, workers, app, path, pinned, keepalive=None):
                self.cfg, self.name, self.workers = cfg, name, workers
                self.port = free_port()
                cmd = server_cmd(cfg, name, self.port, workers, app, keepalive)
                if pinned:
                        cmd = ["taskset", "-c", cfg.server_cpus] + cmd
                self.logpath = os.path.join(cfg.tmp, "%s-%d.log" % (name, self.port))
                self.logf = open(self.logpath, "wb")
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.logf,
                                             stderr=subprocess.STDOUT, cwd=HERE,
                                             start_new_session=True)
                self.pid = self.proc.pid
                self.path = path

        def wait_ready(self, timeout=30.0):
                """Until the path answers 200 and every worker process exists."""
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                        if self.proc.poll() is not None:
                                break
                        if http_get(self.port, self.path) == 200 and \
                           len(tree(self.pid)) >= self.processes():
                                return True
                        time.sleep(0.1)
                return False

        def processes(self):
                """The processes of a server that is up: a master and its workers (uvicorn
                with one worker is a single process)."""
                if self.name == "uvicorn" and self.workers == 1:
                        return 1
                return self.workers + 1

        def stop(self, timeout=10.0):
                pids = tree(self.pid)
                if self.proc.poll() is None:
                        os.kill(self.pid, signal.SIGTERM)
                        try:
                                self.proc.wait(timeout)
                        except subprocess.TimeoutExpired:
                                log("%s did not stop on SIGTERM; SIGKILL" % self.name)
                                os.kill(self.pid, signal.SIGKILL)
                                self.proc.wait(5)
                # Descendants left behind (workers of a killed master): by PID, only ours.
                time.sleep(0.05)
                for p in pids[1:]:
                        try:
                                os.kill(p, signal.SIGKILL)
                        except ProcessLookupError:
                                pass
                self.logf.close()

        def log_tail(self, n=20):
                try:
                        with open(self.logpath, "rb") as f:
                                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
                except OSError:
                        return ""


# ---------------------------------------------------------------- wrk

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text):
        m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
        return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out):
        r = {"requests": 0, "rps": 0.0, "p50_ms": None, "p99_ms": None,
             "connect": 0, "read": 0, "write": 0, "timeout": 0, "non2xx": 0}
        m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
        if m:
                r["requests"] = int(m.group(1))
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if m:
                r["rps"] = float(m.group(1))
        for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
                m = re.search(r"^\s+%s%%\s+(\S+)" % pct, out, re.M)
                if m:
                        r[key] = _ms(m.group(1))
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        if m:
                r["connect"], r["read"], r["write"], r["timeout"] = map(int, m.groups())
        m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if m:
                r["non2xx"] = int(m.group(1))
        return r


def wrk(cfg, port, path, extra, duration, connections, pinned):
        cmd = ["wrk", "-t", str(cfg.wrk_threads), "-c", str(connections), "-d", "%gs" % duration,
               "--timeout", "5s", "--latency"] + extra + ["http://%s:%d%s" % (HOST, port, path)]
        if pinned:
                cmd = ["taskset", "-c", cfg.client_cpus] + cmd
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=duration + 60, text=True)
        return parse_wrk(p.stdout), p.stdout


# ---------------------------------------------------------------- one measurement

def start_idle(cfg, port, count, pinned):
        cmd = [sys.executable, os.path.join(HERE, "idle.py"), HOST, str(port), str(count),
               "--lifetime", str(cfg.duration + cfg.warmup + 120)]
        if pinned:
                cmd = ["taskset", "-c", cfg.client_cpus] + cmd
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = p.stdout.readline()
        try:
                info = json.loads(line)
        except ValueError:
                info = {"ready": 0, "answered": 0}
        return p, info


def stop_idle(p):
        if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        try:
                out, _ = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate()
        for line in out.splitlines():
                try:
                        return json.loads(line).get("open", 0)
                except ValueError:
                        pass
        return 0


def connections(cfg, workload):
        return cfg.many_connections if WORKLOADS[workload].connections == "many" else cfg.connections


def concurrency(cfg, server_name):
        """Requests a server runs at once, over all its workers (None: one per worker)."""
        if server_name.endswith("gthread"):
                return cfg.workers * cfg.threads
        if server_name.endswith("gevent"):
                return cfg.workers * cfg.worker_connections
        return None


def ceiling(cfg, server_name, conns):
        """The most req/s a server can answer when every request waits SLEEP_S: no more than
        its concurrency, nor than the client's connections, can wait at once."""
        k = concurrency(cfg, server_name) or cfg.workers
        return min(k, conns) / SLEEP_S


def measure(cfg, server_name, workload, pinned, duration):
        wl = WORKLOADS[workload]
        path, extra, app, idle = wl.path, wl.extra, wl.app, wl.idle
        conns = connections(cfg, workload)
        keepalive = cfg.idle_keepalive if idle else None
        srv = Server(cfg, server_name, cfg.workers, app, wl.ready or path, pinned, keepalive)
        result = {"server": server_name, "workload": workload, "pinned": pinned, "connections": conns}
        if wl.sleep:
                result["ceiling_rps"] = ceiling(cfg, server_name, conns)
        idle_proc = None
        try:
                if not srv.wait_ready():
                        log("%s did not start; log tail:\n%s" % (server_name, srv.log_tail()))
                        result["failed"] = "did not start"
                        return result
                if cfg.warmup > 0:
                        wrk(cfg, srv.port, path, extra, cfg.warmup, conns, pinned)
                        if wl.sleep:
                                # The warm-up's last requests are still queued in the server
                                # (up to one per connection, each 10 ms, K at a time): they would
                                # take the first part of the measured run.
                                time.sleep(conns / ceiling(cfg, server_name, conns) + 0.25)
                if idle:
                        idle_proc, info = start_idle(cfg, srv.port, idle, pinned)
                        result["idle_answered"] = info.get("answered", 0)
                pids = tree(srv.pid)
                result["processes"] = len(pids)
                sampler = MemSampler(srv.pid)
                t0 = cpu_ticks(pids)
                m0 = machine_ticks()
                sampler.start()
                r, out = wrk(cfg, srv.port, path, extra, duration, conns, pinned)
                sampler.stop()
                m1 = machine_ticks()
                t1 = cpu_ticks(tree(srv.pid) or pids)
                if idle_proc:
                        result["idle_open_at_end"] = stop_idle(idle_proc)
                        idle_proc = None
                result.update(r)
                result["peak_rss_kib"] = sampler.peak_rss
                result["peak_pss_kib"] = sampler.peak_pss
                result["cpu_s"] = (t1 - t0) / CLK_TCK
                result["cpu_us_per_req"] = ((t1 - t0) / CLK_TCK * 1e6 / r["requests"]
                                            if r["requests"] else None)
                result["machine_us_per_req"] = ((m1 - m0) / CLK_TCK * 1e6 / r["requests"]
                                                if r["requests"] else None)
                if not r["requests"]:
                        result["wrk_output"] = out
        finally:
                if idle_proc:
                        stop_idle(idle_proc)
                srv.stop()
        return result


# ---------------------------------------------------------------- extras: idle memory

def worker_pids(srv):
        return [p for p in tree(srv.pid) if p != srv.pid]


def idle_memory(cfg):
        """RSS/PSS of one idle worker (hello app), and gcorn's memory per idle connection."""
        out = {}
        for name in ("gcorn", "gunicorn-sync", "gunicorn-gthread", "uwsgi"):
                srv = Server(cfg, name, 1, "hello", "/", False, keepalive=300)
                try:
                        if not srv.wait_ready():
                                log("%s did not start for the idle-memory check" % name)
                                continue
                        for _ in range(20):
                                http_get(srv.port, "/")
                        time.sleep(0.5)
                        workers = worker_pids(srv)
                        w_rss, w_pss = mem_kib(workers)
                        m_rss, m_pss = mem_kib([srv.pid])
                        entry = {"worker_rss_kib": w_rss, "worker_pss_kib": w_pss,
                                 "master_rss_kib": m_rss, "master_pss_kib": m_pss}
                        if name in ("gcorn", "gunicorn-gthread"):
                                p, info = start_idle(cfg, srv.port, cfg.idle_conns, False)
                                time.sleep(1.0)
                                a_rss, a_pss = mem_kib(worker_pids(srv))
                                still = stop_idle(p)
                                entry.update({"idle_conns": info.get("answered", 0),
                                              "idle_conns_open": still,
                                              "with_conns_rss_kib": a_rss,
                                              "per_conn_bytes": (a_rss - w_rss) * 1024 /
                                              max(1, info.get("answered", 0))})
                        out[name] = entry
                finally:
                        srv.stop()
        return out


# ---------------------------------------------------------------- report

def machine_info(cfg):
        model = "?"
        with open("/proc/cpuinfo") as f:
                for line in f:
                        if line.startswith("model name"):
                                model = line.split(":", 1)[1].strip()
                                break

        def version(cmd):
                try:
                        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                           text=True, timeout=10)
                        return p.stdout.strip().splitlines()[0] if p.stdout.strip() else "?"
                except (OSError, subprocess.TimeoutExpired):
                        return "?"

        return {
                "cpu": model, "cores": os.cpu_count(), "kernel": platform.release(),
                "python": platform.python_version(),
                "gunicorn": version([cfg.gunicorn, "--version"]),
                "uwsgi": version([cfg.uwsgi, "--version"]),
                "wrk": version(["wrk", "-v"]).split(" Copyright")[0],
                "gcorn": version([cfg.gcorn, "--version"]),
                "python_packages": python_packages(cfg),
        }


def python_packages(cfg):
        """Versions of the Python peers and frameworks that import here."""
        code = ("import importlib, json\n"
                "out = {}\n"
                "for m in ('gevent', 'uvicorn', 'uvloop', 'httptools', 'fastapi', 'starlette'):\n"
                "    try:\n"
                "        out[m] = importlib.import_module(m).__version__\n"
                "    except Exception:\n"
                "        pass\n"
                "print(json.dumps(out))\n")
        try:
                p = subprocess.run([cfg.python, "-c", code], stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, text=True, timeout=60)
                return json.loads(p.stdout)
        except (OSError, ValueError, subprocess.TimeoutExpired):
                return {}


def med(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None


def cv(values):
        values = [v for v in values if v is not None]
        if len(values) < 2 or not statistics.mean(values):
                return None
        return statistics.stdev(values) / statistics.mean(values) * 100


def fmt(v, spec="%.0f", none="-"):
        return none if v is None else spec % v


def errors_text(rs):
        parts = []
        for key, short in (("connect", "c"), ("read", "r"), ("write", "w"), ("timeout", "t"),
                           ("non2xx", "non2xx ")):
                v = med([r.get(key, 0) for r in rs])
                if v:
                        parts.append("%s%d" % (short, v))
        return " ".join(parts) if parts else "0"


def summarize(results, cfg):
        """{(pinned, workload, server): summary dict}."""
        groups = {}
        for r in results:
                groups.setdefault((r["pinned"], r["workload"], r["server"]), []).append(r)
        out = {}
        for key, rs in groups.items():
                ok = [r for r in rs if "failed" not in r]
                out[key] = {
                        "runs": len(rs), "failed": len(rs) - len(ok),
                        "rps": med([r["rps"] for r in ok]),
                        "rps_cv": cv([r["rps"] for r in ok]),
                        "cpu_cv": cv([r["cpu_us_per_req"] for r in ok]),
                        "p50": med([r["p50_ms"] for r in ok]),
                        "p99": med([r["p99_ms"] for r in ok]),
                        "errors": errors_text(ok) if ok else "-",
                        "rss": med([r["peak_rss_kib"] / 1024 for r in ok]),
                        "pss": med([r["peak_pss_kib"] / 1024 for r in ok]),
                        "cpu": med([r["cpu_us_per_req"] for r in ok]),
                        "machine": med([r.get("machine_us_per_req") for r in ok]),
                        "idle_open": med([r.get("idle_open_at_end") for r in ok]),
                        "ceiling": med([r.get("ceiling_rps") for r in rs]),
                }
        return out


def title_of(cfg, workload):
        return WORKLOADS[workload].desc.replace("{c}", str(connections(cfg, workload)))


def report(cfg, machine, results, extras, elapsed, skipped_list=()):
        s = summarize(results, cfg)
        skipped = {(x["workload"], x["server"]): x["reason"] for x in skipped_list}
        lines = ["# gcorn benchmark results", ""]
        lines += ["Command: `%s`" % cfg.command_line, "",
                  "Machine: %s, %d cores; Linux %s; Python %s; %s; %s; %s; %s%s." % (
                          machine["cpu"], machine["cores"], machine["kernel"], machine["python"],
                          machine["gcorn"], machine["gunicorn"], machine["uwsgi"], machine["wrk"],
                          "".join("; %s %s" % (k, v) for k, v in sorted(machine.get("python_packages", {}).items()))),
                  "",
                  "Settings: %d worker processes per server (gthread, gcorn's and gunicorn's: %d threads "
                  "each; gthread and gevent: --worker-connections %d; uvicorn: --workers %d); "
                  "wrk -t%d -c%d (-c%d where the title says so), %g s per run after a %g s warm-up; "
                  "%d run(s), medians shown; total time %s min." % (
                          cfg.workers, cfg.threads, cfg.worker_connections, cfg.workers, cfg.wrk_threads,
                          cfg.connections, cfg.many_connections, cfg.duration, cfg.warmup, cfg.runs,
                          fmt(elapsed and elapsed / 60, "%.0f", "?")),
                  "",
                  "Columns: req/s and latency from wrk; errors = wrk socket errors "
                  "(c=connect r=read w=write t=timeout) and non-2xx responses, medians over runs; "
                  "RSS = peak of the summed VmRSS of every process of the server (master + workers), "
                  "sampled every 100 ms (shared pages count once per process), PSS the same with "
                  "shared pages divided among processes; CPU = utime+stime of the server's process "
                  "tree during the wrk run / requests completed; machine CPU = all the busy CPU time "
                  "of the machine (server, wrk, kernel, softirq) during the run / requests "
                  "completed, which counts work the kernel does on the client's side for the "
                  "server, such as sending queued data when the client's ACK arrives; "
                  "`gcorn/peer` = gcorn req/s over the "
                  "peer's (>1: gcorn faster); `CPU peer/gcorn` = the peer's CPU per request over "
                  "gcorn's (>1: gcorn cheaper); a peer is compared with the gcorn row of its own "
                  "kind when the table has one (gunicorn gthread with gcorn-gthread, gunicorn gevent "
                  "with gcorn-gevent, uvicorn and gunicorn-uvicorn with gcorn-asgi), else with gcorn "
                  "(sync); CV = coefficient of variation of req/s over runs; in the 10 ms sleep "
                  "tables, ceiling = min(requests the server runs at once, wrk's connections) / 10 ms "
                  "(workers × threads for gthread, workers × worker connections for gevent), and "
                  "`% of ceiling` = req/s over it.",
                  ""]
        modes = sorted({r["pinned"] for r in results}, reverse=True)
        for pinned in modes:
                title = ("pinned: servers on CPU %s, wrk and clients on CPU %s" %
                         (cfg.server_cpus, cfg.client_cpus)) if pinned else "unpinned"
                lines += ["## %s" % title, ""]
                if pinned:
                        lines += ["All %d workers of each server share CPU %s, so the server has one "
                                  "core and the load generator the other." % (cfg.workers,
                                                                               cfg.server_cpus), ""]
                for w in cfg.workloads:
                        wl = WORKLOADS[w]
                        servers = [n for n in wl.servers if (pinned, w, n) in s or (w, n) in skipped]
                        if not any((pinned, w, n) in s for n in servers):
                                continue
                        lines += ["### %s: %s" % (w, title_of(cfg, w)), ""]
                        hdr = ["server", "req/s", "p50 ms", "p99 ms", "errors", "RSS MiB",
                               "PSS MiB", "CPU µs/req", "machine CPU µs/req", "gcorn/peer req/s",
                               "CPU peer/gcorn", "CV %"]
                        if wl.idle:
                                hdr.append("idle conns still open")
                        if wl.sleep:
                                hdr += ["ceiling req/s", "% of ceiling"]
                        lines.append("| " + " | ".join(hdr) + " |")
                        lines.append("|" + "---|" * len(hdr))
                        for n in servers:
                                if (w, n) in skipped:
                                        lines.append("| %s | not run: %s |" % (n, skipped[(w, n)]) +
                                                     " |" * (len(hdr) - 2))
                                        continue
                                x = s[(pinned, w, n)]
                                if x["rps"] is None:
                                        lines.append("| %s | failed (%d of %d runs) |" %
                                                     (n, x["failed"], x["runs"]) + " |" * (len(hdr) - 2))
                                        continue
                                ref = REFERENCE.get(n)
                                if ref is None or (pinned, w, ref) not in s:
                                        ref = "gcorn"
                                g = s.get((pinned, w, ref))
                                ratio = cpu_ratio = "-"
                                # A gcorn row that peers of its kind are compared with is not
                                # itself compared.
                                compared = n != ref and n not in REFERENCE.values()
                                if compared and g and g["rps"] and x["rps"]:
                                        ratio = "%.2f" % (g["rps"] / x["rps"])
                                if compared and g and g["cpu"] and x["cpu"]:
                                        cpu_ratio = "%.2f" % (x["cpu"] / g["cpu"])
                                row = [n, fmt(x["rps"]), fmt(x["p50"], "%.2f"), fmt(x["p99"], "%.2f"),
                                       x["errors"], fmt(x["rss"], "%.1f"), fmt(x["pss"], "%.1f"),
                                       fmt(x["cpu"], "%.1f"), fmt(x["machine"], "%.1f"), ratio, cpu_ratio,
                                       fmt(x["rps_cv"], "%.1f")]
                                if wl.idle:
                                        row.append(fmt(x["idle_open"]))
                                if wl.sleep:
                                        row += [fmt(x["ceiling"]),
                                                fmt(x["ceiling"] and x["rps"] * 100 / x["ceiling"], "%.1f")]
                                lines.append("| " + " | ".join(row) + " |")
                        lines.append("")
        if len(modes) == 2 and cfg.runs > 1:
                lines += ["## Stability (pinned vs unpinned)", ""]
                for pinned in modes:
                        cvs = [x["rps_cv"] for (p, _, _), x in s.items() if p == pinned and x["rps_cv"] is not None]
                        ccvs = [x["cpu_cv"] for (p, _, _), x in s.items() if p == pinned and x["cpu_cv"] is not None]
                        if cvs and ccvs:
                                lines.append("- %s: CV over runs across %d server×workload cells: req/s median "
                                             "%.1f%% (max %.1f%%); CPU µs/req median %.1f%% (max %.1f%%)" % (
                                                     "pinned" if pinned else "unpinned", len(cvs),
                                                     statistics.median(cvs), max(cvs),
                                                     statistics.median(ccvs), max(ccvs)))
                lines.append("")
        if extras:
                lines += ["## Idle memory (1 worker, hello app, after 20 requests)", "",
                          "| server | worker RSS MiB | worker PSS MiB | master RSS MiB | "
                          "RSS with %d idle conns MiB | bytes per idle conn |" % cfg.idle_conns,
                          "|---|---|---|---|---|---|"]
                for n, e in extras.items():
                        lines.append("| %s | %.1f | %.1f | %.1f | %s | %s |" % (
                                n, e["worker_rss_kib"] / 1024, e["worker_pss_kib"] / 1024,
                                e["master_rss_kib"] / 1024,
                                fmt(e.get("with_conns_rss_kib", None) and e["with_conns_rss_kib"] / 1024, "%.1f"),
                                ("%.0f (%d answered, %d still open)" % (e["per_conn_bytes"], e["idle_conns"],
                                                                         e["idle_conns_open"])
                                 if "per_conn_bytes" in e else "-")))
                lines += ["", "Per-connection memory is the worker's RSS delta divided by the "
                          "connections answered; kernel socket buffers are not in RSS.", ""]
        notes = ["## Notes", "",
                 "- uwSGI's `--http-socket` closes each connection after the response without "
                 "sending `Connection: close`, so wrk counts a read error for each such close and "
                 "reconnects: its `r` errors are not failed responses.",
                 "- gunicorn `sync` answers every request with `Connection: close` (no keep-alive), "
                 "so the keep-alive workloads reconnect for each request there too.",
                 "- `responder` is the no-Python C reference (contrib/bench/responder.c); it runs "
                 "only the hello workloads.",
                 "- `gcorn-noka` is gcorn with `--keep-alive 0`: it closes the connection after "
                 "every response, as gunicorn sync and uWSGI's `--http-socket` do, so every "
                 "request can go to an idle worker. It runs only the `mixed` workloads.",
                 "- In the `idle` workload gcorn and gunicorn get `--keep-alive %d` so the idle "
                 "connections outlive the run; the last column says how many of the %d were "
                 "still open when wrk finished." % (cfg.idle_keepalive, WORKLOADS["idle"].idle),
                 "- `gcorn-gthread` is `gcorn -k gthread --threads %d`, against `gunicorn -k gthread "
                 "--threads %d`; `gcorn-gevent` and `gunicorn-gevent` are `-k gevent "
                 "--worker-connections %d` (gunicorn's with Debian's python3-gevent)." % (
                         cfg.threads, cfg.threads, cfg.worker_connections),
                 "- `gcorn-asgi` is `gcorn -k asgi`; `uvicorn` is Debian's uvicorn with httptools and "
                 "uvloop (`python3 -m uvicorn --workers %d --loop uvloop --http httptools "
                 "--no-access-log`: a supervisor process and %d workers); `gunicorn-uvicorn` is "
                 "`gunicorn -k uvicorn.workers.UvicornWorker` (uvicorn picks httptools and uvloop; "
                 "its access log records go to gunicorn's access logger, which writes nothing by "
                 "default)." % (cfg.workers, cfg.workers),
                 "- A row `not run` names a server this machine cannot run: a gcorn built before its "
                 "worker kind (`-k gevent`, `-k asgi`; asked with `--check-config`), or a peer not "
                 "installed.",
                 ""]
        lines += notes
        return "\n".join(lines)


def slow_report(cfg, machine, slow, elapsed):
        lines = ["# gcorn benchmark results: slow clients", "",
                 "Command: `%s`" % cfg.command_line, "",
                 "Machine: %s, %d cores; Linux %s; Python %s; %s; %s; total time %s min." % (
                         machine["cpu"], machine["cores"], machine["kernel"], machine["python"],
                         machine["gcorn"], machine["gunicorn"], fmt(elapsed and elapsed / 60, "%.0f", "?")),
                 ""]
        return "\n".join(lines) + "\n" + slowclients.report(cfg, slow)


# ---------------------------------------------------------------- main

def main():
        ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        ap.add_argument("--gcorn", required=True)
        ap.add_argument("--responder", required=True)
        ap.add_argument("--gunicorn", default="/usr/bin/gunicorn")
        ap.add_argument("--uwsgi", default="/usr/bin/uwsgi")
        ap.add_argument("--tmp", required=True)
        ap.add_argument("--workers", type=int, default=2)
        ap.add_argument("--python", default="/usr/bin/python3", help="the Python of uvicorn and the checks")
        ap.add_argument("--threads", type=int, default=4, help="threads per gthread worker (gcorn and gunicorn)")
        ap.add_argument("--worker-connections", type=int, default=1000,
                        help="connections per gthread or gevent worker (gcorn and gunicorn)")
        ap.add_argument("--many-connections", type=int, default=500,
                        help="wrk's connections in the *-many workloads")
        ap.add_argument("--wrk-threads", type=int, default=2)
        ap.add_argument("--connections", type=int, default=64)
        ap.add_argument("--duration", type=float, default=10.0)
        ap.add_argument("--warmup", type=float, default=2.0)
        ap.add_argument("--runs", type=int, default=3)
        ap.add_argument("--modes", default="pinned,unpinned")
        ap.add_argument("--kinds", default=",".join(KINDS),
                        help="worker kinds whose workloads run by default: %s" % ", ".join(KINDS))
        ap.add_argument("--servers", default="", help="only these servers (default: all)")
        ap.add_argument("--workloads", default="", help="only these workloads (default: those of --kinds)")
        ap.add_argument("--server-cpus", default="0")
        ap.add_argument("--client-cpus", default="1")
        ap.add_argument("--idle-conns", type=int, default=1000)
        ap.add_argument("--idle-keepalive", type=int, default=120)
        ap.add_argument("--no-extras", action="store_true", help="skip the idle-memory checks")
        ap.add_argument("--quick", action="store_true", help="2 s runs, 1 s warm-up, 1 run")
        ap.add_argument("--smoke", action="store_true",
                        help="1 s, 1 run, unpinned, a few workloads of each kind (sync: gcorn only; "
                        "the other kinds: their peers too, when installed); exit 1 on any error")
        slowclients.add_arguments(ap)
        ap.add_argument("--out", default="", help="write the markdown report here")
        ap.add_argument("--json", default="", help="write the raw runs here")
        ap.add_argument("--command-line", default="contrib/bench/run.sh")
        ap.add_argument("--from-json", default="",
                        help="only render the report of a previous --json file (same options)")
        cfg = ap.parse_args()
        if cfg.quick:
                cfg.duration, cfg.warmup, cfg.runs = 2.0, 1.0, 1
        kinds = [x for x in cfg.kinds.split(",") if x]
        for x in kinds:
                if x not in KINDS:
                        ap.error("unknown kind %r (known: %s)" % (x, ", ".join(KINDS)))
        if not kinds:
                ap.error("--kinds needs at least one of %s" % ", ".join(KINDS))
        cfg.partial = bool(cfg.servers or cfg.workloads or set(kinds) != set(KINDS))
        servers = [x for x in cfg.servers.split(",") if x]
        workloads = [x for x in cfg.workloads.split(",") if x]
        for x in servers:
                if x not in SERVERS:
                        ap.error("unknown server %r (known: %s)" % (x, ", ".join(SERVERS)))
        for x in workloads:
                if x not in WORKLOADS:
                        ap.error("unknown workload %r (known: %s)" % (x, ", ".join(WORKLOADS)))
        if cfg.smoke:
                cfg.duration, cfg.warmup, cfg.runs = 1.0, 0.0, 1
                cfg.modes, cfg.no_extras = "unpinned", True
                if not workloads:
                        workloads = [w for k in kinds for w in SMOKE_WORKLOADS[k]]
        if not workloads:
                workloads = [w for w in WORKLOADS if set(WORKLOADS[w].kinds) & set(kinds)]
        # The sync kind's smoke run needs no peer: only gcorn, unless --servers says otherwise.
        cfg.smoke_sync_only = cfg.smoke and not servers
        cfg.servers = servers or list(SERVERS)
        cfg.workloads = workloads
        cfg.kinds = kinds
        cfg.unavailable_cache = {}
        slowclients.check_arguments(ap, cfg)
        modes = [m for m in cfg.modes.split(",") if m]
        if any(m not in ("pinned", "unpinned") for m in modes):
                ap.error("--modes takes pinned and/or unpinned")
        # The soft limit is raised by run.sh; 1,000 connections need a little more than 1,024.
        try:
                import resource
                soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                want = min(hard, 65536)
                if soft < want:
                        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
                pass
        with open("/proc/sys/net/core/somaxconn") as f:
                cfg.uwsgi_listen = min(1024, int(f.read()))

        if cfg.from_json:
                with open(cfg.from_json) as f:
                        saved = json.load(f)
                if saved.get("slowclients_only"):
                        print(slow_report(cfg, saved["machine"], saved["slow"], saved.get("elapsed")))
                        return 0
                text = report(cfg, saved["machine"], saved["results"], saved["extras"],
                              saved.get("elapsed"), saved.get("skipped", []))
                if saved.get("slow"):
                        text += "\n" + slowclients.report(cfg, saved["slow"])
                print(text)
                return 0
        machine = machine_info(cfg)
        log("machine: %s, %d cores" % (machine["cpu"], machine["cores"]))
        started = time.monotonic()
        if cfg.slowclients:
                slow = slowclients.run(cfg)
                elapsed = time.monotonic() - started
                if cfg.json:
                        with open(cfg.json, "w") as f:
                                json.dump({"machine": machine, "slow": slow, "slowclients_only": True,
                                           "elapsed": elapsed}, f, indent=1)
                text = slow_report(cfg, machine, slow, elapsed)
                if cfg.out:
                        with open(cfg.out, "w") as f:
                                f.write(text + "\n")
                print(text)
                return 0
        results = []
        # What cannot run here is said once, before the runs, and in the report.
        skipped = []
        cells = []
        for w in cfg.workloads:
                why_app = app_unavailable(cfg, WORKLOADS[w].app)
                for n in WORKLOADS[w].servers:
                        if n not in cfg.servers:
                                continue
                        if cfg.smoke_sync_only and w in SMOKE_WORKLOADS["sync"] and n not in SMOKE_SYNC_SERVERS:
                                continue
                        why = why_app and ("the app does not import: %s" % why_app) or unavailable(cfg, n)
                        if why:
                                log("%s: %s not run: %s" % (w, n, why))
                                skipped.append({"workload": w, "server": n, "reason": why})
                        else:
                                cells.append((w, n))
        if not cells and not skipped:
                log("nothing to run: no server of --servers (%s) runs the workloads %s" % (
                        ",".join(cfg.servers), ",".join(cfg.workloads)))
                return 2
        for run in range(cfg.runs):
                for mode in modes:
                        pinned = mode == "pinned"
                        if pinned:
                                os.sched_setaffinity(0, {int(c) for c in cfg.client_cpus.split(",")})
                        else:
                                os.sched_setaffinity(0, set(range(os.cpu_count())))
                        for w, n in cells:
                                r = measure(cfg, n, w, pinned, cfg.duration)
                                r["run"] = run
                                results.append(r)
                                log("run %d %-8s %-18s %-16s %s" % (
                                        run + 1, mode, w, n,
                                        r.get("failed") or "%.0f req/s p99 %s ms err %s cpu %s us/req rss %.1f MiB" % (
                                                r["rps"], fmt(r["p99_ms"], "%.2f"),
                                                errors_text([r]), fmt(r["cpu_us_per_req"], "%.1f"),
                                                r["peak_rss_kib"] / 1024)))
        os.sched_setaffinity(0, set(range(os.cpu_count())))
        # The idle-memory checks go with the sync kind's own workloads.
        sync_only = any(WORKLOADS[w].kinds == ("sync",) for w in cfg.workloads)
        extras = {} if cfg.no_extras or not sync_only else idle_memory(cfg)
        # The slow-client attacks belong to a full run (about 7 minutes more), not to a
        # quick look or a chosen subset.
        slow = []
        if not (cfg.quick or cfg.smoke or cfg.no_slowclients or cfg.partial):
                slow = slowclients.run(cfg)
        elapsed = time.monotonic() - started
        text = report(cfg, machine, results, extras, elapsed, skipped)
        if slow:
                text += "\n" + slowclients.report(cfg, slow)
        if cfg.json:
                with open(cfg.json, "w") as f:
                        json.dump({"machine": machine, "results": results, "extras": extras,
                                   "slow": slow, "elapsed": elapsed, "skipped": skipped}, f, indent=1)
        if cfg.out:
                with open(cfg.out, "w") as f:
                        f.write(text + "\n")
        print(text)
        if cfg.smoke:
                ok = [r for r in results if "failed" not in r and r["requests"] > 0 and
                      not any(r[k] for k in ("connect", "read", "write", "timeout", "non2xx"))]
                # Rows that cannot run here (a worker kind this gcorn lacks, a peer not
                # installed) are skipped with a line; everything that ran must be clean.
                if not results and not skipped:
                        return 1
                return 0 if len(ok) == len(results) else 1
        return 0


if __name__ == "__main__":
        sys.exit(main())
