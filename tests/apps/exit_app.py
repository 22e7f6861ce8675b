"""A WSGI app whose worker ends itself with an exit status: /exit?code=N calls os._exit(N)."""

import os
from urllib.parse import parse_qs


def app(environ, start_response):
        if environ["PATH_INFO"] == "/exit":
                os._exit(int(parse_qs(environ.get("QUERY_STRING", "")).get("code", ["1"])[0]))
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return [b"ok\n"]
