"""Sends COUNT keep-alive GETs of PATH over one connection, one at a time, and checks
that each is answered 200 (a body of Content-Length bytes, or chunked); exits 1 otherwise.

  /usr/bin/python3 client.py HOST PORT COUNT [PATH] [TIMEOUT]
"""
import socket
import sys


def _chunked_end(buf, at):
        """The offset just past the chunked body starting at buf[at:], or -1: not all here."""
        while True:
                eol = buf.find(b"\r\n", at)
                if eol < 0:
                        return -1
                size = int(buf[at:eol].split(b";")[0], 16)
                if size == 0:
                        # no trailers from the servers measured: the empty line ends it
                        end = buf.find(b"\r\n", eol + 2)
                        return -1 if end < 0 else end + 2
                at = eol + 2 + size + 2
                if at > len(buf):
                        return -1


def main():
        host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        path = sys.argv[4] if len(sys.argv) > 4 else "/"
        timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 30.0
        request = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (path, host, port)).encode()
        s = socket.create_connection((host, port), timeout=timeout)
        buf = b""
        for i in range(count):
                s.sendall(request)
                while True:
                        end = buf.find(b"\r\n\r\n")
                        if end >= 0:
                                head = buf[:end].split(b"\r\n")
                                length = 0
                                chunked = False
                                for line in head[1:]:
                                        name, _, value = line.partition(b":")
                                        name = name.strip().lower()
                                        if name == b"content-length":
                                                length = int(value)
                                        elif name == b"transfer-encoding" and b"chunked" in value.lower():
                                                chunked = True
                                if chunked:
                                        stop = _chunked_end(buf, end + 4)
                                        if stop >= 0:
                                                break
                                elif len(buf) >= end + 4 + length:
                                        stop = end + 4 + length
                                        break
                        chunk = s.recv(65536)
                        if not chunk:
                                print("client: connection closed after %d responses" % i, file=sys.stderr)
                                return 1
                        buf += chunk
                if not head[0].startswith(b"HTTP/1.1 200"):
                        print("client: %r" % head[0], file=sys.stderr)
                        return 1
                buf = buf[stop:]
        s.close()
        return 0


if __name__ == "__main__":
        sys.exit(main())
