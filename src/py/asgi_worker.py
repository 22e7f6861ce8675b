"""gcorn's asgi worker: an asyncio event loop (uvloop's when asked for, or importable with
--asgi-loop auto) is the worker's outer loop.

The worker's epoll fd is one reader in the loop, with a timer for its next deadline; each
call of _gcorn_aio.step() runs the worker's loop (in C) once without waiting: accepting,
reading, parsing, deadlines, the heartbeat, framing and sending stay there. Each complete
request runs as a task of its own, the app's coroutine; where the request would wait (a body
not received yet, an answer the client has not taken) the task awaits a future that the
loop's wake-up resolves, so no C frame of gcorn's is on its stack when it yields (see
include/gcorn/aio.h). The ASGI messages map onto the calls the WSGI drivers use: the head
of http.response.start is start_response()'s, its body goes through write() and the end of
the body through result(), so the framing, the error answers, the access log and the
metrics are the same code's. A WebSocket's frames are libwslay's (_gcorn_asgi.WebSocket):
after the handshake the task owns the socket, watched by the loop for reading.
"""
import asyncio
from asyncio import Task as _Task
import base64
import contextvars
import errno
import hashlib
import http
import os

_core = _asgi = _loop = None
from _gcorn_asgi import Http as _HttpBase     # put in sys.modules before this runs
_app = None
_named = None
_DONE = None            # _gcorn_asgi.DONE: awaiting it returns None at once
_config = None
_state = {}
_lifespan = None

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# "200 OK" for each status, made once (an HTTPStatus lookup per response costs)
_STATUS_LINES = {int(st): "%d %s" % (st, st.phrase) for st in http.HTTPStatus}


def _status_line(status):
        line = _STATUS_LINES.get(status)
        return line if line is not None else "%d " % status
READ_SIZE = 65536
INBOX_MAX = 32                  # a WebSocket's messages read ahead of the app (websockets' max_queue)
OUT_MAX = 65536                 # held body bytes written without waiting for the round's end


def _log_error(text):
        import _gcorn
        _gcorn.log(3, text)             # LOG_ERR, straight to gcorn's error log


def _log_info(text):
        import _gcorn
        _gcorn.log(6, text)             # LOG_INFO


# ---- waiting on the worker's loop ----

async def _wait(req):
        fut = _loop.create_future()
        req.waiter = fut
        try:
                await fut
        finally:
                req.waiter = None


def _wake(req):
        # Called inside step(): resolving the future only schedules the task.
        fut = req.waiter
        if fut is not None and not fut.done():
                fut.set_result(None)


_tick_handle = None
_tick_at = 0.0                  # the loop's time _tick_handle is due at
_tick_due = False
_websockets = set()             # the open ones (after websocket.accept)


def _timer():
        global _tick_handle
        _tick_handle = None
        _tick()


def _tick():
        global _tick_handle, _tick_due, _tick_at
        _tick_due = False
        try:
                due = _core.step()
        except BaseException as e:      # noqa: B902 - the worker cannot go on: it leaves
                _asgi.log_exception(e, "The worker's loop failed")
                due = None
        if _websockets and _core.retiring():
                # a WebSocket would hold the leaving worker until --graceful-timeout: each is
                # told the server is going away (1001)
                for w in list(_websockets):
                        _websockets.discard(w)
                        _loop.create_task(w.going_away())
        if due is None:
                if _tick_handle is not None:
                        _tick_handle.cancel()
                        _tick_handle = None
                _loop.remove_reader(_core.fd())
                if not _done.done():
                        _done.set_result(None)
                return
        at = _loop.time() + due
        if _tick_handle is not None:
                if _tick_at <= at:
                        # the timer set is due first: it steps then, which is early at worst
                        # (the step sets the next); a new timer each round would cost more
                        return
                _tick_handle.cancel()
        _tick_at = at
        _tick_handle = _loop.call_at(at, _timer)


