"""Command line, config file and app loading, checked through the real binary."""

import os
import socket
import subprocess
import sys
import textwrap
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402


def run(args, timeout=15, env=None, cwd=None):
        full_env = dict(os.environ)
        full_env.pop("GUNICORN_CMD_ARGS", None)
        if env:
                full_env.update(env)
        return subprocess.run([h.GCORN] + list(args), stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout, env=full_env,
                              cwd=cwd or h.APPS)


def lines(b):
        return [ln for ln in b.decode("utf-8", "replace").splitlines() if ln.strip()]


class TestInfo(unittest.TestCase):
        def test_version(self):
                p = run(["--version"])
                self.assertEqual(p.returncode, 0, p)
                out = (p.stdout + p.stderr).decode()
                self.assertRegex(out, r"\d+\.\d+")
                if not h.is_gunicorn():
                        self.assertIn("gcorn", out.lower())

        def test_help(self):
                p = run(["--help"])
                self.assertEqual(p.returncode, 0, p)
                out = p.stdout.decode()
                for flag in ("--bind", "--workers", "--timeout", "--keep-alive", "--chdir",
                             "--config", "--limit-request-line", "--limit-request-fields",
                             "--limit-request-field_size", "--access-logfile", "--error-logfile",
                             "--log-level", "--pythonpath", "--preload", "--env"):
                        self.assertIn(flag, out, "--help does not mention " + flag)


class TestBadUsage(unittest.TestCase):
        def test_unknown_flag(self):
                p = run(["--no-such-flag-xyz", "routes:app"])
                self.assertNotEqual(p.returncode, 0)
                err = lines(p.stderr)
                self.assertEqual(len(err), 1, err)
                self.assertIn("--no-such-flag-xyz", err[0])

        def test_bad_int(self):
                p = run(["-w", "x", "routes:app"])
                self.assertNotEqual(p.returncode, 0)
                err = lines(p.stderr)
                self.assertEqual(len(err), 1, err)
                self.assertIn("x", err[0])

        def test_bad_timeout(self):
                p = run(["--timeout", "soon", "routes:app"])
                self.assertNotEqual(p.returncode, 0)
                err = lines(p.stderr)
                self.assertEqual(len(err), 1, err)
                self.assertIn("soon", err[0])

        @unittest.skipIf(h.is_gunicorn(), "argparse also blames the value of an unknown option")
        def test_unknown_option_is_blamed_not_the_app(self):
                p = run(["--fibers", "4", "-w", "2", "routes:app"])
                self.assertNotEqual(p.returncode, 0)
                err = lines(p.stderr)
                self.assertEqual(len(err), 1, err)
                self.assertIn("--fibers", err[0])
                self.assertNotIn("routes:app", err[0])

        @unittest.skipIf(h.is_gunicorn(), "Gunicorn has no upper bounds")
        def test_values_that_would_overflow(self):
                # timeout * 1000 must fit the workers' int milliseconds; workers must fit
                # the scoreboard. Each is refused with the setting and its range.
                for args, name, bound in ((["--timeout", "3000000"], "--timeout", "2147483"),
                                          (["--keep-alive", "2147484"], "--keep-alive", "2147483"),
                                          (["--graceful-timeout", "99999999999"], "--graceful-timeout", "2147483"),
                                          (["-w", "100000"], "--workers", "512")):
                        with self.subTest(args=args):
                                p = run(args + ["routes:app"])
                                self.assertNotEqual(p.returncode, 0)
                                err = lines(p.stderr)
                                self.assertEqual(len(err), 1, err)
                                self.assertIn(name, err[0])
                                self.assertIn(bound, err[0])

        def test_timeout_zero_is_no_timeout(self):
                srv = h.Server("routes:app", args=["--timeout", "0", "-w", "1"])
                self.addCleanup(srv.stop)
                self.assertEqual(srv.get("/").status, 200)

        @unittest.skipIf(h.is_gunicorn(), "gcorn's own wording")
        def test_bind_errors_say_what_failed(self):
                for spec, needles in (("nosuchhost.invalid:80", ("resolve", "nosuchhost.invalid")),
                                      ("999.1.1.1:80", ("Invalid bind address", "999.1.1.1"))):
                        with self.subTest(spec=spec):
                                p = run(["-b", spec, "routes:app"])
                                self.assertNotEqual(p.returncode, 0)
                                err = [ln for ln in lines(p.stderr) if "[INFO]" not in ln]
                                self.assertEqual(len(err), 1, err)
                                for n in needles:
                                        self.assertIn(n, err[0])
                                self.assertNotIn("Cannot assign requested address", err[0])

        def test_missing_app_module(self):
                p = run(["-b", "127.0.0.1:0"])
                self.assertNotEqual(p.returncode, 0)
                self.assertTrue(lines(p.stderr), "no error message")


