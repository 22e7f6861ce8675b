"""Routes shared by the test apps of the worker kinds that run requests away from the loop
(gthread, gevent): large bodies read in pieces or by lines, large answers streamed, written
or returned whole, all checkable byte for byte."""
import hashlib
import json


def pattern(n, seed=0):
        unit = bytes((i * 7 + seed) % 251 for i in range(4096))
        return (unit * (n // len(unit) + 1))[:n]


def _json(start_response, obj):
        body = json.dumps(obj).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def bulk(environ, start_response, path, q):
        """The answer for one of the routes here, or None when path is not one of them."""
        if path == "/sha":
                h = hashlib.sha256()
                n = 0
                inp = environ["wsgi.input"]
                while True:
                        b = inp.read(int(q.get("chunk", "65536")))
                        if not b:
                                break
                        h.update(b)
                        n += len(b)
                return _json(start_response, {"sha256": h.hexdigest(), "length": n})
        if path == "/lines":
                h = hashlib.sha256()
                n = 0
                for line in environ["wsgi.input"]:
                        h.update(line)
                        n += 1
                return _json(start_response, {"sha256": h.hexdigest(), "lines": n})
        if path == "/stream":
                n, size = int(q.get("n", "100")), int(q.get("size", "65536"))
                start_response("200 OK", [("Content-Type", "application/octet-stream")])
                return (pattern(size, i) for i in range(n))
        if path == "/write":
                n, size = int(q.get("n", "100")), int(q.get("size", "65536"))
                write = start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                                  ("Content-Length", str(n * size))])
                for i in range(n):
                        write(pattern(size, i))
                return []
        if path == "/big":
                body = pattern(int(q.get("size", str(8 << 20))))
                start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                          ("Content-Length", str(len(body)))])
                return [body]
        return None
