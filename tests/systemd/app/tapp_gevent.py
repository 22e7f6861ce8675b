"""The gevent worker's app under the hardened unit: the hub's libev backend, whether the
unit's seccomp filter lets io_uring_setup() through, and timed sleeps (patched by gevent)."""
import ctypes
import errno
import json
import os
import time

import gevent

# x86-64, aarch64 and every architecture with the generic syscall table
NR_IO_URING_SETUP = 425


def _json(start_response, obj):
        body = json.dumps(obj).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def _io_uring_setup_errno():
        # io_uring_setup(1, NULL): EFAULT where the call reaches the kernel (nothing is set
        # up), EPERM where the unit's filter refuses it, ENOSYS where the kernel lacks it.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        r = libc.syscall(ctypes.c_long(NR_IO_URING_SETUP), ctypes.c_long(1), ctypes.c_void_p(None))
        return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno())) if r < 0 else "ok"


def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/backend":
                return _json(start_response, {"backend": gevent.get_hub().loop.backend, "pid": os.getpid(),
                                              "io_uring_setup": _io_uring_setup_errno()})
        if path == "/sleep":
                start = time.monotonic()
                time.sleep(0.05)
                return _json(start_response, {"start": start, "end": time.monotonic(), "pid": os.getpid()})
        return _json(start_response, {"pid": os.getpid()})
