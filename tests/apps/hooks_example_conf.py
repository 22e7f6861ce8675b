# A config file in the shape of Gunicorn's examples/example_config.py: a few settings, then
# every server hook writing one line through the server's or the worker's log.
import sys
import threading
import traceback

workers = 1
timeout = 2
keepalive = 2
loglevel = "info"
errorlog = "-"
proc_name = None


def on_starting(server):
        server.log.info("hook on_starting: master %s", server.pid)


def on_reload(server):
        server.log.info("hook on_reload")


def when_ready(server):
        server.log.info("hook when_ready: server is ready, spawning workers")


def pre_fork(server, worker):
        server.log.info("hook pre_fork: worker age %s", worker.age)


def post_fork(server, worker):
        server.log.info("hook post_fork: worker spawned (pid: %s)", worker.pid)


def post_worker_init(worker):
        worker.log.info("hook post_worker_init: %s", worker.pid)


def worker_int(worker):
        worker.log.info("hook worker_int: worker received INT or QUIT signal")
        names = {t.ident: t.name for t in threading.enumerate()}
        lines = []
        for ident, frame in sys._current_frames().items():
                lines.append("# Thread: %s(%d)" % (names.get(ident, ""), ident))
                for filename, lineno, name, line in traceback.extract_stack(frame):
                        lines.append('File: "%s", line %d, in %s' % (filename, lineno, name))
                        if line:
                                lines.append("  %s" % line.strip())
        worker.log.debug("\n".join(lines))


def worker_abort(worker):
        worker.log.info("hook worker_abort: worker received SIGABRT signal")


def pre_exec(server):
        server.log.info("hook pre_exec: forked child, re-executing")


def pre_request(worker, req):
        worker.log.info("hook pre_request: %s %s", req.method, req.path)


def post_request(worker, req, environ, resp):
        worker.log.info("hook post_request: %s %s", req.path, resp.status)


def child_exit(server, worker):
        server.log.info("hook child_exit: %s", worker.pid)


def worker_exit(server, worker):
        server.log.info("hook worker_exit: %s", worker.pid)


def nworkers_changed(server, new_value, old_value):
        server.log.info("hook nworkers_changed: %s -> %s", old_value, new_value)


def on_exit(server):
        server.log.info("hook on_exit")


def ssl_context(config, default_ssl_context_factory):
        return default_ssl_context_factory()
