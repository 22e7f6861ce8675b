"""Splits `callgrind_annotate --inclusive=no --threshold=100` output by who ran the
instructions: gcorn's own code, CPython (libpython), libc, and everything else in user
space. Callgrind does not see the kernel.

  /usr/bin/python3 cg_split.py ANNOTATE_OUTPUT REQUESTS GCORN_BINARY
"""
import os
import re
import subprocess
import sys
import sysconfig

LINE = re.compile(r"^\s*([\d,]+)\s+(?:\([\d.\s]+%\)\s+)?(\S.*?):(.+?)\s+\[(.+)\]\s*$")


def functions(*paths):
        """The functions (text symbols) the object files or archives define."""
        paths = [p for p in paths if os.path.isfile(p)]
        if not paths:
                return set()
        out = subprocess.run(["nm", "--defined-only"] + paths, capture_output=True,
                             text=True).stdout
        return {f[2] for f in (line.split() for line in out.splitlines())
                if len(f) == 3 and f[1] in "Tt"}


def statically_linked_cpython(gcorn):
        """A gcorn that links CPython statically has the interpreter in its own object: its
        functions are told apart by name, those of libpython3.X.a that are not gcorn's own
        (from the build's libgcorn.a and main.c.o, when the binary is a build's)."""
        cfg = sysconfig.get_config_var
        pylib = functions(os.path.join(cfg("LIBPL") or "", cfg("LIBRARY") or ""))
        d = os.path.dirname(gcorn)
        return pylib - functions(os.path.join(d, "libgcorn.a"),
                                 os.path.join(d, "gcorn.p", "main.c.o"))


def part_of(obj, fn, gcorn, cpython_in_gcorn):
        base = obj.rsplit("/", 1)[-1]
        if obj == gcorn or base == "gcorn":
                # callgrind marks the second and later levels of a recursion with 'N
                if re.sub(r"'\d+$", "", fn) in cpython_in_gcorn:
                        return "CPython (libpython)"
                return "gcorn"
        if "libpython" in base or re.match(r"python3(\.\d+)?$", base):
                # the python3 executable of a pure-Python server has CPython linked in
                return "CPython (libpython)"
        if base.startswith("libc.so") or base.startswith("libc-"):
                return "libc"
        if base.startswith("ld-linux"):
                return "ld.so"
        return "other (%s)" % base


def main():
        path, requests, gcorn = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        parts, fns, program = {}, [], 0
        cpython_in_gcorn = statically_linked_cpython(gcorn) if gcorn != "-" else set()
        with open(path) as f:
                for line in f:
                        if "PROGRAM TOTALS" in line:
                                program = int(line.split()[0].replace(",", ""))
                                continue
                        m = LINE.match(line)
                        if not m:
                                continue
                        ir = int(m.group(1).replace(",", ""))
                        # The frames below the worker loop (main, arbiter_run, libc start) were
                        # on the stack when the counters were zeroed; callgrind_annotate shows
                        # them with the whole program's cost, which is not their own.
                        if program and ir >= program:
                                continue
                        fn, obj = m.group(3), m.group(4)
                        part = part_of(obj, fn, gcorn, cpython_in_gcorn)
                        parts[part] = parts.get(part, 0) + ir
                        fns.append((ir, part, fn))
        total = program or sum(x[0] for x in fns)
        if not total:
                print("cg_split: no function lines in %s" % path, file=sys.stderr)
                return 1
        print("Instructions per request (user space, %d requests): %.0f" % (requests, total / requests))
        print("(the function lines add up to %.0f; callgrind does not count the kernel)"
              % (sum(x[0] for x in fns) / requests))
        print()
        print("| part | instructions/request | share |")
        print("|---|---|---|")
        for part, ir in sorted(parts.items(), key=lambda kv: -kv[1]):
                print("| %s | %.0f | %.1f%% |" % (part, ir / requests, ir * 100 / total))
        print()
        print("Top functions (self cost):")
        print()
        print("| function | part | instructions/request | share |")
        print("|---|---|---|---|")
        for ir, part, fn in sorted(fns, reverse=True)[:25]:
                print("| `%s` | %s | %.0f | %.1f%% |" % (fn, part, ir / requests, ir * 100 / total))
        own = [x for x in fns if x[1] == "gcorn"]
        print()
        print("gcorn's own functions (self cost):")
        print()
        print("| function | instructions/request |")
        print("|---|---|")
        for ir, part, fn in sorted(own, reverse=True)[:20]:
                print("| `%s` | %.0f |" % (fn, ir / requests))
        return 0


if __name__ == "__main__":
        sys.exit(main())
