"""The WSGI contract (PEP 3333) as an app sees it through the real server."""

import io
import os
import socket
import sys
import tempfile
import time
import unittest
from urllib.parse import urlencode

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
                # Gunicorn's gevent worker says True as well: requests run side by side
                self.assertIs(env["wsgi.multithread"], h.worker_kind() in ("gthread", "gevent"))
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

        def test_input_huge_content_length(self):
                # The declared length is only reserved as the bytes arrive: 100 GB up front
                # was a MemoryError (an aborted worker under ASan) before a byte came.
                pid = self.srv.get("/pid").body
                for mode in ("read", "read-size", "readline", "readlines", "iter"):
                        with self.subTest(mode=mode):
                                with self.srv.connect() as s:
                                        s.sendall(b"POST /read-all?mode=%s HTTP/1.1\r\nHost: x\r\n"
                                                  b"Content-Length: 100000000000\r\n\r\nabc\n" % mode.encode())
                                        try:
                                                # more than the first allocation, so the buffer grows
                                                s.sendall(b"x" * 200000)
                                                s.shutdown(socket.SHUT_WR)
                                        except OSError:
                                                pass    # readline: answered and closed already
                                        closed, data = h.wait_closed(s, 10)
                                self.assertTrue(closed, "connection left open after the client left")
                                self.assertNotIn(b"HTTP/1.1 500", data)
                                self.assertEqual(self.srv.get("/pid").body, pid, "the worker died")
                log = self.srv.log()
                self.assertNotIn("MemoryError", log)
                self.assertNotIn("read-all-memory-error", log)

        def test_wsgi_errors_to_error_log(self):
                r = self.srv.get("/stderr?tag=q7z")
                self.assertEqual(r.status, 200)
                self.srv.wait_log("stderr-marker-q7z")
                self.srv.wait_log("lines-marker")


def split_raw(data):
        """(status line, header lines, bytes after the head) of one raw response."""
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
                raise AssertionError("no complete head in %r" % data[:300])
        lines = head.split(b"\r\n")
        return lines[0], lines[1:], rest


def header_values(lines, name):
        n = name.lower().encode()
        return [line.partition(b":")[2].strip() for line in lines if line.partition(b":")[0].lower() == n]


