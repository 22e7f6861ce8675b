"""The WSGI contract (PEP 3333) as an app sees it through the real server."""

import io
import os
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

LINES_BODY = b"line1\nline2\n\n\xe9\xff binary\r\nlast-no-newline"


def expected_reads(mode, body):
        """What routes.readline sees for mode, done on an io.BytesIO."""
        f = io.BytesIO(body)
        seen = []
        if mode == "readline":
                while True:
                        line = f.readline()
                        if not line:
                                break
                        seen.append(line)
        elif mode == "readline-size":
                while True:
                        line = f.readline(5)
                        if not line:
                                break
                        seen.append(line)
        elif mode == "readlines":
                seen = f.readlines()
        elif mode == "iter":
                seen = list(f)
        elif mode == "read-n":
                while True:
                        part = f.read(3)
                        if not part:
                                break
                        seen.append(part)
        elif mode == "mixed":
                seen = [f.read(2), f.readline(), f.read(), f.read()]
        return [s.decode("latin-1") for s in seen]


def chunk_body(body, sizes):
        out = bytearray()
        i = 0
        for n in sizes:
                part = body[i:i + n]
                if not part:
                        break
                out += b"%x\r\n" % len(part) + part + b"\r\n"
                i += len(part)
        if i < len(body):
                out += b"%x\r\n" % (len(body) - i) + body[i:] + b"\r\n"
        out += b"0\r\n\r\n"
        return bytes(out)


