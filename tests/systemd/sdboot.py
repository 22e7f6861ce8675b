"""A private systemd for tests, booted inside namespaces while PID 1 of the machine is not
systemd (or is, and must not be touched).

    with SdBoot(units=dir, payload=dir, etc=dir, binds=[(host, inside)]) as sd:
            sd.run("systemctl", "start", "x.socket")
            sd.netns_argv("curl", ...)          # for commands that only need the network

Isolation: PID, mount, UTS, IPC, network and cgroup namespaces; a cgroup2 sub-tree of our
own; fresh tmpfs /run and /tmp; overlays on /etc and /var (thrown away); host enablement
removed inside the overlay; every generator and every unit wanted by the vendor targets
masked (the journal aside); a volatile journald; PID 1's console bound to a file; an empty
environment; a boot target that starts the journal only. Nothing is mounted in the host's
mount namespace and no host process is signalled: cleanup kills the PID 1 we started, which
ends its whole PID namespace, then removes its cgroups and state dir.

Usable from the command line too, for debugging: `sdboot.py shell [UNITS_DIR]` boots and
opens a shell inside.
"""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
INIT = os.path.join(HERE, "sdboot-init.sh")
SYSTEMD = "/lib/systemd/systemd"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

UNIT_DIRS = ["/etc/systemd/system", "/usr/local/lib/systemd/system", "/lib/systemd/system",
             "/usr/lib/systemd/system"]
GENERATOR_DIRS = ["/etc/systemd/system-generators", "/usr/local/lib/systemd/system-generators",
                  "/lib/systemd/system-generators", "/usr/lib/systemd/system-generators"]
KEEP_UNITS = {"systemd-journald.service", "systemd-journald.socket"}
# Host-mutating or useless units, masked even if no vendor target wants them.
ALWAYS_MASK = [
        "systemd-tmpfiles-setup.service", "systemd-tmpfiles-setup-dev.service",
        "systemd-tmpfiles-clean.service", "systemd-tmpfiles-clean.timer",
        "systemd-sysctl.service", "systemd-sysusers.service", "systemd-journal-flush.service",
        "systemd-journald-dev-log.socket", "systemd-journald-audit.socket",
        "systemd-journal-catalog-update.service", "systemd-udevd.service",
        "systemd-udevd-control.socket", "systemd-udevd-kernel.socket", "systemd-udev-trigger.service",
        "systemd-udev-settle.service", "systemd-logind.service", "dbus.service", "dbus.socket",
        "systemd-random-seed.service", "systemd-update-utmp.service",
        "systemd-update-utmp-runlevel.service", "systemd-binfmt.service",
        "proc-sys-fs-binfmt_misc.automount", "proc-sys-fs-binfmt_misc.mount",
        "systemd-modules-load.service", "kmod-static-nodes.service",
        "systemd-machine-id-commit.service", "systemd-firstboot.service",
        "systemd-hwdb-update.service", "systemd-update-done.service", "ldconfig.service",
        "systemd-pstore.service", "systemd-remount-fs.service", "systemd-boot-update.service",
        "systemd-ask-password-console.path", "systemd-ask-password-wall.path",
        "systemd-initctl.socket", "systemd-networkd.service", "systemd-networkd.socket",
        "systemd-resolved.service", "systemd-timesyncd.service", "systemd-oomd.service",
        "systemd-oomd.socket", "systemd-userdbd.socket", "systemd-homed.service",
        "console-getty.service", "getty-static.service", "systemd-repart.service",
        "systemd-pcrphase.service", "systemd-pcrphase-sysinit.service", "cron.service",
        "dev-hugepages.mount", "dev-mqueue.mount", "sys-kernel-config.mount",
        "sys-kernel-debug.mount", "sys-kernel-tracing.mount", "sys-fs-fuse-connections.mount",
]


class SdBootError(Exception):
        pass


def _cgroup2_root():
        """The host's cgroup2 mount (the unified hierarchy), or None."""
        with open("/proc/self/mountinfo") as f:
                for line in f:
                        pre, _, post = line.partition(" - ")
                        if post.split()[0] == "cgroup2":
                                return pre.split()[4]
        return None


