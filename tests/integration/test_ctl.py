"""The control socket and gcorn ctl: every command against a live server, who may connect,
and what a broken command gets."""

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402



def read_text(path):
        with open(path) as f:
                return f.read()


class CtlTest(unittest.TestCase):
        def start(self, workers=2, args=(), env=None, log_path=None):
                self.dir = h.tempdir(self, "gcorn-ctl-")
                self.sock = os.path.join(self.dir, "ctl")
                srv = h.Server("routes:app", args=["-w", str(workers), "--control-socket", self.sock] + list(args),
                               env=env, log_path=log_path)
                self.addCleanup(srv.stop)
                return srv

        def ctl(self, *args, json_out=False, check=True, sock=None, user=None):
                argv = [h.GCORN, "ctl", "--socket", sock or self.sock]
                if json_out:
                        argv.append("--json")
                argv += list(args)
                if user:
                        argv = ["setpriv", "--reuid", str(user), "--regid", str(user), "--clear-groups"] + argv
                p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
                if check:
                        self.assertEqual(p.returncode, 0, "%s: %s%s" % (args, p.stdout, p.stderr))
                if json_out and p.stdout:
                        return json.loads(p.stdout)
                return p

        def raw(self, data):
                """Sends bytes to the control socket and returns the answer line."""
                with socket.socket(socket.AF_UNIX) as s:
                        s.settimeout(10)
                        s.connect(self.sock)
                        try:
                                s.sendall(data)
                        except (BrokenPipeError, ConnectionResetError):
                                pass
                        return json.loads(h.recv_all(s).split(b"\n")[0])

        def live_workers(self):
                st = self.ctl("status", json_out=True)["data"]
                return [w for w in st["workers"] if w["state"] not in ("stopping", "retiring")]