def wait_file(path, needle, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
                try:
                        with open(path) as f:
                                text = f.read()
                except FileNotFoundError:
                        text = ""
                if needle in text or time.monotonic() > deadline:
                        return text
                time.sleep(0.05)


class WsgiTest(h.SharedServerTestCase):
        APP = "routes:app"

        def tmpfile(self):
                fd, path = tempfile.mkstemp(prefix="gcorn-close-")
                os.close(fd)
                os.unlink(path)
                self.addCleanup(lambda: os.path.exists(path) and os.unlink(path))
                return path

        def test_environ_keys(self):
                c = self.srv.client()
                self.addCleanup(c.close)
                local_port = c.sock.getsockname()[1]
                c.send_request("GET", "/environ/sub?a=b&c", headers=[("Host", "example.org:8080"),
                                                                   ("X-Custom", "v")])
                r = c.read_response()
                self.assertEqual(r.status, 200)
                env = r.json()
                self.assertEqual(env["REQUEST_METHOD"], "GET")
                self.assertEqual(env["SCRIPT_NAME"], "")
                self.assertEqual(env["PATH_INFO"], "/environ/sub")
                self.assertEqual(env["QUERY_STRING"], "a=b&c")
                self.assertEqual(env["SERVER_PROTOCOL"], "HTTP/1.1")
                self.assertEqual(env["HTTP_HOST"], "example.org:8080")
                self.assertEqual(env["HTTP_X_CUSTOM"], "v")
                self.assertTrue(env["SERVER_NAME"])
                self.assertTrue(env["SERVER_PORT"].isdigit(), env["SERVER_PORT"])
                self.assertEqual(env["REMOTE_ADDR"], "127.0.0.1")
                self.assertEqual(env["REMOTE_PORT"], str(local_port))
                self.assertEqual(env["wsgi.version"], [1, 0])
                self.assertEqual(env["wsgi.url_scheme"], "http")
                self.assertIs(env["wsgi.multithread"], False)
                self.assertIs(env["wsgi.multiprocess"], False)
                self.assertIs(env["wsgi.run_once"], False)
                self.assertTrue(env["wsgi.input"].startswith("<"))
                self.assertTrue(env["wsgi.errors"].startswith("<"))
                self.assertEqual(env["_input_methods"], ["__iter__", "read", "readline", "readlines"])
                self.assertEqual(env["_errors_methods"], ["flush", "write", "writelines"])
                self.assertTrue(env["_file_wrapper_callable"])
                self.assertNotIn("HTTP_CONTENT_TYPE", env)
                self.assertNotIn("HTTP_CONTENT_LENGTH", env)
                for k, t in env["_types"].items():
                        if "." not in k:
                                self.assertEqual(t, "str", "environ[%r] is a %s" % (k, t))

        def test_environ_with_body(self):
                r = self.srv.get("/environ", method="POST", body=b"abc",
                                 headers=[("Content-Type", "text/x-test")])
                env = r.json()
                self.assertEqual(env["REQUEST_METHOD"], "POST")
                self.assertEqual(env["CONTENT_TYPE"], "text/x-test")
                self.assertEqual(env["CONTENT_LENGTH"], "3")
                self.assertNotIn("HTTP_CONTENT_TYPE", env)
                self.assertNotIn("HTTP_CONTENT_LENGTH", env)

        def test_environ_http10(self):
                r = self.srv.get("/environ", version="HTTP/1.0")
                self.assertEqual(r.json()["SERVER_PROTOCOL"], "HTTP/1.0")

        def _input_modes(self, chunked):
                for mode in ("readline", "readline-size", "readlines", "iter", "read-n", "mixed"):
                        with self.subTest(mode=mode, chunked=chunked):
                                if chunked:
                                        r = self.srv.get("/readline?mode=" + mode, method="POST",
                                                         headers=[("Transfer-Encoding", "chunked")],
                                                         body=chunk_body(LINES_BODY, [1, 7, 3, 11, 2]))
                                else:
                                        r = self.srv.get("/readline?mode=" + mode, method="POST",
                                                         body=LINES_BODY)
                                self.assertEqual(r.status, 200, r)
                                got = r.json()
                                self.assertEqual(got["seen"], expected_reads(mode, LINES_BODY))
                                self.assertEqual(got["types"], ["bytes"])

        def test_input_content_length(self):
                self._input_modes(False)

        def test_input_chunked(self):
                self._input_modes(True)

        def test_input_empty(self):
                r = self.srv.get("/readline?mode=mixed", method="POST")
                self.assertEqual(r.json()["seen"], ["", "", "", ""])

        def test_write_callable(self):
                r = self.srv.get("/write")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"via write and iterable")

        def test_exc_info_before_headers_sent(self):
                r = self.srv.get("/exc-info")
                self.assertEqual(r.status, 503)
                self.assertEqual(r.body, b"recovered")
                self.assertIsNone(r.header("X-Early"))

        def test_exc_info_after_headers_sent(self):
                with self.srv.connect() as s:
                        s.sendall(h.build_request("GET", "/exc-info?late=1"))
                        closed, data = h.wait_closed(s, 10)
                self.assertTrue(closed, "connection not closed after a late exc_info")
                self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data)
                self.assertIn(b"partial\n", data)
                self.assertNotIn(b"never", data)
                # A chunked body must not end with the terminating chunk: the response is cut.
                self.assertFalse(data.endswith(b"0\r\n\r\n"), data)
                self.srv.wait_log("late-error")

        def test_close_called(self):
                path = self.tmpfile()
                r = self.srv.get("/close-tracker?chunks=3&size=10&file=" + path)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"x" * 30)
                text = wait_file(path, "closed")
                self.assertEqual(text, "exhausted\nclosed produced=3\n")

        def test_close_called_on_client_disconnect(self):
                path = self.tmpfile()
                total = 100000
                s = self.srv.connect()
                s.sendall(h.build_request("GET", "/close-tracker?chunks=%d&size=65536&file=%s"
                                          % (total, path)))
                got = 0
                while got < 200000:
                        chunk = s.recv(65536)
                        if not chunk:
                                break
                        got += len(chunk)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()
                text = wait_file(path, "closed")
                self.assertIn("closed produced=", text, "close() not called after the client left")
                self.assertNotIn("exhausted", text)
                produced = int(text.split("closed produced=")[1].split()[0])
                self.assertLess(produced, total)
                self.assertEqual(self.srv.get("/").status, 200)

        def test_close_called_on_head(self):
                path = self.tmpfile()
                r = self.srv.get("/close-tracker?chunks=2&size=4&file=" + path, method="HEAD")
                self.assertEqual(r.status, 200)
                self.assertIn("closed", wait_file(path, "closed"))

        def test_file_wrapper_1mib(self):
                n = 1 << 20
                r = self.srv.get("/file?size=%d" % n)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header("Content-Length"), str(n))
                self.assertEqual(len(r.body), n)
                self.assertTrue(r.body == h.pattern_bytes(n), "file_wrapper body differs")

        def test_file_wrapper_without_length(self):
                n = 300001
                r = self.srv.get("/file?cl=0&size=%d" % n)
                self.assertEqual(r.status, 200)
                self.assertTrue(r.complete)
                self.assertTrue(r.body == h.pattern_bytes(n), "file_wrapper body differs")

        def test_file_wrapper_keepalive(self):
                c = self.srv.client()
                self.addCleanup(c.close)
                for n in (0, 1, 70000):
                        c.send_request("GET", "/file?size=%d" % n)
                        r = c.read_response()
                        self.assertEqual(r.status, 200)
                        self.assertTrue(r.body == h.pattern_bytes(n))
                c.send_request("GET", "/")
                self.assertEqual(c.read_response().body, b"Hello, World!\n")

        def test_wsgi_errors_to_error_log(self):
                r = self.srv.get("/stderr?tag=q7z")
                self.assertEqual(r.status, 200)
                self.srv.wait_log("stderr-marker-q7z")
                self.srv.wait_log("lines-marker")


