"""The benchmark driver behind run.sh (stdlib only, run with /usr/bin/python3).

For each mode (pinned, unpinned), run and workload it starts each server on 127.0.0.1 with
the same number of worker processes, waits until every worker is up, warms it up with wrk,
then drives it with wrk while sampling the memory of the server's whole process tree, and
reads the tree's CPU time before and after. Servers are stopped by PID: SIGTERM to the
process started, SIGKILL after a timeout, then SIGKILL to any of its descendants left.
Results: a markdown report (medians over the runs) and the raw runs as JSON.
"""
import argparse
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

SERVERS = ["gcorn", "gcorn-noka", "gunicorn-sync", "gunicorn-gthread", "uwsgi", "responder"]

# name: (description, path, wrk extra args, app kind, idle connections)
WORKLOADS = {
        "hello": ("hello, keep-alive, 64 connections", "/", [], "hello", 0),
        "close": ("hello, `Connection: close`, 64 connections", "/",
                  ["-H", "Connection: close"], "hello", 0),
        "upload": ("POST of a 16 KiB body, read fully by the app", "/upload",
                   ["-s", os.path.join(HERE, "post.lua")], "hello", 0),
        "file": ("1 MiB download through wsgi.file_wrapper", "/file", [], "hello", 0),
        "json": ("~4 KiB JSON from a Flask view", "/json", [], "flask", 0),
        "idle": ("1,000 open keep-alive connections, 64 active (936 idle + wrk -c64)", "/", [],
                 "hello", 936),
        "mixed": ("hello with 1 request in 200 to a 50 ms endpoint (p99: fast requests behind slow ones)",
                  "/", ["-s", os.path.join(HERE, "mixed.lua")], "hello", 0),
}
# Servers that run only some workloads: the C responder only answers "Hello, World!";
# gcorn-noka (gcorn with --keep-alive 0, closing after every response as gunicorn sync and
# uWSGI do) shows the other side of keep-alive where a slow endpoint is mixed in.
ONLY_WORKLOADS = {"responder": {"hello", "close", "idle"}, "gcorn-noka": {"mixed"}}


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


def server_cmd(cfg, name, port, workers, app, keepalive=None):
        module = "app:app" if app == "hello" else "flask_app:app"
        wsgi_file = "app.py" if app == "hello" else "flask_app.py"
        bind = "%s:%d" % (HOST, port)
        if name in ("gcorn", "gcorn-noka"):
                cmd = [cfg.gcorn, "-b", bind, "-w", str(workers), "--chdir", HERE]
                if name == "gcorn-noka":
                        cmd += ["--keep-alive", "0"]
                elif keepalive:
                        cmd += ["--keep-alive", str(keepalive)]
                return cmd + [module]
        if name.startswith("gunicorn"):
                cmd = [cfg.gunicorn, "-b", bind, "-w", str(workers), "--chdir", HERE]
                if name == "gunicorn-gthread":
                        cmd += ["-k", "gthread", "--threads", str(cfg.threads)]
                else:
                        cmd += ["-k", "sync"]
                if keepalive:
                        cmd += ["--keep-alive", str(keepalive)]
                return cmd + [module]
        if name == "uwsgi":
                return [cfg.uwsgi, "--plugin", "python3", "--http-socket", bind,
                        "--processes", str(workers), "--chdir", HERE,
                        "--wsgi-file", os.path.join(HERE, wsgi_file), "--callable", "app",
                        "--master", "--die-on-term", "--disable-logging", "--need-app",
                        "--listen", str(cfg.uwsgi_listen)]
        if name == "responder":
                return [cfg.responder, HOST, str(port), str(workers)]
        raise ValueError(name)


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
                           len(tree(self.pid)) >= self.workers + 1:
                                return True
                        time.sleep(0.1)
                return False

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