def _poke():
        # A request's end changed the loop's state (a connection to watch, room for another):
        # one step soon, however many requests end meanwhile.
        global _tick_due
        if not _tick_due:
                _tick_due = True
                _loop.call_soon(_tick)


# ---- http ----

class _Http(_HttpBase):
        """The receive and send of one http request, with every rule of the ASGI spec.

        Its base (_gcorn_asgi.Http) holds req, gone, chunks, status, started, complete and
        disconnected, and its send() takes a response given whole in C; _send() takes the
        rest."""

        # made per request without an __init__: what a request sets goes into its own dict,
        # the rest are these defaults (never the base's, whose fields they would hide)
        # gcorn's wsgi.input: its reads raise BlockingIOError where they would wait, and it
        # keeps a body error for the status the client is owed; taken on the first read
        input = None
        # one wait on the worker's loop at a time per request (one ConnIo); made when a wait
        # first comes
        lock = None
        pending = None                  # a body chunk read ahead
        body_done = False
        body_failed = False             # gcorn owes the client the status of its body
        watchers = 0                    # receive() calls waiting for the client's going
        task = None                     # the request's task, cancelled a grace after the client went
        cancel = None
        # chunks of a streamed body held until the loop's round ends, then written at once (one
        # send for all a round brings, as uvloop's transports do), or at once past OUT_MAX
        out = None
        out_len = 0
        blocked = False                 # the last write found the queue full: drain before the next

        def _client_gone(self):
                """The client went: the app learns it from receive() and has
                --asgi-disconnect-grace-period seconds to end before its task is cancelled."""
                self.disconnected = True
                self._mark_gone()
                if self.cancel is None and self.task is not None:
                        self.cancel = _loop.call_later(_config["disconnect_grace_period"], self.task.cancel)

        def _mark_gone(self):
                gone = self.gone
                self.gone = True
                if gone is not None and gone is not True and not gone.done():
                        # the response is complete (or the client went): the watch is over
                        gone.set_result(None)
                        self.req.watch_hangup(None)

        async def _read(self):
                """The next body chunk: bytes, b"" at the end."""
                if self.input is None:
                        self.input = self.req.input()
                read = self.input.read
                # a read that would wait parks the request's one I/O slot: never beside a drain
                if self.lock is None:
                        self.lock = asyncio.Lock()
                async with self.lock:
                        while True:
                                try:
                                        return read(READ_SIZE)
                                except BlockingIOError:
                                        await _wait(self.req)

        async def receive(self):
                if self.disconnected:
                        return {"type": "http.disconnect"}
                if self.body_done:
                        # nothing more to read: the next message is the client's going, which
                        # for the app comes once its response is complete (or the client left)
                        if self.gone is not True:
                                await self._watch_hangup()
                        return {"type": "http.disconnect"}
                try:
                        data = self.pending if self.pending is not None else await self._read()
                        self.pending = None
                        more = bool(data)
                        if data and _asgi.body_ready(self.req):
                                # a look at what is already here (never a wait): the last chunk
                                # says it is the last
                                try:
                                        ahead = self.input.read(READ_SIZE)
                                except BlockingIOError:
                                        ahead = None
                                if ahead == b"":
                                        more = False
                                elif ahead is not None:
                                        self.pending = ahead
                except OSError as e:
                        if e.errno in (errno.ECONNRESET, errno.EPIPE):
                                self._client_gone()
                                return {"type": "http.disconnect"}
                        # the body failed (malformed, too large, too slow): gcorn owes the client
                        # the status, given once the app returns (result() says 3)
                        self.body_failed = True
                        self.disconnected = True
                        self._mark_gone()
                        return {"type": "http.disconnect"}
                if not more:
                        self.body_done = True
                return {"type": "http.request", "body": data, "more_body": more}

        async def _watch_hangup(self):
                """Waits for the response to be complete or the client to close its end. The
                worker's loop watches for the end: the socket is in its epoll set already, and
                a look at it there (nothing taken) tells the end from the next request. No
                registration in this loop per request: each cost uvloop several epoll_ctl()."""
                gone = self.gone
                if gone is None:
                        gone = self.gone = _loop.create_future()
                self.req.watch_hangup(self._client_gone)
                self.watchers += 1
                try:
                        # each receive() waits on its own: a cancelled one (a task group's end, a
                        # timeout) must not cancel what the others wait for
                        await asyncio.shield(gone)
                finally:
                        self.watchers -= 1
                        if self.watchers == 0 and not gone.done():
                                # cancelled before either: no one listens any more
                                self.req.watch_hangup(None)

        async def _drain(self):
                req = self.req
                if self.lock is None:
                        self.lock = asyncio.Lock()
                async with self.lock:
                        while req.wait():
                                await _wait(req)

        def _send(self, message):
                """send(): an awaitable: _DONE, complete, where nothing has to wait (no coroutine
                made), else a coroutine that waits. A bad message raises here, at the call."""
                kind = message["type"]
                if kind == "http.response.start":
                        if self.started:
                                raise RuntimeError("http.response.start sent twice")
                        status = message["status"]
                        if type(status) is not int or not 200 <= status <= 599:
                                raise ValueError("http.response.start: invalid status %r" % (status,))
                        headers = message.get("headers", ())
                        if type(headers) is not list and type(headers) is not tuple:
                                headers = list(headers)
                        try:
                                # the byte pairs as they are
                                _asgi.start(self.req, _status_line(status), headers)
                        except TypeError:
                                # other buffers (bytearray, memoryview) are bytes too
                                headers = [(bytes(n).decode("latin-1"), bytes(v).decode("latin-1"))
                                           for n, v in headers]
                                self.req.start_response(_status_line(status), headers)
                        self.started = True
                        self.status = status
                        return _DONE
                if kind != "http.response.body":
                        raise ValueError("unexpected message %r on an http connection" % (kind,))
                if not self.started:
                        raise RuntimeError("http.response.body sent before http.response.start")
                if self.complete:
                        raise RuntimeError("http.response.body sent after the response was complete")
                if self.disconnected:
                        # as uvicorn: the client is gone, the app learns it from receive()
                        return _DONE
                body = message.get("body", b"")
                if type(body) is not bytes:
                        body = bytes(body)
                more = message.get("more_body", False)
                req = self.req
                try:
                        if not more and self.chunks == 0:
                                # the whole body at once: its length goes in the head
                                self.complete = True
                                code = req.result((body,))
                        else:
                                if more:
                                        if body:
                                                self.chunks += 1
                                                return self._hold(body)
                                        return _DONE
                                if self.blocked:
                                        return self._drain_then(False, body)
                                if self.out is not None:
                                        body = self._take_out() + body
                                if body:
                                        self.chunks += 1
                                        if not req.write(body):
                                                return self._drain_then(False)
                                self.complete = True
                                code = req.result(())
                        if code == 1:
                                self._mark_gone()
                                return _DONE
                except OSError:
                        self._client_gone()
                        return _DONE
                return self._ending(code)

        def _hold(self, body):
                if self.out is None:
                        self.out = [body]
                        self.out_len = len(body)
                        _loop.call_soon(self._flush)
                else:
                        self.out.append(body)
                        self.out_len += len(body)
                if self.blocked:
                        return self._drain_then(True)
                if self.out_len >= OUT_MAX:
                        try:
                                if not self.req.write(self._take_out()):
                                        self.blocked = True
                        except OSError:
                                self._client_gone()
                return _DONE

        def _take_out(self):
                out = self.out
                self.out = None
                return out[0] if len(out) == 1 else b"".join(out)

        def _flush(self):
                """The loop's round is over: what the request's task held goes out."""
                if self.out is None or self.blocked or self.disconnected:
                        return
                try:
                        if not self.req.write(self._take_out()):
                                self.blocked = True
                except OSError:
                        self._client_gone()

        async def _drain_then(self, more, body=b""):
                try:
                        await self._drain()
                        self.blocked = False
                        data = self._take_out() + body if self.out is not None else body
                        if data and not self.req.write(data):
                                await self._drain()
                        if not more:
                                self.complete = True
                                await self._end(self.req.result(()))
                except OSError:
                        self._client_gone()

        async def _ending(self, code):
                try:
                        await self._end(code)
                except OSError:
                        self._client_gone()

        async def _end(self, code):
                req = self.req
                while code == 0:
                        await self._drain()
                        code = req.more()
                if code == 3:
                        req.fail(None)
                self._mark_gone()


