"""Request bodies: Content-Length, chunked, Expect: 100-continue, --limit-request-body."""

import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402


def chunked(body, sizes, ext=False, upper=False, trailers=()):
        out = bytearray()
        i = 0
        k = 0
        while i < len(body):
                n = sizes[k % len(sizes)]
                k += 1
                part = body[i:i + n]
                i += len(part)
                size = b"%X" % len(part) if upper else b"%x" % len(part)
                if ext:
                        size += b";name=value;flag"
                out += size + b"\r\n" + part + b"\r\n"
        out += b"0\r\n"
        for name, value in trailers:
                out += name + b": " + value + b"\r\n"
        out += b"\r\n"
        return bytes(out)


class BodyTest(h.SharedServerTestCase):
        APP = "routes:app"

        def test_content_length_1mib(self):
                body = random.Random(1).randbytes(1 << 20)
                r = self.srv.get("/echo", method="POST", body=body)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header("Content-Length"), str(len(body)))
                self.assertTrue(r.body == body, "echoed body differs")

        def test_content_length_zero(self):
                r = self.srv.get("/echo", method="POST", headers=[("Content-Length", "0")])
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"")

        def test_chunked_odd_sizes(self):
                body = random.Random(2).randbytes(200003)
                for kw in ({}, {"ext": True}, {"upper": True},
                           {"trailers": [(b"X-Trailer", b"t1"), (b"X-Sum", b"0")]}):
                        with self.subTest(**{k: str(v) for k, v in kw.items()}):
                                wire = chunked(body, [1, 3, 17, 4096, 65537, 2, 999], **kw)
                                c = self.srv.client()
                                self.addCleanup(c.close)
                                c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
                                # Many small writes: the server must reassemble across segments.
                                for j in range(0, len(wire), 7919):
                                        c.send(wire[j:j + 7919])
                                r = c.read_response()
                                self.assertEqual(r.status, 200)
                                self.assertTrue(r.body == body, "echoed body differs")
                                # The connection stays usable after a chunked body.
                                c.send_request("GET", "/")
                                self.assertEqual(c.read_response().body, b"Hello, World!\n")

        def test_chunked_split_everywhere(self):
                body = b"hello chunked world"
                wire = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + chunked(body, [5, 1, 13]))
                c = self.srv.client()
                self.addCleanup(c.close)
                for b in wire:
                        c.send(bytes([b]))
                r = c.read_response()
                self.assertEqual(r.body, body)

        def test_expect_continue_when_read(self):
                c = self.srv.client()
                self.addCleanup(c.close)
                c.send(b"POST /expect?read=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                       b"Expect: 100-continue\r\n\r\n")
                # The body is held back until the server asks for it.
                v, status, reason, headers, head = c.read_head()
                self.assertEqual(status, 100, head)
                self.assertEqual(v, "HTTP/1.1")
                c.send(b"12345")
                r = c.read_response(skip_interim=False)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"read 5 bytes")

        def test_no_continue_when_not_read(self):
                c = self.srv.client()
                self.addCleanup(c.close)
                c.send(b"POST /expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                       b"Expect: 100-continue\r\n\r\n")
                r = c.read_response(skip_interim=False)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"not read")
                self.assertNotIn(b"100 Continue", r.raw_head)

        def test_expect_continue_http10_ignored(self):
                c = self.srv.client()
                self.addCleanup(c.close)
                c.send(b"POST /expect?read=1 HTTP/1.0\r\nContent-Length: 3\r\n"
                       b"Expect: 100-continue\r\n\r\nabc")
                r = c.read_response(skip_interim=False)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"read 3 bytes")

        def test_unread_body_does_not_desync(self):
                # The app ignores the body; the next request on the connection must still parse.
                c = self.srv.client()
                self.addCleanup(c.close)
                c.send_request("POST", "/", body=b"GET /echo HTTP/1.1\r\n\r\n" + b"z" * 5000)
                self.assertEqual(c.read_response().body, b"Hello, World!\n")
                c.send_request("GET", "/environ?after=1")
                r = c.read_response()
                self.assertEqual(r.json()["QUERY_STRING"], "after=1")


class LimitBodyTest(h.SharedServerTestCase):
        APP = "routes:app"
        ARGS = ["--limit-request-body", "1000"]

        def test_at_limit(self):
                r = self.srv.get("/echo", method="POST", body=b"a" * 1000)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"a" * 1000)

        def test_content_length_over_limit(self):
                r = self.srv.get("/stderr?tag=over-cl", method="POST", body=b"a" * 1001)
                self.assertEqual(r.status, 413)
                self.assertServes()
                self.assertNotIn("stderr-marker-over-cl", self.srv.log(), "the app ran")

        def test_content_length_over_limit_body_never_sent(self):
                # The 413 must not wait for a body the server will not read.
                data = self.srv.raw(b"POST /stderr?tag=over-nobody HTTP/1.1\r\nHost: x\r\n"
                                    b"Content-Length: 100000000\r\n\r\n", timeout=10)
                self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:100])
                self.assertServes()
                self.assertNotIn("stderr-marker-over-nobody", self.srv.log(), "the app ran")

        def test_chunked_over_limit(self):
                wire = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + chunked(b"c" * 1500, [500]))
                c = self.srv.client()
                self.addCleanup(c.close)
                c.send(wire)
                r = c.read_response()
                self.assertEqual(r.status, 413)
                self.assertTrue(c.at_eof(), "connection left open after an oversized body")
                self.assertServes()

        def test_chunked_under_limit(self):
                body = b"d" * 999
                wire = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                        b"Connection: close\r\n\r\n" + chunked(body, [100]))
                r = h.parse_responses(self.srv.raw(wire))
                self.assertEqual(len(r), 1)
                self.assertEqual(r[0].status, 200)
                self.assertEqual(r[0].body, body)


if __name__ == "__main__":
        h.main()
