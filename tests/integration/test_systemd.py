"""gcorn under a real systemd: the shipped units, socket activation, sd_notify, the journal,
reload/restart under load, the watchdog, crashes and start failures.

Each test group boots a private systemd 252 in namespaces (tests/systemd/sdboot.py) with the
built units copied verbatim plus test drop-ins, and powers it off afterwards, whatever
happened. The static group (systemd-analyze verify/security) needs no boot.

Environment: GCORN (the binary), GCORN_UNITS (the configured units), GCORN_SRC. GCORN_ASAN=1
(or a binary linked with libasan) adds the sanitizer's options to the units. Without root or
when the kernel refuses the namespaces, the booted groups are skipped, except under CI=true,
where that is a failure.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("GCORN_SRC") or os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "systemd"))
import sdboot  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

GCORN = os.environ.get("GCORN", "")
PYTHON = "/usr/bin/python3"
SDDIR = os.path.join(SRC, "tests", "systemd")
NETCLIENT = os.path.join(SDDIR, "netclient.py")
IN_CI = os.environ.get("CI", "") == "true"

BUILD_INSIDE = "/run/gcorn-build"
APP_INSIDE = "/run/sdboot/app"
BOOT_DELAY = 0.3                # tapp.py's import time, i.e. the boot time of a worker
WORKER_TIMEOUT = 3              # `timeout` of the test instances
WATCHDOG_S = 2
FORBIDDEN_ENV = re.compile(r"^(LISTEN_.*|NOTIFY_SOCKET|WATCHDOG_.*)$")
STATUS_RE = re.compile(r"^(?:(?:reloading|stopping): )?gen (\d+), (\d+)/(\d+) workers \((\d+) busy\), "
                       r"(\d+) requests, ([0-9.]+) req/s, (\d+) timeouts, (\d+) crashes$")
ACCESS_FIELDS = ("REQUEST_METHOD", "REQUEST_URI", "HTTP_STATUS", "RESPONSE_BYTES", "DURATION_USEC",
                 "REMOTE_ADDR", "USER_AGENT", "GCORN_INSTANCE", "GCORN_GENERATION")

PREFLIGHT = sdboot.preflight()
LIVE = []                       # booted systemds, for the exit handler


def _on_exit_signal(signum, frame):
        raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_exit_signal)


_UNITS = []


def units_dir():
        """The configured units; configured here from the sources when the build has none."""
        d = os.environ.get("GCORN_UNITS")
        if d and os.path.isfile(os.path.join(d, "gcorn@.service")):
                return d
        if _UNITS:
                return _UNITS[0]
        d = tempfile.mkdtemp(prefix="gcorn-units.")
        _UNITS.append(d)
        for name in ("gcorn@.socket", "gcorn@.service"):
                with open(os.path.join(SRC, "units", name + ".in")) as f:
                        text = f.read().replace("@bindir@", "/usr/local/bin")
                with open(os.path.join(d, name), "w") as f:
                        f.write(text)
        return d


def asan_build():
        if os.environ.get("GCORN_ASAN") == "1":
                return True
        try:
                out = subprocess.run(["ldd", GCORN], stdout=subprocess.PIPE, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
                return False
        return "libasan" in out


def write(path, text):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
                f.write(text)


CONF = """\
wsgi_app = "{app}"
chdir = "{chdir}"
workers = {workers}
timeout = {timeout}
graceful_timeout = {graceful}
accesslog = "-"
"""


class Stage:
        """The files a boot gets: units (verbatim + drop-ins), /etc/gcorn confs, the app."""

        def __init__(self):
                self.dir = tempfile.mkdtemp(prefix="gcorn-sdstage.")
                os.chmod(self.dir, 0o755)
                self.units = os.path.join(self.dir, "units")
                self.etc = os.path.join(self.dir, "etc")
                self.payload = os.path.join(self.dir, "payload")
                src_units = units_dir()
                os.makedirs(self.units)
                for name in ("gcorn@.socket", "gcorn@.service"):
                        shutil.copy(os.path.join(src_units, name), os.path.join(self.units, name))
                shutil.copytree(os.path.join(SDDIR, "app"), os.path.join(self.payload, "app"),
                                ignore=shutil.ignore_patterns("__pycache__"))
                binary = os.path.join(BUILD_INSIDE, os.path.basename(GCORN))
                env = ""
                if asan_build():
                        # The unit's seccomp filter denies LeakSanitizer's ptrace; a crash test
                        # needs the real SIGSEGV.
                        env = 'Environment="ASAN_OPTIONS=detect_leaks=0:handle_segv=0:handle_abort=0" PYTHONMALLOC=malloc\n'
                # Test knobs for every instance: the build's binary, a fast watchdog, no cores,
                # and no start rate limit: one group restarts the service on purpose (restart,
                # watchdog, crash) more often than the unit's 5 starts a minute allow.
                write(os.path.join(self.units, "gcorn@.service.d", "t.conf"),
                      "[Unit]\nStartLimitIntervalSec=0\n"
                      "[Service]\nExecStart=\nExecStart=%s --config /etc/gcorn/%%i.conf.py --name %%i\n"
                      "ExecReload=\nExecReload=%s --reload-and-wait $MAINPID\n"
                      "WatchdogSec=%ds\nTimeoutAbortSec=3s\nLimitCORE=0\n%s"
                      % (binary, binary, WATCHDOG_S, env))
                self.binds = [(os.path.dirname(os.path.realpath(GCORN)), BUILD_INSIDE)]

        def instance(self, name, port=None, app="tapp:app", timeout=WORKER_TIMEOUT, graceful=10,
                     workers=2, service_dropin=None):
                write(os.path.join(self.etc, "gcorn", name + ".conf.py"),
                      CONF.format(app=app, chdir=APP_INSIDE, workers=workers, timeout=timeout,
                                  graceful=graceful))
                if port is not None:
                        write(os.path.join(self.units, "gcorn@%s.socket.d" % name, "t.conf"),
                              "[Socket]\nListenStream=\nListenStream=127.0.0.1:%d\n" % port)
                if service_dropin:
                        write(os.path.join(self.units, "gcorn@%s.service.d" % name, "t2.conf"),
                              "[Service]\n" + service_dropin)

        def cleanup(self):
                shutil.rmtree(self.dir, ignore_errors=True)


class BootedCase(unittest.TestCase):
        """One private systemd per class; on a failure its journal and unit states are
        printed before it is powered off."""

        sd = None
        stage = None

        @classmethod
        def configure(cls, stage):
                raise NotImplementedError

        @classmethod
        def setUpClass(cls):
                if PREFLIGHT:
                        msg = "cannot boot a private systemd: " + PREFLIGHT
                        if IN_CI:
                                raise AssertionError(msg + " (CI=true: a skip is a failure)")
                        raise unittest.SkipTest(msg)
                if not GCORN or not os.access(GCORN, os.X_OK):
                        raise AssertionError("GCORN must name the server binary (got %r)" % GCORN)
                cls.stage = Stage()
                cls.configure(cls.stage)
                cls.sd = sdboot.SdBoot(units=cls.stage.units, payload=cls.stage.payload,
                                       etc=cls.stage.etc, binds=cls.stage.binds)
                LIVE.append(cls.sd)
                try:
                        cls.sd.boot()
                except BaseException:
                        print(cls.sd.boot_logs(), file=sys.stderr)
                        cls._teardown()
                        raise
                print("\n[sdboot] %s: booted in %.2fs" % (cls.__name__, cls.sd.boot_s), file=sys.stderr)

        @classmethod
        def _teardown(cls):
                if cls.sd is not None:
                        cls.sd.cleanup()
                        if cls.sd in LIVE:
                                LIVE.remove(cls.sd)
                        cls.sd = None
                if cls.stage is not None:
                        cls.stage.cleanup()
                        cls.stage = None

        @classmethod
        def tearDownClass(cls):
                cls._teardown()

        def run(self, result=None):
                before = len(result.failures) + len(result.errors) if result is not None else 0
                out = super().run(result)
                if result is not None and len(result.failures) + len(result.errors) > before and self.sd:
                        print("\n==== state of the private systemd after %s ====" % self.id(), file=sys.stderr)
                        self.sd.dump(out=sys.stderr)
                return out

        # -- helpers -------------------------------------------------------------

        def get(self, path, port=8000, timeout=15.0):
                argv = self.sd.netns_argv(PYTHON, NETCLIENT, "get", "http://127.0.0.1:%d%s" % (port, path), str(timeout))
                p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   timeout=timeout + 10)
                self.assertEqual(p.returncode, 0, p.stderr)
                return json.loads(p.stdout)

        def get_async(self, path, port=8000, timeout=15.0):
                argv = self.sd.netns_argv(PYTHON, NETCLIENT, "get", "http://127.0.0.1:%d%s" % (port, path), str(timeout))
                return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def result_of(self, proc, timeout=30.0):
                try:
                        out, err = proc.communicate(timeout=timeout)
                except subprocess.TimeoutExpired:
                        proc.kill()
                        out, err = proc.communicate()
                        self.fail("client did not finish: %s" % err)
                self.assertEqual(proc.returncode, 0, err)
                return json.loads(out)

        def start_load(self, path="/", port=8000, threads=4, max_seconds=60, pause=0.01):
                argv = self.sd.netns_argv(PYTHON, NETCLIENT, "load", "http://127.0.0.1:%d%s" % (port, path),
                                          str(threads), str(max_seconds), str(pause))
                p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                self.addCleanup(self._kill, p)
                return p

        def stop_load(self, p):
                p.send_signal(signal.SIGTERM)
                return self.result_of(p, timeout=40)

        @staticmethod
        def _kill(p):
                if p.poll() is None:
                        p.kill()
                        p.communicate()

        def assertLoadClean(self, res, minimum=20):
                self.assertEqual(res["errors"], {}, "failed requests: %r" % res)
                self.assertEqual(set(res["status"]), {"200"}, "non-200 answers: %r" % res)
                self.assertGreaterEqual(res["requests"], minimum, "too little load: %r" % res)

        def main_pid(self, unit):
                return int(self.sd.prop(unit, "MainPID") or 0)

        def children(self, pid):
                r = self.sd.run("ps", "-o", "pid=,comm=", "--ppid", str(pid))
                pids = set()
                for line in r.stdout.splitlines():
                        parts = line.split(None, 1)
                        # The reload helper and the app's subprocesses are not workers.
                        if parts and (len(parts) < 2 or parts[1].strip() not in ("env",)):
                                pids.add(int(parts[0]))
                return pids

        def status(self, unit):
                text = self.sd.prop(unit, "StatusText")
                return text, STATUS_RE.match(text)

        def wait_status(self, unit, pred=lambda m: True, timeout=5.0):
                def ok():
                        text, m = self.status(unit)
                        return m if m and pred(m) else None
                m = h.wait_until(ok, timeout, 0.1)
                self.assertIsNotNone(m, "StatusText %r does not match the STATUS format" % self.status(unit)[0])
                return m

        def journal_unit(self, unit, *args):
                return self.sd.journal("-u", unit, *args)

        def wait_journal(self, unit, pred, timeout=5.0):
                def find():
                        return [e for e in self.journal_unit(unit) if pred(e)]
                return h.wait_until(find, timeout, 0.2)

        def assertServes(self, port=8000):
                r = self.get("/", port=port)
                self.assertEqual(r["status"], 200, r)

        def assertCleanEnviron(self, port=8000):
                r = self.get("/environ", port=port)
                self.assertEqual(r["status"], 200, r)
                env = json.loads(r["body"])
                for where in ("os", "subprocess"):
                        bad = sorted(k for k in env[where] if FORBIDDEN_ENV.match(k))
                        self.assertEqual(bad, [], "the app's %s environment holds %s" % (where, bad))
                return env


class T14StaticUnits(unittest.TestCase):
        """The shipped units, checked without a boot."""

        @classmethod
        def setUpClass(cls):
                cls.units = units_dir()
                for tool in ("systemd-analyze",):
                        if shutil.which(tool) is None:
                                raise unittest.SkipTest(tool + " is missing")

        def read(self, name):
                with open(os.path.join(self.units, name)) as f:
                        return f.read()

        def directives(self, name):
                out = {}
                for line in self.read(name).splitlines():
                        if "=" in line and not line.startswith(("#", ";", "[")):
                                k, _, v = line.partition("=")
                                out.setdefault(k.strip(), []).append(v.strip())
                return out

        def _verify_root(self, service_text=None):
                """An alternate root with the vendor units, ours in /etc and a stub binary."""
                root = tempfile.mkdtemp(prefix="gcorn-verify.")
                self.addCleanup(shutil.rmtree, root, True)
                shutil.copytree("/lib/systemd/system", os.path.join(root, "usr/lib/systemd/system"), symlinks=True)
                etc = os.path.join(root, "etc/systemd/system")
                os.makedirs(etc)
                shutil.copy(os.path.join(self.units, "gcorn@.socket"), etc)
                if service_text is None:
                        shutil.copy(os.path.join(self.units, "gcorn@.service"), etc)
                else:
                        write(os.path.join(etc, "gcorn@.service"), service_text)
                exe = self.directives("gcorn@.service")["ExecStart"][0].split()[0]
                self.assertTrue(os.path.isabs(exe), exe)
                write(root + exe, "#!/bin/sh\nexit 0\n")
                os.chmod(root + exe, 0o755)
                return root

        def verify(self, root):
                return subprocess.run(["systemd-analyze", "verify", "--man=no", "--root=" + root,
                                       "gcorn@demo.socket", "gcorn@demo.service"],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)

        def test_verify(self):
                p = self.verify(self._verify_root())
                self.assertEqual(p.returncode, 0, p.stdout)
                self.assertEqual(p.stdout.strip(), "", "systemd-analyze verify complained")

        def test_verify_catches_mistakes(self):
                # The check above must be able to fail: an unknown key is reported.
                text = self.read("gcorn@.service").replace("KillMode=mixed", "KillMode=mixed\nKilMode=mixed")
                p = self.verify(self._verify_root(text))
                self.assertIn("KilMode", p.stdout)

        def test_security_score(self):
                d = tempfile.mkdtemp(prefix="gcorn-sec.")
                self.addCleanup(shutil.rmtree, d, True)
                for name in ("gcorn@.socket", "gcorn@.service"):
                        shutil.copy(os.path.join(self.units, name), d)
                env = dict(os.environ, SYSTEMD_UNIT_PATH=d + ":", SYSTEMD_PAGER="", SYSTEMD_COLORS="0")
                p = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=15",
                                    "--no-pager", "gcorn@demo.service"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env=env, timeout=60)
                m = re.search(r"Overall exposure level for gcorn@demo\.service: ([0-9.]+)", p.stdout)
                self.assertIsNotNone(m, p.stdout)
                self.assertLessEqual(float(m.group(1)), 1.5, p.stdout)
                self.assertEqual(p.returncode, 0, p.stdout)

        def test_unit_contents(self):
                svc = self.directives("gcorn@.service")
                sock = self.directives("gcorn@.socket")
                exe = svc["ExecStart"][0].split()[0]
                self.assertTrue(exe.endswith("/gcorn"), exe)
                self.assertEqual(svc["ExecStart"], [exe + " --config /etc/gcorn/%i.conf.py --name %i"])
                self.assertEqual(svc["ExecReload"], [exe + " --reload-and-wait $MAINPID"])
                for k, v in (("Type", "notify"), ("NotifyAccess", "main"), ("KillMode", "mixed"),
                             ("Restart", "on-failure"), ("DynamicUser", "yes"), ("SyslogIdentifier", "gcorn"),
                             ("LimitNOFILE", "65536"), ("WatchdogSec", "30"),
                             ("AssertPathExists", "/etc/gcorn/%i.conf.py")):
                        self.assertEqual(svc.get(k), [v], k)
                self.assertGreater(int(svc["TimeoutStopSec"][0]), 30)
                for k, v in (("FileDescriptorName", "http"), ("Accept", "no"), ("Backlog", "4096"),
                             ("NoDelay", "yes"), ("ListenStream", "/run/gcorn-%i.sock")):
                        self.assertEqual(sock.get(k), [v], k)


class Serving(BootedCase):
        """T1, T2, T4, T5, T8, T9, T10, T12 on one instance, in order."""

        U = "gcorn@demo.service"
        S = "gcorn@demo.socket"

        @classmethod
        def configure(cls, stage):
                stage.instance("demo", port=8000)

        def test_01_activation(self):
                r = self.sd.systemctl("start", self.S)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(self.sd.prop(self.S, "ActiveState"), "active")
                self.assertEqual(self.sd.prop(self.U, "ActiveState"), "inactive",
                                 "the service started before the first connection")
                r = self.get("/", timeout=30)
                self.assertEqual(r["status"], 200, r)
                self.assertTrue(r["body"].startswith("ok "), r)
                # The first worker may answer before the last one booted; READY=1 (and so
                # "active") follows once all of them serve.
                p = h.wait_until(lambda: (lambda q: q if (q["ActiveState"], q["SubState"]) == ("active", "running")
                                      else None)(self.sd.show(self.U, "ActiveState", "SubState")), 10)
                self.assertTrue(p, self.sd.show(self.U, "ActiveState", "SubState"))
                m = self.wait_status(self.U, lambda m: m.group(2) == m.group(3) == "2")
                self.assertGreaterEqual(int(m.group(1)), 1)
                found = self.wait_journal(self.U, lambda e: re.search(
                        r'Listening at: http://127\.0\.0\.1:8000 \(fd 3 "http" from systemd\)', e.get("MESSAGE", "")))
                self.assertTrue(found, "no 'Listening at ... (fd 3 \"http\" from systemd)' in the journal")

        def test_02_journal(self):
                main = self.main_pid(self.U)
                r = self.get("/?t2=access")
                self.assertEqual(r["status"], 200)
                hits = self.wait_journal(self.U, lambda e: e.get("REQUEST_URI") == "/?t2=access")
                self.assertEqual(len(hits), 1, "access entry for /?t2=access: %r" % hits)
                e = hits[0]
                missing = [f for f in ACCESS_FIELDS if f not in e]
                self.assertEqual(missing, [], "access entry lacks fields: %r" % e)
                self.assertEqual(e["REQUEST_METHOD"], "GET")
                self.assertEqual(e["HTTP_STATUS"], "200")
                self.assertEqual(e["REMOTE_ADDR"], "127.0.0.1")
                self.assertEqual(e["USER_AGENT"], "sdboot-netclient/1")
                self.assertEqual(e["GCORN_INSTANCE"], "demo")
                self.assertEqual(int(e["RESPONSE_BYTES"]), len(r["body"].encode()))
                self.assertGreaterEqual(int(e["DURATION_USEC"]), 0)
                self.assertGreaterEqual(int(e["GCORN_GENERATION"]), 1)
                self.assertEqual(e.get("SYSLOG_IDENTIFIER"), "gcorn")
                self.assertEqual(e.get("PRIORITY"), "6")
                self.assertEqual(e.get("_TRANSPORT"), "journal")
                self.assertNotEqual(int(e["_PID"]), main, "access entries come from the workers")

                r = self.get("/crash?tag=t2")
                self.assertEqual(r["status"], 500, r)
                exc = "RuntimeError: tapp-crash-marker t2"
                tb = self.wait_journal(self.U, lambda e: exc in e.get("MESSAGE", ""))
                self.assertEqual(len(tb), 1, "the traceback is not one entry: %r" % tb)
                self.assertIn("Traceback (most recent call last)", tb[0]["MESSAGE"])
                self.assertIn('tapp.py", line', tb[0]["MESSAGE"])
                self.assertEqual(tb[0].get("SYSLOG_IDENTIFIER"), "gcorn")
                self.assertLessEqual(int(tb[0].get("PRIORITY", "9")), 3)
                split = [x for x in self.journal_unit(self.U)
                         if x.get("MESSAGE", "").startswith("  File ")
                         or x.get("MESSAGE", "").strip() == "Traceback (most recent call last):"]
                self.assertEqual(split, [], "traceback lines logged as entries of their own")

                r = self.get("/log?level=error&tag=t2")
                self.assertEqual(r["status"], 200)
                logged = self.wait_journal(self.U, lambda e: "-marker ERROR t2" in e.get("MESSAGE", ""))
                self.assertTrue(logged, "the app's error log line is not in the journal")
                for e in logged:
                        self.assertEqual(e.get("SYSLOG_IDENTIFIER"), "gcorn", e)
                        self.assertEqual(e.get("PRIORITY"), "3", "an error logged by the app: %r" % e)

                r = self.get("/print?tag=t2")
                self.assertEqual(r["status"], 200)
                printed = self.wait_journal(self.U, lambda e: "tapp-print-marker t2" in e.get("MESSAGE", ""))
                self.assertTrue(printed, "print() output is not in the journal")
                self.assertEqual(printed[0].get("SYSLOG_IDENTIFIER"), "gcorn", printed[0])

                # wsgi.errors text with no final newline still reaches the journal when its
                # worker exits (here: replaced by a reload).
                r = self.get("/partial?tag=t2")
                self.assertEqual(r["status"], 200)
                self.assertEqual(self.sd.systemctl("reload", self.U, timeout=30).returncode, 0)
                partial = self.wait_journal(self.U, lambda e: "tapp-partial-marker t2" in e.get("MESSAGE", ""))
                self.assertTrue(partial, "an unterminated wsgi.errors line was lost when its worker exited")

        def test_03_environ_hygiene(self):
                self.assertCleanEnviron()

        def test_04_reload_under_load(self):
                main = self.main_pid(self.U)
                gen = int(self.wait_status(self.U, lambda m: m.group(2) == m.group(3)).group(1))
                states = set()
                stop = threading.Event()

                def poll():
                        while not stop.is_set():
                                states.add(self.sd.prop(self.U, "ActiveState"))
                                time.sleep(0.03)

                poller = threading.Thread(target=poll, daemon=True)
                load = self.start_load()
                time.sleep(0.5)
                poller.start()
                try:
                        for i in range(10):
                                before = self.children(main)
                                t0 = time.monotonic()
                                r = self.sd.systemctl("reload", self.U, timeout=30)
                                took = time.monotonic() - t0
                                self.assertEqual(r.returncode, 0, "reload %d: %s" % (i + 1, r.stderr))
                                self.assertGreaterEqual(took, BOOT_DELAY,
                                                        "reload %d returned before a worker could boot" % (i + 1))
                                self.wait_status(self.U, lambda m, g=gen + 1: int(m.group(1)) == g and
                                                 not self.status(self.U)[0].startswith("reloading"), timeout=3)
                                gen += 1
                                self.assertEqual(self.sd.prop(self.U, "ActiveState"), "active")
                                fresh = h.wait_until(lambda: (lambda c: c if len(c) == 2 and not (c & before) else None)(
                                        self.children(main)), 12, 0.1)
                                self.assertTrue(fresh, "reload %d: workers %r did not all change (were %r)"
                                                % (i + 1, self.children(main), before))
                                self.assertEqual(self.main_pid(self.U), main, "MainPID changed on reload")
                finally:
                        stop.set()
                        poller.join(5)
                        res = self.stop_load(load)
                self.assertLoadClean(res, minimum=50)
                self.assertIn("reloading", states, "the unit was never seen reloading")
                self.assertEqual(self.sd.prop(self.U, "ActiveState"), "active")
                self.assertCleanEnviron()

        def test_05_restart_under_load(self):
                main = self.main_pid(self.U)
                load = self.start_load()
                slow = self.get_async("/slow?s=2", timeout=20)
                time.sleep(0.5)
                r = self.sd.systemctl("restart", self.U, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                time.sleep(1.0)
                res = self.stop_load(load)
                s = self.result_of(slow)
                self.assertEqual((s["status"], s["body"]), (200, "slept 2\n"), "the in-flight request: %r" % s)
                self.assertLoadClean(res)
                self.assertNotEqual(self.main_pid(self.U), main, "MainPID did not change")
                self.assertEqual(self.sd.prop(self.S, "ActiveState"), "active")
                self.assertEqual(self.sd.prop(self.U, "ActiveState"), "active")

        def test_06_hung_worker(self):
                main = self.main_pid(self.U)
                restarts = self.sd.prop(self.U, "NRestarts")
                workers = h.wait_until(lambda: (lambda c: c if len(c) == 2 else None)(self.children(main)), 10)
                self.assertTrue(workers, "expected 2 workers, got %r" % self.children(main))
                victim = min(workers)
                since = self.sd.run("date", "+@%s.%N").stdout.strip()
                t0 = time.monotonic()
                self.assertEqual(self.sd.run("kill", "-STOP", str(victim)).returncode, 0)
                gone = h.wait_until(lambda: victim not in self.children(main), WORKER_TIMEOUT + 10, 0.1)
                took = time.monotonic() - t0
                self.assertTrue(gone, "the stopped worker %d was never replaced" % victim)
                self.assertLessEqual(took, WORKER_TIMEOUT + 3, "the stopped worker lived %.1fs" % took)
                back = h.wait_until(lambda: len(self.children(main)) == 2, 10)
                self.assertTrue(back, "no replacement worker: %r" % self.children(main))
                self.assertEqual(self.sd.prop(self.U, "ActiveState"), "active")
                self.assertEqual(self.sd.prop(self.U, "NRestarts"), restarts)
                self.assertEqual(self.main_pid(self.U), main)
                warn = [e for e in self.sd.journal("-u", self.U, "--since", since)
                        if str(victim) in e.get("MESSAGE", "") and int(e.get("PRIORITY", "9")) <= 4
                        and e.get("_TRANSPORT") != "driver"]
                self.assertTrue(warn, "no warning (PRIORITY <= 4) naming worker %d" % victim)
                self.assertServes()

        def test_07_watchdog(self):
                main = self.main_pid(self.U)
                restarts = int(self.sd.prop(self.U, "NRestarts"))
                r = self.sd.systemctl("kill", "-s", "STOP", "--kill-who=main", self.U)
                self.assertEqual(r.returncode, 0, r.stderr)
                queued = []
                for _ in range(3):
                        queued.append(self.get_async("/", timeout=30))
                        time.sleep(0.7)
                new = h.wait_until(lambda: (lambda p: p if p not in (0, main) else None)(self.main_pid(self.U)), 25, 0.1)
                self.assertTrue(new, "the watchdog did not restart the stopped master")
                self.assertTrue(h.wait_until(lambda: self.sd.prop(self.U, "ActiveState") == "active", 15))
                self.assertEqual(int(self.sd.prop(self.U, "NRestarts")), restarts + 1)
                self.assertIn("Watchdog timeout", self.sd.journal_text("-u", self.U))
                for p in queued:
                        r = self.result_of(p, timeout=40)
                        self.assertEqual(r["status"], 200, "a request sent during the hang: %r" % r)
                self.assertServes()

        def test_08_crash(self):
                main = self.main_pid(self.U)
                restarts = int(self.sd.prop(self.U, "NRestarts"))
                t0 = time.monotonic()
                r = self.sd.systemctl("kill", "-s", "SEGV", "--kill-who=main", self.U)
                self.assertEqual(r.returncode, 0, r.stderr)
                new = h.wait_until(lambda: (lambda p: p if p not in (0, main) else None)(self.main_pid(self.U)), 15, 0.1)
                self.assertTrue(new, "no restart after SIGSEGV")
                self.assertServes()
                self.assertLess(time.monotonic() - t0, 10)
                self.assertEqual(int(self.sd.prop(self.U, "NRestarts")), restarts + 1)
                self.assertRegex(self.sd.journal_text("-u", self.U), r"Main process exited, code=(killed|dumped), status=11/SEGV")

        def test_09_notify_hygiene(self):
                self.assertCleanEnviron()
                text = self.sd.journal_text()
                self.assertNotIn("reception only permitted for main PID", text)
                self.assertNotIn("Supervising process", text)


class Lifecycle(BootedCase):
        """T3 (stderr fallback), T6 (stop timeout), T13 (start failures)."""

        @classmethod
        def configure(cls, stage):
                stage.instance("plain", port=8001, service_dropin="StandardError=file:/run/t.log\n")
                stage.instance("prefix", port=8002, service_dropin=(
                        "ExecStart=\nExecStart=%s/%s --config /etc/gcorn/%%i.conf.py --name %%i --log-target stderr\n"
                        % (BUILD_INSIDE, os.path.basename(GCORN))))
                stage.instance("stop", port=8003, timeout=30, graceful=10,
                               service_dropin="TimeoutStopSec=2s\n")
                stage.instance("broken", app="tapp_broken:app")
                # Workers boot for longer than TimeoutStartSec=, which bounds a reload too.
                stage.instance("slowreload", port=8004, service_dropin="TimeoutStartSec=2s\n"
                               "Environment=TAPP_BOOT_DELAY=3\n")

        def activate(self, name, port):
                r = self.sd.systemctl("start", "gcorn@%s.socket" % name)
                self.assertEqual(r.returncode, 0, r.stderr)
                r = self.get("/", port=port, timeout=30)
                self.assertEqual(r["status"], 200, r)

        def test_stderr_to_file(self):
                u = "gcorn@plain.service"
                self.activate("plain", 8001)
                self.assertEqual(self.get("/crash?tag=t3", port=8001)["status"], 500)

                def text():
                        t = self.sd.run("cat", "/run/t.log").stdout
                        return t if "tapp-crash-marker t3" in t else None
                log = h.wait_until(text, 5, 0.1)
                self.assertTrue(log, "the traceback never reached the stderr file")
                self.assertIn("Listening at: http://127.0.0.1:8001", log)
                self.assertIn("Traceback (most recent call last)", log)
                prefixed = [line for line in log.splitlines() if re.match(r"^<\d>", line)]
                self.assertEqual(prefixed, [], "<N> prefixes in a file")
                # systemd's own messages about the unit are native entries too; ours are not.
                native = [e for e in self.journal_unit(u) if e.get("_TRANSPORT") == "journal" and e.get("_PID") != "1"]
                self.assertEqual(native, [], "native journal entries although stderr is a file")

        def test_stderr_prefixes_on_journal_stream(self):
                u = "gcorn@prefix.service"
                self.activate("prefix", 8002)
                self.assertEqual(self.get("/crash?tag=t3p", port=8002)["status"], 500)
                exc = "RuntimeError: tapp-crash-marker t3p"
                hits = self.wait_journal(u, lambda e: exc in e.get("MESSAGE", ""))
                self.assertTrue(hits, "the traceback is not in the journal")
                for e in hits:
                        self.assertEqual(e.get("_TRANSPORT"), "stdout", e)
                        self.assertEqual(e.get("PRIORITY"), "3", e)
                        self.assertEqual(e.get("SYSLOG_IDENTIFIER"), "gcorn", e)
                entries = self.journal_unit(u)
                self.assertEqual([e for e in entries if re.match(r"^<\d>", e.get("MESSAGE", ""))], [],
                                 "<N> prefixes not parsed by journald")
                self.assertEqual([e for e in entries if e.get("_TRANSPORT") == "journal" and e.get("_PID") != "1"], [],
                                 "native entries despite --log-target stderr")
                listening = [e for e in entries if "Listening at:" in e.get("MESSAGE", "")]
                self.assertTrue(listening)
                self.assertGreaterEqual(int(listening[0]["PRIORITY"]), 5, "an informational line at %r" % listening[0])

        def test_stop_longer_than_timeout(self):
                u = "gcorn@stop.service"
                self.activate("stop", 8003)
                slow = self.get_async("/slow?s=8", port=8003, timeout=20)
                time.sleep(0.5)
                t0 = time.monotonic()
                r = self.sd.systemctl("stop", "--no-block", u)
                self.assertEqual(r.returncode, 0, r.stderr)
                seen = h.wait_until(lambda: self.status(u)[0].startswith("stopping: ") or None, 1.5, 0.05)
                self.assertTrue(seen, "StatusText while draining: %r" % self.status(u)[0])
                done = h.wait_until(lambda: self.sd.prop(u, "ActiveState") in ("inactive", "failed"), 15, 0.1)
                took = time.monotonic() - t0
                self.assertTrue(done, "the stop never finished")
                self.assertGreaterEqual(took, 1.8)
                self.assertLess(took, 7.0)
                s = self.result_of(slow)
                self.assertIsNone(s["status"], "a request longer than TimeoutStopSec was answered: %r" % s)
                self.assertIn("State 'stop-sigterm' timed out", self.sd.journal_text("-u", u))
                p = self.sd.show(u, "Result", "ControlGroup", "MainPID")
                self.assertEqual(p["Result"], "timeout", p)
                self.assertEqual(p["MainPID"], "0", p)
                left = self.sd.run("sh", "-c", "cat /sys/fs/cgroup/system.slice/system-gcorn.slice/gcorn@stop.service/cgroup.procs 2>/dev/null")
                self.assertEqual(left.stdout.strip(), "", "processes left in the cgroup")
                self.assertEqual(self.sd.prop("gcorn@stop.socket", "ActiveState"), "active")

        def test_reload_longer_than_start_timeout(self):
                u = "gcorn@slowreload.service"
                self.activate("slowreload", 8004)
                self.assertEqual(self.sd.prop(u, "TimeoutStartUSec"), "2s")
                main = self.main_pid(u)
                before = self.children(main)
                t0 = time.monotonic()
                r = self.sd.systemctl("reload", u, timeout=60)
                took = time.monotonic() - t0
                self.assertEqual(r.returncode, 0, "reload: %s" % r.stderr)
                self.assertGreaterEqual(took, 3.0, "the reload returned before the new workers booted")
                self.assertNotIn("Reload operation timed out", self.sd.journal_text("-u", u))
                self.assertEqual(self.sd.prop(u, "ActiveState"), "active")
                self.assertEqual(self.main_pid(u), main)
                fresh = h.wait_until(lambda: (lambda c: c if len(c) == 2 and not (c & before) else None)(
                        self.children(main)), 10, 0.1)
                self.assertTrue(fresh, "workers %r did not all change (were %r)" % (self.children(main), before))
                self.assertServes(port=8004)

        def test_broken_app(self):
                u = "gcorn@broken.service"
                r = self.sd.systemctl("start", u, timeout=60)
                self.assertNotEqual(r.returncode, 0, "a broken app started")
                p = self.sd.show(u, "ActiveState", "StatusText", "StatusErrno", "ExecMainStatus", "NRestarts")
                self.assertEqual(p["ActiveState"], "failed", p)
                self.assertTrue(p["StatusText"].startswith("Failed:"), p)
                self.assertNotEqual(p["StatusErrno"], "0", p)
                self.assertEqual(p["ExecMainStatus"], "3", p)
                self.assertEqual(p["NRestarts"], "0", "a load failure was restarted: %r" % p)
                self.assertIn("tapp-broken-marker", self.sd.journal_text("-u", u))

        def test_missing_config(self):
                u = "gcorn@x.service"
                r = self.sd.systemctl("start", u, timeout=30)
                self.assertNotEqual(r.returncode, 0)
                p = self.sd.show(u, "ActiveState", "AssertResult", "MainPID")
                self.assertEqual(p["AssertResult"], "no", p)
                self.assertNotEqual(p["ActiveState"], "active", p)
                self.assertEqual(p["MainPID"], "0", p)
                self.assertIn("ssertion failed", self.sd.journal_text("-u", u))


def main():
        t0 = time.monotonic()
        try:
                prog = unittest.main(module="__main__", verbosity=2, exit=False)
        finally:
                for sd in list(LIVE):
                        sd.cleanup()
                for d in _UNITS:
                        shutil.rmtree(d, ignore_errors=True)
        res = prog.result
        failed = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
        passed = res.testsRun - failed - len(res.skipped)
        print("systemd tests took %.1fs" % (time.monotonic() - t0))
        print("%d passed, %d failed" % (passed, failed))
        sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
        main()