class TestCtl(CtlTest):
        def test_socket_is_owners_only(self):
                self.start(workers=1)
                st = os.stat(self.sock)
                self.assertTrue(stat.S_ISSOCK(st.st_mode))
                self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
                self.assertEqual(st.st_uid, os.geteuid())

        def test_socket_mode_spellings(self):
                # Gunicorn reads the mode with its auto_int: int(x, 0), and 0NNN is octal too.
                for value, mode in (("0o666", 0o666), ("0660", 0o660), ("0O640", 0o640), ("0x1b6", 0o666),
                                    ("0b110100000", 0o640), ("438", 0o666), ("0o_6_4_0", 0o640)):
                        with self.subTest(value=value):
                                srv = self.start(workers=1, args=["--control-socket-mode", value])
                                self.assertEqual(stat.S_IMODE(os.stat(self.sock).st_mode), mode)
                                srv.stop()
                # The same through GUNICORN_CMD_ARGS, and a string in the config file.
                d = h.tempdir(self, "gcorn-ctl-conf-")
                conf = os.path.join(d, "c.py")
                with open(conf, "w") as f:
                        f.write('control_socket_mode = "0o640"\n')
                srv = self.start(workers=1, args=["-c", conf])
                self.assertEqual(stat.S_IMODE(os.stat(self.sock).st_mode), 0o640)
                srv.stop()
                srv = self.start(workers=1, env={"GUNICORN_CMD_ARGS": "--control-socket-mode 0660"})
                self.assertEqual(stat.S_IMODE(os.stat(self.sock).st_mode), 0o660)

        def test_socket_mode_refused(self):
                # What Gunicorn's int() or its validator refuses (a mode above 0o7777 is no mode).
                for value in ("0o8", "08", "0x", "-1", "-0o1", "6_", "0_6", "1e3", "rw", "", "0o10000"):
                        with self.subTest(value=value):
                                p = subprocess.run([h.GCORN, "--control-socket-mode", value, "routes:app"],
                                                   capture_output=True, text=True, timeout=30, cwd=h.APPS)
                                self.assertEqual(p.returncode, 2, p.stderr)
                                self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
                                self.assertIn("--control-socket-mode", p.stderr)

        def test_status_shows_request_in_flight(self):
                srv = self.start(workers=2)
                t = threading.Thread(target=srv.get, args=("/slow?s=3",))
                t.start()
                self.addCleanup(t.join)

                def busy():
                        st = self.ctl("status", json_out=True)["data"]
                        return [w for w in st["workers"] if w["in_flight"]] and st
                st = h.wait_until(busy, 10)
                self.assertTrue(st, "no request in flight")
                self.assertEqual(st["pid"], srv.pid)
                self.assertEqual(st["generation"], 1)
                self.assertIn("http://%s:%d" % (srv.host, srv.port), st["listeners"])
                self.assertRegex(st["settings_digest"], r"^[0-9a-f]{16}$")
                self.assertEqual(len(st["workers"]), 2)
                busy_w = [w for w in st["workers"] if w["in_flight"]][0]
                req = busy_w["in_flight"][0]
                self.assertEqual(busy_w["state"], "busy")
                self.assertEqual((req["method"], req["path"], req["remote_addr"]), ("GET", "/slow?s=3", "127.0.0.1"))
                self.assertGreaterEqual(req["age"], 0)
                for w in st["workers"]:
                        self.assertGreater(w["rss"], 0)
                        self.assertIn(w["pid"], srv.worker_pids())
                # The human table says the same.
                text = self.ctl("workers").stdout
                self.assertIn("GET /slow?s=3 from 127.0.0.1", text)
                text = self.ctl("status").stdout
                self.assertIn("master pid %d" % srv.pid, text)
                # --pid finds the socket of that master.
                p = subprocess.run([h.GCORN, "ctl", "--pid", str(srv.pid), "--json", "workers"], capture_output=True,
                                   text=True, timeout=30)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(len(json.loads(p.stdout)["data"]["workers"]), 2)

        def test_scale(self):
                self.start(workers=2)
                for arg, want in (("4", 4), ("-1", 3), ("+1", 4), ("1", 1)):
                        ans = self.ctl("scale", arg, json_out=True)
                        self.assertEqual(ans["data"]["workers"], want)
                        got = h.wait_until(lambda: len(self.live_workers()) == want and
                                           all(w["state"] == "idle" for w in self.live_workers()), 20)
                        self.assertTrue(got, "scale %s: %s" % (arg, self.live_workers()))
                for bad in ("0", "-5", "x", "+"):
                        p = self.ctl("scale", bad, check=False)
                        self.assertEqual(p.returncode, 1)
                        self.assertIn("scale", p.stderr)

        def test_reload_under_load(self):
                srv = self.start(workers=2)
                before = {w["pid"] for w in self.live_workers()}
                failures, done = [], [0]
                stop = threading.Event()

                def load():
                        while not stop.is_set():
                                try:
                                        r = srv.get("/")
                                        if r.status != 200:
                                                failures.append(r.status)
                                        done[0] += 1
                                except Exception as e:  # noqa: BLE001
                                        failures.append(repr(e))
                threads = [threading.Thread(target=load) for _ in range(2)]
                for t in threads:
                        t.start()
                try:
                        h.wait_until(lambda: done[0] >= 20, 10)
                        ans = self.ctl("reload", json_out=True)
                        self.assertEqual(ans["data"]["generation"], 2)
                        # Answered once the new generation serves: its workers are up now.
                        st = self.ctl("status", json_out=True)["data"]
                        self.assertEqual(st["generation"], 2)
                        new = [w for w in st["workers"] if w["generation"] == 2]
                        self.assertEqual(len(new), 2)
                        self.assertTrue(all(w["state"] in ("idle", "busy") for w in new), new)
                        n = done[0]
                        h.wait_until(lambda: done[0] >= n + 20, 10)
                finally:
                        stop.set()
                        for t in threads:
                                t.join()
                self.assertEqual(failures, [])
                self.assertTrue(h.wait_until(lambda: not before & {w["pid"] for w in self.ctl(
                        "status", json_out=True)["data"]["workers"]}, 20))

        def test_kill_replaces_worker(self):
                srv = self.start(workers=2)
                victim = self.live_workers()[0]["pid"]
                ans = self.ctl("kill", str(victim), json_out=True)
                self.assertEqual(ans["data"]["pid"], victim)
                srv.wait_log(r"Worker exiting \(pid: %d\)" % victim)
                ok = h.wait_until(lambda: len(self.live_workers()) == 2 and
                                  victim not in {w["pid"] for w in self.live_workers()}, 20)
                self.assertTrue(ok)
                p = self.ctl("kill", "1", check=False)
                self.assertEqual(p.returncode, 1)
                self.assertIn("PID of one of the workers", p.stderr)
                self.assertEqual(srv.get("/").status, 200)

        def test_reopen_logs(self):
                d = h.tempdir(self, "gcorn-ctl-log-")
                log = os.path.join(d, "error.log")
                srv = self.start(workers=1, args=["--error-logfile", log], log_path=log)
                os.rename(log, log + ".1")
                self.ctl("reopen-logs")
                self.assertTrue(h.wait_until(lambda: os.path.exists(log), 10))
                self.assertTrue(h.wait_until(lambda: "Handling signal: usr1" in read_text(log), 10))
                self.assertEqual(srv.get("/").status, 200)

        def test_stop(self):
                srv = self.start(workers=2)
                t = threading.Thread(target=lambda: self.__dict__.setdefault("slow", srv.get("/slow?s=1")))
                t.start()
                h.wait_until(lambda: any(w["in_flight"] for w in self.live_workers()), 10)
                self.ctl("stop")
                t.join()
                self.assertEqual(self.slow.status, 200)
                self.assertEqual(srv.wait_exit(20), 0)
                self.assertFalse(os.path.exists(self.sock))

        def test_other_user_refused(self):
                # A mode that lets anyone reach the socket (0o666): the peer check alone must keep
                # others out.
                srv = self.start(workers=1, args=["--control-socket-mode", "438"])
                self.assertEqual(stat.S_IMODE(os.stat(self.sock).st_mode), 0o666)
                os.chmod(self.dir, 0o711)
                p = self.ctl("scale", "3", check=False, user=65534)
                self.assertEqual(p.returncode, 1)
                self.assertIn("permission denied", p.stderr)
                srv.wait_log(r"Control socket: refused pid \d+ of uid %d" % 65534)
                st = self.ctl("status", json_out=True)["data"]
                self.assertEqual(st["target_workers"], 1)

        def test_every_command_in_text_and_json(self):
                # Each command answers a readable text and, with --json, its JSON line (each
                # runs twice: scale and reload twice over).
                srv = self.start(workers=1)
                pid = self.live_workers()[0]["pid"]
                for args, text, data in ((("status",), "master pid %d" % srv.pid, lambda d: d["pid"] == srv.pid),
                                         (("workers",), "PID", lambda d: len(d["workers"]) == 1),
                                         (("scale", "+1"), "workers: 2 (were 1)", lambda d: d["workers"] == 3),
                                         (("scale", "1"), "workers: 1 (were 3)", lambda d: d["workers"] == 1),
                                         (("reopen-logs",), "logs reopened", lambda d: d == {}),
                                         (("reload",), "generation 2 serving", lambda d: d["generation"] == 3)):
                        with self.subTest(args=args):
                                self.assertIn(text, self.ctl(*args).stdout)
                                ans = self.ctl(*args, json_out=True)
                                self.assertTrue(ans["ok"], ans)
                                self.assertTrue(data(ans["data"]), ans)
                                self.assertIsInstance(ans["text"], str)
                self.assertTrue(h.wait_until(lambda: len(self.live_workers()) == 1, 20))
                pid = self.live_workers()[0]["pid"]
                self.assertIn("worker %d told to stop" % pid, self.ctl("kill", str(pid)).stdout)
                self.assertTrue(h.wait_until(lambda: len(self.live_workers()) == 1 and
                                             self.live_workers()[0]["pid"] != pid, 20))
                pid = self.live_workers()[0]["pid"]
                self.assertEqual(self.ctl("kill", str(pid), json_out=True)["data"], {"pid": pid})
                self.assertEqual(self.ctl("stop", json_out=True)["data"], {"pid": srv.pid})
                self.assertEqual(srv.wait_exit(20), 0)
                # An error is a JSON answer too, and exit status 1.
                p = self.ctl("status", json_out=True, check=False)
                self.assertEqual(p.returncode, 1)

        def test_owner_and_root_only(self):
                # A master of an unprivileged user: that user and root get in, a third user does
                # not, whatever the socket's mode lets reach it.
                d = h.tempdir(self, "gcorn-ctl-owner-")
                os.chmod(d, 0o755)
                self.dir = os.path.join(d, "run")
                os.mkdir(self.dir)
                os.chown(self.dir, 65534, 65534)
                self.sock = os.path.join(self.dir, "ctl")
                wrapper = os.path.join(d, "as-nobody")
                with open(wrapper, "w") as f:
                        f.write('#!/bin/sh\nexec setpriv --reuid 65534 --regid 65534 --clear-groups %s "$@"\n' % h.GCORN)
                os.chmod(wrapper, 0o755)
                gcorn, h.GCORN = h.GCORN, wrapper
                try:
                        srv = h.Server("routes:app", args=["-w", "1", "--control-socket", self.sock,
                                                           "--control-socket-mode", "0o666"])
                finally:
                        h.GCORN = gcorn
                self.addCleanup(srv.stop)
                self.assertEqual(os.stat(self.sock).st_uid, 65534)
                self.assertEqual(self.ctl("status", json_out=True)["data"]["pid"], srv.pid)
                self.assertEqual(self.ctl("status", json_out=True, user=65534)["data"]["pid"], srv.pid)
                p = self.ctl("scale", "2", check=False, user=65533)
                self.assertEqual(p.returncode, 1)
                self.assertIn("permission denied", p.stderr)
                srv.wait_log(r"Control socket: refused pid \d+ of uid 65533 \(only uid 65534 and root may connect\)")
                self.assertEqual(self.ctl("status", json_out=True)["data"]["target_workers"], 1)

        def test_bad_commands(self):
                srv = self.start(workers=1)
                for data, why in ((b"garbage\n", "malformed"), (b"[1, 2]\n", "malformed"),
                                  (b'{"command": "status"\n', "malformed"),
                                  (b'{"args": []}\n', "no \\\"command\\\""),
                                  (b'{"command": "nope"}\n', "unknown command"),
                                  (b'{"command": "scale", "args": [{"a": 1}]}\n', "malformed"),
                                  (b"[" * 100 + b"]" * 100 + b"\n", "malformed")):
                        ans = self.raw(data)
                        self.assertFalse(ans["ok"], data)
                        self.assertIn(why.replace("\\", ""), ans["error"], data)
                ans = self.raw(b"x" * (70 * 1024))
                self.assertFalse(ans["ok"])
                self.assertIn("too long", ans["error"])
                # A client that connects and says nothing does not hold up the master.
                idle = socket.socket(socket.AF_UNIX)
                idle.connect(self.sock)
                self.addCleanup(idle.close)
                self.assertEqual(srv.get("/").status, 200)
                self.assertEqual(self.ctl("status", json_out=True)["data"]["target_workers"], 1)
                self.assertTrue(srv.alive())


