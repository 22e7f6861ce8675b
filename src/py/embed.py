#!/usr/bin/python3
"""Writes a C file defining `const char NAME[]`: the bytes of a source file, NUL-terminated,
for the binary to carry its Python drivers. Usage: embed.py NAME INPUT OUTPUT"""
import sys


def main():
        name, src, out = sys.argv[1:4]
        with open(src, "rb") as f:
                data = f.read()
        if b"\0" in data:
                sys.exit("embed.py: %s holds a NUL byte" % src)
        rows = [", ".join("0x%02x" % b for b in data[i:i + 16]) for i in range(0, len(data), 16)]
        with open(out, "w") as f:
                f.write("/* Generated from %s by src/py/embed.py: do not edit. */\n" % src.rsplit("/", 1)[-1])
                f.write("extern const char %s[];\n" % name)
                f.write("const char %s[] = {\n" % name)
                for r in rows:
                        f.write("        %s,\n" % r)
                f.write("        0x00\n};\n")


if __name__ == "__main__":
        main()
