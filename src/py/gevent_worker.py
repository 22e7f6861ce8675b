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

from contextvars import Context

import gevent
import greenlet
from gevent import Greenlet, getcurrent
from gevent.hub import Waiter, get_hub

# libev's backends for the hub, tried in this order. libev's epoll backend gives epoll_wait()
# a timeout in whole milliseconds, rounded up, so a gevent.sleep(0.01) (an app's time.sleep)
# ends up to 1 ms late, 0.5 ms on average, and the timers that ended in the same millisecond
# fire together: their greenlets answer in one burst, their clients' next requests come back
# in one burst and start their sleeps together, and the worker stays in that lockstep, each
# request waiting for those ahead of it in the burst. Its io_uring backend waits on a timerfd
# set to the nanosecond, so each timer fires when it is due. Where io_uring cannot be set up
# (a kernel before 5.6, a seccomp filter that refuses io_uring_setup() as gcorn's own units
# do, a libev without it) libev falls back to epoll by itself.
BACKEND = "linux_iouring,epoll"


def _choose_backend():
        # Only when nobody chose: GEVENT_BACKEND in the environment and gevent.config set in
        # the config file (the master runs it; the worker inherits what it set) are the
        # user's; a hub that exists already (an app the master preloaded made one) keeps its
        # own.
        setting = gevent.config.settings["libev_backend"]
        if os.environ.get(setting.environment_key) or "value" in vars(setting):
                return
        from gevent._hub_local import get_hub_if_exists
        if get_hub_if_exists() is None:
                gevent.config.libev_backend = BACKEND


def setup():
        """In the worker, before the app is imported: the hub's backend, then the standard
        library patched and gevent's state made this process's, as Gunicorn's worker does."""
        _choose_backend()
        from gevent import monkey
        monkey.patch_all()
        # A hub the master made (a preloaded app that used gevent) is not this process's.
        gevent.reinit()

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


# The request of each greenlet that runs one: told to the worker on each switch (by
# _gcorn_aio.trace, greenlet.settrace()'s callback), so that a greenlet that blocks the hub is
# named by the watchdog.
_running = {}


# Greenlets that ran a request and wait for the next one, the latest to finish last. A greenlet of
# its own per request would cost, besides the Greenlet, a fresh 16 KiB chunk for its Python
# frames, mmap()ed when it starts and munmap()ed when it ends: a quarter of the worker's time
# with a 10 ms app. Each request still gets an empty contextvars context of its own, as a
# new greenlet has; what the app keeps in a threading.local (gevent's, once patched) stays
# with the greenlet, as it stays with the thread in the sync and gthread workers and with
# the connection's greenlet in Gunicorn's gevent worker.
_idle = []
IDLE_MAX = 256


def _runner(req, app):
        me = getcurrent()
        hub = get_hub()
        while True:
                try:
                        Context().run(_serve, req, app)
                finally:
                        _running.pop(me, None)
                if len(_idle) >= IDLE_MAX or _forked:
                        return
                _idle.append(me)
                # the next request's _spawn() switches back here with it
                req = None
                while not isinstance(req, _core.Request):
                        try:
                                req = hub.switch()
                        except BaseException:   # noqa: B902
                                # what the last request left behind (a gevent.Timeout it
                                # started and never cancelled): this greenlet goes, unless a
                                # request's _spawn() took it already (the request's switch
                                # is on its way)
                                if me in _idle:
                                        _idle.remove(me)
                                        return


class _Runner(Greenlet):
        # The hub's switch() looks for a switch_out() on the greenlet that leaves for it, with
        # a getattr() that, where there is none, makes and drops an AttributeError: a tenth
        # of a request that waits once. There is none to call here, and saying so is free.
        switch_out = None


def _spawn(req, app):
        if _idle:
                g = _idle.pop()
                _running[g] = req
                _loop.run_callback(g.switch, req)
        else:
                g = _Runner(_runner, req, app)
                _running[g] = req
                g.start()


_tick_due = False


def _tick():
        global _tick_due, _timer, _timer_at
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
        at = _loop.now() + due
        if _timer is not None:
                if _timer_at <= at and _timer.active:
                        # the timer set is due first: it steps then, which is early at worst
                        # (the step sets the next); a new timer each step would cost more
                        return
                _timer.stop()
        _timer_at = at
        _timer = _loop.timer(due)
        _timer.start(_tick)


def _poke():
        # A request's end changed the loop's state (a connection to watch, room for another):
        # one step soon, however many requests end meanwhile. The step also takes the
        # requests that came while the hub's round ran (clients answered early in the round
        # are back by its end) before the hub goes to sleep: under load the next round starts
        # without a wake-up, which keeps a 10 ms sleep's answers close to 10 ms.
        global _tick_due
        if not _tick_due:
                _tick_due = True
                _loop.run_callback(_tick)


_core = _io = _timer = _done = None
_timer_at = 0.0                 # the hub's time _timer is due at
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
        core.start(lambda req: _spawn(req, app), _wake, None, _running)
        greenlet.settrace(core.trace)
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
