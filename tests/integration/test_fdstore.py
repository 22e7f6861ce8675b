"""gcorn-standalone@.service under a real systemd: the master binds its own sockets, keeps
them in systemd's fd store, and a restarted master takes the same sockets back, so that
`systemctl restart` refuses no connection. A bind address that left the configuration is
dropped from the store. Beside it, the socket-activated unit (gcorn@.socket +
gcorn@.service) across as many restarts, which never touches the store.

Uses the private systemd of tests/systemd/sdboot.py through test_systemd.py's staging (the
units copied verbatim, plus test drop-ins); same environment and skip rules as there.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gcorn_harness as h  # noqa: E402
import test_systemd as ts  # noqa: E402
from netclient import worst_during  # noqa: E402  (tests/systemd, on the path test_systemd set)

STANDALONE = "gcorn-standalone@.service"
RESTARTS = 5
ASAN = "ASAN_OPTIONS" in os.environ or (ts.GCORN and ts.asan_build())
LOAD_THREADS = 2 if ASAN else 4


def standalone_unit():
        """The configured standalone unit; configured here from the source when the build has none."""
        d = os.environ.get("GCORN_UNITS")
        if d and os.path.isfile(os.path.join(d, STANDALONE)):
                with open(os.path.join(d, STANDALONE)) as f:
                        return f.read()
        with open(os.path.join(ts.SRC, "units", STANDALONE + ".in")) as f:
                return f.read().replace("@bindir@", "/usr/local/bin")


class FdStoreStage(ts.Stage):
        """test_systemd's stage plus the standalone unit, with the same test knobs."""

        def __init__(self):
                super().__init__()
                ts.write(os.path.join(self.units, STANDALONE), standalone_unit())
                os.makedirs(os.path.join(self.units, STANDALONE + ".d"))
                shutil.copy(os.path.join(self.units, "gcorn@.service.d", "t.conf"),
                            os.path.join(self.units, STANDALONE + ".d", "t.conf"))

        def standalone(self, name, bind):
                ts.write(os.path.join(self.etc, "gcorn", name + ".conf.py"),
                         ts.CONF.format(app="tapp:app", chdir=ts.APP_INSIDE, workers=2, timeout=ts.WORKER_TIMEOUT,
                                        graceful=10)
                         + "bind = %r\n" % bind)


def listening_inodes(sd, port):
        """Inodes of the TCP sockets listening on 127.0.0.1:port in the private network."""
        r = sd.run("cat", "/proc/net/tcp")
        found = set()
        for line in r.stdout.splitlines()[1:]:
                f = line.split()
                if len(f) > 9 and f[1] == "0100007F:%04X" % port and f[3] == "0A":
                        found.add(int(f[9]))
        return found


def unix_inodes(sd, path):
        """Inodes of the UNIX sockets listening at path (/proc/net/unix: state 01, flags 00010000)."""
        r = sd.run("cat", "/proc/net/unix")
        found = set()
        for line in r.stdout.splitlines()[1:]:
                f = line.split()
                if len(f) == 8 and f[7] == path and f[3] == "00010000":
                        found.add(int(f[6]))
        return found


UNIX_GET = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
data = b""
while True:
        b = s.recv(65536)
        if not b:
                break
        data += b
print(data.split(b"\\r\\n", 1)[0].decode())
"""


def socket_fds(sd, pid):
        """{inode: fd} of the sockets process pid holds (/proc/PID/fd/N -> socket:[INODE])."""
        r = sd.run("sh", "-c", "cd /proc/%d/fd && for f in *; do echo \"$f $(readlink $f)\"; done" % pid)
        out = {}
        for line in r.stdout.splitlines():
                m = re.match(r"^(\d+) socket:\[(\d+)\]$", line)
                if m:
                        out[int(m.group(2))] = int(m.group(1))
        return out


def report_switches(res, what, n, unit, windows):
        """Prints the load's outcome and the worst latency seen during each switch."""
        print("\n[fdstore] %s (%d) of %s under load: %d requests, errors %r; worst latency during each: %s"
              % (what, n, unit, res["requests"], res["errors"],
                 " ".join(worst_during(res, a, b) for a, b in windows)), file=sys.stderr)