class TestAppLoading(h.ServerTestCase):
        def _fails_cleanly(self, app, needle):
                srv = h.Server(app, args=["-w", "1"], wait=False)
                self.addCleanup(srv.stop)
                rc = srv.wait_exit(timeout=15)
                log = srv.log()
                self.assertIsNotNone(rc, "server kept running with an unloadable app:\n" + log)
                self.assertNotEqual(rc, 0, log)
                self.assertIn(needle, log)
                # No fork loop: at most the one worker asked for was started.
                self.assertLessEqual(len(srv.worker_pids()), 1, log)

        def test_no_such_module(self):
                self._fails_cleanly("no_such_module_gcorn_xyz:app", "no_such_module_gcorn_xyz")

        def test_broken_module(self):
                self._fails_cleanly("broken:app", "undefined_name_in_broken_module")

        def test_no_such_attribute(self):
                self._fails_cleanly("routes:no_such_attribute_xyz", "no_such_attribute_xyz")

        def test_module_alone_means_application(self):
                srv = self.start("plain")
                r = srv.get("/")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"plain application\n")

        def test_factory_no_args(self):
                srv = self.start("factory:create_app()")
                self.assertEqual(srv.get("/").body, b"factory default\n")

        def test_factory_with_args(self):
                srv = self.start("factory:create_app('x', greeting=\"hi\")")
                self.assertEqual(srv.get("/").body, b"hi x\n")


class TestConfigFile(h.ServerTestCase):
        def write_config(self, text):
                d = h.tempdir(self, "gcorn-cfg-")
                path = os.path.join(d, "conf.py")
                with open(path, "w") as f:
                        f.write(textwrap.dedent(text))
                return path

        def test_config_settings(self):
                cfg = self.write_config("""
                        bind = "127.0.0.1:0"
                        workers = 2
                        wsgi_app = "routes:app"
                        raw_env = ["GCORN_T_CFG=from-config"]
                        """)
                srv = self.start(None, args=["-c", cfg], bind=None)
                srv.wait_log(h.WORKER_RE.pattern, count=2)
                self.assertEqual(len(set(srv.worker_pids())), 2)
                env = srv.get("/environ").json()
                self.assertEqual(env["_os_environ"].get("GCORN_T_CFG"), "from-config")

        def test_config_syntax_error(self):
                cfg = self.write_config("""
                        workers = 2
                        bind = = "127.0.0.1:0"
                        """)
                p = run(["-c", cfg, "routes:app"])
                self.assertNotEqual(p.returncode, 0)
                err = lines(p.stderr)
                self.assertEqual(len(err), 1, err)
                self.assertIn("conf.py", err[0])

        def test_config_missing(self):
                p = run(["-c", "/nonexistent/gcorn-conf.py", "routes:app"])
                self.assertNotEqual(p.returncode, 0)
                err = lines(p.stderr)
                self.assertEqual(len(err), 1, err)
                self.assertIn("/nonexistent/gcorn-conf.py", err[0])

        def test_cli_beats_config(self):
                # Port 1 is privileged: serving at all proves the command line's bind won.
                cfg = self.write_config("""
                        bind = "127.0.0.1:1"
                        wsgi_app = "factory:create_app('config')"
                        """)
                srv = self.start("factory:create_app('cli')", args=["-c", cfg])
                self.assertNotEqual(srv.port, 1)
                self.assertEqual(srv.get("/").body, b"factory cli\n")


