"""--reload, --reload-engine and --reload-extra-file: a worker whose imported module or
listed file changes retires, and the next request is served by code read anew."""

import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

APP = '''
import os
import reloadhelper

def application(environ, start_response):
    extra = os.environ.get("EXTRA_FILE")
    body = reloadhelper.VERSION
    if extra:
        with open(extra) as f:
            body += "|" + f.read().strip()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
'''

# Bounded: a change must show within this long (inotify is immediate; poll checks every second).
RELOAD_DEADLINE = 15.0


class TestReload(unittest.TestCase):
        def setUp(self):
                self.dir = h.tempdir(self, "gcorn-reload-")
                with open(os.path.join(self.dir, "reloadapp.py"), "w") as f:
                        f.write(APP)
                self.helper = os.path.join(self.dir, "reloadhelper.py")
                self.set_version("one")

        def set_version(self, v, rename=False):
                text = "VERSION = %r\n" % v
                if rename:
                        # As editors save: a new file renamed over the old one.
                        tmp = self.helper + ".tmp"
                        with open(tmp, "w") as f:
                                f.write(text)
                        os.rename(tmp, self.helper)
                else:
                        with open(self.helper, "w") as f:
                                f.write(text)

        def start(self, args, env=None):
                s = h.Server("reloadapp:application", args=args, chdir=self.dir, env=env)
                self.addCleanup(s.stop)
                return s

        def body(self, s):
                return s.get("/").body.decode()

        def wait_body(self, s, want):
                deadline = time.monotonic() + RELOAD_DEADLINE
                got = None
                while time.monotonic() < deadline:
                        got = self.body(s)
                        if got == want:
                                return
                        time.sleep(0.1)
                self.fail("still %r, not %r, %.0f s after the change; log:\n%s" % (got, want, RELOAD_DEADLINE,
                                                                                     s.log()))

        def check_engine(self, engine):
                s = self.start(["--reload", "--reload-engine", engine, "-w", "2"])
                self.assertEqual(self.body(s), "one")
                # mtime granularity: the poll engine must see a change within the same second.
                self.set_version("two-longer")
                self.wait_body(s, "two-longer")
                s.wait_log(r"Worker reloading: .*reloadhelper.py modified")
                self.set_version("three", rename=True)
                self.wait_body(s, "three")

        def test_inotify(self):
                self.check_engine("inotify")

        def test_auto(self):
                self.check_engine("auto")

        def test_poll(self):
                self.check_engine("poll")

        def test_extra_file(self):
                extra = os.path.join(self.dir, "template.txt")
                with open(extra, "w") as f:
                        f.write("a\n")
                s = self.start(["--reload", "--reload-extra-file", extra], env={"EXTRA_FILE": extra})
                self.assertEqual(self.body(s), "one|a")
                with open(extra, "w") as f:
                        f.write("b\n")
                # The app reads the file on every request; what matters is the restart.
                s.wait_log(r"Worker reloading: .*template.txt modified", timeout=RELOAD_DEADLINE)
                self.assertEqual(self.body(s), "one|b")

        def test_broken_code_answers_500_until_fixed(self):
                s = self.start(["--reload"])
                self.assertEqual(self.body(s), "one")
                with open(self.helper, "w") as f:
                        f.write("VERSION = (\n")
                deadline = time.monotonic() + RELOAD_DEADLINE
                r = s.get("/")
                while r.status != 500 and time.monotonic() < deadline:
                        time.sleep(0.1)
                        r = s.get("/")
                # The server stays up and says what is wrong, as Gunicorn's reloader does.
                self.assertEqual(r.status, 500, r)
                self.assertIn(b"SyntaxError", r.body)
                self.assertTrue(s.alive())
                self.set_version("fixed")
                self.wait_body(s, "fixed")

        def test_without_reload_nothing_restarts(self):
                s = self.start([])
                self.assertEqual(self.body(s), "one")
                self.set_version("two")
                time.sleep(1.5)
                self.assertEqual(self.body(s), "one")
                self.assertNotIn("Worker reloading", s.log())

        def test_bad_values(self):
                for args, what in ((["--reload-engine", "fsevents"], "--reload-engine"),
                                   (["--reload-extra-file", os.path.join(self.dir, "missing")], "reload-extra-file")):
                        p = subprocess.run([h.GCORN] + args + ["reloadapp:application"], capture_output=True,
                                           timeout=15, cwd=self.dir, stdin=subprocess.DEVNULL)
                        self.assertNotEqual(p.returncode, 0, args)
                        err = p.stderr.decode().strip().splitlines()
                        self.assertEqual(len(err), 1, err)
                        self.assertIn(what, err[0])


if __name__ == "__main__":
        unittest.main(verbosity=2)