def _http_failed(h, e):
        """The app (or a rule of the spec) failed the request with e."""
        req = h.req
        if h.complete:
                # the answer is out (a framework's own 500): only the log line is left
                _asgi.log_exception(e, "Error handling request (after its response)")
        elif h.disconnected:
                pass
        else:
                if h.out is not None and not h.blocked:
                        # what the app sent goes before the cut
                        try:
                                req.write(h._take_out())
                        except OSError:
                                pass
                req.fail(e)


def _http_body_failed(req):
        # the status of what went wrong with the body (400, 408, 413), as for WSGI
        try:
                code = req.result(())
        except Exception:       # noqa: B902 - the body failed after the head went out
                code = None
        if code == 3:
                req.fail(None)


# ---- websocket ----

class _WebSocket:
        """The receive and send of one WebSocket: the handshake, then frames on the socket."""

        def __init__(self, req):
                self.req = req
                self.environ_sr = None
                self.connect_given = False
                self.deny_written = False
                self.ws = None
                self.fd = -1
                self.state = "connecting"       # connecting, connected, closed
                self.inbox = []
                self.arrived = None             # the future a receive() waits on
                self.flusher = None             # the task that writes what the socket did not take
                self.writable = None            # the future of the socket's writer watch
                self.pong = None                # (payload, future) of the ping waiting for its pong
                self.keepalive = None           # the task that pings
                self.closed_code = None
                self.reader_on = False
                self.denied = False

        # the connecting phase: the app accepts, closes (403) or answers (denial response)
        async def receive(self):
                if self.state == "connecting":
                        if self.connect_given:
                                raise RuntimeError("websocket.receive before the handshake ended")
                        self.connect_given = True
                        return {"type": "websocket.connect"}
                while not self.inbox:
                        if self.state == "closed":
                                return {"type": "websocket.disconnect", "code": self.closed_code or 1006}
                        self._read_on()
                        fut = _loop.create_future()
                        self.arrived = fut
                        try:
                                await fut
                        finally:
                                self.arrived = None
                message = self.inbox.pop(0)
                self._read_on()
                return message

        # Once connected, the socket is read whatever the app does, as uvicorn's protocol
        # reads it: the client's pings are answered and its close is seen while the app only
        # sends (a client such as python-websockets closes a connection whose pings go
        # unanswered). Messages the app has not received yet wait in the inbox; at
        # INBOX_MAX reading stops until the app takes one, as websockets' max_queue does.
        def _read_on(self):
                if not self.reader_on and self.state == "connected" and len(self.inbox) < INBOX_MAX:
                        _loop.add_reader(self.fd, self._on_readable)
                        self.reader_on = True

        def _read_off(self):
                if self.reader_on:
                        _loop.remove_reader(self.fd)
                        self.reader_on = False

        def _on_readable(self):
                """Reads what the client sent, decodes it, writes what that asks (pongs, the
                close's echo)."""
                try:
                        data = os.read(self.fd, READ_SIZE)
                except BlockingIOError:
                        return
                except OSError:
                        data = b""
                if not data:
                        self._closed(1006)
                        return
                self._on_data(data)

        def _on_data(self, data):
                try:
                        msgs = self.ws.feed(data)
                except ValueError:
                        msgs = None
                self._write_soon()
                if msgs is None:
                        # a protocol error: wslay queued the close with its code
                        self._closed(self.ws.close_code_sent() or 1002)
                        return
                for opcode, payload, code in msgs:
                        if opcode == 1:
                                self.inbox.append({"type": "websocket.receive", "text": payload.decode("utf-8")})
                        elif opcode == 2:
                                self.inbox.append({"type": "websocket.receive", "bytes": payload})
                        elif opcode == 10:
                                self._ponged(payload)
                        else:
                                self._closed(code)
                                return
                if len(self.inbox) >= INBOX_MAX:
                        self._read_off()
                self._arrived()

        def _ponged(self, payload):
                # a pong answers the ping that carried its payload; an unasked one is a
                # heartbeat the client may send (RFC 6455 5.5.3)
                if self.pong is not None and self.pong[0] == payload and not self.pong[1].done():
                        self.pong[1].set_result(True)

        async def _ping_loop(self, interval, timeout):
                """The server's keepalive pings, as uvicorn's: a client that stops answering
                (gone without a close, its network cut) is closed with 1011 rather than held
                until the kernel gives up, and the traffic keeps proxies from closing a
                quiet connection."""
                while True:
                        await asyncio.sleep(interval)
                        if self.state != "connected":
                                return
                        payload = os.urandom(4)
                        fut = _loop.create_future()
                        self.pong = (payload, fut)
                        try:
                                self.ws.ping(payload)
                                await self._flush()
                                ponged = await asyncio.wait_for(fut, timeout)
                        except asyncio.TimeoutError:
                                ponged = False
                        except OSError:         # the close is on its way already
                                return
                        finally:
                                self.pong = None
                        if not ponged:
                                await self._close_now(1011, b"keepalive ping timeout")
                                return

        def _arrived(self):
                fut = self.arrived
                if fut is not None and not fut.done():
                        fut.set_result(None)

        async def going_away(self):
                _websockets.discard(self)
                await self._close_now(1001)

        async def _close_now(self, code, reason=b""):
                """The server's own close: the worker leaves, or the client stopped answering."""
                if self.state != "connected":
                        return
                try:
                        self.ws.close(code, reason)
                except OSError:
                        pass
                self._closed(code)
                await self._flush()

        def _closed(self, code):
                _websockets.discard(self)
                self.state = "closed"
                if self.closed_code is None:
                        self.closed_code = code
                self.inbox.append({"type": "websocket.disconnect", "code": self.closed_code})
                self._read_off()
                self._arrived()
                if self.pong is not None and not self.pong[1].done():
                        self.pong[1].set_result(True)   # nothing to wait for: the ping loop ends

        def _write_out(self):
                """Writes what the codec holds as far as the socket takes it; True once all is out.
                Synchronous, so writers never interleave: each takes the codec's output afresh."""
                out = self.ws.output()
                while out:
                        try:
                                n = os.write(self.fd, out)
                        except BlockingIOError:
                                return False
                        except OSError:
                                self.ws.consumed(len(out))
                                if self.state != "closed":
                                        self._closed(1006)
                                return True
                        self.ws.consumed(n)
                        out = self.ws.output()
                return True

        def _write_soon(self):
                # from the reader: what the socket does not take now, a task writes later
                if not self._write_out() and self.flusher is None:
                        self.flusher = _loop.create_task(self._flush())

        async def _flush(self):
                # The app's send() and the reader's flusher may both wait: one writer watch
                # for the socket, whose future each waits on through shield(), so that one
                # waiter cancelled leaves the others waiting.
                while not self._write_out():
                        if self.writable is None:
                                self.writable = _loop.create_future()
                                _loop.add_writer(self.fd, self._on_writable)
                        await asyncio.shield(self.writable)
                if self.flusher is asyncio.current_task():
                        self.flusher = None

        def _on_writable(self):
                _loop.remove_writer(self.fd)
                fut, self.writable = self.writable, None
                if fut is not None and not fut.done():
                        fut.set_result(None)

        async def send(self, message):
                kind = message["type"]
                if self.state == "connecting":
                        if kind == "websocket.accept":
                                await self._accept(message)
                                return
                        if kind == "websocket.close":
                                # refused before the handshake: 403, as uvicorn and Gunicorn answer
                                self._deny(403, [], b"")
                                self.state = "closed"
                                return
                        if kind == "websocket.http.response.start":
                                self._deny_start(message)
                                return
                        if kind == "websocket.http.response.body":
                                await self._deny_body(message)
                                return
                        raise RuntimeError("%s before websocket.accept" % kind)
                if self.state == "denying" and kind == "websocket.http.response.body":
                        await self._deny_body(message)
                        return
                if self.state == "closed":
                        if kind == "websocket.close":
                                return
                        raise OSError("the WebSocket is closed")
                if kind == "websocket.send":
                        text, data = message.get("text"), message.get("bytes")
                        if text is not None:
                                self.ws.send_text(text)
                        elif data is not None:
                                self.ws.send_bytes(bytes(data))
                        else:
                                raise ValueError("websocket.send needs text or bytes")
                        await self._flush()
                        return
                if kind == "websocket.close":
                        self.ws.close(message.get("code", 1000), (message.get("reason") or "").encode("utf-8"))
                        await self._flush()
                        self.state = "closed"
                        _websockets.discard(self)
                        self.closed_code = self.closed_code or message.get("code", 1000)
                        self._read_off()
                        return
                raise ValueError("unexpected message %r on a WebSocket" % (kind,))

        async def _accept(self, message):
                key = self.environ_sr[0]["HTTP_SEC_WEBSOCKET_KEY"].encode("latin-1")
                accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
                lines = [b"HTTP/1.1 101 Switching Protocols", b"Server: gcorn", b"Upgrade: websocket",
                         b"Connection: Upgrade", b"Sec-WebSocket-Accept: " + accept]
                sub = message.get("subprotocol")
                if sub is not None:
                        lines.append(b"Sec-WebSocket-Protocol: " + sub.encode("latin-1"))
                for name, value in message.get("headers", ()):
                        name = bytes(name)
                        if b"\r" in name or b"\n" in name or b"\r" in bytes(value) or b"\n" in bytes(value):
                                raise ValueError("invalid header in websocket.accept")
                        if name.lower() in (b"sec-websocket-extensions", b"connection", b"upgrade",
                                            b"sec-websocket-accept", b"content-length", b"transfer-encoding"):
                                continue
                        lines.append(name + b": " + bytes(value))
                head = b"\r\n".join(lines) + b"\r\n\r\n"
                self.fd, rest = _asgi.upgrade(self.req, head)
                # the head must be out before a frame follows on the socket
                while self.req.wait():
                        await _wait(self.req)
                self.ws = _asgi.WebSocket(_config["websocket_max_message_size"])
                self.state = "connected"
                _websockets.add(self)
                if rest:
                        # frames the client sent right behind its handshake
                        self._on_data(rest)
                        await self._flush()
                self._read_on()
                if _config["websocket_ping_interval"] > 0:
                        self.keepalive = _loop.create_task(self._ping_loop(_config["websocket_ping_interval"],
                                                                           _config["websocket_ping_timeout"]))

        def _deny(self, status, headers, body):
                self.req.start_response(_status_line(status), headers or [("Content-Type", "text/plain")])
                self.req.result((body,))

        def _deny_start(self, message):
                headers = [(bytes(n).decode("latin-1"), bytes(v).decode("latin-1"))
                           for n, v in message.get("headers", ())]
                status = message["status"]
                if type(status) is not int or not 200 <= status <= 599:
                        raise ValueError("websocket.http.response.start: invalid status %r" % (status,))
                self.req.start_response(_status_line(status), headers)
                self.state = "denying"
                self.denied = True

        async def _deny_body(self, message):
                if self.state != "denying":
                        raise RuntimeError("websocket.http.response.body before its start")
                req = self.req
                body = bytes(message.get("body", b""))
                if message.get("more_body", False):
                        if body:
                                self.deny_written = True
                                if not req.write(body):
                                        while req.wait():
                                                await _wait(req)
                        return
                if not self.deny_written:
                        # the whole body at once: its length goes in the head
                        code = req.result((body,))
                else:
                        if body and not req.write(body):
                                while req.wait():
                                        await _wait(req)
                        code = req.result(())
                while code == 0:
                        while req.wait():
                                await _wait(req)
                        code = req.more()
                self.state = "closed"


