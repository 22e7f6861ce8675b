"""gcorn's gevent worker: gevent's hub is the worker's outer loop.

The worker's epoll fd is one reader in the hub, with a timer for its next deadline; each
call of _gcorn_aio.step() runs the worker's loop (in C) once without waiting. Each complete
request runs in a greenlet of its own, from the Python frames below: the C calls they make
never wait, and where the request would (a body not received yet, an answer the client has
not taken) the greenlet waits here, on a Waiter the loop's wake-up switches to. So no C
frame of gcorn's is on a greenlet's stack when it yields (see include/gcorn/aio.h).
"""
import logging
import os

import greenlet
from gevent import Greenlet
from gevent.hub import Waiter, get_hub

_loop = None


def _wait(req):
        waiter = Waiter()
        req.waiter = waiter
        try:
                waiter.get()
        finally:
                req.waiter = None


def _wake(req):
        # Called inside step(): the greenlet runs once the hub has left it.
        waiter = req.waiter
        if waiter is not None:
                _loop.run_callback(waiter.switch, None)


def _drain(req):
        while req.wait():
                _wait(req)


class Input:
        """wsgi.input: gcorn's own, whose reads raise BlockingIOError where they would wait
        (what they read so far stays with it for the next call)."""

        __slots__ = ("_raw", "_req")

        def __init__(self, raw, req):
                self._raw = raw
                self._req = req

        def read(self, *args):
                while True:
                        try:
                                return self._raw.read(*args)
                        except BlockingIOError:
                                _wait(self._req)

        def readline(self, *args):
                while True:
                        try:
                                return self._raw.readline(*args)
                        except BlockingIOError:
                                _wait(self._req)

        def readlines(self, hint=None):
                if hint is not None and not isinstance(hint, int):
                        hint = hint.__index__()
                lines, total = [], 0
                while True:
                        line = self.readline()
                        if not line:
                                return lines
                        lines.append(line)
                        total += len(line)
                        if hint is not None and 0 < hint <= total:
                                return lines

        def __iter__(self):
                return self

        def __next__(self):
                line = self.readline()
                if not line:
                        raise StopIteration
                return line

        def close(self):
                pass


def _serve(req, app):
        result = None
        taken = False           # gcorn sends (and closes) a list, tuple or file wrapper itself
        try:
                args = req.begin()
                if args is not None:
                        environ = args[0]
                        environ["wsgi.input"] = Input(environ["wsgi.input"], req)

                        def write(data):
                                if not req.write(data):
                                        _drain(req)

                        def sr(status, headers, exc_info=None):
                                req.start_response(status, headers, exc_info)
                                return write

                        result = app(environ, sr)
                        code = req.result(result)
                        taken = code in (0, 1)
                        while code == 0:
                                _drain(req)
                                code = req.more()
                        if code == 2:
                                for item in result:
                                        if not req.item(item):
                                                _drain(req)
                                req.end_body()
                        elif code == 3:
                                req.fail(None)
        except BaseException as e:      # noqa: B902 - every failure gets gcorn's answer and log line
                req.fail(e)
        if result is not None and not taken and not isinstance(result, (list, tuple, bytes)):
                close = getattr(result, "close", None)
                if close is not None:
                        try:
                                close()
                        except BaseException as e:      # noqa: B902
                                req.close_failed(e)
        req.finish()
        _poke()


# The request of each greenlet that runs one: told to the worker on each switch, so that a
# greenlet that blocks the hub is named by the watchdog.
_running = {}


def _trace(event, args):
        if event == "switch" or event == "throw":
                _core.running(_running.get(args[1]))


def _spawn(req, app):
        g = Greenlet(_serve, req, app)
        _running[g] = req
        g.link(_ended)
        g.start()


def _ended(g):
        _running.pop(g, None)


_tick_due = False


def _tick():
        global _tick_due, _timer
        _tick_due = False
        if _forked:
                return
        due = _core.step()
        if due is None:
                _io.stop()
                if _timer is not None:
                        _timer.stop()
                _done.switch(None)
                return
        if _timer is not None:
                _timer.stop()
        _timer = _loop.timer(due)
        _timer.start(_tick)


def _poke():
        # A request's end changed the loop's state (a connection to watch, room for another):
        # one step soon, however many requests end meanwhile.
        global _tick_due
        if not _tick_due:
                _tick_due = True
                _loop.run_callback(_tick)


_core = _io = _timer = _done = None
_forked = False


def _after_fork():
        # An app that forks (gevent's os.fork) leaves a copy of the hub in its child, which
        # must not run the worker's loop: the epoll instance is the worker's.
        global _forked
        _forked = True
        if _io is not None:
                _io.stop()
        if _timer is not None:
                _timer.stop()


def run(core, app):
        global _loop, _core, _io, _done
        _loop = get_hub().loop
        _core = core
        _done = Waiter()
        core.start(lambda req: _spawn(req, app), _wake)
        greenlet.settrace(_trace)
        _io = _loop.io(core.fd(), 1)
        _io.start(_tick)
        _poke()
        os.register_at_fork(after_in_child=_after_fork)
        while True:
                try:
                        _done.get()
                        greenlet.settrace(None)
                        return
                except BaseException:   # noqa: B902
                        # The hub passes what it cannot handle to this greenlet, such as an
                        # exception an app's signal handler raised while the hub ran: the
                        # worker goes on.
                        logging.getLogger("gunicorn.error").exception("Error in the gevent hub")
