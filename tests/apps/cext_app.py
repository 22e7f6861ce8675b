"""Imports the C extension modules a request names and uses each a little; answers a JSON
object of module -> "ok" or the error. gcorn may link CPython statically: the modules
then find the interpreter's symbols in the gcorn executable itself."""

import importlib
import json
import urllib.parse


def use(name, mod):
        if name == "_ssl":
                import ssl
                ssl.create_default_context()
        elif name == "_hashlib":
                import hashlib
                assert hashlib.sha256(b"").hexdigest().startswith("e3b0c442")
        elif name == "_sqlite3":
                import sqlite3
                assert sqlite3.connect(":memory:").execute("select 6 * 7").fetchone() == (42,)
        elif name == "_decimal":
                assert str(mod.Decimal(1) / mod.Decimal(8)) == "0.125"
        elif name == "_ctypes":
                import ctypes
                assert ctypes.CDLL(None).strlen(b"gcorn") == 5
        elif name == "_json":
                assert json.loads('{"a": [1, 2]}') == {"a": [1, 2]}
        elif name == "greenlet._greenlet":
                import greenlet
                assert greenlet.greenlet(lambda: 7).switch() == 7


def app(environ, start_response):
        names = urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("m", [])
        result = {}
        for name in names:
                try:
                        use(name, importlib.import_module(name))
                        result[name] = "ok"
                except BaseException as e:  # noqa: B036 - each failure is the answer
                        result[name] = "%s: %s" % (type(e).__name__, e)
        body = json.dumps(result).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