async def _serve_websocket(req, environ_sr):
        why = _asgi.handshake(req)
        if why is not None:
                status, reason = why
                extra = [("Sec-WebSocket-Version", "13")] if status == 426 else []
                req.start_response(_status_line(status), [("Content-Type", "text/plain")] + extra)
                req.result(((reason + "\n").encode(),))
                return
        w = _WebSocket(req)
        w.environ_sr = environ_sr
        scope = _asgi.websocket_scope(req, _state)
        try:
                await _named(_app(scope, w.receive, w.send), req)
                if w.state == "connecting":
                        # returned without a word: refused, as uvicorn answers
                        w._deny(403, [], b"")
                elif w.state == "connected":
                        w.ws.close(1000, b"")
                        await w._flush()
        except BaseException as e:      # noqa: B902
                if isinstance(e, (KeyboardInterrupt, SystemExit)):
                        raise
                if w.state == "connecting":
                        req.fail(e)
                else:
                        if w.state == "connected":
                                try:
                                        w.ws.close(1011, b"")
                                        await w._flush()
                                except Exception:       # noqa: B902 - the connection goes anyway
                                        pass
                        _asgi.log_exception(e, "Error handling a WebSocket")
        finally:
                _websockets.discard(w)
                w._read_off()
                if w.keepalive is not None:
                        w.keepalive.cancel()
                if w.flusher is not None:
                        w.flusher.cancel()
                if w.writable is not None:
                        _loop.remove_writer(w.fd)
                        w.writable.cancel()


