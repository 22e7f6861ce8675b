#!/usr/bin/python3
"""The asgi worker (-k asgi and the uvicorn class names): its settings, and what each is
checked against before a worker starts."""
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402


def run(args, timeout=30):
        return subprocess.run([h.GCORN] + list(args), cwd=h.APPS, capture_output=True, text=True,
                              timeout=timeout)


def lines(text):
        return [ln for ln in text.splitlines() if ln.strip()]


class TestSettings(unittest.TestCase):
        def assertRefused(self, args, *words):
                p = run(args)
                self.assertEqual(p.returncode, 2, p)
                err = lines(p.stderr)
                self.assertEqual(len(err), 1, err)
                for w in words:
                        self.assertIn(w, err[0])

        def test_asgi_loop_choices(self):
                self.assertRefused(["--asgi-loop", "tokio", "routes:app"], "--asgi-loop", "'tokio'",
                                   "auto, asyncio, uvloop")

        def test_asgi_lifespan_choices(self):
                self.assertRefused(["--asgi-lifespan", "maybe", "routes:app"], "--asgi-lifespan", "'maybe'",
                                   "auto, on, off")

        def test_websocket_max_message_size(self):
                self.assertRefused(["--websocket-max-message-size", "0", "routes:app"],
                                   "--websocket-max-message-size")
                p = run(["--websocket-max-message-size", "1024", "--asgi-loop", "asyncio", "--asgi-lifespan", "off",
                         "--root-path", "/api", "--print-config", "routes:app"])
                self.assertEqual(p.returncode, 0, p)
                for name, value in (("websocket_max_message_size", "1024"), ("asgi_loop", "asyncio"),
                                    ("asgi_lifespan", "off"), ("root_path", "/api")):
                        self.assertRegex(p.stdout, r"(?m)^%s +=  *%s$" % (name, re.escape(value)))

        def test_uvicorn_class_names_are_the_asgi_worker(self):
                for kind in ("asgi", "gunicorn.workers.gasgi.ASGIWorker", "uvicorn.workers.UvicornWorker",
                             "uvicorn.workers.UvicornH11Worker"):
                        with self.subTest(kind=kind):
                                self.assertRefused(["-k", kind, "routes:app"], "-k/--worker-class",
                                                   "not available yet")


if __name__ == "__main__":
        h.main()
