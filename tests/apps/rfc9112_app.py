"""The app of tests/integration/test_rfc9112.py (standard library only).

/status?code=N[&reason=R][&body=B][&cl=1][&h=Name:value...]: that status, the body B, a
Content-Length only with cl=1 (else the server frames the body). /stream: two chunks, no
Content-Length. Anything else: reads the whole body, then answers what it saw as JSON."""

import json
from urllib.parse import parse_qs


def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        q = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if path == "/status":
                code = q.get("code", ["200"])[-1]
                reason = q.get("reason", [None])[-1]
                body = q.get("body", [""])[-1].encode("latin-1")
                headers = [tuple(h.split(":", 1)) for h in q.get("h", [])]
                if q.get("cl"):
                        headers.append(("Content-Length", str(len(body))))
                start_response(code if reason is None else "%s %s" % (code, reason), headers)
                return [body]
        if path == "/stream":
                start_response("200 OK", [("Content-Type", "text/plain")])
                return iter([b"part one,", b"part two"])
        body = environ["wsgi.input"].read()
        seen = {
                "method": environ["REQUEST_METHOD"],
                "path": path,
                "query": environ.get("QUERY_STRING", ""),
                "raw_uri": environ.get("RAW_URI"),
                "protocol": environ.get("SERVER_PROTOCOL"),
                "content_length": environ.get("CONTENT_LENGTH"),
                "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
                "body": body.decode("latin-1"),
        }
        out = json.dumps(seen, sort_keys=True).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
        return [out]
