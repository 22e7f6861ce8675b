"""HTTP/1.x connection handling and framing, checked with a raw socket client."""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

DATE_RE = r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$"
HELLO = b"Hello, World!\n"


class HttpTest(h.SharedServerTestCase):
        APP = "routes:app"
        ARGS = ["--keep-alive", "10"]

        def client(self):
                c = self.srv.client()
                self.addCleanup(c.close)
                return c

        # -- persistence ------------------------------------------------------

        def test_keepalive_many_requests(self):
                c = self.client()
                for i in range(25):
                        c.send_request("GET", "/environ?i=%d" % i)
                        r = c.read_response()
                        self.assertEqual(r.status, 200)
                        self.assertFalse(r.has_token("Connection", "close"), r)
                        self.assertEqual(r.json()["QUERY_STRING"], "i=%d" % i)

        def test_http10_closes_by_default(self):
                c = self.client()
                c.send_request("GET", "/", version="HTTP/1.0")
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, HELLO)
                self.assertTrue(c.at_eof(), "HTTP/1.0 connection left open")

        def test_http10_keepalive(self):
                c = self.client()
                for _ in range(3):
                        c.send_request("GET", "/", headers=[("Connection", "keep-alive")],
                                       version="HTTP/1.0")
                        r = c.read_response()
                        self.assertEqual(r.status, 200)
                        self.assertEqual(r.body, HELLO)
                        self.assertTrue(r.has_token("Connection", "keep-alive"), r)

        def test_connection_close_honoured_and_echoed(self):
                c = self.client()
                c.send_request("GET", "/", headers=[("Connection", "close")])
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertTrue(r.has_token("Connection", "close"), r)
                self.assertTrue(c.at_eof(), "connection left open after Connection: close")

        def test_half_close_after_request(self):
                # A client may shut down its sending side once the request is out (nc -N,
                # some health checkers); the response must still come back.
                for req in (b"GET / HTTP/1.0\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"):
                        with self.subTest(req=req):
                                data = self.srv.raw(req, shut_wr=True)
                                r = h.parse_responses(data)
                                self.assertEqual(len(r), 1, data)
                                self.assertEqual(r[0].status, 200)
                                self.assertEqual(r[0].body, HELLO)

        def test_half_close_after_pipelined_requests(self):
                data = self.srv.raw(h.build_request("GET", "/environ?p=1") + h.build_request("GET", "/"),
                                    shut_wr=True)
                r = h.parse_responses(data)
                self.assertEqual([x.status for x in r], [200, 200], data[:300])
                self.assertEqual(r[0].json()["QUERY_STRING"], "p=1")
                self.assertEqual(r[1].body, HELLO)

        def test_pipelining(self):
                c = self.client()
                data = b"".join(h.build_request("GET", "/environ?n=%d" % i) for i in range(10))
                c.send(data)
                for i in range(10):
                        r = c.read_response()
                        self.assertEqual(r.status, 200)
                        self.assertEqual(r.json()["QUERY_STRING"], "n=%d" % i)

        def test_pipelining_with_bodies(self):
                c = self.client()
                bodies = [b"first", b"", b"x" * 3000, b"last\r\n\r\nGET / HTTP/1.1\r\n\r\n"]
                c.send(b"".join(h.build_request("POST", "/echo", body=b, headers=[("Content-Length", str(len(b)))])
                                for b in bodies))
                for b in bodies:
                        r = c.read_response()
                        self.assertEqual(r.status, 200)
                        self.assertEqual(r.body, b)

        # -- response framing -------------------------------------------------

        def test_head(self):
                c = self.client()
                c.send_request("GET", "/head-test")
                g = c.read_response()
                c.send_request("HEAD", "/head-test")
                r = c.read_response(method="HEAD")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header("Content-Length"), "11")
                self.assertEqual(r.header("X-Head-Test"), "yes")
                self.assertEqual(g.header("Content-Length"), "11")
                self.assertEqual(g.body, b"head-body!!")
                # Nothing of the body may follow: the next response must parse cleanly.
                c.send_request("GET", "/")
                n = c.read_response()
                self.assertEqual(n.status, 200)
                self.assertEqual(n.body, HELLO)

        def test_head_of_chunked_route(self):
                c = self.client()
                c.send_request("HEAD", "/chunked")
                r = c.read_response(method="HEAD")
                self.assertEqual(r.status, 200)
                c.send_request("GET", "/")
                self.assertEqual(c.read_response().body, HELLO)

        def test_chunked_response_http11(self):
                c = self.client()
                c.send_request("GET", "/chunked")
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertTrue(r.chunked, r)
                self.assertIsNone(r.header("Content-Length"))
                self.assertTrue(r.complete)
                self.assertEqual(r.body, b"chunk0\nchunk1\nchunk2\nchunk3\nchunk4\nend\n")
                c.send_request("GET", "/")
                self.assertEqual(c.read_response().body, HELLO)

        def test_no_chunking_http10(self):
                data = self.srv.raw(b"GET /chunked HTTP/1.0\r\n\r\n")
                head, _, body = data.partition(b"\r\n\r\n")
                self.assertTrue(head.startswith(b"HTTP/1."), data)
                self.assertNotIn(b"transfer-encoding", head.lower())
                self.assertEqual(body, b"chunk0\nchunk1\nchunk2\nchunk3\nchunk4\nend\n")

        def test_no_body_on_204_304(self):
                c = self.client()
                for code in (204, 304):
                        c.send_request("GET", "/status?code=%d" % code)
                        r = c.read_response()
                        self.assertEqual(r.status, code)
                        self.assertIsNone(r.header("Transfer-Encoding"), r)
                        self.assertIn(r.header("Content-Length"), (None, "0"), r)
                        self.assertEqual(r.header("X-Status"), str(code))
                # The connection is still in sync: nothing was sent after those heads.
                c.send_request("GET", "/")
                n = c.read_response()
                self.assertEqual(n.status, 200)
                self.assertEqual(n.body, HELLO)

        def test_custom_status(self):
                r = self.srv.get("/status?code=418")
                self.assertEqual(r.status, 418)
                self.assertEqual(r.reason, "Custom")
                self.assertEqual(r.body, b"status 418")

        def test_date_and_server(self):
                r = self.srv.get("/")
                self.assertEqual(len(r.header_all("Date")), 1, r)
                self.assertRegex(r.header("Date"), DATE_RE)
                self.assertEqual(len(r.header_all("Server")), 1, r)
                self.assertTrue(r.header("Server"))
                self.assertEqual(r.version, "HTTP/1.1")

        def test_upgrade_served_as_ordinary(self):
                c = self.client()
                c.send_request("GET", "/", headers=[("Connection", "Upgrade"), ("Upgrade", "websocket")])
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, HELLO)

        # -- request head to environ -----------------------------------------

        def test_underscore_header_dropped(self):
                r = self.srv.get("/environ", headers=[("X_Foo", "underscore"), ("X-Foo", "dash")])
                env = r.json()
                self.assertEqual(env.get("HTTP_X_FOO"), "dash")
                r = self.srv.get("/environ", headers=[("X_Only", "underscore")])
                self.assertNotIn("HTTP_X_ONLY", r.json())

        def test_repeated_headers_joined(self):
                r = self.srv.get("/environ", headers=[("X-Rep", "a"), ("X-Other", "o"), ("X-Rep", "b c")])
                env = r.json()
                self.assertEqual(env["HTTP_X_REP"], "a,b c")
                self.assertEqual(env["HTTP_X_OTHER"], "o")

        def test_path_query_raw_uri(self):
                target = "/environ/a%20b%2Fc/caf%C3%A9?x=%20y&z=1"
                env = self.srv.get(target).json()
                self.assertEqual(env["PATH_INFO"], "/environ/a b/c/caf\u00c3\u00a9")
                self.assertEqual(env["RAW_URI"], target)
                self.assertEqual(env["QUERY_STRING"], "x=%20y&z=1")

        def test_empty_query(self):
                env = self.srv.get("/environ").json()
                self.assertEqual(env["QUERY_STRING"], "")
                self.assertEqual(env["RAW_URI"], "/environ")

        def test_absolute_form_target(self):
                env = self.srv.get("http://example.com/environ/abs?q=1",
                                   headers=[("Host", "example.com")]).json()
                self.assertEqual(env["PATH_INFO"], "/environ/abs")
                self.assertEqual(env["QUERY_STRING"], "q=1")

        def test_head_line_parsing_is_exact(self):
                # The raw bytes on the wire: status line then CRLF-separated fields.
                data = self.srv.raw(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                self.assertTrue(re.match(rb"HTTP/1\.1 200 OK\r\n", data), data[:100])
                self.assertTrue(data.endswith(b"\r\n\r\n" + HELLO), data)


class RequestRulesTest(h.SharedServerTestCase):
        """RFC 9112's rules for the request head and chunk lines, on the real server."""
        APP = "routes:app"
        ARGS = ["--keep-alive", "10"]

        def answer(self, raw):
                """Sends raw bytes on a new connection; returns (status, body, closed)."""
                with self.srv.connect() as s:
                        s.sendall(raw)
                        closed, data = h.wait_closed(s, 3)
                m = re.match(rb"HTTP/1\.[01] (\d{3}) ", data)
                self.assertTrue(m, "no status line: %r" % data[:200])
                return int(m.group(1)), h.parse_responses(data)[0].body, closed

        def reject(self, raw, status):
                got, body, closed = self.answer(raw)
                self.assertEqual(got, status, raw)
                self.assertTrue(closed, "connection left open after %d: %r" % (status, raw))
                self.assertServes()
                return body

        def test_host_required_on_http11(self):
                # RFC 9112 3.2: no Host, two, or one that is not host[:port] is a 400.
                self.reject(b"GET / HTTP/1.1\r\n\r\n", 400)
                self.reject(b"GET http://example.com/ HTTP/1.1\r\n\r\n", 400)
                self.reject(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400)
                for host in (b"a b", b"a/b", b"a@b", b"a:80x", b"[::1", b"[::g]:80", b"a%zz"):
                        with self.subTest(host=host):
                                self.reject(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n", 400)
                # the rest of a pipeline is not served either
                c = self.client()
                c.send(h.build_request("GET", "/") + b"GET / HTTP/1.1\r\n\r\n" + h.build_request("GET", "/"))
                self.assertEqual([r.status for r in c.read_all_responses()], [200, 400])

        def test_host_forms_served(self):
                for host in (b"example.com", b"0.0.0.0=5000", b"127.0.0.1:8000", b"[::1]:8080", b"[v1.x]", b""):
                        with self.subTest(host=host):
                                status, body, _ = self.answer(b"GET / HTTP/1.1\r\nHost: " + host +
                                                              b"\r\nConnection: close\r\n\r\n")
                                self.assertEqual((status, body), (200, HELLO))
                # HTTP/1.0 had no Host
                status, body, _ = self.answer(b"GET / HTTP/1.0\r\n\r\n")
                self.assertEqual((status, body), (200, HELLO))

        def test_undecoded_transfer_coding_501(self):
                # RFC 9112 6.1: gcorn decodes chunked only; still-gzipped bytes never reach the app.
                for te in (b"gzip, chunked", b"deflate, chunked", b"x-gzip, chunked", b"br, chunked"):
                        with self.subTest(te=te):
                                body = self.reject(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + te +
                                                   b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 501)
                                self.assertNotIn(b"hello", body)
                self.reject(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 501)

        def test_transfer_coding_without_chunked_last_400(self):
                # RFC 9112 6.3: the length cannot be known; neither Content-Length nor nothing frames it.
                for te in (b"gzip", b"identity", b"chunked, gzip"):
                        with self.subTest(te=te):
                                body = self.reject(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + te +
                                                   b"\r\nContent-Length: 5\r\n\r\nhello", 400)
                                self.assertNotIn(b"hello", body)
                                self.reject(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + te +
                                            b"\r\n\r\nhello", 400)
                # identity before chunked is no coding at all
                c = self.client()
                c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\n\r\n"
                       b"5\r\nhello\r\n0\r\n\r\n")
                r = c.read_response()
                self.assertEqual((r.status, r.body), (200, b"hello"))

        def test_chunk_size_bws_before_extension(self):
                # RFC 9112 7.1.1 (and Gunicorn): blanks may precede a chunk extension.
                c = self.client()
                for size_line in (b"5 ;ext", b"5\t;ext=1", b"5 \t ;a;b=\"c d\""):
                        with self.subTest(size_line=size_line):
                                c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                       size_line + b"\r\nhello\r\n0 ;last\r\n\r\n")
                                r = c.read_response()
                                self.assertEqual((r.status, r.body), (200, b"hello"))
                # but not with no extension after them, as Gunicorn
                with self.srv.connect() as s:
                        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  b"5 \r\nhello\r\n0\r\n\r\n")
                        closed, data = h.wait_closed(s, 10)
                self.assertTrue(closed)
                self.assertFalse(data.startswith(b"HTTP/1.1 2"), data[:200])
                self.assertNotIn(b"hello", data)
                self.assertServes()

        def client(self):
                c = self.srv.client()
                self.addCleanup(c.close)
                return c


class NoKeepAliveTest(h.SharedServerTestCase):
        """--keep-alive 0: every response closes its connection, as Gunicorn's sync worker."""
        APP = "routes:app"
        ARGS = ["--keep-alive", "0"]

        def test_http11_answer_closes(self):
                c = self.srv.client()
                self.addCleanup(c.close)
                c.send_request("GET", "/")
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, HELLO)
                self.assertTrue(r.has_token("Connection", "close"), r)
                self.assertTrue(c.at_eof(), "the connection stayed open")


if __name__ == "__main__":
        h.main()
