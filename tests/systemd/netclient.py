"""HTTP client run inside the private systemd's network namespace (`nsenter -n`).

    netclient.py get URL [TIMEOUT]
            one request; prints {"status", "body", "error", "seconds"} as JSON
    netclient.py load URL THREADS MAX_SECONDS [PAUSE]
            requests from THREADS threads, each on a new connection, until SIGTERM or
            MAX_SECONDS; prints {"requests", "status": {code: n}, "errors": {kind: n},
            "max_latency", "timeline"} as JSON; "slow" holds [start, seconds] of each request
            that took SLOW_S or more, start on time.monotonic() (the test's clock too), for the
            worst latency while something happened (worst_during())

Errors are classified: refused, reset, disconnected (closed without an answer), timeout, other.
"""

import http.client
import json
import signal
import socket
import sys
import threading
import time
from urllib.parse import urlsplit


SLOW_S = 0.01


def classify(e):
        if isinstance(e, ConnectionRefusedError):
                return "refused"
        if isinstance(e, ConnectionResetError):
                return "reset"
        if isinstance(e, (http.client.RemoteDisconnected, http.client.IncompleteRead, BrokenPipeError)):
                return "disconnected"
        if isinstance(e, (socket.timeout, TimeoutError)):
                return "timeout"
        return "other:" + type(e).__name__


def request(url, timeout):
        u = urlsplit(url)
        path = u.path or "/"
        if u.query:
                path += "?" + u.query
        t0 = time.monotonic()
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
        try:
                conn.request("GET", path, headers={"User-Agent": "sdboot-netclient/1", "Connection": "close"})
                r = conn.getresponse()
                body = r.read()
                return {"status": r.status, "body": body.decode("utf-8", "replace"), "error": None,
                        "seconds": time.monotonic() - t0}
        except Exception as e:  # noqa: BLE001 - every failure is a result here
                return {"status": None, "body": "", "error": classify(e), "detail": str(e),
                        "seconds": time.monotonic() - t0}
        finally:
                conn.close()


def load(url, threads, max_seconds, pause):
        stop = threading.Event()
        lock = threading.Lock()
        res = {"requests": 0, "status": {}, "errors": {}, "max_latency": 0.0, "details": [], "slow": []}

        def on_term(signum, frame):
                stop.set()

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)

        def loop():
                while not stop.is_set():
                        t0 = time.monotonic()
                        r = request(url, 15.0)
                        with lock:
                                res["requests"] += 1
                                if r["seconds"] >= SLOW_S:
                                        res["slow"].append([round(t0, 4), round(r["seconds"], 4)])
                                res["max_latency"] = max(res["max_latency"], r["seconds"])
                                if r["error"]:
                                        res["errors"][r["error"]] = res["errors"].get(r["error"], 0) + 1
                                        if len(res["details"]) < 10:
                                                res["details"].append(r["detail"])
                                else:
                                        k = str(r["status"])
                                        res["status"][k] = res["status"].get(k, 0) + 1
                        stop.wait(pause)

        ts = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
        for t in ts:
                t.start()
        stop.wait(max_seconds)
        stop.set()
        for t in ts:
                t.join(20)
        return res


def worst_during(res, start, end):
        """The longest request of a load result under way at some point between start and end
        (time.monotonic() of the caller), as text: "<0.010s" when none took SLOW_S."""
        worst = max((s for t0, s in res.get("slow", ()) if t0 <= end and t0 + s >= start), default=0.0)
        return "%.3fs" % worst if worst else "<%.3fs" % SLOW_S


def main(argv):
        if len(argv) >= 3 and argv[1] == "get":
                print(json.dumps(request(argv[2], float(argv[3]) if len(argv) > 3 else 10.0)))
                return 0
        if len(argv) >= 5 and argv[1] == "load":
                pause = float(argv[5]) if len(argv) > 5 else 0.01
                print(json.dumps(load(argv[2], int(argv[3]), float(argv[4]), pause)))
                return 0
        print(__doc__, file=sys.stderr)
        return 2


if __name__ == "__main__":
        sys.exit(main(sys.argv))
