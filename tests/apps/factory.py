"""App factories: module:create_app() and module:create_app('name')."""


def create_app(name="default", greeting="factory"):
        body = ("%s %s\n" % (greeting, name)).encode()

        def app(environ, start_response):
                start_response("200 OK", [("Content-Type", "text/plain"),
                                          ("Content-Length", str(len(body)))])
                return [body]
        return app


def not_a_factory_result():
        return None
