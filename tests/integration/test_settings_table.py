"""The settings table through the real binary: every Gunicorn setting is implemented, reported
once as having no effect, or refused; the implemented ones added with the table (--pid,
GUNICORN_CMD_ARGS/GCORN_CMD_ARGS, --check-config, --print-config, --reuse-port,
--no-sendfile, -D/--daemon, -R) do what they say; the README table and the man page are the
table's."""

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

NOISE_VARS = ("GUNICORN_CMD_ARGS", "GCORN_CMD_ARGS", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID")


def clean_env(env=None):
        full = dict(os.environ)
        for k in NOISE_VARS:
                full.pop(k, None)
        full["PYTHONDONTWRITEBYTECODE"] = "1"
        if env:
                full.update(env)
        return full


def run(args, env=None, cwd=None, timeout=30):
        return subprocess.run([h.GCORN] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, env=clean_env(env), cwd=cwd or h.APPS)


def lines(b):
        return [ln for ln in b.decode("utf-8", "replace").splitlines() if ln.strip()]


def table():
        """The rows of --settings-table-markdown: name -> (flags, default, status, notes)."""
        p = run(["--settings-table-markdown"])
        assert p.returncode == 0, p
        rows = {}
        for ln in lines(p.stdout)[2:]:
                cells = [c.strip() for c in ln.strip("|").split(" | ")]
                rows[cells[0].strip("`")] = tuple(cells[1:])
        return rows


def print_config(args=(), env=None, cwd=None):
        p = run(["--print-config"] + list(args) + ["routes:app"], env=env, cwd=cwd)
        assert p.returncode == 0, p
        out = {}
        for ln in p.stdout.decode().splitlines():
                name, _, value = ln.partition(" = ")
                out[name.strip()] = value
        return out


def free_port():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port


def write(path, text):
        with open(path, "w") as f:
                f.write(textwrap.dedent(text))
        return path


def pid_alive(pid):
        """Alive and not a zombie."""
        try:
                with open("/proc/%d/stat" % pid) as f:
                        return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except (FileNotFoundError, ProcessLookupError):
                return False


class TestPidFile(h.ServerTestCase):
        def test_written_and_removed(self):
                d = h.tempdir(self, "gcorn-pid-")
                path = os.path.join(d, "gcorn.pid")
                srv = self.start(args=["-p", path])
                with open(path) as f:
                        self.assertEqual(f.read(), "%d\n" % srv.pid)
                self.assertEqual(os.stat(path).st_mode & 0o777, 0o644)
                # Written through a temporary file renamed over the name: nothing else is left.
                self.assertEqual(os.listdir(d), ["gcorn.pid"])
                self.assertServes(srv)
                srv.stop()
                self.assertEqual(srv.returncode, 0)
                self.assertFalse(os.path.exists(path))

        def test_reload_moves_it(self):
                d = h.tempdir(self, "gcorn-pid-")
                first, second = os.path.join(d, "a.pid"), os.path.join(d, "b.pid")
                conf = write(os.path.join(d, "c.py"), "pidfile = %r\n" % first)
                srv = self.start(args=["-c", conf])
                self.assertTrue(os.path.exists(first))
                write(conf, "pidfile = %r\n" % second)
                os.kill(srv.pid, signal.SIGHUP)
                self.assertTrue(h.wait_until(lambda: os.path.exists(second) and not os.path.exists(first), 15),
                                os.listdir(d))
                with open(second) as f:
                        self.assertEqual(f.read(), "%d\n" % srv.pid)
                srv.stop()
                self.assertEqual(os.listdir(d), ["c.py"])

        def test_live_pid_is_refused(self):
                d = h.tempdir(self, "gcorn-pid-")
                path = write(os.path.join(d, "gcorn.pid"), "%d\n" % os.getpid())
                p = run(["-p", path, "-b", "127.0.0.1:0", "routes:app"])
                self.assertEqual(p.returncode, 1, p)
                err = lines(p.stderr)
                self.assertEqual(len(err), 1, err)
                self.assertIn("Already running on PID %d" % os.getpid(), err[0])
                with open(path) as f:
                        self.assertEqual(f.read(), "%d\n" % os.getpid())

        def test_stale_pid_is_replaced(self):
                d = h.tempdir(self, "gcorn-pid-")
                dead = subprocess.Popen(["/bin/true"])
                dead.wait()
                path = write(os.path.join(d, "gcorn.pid"), "%d\n" % dead.pid)
                srv = self.start(args=["-p", path])
                with open(path) as f:
                        self.assertEqual(f.read(), "%d\n" % srv.pid)

        def test_missing_directory(self):
                p = run(["-p", "/nonexistent-gcorn-dir/x.pid", "-b", "127.0.0.1:0", "routes:app"])
                self.assertEqual(p.returncode, 1, p)
                err = lines(p.stderr)
                self.assertEqual(len(err), 1, err)
                self.assertIn("/nonexistent-gcorn-dir/x.pid", err[0])


class TestEnvArgs(unittest.TestCase):
        def test_precedence(self):
                """config file < GUNICORN_CMD_ARGS < GCORN_CMD_ARGS < command line."""
                d = h.tempdir(self, "gcorn-env-")
                conf = write(os.path.join(d, "c.py"), """\
                        workers = 2
                        timeout = 11
                        keepalive = 7
                        graceful_timeout = 13
                        """)
                cfg = print_config(["-c", conf, "-w", "5"],
                                   env={"GUNICORN_CMD_ARGS": "-w 3 --timeout 12 --keep-alive 8",
                                        "GCORN_CMD_ARGS": "-w 4 --timeout 14"})
                self.assertEqual(cfg["workers"], "5")
                self.assertEqual(cfg["timeout"], "14")
                self.assertEqual(cfg["keepalive"], "8")
                self.assertEqual(cfg["graceful_timeout"], "13")

        def test_quoting_and_config_from_env(self):
                d = h.tempdir(self, "gcorn-env-")
                conf = write(os.path.join(d, "c.py"), "workers = 3\n")
                cfg = print_config(env={"GUNICORN_CMD_ARGS": "-c %s --name 'my site'" % conf})
                self.assertEqual(cfg["workers"], "3")
                self.assertEqual(cfg["proc_name"], "my site")
                # -c on the command line wins over the one in the environment.
                other = write(os.path.join(d, "o.py"), "workers = 6\n")
                cfg = print_config(["-c", other], env={"GUNICORN_CMD_ARGS": "-c %s" % conf})
                self.assertEqual(cfg["workers"], "6")

        def test_serving_uses_env_args(self):
                env = clean_env({"GCORN_CMD_ARGS": "-n from-env-args"})
                srv = h.Server("routes:app", env=env)
                self.addCleanup(srv.stop)
                with open("/proc/%d/cmdline" % srv.pid, "rb") as f:
                        title = f.read()
                self.assertIn(b"from-env-args", title)

        def test_bad_env_args(self):
                p = run(["routes:app"], env={"GUNICORN_CMD_ARGS": "--no-such-flag"})
                self.assertEqual(p.returncode, 2, p)
                err = lines(p.stderr)
                self.assertEqual(err, ["gcorn: error: in $GUNICORN_CMD_ARGS: unrecognized arguments: --no-such-flag"])
                p = run(["routes:app"], env={"GCORN_CMD_ARGS": "--name 'open"})
                self.assertEqual(p.returncode, 2, p)
                self.assertEqual(lines(p.stderr), ["gcorn: error: in $GCORN_CMD_ARGS: no closing quotation"])


class TestCheckConfig(unittest.TestCase):
        def test_exit_codes(self):
                # The address is taken: --check-config binds nothing, so it still passes.
                busy = socket.socket()
                busy.bind(("127.0.0.1", 0))
                busy.listen(1)
                self.addCleanup(busy.close)
                addr = "127.0.0.1:%d" % busy.getsockname()[1]
                p = run(["--check-config", "-b", addr, "routes:app"])
                self.assertEqual(p.returncode, 0, p)
                self.assertEqual(p.stdout, b"")
                self.assertEqual(lines(p.stderr), [])

                p = run(["--check-config", "no_such_module_xyz:app"])
                self.assertEqual(p.returncode, 1, p)
                self.assertEqual(lines(p.stderr), ["gcorn: error: No module named 'no_such_module_xyz'"])

                p = run(["--check-config", "routes:no_such_app"])
                self.assertEqual(p.returncode, 1, p)
                self.assertEqual(len(lines(p.stderr)), 1, p)

                d = h.tempdir(self, "gcorn-check-")
                conf = write(os.path.join(d, "c.py"), "workers = (\n")
                p = run(["--check-config", "-c", conf, "routes:app"])
                self.assertEqual(p.returncode, 1, p)
                self.assertEqual(len(lines(p.stderr)), 1, p)
                self.assertIn("SyntaxError", p.stderr.decode())

        def test_in_config_file(self):
                d = h.tempdir(self, "gcorn-check-")
                conf = write(os.path.join(d, "c.py"), "check_config = True\nwsgi_app = 'routes:app'\n")
                p = run(["-c", conf, "-b", "127.0.0.1:0"])
                self.assertEqual(p.returncode, 0, p)


class TestPrintConfig(unittest.TestCase):
        def test_every_setting_sorted(self):
                p = run(["--print-config", "-w", "3", "--no-sendfile", "-b", "127.0.0.1:1", "routes:app"])
                self.assertEqual(p.returncode, 0, p)
                out = p.stdout.decode().splitlines()
                names = [ln.split(" = ", 1)[0] for ln in out]
                self.assertEqual(names, sorted(names))
                width = max(len(n.strip()) for n in names)
                for ln in out:
                        self.assertRegex(ln, r"^[a-z0-9_]+ * = ")
                        self.assertEqual(ln.index(" = "), width, ln)
                self.assertEqual({n.strip() for n in names}, set(table()))
                self.assertIn("workers" + " " * (width - 7) + " = 3", out)
                self.assertIn("sendfile" + " " * (width - 8) + " = False", out)
                self.assertIn("bind" + " " * (width - 4) + " = ['127.0.0.1:1']", out)
                self.assertIn("wsgi_app" + " " * (width - 8) + " = routes:app", out)

        def test_app_must_import(self):
                p = run(["--print-config", "no_such_module_xyz:app"])
                self.assertEqual(p.returncode, 1, p)
                self.assertIn(b"workers", p.stdout)
                self.assertEqual(len(lines(p.stderr)), 1, p)


class TestReusePort(h.ServerTestCase):
        def test_two_masters_share_a_port(self):
                port = free_port()
                bind = "127.0.0.1:%d" % port
                a = self.start(bind=bind, args=["--reuse-port"])
                b = self.start(bind=bind, args=["--reuse-port"])
                self.assertEqual((a.port, b.port), (port, port))
                self.assertServes(a)
                self.assertTrue(a.alive() and b.alive())

        def test_without_it_the_second_fails(self):
                port = free_port()
                bind = "127.0.0.1:%d" % port
                a = self.start(bind=bind)
                p = run(["-b", bind, "routes:app"], timeout=20)
                self.assertEqual(p.returncode, 1, p)
                self.assertIn("Address already in use", p.stderr.decode())
                # Both must ask for it.
                p = run(["-b", bind, "--reuse-port", "routes:app"], timeout=20)
                self.assertEqual(p.returncode, 1, p)
                self.assertTrue(a.alive())


class TestNoSendfile(h.ServerTestCase):
        SIZE = 300000

        def get_file(self, srv):
                # No Content-Length from the app (cl=0): sendfile(2) sends the file's size.
                r = srv.get("/file?size=%d&cl=0" % self.SIZE)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.body, h.pattern_bytes(self.SIZE))
                return r

        def test_default_uses_sendfile(self):
                r = self.get_file(self.start())
                self.assertEqual(r.header("Content-Length"), str(self.SIZE))

        def test_no_sendfile_goes_through_the_write_path(self):
                r = self.get_file(self.start(args=["--no-sendfile"]))
                # Iterated like any other response: its length is not known up front.
                self.assertIsNone(r.header("Content-Length"))
                self.assertEqual(r.header("Transfer-Encoding"), "chunked")

        def count_sendfile_calls(self, args):
                """sendfile(2) calls of the worker for one file response, seen by strace."""
                srv = self.start(args=args)
                worker = srv.worker_pids()[0]
                trace = os.path.join(srv.tmpdir, "strace.out")
                st = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=sendfile,write,writev,sendmsg,sendto",
                                       "-o", trace, "-p", str(worker)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

                def answered_traced():
                        # strace attaches at some point: a response that shows up in the trace
                        # was traced whole, since its head goes out before its body.
                        if st.poll() is not None:
                                return True
                        self.get_file(srv)
                        try:
                                with open(trace) as f:
                                        return re.search(r"\b(sendfile|write|writev|sendmsg|sendto)\(", f.read())
                        except FileNotFoundError:
                                return False

                try:
                        traced = h.wait_until(answered_traced, 10, interval=0.2)
                        if st.poll() is not None:
                                self.skipTest("strace cannot attach here: %r" % st.stderr.read())
                        self.assertTrue(traced, "strace never saw the worker answer")
                finally:
                        if st.poll() is None:
                                st.send_signal(signal.SIGINT)
                                try:
                                        st.wait(timeout=10)
                                except subprocess.TimeoutExpired:
                                        st.kill()
                                        st.wait()
                        st.stderr.close()
                with open(trace) as f:
                        return len(re.findall(r"\bsendfile\(", f.read()))

        @unittest.skipUnless(os.path.exists("/usr/bin/strace"), "needs strace")
        def test_sendfile_calls_counted(self):
                self.assertGreater(self.count_sendfile_calls([]), 0)
                self.assertEqual(self.count_sendfile_calls(["--no-sendfile"]), 0)


