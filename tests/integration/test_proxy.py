"""Behind a proxy: the scheme a trusted front end reports (secure_scheme_headers,
--forwarded-allow-ips), the client a PROXY protocol header names (--proxy-protocol,
--proxy-allow-from), and a real nginx in front (Debian's nginx-light, run by the test with
its own prefix, over a UNIX socket and over TCP, and through its stream module with
proxy_protocol on)."""

import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

APP = "proxy_app:app"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def env_of(srv, headers=(), prefix=b""):
        """The environ keys the app saw for one request on a new connection."""
        raw = prefix + h.build_request("GET", "/", list(headers) + [("Host", "x"), ("Connection", "close")])
        rs = h.parse_responses(srv.raw(raw))
        assert rs and rs[0].status == 200, rs
        return rs[0].json()


def v2_header(command=1, family=1, proto=1, addresses=b"", tlv=b""):
        body = addresses + tlv
        return V2_SIG + bytes([0x20 | command, family << 4 | proto]) + struct.pack(">H", len(body)) + body


def v2_inet(src, dst, sport, dport, tlv=b""):
        return v2_header(addresses=socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport),
                         tlv=tlv)


class Rejects:
        def reject(self, srv, raw, status):
                """raw gets status and a close."""
                with srv.connect() as s:
                        s.sendall(raw)
                        closed, data = h.wait_closed(s, 10)
                self.assertTrue(closed, "connection left open; got %r" % data[:200])
                self.assertTrue(data.startswith(b"HTTP/1.1 %d " % status), data[:300])
                return data


