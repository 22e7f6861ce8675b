"""The app's logging through gcorn's error log: Flask's logger (which writes to wsgi.errors),
records from a logger with no handler (logging.lastResort), wsgi.errors itself, and text a
log cannot hold as is (NUL, lone surrogates). /sleep?s=N outlasts a short --timeout."""

import logging
import time

from flask import Flask, request

app = Flask(__name__)
# Not Flask's app logger (named after the module): no handler anywhere, so its records go to
# logging.lastResort, which gcorn routes to its error log.
plain = logging.getLogger("plain_logger")


def _tag():
        return request.args.get("tag", "x")


def _fail(tag):
        raise ValueError("logged-boom-%s" % tag)


@app.route("/flask-exception")
def flask_exception():
        try:
                _fail(_tag())
        except ValueError:
                app.logger.exception("flask-handled-marker %s", _tag())
        return "ok\n"


@app.route("/plain-exception")
def plain_exception():
        try:
                _fail(_tag())
        except ValueError:
                plain.exception("plain-handled-marker %s", _tag())
        return "ok\n"


@app.route("/errors")
def errors():
        err = request.environ["wsgi.errors"]
        err.write("errors-marker-one %s\nerrors-marker-two %s\n" % (_tag(), _tag()))
        err.flush()
        return "ok\n"


@app.route("/nul")
def nul():
        plain.error("nul-marker %s a\x00b", _tag())
        app.logger.error("flask-nul-marker %s c\x00d", _tag())
        request.environ["wsgi.errors"].write("errors-nul-marker %s e\x00f\n" % _tag())
        return "ok\n"


@app.route("/surrogate")
def surrogate():
        plain.error("surrogate-marker %s \ud800", _tag())
        app.logger.error("flask-surrogate-marker %s \udcff", _tag())
        request.environ["wsgi.errors"].write("errors-surrogate-marker %s \ud800\n" % _tag())
        return "ok\n"


@app.route("/sleep")
def sleep():
        time.sleep(float(request.args.get("s", "1")))
        return "slept\n"