class TestDaemon(unittest.TestCase):
        def start_daemon(self, extra=(), stderr_path=None, app="routes:app", chdir=h.APPS):
                d = h.tempdir(self, "gcorn-daemon-")
                pidf = os.path.join(d, "gcorn.pid")
                logf = os.path.join(d, "error.log")
                argv = [h.GCORN, "-D", "-p", pidf, "--error-logfile", logf, "-b", "127.0.0.1:0",
                        "--chdir", chdir] + list(extra) + [app]
                err = open(stderr_path or os.devnull, "wb")
                self.addCleanup(err.close)
                p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                   env=clean_env(), timeout=30)
                self.assertEqual(p.returncode, 0, p)
                with open(pidf) as f:
                        pid = int(f.read())
                self.addCleanup(self.kill_leftovers, pid, logf)
                deadline = time.monotonic() + h.START_DEADLINE
                m = None
                while not m and time.monotonic() < deadline:
                        with open(logf) as f:
                                log = f.read()
                        m = h.LISTEN_RE.search(log)
                        if m and not h.WORKER_RE.search(log):
                                m = None
                        time.sleep(0.05)
                self.assertIsNotNone(m, "the daemon never listened")
                return pid, pidf, logf, h.split_hostport(m.group(1))

        def kill_leftovers(self, pid, logf):
                """Ends the daemon and its workers (by PID) if a test left them running."""
                pids = [pid]
                try:
                        with open(logf) as f:
                                pids += [int(w) for w in h.WORKER_RE.findall(f.read())]
                except FileNotFoundError:
                        pass
                for p in pids:
                        if pid_alive(p):
                                try:
                                        os.kill(p, signal.SIGKILL)
                                except ProcessLookupError:
                                        pass

        def get(self, addr):
                with socket.create_connection(addr, timeout=10) as s:
                        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        return h.recv_all(s)

        def test_starts_serves_and_stops(self):
                pid, pidf, logf, addr = self.start_daemon()
                self.assertTrue(self.get(addr).startswith(b"HTTP/1.1 200 "))
                with open("/proc/%d/stat" % pid) as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                ppid, sid = int(fields[1]), int(fields[4])
                self.assertNotEqual(ppid, os.getpid())
                # Its own session, of which it is not the leader: no terminal can come back.
                self.assertNotEqual(sid, os.getsid(0))
                self.assertNotEqual(sid, pid)
                os.kill(pid, signal.SIGTERM)
                self.assertTrue(h.wait_until(lambda: not pid_alive(pid), 15), "the daemon did not stop")
                self.assertFalse(os.path.exists(pidf))

        def test_stdio(self):
                d = h.tempdir(self, "gcorn-daemon-app-")
                write(os.path.join(d, "noisy.py"), """\
                        import sys
                        print("NOISY-IMPORT", file=sys.stderr, flush=True)
                        def app(environ, start_response):
                                start_response("200 OK", [("Content-Length", "0")])
                                return []
                        """)
                for extra, expect in (((), False), (("-R",), True)):
                        with self.subTest(extra=extra):
                                err = os.path.join(d, "stderr-%d.txt" % len(extra))
                                pid, _, _, addr = self.start_daemon(extra, stderr_path=err, app="noisy:app",
                                                                    chdir=d)
                                self.assertTrue(self.get(addr).startswith(b"HTTP/1.1 200 "))
                                os.kill(pid, signal.SIGTERM)
                                self.assertTrue(h.wait_until(lambda: not pid_alive(pid), 15))
                                with open(err) as f:
                                        self.assertEqual("NOISY-IMPORT" in f.read(), expect)

        def test_refused_under_systemd(self):
                d = h.tempdir(self, "gcorn-daemon-")
                pidf = os.path.join(d, "gcorn.pid")
                p = run(["-D", "-p", pidf, "-b", "127.0.0.1:0", "routes:app"],
                        env={"NOTIFY_SOCKET": os.path.join(d, "notify.sock")})
                self.assertEqual(p.returncode, 1, p)
                err = lines(p.stderr)
                self.assertEqual(len(err), 1, err)
                self.assertIn("--daemon is refused under systemd", err[0])
                self.assertFalse(os.path.exists(pidf))


