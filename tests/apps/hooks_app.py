"""App for the server hook tests: / answers, /spin loops in Python past --timeout, /wait?PATH
sleeps until the file PATH exists (at most 20 s)."""
import os
import time
import urllib.parse


def app(environ, start_response):
        if environ["PATH_INFO"] == "/spin":
                end = time.monotonic() + 60
                while time.monotonic() < end:
                        pass
        elif environ["PATH_INFO"] == "/wait":
                path = urllib.parse.unquote(environ["QUERY_STRING"])
                end = time.monotonic() + 20
                while not os.path.exists(path) and time.monotonic() < end:
                        time.sleep(0.05)
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Hooked", "yes")])
        return [b"hooked\n"]
