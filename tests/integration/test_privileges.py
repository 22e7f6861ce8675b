"""user, group, initgroups and umask: the workers drop privileges after the sockets are bound;
umask applies to the UNIX socket's bind() alone. Dropping needs root (as CI runs the suite)."""

import grp
import json
import os
import pwd
import select
import signal
import stat
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

APP = '''
import json, os

def application(environ, start_response):
    if environ["PATH_INFO"] == "/file":
        path = environ["QUERY_STRING"]
        with open(path, "w") as f:
            f.write("x")
        body = {"mode": os.stat(path).st_mode & 0o777}
    else:
        body = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
                "groups": sorted(os.getgroups()), "pid": os.getpid()}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]
'''

ROOT = os.geteuid() == 0


def proc_ids(pid):
        """(uid, gid, groups) of a process, from /proc/PID/status: real, effective, saved, fs."""
        ids = {}
        with open("/proc/%d/status" % pid) as f:
                for line in f:
                        key, _, value = line.partition(":")
                        if key in ("Uid", "Gid", "Groups"):
                                ids[key] = [int(x) for x in value.split()]
        return ids


def app_dir(test):
        """A directory the workers can read whoever they run as."""
        d = h.tempdir(test, "gcorn-privs-")
        os.chmod(d, 0o755)
        with open(os.path.join(d, "privapp.py"), "w") as f:
                f.write(APP)
        os.chmod(os.path.join(d, "privapp.py"), 0o644)
        return d


def start(test, args=(), config=None, bind="127.0.0.1:0", log_path=None):
        d = app_dir(test)
        if config is not None:
                path = os.path.join(d, "gunicorn.conf.py")
                with open(path, "w") as f:
                        f.write(config)
                args = ["-c", path] + list(args)
        s = h.Server("privapp:application", args=args, chdir=d, bind=bind, log_path=log_path)
        test.addCleanup(s.stop)
        return s


def member_pair():
        """A user and a group that lists it as a member (a supplementary group), or None."""
        for g in grp.getgrall():
                for name in g.gr_mem:
                        try:
                                pw = pwd.getpwnam(name)
                        except KeyError:
                                continue
                        if pw.pw_gid != g.gr_gid and pw.pw_uid != 0:
                                return pw, g
        return None


