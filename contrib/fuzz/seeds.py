#!/usr/bin/python3
"""Writes the seed corpora of contrib/fuzz/corpus/<target>/: gcorn's own small inputs in the
shapes a request parser must get right (valid heads, bodies, pipelines, and the malformed and
smuggling shapes), each behind the switch bytes its target reads first. Run from anywhere;
it rewrites the seed files and leaves what a fuzzer added alone."""
import os
import struct

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

# Requests: (name, bytes). Hosts, paths and values are gcorn's own.
REQUESTS = [
    ("get", b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"),
    ("get10", b"GET /x HTTP/1.0\r\n\r\n"),
    ("query", b"GET /p/q?a=1&b=%20c#frag HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\n\r\n"),
    ("post_cl", b"POST /up HTTP/1.1\r\nHost: a.test\r\nContent-Length: 4\r\nContent-Type: text/plain\r\n\r\nabcd"),
    ("cl_case", b"PUT /c HTTP/1.0\r\ncontent-LENGTH: 3\r\n\r\nxyz"),
    ("chunked", b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
    ("chunked_ext", b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;n=v;q=\"a b\"\r\nabc\r\n0\r\n\r\n"),
    ("chunked_trailer", b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\nX-Sum: 1\r\nX-More: 2\r\n\r\n"),
    ("chunked_hex", b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n00B\r\n0123456789a\r\nb\r\n0123456789a\r\n0\r\n\r\n"),
    ("te_list", b"POST /c HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1\r\nq\r\n0\r\n\r\n"),
    ("te_two", b"POST /c HTTP/1.1\r\nTransfer-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("pipeline", b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\nHost: b\r\n\r\nPOST /3 HTTP/1.1\r\nContent-Length: 1\r\n\r\nZ"),
    ("pipeline10", b"GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.1\r\nConnection: close\r\n\r\n"),
    ("expect", b"PUT /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok"),
    ("upgrade", b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
    ("head", b"HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("absolute", b"GET http://a.test:81/abs?x=y HTTP/1.1\r\nHost: a.test:81\r\n\r\n"),
    ("asterisk", b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("authority", b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n"),
    ("obs_text", b"GET /\xc3\xa9%2F HTTP/1.1\r\nX-V: caf\xc3\xa9\r\n\r\n"),
    ("padding", b"GET / HTTP/1.1\r\nX-Pad: \t v \t\r\n\r\n"),
    ("fold", b"GET / HTTP/1.1\r\nX-Long: one\r\n  two\r\nHost: h\r\n\r\n"),
    ("space_colon", b"GET / HTTP/1.1\r\nContent-Length : 1\r\n\r\nq"),
    ("underscore", b"GET / HTTP/1.1\r\nX_Forwarded_Proto: https\r\nX-Forwarded-Proto: http\r\nScript_Name: /s\r\n\r\n"),
    ("scheme", b"GET / HTTP/1.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\nX-Forwarded-Protocol: ssl\r\n\r\n"),
    ("dup_host", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    ("lower_method", b"get / HTTP/1.1\r\n\r\n"),
    ("odd_method", b"M-SEARCH# / HTTP/1.1\r\n\r\n"),
    ("bad_version", b"GET / HTTP/1.2\r\n\r\nGET / HTTP/2.0\r\n\r\n"),
    ("bad_proto", b"GET / HTTPS/1.1\r\n\r\n"),
    ("no_target", b"GET HTTP/1.1\r\n\r\n"),
    ("bare_lf", b"GET / HTTP/1.1\nHost: a\n\n"),
    ("nul_name", b"GET / HTTP/1.1\r\nX\x00Y: 1\r\n\r\n"),
    ("ctl_value", b"GET / HTTP/1.1\r\nX: a\x07b\x7f\r\n\r\n"),
    ("cl_te", b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("cl_dup", b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc"),
    ("cl_list", b"POST / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nab"),
    ("cl_sign", b"POST / HTTP/1.1\r\nContent-Length: +2\r\n\r\nab"),
    ("cl_huge", b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
    ("te_not_last", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
    ("te_10", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("te_unknown", b"POST / HTTP/1.1\r\nTransfer-Encoding: foo\r\n\r\n"),
    ("chunk_bad", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n0_\r\n\r\n"),
    ("chunk_ws", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\nx\r\n 0\r\n\r\n"),
    ("chunk_cr", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;e=v\rw\r\nx\r\n0\r\n\r\n"),
    ("chunk_short", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab\r\n0\r\n\r\n"),
    ("chunk_huge", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n"),
    ("trailer_cl", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\nHost: e\r\n\r\n"),
    ("long_line", b"GET /" + b"a" * 120 + b" HTTP/1.1\r\nX: " + b"b" * 60 + b"\r\n\r\n"),
    ("many_headers", b"GET / HTTP/1.1\r\n" + b"".join(b"H%d: %d\r\n" % (i, i) for i in range(12)) + b"\r\n"),
    ("nonascii_method", b"G\xc3\x89T / HTTP/1.1\r\n\r\n"),
    ("truncated", b"GET /t HTTP/1.1\r\nHost: a\r\nX-Cut: "),
]

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"

def v2(cmd, fam, addr, tlv=b""):
    body = addr + tlv
    return V2_SIG + bytes([0x20 | cmd, fam]) + struct.pack(">H", len(body)) + body

V4 = bytes([10, 0, 0, 1, 10, 0, 0, 2]) + struct.pack(">HH", 4000, 8000)
V6 = bytes(15) + b"\x01" + bytes(15) + b"\x02" + struct.pack(">HH", 4000, 443)
PROXY = [
    ("v1_tcp4", b"PROXY TCP4 10.0.0.1 10.0.0.2 4000 8000\r\n"),
    ("v1_tcp6", b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 443\r\n"),
    ("v1_unknown", b"PROXY UNKNOWN\r\n"),
    ("v1_unknown_addr", b"PROXY UNKNOWN ff::1 ff::2 1 2\r\n"),
    ("v1_bad_port", b"PROXY TCP4 10.0.0.1 10.0.0.2 70000 0x10\r\n"),
    ("v1_bad_addr", b"PROXY TCP4 10.0.0.256 ::1 1 2\r\n"),
    ("v1_no_crlf", b"PROXY TCP4 10.0.0.1 10.0.0.2 1 2\n"),
    ("v1_long", b"PROXY TCP6 " + b"f" * 100 + b"\r\n"),
    ("v1_partial", b"PROXY TCP4 10.0."),
    ("v2_tcp4", v2(1, 0x11, V4)),
    ("v2_tcp6", v2(1, 0x21, V6)),
    ("v2_local", v2(0, 0x00, b"")),
    ("v2_unix", v2(1, 0x31, bytes(216))),
    ("v2_udp", v2(1, 0x12, V4)),
    ("v2_tlv", v2(1, 0x11, V4, b"\x04\x00\x03abc")),
    ("v2_short_len", V2_SIG + b"\x21\x11\x00\x04" + V4[:4]),
    ("v2_bad_version", V2_SIG + b"\x11\x11\x00\x0c" + V4),
    ("v2_bad_cmd", V2_SIG + b"\x2f\x11\x00\x0c" + V4),
    ("v2_partial", V2_SIG[:7]),
    ("not_proxy", b"GET / HTTP/1.1\r\n\r\n"),
    ("almost", b"PROXZ TCP4\r\n"),
]

STATUSES = [b"200 OK", b"200", b"204 No Content", b"304 Not Modified", b"101 Switching Protocols",
            b"404 Not Found", b"599 X", b"600 Nope", b"99 Low", b"200  Two", b"200 OK\r\nX: y",
            b"2OO OK", b"200 caf\xc3\xa9", b"200\tTab", b" 200 OK", b"500 Internal\x00Error", b""]
HEADERS = [(b"Content-Type", b"text/plain"), (b"Content-Length", b"12"), (b"Content-Length", b"-1"),
           (b"Content-Length", b"99999999999999999999"), (b"X Bad", b"v"), (b"X-Ok", b"a\r\nSet-Cookie: x"),
           (b"X-Ok", b"\t v \t"), (b"", b"v"), (b"X:Y", b"v"), (b"X-Obs", b"\xff\xfe"),
           (b"Set-Cookie", b"<script>&amp;\"'</script>"), (b"Content-Length", b"007")]

SETTINGS_ARGV = [
    [b"-b", b"127.0.0.1:8000", b"-w", b"4", b"app:app"],
    [b"--bind=unix:/run/g.sock", b"--bind", b"[::1]:80", b"--workers=2"],
    [b"--timeout", b"30", b"--graceful-timeout", b"-1", b"--keep-alive", b"2x"],
    [b"--limit-request-line", b"0", b"--limit-request-fields", b"32768", b"--limit-request-field_size", b"8190"],
    [b"--access-logformat", b"%(h)s %(r)s %({x-y}i)s", b"--log-level", b"DEBUG"],
    [b"-e", b"A=1", b"--env", b"B", b"--pythonpath", b"/a,/b"],
    [b"--forwarded-allow-ips", b"10.0.0.0/8,::1,*", b"--proxy-allow-from", b"bad ip"],
    [b"--proxy-protocol", b"--proxy-protocol=v2", b"--umask", b"0o22"],
    [b"--max-requests", b"-5", b"--max-requests-jitter", b"99999999999999999999"],
    [b"--header-map", b"refuse", b"--forwarder-headers", b"SCRIPT_NAME,X_A"],
    [b"--daemon", b"--preload", b"--reload-extra-file", b"x.py", b"--no-sendfile"],
    [b"--wrokers", b"2", b"--", b"-app"],
    [b"--help"],
    [b"--version"],
]
SETTINGS_ENV = [b"-w 2 -b '127.0.0.1:80' --log-level=info", b"--env \"A=b c\" --name x\\ y",
                b"'unclosed", b"a\\\\b \"q\\\"x\" ''", b"--bind", b"   "]
SETTINGS_SET = [(0, [b"4"]), (1, [b"0"]), (5, [b"true"]), (9, [b"-1"]), (13, [b"a,b"]), (20, [b"0x1f"]),
                (30, [b""]), (40, [b"1e9"])]


def write(target, name, data):
    d = os.path.join(TOP, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def main():
    for name, req in REQUESTS:
        write("http", name, bytes([0x00, 0x00, 0x00, 0x40]) + req)
        write("environ", name, bytes([0x00, 0x00, 0x00, 0x00]) + req)
    # Some switch combinations: lenient parsing, small limits, byte-at-a-time arrival.
    for sw, lim, step, name in [(0x0f, 0, 1, "lenient"), (0x20, 0x0f, 3, "small"), (0xd0, 0, 7, "trusted")]:
        for rname, req in REQUESTS[::4]:
            write("http", f"{name}-{rname}", bytes([sw, lim, step, 5]) + req)
            write("environ", f"{name}-{rname}", bytes([1, sw, lim, 0]) + req)
    for name, hdr in PROXY:
        write("proxyproto", name, bytes([2, len(hdr) // 2]) + hdr)
        write("environ", "pp-" + name, bytes([3, 0, 0, 0]) + hdr + b"GET /pp HTTP/1.1\r\nHost: p\r\n\r\n")
    for i, st in enumerate(STATUSES):
        n, v = HEADERS[i % len(HEADERS)]
        write("response", f"s{i:02d}", bytes([i, 0x01, 0x90 + i]) + st + b"\0" + n + b"\0" + v)
    for i, (n, v) in enumerate(HEADERS):
        write("response", f"h{i:02d}", bytes([0x09, 0x00, 0xc8]) + b"200 OK\0" + n + b"\0" + v)
    for i, words in enumerate(SETTINGS_ARGV):
        write("settings", f"argv{i:02d}", bytes([0, 0]) + b"\0".join(words))
    for i, line in enumerate(SETTINGS_ENV):
        write("settings", f"env{i:02d}", bytes([1, 0]) + line)
    for i, (which, words) in enumerate(SETTINGS_SET):
        for mode in (2, 3):
            write("settings", f"set{mode}-{i:02d}", bytes([mode, which]) + b"\0".join(words))
    write("settings", "dict", bytes([4, 0]) + b"X-FORWARDED-PROTO\0https\0X-SSL\0on")


if __name__ == "__main__":
    main()
