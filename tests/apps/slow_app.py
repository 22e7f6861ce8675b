"""Routes for the slow-client tests: uploads echoed by digest, and large answers as a
generator, one bytes object and a wsgi.file_wrapper, with close() calls counted."""
import hashlib
import os
import tempfile
import time
from urllib.parse import parse_qs

BIG_SIZE = int(os.environ.get("SLOW_APP_BIG", str(50 << 20)))
# in one allocation, so that a worker's memory is flat once it is built
assert BIG_SIZE % 256 == 0
BIG = bytes(range(256)) * (BIG_SIZE // 256)
BIG_SHA = hashlib.sha256(BIG).hexdigest()

# Unlinked at once: each open through /proc has its own file offset.
_fd, _path = tempfile.mkstemp(prefix="gcorn-slow-app-")
os.unlink(_path)
os.write(_fd, BIG)
FILE_PATH = "/proc/self/fd/%d" % _fd

CLOSED = {"count": 0}
# one object of its own, referenced by this list alone
SHARED = [bytes(range(256)) * (16 << 12)]


def pattern(size, chunk):
        """The generator's bytes: chunk-sized pieces, each its own repeated byte."""
        sent = 0
        i = 0
        while sent < size:
                n = min(chunk, size - sent)
                yield bytes([i % 251]) * n
                sent += n
                i += 1


class Counted:
        def __init__(self, it):
                self.it = iter(it)

        def __iter__(self):
                return self

        def __next__(self):
                return next(self.it)

        def close(self):
                CLOSED["count"] += 1


def app(environ, start_response):
        path = environ["PATH_INFO"]
        q = parse_qs(environ.get("QUERY_STRING", ""))
        if path == "/echo-sha":
                t = time.monotonic()
                body = environ["wsgi.input"].read()
                took = time.monotonic() - t
                out = ("%d %s %.3f" % (len(body), hashlib.sha256(body).hexdigest(), took)).encode()
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [out]
        if path == "/gen":
                size = int(q.get("size", [str(BIG_SIZE)])[0])
                chunk = int(q.get("chunk", ["65536"])[0])
                start_response("200 OK", [("Content-Type", "application/octet-stream")])
                return Counted(pattern(size, chunk))
        if path == "/gen-fail":
                size = int(q.get("size", [str(BIG_SIZE)])[0])

                def failing():
                        yield from pattern(size, 65536)
                        raise RuntimeError("the generator failed after %d bytes" % size)
                start_response("200 OK", [("Content-Type", "application/octet-stream")])
                return Counted(failing())
        if path == "/shared-list":
                # the app's own list, which a later request changes
                start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                          ("X-Sha256", hashlib.sha256(SHARED[0]).hexdigest())])
                return SHARED
        if path == "/mutate":
                SHARED[0] = bytes(len(SHARED[0]))
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [b"mutated"]
        if path == "/big":
                start_response("200 OK", [("Content-Type", "application/octet-stream"), ("X-Sha256", BIG_SHA)])
                return [BIG]
        if path == "/file":
                start_response("200 OK", [("Content-Type", "application/octet-stream"), ("X-Sha256", BIG_SHA)])
                return environ["wsgi.file_wrapper"](open(FILE_PATH, "rb"))
        if path == "/closed":
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [str(CLOSED["count"]).encode()]
        if path == "/pid":
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [str(os.getpid()).encode()]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"Hello, World!\n"]
