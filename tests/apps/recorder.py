"""Returns, as JSON, what the server handed the app: the fields the request corpus checks."""

import base64
import json


def app(environ, start_response):
        inp = environ["wsgi.input"]
        parts = []
        while True:
                part = inp.read(65536)
                if not part:
                        break
                parts.append(part)
        body = b"".join(parts)
        headers = {}
        for k, v in environ.items():
                if k.startswith("HTTP_") or k in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                        headers[k] = v
        out = {
                "method": environ["REQUEST_METHOD"],
                "raw_uri": environ.get("RAW_URI"),
                "path": environ.get("PATH_INFO"),
                "query": environ.get("QUERY_STRING"),
                "protocol": environ.get("SERVER_PROTOCOL"),
                "headers": headers,
                "body_b64": base64.b64encode(body).decode(),
        }
        data = json.dumps(out, sort_keys=True).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(data)))])
        return [data]
