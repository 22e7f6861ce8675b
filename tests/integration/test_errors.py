"""Malformed requests and misbehaving apps: the right status, and the worker lives on."""

import os
import re
import shutil
import signal
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402


class ErrorsTest(h.SharedServerTestCase):
        APP = "routes:app"
        ARGS = ["--limit-request-line", "100"]

        def reject(self, raw, status):
                """Sends raw bytes; the answer must be status and then a close."""
                with self.srv.connect() as s:
                        s.sendall(raw)
                        closed, data = h.wait_closed(s, 10)
                self.assertTrue(closed, "connection left open after %d; got %r" % (status, data[:200]))
                m = re.match(rb"HTTP/1\.[01] (\d{3}) ", data)
                self.assertTrue(m, "no status line: %r" % data[:200])
                self.assertEqual(int(m.group(1)), status, data[:300])
                r = h.parse_responses(data)[0]
                self.assertTrue(r.has_token("Connection", "close"), r)
                self.assertServes()
                return data

        # -- malformed requests ----------------------------------------------

        def test_malformed_request_line(self):
                self.reject(b"GARBAGE\r\n\r\n", 400)
                self.reject(b"GET\r\n\r\n", 400)
                self.reject(b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400)

        def test_malformed_then_half_close(self):
                data = self.srv.raw(b"GARBAGE\r\n\r\n", shut_wr=True)
                self.assertTrue(data.startswith(b"HTTP/1.1 400 "), data[:200])
                self.assertServes()

        def test_request_line_too_long(self):
                self.reject(b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414)

        def test_request_line_at_limit_is_fine(self):
                # "GET " + target + " HTTP/1.1" is exactly 100 bytes.
                target = b"/?" + b"q" * (100 - len(b"GET  HTTP/1.1") - 2)
                line = b"GET " + target + b" HTTP/1.1"
                self.assertEqual(len(line), 100)
                r = h.parse_responses(self.srv.raw(line + b"\r\nHost: x\r\nConnection: close\r\n\r\n"))
                self.assertEqual(r[0].status, 200)

        def test_too_many_headers(self):
                hdrs = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
                self.reject(b"GET / HTTP/1.1\r\nHost: x\r\n" + hdrs + b"\r\n", 431)

        def test_header_too_large(self):
                self.reject(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431)

        def test_content_length_and_transfer_encoding(self):
                self.reject(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400)

        def test_bad_content_length(self):
                for cl in (b"abc", b"-1", b"1, 2", b"0x10", b"+5"):
                        with self.subTest(cl=cl):
                                self.reject(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + cl
                                            + b"\r\n\r\nhello", 400)

        def test_two_different_content_lengths(self):
                self.reject(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                            b"Content-Length: 5\r\n\r\nhello", 400)

        def test_unsupported_versions(self):
                for v in (b"HTTP/2.0", b"HTTP/3.0", b"HTTP/0.9"):
                        with self.subTest(version=v):
                                self.reject(b"GET / " + v + b"\r\nHost: x\r\n\r\n", 505)

        def test_higher_minor_version_is_served_as_1_1(self):
                # RFC 9110 2.5: a 1.x request with a minor version we do not implement is
                # served by the 1.1 rules and answered with our own version, never echoed.
                with self.srv.connect() as s:
                        s.sendall(b"GET / HTTP/1.2\r\nHost: x\r\nConnection: close\r\n\r\n")
                        closed, data = h.wait_closed(s, 10)
                self.assertTrue(closed)
                self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:100])
                self.assertTrue(data.endswith(b"Hello, World!\n"), data)

        def test_obs_fold(self):
                self.reject(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n", 400)

        def test_bad_header_name(self):
                self.reject(b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400)
                self.reject(b"GET / HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n", 400)

        def test_unknown_transfer_encoding(self):
                self.reject(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
                            b"0\r\n\r\n", 400)

        def test_bad_chunk_size(self):
                with self.srv.connect() as s:
                        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  b"zz\r\nhello\r\n0\r\n\r\n")
                        closed, data = h.wait_closed(s, 10)
                self.assertTrue(closed)
                self.assertFalse(data.startswith(b"HTTP/1.1 2"), data[:200])
                self.assertNotIn(b"hello", data)
                self.assertServes()

        # -- misbehaving apps -------------------------------------------------

        def test_app_raises(self):
                r = self.srv.get("/raise")
                self.assertEqual(r.status, 500)
                self.assertNotIn(b"boom-before-start", r.body)
                log = self.srv.wait_log("RuntimeError: boom-before-start")
                start = log.rfind("Traceback (most recent call last):", 0,
                                  log.index("RuntimeError: boom-before-start"))
                self.assertGreaterEqual(start, 0, log)
                block = log[start:log.index("RuntimeError: boom-before-start")]
                self.assertIn("raise_", block)
                # One block: no other log entry starts inside the traceback.
                self.assertNotRegex(block, r"\n\[\d{4}-\d\d-\d\d [^]]+\] \[\d+\] \[", log)
                self.assertServes()

        def test_app_raises_mid_iteration(self):
                with self.srv.connect() as s:
                        s.sendall(h.build_request("GET", "/raise-after"))
                        closed, data = h.wait_closed(s, 10)
                self.assertTrue(closed, "connection left open after the app failed mid-body")
                self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:100])
                self.assertIn(b"first chunk\n", data)
                self.assertFalse(data.endswith(b"0\r\n\r\n"), "a cut body was framed as complete")
                self.srv.wait_log("boom-mid-iteration")
                self.assertServes()

        def test_bad_status(self):
                r = self.srv.get("/bad-status")
                self.assertEqual(r.status, 500)
                self.assertServes()

        def test_bad_header_value(self):
                data = self.srv.raw(h.build_request("GET", "/bad-header", headers=[("Connection", "close")]))
                self.assertTrue(data.startswith(b"HTTP/1.1 500 "), data[:200])
                self.assertNotIn(b"X-Injected", data)
                self.assertNotIn(b"bad header", data)
                self.assertServes()

        def test_junk_iterable(self):
                r = self.srv.get("/junk")
                self.assertEqual(r.status, 500)
                self.assertServes()

        def test_short_body(self):
                with self.srv.connect() as s:
                        s.sendall(h.build_request("GET", "/short"))
                        closed, data = h.wait_closed(s, 10)
                self.assertTrue(closed, "connection left open after a short body")
                head, _, body = data.partition(b"\r\n\r\n")
                self.assertIn(b"Content-Length: 10", head)
                self.assertEqual(body, b"12345")
                self.assertServes()

        def test_long_body(self):
                c = self.srv.client()
                self.addCleanup(c.close)
                c.send(h.build_request("GET", "/long") + h.build_request("GET", "/"))
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"12345")
                # Either the connection closes cleanly or the next response follows at once.
                try:
                        n = c.read_response()
                except h.ProtocolError as e:
                        self.assertIn("connection closed", str(e))
                        self.assertEqual(bytes(c.buf), b"")
                else:
                        self.assertEqual(n.status, 200)
                        self.assertEqual(n.body, b"Hello, World!\n")
                self.assertServes()