async def _serve(req, h):
        # the http request's path is written out here, in the one coroutine of its task
        try:
                scope = req.begin_scope(_state)
                if scope is False:
                        args = req.begin()
                        if args is not None:
                                await _serve_websocket(req, args)
                elif scope is not None:
                        try:
                                await _named(_app(scope, h.receive, h.send), req)
                                if not h.started:
                                        raise RuntimeError("the ASGI app returned without sending http.response.start")
                                if not h.complete and not h.disconnected:
                                        raise RuntimeError("the ASGI app returned before its response was complete")
                        except BaseException as e:      # noqa: B902 - every failure gets gcorn's answer and log line
                                if isinstance(e, (KeyboardInterrupt, SystemExit)):
                                        raise
                                _http_failed(h, e)
                        finally:
                                if h.cancel is not None:
                                        h.cancel.cancel()
                                if h.gone is not True:
                                        h._mark_gone()
                        if h.body_failed and not h.complete:
                                _http_body_failed(req)
        except BaseException as e:      # noqa: B902
                if isinstance(e, (KeyboardInterrupt, SystemExit)):
                        raise
                req.fail(e)
        req.finish()
        _poke()


def _on_request(req):
        # Each request in a context of its own, a copy of the worker's: on_request is called
        # inside another request's task too (its end dispatches a pipelined request; its
        # _poke() runs the next step in its context), whose values must not leak into this one.
        context = _root_context.copy()
        h = _Http()
        h.req = req
        if _loop.get_task_factory() is None:
                # as the loop's create_task(), which formats a default name for each first
                h.task = _Task(_serve(req, h), loop=_loop, name="gcorn-asgi-request", context=context)
        else:
                h.task = context.run(_loop.create_task, _serve(req, h))


