"""Holds N idle keep-alive connections open against HOST:PORT.

Each connection sends one keep-alive GET of PATH and reads its response, so the server
has it in its keep-alive state, then stays silent. When every connection is answered
(or --setup-timeout passed) it prints one JSON line {"ready": ..., "answered": ...} and
waits for SIGTERM/SIGINT or --lifetime seconds; then it prints {"open": ...}, the number
still open (not closed by the server), and exits.

  /usr/bin/python3 idle.py HOST PORT N [--path /] [--lifetime 300] [--setup-timeout 60]
"""
import argparse
import errno
import json
import selectors
import signal
import socket
import sys
import time


def _response_done(buf):
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
                return False
        length = 0
        for line in buf[:head_end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                        length = int(value.strip())
        return len(buf) >= head_end + 4 + length


def _still_open(sock):
        try:
                data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
                return True
        except OSError:
                return False
        return len(data) > 0


def main():
        ap = argparse.ArgumentParser()
        ap.add_argument("host")
        ap.add_argument("port", type=int)
        ap.add_argument("count", type=int)
        ap.add_argument("--path", default="/")
        ap.add_argument("--lifetime", type=float, default=300.0)
        ap.add_argument("--setup-timeout", type=float, default=60.0)
        ap.add_argument("--batch", type=int, default=100)
        args = ap.parse_args()

        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        signal.signal(signal.SIGINT, lambda *_: stop.append(1))

        request = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (args.path, args.host, args.port)).encode()
        sel = selectors.DefaultSelector()
        socks = []
        state = {}              # sock -> [phase, buffer]; phase: connect, read, done
        answered = 0
        deadline = time.monotonic() + args.setup_timeout
        pending = 0
        while (len(socks) < args.count or pending) and time.monotonic() < deadline and not stop:
                while len(socks) < args.count and pending < args.batch:
                        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                        s.setblocking(False)
                        err = s.connect_ex((args.host, args.port))
                        if err not in (0, errno.EINPROGRESS):
                                s.close()
                                break
                        socks.append(s)
                        state[s] = ["connect", b""]
                        sel.register(s, selectors.EVENT_WRITE)
                        pending += 1
                for key, _ in sel.select(timeout=0.5):
                        s = key.fileobj
                        st = state[s]
                        if st[0] == "connect":
                                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                                        st[0] = "dead"
                                        sel.unregister(s)
                                        pending -= 1
                                        continue
                                s.send(request)
                                st[0] = "read"
                                sel.modify(s, selectors.EVENT_READ)
                                continue
                        try:
                                data = s.recv(65536)
                        except OSError:
                                data = b""
                        if not data:
                                st[0] = "dead"
                                sel.unregister(s)
                                pending -= 1
                                continue
                        st[1] += data
                        if _response_done(st[1]):
                                st[0] = "done"
                                st[1] = b""
                                sel.unregister(s)
                                pending -= 1
                                answered += 1
        print(json.dumps({"ready": len(socks), "answered": answered}), flush=True)

        end = time.monotonic() + args.lifetime
        while not stop and time.monotonic() < end:
                time.sleep(0.1)
        still = sum(1 for s in socks if state[s][0] == "done" and _still_open(s))
        print(json.dumps({"open": still}), flush=True)
        for s in socks:
                s.close()
        return 0


if __name__ == "__main__":
        sys.exit(main())
