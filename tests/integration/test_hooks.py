"""Server hooks (on_starting ... on_exit) from the config file: each runs at Gunicorn's moment
with the objects Gunicorn passes, a raising hook is logged and the server serves on, and the
hooks that must stop the start do.

Every wait is a bounded poll; every server is stopped when its test ends."""

import json
import os
import signal
import sys
import textwrap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

APP = "hooks_app:app"
EXAMPLE = os.path.join(h.APPS, "hooks_example_conf.py")
RECORD = os.path.join(h.APPS, "hooks_record_conf.py")


class HooksTest(h.ServerTestCase):

        def write_conf(self, text):
                d = h.tempdir(self, "gcorn-hooks-")
                path = os.path.join(d, "conf.py")
                with open(path, "w") as f:
                        f.write(textwrap.dedent(text))
                return path

        def new_worker(self, srv, known):
                """Waits for a worker PID not in known and returns it."""
                pids = h.wait_until(lambda: [p for p in srv.worker_pids() if p not in known], 10)
                self.assertTrue(pids, srv.log())
                return pids[0]

        def assertServesSoon(self, srv):
                self.assertTrue(h.wait_until(lambda: srv.get("/").status == 200, 10), srv.log())

        def test_example_config_every_hook_fires(self):
                srv = self.start(APP, args=["-c", EXAMPLE])
                self.assertEqual(srv.get("/").status, 200)
                first = srv.worker_pids()[0]

                os.kill(srv.pid, signal.SIGTTIN)
                srv.wait_log(h.WORKER_RE.pattern, count=2)
                os.kill(srv.pid, signal.SIGTTOU)
                srv.wait_log(r"hook worker_exit", count=1)
                os.kill(srv.pid, signal.SIGHUP)
                srv.wait_log(r"Reload complete")
                srv.wait_log(r"hook worker_exit: %d" % first)

                # A request that loops in Python past --timeout: the master's SIGABRT runs
                # worker_abort in the worker, then the stack is dumped as without the hook.
                with srv.connect() as s:
                        s.sendall(b"GET /spin HTTP/1.1\r\nHost: x\r\n\r\n")
                        srv.wait_log(r"hook worker_abort: worker received SIGABRT signal", timeout=20)
                srv.wait_log(r"killed after timeout \(signal 6\)")
                self.assertIn("Current thread", srv.log())

                srv.wait_log(r"hook post_worker_init", count=4)
                known = set(srv.worker_pids())
                self.assertServesSoon(srv)
                victim = srv.worker_pids()[-1]
                os.kill(victim, signal.SIGINT)
                srv.wait_log(r"hook worker_int: worker received INT or QUIT signal")
                srv.wait_log(r"hook child_exit: %d" % victim)
                self.new_worker(srv, known)

                os.kill(srv.pid, signal.SIGTERM)
                self.assertEqual(srv.wait_exit(15), 0)
                log = srv.log()
                for hook in ("on_starting", "on_reload", "when_ready", "pre_fork", "post_fork",
                             "post_worker_init", "worker_int", "worker_abort", "pre_request", "post_request",
                             "child_exit", "worker_exit", "nworkers_changed", "on_exit"):
                        self.assertRegex(log, r"\[INFO\] hook %s\b" % hook)
                self.assertIn("hook post_request: / 200 OK", log)
                self.assertIn("hook nworkers_changed: None -> 1", log)
                self.assertIn("hook nworkers_changed: 1 -> 2", log)
                self.assertIn("hook nworkers_changed: 2 -> 1", log)
                # Runs on a binary upgrade only (tests/integration/test_upgrade.py); never said
                # to have no effect.
                self.assertNotIn("hook pre_exec", log)
                self.assertNotIn("The pre_exec hook has no effect", log)
                self.assertIn("The ssl_context hook has no effect: gcorn does not serve TLS yet", log)
                # In Gunicorn's order: on_starting, then when_ready, then the first fork.
                self.assertLess(log.index("hook on_starting"), log.index("hook when_ready"))
                self.assertLess(log.index("hook when_ready"), log.index("hook pre_fork"))
                self.assertLess(log.index("hook pre_fork"), log.index("hook post_fork"))
                self.assertLess(log.index("Shutting down: Master"), log.index("hook on_exit"))

        def records(self, path):
                with open(path) as f:
                        return [json.loads(line) for line in f]

        def count(self, path, hook):
                return sum(r["hook"] == hook for r in self.records(path))

        def test_objects_hold_the_right_values(self):
                out = os.path.join(h.tempdir(self, "gcorn-hooks-"), "out.jsonl")
                srv = self.start(APP, args=["-c", RECORD, "-t", "7"], env={"HOOKS_OUT": out})
                srv.wait_log(h.WORKER_RE.pattern, count=2)
                self.assertTrue(h.wait_until(lambda: self.count(out, "post_worker_init") == 2, 10))
                r = srv.get("/p/a%20b?x=1&y=2", headers=[("X-Custom", "Val")])
                self.assertEqual(r.status, 200)
                os.kill(srv.pid, signal.SIGTTIN)
                srv.wait_log(h.WORKER_RE.pattern, count=3)
                self.assertTrue(h.wait_until(lambda: self.count(out, "post_worker_init") == 3, 10))
                os.kill(srv.pid, signal.SIGTERM)
                self.assertEqual(srv.wait_exit(15), 0)
                recs = self.records(out)
                by = {}
                for rec in recs:
                        by.setdefault(rec["hook"], []).append(rec)
                workers = sorted(srv.worker_pids())

                for hook in ("on_starting", "when_ready", "on_exit"):
                        s = by[hook][0]["server"]
                        self.assertEqual(s["pid"], srv.pid)
                        self.assertEqual(s["workers"], 2)
                        self.assertEqual(s["timeout"], 7)
                        self.assertIs(s["preload_app"], False)
                        self.assertEqual(s["bind"], ["127.0.0.1:0"])
                        self.assertEqual(by[hook][0]["process"], srv.pid)
                self.assertEqual(by["on_starting"][0]["server"]["num_workers"], 2)
                self.assertEqual(by["on_exit"][0]["server"]["num_workers"], 3)
                self.assertEqual([(n["old"], n["new"]) for n in by["nworkers_changed"]], [(None, 2), (2, 3)])
                self.assertEqual(by["nworkers_changed"][1]["num_workers"], 3)

                # pre_fork in the master, before the pid is known; post_fork in the worker.
                self.assertEqual([p["worker"]["age"] for p in by["pre_fork"]], [1, 2, 3])
                self.assertTrue(all(p["worker"]["pid"] == "[booting]" and p["process"] == srv.pid
                                    for p in by["pre_fork"]))
                self.assertEqual(sorted(p["worker"]["pid"] for p in by["post_fork"]), workers)
                for p in by["post_fork"]:
                        self.assertEqual(p["worker"]["pid"], p["process"])
                        self.assertEqual(p["worker"]["ppid"], srv.pid)
                        self.assertEqual(p["server"]["pid"], srv.pid)
                        self.assertEqual(p["mark"], "set in pre_fork")
                for p in by["post_worker_init"]:
                        self.assertEqual(p["worker"]["pid"], p["process"])
                        self.assertIs(p["worker"]["alive"], True)
                        self.assertEqual(p["worker"]["workers"], 2)

                pre = by["pre_request"][0]
                self.assertEqual(pre["method"], "GET")
                self.assertEqual(pre["path"], "/p/a%20b")
                self.assertEqual(pre["query"], "x=1&y=2")
                self.assertEqual(pre["uri"], "/p/a%20b?x=1&y=2")
                self.assertEqual(pre["version"], [1, 1])
                self.assertIn(["X-CUSTOM", "Val"], pre["headers"])
                self.assertIn(["CONNECTION", "close"], pre["headers"])
                self.assertIn(pre["worker"]["pid"], workers)
                post = by["post_request"][0]
                self.assertEqual(post["status"], "200 OK")
                self.assertIn(["X-Hooked", "yes"], post["headers"])
                self.assertEqual(post["path_info"], "/p/a b")
                self.assertEqual(post["query_string"], "x=1&y=2")
                self.assertEqual(post["process"], pre["process"])

                # worker_exit in each worker, child_exit in the master with pre_fork's object.
                self.assertEqual(sorted(e["process"] for e in by["worker_exit"]), workers)
                self.assertTrue(all(e["worker"]["alive"] is False for e in by["worker_exit"]))
                self.assertEqual(sorted(e["worker"]["pid"] for e in by["child_exit"]), workers)
                self.assertTrue(all(e["process"] == srv.pid and e["mark"] == "set in pre_fork"
                                    for e in by["child_exit"]))
                log = srv.log()
                self.assertRegex(log, r"\[%d\] \[WARNING\] on_starting says hello" % srv.pid)
                self.assertRegex(log, r"\[ERROR\] caught it\nTraceback \(most recent call last\):\n(.*\n)+?"
                                 r"ZeroDivisionError: division by zero\n")
                self.assertNotIn("not shown at the info level", log)
                for w in workers:
                        self.assertRegex(log, r"\[%d\] \[ERROR\] post_worker_init of %d" % (w, w))

        def test_raising_hooks_are_logged_and_the_server_serves(self):
                conf = self.write_conf("""
                        def boom1(a):
                                raise RuntimeError("hook went wrong")
                        def boom2(a, b):
                                raise RuntimeError("hook went wrong")
                        on_reload = worker_int = boom1
                        pre_fork = child_exit = worker_exit = boom2
                        def nworkers_changed(server, new, old):
                                raise RuntimeError("hook went wrong")
                        def post_request(worker, req, environ, resp):
                                raise RuntimeError("hook went wrong")
                        def pre_request(worker, req):
                                if req.path == "/fail":
                                        raise RuntimeError("hook went wrong")
                        """)
                srv = self.start(APP, args=["-c", conf])
                self.assertEqual(srv.get("/").status, 200)
                srv.wait_log(r"Exception in post_request hook\nTraceback")
                self.assertIn("RuntimeError: hook went wrong", srv.log())
                # As in Gunicorn, a raising pre_request fails its request (500), not the worker.
                self.assertEqual(srv.get("/fail").status, 500)
                self.assertEqual(srv.get("/").status, 200)

                os.kill(srv.pid, signal.SIGTTIN)
                srv.wait_log(r"Exception in nworkers_changed hook", count=2)
                srv.wait_log(h.WORKER_RE.pattern, count=2)
                os.kill(srv.pid, signal.SIGHUP)
                srv.wait_log(r"Reload complete")
                srv.wait_log(r"Exception in on_reload hook")
                srv.wait_log(r"Exception in child_exit hook", count=2)
                known = set(srv.worker_pids())
                os.kill(srv.worker_pids()[-1], signal.SIGINT)
                srv.wait_log(r"Exception in worker_int hook")
                self.new_worker(srv, known)
                self.assertServesSoon(srv)
                self.assertTrue(srv.alive())
                log = srv.log()
                self.assertIn("Exception in pre_fork hook", log)
                self.assertIn("Exception in worker_exit hook", log)

        def test_raising_start_hooks_stop_the_start(self):
                # The master's hooks: exit 1; the first workers': Gunicorn's WORKER_BOOT_ERROR.
                for hook, args, status in (("on_starting", "server", 1), ("when_ready", "server", 1),
                                           ("post_fork", "server, worker", 3), ("post_worker_init", "worker", 3)):
                        with self.subTest(hook=hook):
                                conf = self.write_conf("""
                                        def %s(%s):
                                                raise RuntimeError("no start today")
                                        """ % (hook, args))
                                srv = h.Server(APP, args=["-c", conf], wait=False)
                                self.addCleanup(srv.stop)
                                rc = srv.wait_exit(20)
                                self.assertEqual(rc, status, srv.log())
                                log = srv.log()
                                self.assertIn("The %s hook raised an exception; not starting." % hook, log)
                                self.assertIn("RuntimeError: no start today", log)

        def test_later_post_fork_failure_is_logged_and_the_worker_serves(self):
                marker = os.path.join(h.tempdir(self, "gcorn-hooks-"), "booted")
                conf = self.write_conf("""
                        import os
                        def post_fork(server, worker):
                                if os.path.exists(%r):
                                        raise RuntimeError("later post_fork")
                        def post_worker_init(worker):
                                open(%r, "w").close()
                        """ % (marker, marker))
                srv = self.start(APP, args=["-c", conf])
                self.assertTrue(h.wait_until(lambda: os.path.exists(marker), 10))
                os.kill(srv.pid, signal.SIGTTIN)
                srv.wait_log(r"Exception in post_fork hook")
                srv.wait_log(h.WORKER_RE.pattern, count=2)
                self.assertNotIn("not starting", srv.log())
                self.assertServesSoon(srv)
                self.assertTrue(srv.alive())

        def test_bad_hook_values_are_refused(self):
                d = h.tempdir(self, "gcorn-hooks-")
                with open(os.path.join(d, "raising_hooks.py"), "w") as f:
                        f.write("raise RuntimeError('broken hooks module')\n")
                for text, line in (
                        ("import sys\nsys.path.insert(0, %r)\nwhen_ready = 'raising_hooks.ready'" % d,
                         "Invalid value for when_ready: RuntimeError: broken hooks module"),
                        ("on_starting = 5", "Invalid value for on_starting: Value is not callable: 5"),
                        ("def on_starting(a, b):\n    pass",
                         "Invalid value for on_starting: Value must have an arity of: 1"),
                        ("when_ready = 'nosuchmodule_x.f'", "Invalid value for when_ready: No module named"),
                        ("when_ready = 'os.nosuchfunction'",
                         "Invalid value for when_ready: Can not load 'nosuchfunction' from 'os'"),
                        ("when_ready = 'noarg'", "Invalid value for when_ready: Value 'noarg' is not import string"),
                        ("def dirty_post_fork(arbiter):\n    pass",
                         "Invalid value for dirty_post_fork: Value must have an arity of: 2"),
                ):
                        with self.subTest(text=text):
                                conf = self.write_conf(text + "\n")
                                srv = h.Server(APP, args=["-c", conf], wait=False)
                                self.addCleanup(srv.stop)
                                rc = srv.wait_exit(10)
                                self.assertIsNotNone(rc)
                                self.assertNotEqual(rc, 0)
                                self.assertIn(line, srv.log())

        def test_worker_int_runs_inside_a_long_request(self):
                # Its classic use: dump the stacks of a worker stuck in a request.
                release = os.path.join(h.tempdir(self, "gcorn-hooks-"), "release")
                srv = self.start(APP, args=["-c", EXAMPLE, "--log-level", "debug", "-t", "30"])
                c = srv.client()
                try:
                        c.send_request("GET", "/wait?" + release)
                        srv.wait_log(r"hook pre_request: GET /wait")
                        os.kill(srv.worker_pids()[0], signal.SIGQUIT)
                        srv.wait_log(r"hook worker_int: worker received INT or QUIT signal")
                        srv.wait_log(r'File: ".*hooks_app.py", line \d+, in app')
                        open(release, "w").close()
                        self.assertEqual(c.read_response().status, 200)
                finally:
                        c.close()
                srv.wait_log(r"Worker exiting \(pid: %d\)" % srv.worker_pids()[0])
                self.assertEqual(srv.log().count("hook worker_int"), 1)

        def test_newer_gunicorn_hooks_are_reported(self):
                conf = self.write_conf("""
                        def on_dirty_starting(arbiter):
                                pass
                        def dirty_worker_exit(arbiter, worker):
                                pass
                        """)
                srv = self.start(APP, args=["-c", conf])
                self.assertEqual(srv.get("/").status, 200)
                log = srv.log()
                self.assertIn("[WARNING] The on_dirty_starting hook has no effect: gcorn has no dirty workers", log)
                self.assertIn("[WARNING] The dirty_worker_exit hook has no effect: gcorn has no dirty workers", log)

        def test_import_strings_and_short_post_request(self):
                d = h.tempdir(self, "gcorn-hooks-")
                with open(os.path.join(d, "myhooks.py"), "w") as f:
                        f.write("def ready(server):\n    server.log.info('ready from a module')\n")
                conf = self.write_conf("""
                        import sys
                        sys.path.insert(0, %r)
                        when_ready = "myhooks.ready"
                        def post_request(worker, req):
                                worker.log.info("two-argument post_request %%s", req.path)
                        """ % d)
                srv = self.start(APP, args=["-c", conf])
                self.assertEqual(srv.get("/two").status, 200)
                srv.wait_log(r"two-argument post_request /two")
                self.assertIn("ready from a module", srv.log())


if __name__ == "__main__":
        h.main()
