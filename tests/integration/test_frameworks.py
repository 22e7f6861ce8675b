"""Real frameworks (Debian's Flask and Django) served by the real binary."""

import json
import os
import subprocess
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402


def have(module):
        return subprocess.run([h.PYTHON, "-c", "import " + module],
                              capture_output=True, timeout=30).returncode == 0


class FlaskTest(h.SharedServerTestCase):
        APP = "flask_app:app"

        @classmethod
        def setUpClass(cls):
                if not have("flask"):
                        raise unittest.SkipTest("Flask is not installed")
                super().setUpClass()

        def test_index(self):
                r = self.srv.get("/")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"flask index\n")
                self.assertTrue(r.header("Content-Type").startswith("text/html"))

        def test_json(self):
                r = self.srv.get("/api/21?x=y")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header("Content-Type"), "application/json")
                self.assertEqual(json.loads(r.body), {"item": 21, "double": 42, "args": {"x": "y"}})

        def test_form_post(self):
                body = urllib.parse.urlencode({"name": "gc orn", "other": "1"}).encode()
                r = self.srv.get("/form", method="POST", body=body,
                                 headers=[("Content-Type", "application/x-www-form-urlencoded")])
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"name=gc orn count=2\n")

        def test_chunked_upload(self):
                data = b"0123456789" * 5000
                wire = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + 4000]), data[i:i + 4000])
                                for i in range(0, len(data), 4000)) + b"0\r\n\r\n"
                c = self.srv.client()
                self.addCleanup(c.close)
                c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                       b"Content-Type: application/octet-stream\r\n\r\n" + wire)
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(json.loads(r.body), {"length": 50000, "first": "01234567"})

        def test_streamed(self):
                r = self.srv.get("/stream")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"line 0\nline 1\nline 2\n")

        def test_not_found_and_method(self):
                self.assertEqual(self.srv.get("/nope").status, 404)
                self.assertEqual(self.srv.get("/missing-on-purpose").status, 404)
                self.assertEqual(self.srv.get("/form").status, 405)


class DjangoTest(h.SharedServerTestCase):
        APP = "django_app:application"

        @classmethod
        def setUpClass(cls):
                if not have("django"):
                        raise unittest.SkipTest("Django is not installed")
                super().setUpClass()

        def test_index(self):
                r = self.srv.get("/")
                self.assertEqual(r.status, 200, self.srv.log())
                self.assertEqual(r.body, b"django index\n")

        def test_json_view(self):
                r = self.srv.get("/info/?q=caf%C3%A9", headers=[("Host", "localhost")])
                self.assertEqual(r.status, 200, self.srv.log())
                self.assertEqual(json.loads(r.body), {"method": "GET", "path": "/info/",
                                                      "q": "caf\u00e9", "host": "localhost"})

        def test_post_json(self):
                r = self.srv.get("/post/", method="POST", body=b'{"numbers": [1, 2, 39]}',
                                 headers=[("Content-Type", "application/json")])
                self.assertEqual(r.status, 200, self.srv.log())
                self.assertEqual(json.loads(r.body), {"sum": 42, "name": None})

        def test_disallowed_host(self):
                r = self.srv.get("/info/", headers=[("Host", "evil.example")])
                self.assertEqual(r.status, 400)

        def test_not_found(self):
                self.assertEqual(self.srv.get("/nope/").status, 404)


if __name__ == "__main__":
        h.main()