@unittest.skipUnless(os.environ.get("GCORN_FAULT_LIB"), "needs the fault-injection library")
class TestAcceptErrors(CtlTest):
        def test_accept_error_pauses_instead_of_spinning(self):
                # accept() fails with EMFILE for 1.5 s from the master's first call, the one our
                # connection causes: the master logs it and waits, rather than poll a listener
                # that stays readable over and over, and answers once accept() works again.
                env = {"LD_PRELOAD": os.environ["GCORN_FAULT_LIB"], "GCORN_FAULT_ACCEPT_ERRNO": "24",
                       "GCORN_FAULT_ACCEPT_MS": "1500"}
                if "ASAN_OPTIONS" in os.environ:
                        env["ASAN_OPTIONS"] = os.environ["ASAN_OPTIONS"] + ":verify_asan_link_order=0"
                srv = self.start(workers=1, env=env)
                self.assertEqual(self.ctl("status", json_out=True)["data"]["pid"], srv.pid)
                failures = re.findall(r"Control socket: accept\(\) failed", srv.log())
                self.assertGreaterEqual(len(failures), 1)
                self.assertLessEqual(len(failures), 3, srv.log()[-2000:])
                # The metrics listener, the same way.
                metrics = os.path.join(self.dir, "metrics")
                srv = self.start(workers=1, args=["--metrics-bind", "unix:" + metrics], env=env)
                with socket.socket(socket.AF_UNIX) as s:
                        s.settimeout(10)
                        s.connect(metrics)
                        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                        self.assertIn(b"gcorn_generation 1", h.recv_all(s))
                failures = re.findall(r"Metrics: accept\(\) failed", srv.log())
                self.assertGreaterEqual(len(failures), 1)
                self.assertLessEqual(len(failures), 3, srv.log()[-2000:])