# ---- lifespan ----

class _Lifespan:
        def __init__(self, mode):
                self.mode = mode
                self.inbox = asyncio.Queue()
                self.outbox = asyncio.Queue()
                self.task = None
                self.unsupported = False

        async def _main(self):
                scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": _state}
                try:
                        await _app(scope, self.inbox.get, self.outbox.put)
                except BaseException as e:      # noqa: B902
                        if isinstance(e, (KeyboardInterrupt, SystemExit)):
                                raise
                        self.outbox.put_nowait({"type": "_raised", "exc": e})
                        return
                self.outbox.put_nowait({"type": "_returned"})

        async def _step(self, kind):
                await self.inbox.put({"type": "lifespan." + kind})
                return await self.outbox.get()

        async def startup(self):
                """None when the app started (or does without lifespan), else why it failed."""
                self.task = _loop.create_task(self._main())
                m = await self._step("startup")
                t = m["type"]
                if t == "lifespan.startup.complete":
                        return None
                if t == "lifespan.startup.failed":
                        return "ASGI lifespan startup failed: %s" % (m.get("message") or "no message")
                if self.mode == "auto":
                        # an app without lifespan raises or returns at once: it is served without
                        self.unsupported = True
                        if t == "_raised":
                                _log_info("ASGI 'lifespan' protocol appears unsupported (%s: %s)" %
                                           (type(m["exc"]).__name__, m["exc"]))
                        return None
                if t == "_raised":
                        _asgi.log_exception(m["exc"], "Exception in the ASGI lifespan startup")
                        return "ASGI lifespan startup raised %s: %s" % (type(m["exc"]).__name__, m["exc"])
                return "ASGI lifespan startup: the app returned without answering"

        async def shutdown(self):
                if self.unsupported or self.task is None or self.task.done():
                        return
                m = await self._step("shutdown")
                if m["type"] == "lifespan.shutdown.failed":
                        _log_error("ASGI lifespan shutdown failed: %s" % (m.get("message") or "no message"))
                elif m["type"] == "_raised":
                        _asgi.log_exception(m["exc"], "Exception in the ASGI lifespan shutdown")
                try:
                        await asyncio.wait_for(self.task, 5)
                except BaseException:   # noqa: B902 - the worker leaves anyway
                        pass


