"""App for the server hook tests: / answers, /spin loops in Python past --timeout."""
import time


def app(environ, start_response):
        if environ["PATH_INFO"] == "/spin":
                end = time.monotonic() + 60
                while time.monotonic() < end:
                        pass
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Hooked", "yes")])
        return [b"hooked\n"]
