"""The app the master (arbiter) tests run: crashes, hangs and slow requests on demand.

The version it serves is read once, at import time, from the file named by
ARBITER_VERSION_FILE, so a reload that re-imports the app is visible in responses. A version
file that says "raise" makes the import fail; ARBITER_APP_BROKEN=1 makes it fail with an
ImportError for a missing module. ARBITER_SLOW_IMPORT, ARBITER_SLOW_FORK and ARBITER_CHILD_RESULT
are described below."""

import atexit
import ctypes
import logging
import os
import time
from urllib.parse import parse_qs

if os.environ.get("ARBITER_APP_BROKEN") == "1":
        import arbiter_missing_dependency  # noqa: F401


def _read_version():
        path = os.environ.get("ARBITER_VERSION_FILE")
        if not path:
                return "v1"
        with open(path) as f:
                v = f.read().strip()
        if v == "raise":
                raise RuntimeError("arbiter_app: the version file asks for a failed import")
        return v


VERSION = _read_version()

# The import takes this long while the file ARBITER_SLOW_IMPORT names exists: a reload that
# lasts.
if os.path.exists(os.environ.get("ARBITER_SLOW_IMPORT", "/nonexistent")):
        time.sleep(float(os.environ.get("ARBITER_SLOW_IMPORT_S", "8")))

# With --preload: while the file ARBITER_SLOW_FORK names exists, a new worker writes its pid
# there and takes 2 s in the fork hooks, before it could learn of its master's death.
if os.environ.get("ARBITER_SLOW_FORK"):
        def _slow_fork(path=os.environ["ARBITER_SLOW_FORK"]):
                if os.path.exists(path):
                        with open(path, "w") as f:
                                f.write(str(os.getpid()))
                        time.sleep(2.0)

        os.register_at_fork(after_in_child=_slow_fork)

# With --preload this runs in the master: a process the app starts there and waits for when
# the master exits, long after the child's SIGCHLD reached the master. Its exit status goes
# to the file ARBITER_CHILD_RESULT names. (Workers run atexit handlers too; the child is not
# theirs.)
if os.environ.get("ARBITER_CHILD_RESULT"):
        import subprocess

        _child = subprocess.Popen(["/bin/sh", "-c", "exit 7"])
        _child_parent = os.getpid()

        def _wait_child(path=os.environ["ARBITER_CHILD_RESULT"]):
                if os.getpid() != _child_parent:
                        return
                try:
                        result = "returncode=%d" % _child.wait(timeout=10)
                except Exception as e:
                        result = "error=%r" % e
                with open(path, "w") as f:
                        f.write(result)

        atexit.register(_wait_child)

# Tells the tests this process finished importing the app.
if os.environ.get("ARBITER_READY_DIR"):
        open(os.path.join(os.environ["ARBITER_READY_DIR"], str(os.getpid())), "w").close()


# A graceful worker exit runs atexit handlers and logging.shutdown(), where error-reporting
# SDKs flush: each exiting worker leaves a file named after its pid.
if os.environ.get("ARBITER_ATEXIT_DIR"):
        class _FlushOnShutdown(logging.Handler):
                def emit(self, record):
                        pass

                def flush(self):
                        open(os.path.join(os.environ["ARBITER_ATEXIT_DIR"], "flush-%d" % os.getpid()), "w").close()

        logging.getLogger("arbiter_app").addHandler(_FlushOnShutdown())
        atexit.register(lambda: open(os.path.join(os.environ["ARBITER_ATEXIT_DIR"],
                                                  "atexit-%d" % os.getpid()), "w").close())


def hang_forever():
        # Pure Python: no sleep, no I/O, so only the master's timeout can end it.
        n = 0
        while True:
                n += 1


def crash_now():
        return ctypes.string_at(0)


def _reply(start_response, body, status="200 OK"):
        body = body.encode()
        start_response(status, [("Content-Type", "text/plain"),
                                ("Content-Length", str(len(body)))])
        return [body]


def app(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        qs = parse_qs(environ.get("QUERY_STRING", ""))
        if path == "/hang":
                hang_forever()
        elif path == "/segv":
                crash_now()
        elif path == "/slow":
                time.sleep(float(qs.get("s", ["1"])[0]))
        elif path != "/":
                return _reply(start_response, "not found\n", "404 Not Found")
        return _reply(start_response, "version=%s pid=%d\n" % (VERSION, os.getpid()))
