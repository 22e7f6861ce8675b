"""What killing workers costs the clients: wrk with 64 keep-alive connections against gcorn
sync and gunicorn sync (same worker count, hello app) for DURATION seconds, while one worker
of the server, picked at random, gets SIGKILL every second. Reports per server the requests
answered, the failed ones (wrk's socket errors and non-2xx answers) and the kills; a sync
worker has at most one request in flight, so failures beyond one per kill are idle
clients lost with their worker.

  /usr/bin/python3 contrib/bench/killtest.py [--gcorn BIN] [--gunicorn BIN] [--workers N]
                                             [--duration S] [--connections N]

BIN defaults: $BENCH_BUILD_DIR/src/gcorn (build-bench), /usr/bin/gunicorn. Loopback only;
every process it starts is ended by PID."""

import argparse
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
HOST = "127.0.0.1"


def free_port():
        with socket.socket() as s:
                s.bind((HOST, 0))
                return s.getsockname()[1]


def children(pid):
        try:
                with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                        return [int(p) for p in f.read().split()]
        except OSError:
                return []


def wait_serving(port, deadline):
        while time.monotonic() < deadline:
                try:
                        with socket.create_connection((HOST, port), timeout=1) as s:
                                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                                if s.recv(64).startswith(b"HTTP/1.1 200"):
                                        return True
                except OSError:
                        pass
                time.sleep(0.1)
        return False


def run(name, cmd, port, args):
        log = open(os.path.join("/tmp", "killtest-%s-%d.log" % (name, os.getpid())), "wb")
        srv = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        try:
                if not wait_serving(port, time.monotonic() + 30):
                        raise RuntimeError("%s did not serve: %s" % (name, " ".join(cmd)))
                while len(children(srv.pid)) < args.workers:
                        time.sleep(0.1)
                time.sleep(1)
                wrk = subprocess.Popen(["wrk", "-t2", "-c%d" % args.connections, "-d%ds" % args.duration,
                                        "http://%s:%d/" % (HOST, port)], stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True)
                kills = 0
                time.sleep(1)
                end = time.monotonic() + args.duration - 2
                while time.monotonic() < end:
                        pids = children(srv.pid)
                        if pids:
                                try:
                                        os.kill(random.choice(pids), signal.SIGKILL)
                                        kills += 1
                                except ProcessLookupError:
                                        pass
                        time.sleep(1)
                out, _ = wrk.communicate(timeout=args.duration + 60)
        finally:
                srv.send_signal(signal.SIGTERM)
                try:
                        srv.wait(timeout=15)
                except subprocess.TimeoutExpired:
                        srv.kill()
                        srv.wait()
                log.close()
        m = re.search(r"(\d+) requests in", out)
        total = int(m.group(1)) if m else 0
        failed = 0
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        if m:
                failed += sum(int(x) for x in m.groups())
        m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if m:
                failed += int(m.group(1))
        return total, failed, kills, out


def main():
        build = os.environ.get("BENCH_BUILD_DIR", os.path.join(TOP, "build-bench"))
        ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        ap.add_argument("--gcorn", default=os.path.join(build, "src", "gcorn"))
        ap.add_argument("--gunicorn", default="/usr/bin/gunicorn")
        ap.add_argument("--workers", type=int, default=2)
        ap.add_argument("--duration", type=int, default=12)
        ap.add_argument("--connections", type=int, default=64)
        args = ap.parse_args()
        rows = []
        for name in ("gcorn", "gunicorn-sync"):
                port = free_port()
                binary = args.gcorn if name == "gcorn" else args.gunicorn
                cmd = [binary, "-b", "%s:%d" % (HOST, port), "-w", str(args.workers), "--chdir", HERE, "app:app"]
                total, failed, kills, out = run(name, cmd, port, args)
                if total == 0:
                        print(out, file=sys.stderr)
                rows.append((name, total, failed, kills))
        print("wrk -c%d for %d s, SIGKILL to one of %d workers a second\n" %
              (args.connections, args.duration, args.workers))
        print("| server | requests | failed | kills |")
        print("|---|---|---|---|")
        for name, total, failed, kills in rows:
                print("| %s | %d | %d | %d |" % (name, total, failed, kills))
        return 0


if __name__ == "__main__":
        sys.exit(main())
