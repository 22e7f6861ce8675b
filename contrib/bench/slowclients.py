"""The slow-client scenario of the benchmark (bench.py --slowclients, run.sh --slowclients).

For each attack and server (gcorn and gunicorn sync, --workers each (2), default settings, so
`--timeout 30`), it starts the server on 127.0.0.1, starts the attack (attack.py, one
process), waits until its connections are open, then sends normal traffic alongside: a
`GET /` on a new connection every 1/--slow-rate seconds for --slow-duration seconds, each
given --slow-timeout (the server's --timeout) to be answered. The attack goes on until the
last normal request is answered or has timed out. Measured: the share of normal requests
answered 2xx within the timeout, their p50/p99 latency (one not answered counts as the
timeout, so a p99 at the timeout means more than 1% went unanswered), workers killed
(WORKER TIMEOUT lines in the server's log) and replaced (worker pids that appeared during
the run), and the RSS of the server's processes (master + workers) at the end, before
the attack stops, and at its peak.
"""
import asyncio
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time

import bench

HERE = os.path.dirname(os.path.abspath(__file__))

# name: (description, attack.py mode, connections, extra attack.py arguments)
ATTACKS = {
        "heads": ("1,000 connections dribbling request heads (one byte a second each)",
                  "heads", 1000, []),
        "bodies": ("1,000 connections that send a full head, then dribble a 1 MB body "
                   "(1,000 bytes a second each) to /upload, which reads it", "bodies", 1000,
                   ["--piece", "1000"]),
        "readers": ("200 clients reading a 50 MB answer (/big, a generator) at ~1 KB/s",
                    "readers", 200, ["--piece", "1024", "--rcvbuf", "16384"]),
}
SERVERS = ["gcorn", "gunicorn-sync"]
SERVER_NAMES = {"gcorn": "gcorn", "gunicorn-sync": "gunicorn sync"}


# ---------------------------------------------------------------- normal traffic

