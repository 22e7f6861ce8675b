"""The benchmark's WSGI app, the same file for every Python server.

  /        "Hello, World!" (13 bytes) with Content-Length
  /upload  reads the whole request body and answers its length
  /file    wsgi.file_wrapper over $BENCH_FILE (1 MiB, made by run.sh)
  /big     ?size=N bytes (default 50 MB) from a generator of 64 KiB items, with
           Content-Length (the slow readers of the slow-client scenario)
  /sleep   "Hello, World!" after time.sleep(0.01): an I/O-bound view (a database or a
           service that answers in 10 ms); gevent's monkey-patching makes it yield
  /slow    "Hello, World!" after 50 ms (one request in 200 of the mixed workload)
"""
import os
import time

HELLO = b"Hello, World!"
BIG_ITEM = b"x" * 65536
SLEEP_S = 0.010
HELLO_HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))]
BENCH_FILE = os.environ.get("BENCH_FILE", "")


def _upload(environ, start_response):
        stream = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH") or ""
        total = 0
        if length:
                left = int(length)
                while left > 0:
                        chunk = stream.read(min(left, 65536))
                        if not chunk:
                                break
                        total += len(chunk)
                        left -= len(chunk)
        else:
                while True:
                        chunk = stream.read(65536)
                        if not chunk:
                                break
                        total += len(chunk)
        body = str(total).encode("ascii")
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]


def _file(environ, start_response):
        f = open(BENCH_FILE, "rb")
        size = os.fstat(f.fileno()).st_size
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(size))])
        wrapper = environ.get("wsgi.file_wrapper")
        if wrapper is not None:
                return wrapper(f, 65536)
        return iter(lambda: f.read(65536), b"")


def _big(environ, start_response):
        size = 50000000
        for part in environ.get("QUERY_STRING", "").split("&"):
                if part.startswith("size="):
                        size = int(part[5:])
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(size))])

        def gen():
                left = size
                while left > 0:
                        n = min(left, len(BIG_ITEM))
                        yield BIG_ITEM if n == len(BIG_ITEM) else BIG_ITEM[:n]
                        left -= n
        return gen()


def app(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if path == "/":
                start_response("200 OK", HELLO_HEADERS)
                return [HELLO]
        if path == "/upload":
                return _upload(environ, start_response)
        if path == "/file":
                return _file(environ, start_response)
        if path == "/big":
                return _big(environ, start_response)
        if path == "/sleep":
                time.sleep(SLEEP_S)
                start_response("200 OK", HELLO_HEADERS)
                return [HELLO]
        if path == "/slow":
                # A slow endpoint mixed into the load: where it runs must not hold up the
                # fast requests that an idle worker could answer.
                time.sleep(0.05)
                start_response("200 OK", HELLO_HEADERS)
                return [HELLO]
        body = b"Not Found"
        start_response("404 Not Found", [("Content-Type", "text/plain"),
                                         ("Content-Length", str(len(body)))])
        return [body]


application = app
