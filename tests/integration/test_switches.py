"""Gunicorn's request-parsing switches (strip_header_spaces, permit_obsolete_folding,
casefold_http_method, permit_unconventional_http_method, header_map, forwarder_headers) and
environ["gunicorn.socket"], through the real binary."""

import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

APP = "switches_app:app"


def status_of(raw):
        line = raw.split(b"\r\n", 1)[0]
        parts = line.split()
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def env_of(srv, head):
        """Sends a raw head (no trailing blank line) and returns the app's environ dump."""
        raw = srv.raw(head + b"Connection: close\r\n\r\n")
        rs = h.parse_responses(raw)
        if not rs or rs[0].status != 200:
                raise AssertionError("not 200: %r" % raw[:200])
        return rs[0].json()


class DefaultsTest(h.SharedServerTestCase):
        """Gunicorn's defaults: each of these requests is refused."""
        APP = APP

        def assert400(self, head):
                raw = self.srv.raw(head + b"Connection: close\r\n\r\n")
                self.assertEqual(status_of(raw), 400, raw[:200])

        def test_space_before_colon(self):
                self.assert400(b"GET / HTTP/1.1\r\nHost: h\r\nX-A : 1\r\n")

        def test_obsolete_folding(self):
                self.assert400(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  2\r\n")

        def test_methods(self):
                for m in (b"get", b"GeT", b"GO", b"G#T", b"ABCDEFGHIJKLMNOPQRSTU"):
                        self.assert400(m + b" / HTTP/1.1\r\nHost: h\r\n")

        def test_underscore_dropped(self):
                env = env_of(self.srv, b"GET / HTTP/1.1\r\nHost: h\r\nX_Foo: u\r\nX-Foo: d\r\n")
                self.assertEqual(env["HTTP_X_FOO"], "d")

        def test_forwarder_headers_from_loopback(self):
                # 127.0.0.1 is in Gunicorn's default forwarded_allow_ips; SCRIPT_NAME is in
                # the default forwarder_headers
                env = env_of(self.srv, b"GET /app/x HTTP/1.1\r\nHost: h\r\nScript_Name: /app\r\nPath_Info: /p\r\n")
                self.assertEqual(env["SCRIPT_NAME"], "/app")
                self.assertEqual(env["PATH_INFO"], "/x")
                self.assertEqual(env["HTTP_SCRIPT_NAME"], "/app")
                self.assertEqual(env["HTTP_PATH_INFO"], "/p")
                # a path outside it is Gunicorn's ConfigurationProblem
                raw = self.srv.raw(b"GET /other HTTP/1.1\r\nHost: h\r\nScript_Name: /app\r\nConnection: close\r\n\r\n")
                self.assertEqual(status_of(raw), 500, raw[:200])
                self.assertServes()

        def assertServes(self):
                env = env_of(self.srv, b"GET / HTTP/1.1\r\nHost: h\r\n")
                self.assertEqual(env["PATH_INFO"], "/")


class SwitchesOnTest(h.SharedServerTestCase):
        APP = APP
        ARGS = ["--strip-header-spaces", "--permit-obsolete-folding", "--permit-unconventional-http-method",
                "--header-map", "dangerous"]

        def test_space_before_colon(self):
                env = env_of(self.srv, b"GET / HTTP/1.1\r\nHost: h\r\nX-A \t: 1\r\n")
                self.assertEqual(env["HTTP_X_A"], "1")

        def test_obsolete_folding(self):
                env = env_of(self.srv, b"GET / HTTP/1.1\r\nX-Long: one \r\n  two\r\n\tthree\r\nHost: h\r\n")
                self.assertEqual(env["HTTP_X_LONG"], "one two three")
                self.assertEqual(env["HTTP_HOST"], "h")

        def test_unconventional_methods(self):
                for m in ("get", "GO", "G#T", "ABCDEFGHIJKLMNOPQRSTU", "-blargh"):
                        env = env_of(self.srv, m.encode() + b" / HTTP/1.1\r\nHost: h\r\n")
                        self.assertEqual(env["REQUEST_METHOD"], m)

        def test_header_map_dangerous(self):
                env = env_of(self.srv, b"GET / HTTP/1.1\r\nHost: h\r\nX-Foo: d\r\nX_Foo: u\r\n")
                self.assertEqual(env["HTTP_X_FOO"], "d,u")


class CasefoldTest(h.SharedServerTestCase):
        APP = APP
        ARGS = ["--casefold-http-method", "--permit-unconventional-http-method"]

        def test_casefold(self):
                env = env_of(self.srv, b"-blargh / HTTP/1.1\r\nHost: h\r\n")
                self.assertEqual(env["REQUEST_METHOD"], "-BLARGH")
                # a lower-case head is a HEAD: no body
                raw = self.srv.raw(b"head / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
                self.assertEqual(status_of(raw), 200, raw)
                self.assertTrue(raw.endswith(b"\r\n\r\n"), raw)


class CasefoldAloneTest(h.SharedServerTestCase):
        """casefold_http_method alone lets no lower-case method in, as in Gunicorn."""
        APP = APP
        ARGS = ["--casefold-http-method"]

        def test_lowercase_refused(self):
                raw = self.srv.raw(b"get / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
                self.assertEqual(status_of(raw), 400, raw[:200])


class HeaderMapRefuseTest(h.SharedServerTestCase):
        APP = APP
        ARGS = ["--header-map", "REFUSE ", "--forwarder-headers", "X_FORWARDED_THING, SCRIPT_NAME"]

        def test_refused(self):
                raw = self.srv.raw(b"GET / HTTP/1.1\r\nHost: h\r\nX_Foo: u\r\nConnection: close\r\n\r\n")
                self.assertEqual(status_of(raw), 400, raw[:200])
                # PATH_INFO is no longer in the list
                raw = self.srv.raw(b"GET / HTTP/1.1\r\nHost: h\r\nPath_Info: /p\r\nConnection: close\r\n\r\n")
                self.assertEqual(status_of(raw), 400, raw[:200])

        def test_forwarder_header_kept(self):
                env = env_of(self.srv, b"GET / HTTP/1.1\r\nHost: h\r\nX_Forwarded_Thing: v\r\n")
                self.assertEqual(env["HTTP_X_FORWARDED_THING"], "v")


class BadValuesTest(unittest.TestCase):
        def run_bad(self, args):
                p = subprocess.run([h.GCORN] + args + [APP], stdin=subprocess.DEVNULL, capture_output=True,
                                   timeout=15, cwd=h.APPS)
                self.assertNotEqual(p.returncode, 0)
                err = [ln for ln in p.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
                self.assertEqual(len(err), 1, err)
                return err[0]

        def test_header_map(self):
                self.assertIn("drop, refuse, dangerous", self.run_bad(["--header-map", "keep"]))

        def test_forwarder_headers(self):
                # Gunicorn compares upper-cased names: these would never match
                for v in ("script_name", "X-FORWARDED-FOR", "SCRIPT_NAME,bad name"):
                        err = self.run_bad(["--forwarder-headers", v])
                        self.assertIn("forwarder", err)
                        self.assertIn("such as SCRIPT_NAME", err)

        def test_config_file(self):
                d = h.tempdir(self, "gcorn-sw-")
                conf = os.path.join(d, "conf.py")
                with open(conf, "w") as f:
                        f.write("header_map = 'nope'\n")
                err = self.run_bad(["-c", conf])
                self.assertIn("header_map", err)
                self.assertIn("drop, refuse, dangerous", err)


class GunicornSocketTest(h.SharedServerTestCase):
        APP = APP
        ARGS = ["-w", "1", "--keep-alive", "10", "--timeout", "2"]

        def test_socket_is_the_connection(self):
                c = self.srv.client()
                self.addCleanup(c.close)
                for _ in range(3):
                        c.send_request("GET", "/sock-info")
                        r = c.read_response()
                        self.assertEqual(r.status, 200)
                        info = r.json()
                        self.assertTrue(info["is_socket"])
                        self.assertTrue(info["fileno_ok"])
                        self.assertTrue(info["same"])
                        self.assertTrue(info["blocking"])
                        self.assertIsNone(info["timeout"])
                        self.assertEqual(tuple(info["peer"]), c.sock.getsockname()[:2])
                # kept alive: touching it is no answer of the app's
                self.assertFalse(r.has_token("Connection", "close"), r)
                # no descriptor left behind, and the connection's is non-blocking again
                c.send_request("GET", "/sockets")
                before = c.read_response().json()
                for _ in range(5):
                        c.send_request("GET", "/sock-info")
                        self.assertEqual(c.read_response().status, 200)
                c.send_request("GET", "/sockets")
                after = c.read_response().json()
                self.assertEqual(before["fds"], after["fds"])
                self.assertTrue(all(after["fds"].values()), after)

        def test_own_io_keeps_its_timeout(self):
                # The app made the socket blocking (as Gunicorn hands it over); gcorn's own
                # reads of the body must still give up after --timeout rather than hang the
                # worker until the watchdog kills it.
                c = self.srv.client()
                self.addCleanup(c.close)
                c.send(b"POST /touch-then-read HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"5\r\nhello\r\n")
                r = c.read_response()
                self.assertEqual(r.status, 408, r)
                self.assertEqual(self.srv.worker_pids(), self.workers)
                c2 = self.srv.client()
                self.addCleanup(c2.close)
                c2.send(b"POST /touch-then-read HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"5\r\nhello\r\n0\r\n\r\n")
                r = c2.read_response()
                self.assertEqual(r.json()["len"], 5)

        def setUp(self):
                self.workers = self.srv.worker_pids()

        def test_untouched(self):
                env = env_of(self.srv, b"GET / HTTP/1.1\r\nHost: h\r\n")
                self.assertEqual(env["_socket_type"], "GcornSocket")

        def test_app_answers_itself(self):
                for path in ("/hijack", "/hijack-makefile"):
                        c = self.srv.client()
                        self.addCleanup(c.close)
                        # a second request queued behind: gcorn must not answer it either
                        c.send(("GET %s HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n" % path).encode())
                        raw = h.recv_all(c.sock)
                        self.assertEqual(raw, b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-Hijacked: yes\r\n"
                                         b"Connection: close\r\n\r\nhijack", path)
                env = env_of(self.srv, b"GET / HTTP/1.1\r\nHost: h\r\n")
                self.assertEqual(env["PATH_INFO"], "/")


if __name__ == "__main__":
        h.main()
