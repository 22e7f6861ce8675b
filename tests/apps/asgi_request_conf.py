# post_request writes the environ it was given for each request, one JSON object a line, to
# $HOOKS_OUT: an ASGI request's too.
import json
import os


def post_request(worker, req, environ, resp):
        keys = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "HTTP_X_TRACE")
        with open(os.environ["HOOKS_OUT"], "a") as f:
                f.write(json.dumps({k: environ.get(k) for k in keys}) + "\n")
