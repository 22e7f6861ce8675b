"""The WSGI app the private-systemd tests serve.

/               200 "ok <pid>"
/slow?s=N       sleeps N seconds
/hang           busy loop (never returns)
/crash          raises (the server answers 500 and logs the traceback)
/log?level=L    logs a line through wsgi.errors and the logging module
/print          prints a line on stdout
/environ        JSON: os.environ and the environment a subprocess sees
"""

import json
import logging
import os
import subprocess
import sys
import time
from urllib.parse import parse_qs

# Every worker takes this long to boot, so that a reload that does not wait is noticed.
BOOT_DELAY = float(os.environ.get("TAPP_BOOT_DELAY", "0.3"))
time.sleep(BOOT_DELAY)

log = logging.getLogger("tapp")


def _reply(start_response, status, body, ctype="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(data)))])
        return [data]


def app(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        q = parse_qs(environ.get("QUERY_STRING", ""))
        if path == "/":
                return _reply(start_response, "200 OK", "ok %d\n" % os.getpid())
        if path == "/slow":
                s = float(q.get("s", ["1"])[0])
                time.sleep(s)
                return _reply(start_response, "200 OK", "slept %g\n" % s)
        if path == "/hang":
                while True:
                        pass
        if path == "/crash":
                raise RuntimeError("tapp-crash-marker %s" % q.get("tag", [""])[0])
        if path == "/log":
                level = q.get("level", ["error"])[0].upper()
                tag = q.get("tag", [""])[0]
                environ["wsgi.errors"].write("tapp-errors-marker %s %s\n" % (level, tag))
                environ["wsgi.errors"].flush()
                log.log(getattr(logging, level, logging.ERROR), "tapp-logging-marker %s %s", level, tag)
                return _reply(start_response, "200 OK", "logged\n")
        if path == "/partial":
                # A last line with no newline and no flush: held back for the rest of its line.
                environ["wsgi.errors"].write("tapp-partial-marker %s" % q.get("tag", [""])[0])
                return _reply(start_response, "200 OK", "written\n")
        if path == "/print":
                print("tapp-print-marker %s" % q.get("tag", [""])[0])
                sys.stdout.flush()
                return _reply(start_response, "200 OK", "printed\n")
        if path == "/environ":
                child = subprocess.run(["/usr/bin/env", "-0"], stdout=subprocess.PIPE, check=True).stdout
                sub = dict(kv.split("=", 1) for kv in child.decode().split("\0") if "=" in kv)
                body = json.dumps({"os": dict(os.environ), "subprocess": sub, "pid": os.getpid()})
                return _reply(start_response, "200 OK", body, "application/json")
        return _reply(start_response, "404 Not Found", "not found\n")