class TestCtlSocketPlace(unittest.TestCase):
        def test_no_control_socket(self):
                d = h.tempdir(self, "gcorn-ctl-")
                srv = h.Server("routes:app", args=["-w", "1", "--no-control-socket"],
                               env={"RUNTIME_DIRECTORY": d, "HOME": d})
                self.addCleanup(srv.stop)
                self.assertEqual(os.listdir(d), [])
                self.assertNotIn("Control socket", srv.log())

        def test_instance(self):
                # --instance NAME is the shipped unit's place: /run/gcorn/NAME/ctl.
                name = "itest-%d" % os.getpid()
                made_parent = not os.path.isdir("/run/gcorn")
                d = os.path.join("/run/gcorn", name)
                os.makedirs(d)
                self.addCleanup(lambda: made_parent and os.path.isdir("/run/gcorn") and not os.listdir("/run/gcorn")
                                and os.rmdir("/run/gcorn"))
                self.addCleanup(shutil.rmtree, d, True)
                srv = h.Server("routes:app", args=["-w", "1"], env={"RUNTIME_DIRECTORY": d + ":/nonexistent"})
                self.addCleanup(srv.stop)
                self.assertIn("Control socket at: %s/ctl" % d, srv.log())
                p = subprocess.run([h.GCORN, "ctl", "--instance", name, "--json", "status"], capture_output=True,
                                   text=True, timeout=30)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(json.loads(p.stdout)["data"]["pid"], srv.pid)

        def test_default_places(self):
                d = h.tempdir(self, "gcorn-ctl-")
                for env, path in (({"RUNTIME_DIRECTORY": os.path.join(d, "run")}, os.path.join(d, "run", "ctl")),
                                  ({"XDG_RUNTIME_DIR": d}, os.path.join(d, "gunicorn.ctl")),
                                  ({"HOME": d}, os.path.join(d, ".gunicorn", "gunicorn.ctl"))):
                        if "RUNTIME_DIRECTORY" in env:
                                os.mkdir(env["RUNTIME_DIRECTORY"])
                        full = {"RUNTIME_DIRECTORY": "", "XDG_RUNTIME_DIR": "", "HOME": ""}
                        full.update(env)
                        srv = h.Server("routes:app", args=["-w", "1"], env=full)
                        try:
                                self.assertIn("Control socket at: %s" % path, srv.log())
                                p = subprocess.run([h.GCORN, "ctl", "--socket", path, "--json", "status"],
                                                   capture_output=True, text=True, timeout=30)
                                self.assertEqual(json.loads(p.stdout)["data"]["pid"], srv.pid)
                                # A second server on the same default place leaves the first its socket.
                                other = h.Server("routes:app", args=["-w", "1"], env=full)
                                try:
                                        self.assertIn("in use by another server", other.log())
                                        p = subprocess.run([h.GCORN, "ctl", "--socket", path, "--json", "status"],
                                                           capture_output=True, text=True, timeout=30)
                                        self.assertEqual(json.loads(p.stdout)["data"]["pid"], srv.pid)
                                finally:
                                        other.stop()
                        finally:
                                srv.stop()
                        self.assertFalse(os.path.exists(path))


if __name__ == "__main__":
        h.main()
