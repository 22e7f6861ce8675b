"""Test cases shared by the worker kinds that run requests away from the loop (gthread,
gevent): bodies and answers larger than the connection's buffers pass byte for byte while
the loop does the socket I/O for the request. A test class mixes BulkCases in and defines
start_kind(args) to start its kind over an app with tests/apps/bulk_routes.py's routes."""
import hashlib
import os

import gcorn_harness as h

ASAN = "ASAN_OPTIONS" in os.environ
BOUND = 30.0


class BulkCases:

        def test_large_upload_is_byte_exact(self):
                # Larger than --buffer-request-body: the request reads it as it arrives, through
                # the loop; also chunked, one that waits for 100 Continue, and one read by lines.
                size = (2 if ASAN else 6) << 20
                body = h.pattern(size, 3)
                want = hashlib.sha256(body).hexdigest()
                lines = b"".join(b"line %d of the body\n" % i for i in range(200000 if not ASAN else 50000))
                srv = self.start_kind()

                def upload(kind):
                        c = srv.client(timeout=BOUND)
                        try:
                                if kind == "length":
                                        c.send_request("POST", "/sha?chunk=100000", body=body)
                                elif kind == "chunked":
                                        c.send(h.build_request("POST", "/sha", headers=[("Transfer-Encoding", "chunked")]))
                                        for i in range(0, len(body), 70000):
                                                part = body[i:i + 70000]
                                                c.send(b"%x\r\n%s\r\n" % (len(part), part))
                                        c.send(b"0\r\n\r\n")
                                elif kind == "lines":
                                        c.send_request("POST", "/lines", body=lines)
                                else:
                                        c.send(h.build_request("POST", "/sha", headers=[
                                                ("Content-Length", str(len(body))), ("Expect", "100-continue")]))
                                        interim = c.read_response(skip_interim=False)
                                        self.assertEqual(interim.status, 100)
                                        c.send(body)
                                return c.read_response().json()
                        finally:
                                c.close()
                got = h.in_parallel(upload, ["length", "chunked", "continue", "lines"])
                for g in got[:3]:
                        self.assertEqual(g, {"sha256": want, "length": size})
                self.assertEqual(got[3], {"sha256": hashlib.sha256(lines).hexdigest(), "lines": lines.count(b"\n")})

        def test_large_answers_are_byte_exact(self):
                n, size = (20, 65536) if ASAN else (150, 65536)
                srv = self.start_kind(args=["--buffer-response", "262144"])
                want = hashlib.sha256(b"".join(h.pattern(size, i) for i in range(n))).hexdigest()

                def fetch(path):
                        r = srv.get(path)
                        self.assertEqual(r.status, 200)
                        return hashlib.sha256(r.body).hexdigest(), len(r.body)
                big = 4 << 20
                got = h.in_parallel(fetch, ["/stream?n=%d&size=%d" % (n, size), "/write?n=%d&size=%d" % (n, size),
                                          "/big?size=%d" % big])
                self.assertEqual(got[0], (want, n * size))
                self.assertEqual(got[1], (want, n * size))
                self.assertEqual(got[2], (hashlib.sha256(h.pattern(big)).hexdigest(), big))
