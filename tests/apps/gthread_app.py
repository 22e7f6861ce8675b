"""Routes for the gthread worker's tests: what each request saw of its thread, and requests
that wait, hang, read large bodies or stream large answers."""
import contextvars
import json
import os
import threading
import time
from urllib.parse import parse_qs

from bulk_routes import bulk

local = threading.local()
# /order: the order in which the worker's threads started the requests
order_lock = threading.Lock()
order_next = 0
counter = contextvars.ContextVar("counter", default=0)


def _qs(environ):
        return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _json(start_response, obj):
        body = json.dumps(obj).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


# /handover/*: events of one case of the answer hand-over test, by name
handover_events = {}


def _handover_event(name):
        with order_lock:
                return handover_events.setdefault(name, threading.Event())


def handover(environ, start_response, path, q):
        case = q["case"]
        if path == "/handover/stream":
                # A first chunk the client does not take at once: the loop pulls the next one once
                # it is out, and stands still in it (with this generator) until /handover/b ran
                # or the bound passed.
                def stream():
                        yield b"s" * int(q["size"])
                        _handover_event(case + "-loop").set()
                        ran = _handover_event(case + "-b").wait(float(q["wait"]))
                        yield b"B-RAN" if ran else b"B-NOT-RAN"
                start_response("200 OK", [("Content-Type", "text/plain")])
                return stream()
        if path == "/handover/a":
                # the test learns the thread runs it; the answer is made once the loop stands still
                open(q["mark"], "w").close()
                _handover_event(case + "-loop").wait(float(q["wait"]))
                body = b"a" * int(q["size"])
                start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
                return [body]
        if path == "/handover/b":
                _handover_event(case + "-b").set()
                start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "1")])
                return [b"b"]
        start_response("404 Not Found", [("Content-Length", "0")])
        return []


def app(environ, start_response):
        path = environ["PATH_INFO"]
        q = _qs(environ)
        if path == "/slow":
                # start and end as the app saw them: the test compares these, not wall-clock speed
                start = time.monotonic()
                time.sleep(float(q.get("s", "0.5")))
                return _json(start_response, {"start": start, "end": time.monotonic(),
                                              "thread": threading.get_ident()})
        if path == "/local":
                local.count = getattr(local, "count", 0) + 1
                # each thread has a context of its own, which its requests share
                counter.set(counter.get() + 1)
                time.sleep(float(q.get("s", "0")))
                return _json(start_response, {"thread": threading.get_ident(), "count": local.count,
                                              "context": counter.get()})
        if path == "/order":
                global order_next
                with order_lock:
                        order_next += 1
                        seq = order_next
                time.sleep(float(q.get("s", "0")))
                return _json(start_response, {"seq": seq, "pid": os.getpid()})
        if path == "/env":
                return _json(start_response, {"multithread": environ["wsgi.multithread"],
                                              "multiprocess": environ["wsgi.multiprocess"]})
        if path.startswith("/handover/"):
                return handover(environ, start_response, path, q)
        if path == "/hang":
                while True:
                        time.sleep(0.1)
        answer = bulk(environ, start_response, path, q)
        if answer is not None:
                return answer
        body = b"hello from gthread_app\n"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
