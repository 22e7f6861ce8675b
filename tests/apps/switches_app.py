"""The app behind tests/integration/test_switches.py: the environ the request-parsing
switches produce, and apps that use environ["gunicorn.socket"]."""

import json
import os
import socket


def _json(start_response, obj):
        body = json.dumps(obj).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def _socket_fds():
        """fd -> O_NONBLOCK for every socket of this process."""
        out = {}
        for fd in os.listdir("/proc/self/fd"):
                try:
                        if not os.readlink("/proc/self/fd/" + fd).startswith("socket:"):
                                continue
                        with open("/proc/self/fdinfo/" + fd) as f:
                                flags = int(f.read().split("flags:")[1].split()[0], 8)
                except (OSError, IndexError, ValueError):
                        continue
                out[int(fd)] = bool(flags & os.O_NONBLOCK)
        return out


HIJACKED = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-Hijacked: yes\r\nConnection: close\r\n\r\nhijack"


def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/sock-info":
                s = environ["gunicorn.socket"]
                info = {
                        "is_socket": isinstance(s, socket.socket),
                        "peer": list(s.getpeername())[:2],
                        "fileno_ok": s.fileno() >= 0,
                        "blocking": s.getblocking(),
                        "timeout": s.gettimeout(),
                        "pid": os.getpid(),
                        "same": s is environ["gunicorn.socket"],
                }
                return _json(start_response, info)
        if path == "/hijack":
                environ["gunicorn.socket"].sendall(HIJACKED)
                return []
        if path == "/hijack-makefile":
                with environ["gunicorn.socket"].makefile("wb") as f:
                        f.write(HIJACKED)
                return [b"never sent"]
        if path == "/touch-then-read":
                # middleware that looks at the peer, then an app that streams the body
                environ["gunicorn.socket"].getpeername()
                body = environ["wsgi.input"].read()
                return _json(start_response, {"len": len(body), "pid": os.getpid()})
        if path == "/sockets":
                return _json(start_response, {"pid": os.getpid(), "fds": _socket_fds()})
        out = {k: v for k, v in environ.items() if isinstance(v, str)}
        out["_socket_type"] = type(environ.get("gunicorn.socket")).__name__
        return _json(start_response, out)
