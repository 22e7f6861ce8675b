"""Only `application` is defined: "plain" alone must resolve to plain:application."""


def application(environ, start_response):
        body = b"plain application\n"
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
