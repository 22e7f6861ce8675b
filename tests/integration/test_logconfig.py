"""logconfig, logconfig_json, logconfig_dict and capture_output: Python's logging
configuration takes gcorn's own error log entries (as records of gunicorn.error) along with
the app's; stdout and stderr go to the error log file."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

APP = '''
import logging, os

log = logging.getLogger("myapp")

def application(environ, start_response):
    if environ["PATH_INFO"] == "/print":
        print("printed-by-app", flush=True)
        os.write(2, b"raw-stderr-by-app\\n")
    else:
        log.warning("app-warning")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
'''

INI = '''
[loggers]
keys=root,gerror

[handlers]
keys=f

[formatters]
keys=plain

[logger_root]
level=INFO
handlers=f

[logger_gerror]
level=DEBUG
handlers=f
propagate=0
qualname=gunicorn.error

[handler_f]
class=FileHandler
formatter=plain
args=(%(out)r, 'a')

[formatter_plain]
format=LC %%(name)s %%(levelname)s %%(message)s
'''

ROOT_ONLY_INI = '''
[loggers]
keys=root

[handlers]
keys=f

[formatters]
keys=plain

[logger_root]
level=INFO
handlers=f

[handler_f]
class=FileHandler
formatter=plain
args=(%(out)r, 'a')

[formatter_plain]
format=ROOT %%(name)s %%(message)s
'''


def dict_config(out, prefix):
        return {
                "version": 1,
                "formatters": {"x": {"format": prefix + " %(name)s %(levelname)s %(message)s"}},
                "handlers": {"f": {"class": "logging.FileHandler", "filename": out, "formatter": "x"}},
                "root": {"handlers": ["f"], "level": "WARNING"},
                "loggers": {"gunicorn.error": {"handlers": ["f"], "level": "INFO", "propagate": False},
                            "myapp": {"handlers": ["f"], "level": "INFO", "propagate": False}},
        }


def read(path):
        try:
                with open(path, encoding="utf-8", errors="replace") as f:
                        return f.read()
        except FileNotFoundError:
                return ""


class Base(unittest.TestCase):
        def setUp(self):
                self.dir = h.tempdir(self, "gcorn-logconfig-")
                with open(os.path.join(self.dir, "logapp.py"), "w") as f:
                        f.write(APP)
                self.out = os.path.join(self.dir, "records.log")

        def write(self, name, text):
                path = os.path.join(self.dir, name)
                with open(path, "w") as f:
                        f.write(text)
                return path

        def start(self, args, log_path=None):
                s = h.Server("logapp:application", args=args, chdir=self.dir, log_path=log_path)
                self.addCleanup(s.stop)
                return s

        def gcorn_lines(self, s):
                """gcorn's own entries in the native error log (stderr)."""
                with open(s.stderr_path, encoding="utf-8", errors="replace") as f:
                        return [ln for ln in f.read().splitlines() if "Starting gcorn" in ln or "Booting worker" in ln]

        def fails(self, args, what):
                p = subprocess.run([h.GCORN, "-b", "127.0.0.1:0"] + args + ["logapp:application"],
                                   capture_output=True, timeout=15, cwd=self.dir, stdin=subprocess.DEVNULL)
                self.assertNotEqual(p.returncode, 0, p)
                err = p.stderr.decode().strip().splitlines()
                self.assertEqual(len(err), 1, err)
                self.assertIn(what, err[0])
                return err[0]


