"""Access-log lines byte for byte against the real Gunicorn.

The same app, the same requests and the same access_log_format go to gcorn and to Debian's
gunicorn (started here on 127.0.0.1, one sync worker); the lines must be equal once the
atoms that measure time (%(t)s %(T)s %(M)s %(D)s %(L)s), the worker pid (%(p)s) and the
server's port are normalized. Debian ships Gunicorn 20.1: where its atoms differ from 23's
(only %(u)s for a user without ':'), the requests avoid the difference, and the unit tests
in tests/unit/test_accesslog.c hold 23's behaviour.
"""

import os
import re
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

GUNICORN = shutil.which("gunicorn") or "/usr/bin/gunicorn"
APP = "accesslog_app:app"

DEFAULT_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

# Every atom, '|' between them; the timing atoms sit at fixed places (see normalize()).
EVERY_ATOM = "|".join([
        "%(h)s", "%(l)s", "%(u)s", "%(t)s", '"%(r)s"', "%(s)s", "%(m)s", "%(U)s", "%(q)s", "%(H)s",
        "%(b)s", "%(B)s", '"%(f)s"', '"%(a)s"', "%(T)s", "%(M)s", "%(D)s", "%(L)s", "%(p)s",
        "%({user-agent}i)s", "%({X-Twice}i)s", "%({x-empty}i)s", "%({missing}i)s", "%({HOST}I)s",
        "%({content-type}o)s", "%({X-RESP}o)s", "%({x-empty-resp}o)s", "%({content-length}o)s",
        "%({missing}o)s",
        "%({REMOTE_USER}e)s", "%({request_method}e)s", "%({HTTP_HOST}e)s", "%({PATH_INFO}e)s",
        "%({QUERY_STRING}e)s", "%({RAW_URI}e)s", "%({SCRIPT_NAME}e)s", "%({wsgi.url_scheme}e)s",
        "%({wsgi.version}e)s", "%({wsgi.multiprocess}e)s", "%({SERVER_NAME}e)s", "%({SERVER_PORT}e)s",
        "%({CONTENT_LENGTH}e)s", "%({CONTENT_TYPE}e)s", "%({HTTP_X_TWICE}e)s",
        # the WSGI environ, not the process environment: "-" in Gunicorn too
        "%({PATH}e)s",
        "%(Z)s", "%%", "%(s)5s", "%(m)-6s|end",
])
TIMING = {3: "[TIME]", 14: "T", 15: "M", 16: "D", 17: "L", 18: "<PID>"}

UA = ("User-Agent", 'agent/1.0 "quoted"')
REQUESTS = [
        ("GET", "/", [UA, ("Referer", "http://example.com/from")], b"", "HTTP/1.1"),
        ("GET", "/a%20b/c%22d?x=1&y=%22z%22", [("X-Twice", "one"), ("X-Twice", "two")], b"", "HTTP/1.1"),
        ("HEAD", "/", [UA], b"", "HTTP/1.1"),
        ("POST", "/post?q", [("Content-Type", "application/x-www-form-urlencoded")], b"a=1&b=2", "HTTP/1.1"),
        ("GET", "/missing/thing", [], b"", "HTTP/1.0"),
        # "user:pass": Gunicorn 20.1 and 23 agree on %(u)s only with a ':'
        ("GET", "/user", [("Authorization", "Basic dXNlcjpwYXNz")], b"", "HTTP/1.1"),
        ("GET", "/stream", [("X-Empty", ""), ("Referer", "")], b"", "HTTP/1.1"),
        ("DELETE", "/empty", [("Host", "other.example:8080")], b"", "HTTP/1.1"),
        ("GET", "/%C3%A9t%C3%A9?caf%C3%A9", [("User-Agent", "caf\u00e9")], b"", "HTTP/1.1"),
]


def normalize(line, port, every):
        line = line.replace(str(port), "PORT")
        if not every:
                return re.sub(r"\[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]", "[TIME]", line)
        fields = line.split("|")
        for i, v in TIMING.items():
                if i < len(fields):
                        fields[i] = v
        return "|".join(fields)


def send_all(srv):
        for method, path, headers, body, version in REQUESTS:
                r = srv.get(path, headers=headers, method=method, body=body, version=version)
                if r.status >= 500:
                        raise AssertionError("%s %s: %d" % (method, path, r.status))


def read_lines(path, n):
        deadline = time.monotonic() + 10
        while True:
                try:
                        with open(path, "rb") as f:
                                lines = f.read().decode("utf-8", "surrogateescape").splitlines()
                except FileNotFoundError:
                        lines = []
                if len(lines) >= n or time.monotonic() > deadline:
                        return lines
                time.sleep(0.05)


@unittest.skipUnless(os.access(GUNICORN, os.X_OK), "needs Debian's gunicorn package (apt-get install gunicorn)")
class AccessLogCompatTest(h.ServerTestCase):
        maxDiff = None

        def run_server(self, binary, fmt):
                tmp = h.tempdir(self, "gcorn-alog-")
                log = os.path.join(tmp, "access.log")
                args = ["-w", "1", "--access-logfile", log, "--access-logformat", fmt]
                saved = h.GCORN
                # the harness starts whatever GCORN names; Gunicorn takes the same flags
                h.GCORN = binary
                try:
                        srv = self.start(APP, args=args)
                finally:
                        h.GCORN = saved
                send_all(srv)
                lines = read_lines(log, len(REQUESTS))
                srv.stop()
                self.assertEqual(len(lines), len(REQUESTS), "%s wrote:\n%s" % (binary, "\n".join(lines)))
                return [normalize(ln, srv.port, fmt == EVERY_ATOM) for ln in lines]

        def compare(self, fmt):
                theirs = self.run_server(GUNICORN, fmt)
                ours = self.run_server(h.GCORN, fmt)
                for i, (a, b) in enumerate(zip(ours, theirs)):
                        self.assertEqual(a, b, "request %d (%s %s)" % (i, REQUESTS[i][0], REQUESTS[i][1]))

        def test_default_format(self):
                self.compare(DEFAULT_FORMAT)

        def test_every_atom(self):
                self.compare(EVERY_ATOM)


if __name__ == "__main__":
        unittest.main()
