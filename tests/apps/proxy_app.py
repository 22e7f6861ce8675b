"""What an app behind a proxy sees: the peer and scheme keys of the environ, the socket it
is served on (to tell a reused upstream connection from a new one), and large bodies both
ways with their SHA-256."""

import hashlib
import json
import os

KEYS = ("REMOTE_ADDR", "REMOTE_PORT", "wsgi.url_scheme", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO",
        "HTTP_X_FORWARDED_HOST", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "PROXY_PROTOCOL", "PROXY_ADDR",
        "PROXY_PORT")


def _sockets():
        """The inodes of the worker's sockets: the listeners and the connection being served."""
        found = []
        for fd in os.listdir("/proc/self/fd"):
                try:
                        target = os.readlink("/proc/self/fd/" + fd)
                except OSError:
                        continue
                if target.startswith("socket:"):
                        found.append(target)
        return sorted(found)


def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/echo":
                body = environ["wsgi.input"].read()
                start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                          ("Content-Length", str(len(body))),
                                          ("X-Sha256", hashlib.sha256(body).hexdigest())])
                return [body]
        if path == "/big":
                n = int(environ.get("QUERY_STRING") or "0")
                block = bytes(range(256)) * 256
                data = (block * (n // len(block) + 1))[:n]
                start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                          ("Content-Length", str(n)),
                                          ("X-Sha256", hashlib.sha256(data).hexdigest())])
                return [data]
        out = {k: environ.get(k) for k in KEYS}
        out["sockets"] = _sockets()
        data = json.dumps(out, sort_keys=True).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]
