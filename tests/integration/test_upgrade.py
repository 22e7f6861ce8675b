"""Binary upgrade in place (USR2), without systemd: the master checks the new binary with
--check-config, execs it under the same PID with its sockets and running workers, and the new
image replaces the workers with a rolling reload. Under a steady loopback load every failed
request counts.

The server runs from a copy of the binary in a temporary directory; "new" binaries are put
in its place with a rename, as a package manager does. A layout the new image does not know
comes from gcorn-layout-next, the test build of gcorn whose handoff has the next layout
version: the images hand over between it and this one in either direction."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402
from test_arbiter import Load, children, parse_body  # noqa: E402

APP = "arbiter_app:app"
ASAN = "ASAN_OPTIONS" in os.environ
UPGRADE_DEADLINE = 60.0 if ASAN else 30.0


# Upgrades in a row in the load test, each to another binary.
UPGRADES = 5
# Built by meson next to gcorn when the tests are.
LAYOUT_NEXT = os.path.join(os.path.dirname(h.GCORN), "gcorn-layout-next")


class UpgradeTest(h.ServerTestCase):

        def setUp(self):
                self.tmp = tempfile.mkdtemp(prefix="gcorn-upgrade-")
                self.addCleanup(shutil.rmtree, self.tmp, True)
                self.bin = os.path.join(self.tmp, "bin", "gcorn")
                os.mkdir(os.path.dirname(self.bin))
                self.install(h.GCORN)
                self.version_file = os.path.join(self.tmp, "version")
                self.set_version("v1")
                self.ready_dir = os.path.join(self.tmp, "ready")
                os.mkdir(self.ready_dir)
                self.pidfile = os.path.join(self.tmp, "gcorn.pid")

        def install(self, src=None, text=None):
                """Puts a binary at self.bin by rename: the running one keeps its inode."""
                new = self.bin + ".new"
                if text is not None:
                        with open(new, "w") as f:
                                f.write(text)
                else:
                        shutil.copy(src, new)
                os.chmod(new, 0o755)
                os.replace(new, self.bin)

        def set_version(self, v):
                with open(self.version_file + ".new", "w") as f:
                        f.write(v + "\n")
                os.replace(self.version_file + ".new", self.version_file)

        def start_server(self, args=(), env=None, **kw):
                full_env = {"ARBITER_VERSION_FILE": self.version_file, "ARBITER_READY_DIR": self.ready_dir}
                full_env.update(env or {})
                saved = h.GCORN
                h.GCORN = self.bin
                try:
                        srv = self.start(APP, args=["-w", "2", "-p", self.pidfile] + list(args), env=full_env, **kw)
                finally:
                        h.GCORN = saved
                self.wait_workers(srv, 2)
                return srv

        def wait_workers(self, srv, n, exclude=(), timeout=UPGRADE_DEADLINE):
                def ok():
                        kids = children(srv.pid)
                        return kids if len(kids) == n and not (kids & set(exclude)) else None
                kids = h.wait_until(ok, timeout)
                self.assertTrue(kids, "expected %d workers (none of %r), have %r; log:\n%s"
                                % (n, exclude, children(srv.pid), srv.log()))
                return kids

        def upgrade(self, srv, helper=True):
                """USR2 through gcorn --upgrade (which waits) or a plain kill; returns the helper's result."""
                if helper:
                        return subprocess.run([h.GCORN, "--upgrade", str(srv.pid)], stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT, text=True, timeout=UPGRADE_DEADLINE + 30)
                os.kill(srv.pid, signal.SIGUSR2)
                return None

        def assertMemfds(self, srv):
                """After an upgrade the master holds one heartbeat table, its own, and no handoff."""
                names = []
                for fd in os.listdir("/proc/%d/fd" % srv.pid):
                        try:
                                names.append(os.readlink("/proc/%d/fd/%s" % (srv.pid, fd)))
                        except OSError:
                                pass
                self.assertEqual(sum("memfd:gcorn-heartbeat" in n for n in names), 1, names)
                self.assertEqual(sum("memfd:gcorn-upgrade" in n for n in names), 0, names)

        def assertPidFile(self, srv):
                with open(self.pidfile) as f:
                        self.assertEqual(f.read().strip(), str(srv.pid))

        def assertLoadClean(self, load, minimum=20):
                load.stop()
                self.assertEqual(load.failures, [], load.summary())
                self.assertGreaterEqual(load.ok, minimum, load.summary())

        def versions_after(self, load, t):
                with load.lock:
                        return {v for (t0, v, pid) in load.seen if t0 >= t}

        def variant(self, version, new_version):
                """A copy of the build that calls itself new_version: the version string, the
                same length, patched into the copy."""
                with open(h.GCORN, "rb") as f:
                        data = f.read()
                old = version.encode() + b"\0"
                self.assertIn(old, data)
                path = os.path.join(self.tmp, "gcorn-" + new_version)
                with open(path, "wb") as f:
                        f.write(data.replace(old, new_version.encode() + b"\0"))
                os.chmod(path, 0o755)
                return path

        def test_five_upgrades_under_load(self):
                version = self.version()
                news = [version[:-1] + c for c in ("5", "6", "7", "8")] + [version]
                binaries = [self.variant(version, v) for v in news[:-1]] + [h.GCORN]
                srv = self.start_server()
                load = Load(srv, threads=2 if ASAN else 4, max_seconds=240).start()
                self.addCleanup(load.stop)
                time.sleep(0.5)
                for i in range(UPGRADES):
                        before = children(srv.pid)
                        # The new binary, put in place as an install would.
                        self.install(binaries[i])
                        self.set_version("v%d" % (i + 2))
                        r = self.upgrade(srv, helper=i != 1)
                        if r is not None:
                                self.assertEqual(r.returncode, 0, "%s\nlog:\n%s" % (r.stdout, srv.log()))
                        srv.wait_log(r"Upgrade complete: gcorn \S+ replaced gcorn \S+; generation %d serving" % (i + 2),
                                     timeout=UPGRADE_DEADLINE)
                        self.wait_workers(srv, 2, exclude=before)
                        self.assertTrue(srv.alive(), srv.log())
                        self.assertPidFile(srv)
                        self.assertMemfds(srv)
                        t = time.monotonic()
                        self.assertTrue(h.wait_until(lambda: "v%d" % (i + 2) in self.versions_after(load, t), 10),
                                        "the new generation never answered; " + load.summary())
                self.assertLoadClean(load)
                log = srv.log()
                # The first one names both versions. (The patch in the variants reaches only
                # the version strings the compiler kept as strings, so what a variant writes
                # into the handoff as its own version may still be the original's.)
                self.assertIn("Upgraded in place from gcorn %s to gcorn %s (pid %d)" % (version, news[0], srv.pid), log)
                self.assertIn("Upgrade complete: gcorn %s replaced gcorn %s" % (news[0], version), log)
                for new in news:
                        self.assertRegex(log, r"Upgraded in place from gcorn \S+ to gcorn %s \(pid %d\)"
                                         % (re.escape(new), srv.pid))
                        self.assertRegex(log, r"Upgrade complete: gcorn %s replaced gcorn \S+" % re.escape(new))
                self.assertEqual(log.count("Upgraded in place from"), UPGRADES, log)
                self.assertNotIn("bind changed", log)
                # A HUP afterwards is a reload again, not another upgrade.
                os.kill(srv.pid, signal.SIGHUP)
                srv.wait_log(r"Reload complete: generation %d serving" % (UPGRADES + 2), timeout=UPGRADE_DEADLINE)
                self.assertEqual(srv.log().count("Upgrade complete"), UPGRADES)
                self.assertEqual(len(re.findall(r"Upgrade: executing %s in place \(pid %d\)"
                                                % (re.escape(self.bin), srv.pid), log)), UPGRADES, log)
                # Every line of the master, before and after the execs, has the same PID.
                masters = set(re.findall(r"\[(\d+)\] \[INFO\] (?:Starting gcorn|Upgraded in place)", log))
                self.assertEqual(masters, {str(srv.pid)}, log)
                self.assertEqual(srv.stop(), 0)
                self.assertFalse(os.path.exists(self.pidfile), "the pid file outlived the server")

        def version(self):
                out = subprocess.run([h.GCORN, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, timeout=30).stdout
                m = re.search(r"(\d+\.\d+[^\s)]*)", out)
                self.assertIsNotNone(m, out)
                return m.group(1)

        def test_idle_clients_of_the_adopted_workers_are_answered(self):
                """Kept-alive clients idle in the workers of the image before the upgrade: when
                the new image retires those workers, they keep them until they leave (the
                table that could take them over was the old image's), so each client's next
                request is answered on its connection."""
                srv = self.start_server(args=["--keep-alive", "30"])
                held = self.idle_clients(srv, 6)
                before = children(srv.pid)
                r = self.upgrade(srv)
                self.assertEqual(r.returncode, 0, r.stdout)
                srv.wait_log(r"Upgrade complete", timeout=UPGRADE_DEADLINE)
                self.wait_workers(srv, 4, timeout=5)     # the old two still hold their clients
                time.sleep(0.3)
                for i, c in enumerate(held):
                        try:
                                c.send_request("GET", "/")
                                r = c.read_response()
                        except (OSError, h.ProtocolError) as e:
                                self.fail("client %d lost with the old image's workers: %r" % (i, e))
                        self.assertEqual(r.status, 200)
                        self.assertIn(parse_body(r.body)[1], before)
                self.assertPidFile(srv)

        def test_broken_binary_keeps_serving(self):
                srv = self.start_server()
                load = Load(srv, threads=2, max_seconds=120).start()
                self.addCleanup(load.stop)
                time.sleep(0.3)
                before = children(srv.pid)
                self.install(text="#!/bin/sh\necho 'this build is broken' >&2\nexit 1\n")
                r = self.upgrade(srv)
                self.assertEqual(r.returncode, 1, r.stdout)
                self.assertIn("Upgrade failed", r.stdout)
                log = srv.wait_log(r"Upgrade refused: %s --check-config exited with 1: this build is broken; "
                                   r"the running image keeps serving" % re.escape(self.bin))
                self.assertNotIn("Upgrade: executing", log)
                time.sleep(0.5)
                self.assertEqual(children(srv.pid), before, "the workers changed")
                self.assertPidFile(srv)
                # A good binary again: the next USR2 works.
                self.install(h.GCORN)
                r = self.upgrade(srv, helper=False)
                srv.wait_log(r"Upgrade complete", timeout=UPGRADE_DEADLINE)
                self.wait_workers(srv, 2, exclude=before)
                self.assertLoadClean(load)
                self.assertPidFile(srv)

        def test_new_workers_fail_after_exec(self):
                """The check passes, but the new image's workers cannot boot: the adopted ones
                keep serving, as after a failed HUP reload."""
                marker = os.path.join(self.tmp, "fail-post-fork")
                conf = os.path.join(self.tmp, "conf.py")
                with open(conf, "w") as f:
                        f.write("import os\n"
                                "def post_fork(server, worker):\n"
                                "    if os.path.exists(%r):\n"
                                "        raise RuntimeError('post_fork refuses')\n" % marker)
                srv = self.start_server(args=["-c", conf])
                load = Load(srv, threads=2, max_seconds=120).start()
                self.addCleanup(load.stop)
                time.sleep(0.3)
                before = children(srv.pid)
                open(marker, "w").close()
                r = self.upgrade(srv)
                self.assertEqual(r.returncode, 1, "%s\nlog:\n%s" % (r.stdout, srv.log()))
                srv.wait_log(r"Reload failed: .*generation 1 keeps serving")
                time.sleep(0.5)
                self.assertTrue(srv.alive(), srv.log())
                self.assertEqual(children(srv.pid), before, srv.log())
                self.assertPidFile(srv)
                os.unlink(marker)
                r = self.upgrade(srv)
                self.assertEqual(r.returncode, 0, "%s\nlog:\n%s" % (r.stdout, srv.log()))
                self.wait_workers(srv, 2, exclude=before)
                self.assertLoadClean(load)

        def test_new_image_that_dies_takes_its_workers_along(self):
                """A binary that passes --check-config but exits at once when run for real: the
                master is gone, and so are its workers; none is left serving unsupervised.
                (Under systemd, Restart=on-failure starts the service again.)"""
                srv = self.start_server()
                before = children(srv.pid)
                real = os.path.join(self.tmp, "gcorn-real")
                shutil.copy(h.GCORN, real)
                self.install(text="#!/bin/sh\n"
                                  "for a in \"$@\"; do [ \"$a\" = --check-config ] && exec %s \"$@\"; done\n"
                                  "echo 'the new image cannot start' >&2\nexit 1\n" % real)
                self.upgrade(srv, helper=False)
                self.assertEqual(srv.wait_exit(UPGRADE_DEADLINE), 1, srv.log())
                self.assertIn("the new image cannot start", srv.log())
                self.assertTrue(h.wait_until(lambda: not any(os.path.exists("/proc/%d" % p) for p in before), 15),
                                "workers outlived their master")

        def test_preloaded_app_that_fails_after_the_exec(self):
                """The new image's --check-config imports the app, but the new image itself cannot
                (here: the app refuses the master's PID): it exits 1, not 3, so that a service
                manager starts it again (the units do not restart on 3), and its workers go."""
                marker = os.path.join(self.tmp, "refuse-pid")
                with open(os.path.join(self.tmp, "refusing_app.py"), "w") as f:
                        f.write("import os\n"
                                "if os.path.exists(%r) and open(%r).read() == str(os.getpid()):\n"
                                "    raise RuntimeError('refusing_app: not in this process')\n"
                                "def app(environ, start_response):\n"
                                "    start_response('200 OK', [('Content-Length', '2')])\n"
                                "    return [b'ok']\n" % (marker, marker))
                saved = h.GCORN
                h.GCORN = self.bin
                try:
                        srv = self.start("refusing_app:app", args=["-w", "2", "--preload", "-p", self.pidfile],
                                         chdir=self.tmp)
                finally:
                        h.GCORN = saved
                before = self.wait_workers(srv, 2)
                self.assertEqual(srv.get("/").status, 200)
                with open(marker, "w") as f:
                        f.write(str(srv.pid))
                self.upgrade(srv, helper=False)
                self.assertEqual(srv.wait_exit(UPGRADE_DEADLINE), 1, srv.log())
                log = srv.log()
                self.assertIn("Upgrade: executing", log)
                self.assertIn("refusing_app: not in this process", log)
                self.assertTrue(h.wait_until(lambda: not any(os.path.exists("/proc/%d" % p) for p in before), 15),
                                "workers outlived their master")

        def test_unknown_layout_retires_old_workers(self):
                """A handoff of the next layout reaches this image, which cannot read it."""
                self.install(LAYOUT_NEXT)
                srv = self.start_server()
                self.install(h.GCORN)
                load = Load(srv, threads=2, max_seconds=120).start()
                self.addCleanup(load.stop)
                time.sleep(0.3)
                before = children(srv.pid)
                self.upgrade(srv, helper=False)
                srv.wait_log(r"layout this one does not know; starting a fresh generation and retiring its 2 workers",
                             timeout=UPGRADE_DEADLINE)
                srv.wait_log(r"retiring the 2 workers of the image before the upgrade", timeout=UPGRADE_DEADLINE)
                self.wait_workers(srv, 2, exclude=before)
                for pid in before:
                        srv.wait_log(r"Worker \(pid:%d\) of the image before the upgrade exited" % pid)
                self.assertMemfds(srv)
                self.assertLoadClean(load)
                self.assertPidFile(srv)
                self.assertEqual(srv.stop(), 0)

        def test_unix_socket_survives_and_is_removed(self):
                """Where each socket came from travels with it: the UNIX socket gcorn bound is
                still removed at stop after an upgrade, with either layout."""
                for n, (first, then) in enumerate(((h.GCORN, h.GCORN), (h.GCORN, LAYOUT_NEXT))):
                        with self.subTest(then=os.path.basename(then)):
                                path = os.path.join(self.tmp, "s%d.sock" % n)
                                self.install(first)
                                srv = self.start_server(args=[], bind="unix:" + path)
                                self.install(then)
                                before = children(srv.pid)
                                self.upgrade(srv, helper=False)
                                self.wait_workers(srv, 2, exclude=before)
                                s = socket.socket(socket.AF_UNIX)
                                s.settimeout(10)
                                s.connect(path)
                                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                                self.assertTrue(h.recv_all(s).startswith(b"HTTP/1.1 200"))
                                s.close()
                                self.assertEqual(srv.stop(), 0)
                                self.assertFalse(os.path.exists(path), "the socket file outlived the server")

        def test_upgrade_during_reload_is_refused(self):
                """USR2 while a HUP reload runs is refused and says so; the reload (and its
                gcorn --reload-and-wait) is not disturbed."""
                slow = os.path.join(self.tmp, "slow-import")
                srv = self.start_server(env={"ARBITER_SLOW_IMPORT": slow, "ARBITER_SLOW_IMPORT_S": "3"})
                open(slow, "w").close()
                reload = subprocess.Popen([h.GCORN, "--reload-and-wait", str(srv.pid)], stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True)
                self.addCleanup(lambda: reload.poll() is None and reload.kill())
                srv.wait_log(r"Reloading: starting generation 2")
                r = self.upgrade(srv)
                self.assertEqual(r.returncode, 1, r.stdout)
                srv.wait_log(r"Upgrade refused: a reload is under way")
                out, _ = reload.communicate(timeout=UPGRADE_DEADLINE)
                self.assertEqual(reload.returncode, 0, out)
                os.unlink(slow)
                self.assertNotIn("Upgrade: executing", srv.log())
                self.assertPidFile(srv)

        def test_changed_bind_is_reported(self):
                """A config file that binds elsewhere by the time of the upgrade: the sockets
                passed are kept, and the log says the new bind has no effect."""
                conf = os.path.join(self.tmp, "conf.py")
                with open(conf, "w") as f:
                        f.write("bind = ['127.0.0.1:0']\n")
                srv = self.start_server(args=["-c", conf], bind=None)
                with open(conf, "w") as f:
                        f.write("bind = ['127.0.0.2:0']\n")
                self.upgrade(srv, helper=False)
                log = srv.wait_log(r"Upgrade complete", timeout=UPGRADE_DEADLINE)
                self.assertIn("bind changed in the configuration; an upgrade keeps the sockets it was passed", log)
                self.assertEqual(srv.get("/").status, 200)

        def test_bad_handoff_is_refused(self):
                """$GCORN_UPGRADE_FD naming something that is not a handoff: one clear line, exit 1."""
                with open(os.path.join(self.tmp, "garbage"), "w+b") as f:
                        f.write(b"x" * 64)
                        f.flush()
                        p = subprocess.run([h.GCORN, "-b", "127.0.0.1:0", "--chdir", h.APPS, APP],
                                           env=dict(os.environ, GCORN_UPGRADE_FD=str(f.fileno())),
                                           pass_fds=(f.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, text=True, timeout=30)
                self.assertEqual(p.returncode, 1, p.stdout)
                self.assertEqual(p.stdout.strip(), "gcorn: error: Failed to read the handoff of the binary upgrade "
                                 "($GCORN_UPGRADE_FD): Bad message")

        def test_pre_exec_hook_runs_in_the_master(self):
                conf = os.path.join(self.tmp, "conf.py")
                with open(conf, "w") as f:
                        f.write("import os\n"
                                "def pre_exec(server):\n"
                                "    server.log.info('hook pre_exec in %d' % os.getpid())\n")
                srv = self.start_server(args=["-c", conf])
                self.assertNotIn("pre_exec hook has no effect", srv.log())
                self.upgrade(srv, helper=False)
                log = srv.wait_log(r"Upgrade complete", timeout=UPGRADE_DEADLINE)
                self.assertIn("hook pre_exec in %d" % srv.pid, log)
                self.assertLess(log.index("hook pre_exec"), log.index("Upgraded in place"))


if __name__ == "__main__":
        h.main()
