"""The demo app: `gcorn hello:app` answers "Hello, World!".

`hello:demo` adds a few routes to try the server by hand:
  /        the greeting
  /echo    the request body back (POST something)
  /env     the CGI part of the WSGI environ, one "KEY=value" per line
"""


def app(environ, start_response):
        body = b"Hello, World!\n"
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]


def _send(start_response, body, status="200 OK"):
        start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                                ("Content-Length", str(len(body)))])
        return [body]


def demo(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if path == "/":
                return app(environ, start_response)
        if path == "/echo":
                return _send(start_response, environ["wsgi.input"].read())
        if path == "/env":
                lines = ["%s=%s" % (k, v) for k, v in sorted(environ.items())
                         if isinstance(v, str)]
                return _send(start_response, ("\n".join(lines) + "\n").encode("utf-8", "replace"))
        return _send(start_response, b"Not Found\n", status="404 Not Found")


application = app