class StaticStandaloneUnit(unittest.TestCase):
        """The standalone unit without a boot: valid, hardened as gcorn@.service, with a store."""

        @classmethod
        def setUpClass(cls):
                if shutil.which("systemd-analyze") is None:
                        raise unittest.SkipTest("systemd-analyze is missing")
                cls.dir = tempfile.mkdtemp(prefix="gcorn-standalone.")
                ts.write(os.path.join(cls.dir, STANDALONE), standalone_unit())
                shutil.copy(os.path.join(ts.units_dir(), "gcorn@.service"), cls.dir)

        @classmethod
        def tearDownClass(cls):
                shutil.rmtree(cls.dir, ignore_errors=True)

        def directives(self, name):
                out, section = {}, None
                with open(os.path.join(self.dir, name)) as f:
                        for line in f:
                                line = line.strip()
                                if line.startswith("["):
                                        section = line
                                elif "=" in line and not line.startswith(("#", ";")):
                                        k, _, v = line.partition("=")
                                        out.setdefault((section, k.strip()), []).append(v.strip())
                return out

        def test_same_service_settings_as_the_socket_activated_unit(self):
                ours, theirs = self.directives(STANDALONE), self.directives("gcorn@.service")
                extra = {("[Service]", "FileDescriptorStoreMax"): ["16"], ("[Service]", "Environment"): ["FDSTORE=16"],
                         ("[Service]", "RuntimeDirectoryPreserve"): ["restart"]}
                for key, value in theirs.items():
                        if key[0] != "[Unit]":
                                self.assertEqual(ours.get(key), value, key)
                for key, value in extra.items():
                        self.assertEqual(ours.get(key), value, key)
                self.assertEqual(set(ours) - set(theirs) - set(extra), set())
                # No socket unit to require.
                self.assertNotIn(("[Unit]", "Requires"), ours)
                self.assertEqual(ours[("[Unit]", "AssertPathExists")], ["/etc/gcorn/%i.conf.py"])

        def test_verify(self):
                root = tempfile.mkdtemp(prefix="gcorn-verify.")
                self.addCleanup(shutil.rmtree, root, True)
                shutil.copytree("/lib/systemd/system", os.path.join(root, "usr/lib/systemd/system"), symlinks=True)
                ts.write(os.path.join(root, "etc/systemd/system", STANDALONE), standalone_unit())
                exe = self.directives(STANDALONE)[("[Service]", "ExecStart")][0].split()[0]
                ts.write(root + exe, "#!/bin/sh\nexit 0\n")
                os.chmod(root + exe, 0o755)
                p = subprocess.run(["systemd-analyze", "verify", "--man=no", "--root=" + root,
                                    "gcorn-standalone@demo.service"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
                self.assertEqual((p.returncode, p.stdout.strip()), (0, ""))

        def test_security_score(self):
                env = dict(os.environ, SYSTEMD_UNIT_PATH=self.dir + ":", SYSTEMD_PAGER="", SYSTEMD_COLORS="0")
                p = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=15", "--no-pager",
                                    "gcorn-standalone@demo.service"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, timeout=60)
                m = re.search(r"Overall exposure level for gcorn-standalone@demo\.service: ([0-9.]+)", p.stdout)
                self.assertIsNotNone(m, p.stdout)
                self.assertLessEqual(float(m.group(1)), 1.5, p.stdout)
                self.assertEqual(p.returncode, 0, p.stdout)


class Standalone(ts.BootedCase):
        """The shipped standalone unit, on 127.0.0.1:8000, then 127.0.0.1:8001 and :8002."""

        U = "gcorn-standalone@demo.service"
        DROPIN = os.path.join("gcorn-standalone@demo.service.d", "zz-bind.conf")

        @classmethod
        def setUpClass(cls):
                # BootedCase stages with test_systemd's Stage: this one adds the standalone unit.
                ts.Stage, saved = FdStoreStage, ts.Stage
                try:
                        super().setUpClass()
                finally:
                        ts.Stage = saved

        @classmethod
        def configure(cls, stage):
                stage.standalone("demo", ["127.0.0.1:8000"])
                stage.standalone("file", ["unix:/run/gcorn/file/http.sock"])

        def wait_active(self, unit):
                ok = h.wait_until(lambda: self.sd.show(unit, "ActiveState", "SubState") ==
                                  {"ActiveState": "active", "SubState": "running"}, 20, 0.1)
                self.assertTrue(ok, self.sd.show(unit, "ActiveState", "SubState", "Result"))

        def store_count(self):
                return int(self.sd.prop(self.U, "NFileDescriptorStore") or 0)

        def held_listener(self, port):
                """The inode of the one socket listening on port, and the fd MainPID has it at."""
                inodes = listening_inodes(self.sd, port)
                self.assertEqual(len(inodes), 1, "listening sockets on %d: %r" % (port, inodes))
                inode = inodes.pop()
                main = self.main_pid(self.U)
                fds = socket_fds(self.sd, main)
                self.assertIn(inode, fds, "MainPID %d does not hold socket:[%d]" % (main, inode))
                return inode, fds[inode]

        def test_01_start_stores_the_socket(self):
                r = self.sd.systemctl("start", self.U, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.wait_active(self.U)
                self.assertServes(8000)
                self.assertEqual(self.store_count(), 1, "the bound socket is not in the fd store")
                found = self.wait_journal(self.U, lambda e: re.search(
                        r'Listening at: http://127\.0\.0\.1:8000 \(stored as "gcorn-0"\)', e.get("MESSAGE", "")))
                self.assertTrue(found, "no 'Listening at ... (stored as \"gcorn-0\")' in the journal")
                # The app never sees the store's size either.
                env = self.assertCleanEnviron(8000)
                self.assertNotIn("FDSTORE", env["os"])

        def test_02_restarts_under_load_keep_the_socket(self):
                inode, _ = self.held_listener(8000)
                load = self.start_load(port=8000, threads=LOAD_THREADS)
                time.sleep(0.3)
                mains = {self.main_pid(self.U)}
                windows = []
                for i in range(RESTARTS):
                        t0 = time.monotonic()
                        r = self.sd.systemctl("restart", self.U, timeout=60)
                        self.assertEqual(r.returncode, 0, r.stderr)
                        self.wait_active(self.U)
                        windows.append((t0, time.monotonic()))
                        mains.add(self.main_pid(self.U))
                        time.sleep(0.3)
                res = self.stop_load(load)
                report_switches(res, "restart", RESTARTS, self.U, windows)
                self.assertEqual(res["errors"].get("refused", 0), 0, "refused connections: %r" % res)
                self.assertLoadClean(res, minimum=50)
                self.assertEqual(len(mains), RESTARTS + 1, "MainPID did not change on every restart: %r" % mains)
                after, fd = self.held_listener(8000)
                self.assertEqual(after, inode, "the restarted master listens on another socket")
                self.assertEqual(self.store_count(), 1)
                found = self.wait_journal(self.U, lambda e: re.search(
                        r'Listening at: http://127\.0\.0\.1:8000 \(fd %d "gcorn-0" from the fd store\)' % fd,
                        e.get("MESSAGE", "")))
                self.assertTrue(found, "the restarted master did not log the socket from the fd store")

        def test_03_changed_bind_drops_the_stored_socket(self):
                old, _ = self.held_listener(8000)
                main = self.main_pid(self.U)
                # The drop-in goes into the private systemd's /run (its mount namespace), after the
                # test knobs (t.conf), which set ExecStart= too.
                text = ("[Service]\nExecStart=\nExecStart=%s/%s --config /etc/gcorn/%%i.conf.py --name %%i "
                        "--bind 127.0.0.1:8001 --bind 127.0.0.1:8002\n" % (ts.BUILD_INSIDE, os.path.basename(ts.GCORN)))
                r = self.sd.run("sh", "-c", "mkdir -p /run/systemd/system/%s && cat > /run/systemd/system/%s"
                                % (os.path.dirname(self.DROPIN), self.DROPIN), input=text)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.addCleanup(self.sd.run, "sh", "-c", "rm -f /run/systemd/system/%s && systemctl daemon-reload"
                                % self.DROPIN)
                r = self.sd.systemctl("daemon-reload")
                self.assertEqual(r.returncode, 0, r.stderr)
                r = self.sd.systemctl("restart", self.U, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.wait_active(self.U)
                self.assertNotEqual(self.main_pid(self.U), main)
                self.assertServes(8001)
                self.assertServes(8002)
                # Nothing holds the old socket any more: 8000 refuses.
                self.assertEqual(listening_inodes(self.sd, 8000), set(), "the old socket still listens")
                r = self.get("/", port=8000, timeout=5)
                self.assertEqual(r["error"], "refused", r)
                new = {port: self.held_listener(port)[0] for port in (8001, 8002)}
                self.assertNotIn(old, new.values())
                self.assertEqual(self.store_count(), 2, "the store should hold the new sockets alone")
                found = self.wait_journal(self.U, lambda e: "Dropping the socket stored as gcorn-0" in e.get("MESSAGE", ""))
                self.assertTrue(found, "no 'Dropping the socket stored as gcorn-0' in the journal")
                # Each under a name of its own, or FDSTOREREMOVE=1 of one would drop the other too.
                names = {}
                for e in self.journal_unit(self.U, "_PID=%d" % self.main_pid(self.U)):
                        m = re.search(r'Listening at: http://127\.0\.0\.1:(800[12]) \(stored as "(gcorn-\d+)"\)',
                                      e.get("MESSAGE", ""))
                        if m:
                                names[m.group(1)] = m.group(2)
                self.assertEqual(len(set(names.values())), 2, "names in the store: %r" % names)
                # The new sockets are the ones stored: the next restart keeps them.
                r = self.sd.systemctl("restart", self.U, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.wait_active(self.U)
                self.assertEqual({port: self.held_listener(port)[0] for port in (8001, 8002)}, new)
                self.assertEqual(self.store_count(), 2)

        def test_05_unix_socket_keeps_its_file(self):
                # The master that stops leaves the file of a stored socket for the next one,
                # and the runtime directory outlives the restart (RuntimeDirectoryPreserve=).
                u, path = "gcorn-standalone@file.service", "/run/gcorn/file/http.sock"
                r = self.sd.systemctl("start", u, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.wait_active(u)
                before = unix_inodes(self.sd, path)
                self.assertEqual(len(before), 1, before)
                self.assertEqual(self.sd.prop(u, "NFileDescriptorStore"), "1")
                r = self.sd.systemctl("restart", u, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.wait_active(u)
                self.assertEqual(unix_inodes(self.sd, path), before, "the restarted master listens on another socket")
                r = self.sd.run(ts.PYTHON, "-c", UNIX_GET, path)
                self.assertEqual((r.returncode, r.stdout.strip()), (0, "HTTP/1.1 200 OK"), r.stderr)
                self.sd.systemctl("stop", u, timeout=60)

        def test_04_stop_empties_the_store(self):
                # systemd 252 drops the store when the unit stops: the next start binds anew.
                r = self.sd.systemctl("stop", self.U, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(self.store_count(), 0)
                r = self.sd.systemctl("start", self.U, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.wait_active(self.U)
                self.assertEqual(self.store_count(), 1)
                self.assertServes(8000)


class UpgradeThenRestart(ts.BootedCase):
        """A binary upgrade under the standalone unit, then a restart: the upgraded image knows
        its sockets are in the fd store, so its stop leaves the UNIX socket's file to the next
        master, which takes both stored sockets back (the same inodes) with nothing refused.
        And a new image that dies after the exec: systemd starts the service again, and the
        store hands the same sockets to it."""

        U = "gcorn-standalone@both.service"
        PATH = "/run/gcorn/both/http.sock"
        SWAP = "/run/gcorn-swap"

        @classmethod
        def setUpClass(cls):
                ts.Stage, saved = FdStoreStage, ts.Stage
                try:
                        super().setUpClass()
                finally:
                        ts.Stage = saved

        @classmethod
        def configure(cls, stage):
                stage.standalone("both", ["127.0.0.1:8200", "unix:" + cls.PATH])
                # "dies" runs a copy of the binary from a directory where the test can put
                # another one in its place.
                stage.standalone("dies", ["127.0.0.1:8300", "unix:/run/gcorn/dies/http.sock"])
                cls.swap = tempfile.mkdtemp(prefix="gcorn-swap.")
                os.chmod(cls.swap, 0o755)
                shutil.copy(ts.GCORN, os.path.join(cls.swap, "gcorn-real"))
                shutil.copy(ts.GCORN, os.path.join(cls.swap, "gcorn"))
                stage.binds.append((cls.swap, cls.SWAP))
                ts.write(os.path.join(stage.units, "gcorn-standalone@dies.service.d", "t2.conf"),
                         "[Service]\nExecStart=\nExecStart=%s/gcorn --config /etc/gcorn/%%i.conf.py --name %%i\n"
                         % cls.SWAP)

        @classmethod
        def tearDownClass(cls):
                super().tearDownClass()
                shutil.rmtree(cls.swap, ignore_errors=True)

        def install(self, text=None):
                new = os.path.join(self.swap, "gcorn.new")
                if text is None:
                        shutil.copy(ts.GCORN, new)
                else:
                        with open(new, "w") as f:
                                f.write(text)
                os.chmod(new, 0o755)
                os.replace(new, os.path.join(self.swap, "gcorn"))

        def wait_active(self, unit=None):
                unit = unit or self.U
                ok = h.wait_until(lambda: self.sd.show(unit, "ActiveState", "SubState") ==
                                  {"ActiveState": "active", "SubState": "running"}, 20, 0.1)
                self.assertTrue(ok, self.sd.show(unit, "ActiveState", "SubState", "Result"))

        def sockets(self, port=8200, path=None):
                path = path or self.PATH
                tcp, unix = listening_inodes(self.sd, port), unix_inodes(self.sd, path)
                self.assertEqual((len(tcp), len(unix)), (1, 1), "listening: tcp %r, unix %r" % (tcp, unix))
                return tcp.pop(), unix.pop()

        def unix_get(self, path=None):
                r = self.sd.run(ts.PYTHON, "-c", UNIX_GET, path or self.PATH)
                self.assertEqual((r.returncode, r.stdout.strip()), (0, "HTTP/1.1 200 OK"), r.stderr)

        def usr2(self, unit):
                r = self.sd.systemctl("kill", "--kill-whom=main", "-s", "USR2", unit)
                if r.returncode != 0 and "kill-whom" in r.stderr:
                        r = self.sd.systemctl("kill", "--kill-who=main", "-s", "USR2", unit)
                self.assertEqual(r.returncode, 0, r.stderr)

        def test_new_image_dies_the_store_keeps_the_sockets(self):
                """The new binary passes --check-config but dies when run for real: the master is
                gone, Restart=on-failure starts the service again, and the fd store gives the
                next master the same sockets, so a client waits in the backlog meanwhile."""
                u, path = "gcorn-standalone@dies.service", "/run/gcorn/dies/http.sock"
                r = self.sd.systemctl("start", u, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.wait_active(u)
                before = self.sockets(8300, path)
                main = self.main_pid(u)
                self.install("#!/bin/sh\n"
                             "for a in \"$@\"; do [ \"$a\" = --check-config ] && exec %s/gcorn-real \"$@\"; done\n"
                             "echo 'the new image cannot start' >&2\nexit 1\n" % self.SWAP)
                self.usr2(u)
                ok = h.wait_until(lambda: int(self.sd.prop(u, "NRestarts") or 0) >= 1, 30, 0.2)
                self.assertTrue(ok, self.sd.journal_text("-u", u))
                self.assertIn("the new image cannot start", self.sd.journal_text("-u", u))
                # Between two failed starts: systemd alone holds the sockets.
                self.assertEqual(self.sd.prop(u, "NFileDescriptorStore"), "2")
                pending = self.get_async("/", port=8300, timeout=40)
                time.sleep(0.5)
                self.install()
                res = self.result_of(pending, timeout=60)
                self.assertEqual(res["status"], 200, res)
                self.wait_active(u)
                self.assertNotEqual(self.main_pid(u), main)
                self.assertEqual(self.sockets(8300, path), before, "the new master listens on other sockets")
                self.unix_get(path)
                self.assertEqual(self.sd.prop(u, "NFileDescriptorStore"), "2")
                self.sd.systemctl("stop", u, timeout=60)

        def listening_lines(self, main):
                """What the master said of its sockets since the upgrade: {url: origin}."""
                out, upgraded = {}, False
                for e in self.journal_unit(self.U, "_PID=%d" % main):
                        msg = e.get("MESSAGE", "")
                        upgraded = upgraded or msg.startswith("Upgraded in place")
                        m = re.match(r"Listening at: (\S+)(.*) \(%d\)$" % main, msg)
                        if upgraded and m:
                                out[m.group(1)] = m.group(2)
                return out

        def test_upgrade_then_restart(self):
                r = self.sd.systemctl("start", self.U, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.wait_active()
                self.assertEqual(self.sd.prop(self.U, "NFileDescriptorStore"), "2")
                before = self.sockets()
                main = self.main_pid(self.U)
                load = self.start_load(port=8200, threads=LOAD_THREADS)
                time.sleep(0.3)
                t0 = time.monotonic()
                self.usr2(self.U)
                done = self.wait_journal(self.U, lambda e: "Upgrade complete" in e.get("MESSAGE", ""), timeout=60)
                self.assertTrue(done, "the upgrade did not complete")
                windows = [(t0, time.monotonic())]
                self.assertEqual(self.main_pid(self.U), main)
                # The upgraded image knows both sockets are stored, and systemd still holds them.
                lines = self.listening_lines(main)
                self.assertRegex(lines.get("http://127.0.0.1:8200", ""), r'^ \(stored as "gcorn-\d+"\)$', lines)
                self.assertRegex(lines.get("unix:" + self.PATH, ""), r'^ \(stored as "gcorn-\d+"\)$', lines)
                self.assertEqual(self.sd.prop(self.U, "NFileDescriptorStore"), "2")
                self.assertEqual(self.sockets(), before)
                self.unix_get()
                # The restart stops the upgraded image: both sockets, file included, go on to
                # the next master.
                t0 = time.monotonic()
                r = self.sd.systemctl("restart", self.U, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.wait_active()
                windows.append((t0, time.monotonic()))
                time.sleep(0.3)
                res = self.stop_load(load)
                report_switches(res, "upgrade, then restart", 2, self.U, windows)
                self.assertNotEqual(self.main_pid(self.U), main)
                self.assertEqual(self.sockets(), before, "the restarted master listens on other sockets")
                self.assertEqual(self.sd.prop(self.U, "NFileDescriptorStore"), "2")
                self.unix_get()
                self.assertLoadClean(res, minimum=20)
                text = self.sd.journal_text("-u", self.U)
                self.assertNotIn("Dropping the socket stored", text)


class SocketUnitRestarts(ts.BootedCase):
        """gcorn@.socket + gcorn@.service: the listener is the socket unit's, never stored."""

        U = "gcorn@sock.service"
        S = "gcorn@sock.socket"

        @classmethod
        def configure(cls, stage):
                stage.instance("sock", port=8100)

        def test_restarts_under_load(self):
                r = self.sd.systemctl("start", self.S)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertServes(8100)
                load = self.start_load(port=8100, threads=LOAD_THREADS)
                time.sleep(0.3)
                mains = {self.main_pid(self.U)}
                windows = []
                for i in range(RESTARTS):
                        t0 = time.monotonic()
                        r = self.sd.systemctl("restart", self.U, timeout=60)
                        self.assertEqual(r.returncode, 0, r.stderr)
                        windows.append((t0, time.monotonic()))
                        mains.add(self.main_pid(self.U))
                        time.sleep(0.3)
                res = self.stop_load(load)
                report_switches(res, "restart", RESTARTS, self.U, windows)
                self.assertLoadClean(res, minimum=50)
                self.assertEqual(len(mains), RESTARTS + 1, "MainPID did not change on every restart: %r" % mains)
                self.assertEqual(self.sd.prop(self.U, "NFileDescriptorStore"), "0")
                text = self.sd.journal_text("-u", self.U)
                self.assertNotIn("FileDescriptorStoreMax", text)
                self.assertNotIn("fd store", text)
                self.assertRegex(text, r'Listening at: http://127\.0\.0\.1:8100 \(fd 3 "http" from systemd\)')


if __name__ == "__main__":
        ts.main()