# The start of an entry gcorn writes: "[2024-05-01 12:00:00 +0000] [1234] [ERROR] ".
ENTRY_RE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[[A-Z]+\] ", re.M)


class AppLoggingTest(h.SharedServerTestCase):
        """The app's log records and wsgi.errors text in the error log, as Gunicorn writes them."""
        APP = "logging_app:app"

        @classmethod
        def setUpClass(cls):
                cls.logdir = tempfile.mkdtemp(prefix="gcorn-logging-")
                path = os.path.join(cls.logdir, "error.log")
                cls.srv = h.Server(cls.APP, args=["-w", "1", "--error-logfile", path], log_path=path)

        @classmethod
        def tearDownClass(cls):
                super().tearDownClass()
                shutil.rmtree(cls.logdir, ignore_errors=True)

        def get_ok(self, path):
                r = self.srv.get(path)
                self.assertEqual(r.status, 200, r)
                return r

        def record(self, first, last):
                """The log text from the line holding first to the end of the line holding last."""
                log = self.srv.wait_log(re.escape(last))
                start = log.rfind("\n", 0, log.index(first)) + 1
                end = log.index("\n", log.index(last, start))
                return log[start:end + 1]

        def assertOneEntry(self, block):
                self.assertEqual(len(ENTRY_RE.findall(block[1:])), 0,
                                 "a record split into several entries:\n" + block)
                self.assertRegex(block, r"(?m)^Traceback \(most recent call last\):$")
                self.assertRegex(block, r'(?m)^  File ".*logging_app\.py", line \d+, in _fail$')

        def test_flask_logged_exception_is_one_record(self):
                # Flask's logger writes each record to wsgi.errors in one write(): the text
                # goes to the log as it is, Flask's own prefix and all.
                self.get_ok("/flask-exception?tag=f1")
                block = self.record("flask-handled-marker f1", "ValueError: logged-boom-f1")
                self.assertRegex(block, r"^\[[^]]+\] ERROR in logging_app: flask-handled-marker f1\n")
                self.assertIsNone(ENTRY_RE.match(block), "wsgi.errors text got a level prefix:\n" + block)
                self.assertOneEntry(block)

        def test_logger_without_handler_is_one_entry(self):
                # logging.lastResort: gcorn's prefix on the first line, the traceback as it is.
                self.get_ok("/plain-exception?tag=p1")
                block = self.record("plain-handled-marker p1", "ValueError: logged-boom-p1")
                self.assertRegex(block, ENTRY_RE.pattern.replace("[A-Z]+", "ERROR") + r"plain-handled-marker p1\n")
                self.assertOneEntry(block)

        def test_wsgi_errors_text_as_is(self):
                self.get_ok("/errors?tag=e1")
                log = self.srv.wait_log("errors-marker-two e1")
                self.assertRegex(log, r"(?m)^errors-marker-one e1\nerrors-marker-two e1$")

        def test_nul_and_surrogates_never_raise(self):
                self.get_ok("/nul?tag=n1")
                self.get_ok("/surrogate?tag=s1")
                log = self.srv.wait_log("errors-surrogate-marker s1")
                for text in ("nul-marker n1 a\\x00b", "flask-nul-marker n1 c\\x00d", "errors-nul-marker n1 e\\x00f",
                             "surrogate-marker s1 \\ud800", "flask-surrogate-marker s1 \\udcff",
                             "errors-surrogate-marker s1 \\ud800"):
                        self.assertIn(text, log)
                self.assertNotIn("\0", log)
                self.assertNotIn("Logging error", log)
                self.get_ok("/flask-exception?tag=after")