@unittest.skipUnless(ROOT, "dropping privileges needs root")
class TestUser(unittest.TestCase):
        def setUp(self):
                self.nobody = pwd.getpwnam("nobody")

        def check_worker(self, s, uid, gid, groups):
                r = s.get("/")
                self.assertEqual(r.status, 200, r)
                info = r.json()
                self.assertEqual((info["uid"], info["euid"], info["gid"]), (uid, uid, gid), info)
                self.assertEqual(info["groups"], sorted(groups), info)
                ids = proc_ids(info["pid"])
                self.assertEqual(ids["Uid"], [uid] * 4, ids)
                self.assertEqual(ids["Gid"], [gid] * 4, ids)
                # The master keeps root: it reopens logs and forks the next workers.
                self.assertEqual(proc_ids(s.pid)["Uid"], [0] * 4)
                return info

        def test_config_file_user(self):
                # Found in trial: this line left the workers running as root.
                s = start(self, config='user = "nobody"\n')
                self.check_worker(s, self.nobody.pw_uid, self.nobody.pw_gid, [self.nobody.pw_gid])

        def test_hup_applies_a_new_user(self):
                s = start(self, config='user = "nobody"\n')
                self.assertEqual(s.get("/").json()["uid"], self.nobody.pw_uid)
                conf = [a for a in s.argv if a.endswith("gunicorn.conf.py")][0]
                with open(conf, "w") as f:
                        f.write("user = None\n")
                os.kill(s.pid, signal.SIGHUP)
                s.wait_log(r"Reload complete")
                self.assertTrue(h.wait_until(lambda: s.get("/").json()["uid"] == 0, 10))

        def test_cli_numeric_user_and_group_name(self):
                g = grp.getgrgid(self.nobody.pw_gid).gr_name
                daemon = grp.getgrnam("daemon") if "daemon" in [x.gr_name for x in grp.getgrall()] else None
                group = daemon.gr_name if daemon else g
                gid = daemon.gr_gid if daemon else self.nobody.pw_gid
                s = start(self, args=["-u", str(self.nobody.pw_uid), "--group", group])
                self.check_worker(s, self.nobody.pw_uid, gid, [gid])

        def test_group_only(self):
                s = start(self, args=["-g", str(self.nobody.pw_gid)])
                r = s.get("/").json()
                self.assertEqual((r["uid"], r["gid"], r["groups"]), (0, self.nobody.pw_gid, [self.nobody.pw_gid]))

        def test_initgroups(self):
                pair = member_pair()
                if not pair:
                        self.skipTest("no user with a supplementary group here")
                pw, g = pair
                s = start(self, args=["-u", pw.pw_name, "--initgroups"])
                info = self.check_worker(s, pw.pw_uid, pw.pw_gid, os.getgrouplist(pw.pw_name, pw.pw_gid))
                self.assertIn(g.gr_gid, info["groups"])
                s.stop()
                # Without it, only the user's group: none of root's, none of the user's others.
                s = start(self, args=["-u", pw.pw_name])
                self.check_worker(s, pw.pw_uid, pw.pw_gid, [pw.pw_gid])

        def test_unix_socket_given_to_the_user(self):
                d = h.tempdir(self, "gcorn-privs-sock-")
                os.chmod(d, 0o755)
                path = os.path.join(d, "s.sock")
                s = start(self, args=["-u", "nobody"], bind="unix:" + path)
                st = os.stat(path)
                self.assertEqual((st.st_uid, st.st_gid), (self.nobody.pw_uid, self.nobody.pw_gid))
                self.assertEqual(s.get("/").json()["uid"], self.nobody.pw_uid)

        def test_log_files_given_to_the_user(self):
                d = h.tempdir(self, "gcorn-privs-log-")
                err, acc = os.path.join(d, "error.log"), os.path.join(d, "access.log")
                before = os.stat("/dev/null")
                start(self, args=["-u", "nobody", "--error-logfile", err, "--access-logfile", acc], log_path=err)
                for path in (err, acc):
                        st = os.stat(path)
                        self.assertEqual((st.st_uid, st.st_gid), (self.nobody.pw_uid, self.nobody.pw_gid), path)
                # Not what is not a regular file.
                s = start(self, args=["-u", "nobody", "--access-logfile", "/dev/null"])
                self.assertEqual(s.get("/").status, 200)
                after = os.stat("/dev/null")
                self.assertEqual((after.st_uid, after.st_gid), (before.st_uid, before.st_gid))

        def test_initgroups_without_user_warns(self):
                s = start(self, args=["--initgroups"])
                s.wait_log(r"initgroups has no effect without user")
                self.assertEqual(s.get("/").json()["uid"], 0)

        def test_unknown_user_and_group(self):
                for flag, word in (("-u", "user"), ("-g", "group")):
                        p = subprocess.run([h.GCORN, flag, "no-such-name-xyz", "privapp:application"],
                                           capture_output=True, timeout=15, cwd=app_dir(self))
                        self.assertNotEqual(p.returncode, 0)
                        err = p.stderr.decode().strip().splitlines()
                        self.assertEqual(len(err), 1, err)
                        self.assertIn("no such " + word, err[0])


def others_can_run(path):
        """Whether a user other than the owner can reach and run path."""
        path = os.path.abspath(path)
        while True:
                if not os.stat(path).st_mode & stat.S_IXOTH:
                        return False
                parent = os.path.dirname(path)
                if parent == path:
                        return True
                path = parent


