"""Every server-side MUST and MUST NOT of RFC 9112 (HTTP/1.1), and of the parts of RFC 9110
it points to for messages, each with a test that talks raw bytes to the real binary on
127.0.0.1 and checks the exact answer. Tests are grouped by section; each cites the
requirement. A few SHOULDs gcorn also keeps are checked where the same bytes show them.

Where gcorn follows Gunicorn against the RFC, the test says so and why.

Not listed, because they bind clients or intermediaries only (a server never sends a request
or forwards a message): 2.2 (a client MUST NOT send whitespace before the first header, a
proxy's handling of bare CR when forwarding), 3.2 (a client MUST send Host, a proxy MUST
replace the Host it forwards), 3.2.2 (a client MUST send absolute-form to a proxy), 5.1 (a
proxy MUST remove whitespace before a colon in responses), 5.2 (a proxy or gateway with
obs-fold in a response, a user agent with obs-fold), 6.1 (a client MUST NOT send
Transfer-Encoding unless it knows the server does HTTP/1.1; an intermediary's codings), 6.3
(a user agent's response framing; a proxy's 502 for bad framing), 7.4 (TE: a client's
header), 9.1-9.4 (how clients open, retry and limit connections), 9.3.1 (a client MUST NOT
retry a non-idempotent request automatically), 9.8 and 9.7 (TLS: gcorn serves plain HTTP,
TLS ends at the proxy in front), 10 (message/http is a media type for applications),
9.2 (a client MUST keep its outstanding requests in order), 9.5 (timeouts: MAY and SHOULD
only), RFC 9110 7.6.1 (intermediaries MUST remove connection options) and 7.6.3 (Via).
Section 3.3 has no requirement on a server that, like gcorn, leaves reconstructing the target
URI to the app (from the environ's scheme, host and path).
"""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

DATE_RE = r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$"
HOST = b"Host: t.test\r\n"


class Rfc9112Case(h.SharedServerTestCase):
        APP = "rfc9112_app:app"
        ARGS = ["--keep-alive", "10"]

        def client(self):
                c = self.srv.client()
                self.addCleanup(c.close)
                return c

        def exchange(self, data, method="GET"):
                """Sends data on a new connection; returns (first response, client)."""
                c = self.client()
                c.send(data)
                return c.read_response(method=method), c

        def seen(self, data):
                """What the app saw for one request (the response must be 200)."""
                r, _ = self.exchange(data)
                self.assertEqual(r.status, 200, r)
                return r.json()

        def refused(self, data, status=400):
                """The request gets status, with Connection: close, and nothing after it: the
                connection closes (RFC 9112 9.6). The worker keeps serving."""
                raw = self.srv.raw(data)
                rs = h.parse_responses(raw)
                self.assertEqual([r.status for r in rs], [status], raw[:400])
                self.assertTrue(rs[0].has_token("Connection", "close"), rs[0])
                self.assertServes()
                return rs[0]

        def assertServes(self):
                """A request on a new connection is answered (the worker is alive)."""
                r = self.srv.get("/alive")
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["path"], "/alive")

        def closes(self, c):
                self.assertTrue(c.at_eof(5.0), "connection left open")


class MessageFormat(Rfc9112Case):
        """RFC 9112 2: message format."""

        def test_2_2_octets_superset_of_ascii(self):
                # RFC 9112 2.2: "A recipient MUST parse an HTTP message as a sequence of octets
                # in an encoding that is a superset of US-ASCII." Octets above 0x7f reach the
                # app unchanged (as latin-1, PEP 3333), in the target and in field values.
                s = self.seen(b"GET /caf\xc3\xa9?q=\xff HTTP/1.1\r\n" + HOST + b"X-V: \xe9t\xe9\r\n\r\n")
                self.assertEqual(s["path"], "/caf\xc3\xa9")
                self.assertEqual(s["query"], "q=\xff")
                self.assertEqual(s["headers"]["HTTP_X_V"], "\xe9t\xe9")

        def test_2_2_bare_cr_in_field_is_invalid(self):
                # RFC 9112 2.2: "A recipient of such a bare CR MUST consider that element to
                # be invalid or replace each bare CR with SP before processing the element."
                # gcorn rejects it.
                self.refused(b"GET / HTTP/1.1\r\n" + HOST + b"X-A: one\rtwo\r\n\r\n")

        def test_2_2_bare_cr_in_request_line_is_invalid(self):
                # RFC 9112 2.2, as above, for the request line.
                self.refused(b"GET /a\rb HTTP/1.1\r\n" + HOST + b"\r\n")

        def test_2_2_whitespace_before_first_field(self):
                # RFC 9112 2.2: "A recipient that receives whitespace between the start-line
                # and the first header field MUST either reject the message as invalid or
                # consume each whitespace-preceded line without further processing of it."
                # gcorn rejects it (a line starting with whitespace there is not a fold).
                self.refused(b"GET / HTTP/1.1\r\n X-Evil: 1\r\n" + HOST + b"\r\n")

        def test_2_2_response_has_no_whitespace_before_first_field(self):
                # RFC 9112 2.2: "A sender MUST NOT send whitespace between the start-line and
                # the first header field", and no bare CR: gcorn's own heads.
                r, _ = self.exchange(b"GET /x HTTP/1.1\r\n" + HOST + b"\r\n")
                lines = r.raw_head.split(b"\r\n")
                self.assertNotIn(lines[1][:1], (b" ", b"\t"), r.raw_head)
                self.assertNotIn(b"\r", r.raw_head.replace(b"\r\n", b""))

        def test_2_2_empty_line_before_request_line(self):
                # RFC 9112 2.2: "a server that is expecting to receive and parse a request-line
                # SHOULD ignore at least one empty line (CRLF) received prior to the
                # request-line."
                s = self.seen(b"\r\nGET /after-crlf HTTP/1.1\r\n" + HOST + b"\r\n")
                self.assertEqual(s["path"], "/after-crlf")

        def test_2_2_bare_lf_not_a_line_end(self):
                # RFC 9112 2.2: "a recipient MAY recognize a single LF as a line terminator".
                # gcorn, like Gunicorn, does not: a line ended by a lone LF is invalid, so a
                # front end that splits on LF and gcorn never see different messages.
                self.refused(b"GET / HTTP/1.1\n" + HOST + b"\n")

        def test_2_3_version_is_case_sensitive(self):
                # RFC 9112 2.3: "HTTP-version is case-sensitive": "http/1.1" is no version.
                self.refused(b"GET / http/1.1\r\n" + HOST + b"\r\n")

        def test_2_3_major_version_not_supported(self):
                # RFC 9112 2.3 and RFC 9110 15.6.6: a major version the server does not
                # support gets 505 (HTTP Version Not Supported).
                for v in (b"HTTP/2.0", b"HTTP/3.0", b"HTTP/0.9"):
                        with self.subTest(v=v):
                                self.refused(b"GET / " + v + b"\r\n" + HOST + b"\r\n", status=505)

        def test_2_3_response_version_is_one_gcorn_conforms_to(self):
                # RFC 9110 2.5: "A server MUST NOT send a version to which it is not
                # conformant" and SHOULD answer with the highest minor version it conforms to
                # within the request's major version: 1.1 for 1.1 and above, 1.0 for 1.0.
                for v, want in ((b"HTTP/1.1", "HTTP/1.1"), (b"HTTP/1.0", "HTTP/1.0"), (b"HTTP/1.2", "HTTP/1.1"),
                                (b"HTTP/1.9", "HTTP/1.1")):
                        with self.subTest(v=v):
                                r, _ = self.exchange(b"GET /x " + v + b"\r\n" + HOST + b"Connection: close\r\n\r\n")
                                self.assertEqual(r.status, 200, r)
                                self.assertEqual(r.version, want, r.raw_head)


