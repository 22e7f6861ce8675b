"""The app of the hand-off transit tests: as tests/apps/handoff_app.py (the serving worker's
pid, the request's id echoed, the app's start and end times; ?sleep=S takes S seconds), and

  /exhaust  lowers this worker's RLIMIT_NOFILE soft limit to its lowest free descriptor
            number (the number of descriptors it has open, when they have no gap), so that
            the next descriptor it would get, from accept() or with a message, is refused;
  /restore  puts the soft limit back as it was."""

import json
import os
import resource
import time
from urllib.parse import parse_qs

_saved = []


def _exhaust():
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if not _saved:
                _saved.append(soft)
        # The kernel hands out the lowest free number, and refuses one at or above the limit.
        free = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        os.close(free)
        resource.setrlimit(resource.RLIMIT_NOFILE, (free, hard))
        return {"limit": free, "was": _saved[0]}


def _restore():
        if _saved:
                hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
                resource.setrlimit(resource.RLIMIT_NOFILE, (_saved.pop(), hard))
        return {"limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}


def app(environ, start_response):
        q = parse_qs(environ.get("QUERY_STRING", ""))
        path = environ["PATH_INFO"]
        start = time.time()
        extra = {}
        if path == "/exhaust":
                extra = _exhaust()
        elif path == "/restore":
                extra = _restore()
        pause = float(q.get("sleep", ["0"])[0])
        if pause:
                time.sleep(pause)
        body = json.dumps({"pid": os.getpid(), "id": q.get("id", [""])[0], "path": path,
                           "start": start, "end": time.time(), **extra}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