def preflight():
        """None when a private systemd can boot here, else the reason it cannot."""
        if os.geteuid() != 0:
                return "not root"
        if not os.access(SYSTEMD, os.X_OK):
                return "%s is missing" % SYSTEMD
        for tool in ("unshare", "nsenter", "ip", "mount"):
                if shutil.which(tool, path=PATH) is None:
                        return "%s is missing" % tool
        if _cgroup2_root() is None:
                return "no cgroup2 hierarchy is mounted"
        d = tempfile.mkdtemp(prefix="sdboot-pre.")
        try:
                script = ("set -e; mount -t tmpfs sdb-pre '{d}'; mkdir '{d}/l' '{d}/u' '{d}/w' '{d}/m' '{d}/c';"
                          " mount -t overlay sdb-pre -o lowerdir='{d}/l',upperdir='{d}/u',workdir='{d}/w' '{d}/m';"
                          " mount -t cgroup2 sdb-pre '{d}/c'").format(d=d)
                p = subprocess.run(["unshare", "--mount", "--cgroup", "--pid", "--fork", "--net",
                                    "--propagation", "private", "sh", "-c", script],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=20)
                if p.returncode != 0:
                        return "namespaces, overlayfs or a cgroup2 mount refused: " + \
                                p.stdout.decode("utf-8", "replace").strip()
        except (OSError, subprocess.SubprocessError) as e:
                return "unshare failed: %s" % e
        finally:
                os.rmdir(d)
        return None


def _units_to_mask():
        names = set(ALWAYS_MASK)
        for base in UNIT_DIRS:
                for d in glob.glob(os.path.join(base, "*.wants")) + glob.glob(os.path.join(base, "*.requires")):
                        names.update(os.listdir(d))
        return sorted(n for n in names if n not in KEEP_UNITS)


def _generators_to_mask():
        names = set()
        for d in GENERATOR_DIRS:
                if os.path.isdir(d):
                        names.update(os.listdir(d))
        return sorted(names)


def _copytree(src, dst):
        if src is not None:
                shutil.copytree(src, dst, symlinks=True)