class TestLogconfig(Base):
        def test_ini_file(self):
                ini = self.write("log.ini", INI % {"out": self.out})
                s = self.start(["--log-config", ini], log_path=self.out)
                self.assertEqual(s.get("/").status, 200)
                text = s.wait_log(r"LC myapp WARNING app-warning")
                # gcorn's entries are records of gunicorn.error, in the master and the workers,
                # at the level the file gives that logger (DEBUG here, over --log-level info).
                self.assertIn("LC gunicorn.error INFO Starting gcorn", text)
                self.assertRegex(text, r"LC gunicorn.error INFO Booting worker with pid: \d+")
                self.assertIn("LC gunicorn.error DEBUG GET /", text)
                self.assertEqual(self.gcorn_lines(s), [])

        def test_usr1_reopens_logging_files(self):
                ini = self.write("log.ini", INI % {"out": self.out})
                s = self.start(["--log-config", ini], log_path=self.out)
                s.wait_log(r"Booting worker")
                os.rename(self.out, self.out + ".1")
                os.kill(s.pid, signal.SIGUSR1)
                self.assertTrue(h.wait_until(lambda: "Handling signal: usr1" in read(self.out), 10), read(self.out))
                # The workers reopen theirs too.
                deadline = time.monotonic() + 10
                while "app-warning" not in read(self.out) and time.monotonic() < deadline:
                        self.assertEqual(s.get("/").status, 200)
                        time.sleep(0.1)
                self.assertIn("LC myapp WARNING app-warning", read(self.out))

        def test_gunicorn_error_without_handlers_keeps_the_native_log(self):
                root_out = os.path.join(self.dir, "root.log")
                ini = self.write("log.ini", ROOT_ONLY_INI % {"out": root_out})
                s = self.start(["--log-config", ini])
                self.assertEqual(s.get("/").status, 200)
                h.wait_until(lambda: "ROOT myapp app-warning" in read(root_out), 10)
                self.assertIn("ROOT myapp app-warning", read(root_out))
                self.assertNotIn("gunicorn.error", read(root_out))
                self.assertEqual(len(self.gcorn_lines(s)), 2)

        def test_dict_in_config_file(self):
                conf = self.write("gunicorn.conf.py", "logconfig_dict = %r\n" % dict_config(self.out, "DICT"))
                s = self.start(["-c", conf], log_path=self.out)
                self.assertEqual(s.get("/").status, 200)
                text = s.wait_log(r"DICT myapp WARNING app-warning")
                self.assertIn("DICT gunicorn.error INFO Starting gcorn", text)
                self.assertEqual(self.gcorn_lines(s), [])

        def test_json_file(self):
                js = self.write("log.json", json.dumps(dict_config(self.out, "JSON")))
                s = self.start(["--log-config-json", js], log_path=self.out)
                self.assertEqual(s.get("/").status, 200)
                text = s.wait_log(r"JSON myapp WARNING app-warning")
                self.assertIn("JSON gunicorn.error INFO Starting gcorn", text)
                self.assertEqual(self.gcorn_lines(s), [])

        def test_dict_wins_over_files(self):
                ini = self.write("log.ini", INI % {"out": os.path.join(self.dir, "ini.log")})
                conf = self.write("gunicorn.conf.py", "logconfig_dict = %r\nlogconfig = %r\n"
                                  % (dict_config(self.out, "DICT"), ini))
                s = self.start(["-c", conf], log_path=self.out)
                text = s.wait_log(r"logconfig_dict takes precedence: logconfig .*log.ini is not used")
                self.assertIn("DICT gunicorn.error INFO Starting gcorn", text)
                self.assertEqual(read(os.path.join(self.dir, "ini.log")), "")

        def test_errors(self):
                self.fails(["--log-config", os.path.join(self.dir, "missing.ini")], "not found")
                self.fails(["--log-config-json", os.path.join(self.dir, "missing.json")], "No such file")
                bad = self.write("bad.json", "{not json")
                self.fails(["--log-config-json", bad], "logconfig_json")
                conf = self.write("gunicorn.conf.py", textwrap.dedent('''\
                        logconfig_dict = {"version": 1, "handlers": {"h": {"class": "no.such.Handler"}}}
                        '''))
                self.fails(["-c", conf], "logconfig_dict")
                conf = self.write("gunicorn.conf.py", "logconfig_dict = 'x'\n")
                self.fails(["-c", conf], "logconfig_dict")


class TestCaptureOutput(Base):
        def test_capture_output(self):
                s = self.start(["--capture-output", "--error-logfile", self.out], log_path=self.out)
                self.assertEqual(s.get("/print").status, 200)
                text = s.wait_log("raw-stderr-by-app")
                self.assertIn("printed-by-app", text)
                self.assertNotIn("printed-by-app", s.stdout())
                with open(s.stderr_path) as f:
                        self.assertNotIn("raw-stderr-by-app", f.read())

        def test_without_capture_output(self):
                s = self.start(["--error-logfile", self.out], log_path=self.out)
                self.assertEqual(s.get("/print").status, 200)
                self.assertTrue(h.wait_until(lambda: "printed-by-app" in s.stdout(), 10))
                self.assertNotIn("printed-by-app", read(self.out))

        def test_capture_output_with_stderr_log_warns(self):
                s = self.start(["--capture-output"])
                s.wait_log(r"capture_output has no effect")


if __name__ == "__main__":
        unittest.main(verbosity=2)