class RequestLine(Rfc9112Case):
        """RFC 9112 3: the request line and target."""

        def test_3_method_is_a_token(self):
                # RFC 9112 3.1: method = token (RFC 9110 9.1), so never empty.
                self.refused(b" / HTTP/1.1\r\n" + HOST + b"\r\n")
                self.refused(b"GE(T / HTTP/1.1\r\n" + HOST + b"\r\n")

        def test_3_1_method_is_case_sensitive(self):
                # RFC 9112 3.1: "The request method is case-sensitive", so "get" is a method
                # of its own, not GET. gcorn follows Gunicorn against the RFC's letter here:
                # a method with lower-case letters is refused with 400 unless
                # --permit-unconventional-http-method (no registered method has them, and a
                # proxy that folds case would smuggle a different method past the app).
                self.refused(b"get / HTTP/1.1\r\n" + HOST + b"\r\n")

        def test_3_single_spaces(self):
                # RFC 9112 3: request-line = method SP request-target SP HTTP-version; lenient
                # whitespace parsing "can result in request smuggling" and gcorn does none.
                for line in (b"GET  / HTTP/1.1", b"GET / HTTP/1.1 ", b"GET\t/ HTTP/1.1", b"GET /\tHTTP/1.1"):
                        with self.subTest(line=line):
                                self.refused(line + b"\r\n" + HOST + b"\r\n")

        def test_3_no_whitespace_in_target(self):
                # RFC 9112 3.2: "No whitespace is allowed in the request-target."
                self.refused(b"GET /a b HTTP/1.1\r\n" + HOST + b"\r\n")

        def test_3_target_too_long_414(self):
                # RFC 9112 3: "A server that receives a request-target longer than any URI it
                # wishes to parse MUST respond with a 414 (URI Too Long) status code."
                # (Gunicorn's limit_request_line, 4094 by default, is below the RECOMMENDED
                # 8000 octets; gcorn keeps Gunicorn's default.)
                self.refused(b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n" + HOST + b"\r\n", status=414)

        def test_3_2_host_missing_400(self):
                # RFC 9112 3.2: "A server MUST respond with a 400 (Bad Request) status code to
                # any HTTP/1.1 request message that lacks a Host header field" (Gunicorn
                # serves it; gcorn keeps the MUST).
                self.refused(b"GET / HTTP/1.1\r\n\r\n")

        def test_3_2_host_twice_400(self):
                # RFC 9112 3.2: "... and to any request message that contains more than one
                # Host header field line".
                self.refused(b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n")

        def test_3_2_host_invalid_400(self):
                # RFC 9112 3.2: "... or a Host header field with an invalid field value."
                self.refused(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n")

        def test_3_2_http10_without_host_served(self):
                # RFC 9112 3.2 asks Host of HTTP/1.1 requests only.
                s = self.seen(b"GET /ten HTTP/1.0\r\n\r\n")
                self.assertEqual(s["path"], "/ten")

        def test_3_2_2_absolute_form_accepted(self):
                # RFC 9112 3.2.2: "A server MUST accept the absolute-form in requests".
                s = self.seen(b"GET http://t.test/abs?x=1 HTTP/1.1\r\n" + HOST + b"\r\n")
                self.assertEqual((s["path"], s["query"]), ("/abs", "x=1"))
                self.assertEqual(s["raw_uri"], "http://t.test/abs?x=1")

        def test_3_2_2_absolute_form_host(self):
                # RFC 9112 3.2.2: "When an origin server receives a request with an
                # absolute-form of request-target, the origin server MUST ignore the received
                # Host header field (if any) and instead use the host information of the
                # request-target." gcorn follows Gunicorn: the environ carries the Host field
                # as received (HTTP_HOST) and the raw target (RAW_URI), and the app picks;
                # rewriting HTTP_HOST would hide what the client sent from apps and logs that
                # already read it as Gunicorn gives it.
                s = self.seen(b"GET http://a.test/p HTTP/1.1\r\nHost: b.test\r\n\r\n")
                self.assertEqual(s["headers"]["HTTP_HOST"], "b.test")
                self.assertEqual(s["raw_uri"], "http://a.test/p")
                self.assertEqual(s["path"], "/p")

        def test_3_2_3_authority_form_for_connect(self):
                # RFC 9112 3.2.3: authority-form is only used for CONNECT.
                s = self.seen(b"CONNECT t.test:443 HTTP/1.1\r\nHost: t.test:443\r\n\r\n")
                self.assertEqual(s["method"], "CONNECT")
                self.refused(b"GET t.test:443 HTTP/1.1\r\n" + HOST + b"\r\n")

        def test_3_2_4_asterisk_form_for_options(self):
                # RFC 9112 3.2.4: asterisk-form is only used for a server-wide OPTIONS.
                s = self.seen(b"OPTIONS * HTTP/1.1\r\n" + HOST + b"\r\n")
                self.assertEqual(s["method"], "OPTIONS")
                self.refused(b"GET * HTTP/1.1\r\n" + HOST + b"\r\n")

        def test_3_2_relative_target_refused(self):
                # RFC 9112 3.2: the four forms; "foo/bar" is none of them.
                self.refused(b"GET foo/bar HTTP/1.1\r\n" + HOST + b"\r\n")


class StatusLine(Rfc9112Case):
        """RFC 9112 4: the status line gcorn sends."""

        def test_4_space_after_code_without_reason(self):
                # RFC 9112 4: "A server MUST send the space that separates the status-code
                # from the reason-phrase even when the reason-phrase is absent".
                r, c = self.exchange(b"GET /status?code=200&cl=1 HTTP/1.1\r\n" + HOST + b"\r\n")
                self.assertEqual(r.status, 200)
                self.assertTrue(r.raw_head.startswith(b"HTTP/1.1 200 \r\n"), r.raw_head)

        def test_4_status_code_three_digits(self):
                # RFC 9112 4: status-code = 3DIGIT. A status the app gives that is not one
                # never reaches the wire: gcorn answers 500 instead.
                for code in ("20", "2000", "abc"):
                        with self.subTest(code=code):
                                r, _ = self.exchange(b"GET /status?code=" + code.encode() + b"&reason=OK HTTP/1.1\r\n" + HOST + b"\r\n")
                                self.assertEqual(r.status, 500, r)


class Fields(Rfc9112Case):
        """RFC 9112 5 and RFC 9110 5: header fields."""

        def test_5_1_whitespace_before_colon_400(self):
                # RFC 9112 5.1: "A server MUST reject, with a response status code of 400 (Bad
                # Request), any received request message that contains whitespace between a
                # header field name and colon."
                for line in (b"Content-Length : 3", b"X-A\t: 1"):
                        with self.subTest(line=line):
                                self.refused(b"POST / HTTP/1.1\r\n" + HOST + line + b"\r\n\r\nabc")

        def test_5_1_ows_around_value_excluded(self):
                # RFC 9112 5.1: OWS before and after the field value is not part of it.
                s = self.seen(b"GET / HTTP/1.1\r\n" + HOST + b"X-A: \t v a \t\r\n\r\n")
                self.assertEqual(s["headers"]["HTTP_X_A"], "v a")

        def test_5_2_obs_fold_rejected(self):
                # RFC 9112 5.2: "A server that receives an obs-fold in a request message ...
                # MUST either reject the message by sending a 400 (Bad Request) ... or replace
                # each received obs-fold with one or more SP octets". gcorn rejects it, as
                # Gunicorn does (--permit-obsolete-folding replaces it: see FoldingAllowed).
                self.refused(b"GET / HTTP/1.1\r\n" + HOST + b"X-A: one\r\n two\r\n\r\n")

        def test_5_2_no_folding_in_responses(self):
                # RFC 9112 5.2: "A sender MUST NOT generate a message that includes line
                # folding": an app value with CRLF SP is refused with 500, never sent.
                r, _ = self.exchange(b"GET /status?code=200&h=X-A:one%0D%0A%20two HTTP/1.1\r\n" + HOST + b"\r\n")
                self.assertEqual(r.status, 500, r)
                self.assertIsNone(r.header("X-A"))

        def test_9110_5_5_cr_lf_nul_in_value(self):
                # RFC 9110 5.5: "a recipient of CR, LF, or NUL within a field value MUST
                # either reject the message or replace each of those characters with SP".
                # gcorn rejects them (a lone LF would otherwise end the line for some parsers).
                for v in (b"a\x00b", b"a\nX-B: b"):
                        with self.subTest(v=v):
                                self.refused(b"GET / HTTP/1.1\r\n" + HOST + b"X-A: " + v + b"\r\n\r\n")

        def test_9110_5_5_other_ctl_rejected(self):
                # RFC 9110 5.5: other CTLs are invalid too ("recipients MAY retain such
                # characters"): gcorn rejects them as Gunicorn does.
                self.refused(b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\x07b\r\n\r\n")

        def test_9110_5_1_field_name_is_token(self):
                # RFC 9110 5.1: field-name = token.
                for name in (b"X A", b"X\x00A", b"X(A)", b"", b"\xc3\x9f"):
                        with self.subTest(name=name):
                                self.refused(b"GET / HTTP/1.1\r\n" + HOST + name + b": v\r\n\r\n")

        def test_9110_5_1_names_case_insensitive(self):
                # RFC 9110 5.1: "Field names are case-insensitive".
                s = self.seen(b"POST / HTTP/1.1\r\nhOsT: t.test\r\ncONTENT-lENGTH: 2\r\n\r\nok")
                self.assertEqual(s["body"], "ok")
                self.assertEqual(s["headers"]["HTTP_HOST"], "t.test")

        def test_9110_5_3_order_kept_when_combined(self):
                # RFC 9110 5.3: a recipient MAY combine field lines of one name, "in order,
                # separated by a comma"; order is significant.
                s = self.seen(b"GET / HTTP/1.1\r\n" + HOST + b"X-L: 1\r\nX-M: m\r\nX-L: 2\r\n\r\n")
                self.assertEqual(s["headers"]["HTTP_X_L"], "1,2")

        def test_9110_5_4_fields_too_large(self):
                # RFC 9110 5.4: "A server that receives a request header field line, field
                # value, or set of fields larger than it wishes to process MUST respond with
                # an appropriate 4xx (Client Error) status code." One line over
                # --limit-request-field_size (8190) and too many fields (over 100) get 431,
                # as in Gunicorn.
                self.refused(b"GET / HTTP/1.1\r\n" + HOST + b"X-A: " + b"v" * 9000 + b"\r\n\r\n", status=431)
                many = b"".join(b"X-%d: v\r\n" % i for i in range(120))
                self.refused(b"GET / HTTP/1.1\r\n" + HOST + many + b"\r\n", status=431)


class FoldingAllowed(h.SharedServerTestCase):
        """RFC 9112 5.2 with --permit-obsolete-folding: the other choice the RFC allows."""
        APP = "rfc9112_app:app"
        ARGS = ["--permit-obsolete-folding"]

        def test_5_2_obs_fold_replaced_by_sp(self):
                # RFC 9112 5.2: "... or replace each received obs-fold with one or more SP
                # octets prior to interpreting the field value".
                c = self.srv.client()
                self.addCleanup(c.close)
                c.send(b"GET / HTTP/1.1\r\n" + HOST + b"X-A: one\r\n \t two\r\n\r\n")
                r = c.read_response()
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["headers"]["HTTP_X_A"], "one two")


class UnconventionalMethods(h.SharedServerTestCase):
        """RFC 9112 3.1 with --permit-unconventional-http-method."""
        APP = "rfc9112_app:app"
        ARGS = ["--permit-unconventional-http-method"]

        def test_3_1_method_never_empty(self):
                # RFC 9112 3.1 and RFC 9110 9.1: method = token, at least one tchar. The
                # switch lets any token through (lower case, any length), never an empty one
                # (Gunicorn refuses it too): " / HTTP/1.1" has no method.
                raw = self.srv.raw(b" / HTTP/1.1\r\n" + HOST + b"\r\n")
                rs = h.parse_responses(raw)
                self.assertEqual([r.status for r in rs], [400], raw[:300])
                c = self.srv.client()
                self.addCleanup(c.close)
                c.send(b"get / HTTP/1.1\r\n" + HOST + b"\r\n")
                r = c.read_response()
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["method"], "get")


class Body(Rfc9112Case):
        """RFC 9112 6 and 7: message body framing and transfer codings."""

        def test_6_framing_independent_of_method(self):
                # RFC 9112 6: "Request message framing is independent of method semantics":
                # a GET with Content-Length has a body, and the next request follows it.
                c = self.client()
                c.send(b"GET / HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\n\r\nhelloGET /two HTTP/1.1\r\n" + HOST + b"\r\n")
                r1, r2 = c.read_response(), c.read_response()
                self.assertEqual(r1.json()["body"], "hello")
                self.assertEqual(r2.json()["path"], "/two")

        def test_6_1_chunked_parsed(self):
                # RFC 9112 6.1 / 7.1: "A recipient MUST be able to parse the chunked transfer
                # coding"; chunk sizes are hex in either case, with leading zeros.
                s = self.seen(b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
                              b"5\r\nhello\r\n00A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n")
                self.assertEqual(s["body"], "hello0123456789abcdefghij")

        def test_7_coding_names_case_insensitive(self):
                # RFC 9112 7: "All transfer-coding names are case-insensitive".
                s = self.seen(b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: ChUnKeD\r\n\r\n2\r\nok\r\n0\r\n\r\n")
                self.assertEqual(s["body"], "ok")

        def test_6_1_unknown_coding_501(self):
                # RFC 9112 6.1: "A server that receives a request message with a transfer
                # coding it does not understand SHOULD respond with 501 (Not Implemented)."
                self.refused(b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: foo, chunked\r\n\r\n0\r\n\r\n", status=501)

        def test_7_2_compression_coding_not_decoded_501(self):
                # RFC 9112 7.2 and 6.1: gcorn decodes no compression coding, so a request
                # body with gzip (even with chunked last) has a coding it does not understand:
                # 501, as 6.1 says it SHOULD.
                for te in (b"gzip, chunked", b"deflate, chunked", b"compress, chunked"):
                        with self.subTest(te=te):
                                self.refused(b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: " + te + b"\r\n\r\n0\r\n\r\n", status=501)

        def test_8_incomplete_head(self):
                # RFC 9112 8: a server that receives an incomplete request message "MAY send
                # an error response prior to closing the connection"; the app never sees it.
                with self.srv.connect() as s:
                        s.sendall(b"GET /never HTTP/1.1\r\n" + HOST + b"X-Cut: ")
                        s.shutdown(socket.SHUT_WR)
                        raw = h.recv_all(s)
                self.assertNotIn(b" 200 ", raw.split(b"\r\n", 1)[0])
                self.assertServes()

        def test_6_1_http10_with_transfer_encoding(self):
                # RFC 9112 6.1: "A server or client that receives an HTTP/1.0 message
                # containing a Transfer-Encoding header field MUST treat the message as if the
                # framing is faulty, even if a Content-Length is present, and close the
                # connection after processing the message." gcorn answers 400 and closes.
                self.refused(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
                self.refused(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n")

        def test_6_1_no_transfer_encoding_on_204_or_1xx(self):
                # RFC 9112 6.1: "A server MUST NOT send a Transfer-Encoding header field in any
                # response with a status code of 1xx (Informational) or 204 (No Content)."
                # RFC 9110 8.6: nor a Content-Length; RFC 9110 6.4.1: no content either,
                # whatever the app returns; the next response follows at once.
                # An app's own Content-Length on a 204 is dropped too.
                for q in (b"", b"&cl=1"):
                        with self.subTest(q=q):
                                c = self.client()
                                c.send(b"GET /status?code=204&reason=No+Content&body=xyz" + q + b" HTTP/1.1\r\n" + HOST + b"\r\n"
                                       b"GET /x HTTP/1.1\r\n" + HOST + b"\r\n")
                                r = c.read_response()
                                self.assertEqual(r.status, 204)
                                self.assertIsNone(r.header("Transfer-Encoding"), r)
                                self.assertIsNone(r.header("Content-Length"), r)
                                self.assertEqual(c.read_response().json()["path"], "/x")

        def test_6_1_no_transfer_encoding_for_http10(self):
                # RFC 9112 6.1: "A server MUST NOT send a response containing
                # Transfer-Encoding unless the corresponding request indicates HTTP/1.1 (or
                # later minor revisions)." Without a length the body ends at close (6.3 7).
                raw = self.srv.raw(b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                head, _, body = raw.partition(b"\r\n\r\n")
                self.assertTrue(head.startswith(b"HTTP/1.0 200 "), raw)
                self.assertNotIn(b"transfer-encoding", head.lower())
                self.assertNotIn(b"content-length", head.lower())
                self.assertEqual(body, b"part one,part two")

        def test_6_1_http11_body_without_length_is_chunked(self):
                # RFC 9112 6.1/7.1 (sender side): to an HTTP/1.1 client, a body of unknown
                # length is chunked with chunked as the final (only) coding.
                r, _ = self.exchange(b"GET /stream HTTP/1.1\r\n" + HOST + b"\r\n")
                self.assertEqual(r.header("Transfer-Encoding"), "chunked")
                self.assertEqual(r.body, b"part one,part two")

        def test_6_2_app_transfer_encoding_and_length(self):
                # RFC 9112 6.2: "A sender MUST NOT send a Content-Length header field in any
                # message that contains a Transfer-Encoding header field." Transfer-Encoding
                # is hop-by-hop, the server's own (PEP 3333 forbids apps hop-by-hop headers):
                # an app's is dropped, as Gunicorn does, and its Content-Length frames the body.
                r, _ = self.exchange(b"GET /status?code=200&cl=1&body=abc&h=Transfer-Encoding:chunked HTTP/1.1\r\n" + HOST + b"\r\n")
                self.assertEqual(r.status, 200, r)
                self.assertIsNone(r.header("Transfer-Encoding"), r)
                self.assertEqual(r.header("Content-Length"), "3")
                self.assertEqual(r.body, b"abc")

        def test_6_1_connect_2xx(self):
                # RFC 9112 6.1 / 6.2: "A server MUST NOT send a Transfer-Encoding header field
                # [nor a Content-Length] in any 2xx (Successful) response to a CONNECT request."
                # gcorn follows Gunicorn against the RFC here: a WSGI app that answers CONNECT
                # with a 2xx claims a tunnel no WSGI server can open, and gcorn frames that
                # response like any other (here by the app's Content-Length) so that the
                # connection stays usable; the app, not the server, chose the status.
                r, _ = self.exchange(b"CONNECT t.test:443 HTTP/1.1\r\nHost: t.test:443\r\n\r\n")
                self.assertEqual(r.status, 200, r)
                self.assertIsNotNone(r.header("Content-Length"), r)
                self.assertEqual(r.json()["raw_uri"], "t.test:443")

        def test_6_2_head_content_length_as_get(self):
                # RFC 9112 6.2: "a server MUST NOT send Content-Length in such a response [to
                # HEAD] unless its field value equals the decimal number of octets that would
                # have been sent in the content of a response if the same request had used the
                # GET method." RFC 9110 9.3.2: and no content.
                c = self.client()
                c.send(b"HEAD /status?code=200&cl=1&body=twelve+bytes HTTP/1.1\r\n" + HOST + b"\r\n"
                       b"GET /status?code=200&cl=1&body=twelve+bytes HTTP/1.1\r\n" + HOST + b"\r\n")
                rh = c.read_response(method="HEAD")
                rg = c.read_response()
                self.assertEqual(rh.header("Content-Length"), "12")
                self.assertEqual(rg.body, b"twelve bytes")

        def test_9110_9_3_2_head_has_no_content(self):
                # RFC 9110 9.3.2: "the server MUST NOT send content in the response" to HEAD,
                # whatever the app returns; the next response follows the head at once.
                c = self.client()
                c.send(b"HEAD /stream HTTP/1.1\r\n" + HOST + b"\r\nGET /n HTTP/1.1\r\n" + HOST + b"\r\n")
                rh = c.read_response(method="HEAD")
                self.assertEqual(rh.status, 200)
                self.assertEqual(c.read_response().json()["path"], "/n")

        def test_6_3_both_te_and_cl(self):
                # RFC 9112 6.3 (3): "A server MAY reject a request that contains both
                # Content-Length and Transfer-Encoding or process such a request in accordance
                # with the Transfer-Encoding alone. Regardless, the server MUST close the
                # connection after responding to such a request". gcorn rejects it (400), as
                # Gunicorn does, and closes.
                self.refused(b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")

        def test_6_3_chunked_not_final_400(self):
                # RFC 9112 6.3 (4): "If a Transfer-Encoding header field is present in a
                # request and the chunked transfer coding is not the final encoding, ... the
                # server MUST respond with the 400 (Bad Request) status code and then close
                # the connection."
                for te in (b"chunked, gzip", b"chunked\r\nTransfer-Encoding: gzip", b"gzip"):
                        with self.subTest(te=te):
                                self.refused(b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: " + te + b"\r\n\r\n0\r\n\r\n")

        def test_6_3_chunked_applied_twice_400(self):
                # RFC 9112 6.1: "A sender MUST NOT apply the chunked transfer coding more than
                # once to a message body"; a request doing so has no reliable length (6.3).
                self.refused(b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n")

        def test_6_3_invalid_content_length_400(self):
                # RFC 9112 6.3 (5): "If a message is received without Transfer-Encoding and
                # with an invalid Content-Length header field, then the message framing is
                # invalid ... the server MUST respond with a 400 (Bad Request) status code and
                # then close the connection." Differing duplicates are invalid (RFC 9110 8.6);
                # an identical list gcorn also refuses, as Gunicorn does (the RFC allows it).
                for cl in (b"abc", b"-1", b"+1", b"1.0", b"0x5", b"3\r\nContent-Length: 4", b"3, 4", b"3, 3", b" ", b"99999999999999999999999"):
                        with self.subTest(cl=cl):
                                self.refused(b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: " + cl + b"\r\n\r\nabcd")

        def test_6_3_no_framing_means_no_body(self):
                # RFC 9112 6.3 (6): "If this is a request message and none of the above are
                # true, then the message body length is zero": the bytes after the head are
                # the next request.
                c = self.client()
                c.send(b"POST /one HTTP/1.1\r\n" + HOST + b"\r\nGET /two HTTP/1.1\r\n" + HOST + b"\r\n")
                r1, r2 = c.read_response(), c.read_response()
                self.assertEqual((r1.json()["body"], r1.json()["content_length"]), ("", None))
                self.assertEqual(r2.json()["path"], "/two")

        def test_6_3_incomplete_content_length_body(self):
                # RFC 9112 6.3 (5) / 8: "If the sender closes the connection or the recipient
                # times out before the indicated number of octets are received, the recipient
                # MUST consider the message to be incomplete and close the connection." The
                # app never gets the short body as a whole one: no 200 comes back.
                with self.srv.connect() as s:
                        s.sendall(b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 10\r\n\r\nabc")
                        s.shutdown(socket.SHUT_WR)
                        raw = h.recv_all(s)
                self.assertNotIn(b" 200 ", raw.split(b"\r\n", 1)[0])
                self.assertServes()

        def test_7_1_incomplete_chunked_body(self):
                # RFC 9112 8: "A message body that uses the chunked transfer coding is
                # incomplete if the zero-sized chunk that terminates the encoding has not been
                # received" and, as above, is not taken for a whole one.
                with self.srv.connect() as s:
                        s.sendall(b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
                        s.shutdown(socket.SHUT_WR)
                        raw = h.recv_all(s)
                self.assertNotIn(b" 200 ", raw.split(b"\r\n", 1)[0])
                self.assertServes()

        def test_7_1_chunk_size_overflow(self):
                # RFC 9112 7.1: "Recipients MUST anticipate potentially large hexadecimal
                # numerals and prevent parsing errors due to integer conversion overflows or
                # precision loss due to integer representation." A size past 2^64 is refused,
                # never wrapped to a small one.
                for size in (b"1" + b"0" * 16 + b"5", b"f" * 17, b"ffffffffffffffff"):
                        with self.subTest(size=size):
                                r, c = self.exchange(b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n" + size + b"\r\nhello\r\n0\r\n\r\n")
                                self.assertEqual(r.status, 400, r)
                                self.closes(c)

        def test_7_1_chunk_size_syntax(self):
                # RFC 9112 7.1: chunk-size = 1*HEXDIG, then CRLF or extensions; nothing else.
                for size in (b"-5", b"+5", b" 5", b"5 ", b"0x5", b"", b"5_"):
                        with self.subTest(size=size):
                                r, c = self.exchange(b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n" + size + b"\r\nhello\r\n0\r\n\r\n")
                                self.assertEqual(r.status, 400, r)
                                self.closes(c)

        def test_7_1_chunk_data_then_crlf(self):
                # RFC 9112 7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF: data
                # longer than its size is not a chunk.
                r, c = self.exchange(b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n")
                self.assertEqual(r.status, 400, r)
                self.closes(c)

        def test_7_1_1_unrecognized_extensions_ignored(self):
                # RFC 9112 7.1.1: "A recipient MUST ignore unrecognized chunk extensions."
                s = self.seen(b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
                              b"5;a=b;c\r\nhello\r\n3 ; q=\"x y\"\r\nabc\r\n0;last\r\n\r\n")
                self.assertEqual(s["body"], "helloabc")

        def test_7_1_1_bare_cr_in_extension(self):
                # RFC 9112 2.2 applied to chunk extensions: a bare CR is invalid.
                r, c = self.exchange(b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n5;a=b\rc\r\nhello\r\n0\r\n\r\n")
                self.assertEqual(r.status, 400, r)
                self.closes(c)

        def test_7_1_2_trailer_not_merged(self):
                # RFC 9112 7.1.2: "A recipient MUST NOT merge a received trailer field into the
                # header section unless its corresponding header field definition explicitly
                # permits and instructs it to do so": trailers never reach the environ.
                c = self.client()
                c.send(b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Trailer: t\r\n\r\n"
                       b"GET /after HTTP/1.1\r\n" + HOST + b"\r\n")
                r = c.read_response()
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["body"], "ok")
                self.assertNotIn("HTTP_X_TRAILER", r.json()["headers"])
                self.assertEqual(c.read_response().json()["path"], "/after")

        def test_7_1_2_framing_trailers_refused(self):
                # RFC 9110 6.5.1: fields that frame or route the message (Content-Length,
                # Transfer-Encoding, Host) cannot be trailers; a recipient acting on one could
                # be smuggled. gcorn answers 400 and closes.
                for t in (b"Content-Length: 5", b"Transfer-Encoding: chunked", b"Host: evil.test"):
                        with self.subTest(t=t):
                                r, c = self.exchange(b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n" + t + b"\r\n\r\n")
                                self.assertEqual(r.status, 400, r)
                                self.closes(c)

        def test_7_1_2_trailer_field_syntax(self):
                # RFC 9112 7.1.2: trailer-section = *( field-line CRLF ), with field lines as
                # in section 5: whitespace before the colon or a CTL in a value is invalid.
                for t in (b"X-T : 1", b"X-T: a\x00b", b"no colon"):
                        with self.subTest(t=t):
                                r, c = self.exchange(b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n" + t + b"\r\n\r\n")
                                self.assertEqual(r.status, 400, r)
                                self.closes(c)


class Connections(Rfc9112Case):
        """RFC 9112 9: connection management."""

        def test_9_3_http11_persists(self):
                # RFC 9112 9.3: "If the received protocol is HTTP/1.1 (or later), the
                # connection will persist after the current response".
                c = self.client()
                for i in range(3):
                        c.send(b"GET /p%d HTTP/1.1\r\n" % i + HOST + b"\r\n")
                        r = c.read_response()
                        self.assertEqual(r.json()["path"], "/p%d" % i)
                        self.assertFalse(r.has_token("Connection", "close"), r)

        def test_9_3_http10_closes_by_default(self):
                # RFC 9112 9.3: HTTP/1.0 without "keep-alive": "the connection will close
                # after the current response".
                r, c = self.exchange(b"GET / HTTP/1.0\r\n\r\n")
                self.assertEqual(r.status, 200)
                self.closes(c)

        def test_9_3_http10_keep_alive_honoured(self):
                # RFC 9112 9.3: HTTP/1.0 with the "keep-alive" connection option may persist
                # when the recipient wishes to honour it; gcorn does and says so.
                c = self.client()
                for _ in range(2):
                        c.send(b"GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                        r = c.read_response()
                        self.assertEqual(r.status, 200)
                        self.assertTrue(r.has_token("Connection", "keep-alive"), r)

        def test_9_3_close_delimited_body_closes(self):
                # RFC 9112 9.3: "In order to remain persistent, all messages on a connection
                # need to have a self-defined message length": an HTTP/1.0 keep-alive
                # request whose response has no length gets a closed connection.
                raw = self.srv.raw(b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /again HTTP/1.0\r\n\r\n")
                self.assertEqual(raw.count(b"HTTP/1.0 200"), 1, raw)
                self.assertTrue(raw.endswith(b"part one,part two"), raw)

        def test_9_3_2_pipelined_responses_in_order(self):
                # RFC 9112 9.3.2: "A server ... MUST send the corresponding responses in the
                # same order that the requests were received."
                reqs = b"".join(b"GET /n%d HTTP/1.1\r\n" % i + HOST + b"\r\n" for i in range(20))
                reqs += b"POST /body HTTP/1.1\r\n" + HOST + b"Content-Length: 3\r\n\r\nxyz"
                reqs += b"GET /last HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"
                rs = h.parse_responses(self.srv.raw(reqs))
                paths = [r.json()["path"] for r in rs]
                self.assertEqual(paths, ["/n%d" % i for i in range(20)] + ["/body", "/last"])
                self.assertEqual(rs[20].json()["body"], "xyz")

        def test_9_6_close_option_ends_connection(self):
                # RFC 9112 9.6: "A server that receives a "close" connection option MUST
                # initiate closure of the connection after it sends the final response to the
                # request that contained the "close" connection option. The server SHOULD send
                # a "close" connection option in its final response on that connection. The
                # server MUST NOT process any further requests received on that connection."
                raw = self.srv.raw(b"GET /a HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\nGET /b HTTP/1.1\r\n" + HOST + b"\r\n")
                rs = h.parse_responses(raw)
                self.assertEqual([r.json()["path"] for r in rs], ["/a"])
                self.assertTrue(rs[0].has_token("Connection", "close"))

        def test_9_6_close_option_among_others(self):
                # RFC 9110 7.6.1: connection options are a comma-separated, case-insensitive
                # list: "Upgrade, CLOSE" holds close.
                raw = self.srv.raw(b"GET /a HTTP/1.1\r\n" + HOST + b"Connection: te, CLOSE\r\n\r\nGET /b HTTP/1.1\r\n" + HOST + b"\r\n")
                self.assertEqual([r.json()["path"] for r in h.parse_responses(raw)], ["/a"])

        def test_9_6_server_close_ends_processing(self):
                # RFC 9112 9.6: "A server that sends a "close" connection option MUST initiate
                # closure of the connection ... after it sends the response containing
                # "close". The server MUST NOT process any further requests received on that
                # connection." After an error answer, the request pipelined behind it is not
                # served.
                raw = self.srv.raw(b"GET / HTTP/1.1\r\n" + HOST + b"Content-Length: x\r\n\r\nGET /b HTTP/1.1\r\n" + HOST + b"\r\n")
                rs = h.parse_responses(raw)
                self.assertEqual([r.status for r in rs], [400], raw)
                self.assertTrue(rs[0].has_token("Connection", "close"))

        def test_9_6_response_survives_unread_input(self):
                # RFC 9112 9.6: a server SHOULD close in stages so that the client can read
                # the last response: one to a request whose unread body is still coming in
                # must arrive whole before the connection closes.
                with self.srv.connect() as s:
                        s.sendall(b"GET /status?code=413&reason=Too+Large&cl=1&body=no HTTP/1.1\r\n" + HOST +
                                  b"Connection: close\r\n\r\n" + b"x" * 65536)
                        raw = h.recv_all(s)
                rs = h.parse_responses(raw)
                self.assertEqual([r.status for r in rs], [413], raw[:300])
                self.assertEqual(rs[0].body, b"no")

        def test_9110_7_8_upgrade_ignored_for_http10(self):
                # RFC 9110 7.8: "A server MUST ignore an Upgrade header field that is received
                # in an HTTP/1.0 request": an ordinary response, ended by the close of HTTP/1.0.
                r, c = self.exchange(b"GET /u HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.json()["path"], "/u")
                self.assertFalse(r.has_token("Connection", "upgrade"), r)
                self.closes(c)


class KeepAliveOff(h.SharedServerTestCase):
        """RFC 9112 9.6 for a server that does not keep connections (--keep-alive 0)."""
        APP = "rfc9112_app:app"
        ARGS = ["--keep-alive", "0"]

        def test_9_6_close_in_every_response(self):
                # RFC 9112 9.6: "A server that does not support persistent connections MUST
                # send the "close" connection option in every response message that does not
                # have a 1xx (Informational) status code."
                for req in (b"GET / HTTP/1.1\r\n" + HOST + b"\r\n", b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                            b"GET /status?code=404&cl=1 HTTP/1.1\r\n" + HOST + b"\r\n"):
                        with self.subTest(req=req):
                                rs = h.parse_responses(self.srv.raw(req))
                                self.assertEqual(len(rs), 1)
                                self.assertTrue(rs[0].has_token("Connection", "close"), rs[0])


class Semantics(Rfc9112Case):
        """The parts of RFC 9110 that bind a server's HTTP/1.1 messages."""

        def test_9110_6_6_1_date_in_responses(self):
                # RFC 9110 6.6.1: "An origin server with a clock ... MUST generate a Date
                # header field in all 2xx (Successful), 3xx (Redirection), and 4xx (Client
                # Error) responses" (RFC 9110 5.6.7: as an IMF-fixdate), gcorn's own 4xx
                # included.
                for req, status in ((b"GET / HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n", 200),
                                    (b"GET /status?code=302&cl=1&h=Location:/x HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n", 302),
                                    (b"GET /status?code=404&cl=1 HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n", 404),
                                    (b"GET / HTTP/1.1\r\n\r\n", 400)):
                        with self.subTest(status=status):
                                rs = h.parse_responses(self.srv.raw(req))
                                self.assertEqual(rs[0].status, status)
                                self.assertRegex(rs[0].header("Date") or "", DATE_RE)

        def test_9110_10_1_1_expect_http10_ignored(self):
                # RFC 9110 10.1.1: "A server that receives a 100-continue expectation in an
                # HTTP/1.0 request MUST ignore that expectation": no 100 (Continue). RFC 9110
                # 15.2: "A server MUST NOT send a 1xx response to an HTTP/1.0 client."
                with self.srv.connect() as s:
                        s.sendall(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok")
                        raw = h.recv_all(s)
                self.assertTrue(raw.startswith(b"HTTP/1.0 200 "), raw[:200])
                self.assertNotIn(b"100 Continue", raw)

        def test_9110_10_1_1_expect_100_continue(self):
                # RFC 9110 10.1.1: an origin server MUST "either send an immediate response
                # with a final status code ... or send an immediate 100 (Continue) response",
                # and "MUST NOT wait for the content before sending the 100 (Continue)
                # response". gcorn sends it when the app first reads the body, which it does
                # here without waiting for any of the content.
                c = self.client()
                c.send(b"POST /up HTTP/1.1\r\n" + HOST + b"Expect: 100-continue\r\nContent-Length: 4\r\n\r\n")
                interim = c.read_response(skip_interim=False)
                self.assertEqual(interim.status, 100)
                c.send(b"body")
                r = c.read_response()
                self.assertEqual(r.json()["body"], "body")

        def test_9110_15_no_content_for_304(self):
                # RFC 9110 6.4.1 / 15.4.5: a 304 carries no content, whatever the app returns,
                # and RFC 9112 6.1 no chunked framing for it either.
                c = self.client()
                c.send(b"GET /status?code=304&reason=Not+Modified&body=xyz HTTP/1.1\r\n" + HOST + b"\r\n"
                       b"GET /y HTTP/1.1\r\n" + HOST + b"\r\n")
                r = c.read_response()
                self.assertEqual(r.status, 304)
                self.assertIsNone(r.header("Transfer-Encoding"))
                self.assertEqual(c.read_response().json()["path"], "/y")

        def test_9112_11_1_response_splitting(self):
                # RFC 9112 11.1: response splitting. A CR or LF in an app's header value or
                # name never reaches the wire: gcorn answers 500 without the app's headers.
                for q in (b"h=X-A:a%0D%0ASet-Cookie:%20x", b"h=X-A:a%0Ab", b"h=X%0D%0AB:v", b"reason=OK%0D%0AX:%20y"):
                        with self.subTest(q=q):
                                r, _ = self.exchange(b"GET /status?code=200&" + q + b" HTTP/1.1\r\n" + HOST + b"\r\n")
                                self.assertEqual(r.status, 500, r)
                                self.assertIsNone(r.header("Set-Cookie"))
                                self.assertIsNone(r.header("X"))


if __name__ == "__main__":
        h.main()
