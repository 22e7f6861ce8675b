"""Binary upgrade in place under a real systemd (the private systemd 252 of
tests/systemd/sdboot.py, as in test_systemd.py): five upgrades under load, each to another
build installed in place of the running one, by `systemctl kill --kill-whom=main -s USR2`
or `gcorn --upgrade MAINPID` run by root, re-execute the master under the same MainPID with
no failed request; STATUS= and the journal name the version that serves; a build that
cannot start is refused while the running one serves on; a stop afterwards still lets an
in-flight request finish and ends with Result=success; a new image that dies after the exec
is started again by systemd while the socket unit keeps the socket."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402
import test_systemd as ts  # noqa: E402
from netclient import worst_during  # noqa: E402  (tests/systemd, on the path test_systemd set)

SWAP_INSIDE = "/run/gcorn-swap"
ASAN = "ASAN_OPTIONS" in os.environ or ts.asan_build()
UPGRADES = 5


def version_of(binary):
        out = subprocess.run([binary, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             timeout=30).stdout
        m = re.search(r"version (\S+?)\)", out)
        assert m, out
        return m.group(1)


class UpgradeUnderSystemd(ts.BootedCase):
        U = "gcorn@demo.service"
        S = "gcorn@demo.socket"

        @classmethod
        def configure(cls, stage):
                # Each instance runs a copy of the binary from a directory of its own, where the
                # test puts the next build in its place with a rename, as a package manager does.
                cls.swap = tempfile.mkdtemp(prefix="gcorn-swap.")
                for d in ("demo", "crash"):
                        os.makedirs(os.path.join(cls.swap, d))
                os.chmod(cls.swap, 0o755)
                for d in ("demo", "crash"):
                        os.chmod(os.path.join(cls.swap, d), 0o755)
                shutil.copy(ts.GCORN, os.path.join(cls.swap, "crash", "gcorn-real"))
                shutil.copy(ts.GCORN, os.path.join(cls.swap, "crash", "gcorn"))
                stage.binds.append((cls.swap, SWAP_INSIDE))
                stage.instance("demo", port=8000, service_dropin="ExecStart=\nExecStart=%s/demo/gcorn --config "
                               "/etc/gcorn/%%i.conf.py --name %%i\n" % SWAP_INSIDE)
                stage.instance("crash", port=8001, service_dropin="ExecStart=\nExecStart=%s/crash/gcorn --config "
                               "/etc/gcorn/%%i.conf.py --name %%i\n" % SWAP_INSIDE)
                # The builds the upgrades install one after the other: copies that call
                # themselves by other versions (the version string, of the same length, patched
                # into the copy), the build itself last, so that each upgrade executes another
                # file than the one before, and the log and STATUS= say which one serves. The
                # service starts from the first.
                cls.version = version_of(ts.GCORN)
                with open(ts.GCORN, "rb") as f:
                        data = f.read()
                old = cls.version.encode() + b"\0"
                assert old in data, "the build holds no %r" % old
                digits = [c for c in "123456789" if c != cls.version[-1]]
                cls.builds = []
                for i in range(UPGRADES + 1):
                        v = cls.version if i == UPGRADES else cls.version[:-1] + digits[i]
                        path = os.path.join(cls.swap, "build-%d" % i)
                        with open(path, "wb") as f:
                                f.write(data if v == cls.version else data.replace(old, v.encode() + b"\0"))
                        os.chmod(path, 0o755)
                        cls.builds.append((v, path))
                cls.install_file(cls.builds[0][1], "demo")

        @classmethod
        def tearDownClass(cls):
                super().tearDownClass()
                shutil.rmtree(cls.swap, ignore_errors=True)

        @classmethod
        def install_file(cls, src, instance):
                new = os.path.join(cls.swap, instance, "gcorn.new")
                shutil.copy(src, new)
                os.chmod(new, 0o755)
                os.replace(new, os.path.join(cls.swap, instance, "gcorn"))

        def install(self, text=None):
                new = os.path.join(self.swap, "crash", "gcorn.new")
                if text is None:
                        shutil.copy(ts.GCORN, new)
                else:
                        with open(new, "w") as f:
                                f.write(text)
                os.chmod(new, 0o755)
                os.replace(new, os.path.join(self.swap, "crash", "gcorn"))

        def kill_main_usr2(self, unit=None):
                r = self.sd.systemctl("kill", "--kill-whom=main", "-s", "USR2", unit or self.U)
                if r.returncode != 0 and "kill-whom" in r.stderr:
                        r = self.sd.systemctl("kill", "--kill-who=main", "-s", "USR2", unit or self.U)
                self.assertEqual(r.returncode, 0, r.stderr)

        def test_01_upgrade_under_load(self):
                r = self.sd.systemctl("start", self.S)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertServes()
                self.wait_status(self.U, lambda m: m.group(2) == m.group(3) == "2", timeout=20)
                main = self.main_pid(self.U)
                self.assertGreater(main, 0)
                load = self.start_load(threads=2 if ASAN else 4)
                time.sleep(0.5)
                took, windows = [], []
                try:
                        for i in range(1, UPGRADES + 1):
                                before = self.children(main)
                                new, path = self.builds[i]
                                self.install_file(path, "demo")
                                t0 = time.monotonic()
                                if i % 2:
                                        # The documented helper: USR2, then it waits until the new
                                        # generation serves.
                                        r = self.sd.run("%s/demo/gcorn" % SWAP_INSIDE, "--upgrade", str(main),
                                                        timeout=90)
                                        self.assertEqual(r.returncode, 0, "upgrade %d: %s%s" % (i, r.stdout, r.stderr))
                                else:
                                        self.kill_main_usr2()
                                # The serving image says its own version. (What it says of the
                                # one before comes from that image's handoff, where the compiler
                                # may have inlined the version as immediate bytes, which the
                                # patch of a copy does not reach.)
                                want = " to %s" % new
                                text = h.wait_until(lambda: (lambda t: t if t.endswith(want) and
                                                             ", upgraded from gcorn " in t and
                                                             not t.startswith(("reloading", "upgrade")) else None)(
                                        self.sd.prop(self.U, "StatusText")), 60, 0.05)
                                self.assertTrue(text, "upgrade %d: StatusText %r, not ending in %r; journal:\n%s"
                                                % (i, self.sd.prop(self.U, "StatusText"), want,
                                                   self.sd.journal_text("-u", self.U, "-n", "60")))
                                fresh = h.wait_until(lambda: (lambda c: c if len(c) == 2 and not (c & before) else None)(
                                        self.children(main)), 20, 0.05)
                                took.append(time.monotonic() - t0)
                                windows.append((t0, time.monotonic()))
                                self.assertTrue(fresh, "upgrade %d: workers %r did not all change (were %r)"
                                                % (i, self.children(main), before))
                                self.assertEqual(self.main_pid(self.U), main, "MainPID changed on the upgrade")
                                self.assertEqual(self.sd.prop(self.U, "ActiveState"), "active")
                        # A build that cannot start: refused after its --check-config, and the
                        # running image keeps serving, the same workers.
                        before = self.children(main)
                        new = os.path.join(self.swap, "demo", "gcorn.new")
                        with open(new, "w") as f:
                                f.write("#!/bin/sh\necho 'this build is broken' >&2\nexit 1\n")
                        os.chmod(new, 0o755)
                        os.replace(new, os.path.join(self.swap, "demo", "gcorn"))
                        r = self.sd.run("%s/%s" % (ts.BUILD_INSIDE, os.path.basename(ts.GCORN)), "--upgrade", str(main),
                                        timeout=90)
                        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                        self.assertIn("Upgrade failed", r.stderr)
                        refused = self.wait_journal(self.U, lambda e: "Upgrade refused: %s/demo/gcorn --check-config "
                                                    "exited with 1: this build is broken" % SWAP_INSIDE
                                                    in e.get("MESSAGE", ""))
                        self.assertTrue(refused, "no 'Upgrade refused' in the journal")
                        time.sleep(0.3)
                        self.assertEqual(self.children(main), before, "the workers changed")
                        self.assertEqual(self.main_pid(self.U), main)
                        self.install_file(self.builds[-1][1], "demo")
                finally:
                        res = self.stop_load(load)
                print("\n[upgrade] %d upgrades under load: %d requests, errors %r; each took %s, worst latency "
                      "during each: %s" % (UPGRADES, res["requests"], res["errors"], " ".join("%.2fs" % t for t in took),
                                           " ".join(worst_during(res, a, b) for a, b in windows)),
                      file=sys.stderr)
                self.assertLoadClean(res)
                journal = self.sd.journal_text("-u", self.U)
                # Each upgrade executed the build installed for it, and that build serves.
                for i in range(1, UPGRADES + 1):
                        new = self.builds[i][0]
                        self.assertEqual(len(re.findall(r"Upgraded in place from gcorn \S+ to gcorn %s \(pid %d\)"
                                                        % (re.escape(new), main), journal)), 1, journal)
                        self.assertEqual(len(re.findall(r"Upgrade complete: gcorn %s replaced gcorn \S+; generation %d "
                                                        r"serving" % (re.escape(new), i + 1), journal)), 1, journal)
                self.assertEqual(journal.count("Upgraded in place from"), UPGRADES, journal)
                self.assertEqual(len(re.findall(r"Upgrade: executing %s/demo/gcorn in place \(pid %d\)"
                                                % (SWAP_INSIDE, main), journal)), UPGRADES, journal)
                self.assertEqual(self.sd.prop(self.U, "NRestarts"), "0")
                self.assertCleanEnviron()

        def test_02_stop_after_upgrade(self):
                main = self.main_pid(self.U)
                self.assertGreater(main, 0, "the service is not running")
                slow = self.get_async("/slow?s=2", timeout=20)
                time.sleep(0.5)
                r = self.sd.systemctl("stop", self.U, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                s = self.result_of(slow)
                self.assertEqual((s["status"], s["body"]), (200, "slept 2\n"), "the in-flight request: %r" % s)
                p = self.sd.show(self.U, "ActiveState", "Result")
                self.assertEqual(p["Result"], "success", p)
                self.assertEqual(p["ActiveState"], "inactive", p)
        def test_03_new_image_dies_systemd_restarts(self):
                """The new binary passes --check-config but dies when run for real: the master
                is gone, Restart=on-failure starts the service again, and meanwhile the socket
                unit keeps the socket, so a client waits in the backlog instead of failing."""
                u, sock = "gcorn@crash.service", "gcorn@crash.socket"
                r = self.sd.systemctl("start", sock)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertServes(port=8001)
                self.wait_status(u, lambda m: m.group(2) == m.group(3) == "2", timeout=20)
                main = self.main_pid(u)
                self.install("#!/bin/sh\n"
                             "for a in \"$@\"; do [ \"$a\" = --check-config ] && exec %s/crash/gcorn-real \"$@\"; done\n"
                             "echo 'the new image cannot start' >&2\nexit 1\n" % SWAP_INSIDE)
                self.kill_main_usr2(u)
                ok = h.wait_until(lambda: int(self.sd.prop(u, "NRestarts") or 0) >= 1, 30, 0.2)
                self.assertTrue(ok, self.sd.journal_text("-u", u))
                self.assertIn("the new image cannot start", self.sd.journal_text("-u", u))
                pending = self.get_async("/", port=8001, timeout=40)
                time.sleep(0.5)
                self.install()
                res = self.result_of(pending, timeout=60)
                self.assertEqual(res["status"], 200, res)
                self.assertNotEqual(self.main_pid(u), main)
                self.assertEqual(self.sd.prop(sock, "ActiveState"), "active")


if __name__ == "__main__":
        ts.main()