class TestServerOptions(h.ServerTestCase):
        def test_chdir_and_pythonpath(self):
                appdir = h.tempdir(self, "gcorn-app-")
                libdir = h.tempdir(self, "gcorn-lib-")
                with open(os.path.join(libdir, "gcorn_t_helper.py"), "w") as f:
                        f.write("GREETING = b'from pythonpath\\n'\n")
                with open(os.path.join(appdir, "gcorn_t_app.py"), "w") as f:
                        f.write(textwrap.dedent("""
                                import os
                                import gcorn_t_helper

                                def app(environ, start_response):
                                        body = gcorn_t_helper.GREETING + os.getcwd().encode() + b"\\n"
                                        start_response("200 OK", [("Content-Length", str(len(body)))])
                                        return [body]
                                """))
                srv = self.start("gcorn_t_app:app", chdir=appdir, args=["--pythonpath", libdir])
                r = srv.get("/")
                self.assertEqual(r.status, 200, srv.log())
                self.assertEqual(r.body, b"from pythonpath\n" + os.path.realpath(appdir).encode() + b"\n")

        def test_env_flag(self):
                srv = self.start(args=["-e", "GCORN_T_ONE=1", "--env", "GCORN_T_TWO=a=b"])
                env = srv.get("/environ").json()["_os_environ"]
                self.assertEqual(env.get("GCORN_T_ONE"), "1")
                self.assertEqual(env.get("GCORN_T_TWO"), "a=b")

        def test_unix_socket(self):
                d = h.tempdir(self, "gcorn-unix-")
                path = os.path.join(d, "s.sock")
                srv = self.start(bind="unix:" + path)
                self.assertEqual(srv.unix_path, path)
                r = srv.get("/")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"Hello, World!\n")
                env = srv.get("/environ").json()
                self.assertEqual(env["REQUEST_METHOD"], "GET")

        def test_ipv6_loopback(self):
                try:
                        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
                        s.bind(("::1", 0))
                        s.close()
                except OSError:
                        self.skipTest("no IPv6 loopback on this machine")
                srv = self.start(bind="[::1]:0")
                self.assertEqual(srv.host, "::1")
                r = srv.get("/environ")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.json()["REMOTE_ADDR"], "::1")

        def test_two_workers(self):
                srv = self.start(args=["-w", "2"])
                srv.wait_log(h.WORKER_RE.pattern, count=2)
                pids = srv.worker_pids()
                self.assertEqual(len(set(pids)), 2, srv.log())
                self.assertNotIn(srv.pid, pids)
                for _ in range(4):
                        self.assertServes(srv)

        def test_script_name_from_environment(self):
                srv = self.start(env={"SCRIPT_NAME": "/prefix"})
                r = srv.get("/prefix/environ")
                self.assertEqual(r.status, 200, r)
                env = r.json()
                self.assertEqual(env["SCRIPT_NAME"], "/prefix")
                self.assertEqual(env["PATH_INFO"], "/environ")

        def test_term_stops_master(self):
                srv = h.Server("routes:app")
                self.addCleanup(srv.stop)
                self.assertServes(srv)
                workers = srv.worker_pids()
                srv.proc.terminate()
                self.assertEqual(srv.wait_exit(timeout=10), 0, srv.log())
                deadline = time.monotonic() + 5
                for w in workers:
                        while os.path.exists("/proc/%d" % w) and time.monotonic() < deadline:
                                time.sleep(0.05)
                        self.assertFalse(srv._pgid_is_ours(w), "worker %d outlived the master" % w)

        def test_access_log_stdout(self):
                srv = self.start(args=["--access-logfile", "-"])
                self.assertServes(srv, "/?q=access-marker")
                deadline = time.monotonic() + 5
                while "access-marker" not in srv.stdout() and time.monotonic() < deadline:
                        time.sleep(0.05)
                line = [ln for ln in srv.stdout().splitlines() if "access-marker" in ln]
                self.assertEqual(len(line), 1, srv.stdout())
                self.assertRegex(line[0], r'^127\.0\.0\.1 - - \[[^]]+\] "GET /\?q=access-marker HTTP/1\.1" 200 14 ')

        def test_error_logfile_and_debug(self):
                d = h.tempdir(self, "gcorn-log-")
                path = os.path.join(d, "error.log")
                srv = self.start(args=["--error-logfile", path, "--log-level", "debug"], log_path=path)
                self.assertServes(srv)
                with open(path) as f:
                        text = f.read()
                self.assertIn("Listening at", text)
                self.assertIn("[DEBUG]", text)


if __name__ == "__main__":
        h.main()