class ForwardedTest(h.ServerTestCase, Rejects):
        """secure_scheme_headers from peers in --forwarded-allow-ips."""

        def test_trusted_peer_sets_https(self):
                srv = self.start(APP)
                self.assertEqual(env_of(srv)["wsgi.url_scheme"], "http")
                for name, value in (("X-Forwarded-Proto", "https"), ("X-Forwarded-Ssl", "on"),
                                    ("X-Forwarded-Protocol", "ssl"), ("x-forwarded-proto", "https")):
                        self.assertEqual(env_of(srv, [(name, value)])["wsgi.url_scheme"], "https", name)
                # a value that is not the configured one says http
                self.assertEqual(env_of(srv, [("X-Forwarded-Proto", "HTTPS")])["wsgi.url_scheme"], "http")
                # agreeing headers are fine
                e = env_of(srv, [("X-Forwarded-Proto", "https"), ("X-Forwarded-Ssl", "on")])
                self.assertEqual(e["wsgi.url_scheme"], "https")
                e = env_of(srv, [("X-Forwarded-Proto", "http"), ("X-Forwarded-Ssl", "off")])
                self.assertEqual(e["wsgi.url_scheme"], "http")

        def test_peer_address_stays_and_forwarded_for_reaches_the_app(self):
                srv = self.start(APP)
                e = env_of(srv, [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")])
                self.assertEqual(e["REMOTE_ADDR"], "127.0.0.1")
                self.assertEqual(e["HTTP_X_FORWARDED_FOR"], "203.0.113.7")
                self.assertIsNone(e["PROXY_PROTOCOL"])

        def test_contradictory_scheme_headers_get_400(self):
                srv = self.start(APP)
                for pair in ((("X-Forwarded-Proto", "https"), ("X-Forwarded-Ssl", "off")),
                             (("X-Forwarded-Ssl", "off"), ("X-Forwarded-Proto", "https")),
                             (("X-Forwarded-Proto", "https"), ("X-Forwarded-Proto", "http"))):
                        raw = h.build_request("GET", "/", [("Host", "x")] + list(pair))
                        self.reject(srv, raw, 400)
                srv.wait_log(r"Invalid request from ip=127\.0\.0\.1: Contradictory scheme headers", count=3)
                self.assertEqual(env_of(srv)["wsgi.url_scheme"], "http")

        def test_untrusted_peer_changes_nothing(self):
                srv = self.start(APP, ["--forwarded-allow-ips", "10.0.0.0/8, 192.0.2.1"])
                self.assertEqual(env_of(srv, [("X-Forwarded-Proto", "https")])["wsgi.url_scheme"], "http")
                # not even a contradiction counts
                e = env_of(srv, [("X-Forwarded-Proto", "https"), ("X-Forwarded-Ssl", "off")])
                self.assertEqual(e["wsgi.url_scheme"], "http")
                self.assertEqual(e["HTTP_X_FORWARDED_PROTO"], "https")

        def test_networks_and_star(self):
                for value in ("127.0.0.0/8", "*", "10.0.0.1,127.0.0.0/255.0.0.0"):
                        srv = self.start(APP, ["--forwarded-allow-ips", value])
                        self.assertEqual(env_of(srv, [("X-Forwarded-Proto", "https")])["wsgi.url_scheme"], "https",
                                         value)
                        srv.stop()

        def test_ipv6_peer(self):
                try:
                        with socket.socket(socket.AF_INET6) as probe:
                                probe.bind(("::1", 0))
                except OSError:
                        self.skipTest("no IPv6 loopback")
                srv = self.start(APP, bind="[::1]:0")
                e = env_of(srv, [("X-Forwarded-Proto", "https")])
                self.assertEqual((e["REMOTE_ADDR"], e["wsgi.url_scheme"]), ("::1", "https"))
                srv.stop()
                srv = self.start(APP, ["--forwarded-allow-ips", "127.0.0.1,fd00::/8"], bind="[::1]:0")
                self.assertEqual(env_of(srv, [("X-Forwarded-Proto", "https")])["wsgi.url_scheme"], "http")

        def test_environment_variable(self):
                srv = self.start(APP, env={"FORWARDED_ALLOW_IPS": "10.9.9.9"})
                self.assertEqual(env_of(srv, [("X-Forwarded-Proto", "https")])["wsgi.url_scheme"], "http")
                srv.stop()
                # the flag wins over the variable
                srv = self.start(APP, ["--forwarded-allow-ips", "127.0.0.1"], env={"FORWARDED_ALLOW_IPS": "10.9.9.9"})
                self.assertEqual(env_of(srv, [("X-Forwarded-Proto", "https")])["wsgi.url_scheme"], "https")

        def test_unix_socket_peer_is_trusted(self):
                d = h.tempdir(self, "gcorn-proxy-")
                srv = self.start(APP, ["--forwarded-allow-ips", "10.0.0.1"], bind="unix:" + os.path.join(d, "s"))
                e = env_of(srv, [("X-Forwarded-Proto", "https")])
                self.assertEqual(e["wsgi.url_scheme"], "https")
                raw = h.build_request("GET", "/", [("Host", "x"), ("X-Forwarded-Proto", "https"),
                                                   ("X-Forwarded-Ssl", "off")])
                self.reject(srv, raw, 400)

        def test_config_file_dict(self):
                d = h.tempdir(self, "gcorn-proxy-")
                conf = os.path.join(d, "gunicorn.conf.py")
                with open(conf, "w") as f:
                        f.write("secure_scheme_headers = {'X-SCHEME': 'secure', 'FRONT_END_HTTPS': 'on'}\n")
                srv = self.start(APP, ["-c", conf])
                self.assertEqual(env_of(srv, [("X-Scheme", "secure")])["wsgi.url_scheme"], "https")
                self.assertEqual(env_of(srv, [("Front_End_Https", "on")])["wsgi.url_scheme"], "https")
                # the default ones no longer count
                self.assertEqual(env_of(srv, [("X-Forwarded-Proto", "https")])["wsgi.url_scheme"], "http")
                srv.stop()
                with open(conf, "w") as f:
                        f.write("secure_scheme_headers = {}\n")
                srv = self.start(APP, ["-c", conf])
                self.assertEqual(env_of(srv, [("X-Forwarded-Proto", "https")])["wsgi.url_scheme"], "http")

        def bad_start(self, args, expect, env=None):
                full = dict(os.environ)
                full.update(env or {})
                p = subprocess.run([h.GCORN, "--chdir", h.APPS] + args + [APP], capture_output=True, text=True,
                                   timeout=30, env=full)
                self.assertNotEqual(p.returncode, 0, p)
                lines = p.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, p.stderr)
                self.assertIn(expect, lines[0])

        def test_bad_values_are_refused(self):
                self.bad_start(["--forwarded-allow-ips", "192.168.1.1/24"], "192.168.1.1/24")
                self.bad_start(["--forwarded-allow-ips", "localhost"], "localhost")
                self.bad_start(["--proxy-allow-from", "10.0.0.0/33"], "10.0.0.0/33")
                self.bad_start([], "FORWARDED_ALLOW_IPS", env={"FORWARDED_ALLOW_IPS": "nope"})
                self.bad_start(["--proxy-protocol=v3"], "v3")
                d = h.tempdir(self, "gcorn-proxy-")
                conf = os.path.join(d, "c.py")
                for text, expect in (("secure_scheme_headers = {'x-proto': 'https'}\n", "upper case"),
                                     ("secure_scheme_headers = 'X-PROTO'\n", "dict"),
                                     ("secure_scheme_headers = {'X-PROTO': 1}\n", "str")):
                        with open(conf, "w") as f:
                                f.write(text)
                        self.bad_start(["-c", conf], expect)


class ProxyProtocolTest(h.ServerTestCase, Rejects):
        """--proxy-protocol: the header is read once, first, by gcorn's scanner."""

        def test_v1_names_the_client(self):
                srv = self.start(APP, ["--proxy-protocol", "v1", "--access-logfile", "-"])
                e = env_of(srv, prefix=b"PROXY TCP4 198.51.100.7 192.0.2.1 40000 443\r\n")
                self.assertEqual((e["REMOTE_ADDR"], e["REMOTE_PORT"]), ("198.51.100.7", "40000"))
                self.assertEqual((e["PROXY_PROTOCOL"], e["PROXY_ADDR"], e["PROXY_PORT"]), ("TCP4", "192.0.2.1", "443"))
                e = env_of(srv, prefix=b"PROXY TCP6 2001:db8::7 2001:db8::1 40001 443\r\n")
                self.assertEqual((e["REMOTE_ADDR"], e["REMOTE_PORT"]), ("2001:db8::7", "40001"))
                # no header at all: a plain request still works
                self.assertEqual(env_of(srv)["REMOTE_ADDR"], "127.0.0.1")
                # UNKNOWN: the connection's own address stays
                e = env_of(srv, prefix=b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n")
                self.assertEqual((e["REMOTE_ADDR"], e["PROXY_PROTOCOL"]), ("127.0.0.1", "UNKNOWN"))
                # the access log's %(h)s is the named client too
                h.wait_until(lambda: srv.stdout().count("\n") >= 4, 10)
                self.assertTrue(srv.stdout().startswith("198.51.100.7 - - ["), srv.stdout())

        def test_v2_names_the_client(self):
                srv = self.start(APP, ["--proxy-protocol", "v2"])
                tlv = b"\x01\x00\x02h2" + b"\x04\x00\x00"
                e = env_of(srv, prefix=v2_inet("198.51.100.8", "192.0.2.1", 40002, 8443, tlv))
                self.assertEqual((e["REMOTE_ADDR"], e["REMOTE_PORT"]), ("198.51.100.8", "40002"))
                self.assertEqual((e["PROXY_PROTOCOL"], e["PROXY_PORT"]), ("TCP4", "8443"))
                six = socket.inet_pton(socket.AF_INET6, "2001:db8::8") + socket.inet_pton(socket.AF_INET6, "::1")
                e = env_of(srv, prefix=v2_header(family=2, addresses=six + struct.pack(">HH", 5, 6)))
                self.assertEqual((e["REMOTE_ADDR"], e["REMOTE_PORT"]), ("2001:db8::8", "5"))
                # LOCAL (a health check): the connection's own address stays
                e = env_of(srv, prefix=v2_header(command=0, family=0, proto=0))
                self.assertEqual((e["REMOTE_ADDR"], e["PROXY_PROTOCOL"]), ("127.0.0.1", "LOCAL"))

        def test_auto_and_bare_flag(self):
                # the flag alone means auto, and the app after it is still the app
                srv = self.start(APP, ["--proxy-protocol"])
                e = env_of(srv, prefix=b"PROXY TCP4 198.51.100.9 192.0.2.1 1 2\r\n")
                self.assertEqual(e["REMOTE_ADDR"], "198.51.100.9")
                e = env_of(srv, prefix=v2_inet("198.51.100.10", "192.0.2.1", 3, 4))
                self.assertEqual(e["REMOTE_ADDR"], "198.51.100.10")

        def test_config_file_true(self):
                d = h.tempdir(self, "gcorn-proxy-")
                conf = os.path.join(d, "c.py")
                with open(conf, "w") as f:
                        f.write("proxy_protocol = True\nproxy_allow_ips = '127.0.0.0/8'\n")
                srv = self.start(APP, ["-c", conf])
                e = env_of(srv, prefix=v2_inet("198.51.100.11", "192.0.2.1", 3, 4))
                self.assertEqual(e["REMOTE_ADDR"], "198.51.100.11")

        def test_read_once_per_connection(self):
                srv = self.start(APP, ["--proxy-protocol", "v1"])
                req = h.build_request("GET", "/", [("Host", "x")])
                with srv.client() as c:
                        c.send(b"PROXY TCP4 198.51.100.12 192.0.2.1 7 8\r\n" + req + req)
                        for _ in range(2):
                                r = c.read_response()
                                self.assertEqual(r.json()["REMOTE_ADDR"], "198.51.100.12")
                        # a later "PROXY" line is a (bad) request line, not a header
                        c.send(b"PROXY TCP4 203.0.113.1 192.0.2.1 7 8\r\n" + req)
                        r = c.read_response()
                        self.assertEqual(r.status, 400)

        def test_split_header(self):
                srv = self.start(APP, ["--proxy-protocol", "auto"])
                for raw in (b"PROXY TCP4 198.51.100.13 192.0.2.1 7 8\r\n",
                            v2_inet("198.51.100.13", "192.0.2.1", 7, 8, b"\x04\x00\x01x")):
                        data = raw + h.build_request("GET", "/", [("Host", "x"), ("Connection", "close")])
                        with srv.connect() as s:
                                pos = 0
                                for cut in (1, 5, 13, 17, len(raw) - 1, len(raw) + 3, len(data)):
                                        s.sendall(data[pos:cut])
                                        pos = cut
                                        time.sleep(0.05)
                                out = h.recv_all(s)
                        r = h.parse_responses(out)[0]
                        self.assertEqual(r.json()["REMOTE_ADDR"], "198.51.100.13")

        def test_malformed_header_gets_400(self):
                srv = self.start(APP, ["--proxy-protocol", "auto"])
                req = h.build_request("GET", "/", [("Host", "x")])
                for bad in (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n",
                            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
                            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", b"PROXY " + b"x" * 120,
                            V2_SIG + b"\x31\x11\x00\x0c" + b"\x00" * 12,
                            v2_header(family=1, addresses=b"\x00" * 8)):
                        self.reject(srv, bad + req, 400)
                srv.wait_log(r"Invalid request from ip=127\.0\.0\.1: .*PROXY", count=8)
                self.assertEqual(env_of(srv)["REMOTE_ADDR"], "127.0.0.1")

        def test_untrusted_peer_gets_403(self):
                srv = self.start(APP, ["--proxy-protocol", "--proxy-allow-from", "10.0.0.0/8"])
                req = h.build_request("GET", "/", [("Host", "x")])
                self.reject(srv, b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n" + req, 403)
                self.reject(srv, v2_inet("1.2.3.4", "5.6.7.8", 1, 2) + req, 403)
                srv.wait_log(r"Invalid request from ip=127\.0\.0\.1: Proxy request from '127\.0\.0\.1' not allowed",
                             count=2)
                # without a header the peer is served as itself
                self.assertEqual(env_of(srv)["REMOTE_ADDR"], "127.0.0.1")

        def test_scheme_trust_is_about_the_socket_peer(self):
                srv = self.start(APP, ["--proxy-protocol", "v1"])
                e = env_of(srv, [("X-Forwarded-Proto", "https")], prefix=b"PROXY TCP4 198.51.100.14 192.0.2.1 7 8\r\n")
                self.assertEqual((e["REMOTE_ADDR"], e["wsgi.url_scheme"]), ("198.51.100.14", "https"))

        def test_unix_socket(self):
                d = h.tempdir(self, "gcorn-proxy-")
                srv = self.start(APP, ["--proxy-protocol", "v1", "--proxy-allow-from", "10.0.0.1"],
                                 bind="unix:" + os.path.join(d, "s"))
                e = env_of(srv, prefix=b"PROXY TCP4 198.51.100.15 192.0.2.1 7 8\r\n")
                self.assertEqual((e["REMOTE_ADDR"], e["REMOTE_PORT"]), ("198.51.100.15", "7"))


# ---- a real nginx in front ---------------------------------------------------------------

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def free_port():
        with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                return s.getsockname()[1]


SAMPLE_SITE = os.path.join(h.SRC, "contrib", "nginx", "gcorn.conf")


def nginx_site(upstream, listen):
        """contrib/nginx/gcorn.conf itself, pointed at the test's gcorn and port; TLS is
        simulated: nginx listens in plain HTTP and says X-Forwarded-Proto https."""
        with open(SAMPLE_SITE) as f:
                text = f.read()
        for old, new in (("server unix:/run/myapp/gcorn.sock;", "server %s;" % upstream),
                         ("listen 443 ssl;", "listen 127.0.0.1:%d;" % listen),
                         ("X-Forwarded-Proto $scheme;", "X-Forwarded-Proto https;"),
                         ("keepalive_timeout 1s;", "keepalive_timeout 20s;  # below gcorn's --keep-alive 30")):
                assert text.count(old) == 1, "%s no longer has %r" % (SAMPLE_SITE, old)
                text = text.replace(old, new)
        return text


class Nginx:
        def __init__(self, test, http_sites="", stream=""):
                self.dir = h.tempdir(test, "gcorn-nginx-")
                conf = os.path.join(self.dir, "nginx.conf")
                temp = os.path.join(self.dir, "tmp")
                os.mkdir(temp)
                text = ""
                if stream:
                        text += "load_module %s;\n" % STREAM_MODULE
                if os.geteuid() == 0:
                        text += "user root;\n"  # its workers must reach the test's UNIX socket
                text += """
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log info;
events { worker_connections 64; }
http {
    access_log %(d)s/access.log;
    client_body_temp_path %(t)s/body;
    proxy_temp_path %(t)s/proxy;
    fastcgi_temp_path %(t)s/fastcgi;
    uwsgi_temp_path %(t)s/uwsgi;
    scgi_temp_path %(t)s/scgi;
%(sites)s
}
""" % {"d": self.dir, "t": temp, "sites": http_sites}
                if stream:
                        text += "stream {\n%s\n}\n" % stream
                with open(conf, "w") as f:
                        f.write(text)
                with open(os.path.join(self.dir, "stderr.log"), "wb") as err:
                        self.proc = subprocess.Popen([NGINX, "-p", self.dir, "-c", conf,
                                                      "-e", os.path.join(self.dir, "error.log"),
                                                      "-g", "daemon off; master_process on;"],
                                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
                test.addCleanup(self.stop)

        def wait_port(self, port):
                deadline = time.monotonic() + 10
                while True:
                        if self.proc.poll() is not None:
                                raise AssertionError("nginx exited: %s" % self.log())
                        try:
                                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                                return
                        except OSError:
                                if time.monotonic() > deadline:
                                        raise AssertionError("nginx did not listen: %s" % self.log())
                                time.sleep(0.05)

        def log(self):
                out = ""
                for n in ("error.log", "stderr.log"):
                        try:
                                with open(os.path.join(self.dir, n), errors="replace") as f:
                                        out += f.read()
                        except OSError:
                                pass
                return out

        def stop(self):
                if self.proc.poll() is None:
                        self.proc.send_signal(signal.SIGTERM)
                        try:
                                self.proc.wait(timeout=10)
                        except subprocess.TimeoutExpired:
                                self.proc.kill()
                                self.proc.wait(timeout=10)


def fetch(port, path, body=None, headers=None):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body, headers=headers or {},
                                     method="POST" if body is not None else "GET")
        with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()


@unittest.skipIf(NGINX is None and not IN_CI, "nginx is not installed (apt-get install nginx-light)")
class NginxTest(h.ServerTestCase):
        def check_site(self, port, over_tcp):
                # what the app sees
                st, hd, body = fetch(port, "/", headers={"X-Forwarded-For": "203.0.113.9"})
                e = json.loads(body)
                self.assertEqual(e["wsgi.url_scheme"], "https")
                self.assertEqual(e["HTTP_X_FORWARDED_FOR"], "203.0.113.9, 127.0.0.1")
                self.assertEqual(e["HTTP_X_FORWARDED_HOST"], "127.0.0.1")
                self.assertEqual(e["REMOTE_ADDR"], "127.0.0.1" if over_tcp else "")
                # bodies of several MiB both ways
                up = os.urandom(5 * 1024 * 1024 + 17)
                st, hd, body = fetch(port, "/echo", body=up, headers={"Content-Type": "application/octet-stream"})
                self.assertEqual(st, 200)
                self.assertEqual(hd["X-Sha256"], hashlib.sha256(up).hexdigest())
                self.assertEqual(hashlib.sha256(body).hexdigest(), hashlib.sha256(up).hexdigest())
                n = 6 * 1024 * 1024 + 5
                st, hd, body = fetch(port, "/big?%d" % n)
                self.assertEqual(len(body), n)
                self.assertEqual(hashlib.sha256(body).hexdigest(), hd["X-Sha256"])
                # nginx keeps its upstream connection: the same one serves several requests
                seen = [json.loads(fetch(port, "/")[2]) for _ in range(5)]
                if over_tcp:
                        self.assertEqual(len({e["REMOTE_PORT"] for e in seen}), 1, seen)
                self.assertEqual(len({tuple(e["sockets"]) for e in seen}), 1, seen)

        def test_unix_socket_upstream(self):
                d = h.tempdir(self, "gcorn-proxy-")
                sock = os.path.join(d, "gcorn.sock")
                self.start(APP, ["--keep-alive", "30"], bind="unix:" + sock)
                port = free_port()
                ngx = Nginx(self, nginx_site("unix:" + sock, port))
                ngx.wait_port(port)
                self.check_site(port, over_tcp=False)

        def test_tcp_upstream(self):
                srv = self.start(APP, ["--keep-alive", "30"])
                port = free_port()
                ngx = Nginx(self, nginx_site("127.0.0.1:%d" % srv.port, port))
                ngx.wait_port(port)
                self.check_site(port, over_tcp=True)

        @unittest.skipIf(not os.path.exists(STREAM_MODULE) and not IN_CI,
                         "nginx's stream module is not installed (apt-get install libnginx-mod-stream)")
        def test_proxy_protocol_from_the_stream_module(self):
                srv = self.start(APP, ["--proxy-protocol", "v1"])
                port = free_port()
                stream = """
    server {
        listen 127.0.0.1:%d;
        proxy_pass 127.0.0.1:%d;
        proxy_protocol on;
    }
""" % (port, srv.port)
                ngx = Nginx(self, stream=stream)
                ngx.wait_port(port)
                with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                        client_port = c.getsockname()[1]
                        c.sendall(h.build_request("GET", "/", [("Host", "x"), ("Connection", "close")]))
                        r = h.parse_responses(h.recv_all(c))[0]
                e = r.json()
                self.assertEqual((e["REMOTE_ADDR"], e["REMOTE_PORT"]), ("127.0.0.1", str(client_port)))
                self.assertEqual((e["PROXY_PROTOCOL"], e["PROXY_PORT"]), ("TCP4", str(port)))


if __name__ == "__main__":
        h.main()
