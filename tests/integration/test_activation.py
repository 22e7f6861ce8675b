"""Socket activation outside a service manager: systemd-socket-activate passes listening
sockets (UNIX, IPv4, IPv6) the way a .socket unit does, with LISTEN_FDS/LISTEN_FDNAMES,
and gcorn serves on them without binding anything itself."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

ACTIVATE = shutil.which("systemd-socket-activate")


def free_port(family=socket.AF_INET, host="127.0.0.1"):
        with socket.socket(family, socket.SOCK_STREAM) as s:
                s.bind((host, 0))
                return s.getsockname()[1]


def ipv6_loopback():
        try:
                with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
                        s.bind(("::1", 0))
                return True
        except OSError:
                return False


def passthrough():
        """systemd-socket-activate gives its child only LISTEN_* and what -E names: keep the
        sanitizer settings of the test run (suppressions, PYTHONMALLOC) for gcorn."""
        args = []
        for k in ("ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS", "PYTHONMALLOC"):
                if k in os.environ:
                        args += ["-E", "%s=%s" % (k, os.environ[k])]
        return args


def get(family, addr, path="/"):
        # The activator binds after it starts: retry a refused connection for a while.
        deadline = time.monotonic() + 10
        while True:
                s = socket.socket(family, socket.SOCK_STREAM)
                s.settimeout(10)
                try:
                        s.connect(addr)
                        break
                except (ConnectionRefusedError, FileNotFoundError):
                        s.close()
                        if time.monotonic() > deadline:
                                raise
                        time.sleep(0.05)
        with s:
                s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                closed, data = h.wait_closed(s, 10)
        return data


@unittest.skipUnless(ACTIVATE, "systemd-socket-activate is not installed")
class ActivationTest(unittest.TestCase):
        def setUp(self):
                self.tmp = tempfile.mkdtemp(prefix="gcorn-activation-")
                self.addCleanup(shutil.rmtree, self.tmp, True)
                self.log = os.path.join(self.tmp, "log")
                self.addCleanup(self.check_sanitizers)

        def start(self, listens, names, args=()):
                cmd = [ACTIVATE] + passthrough()
                for l in listens:
                        cmd += ["-l", l]
                cmd += ["--fdname=" + ":".join(names), h.GCORN, "--chdir", h.APPS] + list(args) + ["routes:app"]
                with open(self.log, "wb") as f:
                        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
                self.addCleanup(self.stop, p)
                return p

        def stop(self, p):
                if p.poll() is None:
                        p.send_signal(signal.SIGTERM)
                        try:
                                p.wait(10)
                        except subprocess.TimeoutExpired:
                                p.kill()
                                p.wait(10)

        def check_sanitizers(self):
                # Runs after the servers were stopped (cleanups run last-registered first).
                text = self.text() if os.path.exists(self.log) else ""
                for marker in h.SANITIZER_MARKERS:
                        self.assertNotIn(marker, text, text)

        def text(self):
                with open(self.log, "rb") as f:
                        return f.read().decode("utf-8", "replace")

        def wait_log(self, rx, count=1, timeout=15):
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                        if len(re.findall(rx, self.text())) >= count:
                                return self.text()
                        time.sleep(0.05)
                self.fail("log never matched %r:\n%s" % (rx, self.text()))

        def test_unix_ipv4_ipv6_sockets_are_served(self):
                path = os.path.join(self.tmp, "s.sock")
                p4 = free_port()
                listens, names = [path, "127.0.0.1:%d" % p4], ["unix", "v4"]
                v6 = ipv6_loopback()
                if v6:
                        p6 = free_port(socket.AF_INET6, "::1")
                        listens.append("[::1]:%d" % p6)
                        names.append("v6")
                p = self.start(listens, names)
                # systemd-socket-activate starts the server on the first connection, which the
                # server then answers like any other.
                data = get(socket.AF_INET, ("127.0.0.1", p4))
                self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:200])
                log = self.wait_log(r"Booting worker")
                self.assertRegex(log, r'Listening at: unix:%s \(fd 3 "unix" from systemd\) \(%d\)' % (re.escape(path), p.pid))
                self.assertRegex(log, r'Listening at: http://127\.0\.0\.1:%d \(fd 4 "v4" from systemd\)' % p4)
                self.assertTrue(get(socket.AF_UNIX, path).startswith(b"HTTP/1.1 200 "))
                if v6:
                        self.assertRegex(log, r'Listening at: http://\[::1\]:%d \(fd 5 "v6" from systemd\)' % p6)
                        self.assertTrue(get(socket.AF_INET6, ("::1", p6)).startswith(b"HTTP/1.1 200 "))
                # Never bound by gcorn: the default 127.0.0.1:8000 is not used with inherited sockets.
                self.assertNotIn("127.0.0.1:8000", log)
                self.stop(p)
                self.assertEqual(p.returncode, 0, self.text())
                # An inherited UNIX socket's file belongs to whoever created it.
                self.assertTrue(os.path.exists(path))

        def test_bind_fd_name_picks_one_socket(self):
                p_a, p_b = free_port(), free_port()
                self.start(["127.0.0.1:%d" % p_a, "127.0.0.1:%d" % p_b], ["http", "api"], ["-b", "fd://api"])
                data = get(socket.AF_INET, ("127.0.0.1", p_b))
                self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:200])
                log = self.wait_log(r"Booting worker")
                self.assertRegex(log, r'Listening at: http://127\.0\.0\.1:%d \(fd 4 "api" from systemd\)' % p_b)
                self.assertNotIn('"http" from systemd', log)

        def test_datagram_socket_is_refused(self):
                port = free_port()
                cmd = [ACTIVATE] + passthrough() + ["--datagram", "-l", "127.0.0.1:%d" % port, "--fdname=dgram", h.GCORN,
                       "--chdir", h.APPS, "routes:app"]
                with open(self.log, "wb") as f:
                        q = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
                self.addCleanup(self.stop, q)
                # The activator starts gcorn on the first datagram; send until it has.
                deadline = time.monotonic() + 15
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                        while q.poll() is None and time.monotonic() < deadline:
                                s.sendto(b"x", ("127.0.0.1", port))
                                time.sleep(0.1)
                q.wait(5)
                self.assertNotEqual(q.returncode, 0, self.text())
                errors = [l for l in self.text().splitlines() if l.startswith("gcorn: error:")]
                self.assertEqual(len(errors), 1, self.text())
                self.assertIn("not a listening stream socket", errors[0])

        def test_inherited_tcp_sockets_are_tuned_and_unit_values_kept(self):
                # Two listeners passed the way systemd passes them (fds 3 and 4, LISTEN_PID set
                # by the process that execs gcorn): one as a unit with DeferAcceptSec=5 leaves
                # it, one without. The test keeps its own descriptors of the same sockets to
                # read their options once gcorn serves.
                keep, plain = socket.socket(), socket.socket()
                for s in (keep, plain):
                        self.addCleanup(s.close)
                        s.bind(("127.0.0.1", 0))
                        s.listen(16)
                keep.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 5)
                unit_value = keep.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT)
                wrapper = ("import os, sys\n"
                           "os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4)\n"
                           "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='2',"
                           " LISTEN_FDNAMES='keep:plain')\n"
                           "os.execv(sys.argv[3], sys.argv[3:])\n")
                cmd = [sys.executable, "-c", wrapper, str(keep.fileno()), str(plain.fileno()), h.GCORN,
                       "--chdir", h.APPS, "routes:app"]
                with open(self.log, "wb") as f:
                        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT,
                                             pass_fds=(keep.fileno(), plain.fileno()))
                self.addCleanup(self.stop, p)
                for s in (keep, plain):
                        data = get(socket.AF_INET, s.getsockname())
                        self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:200] + self.text().encode())
                self.wait_log(r'Listening at: http://127\.0\.0\.1:%d \(fd 4 "plain" from systemd\)'
                              % plain.getsockname()[1])
                self.assertEqual(keep.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT), unit_value)
                self.assertEqual(plain.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT), 1)
                for s in (keep, plain):
                        self.assertEqual(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), 1)
                self.stop(p)
                self.assertEqual(p.returncode, 0, self.text())


if __name__ == "__main__":
        unittest.main(verbosity=2)
