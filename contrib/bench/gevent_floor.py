"""The least a gevent server does per request, over real sockets, for the 10 ms sleep
workload's bound (RESULTS.md, "What bounds issue 12's remaining target"). Each kept-alive
connection has a greenlet that reads what the client sent with gevent's socket (waiting in
the hub while there is nothing), then answers it, in one of four modes:

  hello       a fixed hello answer: no HTTP parsing, no environ, no app
  sleep       the same after time.sleep(0.01), as patched by gevent (the bench's /sleep view)
  wsgi-hello  what a WSGI server does besides HTTP: an environ like gcorn's for wrk's GET,
              the bench app's call (app.py, path /) with a start_response, the status line
              and headers framed from what the app gave
  wsgi-sleep  the same on /sleep, where the app sleeps 10 ms in gevent

PROCS processes share the port (SO_REUSEPORT), as a server's workers do, each with the libev
backend gcorn's gevent worker asks for. wrk sends one request at a time per connection, so
each read is one request: nothing here would do for other clients.

  cpusplit.sh floor PORT / 500 /usr/bin/python3 gevent_floor.py PORT 2 wsgi-sleep
"""
import os
import signal
import socket
import sys

MODES = ("hello", "sleep", "wsgi-hello", "wsgi-sleep")
ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
          b"Hello, World!")


def serve(sock, sleep):
        import time     # patched by then
        recv = sock.recv
        send = sock.sendall
        while True:
                data = recv(65536)
                if not data:
                        return
                # wrk sends one request at a time per connection: one answer per read
                if sleep:
                        time.sleep(0.01)
                send(ANSWER)


def serve_wsgi(sock, path, addr):
        # What any WSGI server does besides HTTP: an environ per request (the keys and
        # values gcorn's has for wrk's GET), the app's call with a start_response, the
        # status line and headers framed from what the app gave, the body sent.
        import io
        import sys as _sys

        from app import app
        recv = sock.recv
        send = sock.sendall
        base = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": path,
                "QUERY_STRING": "", "RAW_URI": path, "SERVER_PROTOCOL": "HTTP/1.1",
                "SERVER_NAME": "127.0.0.1", "SERVER_PORT": str(sock.getsockname()[1]),
                "REMOTE_ADDR": addr[0], "REMOTE_PORT": str(addr[1]),
                "HTTP_HOST": "127.0.0.1:%d" % sock.getsockname()[1],
                "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": _sys.stderr,
                "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False}
        while True:
                data = recv(65536)
                if not data:
                        return
                environ = dict(base)
                environ["wsgi.input"] = io.BytesIO(b"")
                head = []

                def start_response(status, headers, exc_info=None):
                        head.append(status)
                        head.append(headers)
                        return send

                result = app(environ, start_response)
                body = b"".join(result)
                lines = ["HTTP/1.1 %s\r\n" % head[0]]
                lines += ["%s: %s\r\n" % h for h in head[1]]
                lines.append("\r\n")
                send("".join(lines).encode("latin-1") + body)


def child(port, mode):
        # gevent only here: the parent forks before any hub exists
        import gevent
        gevent.config.libev_backend = "linux_iouring,epoll"
        from gevent import monkey
        monkey.patch_all()
        from gevent.server import StreamServer
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        lsock.bind(("127.0.0.1", port))
        lsock.listen(1024)
        if mode.startswith("wsgi-"):
                path = "/sleep" if mode == "wsgi-sleep" else "/"
                StreamServer(lsock, lambda s, addr: serve_wsgi(s, path, addr)).serve_forever()
        else:
                StreamServer(lsock, lambda s, _addr: serve(s, mode == "sleep")).serve_forever()


def main():
        port = int(sys.argv[1])
        procs = int(sys.argv[2]) if len(sys.argv) > 2 else 2
        mode = sys.argv[3] if len(sys.argv) > 3 else "hello"
        if mode not in MODES:
                sys.exit("gevent_floor.py: MODE is one of " + ", ".join(MODES))
        pids = []
        for _ in range(procs):
                pid = os.fork()
                if pid == 0:
                        signal.signal(signal.SIGTERM, signal.SIG_DFL)
                        child(port, mode)
                        os._exit(0)
                pids.append(pid)

        def stop(*_):
                for pid in pids:
                        os.kill(pid, signal.SIGTERM)
                sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while True:
                signal.pause()


if __name__ == "__main__":
        main()
