"""A multi-route WSGI app for the integration tests (standard library only)."""

import json
import os
import sys
import tempfile
import time
from urllib.parse import parse_qs


def _qs(environ):
        return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _text(start_response, body, status="200 OK", ctype="text/plain", extra=()):
        if isinstance(body, str):
                body = body.encode("utf-8")
        start_response(status, [("Content-Type", ctype),
                                ("Content-Length", str(len(body)))] + list(extra))
        return [body]


def _json(start_response, obj):
        return _text(start_response, json.dumps(obj, sort_keys=True), ctype="application/json")


def pattern_bytes(n):
        base = bytes(range(251))
        return (base * (n // len(base) + 1))[:n]


def hello(environ, start_response):
        return _text(start_response, "Hello, World!\n")


def echo(environ, start_response):
        inp = environ["wsgi.input"]
        if _qs(environ).get("mode") == "loop":
                parts = []
                while True:
                        part = inp.read(8192)
                        if not part:
                                break
                        parts.append(part)
                body = b"".join(parts)
        else:
                body = inp.read()
        return _text(start_response, body, ctype="application/octet-stream")


def environ_dump(environ, start_response):
        out = {}
        for k, v in environ.items():
                if isinstance(v, str):
                        out[k] = v
                elif k.startswith("wsgi."):
                        if isinstance(v, (bool, tuple)):
                                out[k] = v
                        else:
                                out[k] = "<%s>" % type(v).__name__
        inp = environ["wsgi.input"]
        err = environ["wsgi.errors"]
        out["_input_methods"] = sorted(m for m in ("read", "readline", "readlines", "__iter__")
                                       if hasattr(inp, m))
        out["_errors_methods"] = sorted(m for m in ("write", "writelines", "flush")
                                        if hasattr(err, m))
        out["_file_wrapper_callable"] = callable(environ.get("wsgi.file_wrapper"))
        out["_types"] = {k: type(v).__name__ for k, v in environ.items()}
        out["_os_environ"] = {k: os.environ[k] for k in os.environ if k.startswith("GCORN_T_")}
        return _json(start_response, out)


def chunked(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
                for i in range(5):
                        yield ("chunk%d\n" % i).encode()
                yield b""
                yield b"end\n"
        return gen()


def write_callable(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "text/plain"),
                                          ("Content-Length", "22")])
        write(b"via write ")
        write(b"")
        return [b"and iterable"]


def head_test(environ, start_response):
        return _text(start_response, "head-body!!", extra=[("X-Head-Test", "yes")])


def status(environ, start_response):
        code = int(_qs(environ).get("code", "200"))
        if code in (204, 304) or 100 <= code < 200:
                start_response("%d Custom" % code, [("X-Status", str(code))])
                return [b""]
        return _text(start_response, "status %d" % code, status="%d Custom" % code)


def short(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return [b"12345"]


def long_(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"12345", b"67890"]


def raise_(environ, start_response):
        raise RuntimeError("boom-before-start")


def raise_after(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
                yield b"first chunk\n"
                raise RuntimeError("boom-mid-iteration")
        return gen()


def bad_status(environ, start_response):
        start_response("abc", [("Content-Type", "text/plain")])
        return [b"bad status"]


def bad_header(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("X-Evil", "1\r\nX-Injected: 1")])
        return [b"bad header"]


def junk(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return 42


def file_(environ, start_response):
        q = _qs(environ)
        size = int(q.get("size", "1024"))
        f = tempfile.TemporaryFile()
        f.write(pattern_bytes(size))
        f.seek(0)
        headers = [("Content-Type", "application/octet-stream")]
        if q.get("cl", "1") == "1":
                headers.append(("Content-Length", str(size)))
        start_response("200 OK", headers)
        return environ["wsgi.file_wrapper"](f, 65536)


def readline(environ, start_response):
        mode = _qs(environ).get("mode", "readline")
        inp = environ["wsgi.input"]
        seen = []
        if mode == "readline":
                while True:
                        line = inp.readline()
                        if not line:
                                break
                        seen.append(line)
        elif mode == "readline-size":
                while True:
                        line = inp.readline(5)
                        if not line:
                                break
                        seen.append(line)
        elif mode == "readlines":
                seen = inp.readlines()
        elif mode == "iter":
                seen = [line for line in inp]
        elif mode == "read-n":
                while True:
                        part = inp.read(3)
                        if not part:
                                break
                        seen.append(part)
        elif mode == "mixed":
                seen.append(inp.read(2))
                seen.append(inp.readline())
                seen.append(inp.read())
                seen.append(inp.read())
        return _json(start_response, {"mode": mode, "seen": [s.decode("latin-1") for s in seen],
                                      "types": sorted({type(s).__name__ for s in seen})})


def slow(environ, start_response):
        secs = float(_qs(environ).get("s", "1"))
        time.sleep(secs)
        return _text(start_response, "slept %g\n" % secs)


class CloseTracker:
        """An iterable whose close() is recorded in the file named by CLOSE_TRACKER_FILE."""

        def __init__(self, path, chunks, size):
                self.path = path
                self.chunks = chunks
                self.chunk = b"x" * size
                self.produced = 0

        def _record(self, what):
                with open(self.path, "a") as f:
                        f.write(what + "\n")

        def __iter__(self):
                for _ in range(self.chunks):
                        self.produced += 1
                        yield self.chunk
                self._record("exhausted")

        def close(self):
                self._record("closed produced=%d" % self.produced)


def close_tracker(environ, start_response):
        q = _qs(environ)
        path = os.environ.get("CLOSE_TRACKER_FILE") or q["file"]
        chunks = int(q.get("chunks", "3"))
        size = int(q.get("size", "10"))
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return CloseTracker(path, chunks, size)


def exc_info(environ, start_response):
        late = _qs(environ).get("late") == "1"
        if not late:
                start_response("200 OK", [("Content-Type", "text/plain"), ("X-Early", "1")])
                try:
                        raise ValueError("handled-error")
                except ValueError:
                        start_response("503 Service Unavailable",
                                       [("Content-Type", "text/plain"), ("Content-Length", "9")],
                                       sys.exc_info())
                return [b"recovered"]

        def gen():
                yield b"partial\n"
                try:
                        raise ValueError("late-error")
                except ValueError:
                        start_response("500 Internal Server Error",
                                       [("Content-Type", "text/plain")], sys.exc_info())
                yield b"never\n"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return gen()


def expect(environ, start_response):
        if _qs(environ).get("read") == "1":
                inp = environ["wsgi.input"]
                body = b""
                while True:
                        part = inp.read(65536)
                        if not part:
                                break
                        body += part
                return _text(start_response, "read %d bytes" % len(body))
        return _text(start_response, "not read")


def stderr(environ, start_response):
        err = environ["wsgi.errors"]
        err.write("stderr-marker-%s\n" % _qs(environ).get("tag", "x"))
        err.writelines(["lines-marker\n"])
        err.flush()
        return _text(start_response, "ok")


def big(environ, start_response):
        """n chunks of size bytes, no Content-Length."""
        q = _qs(environ)
        n = int(q.get("n", "16"))
        size = int(q.get("size", "65536"))
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        chunk = b"b" * size
        return (chunk for _ in range(n))


def framing(environ, start_response):
        """The status and headers exactly as the query gives them: status=..., h=Name:value
        (repeatable, in order), body=... ."""
        q = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        headers = [tuple(h.split(":", 1)) for h in q.get("h", [])]
        start_response(q.get("status", ["200 OK"])[-1], headers)
        return [q.get("body", [""])[-1].encode("latin-1")]


def pid(environ, start_response):
        return _text(start_response, "%d" % os.getpid())


def read_all(environ, start_response):
        """wsgi.input read whole by the method named in mode; answers how much came."""
        inp = environ["wsgi.input"]
        mode = _qs(environ).get("mode", "read")
        try:
                if mode == "read":
                        n = len(inp.read())
                elif mode == "read-size":
                        n = len(inp.read(int(environ.get("CONTENT_LENGTH") or "0")))
                elif mode == "readline":
                        n = len(inp.readline())
                elif mode == "readlines":
                        n = sum(len(line) for line in inp.readlines())
                else:
                        n = sum(len(line) for line in inp)
        except MemoryError:
                sys.stderr.write("read-all-memory-error\n")
                raise
        return _text(start_response, "read %d" % n)


ROUTES = {
        "/": hello,
        "/echo": echo,
        "/environ": environ_dump,
        "/chunked": chunked,
        "/write": write_callable,
        "/head-test": head_test,
        "/status": status,
        "/short": short,
        "/long": long_,
        "/raise": raise_,
        "/raise-after": raise_after,
        "/bad-status": bad_status,
        "/bad-header": bad_header,
        "/junk": junk,
        "/file": file_,
        "/readline": readline,
        "/slow": slow,
        "/close-tracker": close_tracker,
        "/exc-info": exc_info,
        "/expect": expect,
        "/stderr": stderr,
        "/big": big,
        "/framing": framing,
        "/pid": pid,
        "/read-all": read_all,
}


def app(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        handler = ROUTES.get(path)
        if handler is None and path.startswith("/environ/"):
                handler = environ_dump
        if handler is None:
                return _text(start_response, "not found: %s\n" % environ.get("PATH_INFO"),
                             status="404 Not Found")
        return handler(environ, start_response)


application = app