# A value other than the default for each setting that is not implemented, as Python source.
SPECIAL_VALUES = {
        "protocol": "'uwsgi'",
        "http_protocols": "'h2,h1'",
        "ssl_version": "'TLSv1_2'",
        "asgi_loop": "'uvloop'",
        "dirty_apps": "['tasks:Heavy']",
        "raw_paste_global_conf": "['A=1']",
}


def other_value(name, default):
        if name in SPECIAL_VALUES:
                return SPECIAL_VALUES[name]
        if default == "None":
                return repr("/tmp/gcorn-%s" % name)
        if default in ("True", "False"):
                return "False" if default == "True" else "True"
        if re.fullmatch(r"-?\d+", default):
                return str(int(default) + 1)
        if default.startswith("["):
                return "['x']"
        return repr(default + "x")


def default_source(default):
        if default in ("None", "True", "False") or re.fullmatch(r"-?\d+", default) or default.startswith("["):
                return default
        return repr(default)


class TestTable(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
                cls.rows = table()
                cls.defaults = print_config()

        def names(self, status):
                # The settings of the table; the hooks' rows are tested in test_hooks.py.
                return [n for n, row in self.rows.items() if row[2] == status and not row[3].startswith("Server hook")]

        def check_config(self, source, args=()):
                d = h.tempdir(self, "gcorn-table-")
                conf = write(os.path.join(d, "c.py"), source)
                return run(["-c", conf, "--check-config"] + list(args) + ["routes:app"])

        def test_counts(self):
                # Every Gunicorn setting (118 in 23 to 26.1) is in the table once the rows of
                # hooks, proxy, privileges and parser switches are merged; these are the ones
                # the table itself classifies. The control socket and StatsD rows (six),
                # enable_backlog_metric and worker_connections took effect since.
                self.assertGreaterEqual(len(self.names("no effect")), 33)
                self.assertEqual(sorted(self.names("refused")),
                                 ["certfile", "dirty_apps", "keyfile", "paste", "protocol"])

        def test_each_no_effect_setting_warns_once(self):
                for name in self.names("no effect"):
                        with self.subTest(setting=name):
                                p = self.check_config("%s = %s\n" % (name, other_value(name, self.defaults[name])))
                                self.assertEqual(p.returncode, 0, p)
                                err = lines(p.stderr)
                                self.assertEqual(len(err), 1, err)
                                self.assertIn("[WARNING] Setting %s = " % name, err[0])
                                self.assertIn("has no effect in gcorn: " + self.rows[name][3], err[0])

        def test_reload_warns_about_new_ones_only(self):
                d = h.tempdir(self, "gcorn-table-")
                conf = write(os.path.join(d, "c.py"), "spew = True\n")
                srv = h.Server("routes:app", args=["-c", conf], env=clean_env())
                self.addCleanup(srv.stop)
                srv.wait_log(r"Setting spew = True has no effect")
                write(conf, "spew = True\nworker_tmp_dir = '/dev/shm'\n")
                for n in (1, 2):
                        os.kill(srv.pid, signal.SIGHUP)
                        srv.wait_log(h.WORKER_RE.pattern, timeout=15, count=1 + n)
                log = srv.log()
                self.assertEqual(log.count("Setting spew = True has no effect"), 1, log)
                self.assertEqual(log.count("Setting worker_tmp_dir = /dev/shm has no effect"), 1, log)

        def test_defaults_do_not_warn(self):
                src = "".join("%s = %s\n" % (n, default_source(self.defaults[n])) for n in self.names("no effect"))
                p = self.check_config(src)
                self.assertEqual(p.returncode, 0, p)
                self.assertEqual(lines(p.stderr), [])

        def test_flag_and_env_warn_too(self):
                p = run(["--check-config", "--spew", "routes:app"])
                self.assertEqual(p.returncode, 0, p)
                self.assertEqual(len(lines(p.stderr)), 1, p)
                self.assertIn("Setting spew = True has no effect", p.stderr.decode())
                p = run(["--check-config", "routes:app"], env={"GCORN_CMD_ARGS": "--worker-tmp-dir /dev/shm"})
                self.assertEqual(len(lines(p.stderr)), 1, p)
                self.assertIn("Setting worker_tmp_dir = /dev/shm has no effect", p.stderr.decode())

        def test_each_refused_setting_stops(self):
                for name in self.names("refused"):
                        with self.subTest(setting=name):
                                p = self.check_config("%s = %s\n" % (name, other_value(name, self.defaults[name])))
                                self.assertEqual(p.returncode, 1, p)
                                err = lines(p.stderr)
                                self.assertEqual(len(err), 1, err)
                                self.assertTrue(err[0].startswith("gcorn: error: Setting %s = " % name), err)
                                self.assertIn("is refused: " + self.rows[name][3], err[0])

        def test_refused_on_the_command_line(self):
                p = run(["-b", "127.0.0.1:0", "--certfile", "/etc/ssl/x.pem", "--keyfile", "/etc/ssl/x.key",
                         "routes:app"])
                self.assertEqual(p.returncode, 1, p)
                self.assertEqual(len(lines(p.stderr)), 1, p)
                for kind, hint in (("eventlet", "use gevent or gthread, or sync"), ("asgi", "not available yet"),
                                   ("uvicorn.workers.UvicornWorker", "not available yet")):
                        p = run(["-k", kind, "routes:app"])
                        self.assertEqual(p.returncode, 2, p)
                        err = lines(p.stderr)
                        self.assertEqual(len(err), 1, err)
                        self.assertIn(hint, err[0])

        def test_unknown_config_names(self):
                p = self.check_config("wokers = 4\n")
                self.assertEqual(p.returncode, 1, p)
                err = lines(p.stderr)
                self.assertEqual(len(err), 1, err)
                self.assertIn("Unknown setting 'wokers'", err[0])
                self.assertIn("did you mean 'workers'?", err[0])

                p = self.check_config("""\
                        import multiprocessing
                        from os.path import join
                        cores = multiprocessing.cpu_count()
                        def post_fork(server, worker):
                                pass
                        workers = 2
                        """)
                self.assertEqual(p.returncode, 0, p)
                err = lines(p.stderr)
                self.assertEqual(len(err), 1, err)
                self.assertIn("[WARNING] Config file ", err[0])
                self.assertIn("'cores' is not a setting; ignored", err[0])


class TestDocs(unittest.TestCase):
        def test_every_gunicorn_setting_is_accounted_for(self):
                with open(os.path.join(h.HERE, "gunicorn_settings.txt")) as f:
                        names = [l.strip() for l in f if l.strip() and not l.startswith("#")]
                self.assertGreater(len(names), 100)
                p = run(["--settings-table-markdown"])
                self.assertEqual(p.returncode, 0, p)
                rows = {}
                for line in p.stdout.decode().splitlines():
                        m = re.match(r"\| `([a-z0-9_]+)` \|.*\| (implemented|no effect|refused|gcorn only) \|", line)
                        if m:
                                rows[m.group(1)] = m.group(2)
                missing = [n for n in names if n not in rows]
                self.assertEqual(missing, [], "Gunicorn settings with no status in gcorn")

        def test_readme_table_is_generated(self):
                with open(os.path.join(h.SRC, "README.md")) as f:
                        readme = f.read()
                m = re.search(r"<!-- settings-table:begin[^>]*-->\n(.*?)<!-- settings-table:end -->", readme, re.S)
                self.assertIsNotNone(m, "README has no settings table markers")
                p = run(["--settings-table-markdown"])
                self.assertEqual(p.returncode, 0, p)
                self.assertEqual(m.group(1), p.stdout.decode(),
                                 "README's table is stale: replace it with `gcorn --settings-table-markdown`")

        def man_path(self):
                return os.environ.get("GCORN_MAN") or os.path.join(os.path.dirname(h.GCORN), "gcorn.1")

        def test_man_page_built_and_complete(self):
                path = self.man_path()
                self.assertTrue(os.path.exists(path), path)
                with open(path) as f:
                        man = f.read()
                self.assertEqual(man, run(["--man-page"]).stdout.decode())
                for name in print_config():
                        self.assertIn("Setting: \\fB%s\\fR" % name.replace("-", "\\-"), man, name)
                for name, row in table().items():
                        for flag in re.findall(r"--?[A-Za-z][\w-]*", row[0]):
                                self.assertIn(flag.replace("-", "\\-"), man, flag)

        @unittest.skipUnless(os.path.exists("/usr/bin/groff"), "needs groff")
        def test_man_page_renders_cleanly(self):
                p = subprocess.run(["groff", "-man", "-ww", "-z", self.man_path()], capture_output=True, timeout=30)
                self.assertEqual(p.returncode, 0, p)
                self.assertEqual(p.stderr, b"")

        def test_help_lists_every_flag(self):
                p = run(["--help"])
                self.assertEqual(p.returncode, 0, p)
                out = p.stdout.decode()
                for name, row in table().items():
                        for flag in re.findall(r"--?[A-Za-z][\w-]*", row[0]):
                                self.assertRegex(out, r"(?m)(^|[ ,])%s([ ,]|$)" % re.escape(flag), flag)
                for sec in ("Server Socket:", "Worker Processes:", "Debugging:", "Server Mechanics:", "Logging:",
                            "SSL:", "HTTP/2:"):
                        self.assertIn("\n" + sec + "\n", out)
                self.assertNotIn("markdown", out)


if __name__ == "__main__":
        h.main()
