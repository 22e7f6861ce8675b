"""gcorn -k gevent under the shipped, hardened gcorn@.service (the private systemd 252 of
tests/systemd/sdboot.py, as in test_systemd.py). The unit refuses io_uring (systemd's
@system-service allows it, through @aio): the worker's hub asks libev for it, the filter
answers EPERM (SystemCallErrorNumber=), libev falls back to epoll, and the worker serves,
with nothing in the journal about it. The drop-in the README gives lets io_uring through,
and the hub then waits with it."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402
import test_systemd as ts  # noqa: E402

ALARMING = ("Traceback", "SIGSYS", "Bad system call", "WORKER TIMEOUT", "core-dump", "io_uring",
            "Operation not permitted", "exited with", "was sent signal", "crash")


class GeventUnderTheUnit(ts.BootedCase):
        U = "gcorn@gev.service"
        S = "gcorn@gev.socket"

        @classmethod
        def configure(cls, stage):
                stage.instance("gev", port=8000, app="tapp_gevent:app")
                # the README's drop-in, for a deployment that wants the io_uring hub
                stage.instance("gevuring", port=8001, app="tapp_gevent:app", service_dropin=(
                        "SystemCallFilter=io_uring_setup io_uring_enter io_uring_register\n"))
                for name in ("gev", "gevuring"):
                        with open(os.path.join(stage.etc, "gcorn", name + ".conf.py"), "a") as f:
                                f.write('worker_class = "gevent"\n')

        def json_get(self, path, port=8000):
                r = self.get(path, port=port, timeout=30)
                self.assertEqual(r["status"], 200, r)
                return json.loads(r["body"])

        def test_hub_falls_back_to_epoll_under_the_filter(self):
                r = self.sd.systemctl("start", self.S)
                self.assertEqual(r.returncode, 0, r.stderr)
                first = self.json_get("/backend")
                # what the unit does to the call, seen from the worker itself
                self.assertEqual(first["io_uring_setup"], "EPERM", first)
                self.assertEqual(first["backend"], "epoll", first)
                self.wait_status(self.U, lambda m: m.group(2) == m.group(3) == "2", timeout=15)
                # the hub's timers work on the backend it fell back to, greenlets side by side
                side = h.in_parallel(lambda i: self.json_get("/sleep"), range(4))
                self.assertEqual(len(side), 4, side)
                seen = [self.json_get("/backend") for _ in range(6)]
                self.assertEqual({s["backend"] for s in seen}, {"epoll"}, seen)
                workers = self.children(self.main_pid(self.U))
                self.assertEqual(len(workers), 2, workers)
                self.assertTrue({s["pid"] for s in seen + side} <= workers,
                                "a worker that answered was replaced: %r, workers %r" % (seen + side, workers))
                p = self.sd.show(self.U, "ActiveState", "SubState", "NRestarts")
                self.assertEqual((p["ActiveState"], p["SubState"], p["NRestarts"]), ("active", "running", "0"), p)
                _, m = self.status(self.U)
                self.assertEqual(m.group(8), "0", "a worker crashed: %r" % self.status(self.U)[0])
                text = self.sd.journal_text("-u", self.U)
                bad = [line for line in text.splitlines() if any(a in line for a in ALARMING)]
                self.assertEqual(bad, [], "the journal of the unit: %r" % bad)


        def test_the_drop_in_lets_the_hub_wait_with_io_uring(self):
                u = "gcorn@gevuring.service"
                r = self.sd.systemctl("start", "gcorn@gevuring.socket")
                self.assertEqual(r.returncode, 0, r.stderr)
                got = self.json_get("/backend", port=8001)
                # EFAULT: the call reached the kernel (io_uring_setup(1, NULL) sets nothing up)
                self.assertEqual(got["io_uring_setup"], "EFAULT", got)
                self.assertEqual(got["backend"], "linux_iouring", got)
                side = h.in_parallel(lambda i: self.json_get("/sleep", port=8001), range(4))
                self.assertEqual(len(side), 4, side)
                p = self.sd.show(u, "ActiveState", "NRestarts")
                self.assertEqual((p["ActiveState"], p["NRestarts"]), ("active", "0"), p)
                text = self.sd.journal_text("-u", u)
                bad = [line for line in text.splitlines() if any(a in line for a in ALARMING)]
                self.assertEqual(bad, [], "the journal of the unit: %r" % bad)


if __name__ == "__main__":
        ts.main()
