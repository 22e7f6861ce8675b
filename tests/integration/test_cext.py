#!/usr/bin/python3
"""C extension modules load under gcorn's embedded interpreter: the standard library's
shared ones (lib-dynload) and those of the packages the worker kinds use (greenlet, gevent,
uvloop, pydantic-core), each imported and used in a request. With CPython linked
statically they resolve the interpreter's symbols from the gcorn executable, so each
must be there (the whole libpython) and exported."""
import json
import os
import subprocess
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

# The standard library's, always installed with Debian's python3.11.
STDLIB = ["_ssl", "_hashlib", "_sqlite3", "_decimal", "_ctypes", "_json", "_asyncio",
          "_bz2", "_lzma", "_multibytecodec", "_queue", "_uuid", "_zoneinfo", "mmap"]
# Debian's test-support modules, when there: they call a wide part of the C API, much of
# which gcorn itself never calls.
TESTING = ["_testcapi", "_testbuffer", "_testmultiphase"]
# The worker kinds' packages, when installed.
PACKAGES = ["greenlet._greenlet", "gevent._gevent_cgreenlet", "gevent.libev.corecext",
            "gevent._gevent_c_hub_local", "uvloop.loop", "pydantic_core._pydantic_core",
            "httptools.parser.parser"]


def importable(names):
        """The modules of NAMES /usr/bin/python3 itself imports."""
        code = ("import importlib, sys\n"
                "for n in sys.argv[1:]:\n"
                "    try: importlib.import_module(n); print(n)\n"
                "    except Exception: pass\n")
        out = subprocess.run([h.PYTHON, "-c", code] + names, capture_output=True, text=True,
                             timeout=60, check=True).stdout
        return out.split()


class CExtensionTest(h.SharedServerTestCase):
        APP = "cext_app:app"

        @classmethod
        def setUpClass(cls):
                env = None
                if "ASAN_OPTIONS" in os.environ:
                        # These modules keep state the interpreter never frees at exit (the
                        # same with libpython3.11.so), and the leak checker's unwinder stops
                        # in their frames, so lsan.supp cannot tell it from gcorn's; greenlet
                        # switches C stacks (as gcorn_harness does for gevent). The address
                        # and UB checks stay on.
                        env = {"ASAN_OPTIONS": os.environ["ASAN_OPTIONS"] +
                               ":detect_stack_use_after_return=0:detect_leaks=0"}
                cls.srv = h.Server(cls.APP, env=env)

        def imports(self, names):
                q = urllib.parse.urlencode([("m", n) for n in names])
                r = self.srv.get("/?" + q)
                self.assertEqual(r.status, 200, r)
                got = json.loads(r.body)
                self.assertEqual(sorted(got), sorted(names))
                self.assertEqual({n: v for n, v in got.items() if v != "ok"}, {})

        def test_stdlib(self):
                names = importable(STDLIB)
                self.assertEqual(names, STDLIB, "python3 itself lacks some of them")
                self.imports(names)

        def test_testing_modules(self):
                names = importable(TESTING)
                if not names:
                        self.skipTest("Debian's C API test modules are not installed")
                self.imports(names)

        def test_packages(self):
                names = importable(PACKAGES)
                if not names:
                        self.skipTest("none of greenlet, gevent, uvloop, pydantic-core installed")
                self.imports(names)


if __name__ == "__main__":
        h.main()