async def _one(port, timeout):
        """(status or 0, seconds) of one GET / on a new connection, within timeout."""
        start = time.monotonic()

        async def go():
                reader, writer = await asyncio.open_connection(bench.HOST, port)
                try:
                        writer.write(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                        await writer.drain()
                        data = await reader.read()
                finally:
                        writer.close()
                m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
                return int(m.group(1)) if m else 0

        try:
                status = await asyncio.wait_for(go(), timeout)
        except (asyncio.TimeoutError, OSError):
                status = 0
        return status, time.monotonic() - start


async def _traffic(port, rate, duration, timeout):
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks = []
        n = int(rate * duration)
        for i in range(n):
                delay = start + i / rate - loop.time()
                if delay > 0:
                        await asyncio.sleep(delay)
                tasks.append(asyncio.ensure_future(_one(port, timeout)))
        return await asyncio.gather(*tasks)


def normal_traffic(port, rate, duration, timeout):
        return asyncio.run(_traffic(port, rate, duration, timeout))


# ---------------------------------------------------------------- worker pids

class PidWatcher(threading.Thread):
        """Every worker pid seen under the master, sampled every 250 ms."""

        def __init__(self, pid):
                super().__init__(daemon=True)
                self.pid = pid
                self.seen = set()
                self._halt = threading.Event()

        def run(self):
                while not self._halt.is_set():
                        self.seen.update(p for p in bench.tree(self.pid) if p != self.pid)
                        self._halt.wait(0.25)

        def stop(self):
                self._halt.set()
                self.join(5)


def kernel_queues(port):
        """(bytes received and not yet read, bytes sent and not yet acknowledged) summed over
        the server's established sockets on port, those still in its accept queue included."""
        try:
                out = subprocess.run(["ss", "-Htn", "state", "established", "( sport = :%d )" % port],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
                return None, None
        recvq = sendq = 0
        for line in out.splitlines():
                f = line.split()
                if len(f) >= 2 and f[0].isdigit() and f[1].isdigit():
                        recvq += int(f[0])
                        sendq += int(f[1])
        return recvq, sendq


# ---------------------------------------------------------------- one measurement

def _readline(p, timeout):
        r, _, _ = select.select([p.stdout], [], [], timeout)
        return p.stdout.readline() if r else ""


def measure(cfg, server_name, attack):
        desc, mode, count, extra = ATTACKS[attack]
        result = {"server": server_name, "attack": attack}
        srv = bench.Server(cfg, server_name, cfg.workers, "hello", "/", False)
        atk = None
        try:
                if not srv.wait_ready():
                        bench.log("%s did not start; log tail:\n%s" % (server_name, srv.log_tail()))
                        result["failed"] = "did not start"
                        return result
                time.sleep(0.5)
                workers = set(p for p in bench.tree(srv.pid) if p != srv.pid)
                watcher = PidWatcher(srv.pid)
                watcher.start()
                sampler = bench.MemSampler(srv.pid, interval=0.25)
                sampler.start()
                attack_start = time.monotonic()
                atk = subprocess.Popen([sys.executable, os.path.join(HERE, "attack.py"), mode, bench.HOST,
                                        str(srv.port), str(count)] + extra,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                line = _readline(atk, 60)
                try:
                        result["attack_open"] = json.loads(line)["open"]
                except (ValueError, KeyError):
                        result["attack_open"] = 0
                time.sleep(cfg.slow_settle)
                t0 = time.monotonic()
                probes = normal_traffic(srv.port, cfg.slow_rate, cfg.slow_duration, cfg.slow_timeout)
                result["elapsed_s"] = time.monotonic() - t0
                rss, pss = bench.mem_kib(bench.tree(srv.pid))
                result["rss_end_kib"], result["pss_end_kib"] = rss, pss
                result["kernel_recvq"], result["kernel_sendq"] = kernel_queues(srv.port)
                atk.send_signal(signal.SIGTERM)
                result["attack_s"] = time.monotonic() - attack_start
                out, err = atk.communicate(timeout=30)
                lines = [x for x in out.splitlines() if x.strip()]
                try:
                        result["attack_stats"] = json.loads(lines[-1])
                except (ValueError, IndexError):
                        result["attack_stats"] = {"error": err[-500:]}
                atk = None
                sampler.stop()
                watcher.stop()
                result["peak_rss_kib"] = sampler.peak_rss
                ok = [t for s, t in probes if 200 <= s < 300 and t <= cfg.slow_timeout]
                lat = sorted(t if 200 <= s < 300 else cfg.slow_timeout for s, t in probes)
                result.update({
                        "sent": len(probes), "ok": len(ok),
                        "share_ok": len(ok) / len(probes) if probes else None,
                        "statuses": _count(s for s, _ in probes),
                        "p50_ms": _pct(lat, 50) * 1000, "p99_ms": _pct(lat, 99) * 1000,
                        "p50_ok_ms": _pct(sorted(ok), 50) * 1000 if ok else None,
                })
                log_text = _read(srv.logpath)
                result["worker_timeouts"] = log_text.count("WORKER TIMEOUT")
                result["workers_replaced"] = len(watcher.seen - workers)
        finally:
                if atk is not None:
                        atk.kill()
                        atk.communicate()
                srv.stop()
        return result


def _count(values):
        out = {}
        for v in values:
                out[str(v)] = out.get(str(v), 0) + 1
        return out


def _pct(sorted_values, p):
        """Nearest-rank percentile."""
        if not sorted_values:
                return 0.0
        k = max(0, min(len(sorted_values) - 1, -(-len(sorted_values) * p // 100) - 1))
        return sorted_values[int(k)]


def _read(path):
        try:
                with open(path, "rb") as f:
                        return f.read().decode("utf-8", "replace")
        except OSError:
                return ""


def run(cfg):
        results = []
        for attack in cfg.slow_attacks:
                for name in SERVERS:
                        r = measure(cfg, name, attack)
                        results.append(r)
                        bench.log("slow %-8s %-14s %s" % (attack, name, r.get("failed") or
                                  "%d/%d answered, p50 %.0f ms p99 %.0f ms, %d worker timeouts, "
                                  "%d replaced, RSS %.1f MiB (peak %.1f), attack %s" % (
                                          r["ok"], r["sent"], r["p50_ms"], r["p99_ms"],
                                          r["worker_timeouts"], r["workers_replaced"],
                                          r["rss_end_kib"] / 1024, r["peak_rss_kib"] / 1024,
                                          json.dumps(r["attack_stats"]))))
        return results


# ---------------------------------------------------------------- report

def _ratio(a, b, spec="%.1fx"):
        if a is None or b is None or not b:
                return "-"
        return spec % (a / b)


def _ms(r, key, timeout):
        """A latency in ms; '≥ timeout' when it is the timeout of a request not answered."""
        v = r[key]
        return ("≥ %.0f" % v) if v >= timeout * 1000 else "%.0f" % v


def report(cfg, results):
        by = {(r["attack"], r["server"]): r for r in results}
        t = cfg.slow_timeout
        lines = ["## Slow clients", "",
                 "Each attack runs against gcorn and gunicorn sync in turn, %d worker processes "
                 "each, default settings (`--timeout 30`; gcorn: `--buffer-request-body` and "
                 "`--buffer-response` 1 MiB). Once the attack's connections are open, a separate "
                 "client sends %g normal `GET /` a second, each on a new connection, for %g s "
                 "(%d requests), and gives each %g s; the attack goes on until the last is "
                 "answered or timed out. Attack clients: one Python process (attack.py) that "
                 "replaces every connection the server closes." % (
                         cfg.workers, cfg.slow_rate, cfg.slow_duration, int(cfg.slow_rate * cfg.slow_duration), t),
                 "",
                 "Columns: answered = normal requests answered 2xx within %g s; p50/p99 over all "
                 "normal requests, one not answered counted as %g s (so a p99 of ≥ %g s means more "
                 "than 1%% went unanswered); killed = `WORKER TIMEOUT` lines in the server's log; "
                 "replaced = worker pids that appeared during the run; RSS = summed RSS of master "
                 "and workers at the end, with the attack still on (peak in brackets); kernel "
                 "queues = bytes in the server's sockets' kernel queues at the same moment (received "
                 "and not yet read + sent and not yet acknowledged, connections still in the accept "
                 "queue included), which RSS does not count; attack conns = connections the attack "
                 "opened in all (it keeps its count open, so more means the server closed some); "
                 "attack answers = the status lines the attack's connections got." % (t, t, t),
                 ""]
        for attack in cfg.slow_attacks:
                lines += ["### %s" % ATTACKS[attack][0], "",
                          "| server | answered | p50 ms | p99 ms | killed | replaced | RSS MiB | "
                          "kernel queues MiB | attack conns | attack answers |",
                          "|---|---|---|---|---|---|---|---|---|---|"]
                for name in SERVERS:
                        r = by.get((attack, name))
                        if r is None:
                                continue
                        if "failed" in r:
                                lines.append("| %s | failed: %s ||||||||" % (SERVER_NAMES[name], r["failed"]))
                                continue
                        st = r["attack_stats"]
                        answers = ", ".join("%s: %d" % kv for kv in sorted(st.get("answers", {}).items())) or "-"
                        queues = "-"
                        if r.get("kernel_recvq") is not None:
                                queues = "%.1f + %.1f" % (r["kernel_recvq"] / 1048576, r["kernel_sendq"] / 1048576)
                        lines.append("| %s | %d of %d (%.1f%%) | %s | %s | %d | %d | %.1f (%.1f) | %s | %s | %s |" % (
                                SERVER_NAMES[name], r["ok"], r["sent"], 100 * r["share_ok"], _ms(r, "p50_ms", t),
                                _ms(r, "p99_ms", t), r["worker_timeouts"], r["workers_replaced"],
                                r["rss_end_kib"] / 1024, r["peak_rss_kib"] / 1024, queues,
                                st.get("opened", "?"), answers))
                g, u = by.get((attack, "gcorn")), by.get((attack, "gunicorn-sync"))
                if g and u and "failed" not in g and "failed" not in u:
                        answered = ("%.1fx as many" % (g["ok"] / u["ok"]) if u["ok"] else
                                    "gunicorn none")

                        def lower(key):
                                ratio = _ratio(u[key], g[key], "%.0fx")
                                return ("≥ " + ratio) if u[key] >= t * 1000 and ratio != "-" else ratio
                        lines += ["", "gcorn against gunicorn sync: %.1f%% of normal requests answered "
                                  "against %.1f%% (%s); p50 %s lower, p99 %s lower; RSS %s gunicorn's." % (
                                          100 * g["share_ok"], 100 * u["share_ok"], answered,
                                          lower("p50_ms"), lower("p99_ms"),
                                          _ratio(g["rss_end_kib"], u["rss_end_kib"], "%.2fx"))]
                if ATTACKS[attack][1] == "readers":
                        for name in SERVERS:
                                r = by.get((attack, name))
                                if r and "failed" not in r and r.get("attack_s"):
                                        lines.append("%s: each reader took %.2f KB/s on average." % (
                                                SERVER_NAMES[name], r["attack_stats"].get("received", 0) / 1000 /
                                                ATTACKS[attack][2] / r["attack_s"]))
                lines.append("")
        return "\n".join(lines)


def add_arguments(ap):
        ap.add_argument("--slowclients", action="store_true",
                        help="run only the slow-client scenario")
        ap.add_argument("--no-slowclients", action="store_true",
                        help="leave the slow-client scenario out of a full run")
        ap.add_argument("--slow-attacks", default=",".join(ATTACKS))
        ap.add_argument("--slow-rate", type=float, default=50.0, help="normal requests a second")
        ap.add_argument("--slow-duration", type=float, default=40.0, help="seconds of normal traffic")
        ap.add_argument("--slow-timeout", type=float, default=30.0,
                        help="seconds a normal request is given (the servers' --timeout)")
        ap.add_argument("--slow-settle", type=float, default=2.0,
                        help="seconds between the attack's connections being open and normal traffic")


def check_arguments(ap, cfg):
        cfg.slow_attacks = [x for x in cfg.slow_attacks.split(",") if x]
        for x in cfg.slow_attacks:
                if x not in ATTACKS:
                        ap.error("unknown attack %r (known: %s)" % (x, ", ".join(ATTACKS)))