@unittest.skipUnless(ROOT, "running gcorn as another user needs root")
class TestNotRoot(unittest.TestCase):
        """Under User= or DynamicUser=, gcorn is not root: naming another user is an error."""

        def setUp(self):
                if not others_can_run(h.GCORN):
                        self.skipTest("nobody cannot run %s" % h.GCORN)

        def run_as_nobody(self, args):
                d = app_dir(self)
                return subprocess.run([h.GCORN, "-b", "127.0.0.1:0"] + args + ["privapp:application"],
                                      capture_output=True, timeout=15, cwd=d, user="nobody", group="nogroup",
                                      extra_groups=[], stdin=subprocess.DEVNULL)

        def test_other_user_is_an_error(self):
                for args, setting in ((["-u", "root"], "User="), (["-g", "root"], "Group="),
                                      (["-u", "daemon"], "User=")):
                        p = self.run_as_nobody(args)
                        self.assertNotEqual(p.returncode, 0, args)
                        err = p.stderr.decode().strip().splitlines()
                        self.assertEqual(len(err), 1, err)
                        self.assertIn(setting, err[0])

        def test_same_user_is_fine(self):
                d = app_dir(self)
                p = subprocess.Popen([h.GCORN, "-b", "127.0.0.1:0", "-u", "nobody", "privapp:application"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=d, user="nobody",
                                     group="nogroup", extra_groups=[], stdin=subprocess.DEVNULL,
                                     start_new_session=True)
                out = b""
                try:
                        deadline = time.monotonic() + h.START_DEADLINE
                        while b"Booting worker" not in out and time.monotonic() < deadline:
                                ready, _, _ = select.select([p.stderr], [], [], 0.2)
                                if ready:
                                        chunk = os.read(p.stderr.fileno(), 4096)
                                        if not chunk:
                                                break
                                        out += chunk
                        self.assertIn(b"Booting worker", out)
                finally:
                        p.terminate()
                        p.wait(timeout=15)
                        p.stderr.close()


class TestUmask(unittest.TestCase):
        def setUp(self):
                # A process umask that is not Gunicorn's 0, as a unit's UMask= would be.
                old = os.umask(0o022)
                self.addCleanup(os.umask, old)

        def socket_mode(self, args):
                d = h.tempdir(self, "gcorn-umask-")
                path = os.path.join(d, "s.sock")
                s = start(self, args=args, bind="unix:" + path)
                mode = os.stat(path).st_mode
                self.assertTrue(stat.S_ISSOCK(mode))
                return s, stat.S_IMODE(mode)

        def test_default_socket_is_world_connectable(self):
                # Gunicorn's umask 0: nginx's worker user can connect.
                s, mode = self.socket_mode([])
                self.assertEqual(mode, 0o777)
                self.assertEqual(s.get("/").status, 200)

        def test_umask_spellings(self):
                for value in ("0o22", "022", "18", "0x12"):
                        s, mode = self.socket_mode(["--umask", value])
                        self.assertEqual(mode, 0o755, value)
                        s.stop()
                s, mode = self.socket_mode(["-m", "0o77"])
                self.assertEqual(mode, 0o700)

        def test_umask_in_config_file(self):
                d = h.tempdir(self, "gcorn-umask-")
                path = os.path.join(d, "s.sock")
                start(self, config="umask = 0o27\n", bind="unix:" + path)
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o750)

        def test_not_process_wide(self):
                # The app's files keep the process umask (the unit's UMask=), not gcorn's 0.
                d = h.tempdir(self, "gcorn-umask-")
                os.chmod(d, 0o777)
                s = start(self)
                r = s.get("/file?" + os.path.join(d, "made"))
                self.assertEqual(r.json()["mode"], 0o644)

        def test_bad_umask(self):
                for value in ("abc", "-1", "0o1000", "09"):
                        p = subprocess.run([h.GCORN, "--umask", value, "privapp:application"],
                                           capture_output=True, timeout=15, cwd=app_dir(self))
                        self.assertNotEqual(p.returncode, 0, value)
                        err = p.stderr.decode().strip().splitlines()
                        self.assertEqual(len(err), 1, err)
                        self.assertIn("umask", err[0])


if __name__ == "__main__":
        unittest.main(verbosity=2)
