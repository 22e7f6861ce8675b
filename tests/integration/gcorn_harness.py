"""Shared helpers for the integration tests: start the real binary, talk raw HTTP to it.

Everything here is bounded: each socket operation has a timeout, server start waits at most
START_DEADLINE seconds, and every server is stopped (TERM, then KILL) when a test ends.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("GCORN_SRC") or os.path.dirname(os.path.dirname(HERE))
APPS = os.path.join(SRC, "tests", "apps")
CONTRIB_APPS = os.path.join(SRC, "contrib", "apps")
GCORN = os.environ.get("GCORN", "")
PYTHON = "/usr/bin/python3"

START_DEADLINE = 10.0
STOP_DEADLINE = 10.0
SOCK_TIMEOUT = 10.0

# The asgi worker's event loop for the tests that start one: the default (uvloop) normally;
# under the sanitizers asyncio's, as uvloop's extension leaves interpreter memory
# LeakSanitizer reports (README); GCORN_ASGI_LOOP picks one.
ASGI_LOOP = (["--asgi-loop", os.environ["GCORN_ASGI_LOOP"]] if os.environ.get("GCORN_ASGI_LOOP")
             else ["--asgi-loop", "asyncio"] if "ASAN_OPTIONS" in os.environ else [])

LISTEN_RE = re.compile(r"Listening at: (?:http://([^ ]+)|unix:([^ ]+)) \(")
WORKER_RE = re.compile(r"Booting worker with pid: (\d+)")


def is_gunicorn():
        """True when the suite is pointed at Gunicorn itself (to check the tests, not gcorn)."""
        return "gunicorn" in os.path.basename(GCORN)


def worker_kind():
        """The worker kind every server runs ("sync", "gthread" or "gevent"), from GCORN_TEST_EXTRA_ARGS:
        the behaviour suites run once per kind."""
        extra = os.environ.get("GCORN_TEST_EXTRA_ARGS", "").split()
        for i, a in enumerate(extra):
                if a in ("-k", "--worker-class") and i + 1 < len(extra):
                        return "gthread" if "gthread" in extra[i + 1] else extra[i + 1]
                if a.startswith("--worker-class="):
                        return "gthread" if "gthread" in a else a.split("=", 1)[1]
                if a == "--threads" and i + 1 < len(extra) and int(extra[i + 1]) > 1:
                        return "gthread"
        return "sync"


def skip_unless_sync(reason):
        """For a case whose expectation is the sync worker's alone: skipped under the others,
        with the reason."""
        return unittest.skipUnless(worker_kind() == "sync", "sync only: " + reason)


def require_binary():
        if not GCORN or not os.access(GCORN, os.X_OK):
                raise RuntimeError("GCORN must name the server binary (got %r)" % GCORN)


def split_hostport(s):
        if s.startswith("["):
                host, _, port = s[1:].rpartition("]:")
                return host, int(port)
        host, _, port = s.rpartition(":")
        return host, int(port)


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error: ")


class ServerError(Exception):
        pass


class Server:
        """One server process (master and its workers) started for a test."""

        def __init__(self, app, args=(), chdir=APPS, bind="127.0.0.1:0", env=None, log_path=None,
                     wait=True, stdout=None):
                require_binary()
                self.app = app
                self.tmpdir = tempfile.mkdtemp(prefix="gcorn-itest-")
                self.stderr_path = os.path.join(self.tmpdir, "stderr.log")
                self.stdout_path = stdout or os.path.join(self.tmpdir, "stdout.log")
                # The error log: stderr unless the test sent it to a file.
                self.log_path = log_path or self.stderr_path
                self.host = None
                self.port = None
                self.unix_path = None
                self.returncode = None
                self._log_cache = None          # the final log, kept once the files are gone
                argv = [GCORN]
                if bind is not None:
                        argv += ["-b", bind]
                if chdir is not None:
                        argv += ["--chdir", chdir]
                argv += list(args)
                # Extra flags for every server, e.g. to check the tests against another server.
                argv += os.environ.get("GCORN_TEST_EXTRA_ARGS", "").split()
                if app is not None:
                        argv.append(app)
                self.argv = argv
                full_env = dict(os.environ)
                full_env.pop("GUNICORN_CMD_ARGS", None)
                full_env.pop("GCORN_CMD_ARGS", None)
                full_env["PYTHONDONTWRITEBYTECODE"] = "1"
                # A control socket of its own (Gunicorn's default place is per user): servers of
                # tests that run at once neither share one nor probe each other's.
                full_env.pop("RUNTIME_DIRECTORY", None)
                full_env["XDG_RUNTIME_DIR"] = self.tmpdir
                if env:
                        full_env.update(env)
                if "ASAN_OPTIONS" in full_env and "gevent" in " ".join(argv):
                        # greenlet switches C stacks, which ASan's stack checks do not follow,
                        # and the leak checker's unwinder loses the stacks of what greenlets
                        # allocate, so lsan.supp cannot tell the interpreter's own memory (see
                        # the README); the address and UB checks stay on
                        full_env["ASAN_OPTIONS"] += ":detect_stack_use_after_return=0:detect_leaks=0"
                self._err = open(self.stderr_path, "wb")
                self._out = open(self.stdout_path, "wb")
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._out,
                                             stderr=self._err, env=full_env, start_new_session=True)
                self.pid = self.proc.pid
                if wait:
                        self.wait_listening()

        # -- logs -------------------------------------------------------------

        def log(self):
                """The error log so far (plus stderr when the log went to a file)."""
                if self._log_cache is not None:
                        return self._log_cache
                text = ""
                for p in {self.log_path, self.stderr_path}:
                        try:
                                with open(p, "rb") as f:
                                        text += f.read().decode("utf-8", "replace")
                        except FileNotFoundError:
                                pass
                return text

        def stdout(self):
                try:
                        with open(self.stdout_path, "rb") as f:
                                return f.read().decode("utf-8", "replace")
                except FileNotFoundError:
                        return ""

        def worker_pids(self):
                return [int(p) for p in WORKER_RE.findall(self.log())]

        def wait_log(self, pattern, timeout=10.0, count=1):
                """Waits until the regex pattern matches count times in the error log."""
                rx = re.compile(pattern)
                deadline = time.monotonic() + timeout
                while True:
                        text = self.log()
                        if len(rx.findall(text)) >= count:
                                return text
                        if time.monotonic() > deadline:
                                raise ServerError("log never matched %r %d time(s); log:\n%s"
                                                  % (pattern, count, text))
                        time.sleep(0.05)

        # -- lifecycle --------------------------------------------------------

        def wait_listening(self):
                deadline = time.monotonic() + START_DEADLINE
                while True:
                        text = self.log()
                        m = LISTEN_RE.search(text)
                        if m:
                                if m.group(1):
                                        self.host, self.port = split_hostport(m.group(1))
                                else:
                                        self.unix_path = m.group(2)
                                # A worker must be up before the first request is sent.
                                try:
                                        self.wait_log(WORKER_RE.pattern,
                                                      timeout=max(0.5, deadline - time.monotonic()))
                                except ServerError:
                                        pass
                                return
                        rc = self.proc.poll()
                        if rc is not None:
                                self.stop()
                                raise ServerError("server exited with %d before listening: %s\nlog:\n%s"
                                                  % (rc, " ".join(self.argv), text))
                        if time.monotonic() > deadline:
                                self.stop()
                                raise ServerError("server did not listen within %.0fs: %s\nlog:\n%s"
                                                  % (START_DEADLINE, " ".join(self.argv), text))
                        time.sleep(0.02)

        def wait_exit(self, timeout=10.0):
                try:
                        self.returncode = self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                        return None
                return self.returncode

        def alive(self):
                return self.proc.poll() is None

        def _pgid_is_ours(self, pid):
                try:
                        with open("/proc/%d/stat" % pid) as f:
                                fields = f.read().rsplit(")", 1)[1].split()
                        return int(fields[2]) == self.pid
                except (OSError, ValueError, IndexError):
                        return False

        def stop(self):
                """TERM to the master, 10 s, then KILL; leftover workers of ours are killed by PID."""
                workers = []
                try:
                        workers = self.worker_pids()
                except Exception:
                        pass
                if self.proc.poll() is None:
                        try:
                                self.proc.send_signal(signal.SIGTERM)
                        except ProcessLookupError:
                                pass
                        try:
                                self.proc.wait(timeout=STOP_DEADLINE)
                        except subprocess.TimeoutExpired:
                                self.proc.kill()
                                self.proc.wait(timeout=STOP_DEADLINE)
                self.returncode = self.proc.returncode
                if self._log_cache is None:
                        self._log_cache = self.log()
                deadline = time.monotonic() + 2.0
                for w in workers:
                        while self._pgid_is_ours(w) and time.monotonic() < deadline:
                                time.sleep(0.05)
                        if self._pgid_is_ours(w):
                                try:
                                        os.kill(w, signal.SIGKILL)
                                except ProcessLookupError:
                                        pass
                for f in (self._err, self._out):
                        try:
                                f.close()
                        except Exception:
                                pass
                try:
                        with open(self.stderr_path, "rb") as f:
                                stderr = f.read().decode("utf-8", "replace")
                except OSError:
                        stderr = ""
                shutil.rmtree(self.tmpdir, ignore_errors=True)
                # Under the sanitizer build a report on stderr is a failure of whatever test ran.
                for marker in SANITIZER_MARKERS:
                        if marker in stderr:
                                i = stderr.index(marker)
                                raise AssertionError("sanitizer report from %s:\n%s" % (self.argv, stderr[max(0, i - 200):i + 4000]))
                return self.returncode

        # -- clients ----------------------------------------------------------

        def address(self):
                if self.unix_path:
                        return self.unix_path
                return (self.host, self.port)

        def connect(self, timeout=SOCK_TIMEOUT):
                if self.unix_path:
                        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                        s.settimeout(timeout)
                        s.connect(self.unix_path)
                        return s
                fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
                s = socket.socket(fam, socket.SOCK_STREAM)
                s.settimeout(timeout)
                s.connect((self.host, self.port))
                return s

        def client(self, timeout=SOCK_TIMEOUT):
                return Client(self.connect(timeout))

        def raw(self, data, timeout=SOCK_TIMEOUT, shut_wr=False):
                """Sends data on a new connection and returns all bytes until close or timeout."""
                with self.connect(timeout) as s:
                        s.sendall(data)
                        if shut_wr:
                                s.shutdown(socket.SHUT_WR)
                        return recv_all(s, timeout)

        def get(self, path, headers=(), method="GET", body=b"", version="HTTP/1.1"):
                """One request on a new connection with Connection: close; returns the Response."""
                c = self.client()
                try:
                        c.send_request(method, path, headers=list(headers) + [("Connection", "close")],
                                       body=body, version=version)
                        return c.read_response(method=method)
                finally:
                        c.close()


def rss_kib(pid):
        """The resident memory of process pid, in KiB (VmRSS)."""
        with open("/proc/%d/status" % pid) as f:
                for line in f:
                        if line.startswith("VmRSS:"):
                                return int(line.split()[1])
        raise AssertionError("no VmRSS for %d" % pid)


def tempdir(test, prefix):
        """A temporary directory removed when the test ends."""
        d = tempfile.mkdtemp(prefix=prefix)
        test.addCleanup(shutil.rmtree, d, True)
        return d


def recv_all(s, timeout=SOCK_TIMEOUT):
        """Reads until the peer closes (or resets) or the overall timeout expires."""
        data = bytearray()
        deadline = time.monotonic() + timeout
        while True:
                left = deadline - time.monotonic()
                if left <= 0:
                        break
                s.settimeout(left)
                try:
                        chunk = s.recv(65536)
                except socket.timeout:
                        break
                except (ConnectionResetError, BrokenPipeError):
                        break
                if not chunk:
                        break
                data += chunk
        return bytes(data)


def wait_until(pred, timeout, interval=0.05):
        """Polls pred until it returns something true or timeout passes; returns the last value."""
        deadline = time.monotonic() + timeout
        while True:
                v = pred()
                if v or time.monotonic() > deadline:
                        return v
                time.sleep(interval)


def wait_closed(s, timeout=10.0):
        """Returns (closed, data): closed is True when the peer closed within timeout."""
        data = bytearray()
        deadline = time.monotonic() + timeout
        while True:
                left = deadline - time.monotonic()
                if left <= 0:
                        return False, bytes(data)
                s.settimeout(left)
                try:
                        chunk = s.recv(65536)
                except socket.timeout:
                        return False, bytes(data)
                except (ConnectionResetError, BrokenPipeError):
                        return True, bytes(data)
                if not chunk:
                        return True, bytes(data)
                data += chunk


class Response:
        def __init__(self, version, status, reason, headers, body, raw_head, chunked=False,
                     complete=True):
                self.version = version
                self.status = status
                self.reason = reason
                self.headers = headers          # list of (name, value), wire order, str (latin-1)
                self.body = body
                self.raw_head = raw_head
                self.chunked = chunked
                self.complete = complete        # False when the framing promised more than came

        def header(self, name, default=None):
                n = name.lower()
                for k, v in self.headers:
                        if k.lower() == n:
                                return v
                return default

        def header_all(self, name):
                n = name.lower()
                return [v for k, v in self.headers if k.lower() == n]

        def has_token(self, name, token):
                t = token.lower()
                for v in self.header_all(name):
                        if t in [x.strip().lower() for x in v.split(",")]:
                                return True
                return False

        def json(self):
                import json
                return json.loads(self.body.decode("utf-8"))

        def __repr__(self):
                return "<Response %s %d %r body=%r>" % (self.version, self.status, self.headers,
                                                        self.body[:200])


class ProtocolError(Exception):
        pass


class Client:
        """A raw HTTP/1.x client on one socket: send bytes, read framed responses."""

        def __init__(self, sock):
                self.sock = sock
                self.buf = bytearray()
                self.eof = False

        def close(self):
                try:
                        self.sock.close()
                except OSError:
                        pass

        def __enter__(self):
                return self

        def __exit__(self, *a):
                self.close()

        def send(self, data):
                self.sock.sendall(data)

        def send_request(self, method, path, headers=(), body=b"", version="HTTP/1.1"):
                self.send(build_request(method, path, headers, body, version))

        def _fill(self):
                if self.eof:
                        return False
                try:
                        chunk = self.sock.recv(65536)
                except (ConnectionResetError, BrokenPipeError):
                        chunk = b""
                if not chunk:
                        self.eof = True
                        return False
                self.buf += chunk
                return True

        def _read_until(self, sep):
                while True:
                        i = self.buf.find(sep)
                        if i >= 0:
                                out = bytes(self.buf[:i + len(sep)])
                                del self.buf[:i + len(sep)]
                                return out
                        if not self._fill():
                                raise ProtocolError("connection closed before %r; have %r"
                                                    % (sep, bytes(self.buf[:200])))

        def _read_exact(self, n):
                while len(self.buf) < n:
                        if not self._fill():
                                break
                out = bytes(self.buf[:n])
                del self.buf[:n]
                return out

        def read_head(self):
                head = self._read_until(b"\r\n\r\n")
                lines = head[:-4].split(b"\r\n")
                m = re.match(rb"(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
                if not m:
                        raise ProtocolError("bad status line %r" % lines[0])
                headers = []
                for line in lines[1:]:
                        name, sep, value = line.partition(b":")
                        if not sep:
                                raise ProtocolError("bad header line %r" % line)
                        headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
                return (m.group(1).decode(), int(m.group(2)), (m.group(3) or b"").decode("latin-1"),
                        headers, head)

        def get_json(self, path):
                """GET path on this connection: a 200 answer's JSON body."""
                self.send_request("GET", path)
                r = self.read_response()
                assert r.status == 200, r
                return r.json()

        def read_response(self, method="GET", skip_interim=True):
                """Reads one response; 1xx interim responses are skipped unless asked for."""
                while True:
                        version, status, reason, headers, head = self.read_head()
                        if 100 <= status < 200 and skip_interim and status != 101:
                                continue
                        break
                r = Response(version, status, reason, headers, b"", head)
                te = r.header("Transfer-Encoding")
                cl = r.header("Content-Length")
                if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                        return r
                if te is not None and "chunked" in te.lower():
                        r.chunked = True
                        body = bytearray()
                        try:
                                while True:
                                        line = self._read_until(b"\r\n")
                                        size = int(line.split(b";")[0].strip(), 16)
                                        if size == 0:
                                                while self._read_until(b"\r\n") != b"\r\n":
                                                        pass
                                                break
                                        body += self._read_exact(size)
                                        if self._read_exact(2) != b"\r\n":
                                                raise ProtocolError("chunk not followed by CRLF")
                        except ProtocolError:
                                r.complete = False
                        r.body = bytes(body)
                        return r
                if cl is not None:
                        n = int(cl)
                        r.body = self._read_exact(n)
                        r.complete = len(r.body) == n
                        return r
                # Delimited by close.
                while self._fill():
                        pass
                r.body = bytes(self.buf)
                self.buf.clear()
                return r

        def read_all_responses(self, methods=None):
                """Reads responses until the connection closes; returns them all."""
                out = []
                i = 0
                while True:
                        if not self.buf and not self._fill():
                                break
                        m = "GET"
                        if methods and i < len(methods):
                                m = methods[i]
                        out.append(self.read_response(method=m))
                        i += 1
                return out

        def at_eof(self, timeout=10.0):
                """True when the peer closes with nothing more to read within timeout."""
                if self.buf:
                        return False
                self.sock.settimeout(timeout)
                try:
                        return not self._fill()
                except socket.timeout:
                        return False
                finally:
                        self.sock.settimeout(SOCK_TIMEOUT)


