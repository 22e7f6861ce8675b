"""The app behind tests/integration/test_accesslog_compat.py: one response per path, the
same under gcorn and Gunicorn, so that their access-log lines can be compared."""


def app(environ, start_response):
        path = environ["PATH_INFO"]
        body = environ["wsgi.input"].read() if environ.get("CONTENT_LENGTH") else b""
        headers = [("Content-Type", "text/plain"), ("X-Resp", 'v "q"'), ("X-Empty-Resp", "")]
        if path.startswith("/missing"):
                start_response("404 Not Found", headers + [("Content-Length", "4")])
                return [b"nope"]
        if path == "/user":
                # middleware that authenticated someone: %({REMOTE_USER}e)s sees it
                environ["REMOTE_USER"] = "alice"
        if path == "/stream":
                start_response("200 OK", headers)
                return [b"a", b"bc", b""]
        if path == "/empty":
                start_response("204 No Content", headers)
                return []
        out = b"hello " + str(len(body)).encode()
        start_response("200 OK", headers + [("Content-Length", str(len(out)))])
        # Gunicorn sends (and counts in %(b)s) whatever body a HEAD response is given, gcorn
        # never sends one: a well-behaved app gives none
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [out]