class ValidatedTest(unittest.TestCase):
        """wsgiref.validate around the app: any PEP 3333 slip of the server becomes a 500."""

        srv = None

        @classmethod
        def setUpClass(cls):
                cls.srv = h.Server("validated:app")

        @classmethod
        def tearDownClass(cls):
                if cls.srv:
                        cls.srv.stop()

        def test_routes_without_warnings(self):
                fd, track = tempfile.mkstemp(prefix="gcorn-close-")
                os.close(fd)
                self.addCleanup(os.unlink, track)
                cases = [
                        ("GET", "/", [], b"", 200),
                        ("GET", "/environ?x=1", [], b"", 200),
                        ("POST", "/echo?mode=loop", [("Content-Type", "text/plain")], b"abc" * 1000, 200),
                        ("POST", "/readline?mode=readline", [("Content-Type", "text/plain")], LINES_BODY, 200),
                        ("POST", "/readline?mode=readlines", [("Content-Type", "text/plain")], LINES_BODY, 200),
                        ("POST", "/readline?mode=iter", [("Content-Type", "text/plain")], LINES_BODY, 200),
                        ("GET", "/chunked", [], b"", 200),
                        ("GET", "/write", [], b"", 200),
                        ("HEAD", "/head-test", [], b"", 200),
                        ("GET", "/status?code=204", [], b"", 204),
                        ("GET", "/file?size=100000", [], b"", 200),
                        ("GET", "/close-tracker?file=" + track, [], b"", 200),
                        ("GET", "/stderr", [], b"", 200),
                        ("POST", "/expect?read=1", [("Content-Type", "text/plain")], b"12345", 200),
                        ("GET", "/status?code=404", [], b"", 404),
                ]
                c = self.srv.client()
                self.addCleanup(c.close)
                for method, path, headers, body, status in cases:
                        with self.subTest(path=path):
                                c.send_request(method, path, headers=headers, body=body)
                                r = c.read_response(method=method)
                                self.assertEqual(r.status, status, "%s\nlog:\n%s" % (r, self.srv.log()))
                                if path.startswith("/echo"):
                                        self.assertEqual(r.body, body)
                # Iterators the validator saw collected without close() are reported on stderr.
                log = self.srv.log()
                self.assertNotIn("Traceback", log)
                self.assertNotIn("Warning", log)
                self.assertNotIn("without being closed", log)
                self.assertIn("closed", wait_file(track, "closed"))


if __name__ == "__main__":
        h.main()
