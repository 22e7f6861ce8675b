"""The app of the handoff tests: answers with the pid of the worker that served the request,
the request's id (?id=) echoed, the client's address as the environ has it, and when the
app started and ended it (time.time()); ?sleep=S makes it take S seconds."""

import json
import os
import time
from urllib.parse import parse_qs


def app(environ, start_response):
        q = parse_qs(environ.get("QUERY_STRING", ""))
        start = time.time()
        pause = float(q.get("sleep", ["0"])[0])
        if pause:
                time.sleep(pause)
        body = json.dumps({"pid": os.getpid(), "id": q.get("id", [""])[0], "path": environ["PATH_INFO"],
                           "remote": [environ.get("REMOTE_ADDR"), environ.get("REMOTE_PORT")],
                           "start": start, "end": time.time()}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