def build_request(method, path, headers=(), body=b"", version="HTTP/1.1"):
        lines = ["%s %s %s" % (method, path, version)]
        names = [h[0].lower() for h in headers]
        if version == "HTTP/1.1" and "host" not in names:
                lines.append("Host: 127.0.0.1")
        for k, v in headers:
                lines.append("%s: %s" % (k, v))
        if body and "content-length" not in names and "transfer-encoding" not in names:
                lines.append("Content-Length: %d" % len(body))
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head + body


def parse_responses(data, methods=None):
        """Parses every response in data (bytes read until close)."""

        class _Buf:
                def __init__(self, d):
                        self.d = d

                def recv(self, n):
                        out, self.d = self.d[:n], self.d[n:]
                        return out

                def settimeout(self, t):
                        pass

        c = Client(_Buf(data))
        return c.read_all_responses(methods)


def pattern_bytes(n):
        """The deterministic content the test apps serve for /file?size=N."""
        base = bytes(range(251))
        reps = n // len(base) + 1
        return (base * reps)[:n]


def pattern(n, seed=0):
        """n bytes of a repeating, seed-dependent content, for byte-exact upload and answer tests."""
        unit = bytes((i * 7 + seed) % 251 for i in range(4096))
        return (unit * (n // len(unit) + 1))[:n]


def in_parallel(fn, args, bound=30.0):
        """Runs fn(arg) for each arg on a thread of its own; returns the results in order and
        raises the first failure. Each thread is waited for at most bound seconds."""
        results = [None] * len(args)
        errors = []

        def run(i, a):
                try:
                        results[i] = fn(a)
                except BaseException as e:      # noqa: B902 - reported to the caller
                        errors.append(e)
        threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(args)]
        for t in threads:
                t.start()
        for t in threads:
                t.join(bound)
        if errors:
                raise errors[0]
        return results


class ServerTestCase(unittest.TestCase):
        """Starts servers with automatic cleanup."""

        def start(self, app="routes:app", args=(), **kw):
                srv = Server(app, args=args, **kw)
                self.addCleanup(srv.stop)
                return srv

        def assertServes(self, srv, path="/", expect_body=b"Hello, World!\n"):
                """A follow-up request on a new connection gets 200 (the worker is alive)."""
                r = srv.get(path)
                self.assertEqual(r.status, 200, r)
                if expect_body is not None:
                        self.assertEqual(r.body, expect_body)

        def idle_clients(self, srv, n, path="/"):
                """n kept-alive clients, each idle after one answered request, closed at the
                test's end."""
                out = []
                for _ in range(n):
                        c = srv.client()
                        self.addCleanup(c.close)
                        c.send_request("GET", path)
                        self.assertEqual(c.read_response().status, 200)
                        out.append(c)
                return out

        def get_json_in_thread(self, client, path):
                """client.get_json(path) in a thread of its own, joined at the test's end: the
                thread, and the dict the answer's JSON fills."""
                result = {}
                t = threading.Thread(target=lambda: result.update(client.get_json(path)))
                t.start()
                self.addCleanup(t.join, 30)
                return t, result


class SharedServerTestCase(unittest.TestCase):
        """One server for the whole class: APP with ARGS, stopped after the last test."""
        APP = "routes:app"
        ARGS = ()
        srv = None

        @classmethod
        def setUpClass(cls):
                cls.srv = Server(cls.APP, args=list(cls.ARGS))

        @classmethod
        def tearDownClass(cls):
                if cls.srv:
                        cls.srv.stop()

        def assertServes(self):
                """A request on a new connection gets 200 (the worker is alive)."""
                r = self.srv.get("/")
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.body, b"Hello, World!\n")


def main():
        if not GCORN:
                print("GCORN is not set; nothing to test", file=sys.stderr)
                sys.exit(1)
        prog = unittest.main(module="__main__", verbosity=2, exit=False)
        sys.exit(0 if prog.result.wasSuccessful() else 1)