class SdBoot:
        """One private systemd. Boots in boot() (or on entering a with block)."""

        def __init__(self, units=None, payload=None, etc=None, binds=(), keep=None):
                self.units = units
                self.payload = payload
                self.etc = etc
                self.binds = list(binds)
                self.keep = keep if keep is not None else os.environ.get("SDB_KEEP") == "1"
                self.dir = None
                self.cgroup = None
                self.proc = None
                self.pid = None
                self.boot_s = None

        def __enter__(self):
                try:
                        self.boot()
                except BaseException:
                        self.cleanup()
                        raise
                return self

        def __exit__(self, *exc):
                self.cleanup()
                return False

        # -- boot ----------------------------------------------------------------

        def boot(self, timeout=20.0):
                t0 = time.monotonic()
                self.dir = tempfile.mkdtemp(prefix="sdboot.")
                os.chmod(self.dir, 0o755)
                _copytree(self.units, os.path.join(self.dir, "units"))
                _copytree(self.payload, os.path.join(self.dir, "payload"))
                _copytree(self.etc, os.path.join(self.dir, "etc"))
                with open(os.path.join(self.dir, "masks"), "w") as f:
                        f.write("\n".join(_units_to_mask()) + "\n")
                with open(os.path.join(self.dir, "generators"), "w") as f:
                        f.write("\n".join(_generators_to_mask()) + "\n")
                with open(os.path.join(self.dir, "binds"), "w") as f:
                        for host, inside in self.binds:
                                if not inside.startswith(("/run/", "/tmp/", "/var/", "/etc/")):
                                        raise SdBootError("bind target %s is not under /run /tmp /var /etc" % inside)
                                if any(c.isspace() for c in host + inside):
                                        raise SdBootError("bind paths must not contain spaces")
                                f.write("%s %s\n" % (os.path.realpath(host), inside))
                open(os.path.join(self.dir, "console.log"), "w").close()

                root = _cgroup2_root()
                self.cgroup = os.path.join(root, os.path.basename(self.dir))
                os.mkdir(self.cgroup)
                log = open(os.path.join(self.dir, "unshare.log"), "wb")
                # The wrapper moves itself into our cgroup first, so that the cgroup namespace
                # is rooted there.
                wrapper = ('echo $$ > "$1/cgroup.procs" && exec unshare --pid --fork --mount-proc'
                           ' --mount --uts --ipc --net --cgroup --propagation private /bin/sh "$2"')
                self.proc = subprocess.Popen(
                        ["/bin/sh", "-c", wrapper, "sdboot", self.cgroup, INIT],
                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                        env={"PATH": PATH, "SDB_DIR": self.dir}, start_new_session=True)
                log.close()
                deadline = t0 + timeout
                self.pid = self._child_of(self.proc.pid, deadline)
                while True:
                        if self.proc.poll() is not None:
                                raise SdBootError("the private systemd exited with %s:\n%s"
                                                  % (self.proc.returncode, self.boot_logs()))
                        r = self.run("systemctl", "is-system-running", "--wait", timeout=max(1.0, deadline - time.monotonic()))
                        state = r.stdout.strip()
                        if state in ("running", "degraded"):
                                break
                        if time.monotonic() > deadline:
                                raise SdBootError("the private systemd did not boot (state %r):\n%s"
                                                  % (state, self.boot_logs()))
                        time.sleep(0.05)
                self.boot_s = time.monotonic() - t0
                return self

        def _child_of(self, pid, deadline):
                """The host PID of the first child of pid: PID 1 of the new namespace."""
                path = "/proc/%d/task/%d/children" % (pid, pid)
                while True:
                        try:
                                with open(path) as f:
                                        kids = f.read().split()
                        except OSError:
                                kids = []
                        if kids:
                                return int(kids[0])
                        if self.proc.poll() is not None or time.monotonic() > deadline:
                                raise SdBootError("no PID 1 appeared:\n%s" % self.boot_logs())
                        time.sleep(0.01)

        # -- running things inside ---------------------------------------------

        def ns_argv(self, *cmd):
                # -r -w: entering the mount namespace alone would put the command at that
                # namespace's real root, outside the chroot the tests may run in.
                return ["nsenter", "-t", str(self.pid), "-p", "-m", "-n", "-u", "-i", "-r", "-w", "--"] + list(cmd)

        def netns_argv(self, *cmd):
                """Only the network namespace: host files, the private loopback."""
                return ["nsenter", "-t", str(self.pid), "-n", "--"] + list(cmd)

        @staticmethod
        def env():
                return {"PATH": PATH, "LANG": "C.UTF-8", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0",
                        "SYSTEMD_LESS": ""}

        def run(self, *cmd, timeout=30.0, input=None):
                """Runs cmd in all of the namespaces; returns a CompletedProcess with text output."""
                try:
                        return subprocess.run(self.ns_argv(*cmd), input=input, stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE, env=self.env(), timeout=timeout,
                                              text=True, errors="replace",
                                              stdin=None if input is not None else subprocess.DEVNULL)
                except subprocess.TimeoutExpired as e:
                        return subprocess.CompletedProcess(e.cmd, 124, _text(e.stdout), _text(e.stderr) + "\n(timed out)")

        def systemctl(self, *args, timeout=60.0):
                return self.run("systemctl", "--no-pager", *args, timeout=timeout)

        def show(self, unit, *props):
                """{prop: value} of `systemctl show`."""
                r = self.systemctl("show", unit, *["-p" + p for p in props])
                out = {}
                for line in r.stdout.splitlines():
                        k, _, v = line.partition("=")
                        out[k] = v
                return out

        def prop(self, unit, name):
                return self.show(unit, name).get(name, "")

        def journal(self, *args):
                """Entries of `journalctl -o json` as dicts (binary fields decoded)."""
                r = self.run("journalctl", "--no-pager", "-q", "-o", "json", *args, timeout=30)
                out = []
                for line in r.stdout.splitlines():
                        try:
                                e = json.loads(line)
                        except ValueError:
                                continue
                        for k, v in e.items():
                                if isinstance(v, list) and v and all(isinstance(x, int) for x in v):
                                        e[k] = bytes(v).decode("utf-8", "replace")
                        out.append(e)
                return out

        def journal_text(self, *args):
                return self.run("journalctl", "--no-pager", "-q", *args, timeout=30).stdout

        def dump(self, out=None, units=("gcorn@*",)):
                """The journal and unit states, for a failure's log (the journal is volatile)."""
                out = out or sys.stdout
                if self.pid is None:
                        print(self.boot_logs(), file=out)
                        return
                print("==== systemctl status ====", file=out)
                print(self.systemctl("status", "-l", "-n", "0", "--all", *units).stdout, file=out)
                print("==== journalctl -n 300 ====", file=out)
                print(self.journal_text("-n", "300", "-o", "short-monotonic"), file=out)
                out.flush()

        def boot_logs(self):
                text = ""
                for name in ("unshare.log", "console.log"):
                        try:
                                with open(os.path.join(self.dir, name), "rb") as f:
                                        text += "--- %s ---\n%s\n" % (name, f.read()[-8000:].decode("utf-8", "replace"))
                        except (OSError, TypeError):
                                pass
                return text

        # -- teardown ------------------------------------------------------------

        def poweroff(self, timeout=15.0):
                if self.proc is None:
                        return
                if self.proc.poll() is None and self.pid is not None:
                        r = self.run("systemctl", "poweroff", "--no-block", timeout=5)
                        if r.returncode != 0:
                                try:
                                        os.kill(self.pid, signal.SIGRTMIN + 4)
                                except ProcessLookupError:
                                        pass
                        try:
                                self.proc.wait(timeout=timeout)
                        except subprocess.TimeoutExpired:
                                pass
                if self.proc.poll() is None:
                        # Our PID 1: its death ends every process of its namespace.
                        if self.pid is not None:
                                try:
                                        os.kill(self.pid, signal.SIGKILL)
                                except ProcessLookupError:
                                        pass
                        try:
                                self.proc.wait(timeout=10)
                        except subprocess.TimeoutExpired:
                                self.proc.kill()
                                self.proc.wait(timeout=10)

        def cleanup(self):
                try:
                        self.poweroff()
                finally:
                        if self.cgroup and os.path.isdir(self.cgroup):
                                deadline = time.monotonic() + 10
                                while True:
                                        try:
                                                for d, _, _ in os.walk(self.cgroup, topdown=False):
                                                        os.rmdir(d)
                                                break
                                        except OSError:
                                                if time.monotonic() > deadline:
                                                        print("sdboot: could not remove %s" % self.cgroup, file=sys.stderr)
                                                        break
                                                time.sleep(0.05)
                        self.cgroup = None
                        if self.dir and not self.keep:
                                shutil.rmtree(self.dir, ignore_errors=True)
                        elif self.dir:
                                print("sdboot: kept %s" % self.dir, file=sys.stderr)
                        self.dir = None
                        self.proc = None
                        self.pid = None


def _text(b):
        if b is None:
                return ""
        return b.decode("utf-8", "replace") if isinstance(b, bytes) else b


def main(argv):
        if len(argv) < 2 or argv[1] != "shell":
                print("usage: sdboot.py shell [UNITS_DIR]", file=sys.stderr)
                return 2
        why = preflight()
        if why:
                print("sdboot: cannot boot: " + why, file=sys.stderr)
                return 1
        with SdBoot(units=argv[2] if len(argv) > 2 else None) as sd:
                print("sdboot: booted in %.2fs, PID 1 is host PID %d" % (sd.boot_s, sd.pid), file=sys.stderr)
                subprocess.call(sd.ns_argv("/bin/bash"), env=dict(SdBoot.env(), TERM="dumb", PS1="sdboot# "))
        return 0


if __name__ == "__main__":
        sys.exit(main(sys.argv))