def measure(cfg, server_name, workload, pinned, duration):
        desc, path, extra, app, idle = WORKLOADS[workload]
        keepalive = cfg.idle_keepalive if idle else None
        srv = Server(cfg, server_name, cfg.workers, app, path, pinned, keepalive)
        result = {"server": server_name, "workload": workload, "pinned": pinned}
        idle_proc = None
        try:
                if not srv.wait_ready():
                        log("%s did not start; log tail:\n%s" % (server_name, srv.log_tail()))
                        result["failed"] = "did not start"
                        return result
                if cfg.warmup > 0:
                        wrk(cfg, srv.port, path, extra, cfg.warmup, cfg.connections, pinned)
                if idle:
                        idle_proc, info = start_idle(cfg, srv.port, idle, pinned)
                        result["idle_answered"] = info.get("answered", 0)
                pids = tree(srv.pid)
                result["processes"] = len(pids)
                sampler = MemSampler(srv.pid)
                t0 = cpu_ticks(pids)
                m0 = machine_ticks()
                sampler.start()
                r, out = wrk(cfg, srv.port, path, extra, duration, cfg.connections, pinned)
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
        }


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
                }
        return out


def report(cfg, machine, results, extras, elapsed):
        s = summarize(results, cfg)
        lines = ["# gcorn benchmark results", ""]
        lines += ["Command: `%s`" % cfg.command_line, "",
                  "Machine: %s, %d cores; Linux %s; Python %s; %s; %s; %s; %s." % (
                          machine["cpu"], machine["cores"], machine["kernel"], machine["python"],
                          machine["gcorn"], machine["gunicorn"], machine["uwsgi"], machine["wrk"]),
                  "",
                  "Settings: %d worker processes per server (gunicorn gthread: %d threads each); "
                  "wrk -t%d -c%d, %g s per run after a %g s warm-up; %d run(s), medians shown; "
                  "total time %s min." % (cfg.workers, cfg.threads, cfg.wrk_threads,
                                          cfg.connections, cfg.duration, cfg.warmup, cfg.runs,
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
                  "gcorn's (>1: gcorn cheaper); CV = coefficient of variation of req/s over runs.",
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
                        servers = [n for n in cfg.servers if (pinned, w, n) in s]
                        if not servers:
                                continue
                        lines += ["### %s: %s" % (w, WORKLOADS[w][0]), ""]
                        hdr = ["server", "req/s", "p50 ms", "p99 ms", "errors", "RSS MiB",
                               "PSS MiB", "CPU µs/req", "machine CPU µs/req", "gcorn/peer req/s",
                               "CPU peer/gcorn", "CV %"]
                        if WORKLOADS[w][4]:
                                hdr.append("idle conns still open")
                        lines.append("| " + " | ".join(hdr) + " |")
                        lines.append("|" + "---|" * len(hdr))
                        g = s.get((pinned, w, "gcorn"))
                        for n in servers:
                                x = s[(pinned, w, n)]
                                if x["rps"] is None:
                                        lines.append("| %s | failed (%d of %d runs) |" %
                                                     (n, x["failed"], x["runs"]) + " |" * (len(hdr) - 2))
                                        continue
                                ratio = cpu_ratio = "-"
                                if n != "gcorn" and g and g["rps"] and x["rps"]:
                                        ratio = "%.2f" % (g["rps"] / x["rps"])
                                if n != "gcorn" and g and g["cpu"] and x["cpu"]:
                                        cpu_ratio = "%.2f" % (x["cpu"] / g["cpu"])
                                row = [n, fmt(x["rps"]), fmt(x["p50"], "%.2f"), fmt(x["p99"], "%.2f"),
                                       x["errors"], fmt(x["rss"], "%.1f"), fmt(x["pss"], "%.1f"),
                                       fmt(x["cpu"], "%.1f"), fmt(x["machine"], "%.1f"), ratio, cpu_ratio,
                                       fmt(x["rps_cv"], "%.1f")]
                                if WORKLOADS[w][4]:
                                        row.append(fmt(x["idle_open"]))
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
                 "request can go to an idle worker. It runs only the `mixed` workload.",
                 "- In the `idle` workload gcorn and gunicorn get `--keep-alive %d` so the idle "
                 "connections outlive the run; the last column says how many of the %d were "
                 "still open when wrk finished." % (cfg.idle_keepalive, WORKLOADS["idle"][4]),
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
        ap.add_argument("--threads", type=int, default=4, help="gunicorn gthread threads")
        ap.add_argument("--wrk-threads", type=int, default=2)
        ap.add_argument("--connections", type=int, default=64)
        ap.add_argument("--duration", type=float, default=10.0)
        ap.add_argument("--warmup", type=float, default=2.0)
        ap.add_argument("--runs", type=int, default=3)
        ap.add_argument("--modes", default="pinned,unpinned")
        ap.add_argument("--servers", default=",".join(SERVERS))
        ap.add_argument("--workloads", default=",".join(WORKLOADS))
        ap.add_argument("--server-cpus", default="0")
        ap.add_argument("--client-cpus", default="1")
        ap.add_argument("--idle-conns", type=int, default=1000)
        ap.add_argument("--idle-keepalive", type=int, default=120)
        ap.add_argument("--no-extras", action="store_true", help="skip the idle-memory checks")
        ap.add_argument("--quick", action="store_true", help="2 s runs, 1 s warm-up, 1 run")
        ap.add_argument("--smoke", action="store_true",
                        help="gcorn, hello workload, 1 s, 1 run; exit 1 on any error")
        slowclients.add_arguments(ap)
        ap.add_argument("--out", default="", help="write the markdown report here")
        ap.add_argument("--json", default="", help="write the raw runs here")
        ap.add_argument("--command-line", default="contrib/bench/run.sh")
        ap.add_argument("--from-json", default="",
                        help="only render the report of a previous --json file (same options)")
        cfg = ap.parse_args()
        if cfg.quick:
                cfg.duration, cfg.warmup, cfg.runs = 2.0, 1.0, 1
        if cfg.smoke:
                cfg.duration, cfg.warmup, cfg.runs = 1.0, 0.0, 1
                cfg.servers, cfg.workloads, cfg.modes, cfg.no_extras = "gcorn", "hello", "unpinned", True
        cfg.partial = (cfg.servers != ",".join(SERVERS) or cfg.workloads != ",".join(WORKLOADS))
        cfg.servers = [x for x in cfg.servers.split(",") if x]
        cfg.workloads = [x for x in cfg.workloads.split(",") if x]
        for x in cfg.servers:
                if x not in SERVERS:
                        ap.error("unknown server %r (known: %s)" % (x, ", ".join(SERVERS)))
        for x in cfg.workloads:
                if x not in WORKLOADS:
                        ap.error("unknown workload %r (known: %s)" % (x, ", ".join(WORKLOADS)))
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
                              saved.get("elapsed"))
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
        for run in range(cfg.runs):
                for mode in modes:
                        pinned = mode == "pinned"
                        if pinned:
                                os.sched_setaffinity(0, {int(c) for c in cfg.client_cpus.split(",")})
                        else:
                                os.sched_setaffinity(0, set(range(os.cpu_count())))
                        for w in cfg.workloads:
                                for n in cfg.servers:
                                        if n in ONLY_WORKLOADS and w not in ONLY_WORKLOADS[n]:
                                                continue
                                        r = measure(cfg, n, w, pinned, cfg.duration)
                                        r["run"] = run
                                        results.append(r)
                                        log("run %d %-8s %-9s %-16s %s" % (
                                                run + 1, mode, w, n,
                                                r.get("failed") or "%.0f req/s p99 %s ms err %s cpu %s us/req rss %.1f MiB" % (
                                                        r["rps"], fmt(r["p99_ms"], "%.2f"),
                                                        errors_text([r]), fmt(r["cpu_us_per_req"], "%.1f"),
                                                        r["peak_rss_kib"] / 1024)))
        os.sched_setaffinity(0, set(range(os.cpu_count())))
        extras = {} if cfg.no_extras else idle_memory(cfg)
        # The slow-client attacks belong to a full run (about 7 minutes more), not to a
        # quick look or a chosen subset.
        slow = []
        if not (cfg.quick or cfg.smoke or cfg.no_slowclients or cfg.partial):
                slow = slowclients.run(cfg)
        elapsed = time.monotonic() - started
        text = report(cfg, machine, results, extras, elapsed)
        if slow:
                text += "\n" + slowclients.report(cfg, slow)
        if cfg.json:
                with open(cfg.json, "w") as f:
                        json.dump({"machine": machine, "results": results, "extras": extras,
                                   "slow": slow, "elapsed": elapsed}, f, indent=1)
        if cfg.out:
                with open(cfg.out, "w") as f:
                        f.write(text + "\n")
        print(text)
        if cfg.smoke:
                ok = [r for r in results if "failed" not in r and r["requests"] > 0 and
                      not any(r[k] for k in ("connect", "read", "write", "timeout", "non2xx"))]
                return 0 if len(ok) == len(results) and results else 1
        return 0


if __name__ == "__main__":
        sys.exit(main())
