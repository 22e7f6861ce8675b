"""Binary upgrade in place under a real systemd (the private systemd 252 of
tests/systemd/sdboot.py, as in test_systemd.py): USR2 sent with `systemctl kill
--kill-whom=main` re-executes the master under the same MainPID, with no failed request
under load; STATUS= and the journal name the upgrade; a stop afterwards still lets an
in-flight request finish and ends with Result=success."""

import os
import re
import sys
import shutil
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402
import test_systemd as ts  # noqa: E402

SWAP_INSIDE = "/run/gcorn-swap"
UPGRADES = 1 if "ASAN_OPTIONS" in os.environ or ts.asan_build() else 2


class UpgradeUnderSystemd(ts.BootedCase):
        U = "gcorn@demo.service"
        S = "gcorn@demo.socket"

        @classmethod
        def configure(cls, stage):
                stage.instance("demo", port=8000)
                # "crash" runs a copy of the binary from a directory the test can swap it in.
                cls.swap = tempfile.mkdtemp(prefix="gcorn-swap.")
                os.chmod(cls.swap, 0o755)
                shutil.copy(ts.GCORN, os.path.join(cls.swap, "gcorn-real"))
                shutil.copy(ts.GCORN, os.path.join(cls.swap, "gcorn"))
                stage.binds.append((cls.swap, SWAP_INSIDE))
                stage.instance("crash", port=8001, service_dropin="ExecStart=\nExecStart=%s/gcorn --config "
                               "/etc/gcorn/%%i.conf.py --name %%i\n" % SWAP_INSIDE)

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

        def kill_main_usr2(self, unit=None):
                r = self.sd.systemctl("kill", "--kill-whom=main", "-s", "USR2", unit or self.U)
                if r.returncode != 0 and "kill-whom" in r.stderr:
                        r = self.sd.systemctl("kill", "--kill-who=main", "-s", "USR2", unit or self.U)
                self.assertEqual(r.returncode, 0, r.stderr)

        def journal_count(self, pattern):
                return len(re.findall(pattern, self.sd.journal_text("-u", self.U)))

        def test_01_upgrade_under_load(self):
                r = self.sd.systemctl("start", self.S)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertServes()
                self.wait_status(self.U, lambda m: m.group(2) == m.group(3) == "2", timeout=20)
                main = self.main_pid(self.U)
                self.assertGreater(main, 0)
                load = self.start_load()
                time.sleep(0.5)
                try:
                        for i in range(UPGRADES):
                                before = self.children(main)
                                self.kill_main_usr2()
                                ok = h.wait_until(lambda n=i + 1: self.journal_count(
                                        r"Upgrade complete: gcorn \S+ replaced gcorn \S+") >= n, 60, 0.2)
                                self.assertTrue(ok, "upgrade %d never completed:\n%s"
                                                % (i + 1, self.sd.journal_text("-u", self.U)))
                                fresh = h.wait_until(lambda: (lambda c: c if len(c) == 2 and not (c & before) else None)(
                                        self.children(main)), 20, 0.1)
                                self.assertTrue(fresh, "upgrade %d: workers %r did not all change (were %r)"
                                                % (i + 1, self.children(main), before))
                                self.assertEqual(self.main_pid(self.U), main, "MainPID changed on the upgrade")
                                text = h.wait_until(lambda: (lambda t: t if "upgraded from gcorn" in t and
                                                             not t.startswith(("reloading", "upgrade")) else None)(
                                        self.sd.prop(self.U, "StatusText")), 10, 0.1)
                                self.assertTrue(text, "StatusText: %r" % self.sd.prop(self.U, "StatusText"))
                                self.assertEqual(self.sd.prop(self.U, "ActiveState"), "active")
                finally:
                        res = self.stop_load(load)
                self.assertLoadClean(res)
                journal = self.sd.journal_text("-u", self.U)
                self.assertEqual(len(re.findall(r"Upgraded in place from gcorn \S+ to gcorn \S+ \(pid %d\)" % main,
                                                journal)), UPGRADES, journal)
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
                             "for a in \"$@\"; do [ \"$a\" = --check-config ] && exec %s/gcorn-real \"$@\"; done\n"
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
