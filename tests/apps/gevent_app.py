"""Routes for the gevent worker's tests: requests that sleep (time.sleep, patched), talk to
a TCP server of the test's, block the hub, read large bodies or stream large answers."""
import contextvars
import itertools
import json
import os
import socket
import threading
import time
import weakref
from urllib.parse import parse_qs

from bulk_routes import bulk


def _qs(environ):
        return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _json(start_response, obj):
        body = json.dumps(obj).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


# a serial number per greenlet that ran a request: a new greenlet gets a new one even where
# it reuses the address of one that ended
_greenlets = weakref.WeakKeyDictionary()
_serials = itertools.count(1)
_request_var = contextvars.ContextVar("request_var", default=None)


def app(environ, start_response):
        path = environ["PATH_INFO"]
        q = _qs(environ)
        if path == "/slow":
                # start and end as the app saw them: the test compares these, not wall-clock speed
                start = time.monotonic()
                time.sleep(float(q.get("s", "0.5")))
                return _json(start_response, {"start": start, "end": time.monotonic()})
        if path == "/upstream":
                # a request to the test's own server, on a socket gevent patched
                start = time.monotonic()
                with socket.create_connection(("127.0.0.1", int(q["port"])), timeout=30) as s:
                        s.sendall(b"ping\n")
                        got = s.makefile("rb").readline()
                return _json(start_response, {"start": start, "end": time.monotonic(), "got": got.decode()})
        if path == "/env":
                return _json(start_response, {"multithread": environ["wsgi.multithread"],
                                              "multiprocess": environ["wsgi.multiprocess"],
                                              "patched": socket.socket.__module__,
                                              "thread": threading.current_thread().__class__.__module__})
        if path == "/fork":
                # the child keeps a copy of the hub, and sleeps in it (os.fork is gevent's)
                child = os.fork()
                if child == 0:
                        time.sleep(1.5)
                        os._exit(0)
                return _json(start_response, {"child": child})
        if path == "/pid":
                return _json(start_response, {"pid": os.getpid()})
        if path == "/greenlet":
                # which greenlet runs the request, and what a context variable held before the
                # request set it
                import gevent
                g = gevent.getcurrent()
                if g not in _greenlets:
                        _greenlets[g] = next(_serials)
                seen = _request_var.get()
                _request_var.set(q.get("mark", "set"))
                return _json(start_response, {"greenlet": _greenlets[g], "seen": seen})
        if path == "/leave-timeout":
                # starts a gevent.Timeout and never cancels it
                import gevent
                gevent.Timeout(float(q.get("s", "0.3"))).start()
                return _json(start_response, {"left": True})
        if path == "/backend":
                # the libev backend of the worker's hub
                import gevent
                return _json(start_response, {"backend": gevent.get_hub().loop.backend})
        if path == "/spin":
                # blocks the hub: nothing gevent patched is called
                while True:
                        pass
        answer = bulk(environ, start_response, path, q)
        if answer is not None:
                return answer
        body = b"hello from gevent_app\n"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
