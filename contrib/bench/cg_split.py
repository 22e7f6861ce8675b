"""Splits `callgrind_annotate --inclusive=no --threshold=100` output by who ran the
instructions: gcorn's own code, CPython (libpython), libc, and everything else in user
space. Callgrind does not see the kernel.

  /usr/bin/python3 cg_split.py ANNOTATE_OUTPUT REQUESTS GCORN_BINARY
"""
import re
import sys

LINE = re.compile(r"^\s*([\d,]+)\s+(?:\([\d.\s]+%\)\s+)?(\S.*?):(.+?)\s+\[(.+)\]\s*$")


def part_of(obj, fn, gcorn):
        base = obj.rsplit("/", 1)[-1]
        if obj == gcorn or base == "gcorn":
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
                        part = part_of(obj, fn, gcorn)
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