# ---- the worker ----

def _new_loop(kind):
        if kind in ("auto", "uvloop"):
                try:
                        import uvloop
                except ImportError:
                        if kind == "uvloop":
                                raise
                        return asyncio.new_event_loop()
                return uvloop.new_event_loop()
        return asyncio.new_event_loop()


def startup(core, asgi, app, config):
        """Before the worker reports booted: the loop, and the lifespan's startup. Returns None,
        or one line saying why the worker cannot serve."""
        global _core, _asgi, _loop, _app, _config, _lifespan, _named, _DONE
        _core, _asgi, _config = core, asgi, config
        _named, _DONE = asgi.named, asgi.DONE
        asgi.status_lines(_STATUS_LINES)
        app = _as_asgi3(app)
        if isinstance(app, str):
                return app
        _app = app
        _loop = _new_loop(config["loop"])
        asyncio.set_event_loop(_loop)
        if config["lifespan"] == "off":
                return None
        _lifespan = _Lifespan(config["lifespan"])
        return _loop.run_until_complete(_lifespan.startup())


def _as_asgi3(app):
        import inspect
        if inspect.isclass(app):
                return ("%r is a class: an ASGI 2 app (instantiated per scope), which the asgi worker "
                        "does not run; give an ASGI 3 callable (async def app(scope, receive, send))" % (app,))
        if not callable(app):
                return "%r is not callable: the asgi worker needs an ASGI 3 app" % (app,)
        return app


_done = None
_root_context = None            # the worker's context, of which each request gets a copy


def run():
        global _done, _root_context
        _root_context = contextvars.copy_context()
        _done = _loop.create_future()
        _core.start(_on_request, _wake, _poke)
        _loop.add_reader(_core.fd(), _tick)
        _poke()
        try:
                _loop.run_until_complete(_done)
                if _lifespan is not None:
                        _loop.run_until_complete(_lifespan.shutdown())
        finally:
                if _tick_handle is not None:
                        _tick_handle.cancel()
