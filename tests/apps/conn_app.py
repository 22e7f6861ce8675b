"""Routes for the connection-core tests (tests/integration/test_conn.py)."""

import os
import signal
import time
from urllib.parse import parse_qs


class AlarmInterrupted(Exception):
        pass


def _qs(environ):
        return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _text(start_response, body, status="200 OK"):
        if isinstance(body, str):
                body = body.encode()
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]


def _raise_alarm(signum, frame):
        raise AlarmInterrupted("alarm")


def _arm_alarm():
        signal.signal(signal.SIGALRM, _raise_alarm)
        signal.setitimer(signal.ITIMER_REAL, 0.3)


def _disarm_alarm():
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)


def pid(environ, start_response):
        return _text(start_response, str(os.getpid()))


def fork(environ, start_response):
        # The child keeps every descriptor of the worker, the client's socket included, for a
        # while after the worker is done with the connection.
        child = os.fork()
        if child == 0:
                time.sleep(1.5)
                os._exit(0)
        return _text(start_response, "forked %d" % child)


def unread(environ, start_response):
        """Answers size bytes without reading the request body."""
        size = int(_qs(environ).get("size", "10"))
        return _text(start_response, b"u" * size)


def write_then_read(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"first;")
        return [environ["wsgi.input"].read()]


def echo(environ, start_response):
        return _text(start_response, environ["wsgi.input"].read())


def big(environ, start_response):
        return _text(start_response, b"b" * int(_qs(environ).get("size", "1000000")))


def alarm_read(environ, start_response):
        _arm_alarm()
        try:
                environ["wsgi.input"].read()
        except AlarmInterrupted:
                return _text(start_response, "interrupted")
        finally:
                _disarm_alarm()
        return _text(start_response, "read without interruption")


def alarm_write(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "application/octet-stream")])
        _arm_alarm()
        try:
                chunk = b"w" * (1 << 20)
                for _ in range(256):
                        write(chunk)
        finally:
                _disarm_alarm()
        return []


def sleep(environ, start_response):
        time.sleep(float(_qs(environ).get("s", "0.5")))
        return _text(start_response, "slept")


_hoard = []


def hog(environ, start_response):
        """Keeps mb MiB of fresh, written memory for the rest of the worker's life."""
        mb = int(_qs(environ).get("mb", "64"))
        _hoard.append(bytearray(b"h" * (mb << 20)))
        return _text(start_response, "holding %d MiB" % (len(_hoard) * mb))


ROUTES = {
        "/pid": pid,
        "/fork": fork,
        "/unread": unread,
        "/write-then-read": write_then_read,
        "/echo": echo,
        "/big": big,
        "/alarm-read": alarm_read,
        "/alarm-write": alarm_write,
        "/sleep": sleep,
        "/hog": hog,
}


def app(environ, start_response):
        handler = ROUTES.get(environ.get("PATH_INFO", "/"))
        if handler is None:
                return _text(start_response, "not found", status="404 Not Found")
        return handler(environ, start_response)