class ResponseFramingTest(h.SharedServerTestCase):
        """What the app hands start_response() is checked before it frames anything."""
        APP = "routes:app"

        def exchange(self, target, method="GET", version="HTTP/1.1"):
                """The bytes of one response, read until the server closes."""
                return self.srv.raw(h.build_request(method, target, headers=[("Connection", "close")],
                                                    version=version))

        def framing(self, status, headers=(), body="", method="GET", version="HTTP/1.1"):
                q = [("status", status), ("body", body)] + [("h", "%s:%s" % hv) for hv in headers]
                return self.exchange("/framing?" + urlencode(q), method=method, version=version)

        def assert500(self, data, what):
                self.assertTrue(data.startswith(b"HTTP/1.1 500 Internal Server Error\r\n"),
                                "%s: %r" % (what, data[:200]))

        def test_conflicting_content_lengths_are_500(self):
                data = self.framing("200 OK", [("Content-Length", "5"), ("Content-Length", "3")], "hello")
                self.assert500(data, "two Content-Length values")
                self.srv.wait_log("ValueError: .*Content-Length")
                self.assertServes()

        def test_identical_content_lengths_collapse(self):
                data = self.framing("200 OK", [("Content-Length", "5"), ("X-A", "1"), ("content-length", "5")],
                                    "hello")
                line, lines, rest = split_raw(data)
                self.assertEqual(line, b"HTTP/1.1 200 OK")
                self.assertEqual(header_values(lines, "Content-Length"), [b"5"], lines)
                self.assertEqual(rest, b"hello")

        def test_interim_status_is_500(self):
                for status in ("100 Continue", "101 Switching Protocols", "103 Early Hints", "199 X"):
                        with self.subTest(status=status):
                                # On a kept-alive connection a 1xx would leave the client waiting
                                # for the final answer.
                                c = self.srv.client()
                                self.addCleanup(c.close)
                                c.send_request("GET", "/framing?" + urlencode({"status": status, "body": "x"}))
                                r = c.read_response(skip_interim=False)
                                self.assertEqual(r.status, 500, r)
                self.srv.wait_log("ValueError: .*1xx")
                self.assertServes()

        def test_status_code_out_of_range_is_500(self):
                for status in ("600 Weird", "099 x", "999 Z", "000"):
                        with self.subTest(status=status):
                                self.assert500(self.framing(status, body="x"), status)
                self.assertServes()

        def test_status_without_reason_keeps_the_space(self):
                for version in ("HTTP/1.1", "HTTP/1.0"):
                        with self.subTest(version=version):
                                data = self.framing("200", [("Content-Length", "2")], "ok", version=version)
                                self.assertTrue(data.startswith(version.encode() + b" 200 \r\n"), data[:100])
                                self.assertEqual(split_raw(data)[2], b"ok")

        def test_204_drops_content_length(self):
                for cl in ("5", "0"):
                        with self.subTest(cl=cl):
                                data = self.framing("204 No Content", [("Content-Length", cl)], "hello")
                                line, lines, rest = split_raw(data)
                                self.assertEqual(line, b"HTTP/1.1 204 No Content")
                                self.assertEqual(header_values(lines, "Content-Length"), [], lines)
                                self.assertEqual(header_values(lines, "Transfer-Encoding"), [], lines)
                                self.assertEqual(rest, b"")
                # Kept alive, the next answer follows right after the head.
                c = self.srv.client()
                self.addCleanup(c.close)
                c.send(h.build_request("GET", "/framing?status=204+No+Content&h=Content-Length:5&body=hello")
                       + h.build_request("GET", "/", headers=[("Connection", "close")]))
                closed, data = h.wait_closed(c.sock, 10)
                self.assertTrue(closed)
                first, sep, second = data.partition(b"\r\n\r\n")
                self.assertTrue(second.startswith(b"HTTP/1.1 200 OK\r\n"), data)
                self.assertTrue(second.endswith(b"\r\n\r\nHello, World!\n"), data)

        def test_304_and_head_keep_content_length_without_body(self):
                data = self.framing("304 Not Modified", [("Content-Length", "5")], "hello")
                line, lines, rest = split_raw(data)
                self.assertEqual(line, b"HTTP/1.1 304 Not Modified")
                self.assertEqual(header_values(lines, "Content-Length"), [b"5"])
                self.assertEqual(rest, b"")
                data = self.framing("200 OK", [("Content-Length", "5")], "hello", method="HEAD")
                line, lines, rest = split_raw(data)
                self.assertEqual(line, b"HTTP/1.1 200 OK")
                self.assertEqual(header_values(lines, "Content-Length"), [b"5"])
                self.assertEqual(rest, b"")

        def test_error_page_on_head_has_no_body(self):
                get = self.exchange("/raise")
                _, get_lines, get_body = split_raw(get)
                self.assertTrue(get.startswith(b"HTTP/1.1 500 "), get[:100])
                self.assertTrue(get_body)
                head = self.exchange("/raise", method="HEAD")
                line, lines, rest = split_raw(head)
                self.assertEqual(line, b"HTTP/1.1 500 Internal Server Error")
                self.assertEqual(rest, b"", "a HEAD error answer carries a body")
                # RFC 9110 9.3.2: the Content-Length a GET would get.
                self.assertEqual(header_values(lines, "Content-Length"), [str(len(get_body)).encode()])
                self.assertEqual(header_values(get_lines, "Content-Length"), [str(len(get_body)).encode()])

        def test_bad_request_body_gives_reason(self):
                data = self.srv.raw(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                                    b"Content-Length: 2\r\n\r\nab")
                line, lines, rest = split_raw(data)
                self.assertEqual(line, b"HTTP/1.1 400 Bad Request")
                self.assertIn(b"Duplicate Content-Length", rest)
                self.assertEqual(header_values(lines, "Content-Length"), [str(len(rest)).encode()])
                self.assertServes()

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
