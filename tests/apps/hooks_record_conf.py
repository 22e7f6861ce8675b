# Server hooks that write what they were given, one JSON object a line, to $HOOKS_OUT.
import json
import os

workers = 2


def _write(hook, **values):
        values["hook"] = hook
        values["process"] = os.getpid()
        with open(os.environ["HOOKS_OUT"], "a") as f:
                f.write(json.dumps(values) + "\n")


def _server(server):
        return {"pid": server.pid, "workers": server.cfg.workers, "bind": server.cfg.bind,
                "timeout": server.cfg.timeout, "preload_app": server.cfg.preload_app,
                "num_workers": server.num_workers}


def _worker(worker):
        return {"pid": worker.pid, "ppid": worker.ppid, "age": worker.age, "alive": worker.alive,
                "workers": worker.cfg.workers}


def on_starting(server):
        server.log.warning("on_starting says %s", "hello")
        server.log.debug("not shown at the info level")
        try:
                1 / 0
        except ZeroDivisionError:
                server.log.exception("caught %(what)s", {"what": "it"})
        _write("on_starting", server=_server(server))


def when_ready(server):
        _write("when_ready", server=_server(server))


def pre_fork(server, worker):
        worker.mark = "set in pre_fork"
        _write("pre_fork", server=_server(server), worker=_worker(worker))


def post_fork(server, worker):
        _write("post_fork", server=_server(server), worker=_worker(worker), mark=worker.mark)


def post_worker_init(worker):
        worker.log.error("post_worker_init of %s", worker.pid)
        _write("post_worker_init", worker=_worker(worker))


def pre_request(worker, req):
        _write("pre_request", worker=_worker(worker), method=req.method, path=req.path, query=req.query,
               uri=req.uri, headers=req.headers, version=list(req.version))


def post_request(worker, req, environ, resp):
        _write("post_request", path=req.path, status=resp.status, headers=resp.headers,
               path_info=environ.get("PATH_INFO"), query_string=environ.get("QUERY_STRING"))


def nworkers_changed(server, new_value, old_value):
        _write("nworkers_changed", new=new_value, old=old_value, num_workers=server.num_workers)


def child_exit(server, worker):
        _write("child_exit", worker=_worker(worker), mark=worker.mark)


def worker_exit(server, worker):
        _write("worker_exit", worker=_worker(worker))


def on_exit(server):
        _write("on_exit", server=_server(server))
