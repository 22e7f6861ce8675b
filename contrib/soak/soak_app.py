"""The soak's WSGI app (contrib/soak/soak.py drives it). Every answer the client can check:

  /hello                 "Hello, World!\\n" with Content-Length
  /upload                reads the whole body (Content-Length or chunked) and answers
                         "<sha256 hex> <length>"
  /stream?n=N&size=S&seed=K
                         N chunks from a generator, no Content-Length (chunked on the wire);
                         chunk i is PATTERN[o:o + S] with o = (K + 7 * i) % 256
  /error?how=raise       the app raises: gcorn answers 500 and logs the traceback
  /error?how=status      the app answers 500 itself
  /slow?ms=M             sleeps M ms, then answers "slept M"

Answers the app makes carry X-Soak-Pid, the worker that made them.
"""

import hashlib
import os
import time
from urllib.parse import parse_qs

# 256 bytes more than the largest chunk, so any offset below 256 has a full chunk after it.
PATTERN = bytes(range(256)) * 257
MAX_CHUNK = 65536


def _qs(environ):
        return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _headers(length=None):
        h = [("Content-Type", "text/plain"), ("X-Soak-Pid", str(os.getpid()))]
        if length is not None:
                h.append(("Content-Length", str(length)))
        return h


def _text(start_response, body, status="200 OK"):
        start_response(status, _headers(len(body)))
        return [body]


def hello(environ, start_response):
        return _text(start_response, b"Hello, World!\n")


def upload(environ, start_response):
        stream = environ["wsgi.input"]
        digest = hashlib.sha256()
        total = 0
        while True:
                chunk = stream.read(65536)
                if not chunk:
                        break
                digest.update(chunk)
                total += len(chunk)
        return _text(start_response, ("%s %d" % (digest.hexdigest(), total)).encode())


def stream(environ, start_response):
        q = _qs(environ)
        n, size, seed = int(q.get("n", "8")), min(int(q.get("size", "4096")), MAX_CHUNK), int(q.get("seed", "0"))
        start_response("200 OK", _headers())

        def chunks():
                for i in range(n):
                        o = (seed + 7 * i) % 256
                        yield PATTERN[o:o + size]

        return chunks()


class IntendedError(Exception):
        pass


def error(environ, start_response):
        if _qs(environ).get("how") == "status":
                return _text(start_response, b"intended 500\n", "500 Internal Server Error")
        raise IntendedError("soak: intended error")


def slow(environ, start_response):
        ms = int(_qs(environ).get("ms", "100"))
        time.sleep(ms / 1000.0)
        return _text(start_response, b"slept %d" % ms)


ROUTES = {
        "/hello": hello,
        "/upload": upload,
        "/stream": stream,
        "/error": error,
        "/slow": slow,
}


def app(environ, start_response):
        route = ROUTES.get(environ.get("PATH_INFO", ""))
        if route is None:
                return _text(start_response, b"Not Found\n", "404 Not Found")
        return route(environ, start_response)