class LogReopenTest(h.ServerTestCase):
        @unittest.skipIf(h.worker_kind() == "gevent", "gevent: the app's time.sleep() yields to the hub, so "
                         "the worker does not hang (test_gevent hangs one with a busy loop)")
        def test_stack_dump_after_reopen_goes_to_the_new_log(self):
                # faulthandler writes to a fd number it was given once: after USR1 that
                # number must still be the error log, never a connection accepted later.
                d = h.tempdir(self, "gcorn-reopen-")
                path = os.path.join(d, "error.log")
                srv = self.start("logging_app:app", args=["-w", "1", "-t", "2", "--error-logfile", path],
                                 log_path=path)
                worker = srv.worker_pids()[0]
                os.rename(path, path + ".1")
                os.kill(srv.pid, signal.SIGUSR1)

                def worker_reopened():
                        for fd in os.listdir("/proc/%d/fd" % worker):
                                try:
                                        if os.readlink("/proc/%d/fd/%s" % (worker, fd)) == path:
                                                return True
                                except OSError:
                                        pass
                        return False
                self.assertTrue(h.wait_until(worker_reopened, 10), "the worker never reopened its log")

                with srv.connect() as s:
                        s.sendall(h.build_request("GET", "/sleep?s=30"))
                        closed, data = h.wait_closed(s, 20)
                self.assertTrue(closed, "the hung worker was never killed")
                self.assertNotIn(b"most recent call first", data)
                self.assertNotIn(b"logging_app.py", data)
                log = srv.wait_log(r"most recent call first")
                self.assertIn("logging_app.py", log[log.index("most recent call first"):])
                with open(path + ".1", encoding="utf-8", errors="replace") as f:
                        self.assertNotIn("most recent call first", f.read())


if __name__ == "__main__":
        h.main()
