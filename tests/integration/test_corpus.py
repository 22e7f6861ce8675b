"""Gunicorn's HTTP request corpus ($GCORN_CORPUS) replayed against a live server.

Valid cases: every request in the file answered 200, and the app (tests/apps/recorder.py) saw
exactly the method, target, path, query, version, headers and body the case lists. Invalid
cases: the status Gunicorn gives (400, 431) or a bare close, and the server keeps serving.

A case that behaves differently must be listed, with its reason, in corpus_deviations.json
next to this file; only safe deviations belong there (a stricter parser, a different 4xx, a
Gunicorn compatibility switch gcorn does not have). A listed case that no longer deviates
fails too, so the table stays true.

A valid case's entry may also say what gcorn does instead, and that is then checked:
"insert_host": true -- the case has HTTP/1.1 requests without Host, which RFC 9112 3.2 refuses
and Gunicorn serves: the bytes as they are must get 200 up to the first such request and 400
for it, and the case replayed with a Host line after each such request line must pass in full
(the app seeing that Host too); "status": N -- the case (with Host lines, when inserted) is
answered 200 until one request gets N, and the connection closes.

Invalid cases are sent with a Host line after their first request line when that request is
HTTP/1.1 and has none, so that each is refused for its own fault and not for the missing Host
(RFC 9112 3.2) alone."""

import copy
import glob
import json
import os
import re
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

CORPUS = os.environ.get("GCORN_CORPUS", "")
DEVIATIONS_PATH = os.path.join(h.HERE, "corpus_deviations.json")

# Gunicorn setting name -> command line flag.
FLAGS = {
        "limit_request_line": "--limit-request-line",
        "limit_request_fields": "--limit-request-fields",
        "limit_request_field_size": "--limit-request-field_size",
        "proxy_protocol": "--proxy-protocol",
        "forwarded_allow_ips": "--forwarded-allow-ips",
}


# The Host value inserted (short: some cases run with tiny field size limits).
INSERTED_HOST = "h"


def load_deviations():
        with open(DEVIATIONS_PATH) as f:
                table = json.load(f)
        table.pop("_comment", None)
        for case, entry in table.items():
                if not isinstance(entry, dict) or not entry.get("reason", "").strip():
                        raise ValueError("deviation %s has no reason" % case)
                unknown = set(entry) - {"reason", "insert_host", "status"}
                if unknown:
                        raise ValueError("deviation %s: unknown keys %s" % (case, sorted(unknown)))
                if ("insert_host" in entry or "status" in entry) and not case.startswith("valid/"):
                        raise ValueError("deviation %s: insert_host and status are for valid cases" % case)
                if "insert_host" in entry and entry["insert_host"] is not True:
                        raise ValueError("deviation %s: insert_host must be true" % case)
                if "status" in entry and not (isinstance(entry["status"], int) and 300 <= entry["status"] < 600):
                        raise ValueError("deviation %s: status must be an error status" % case)
        return table


def hostless(req):
        return tuple(req["version"]) >= (1, 1) and not any(n == "HOST" for n, _ in req["headers"])


def insert_host_first(raw):
        """raw with a Host line after its first request line, when that is HTTP/1.1 (or a later
        1.x) and its head has no Host."""
        start = len(raw) - len(raw.lstrip(b"\r\n"))
        end = raw.find(b"\r\n", start)
        if end < 0 or not re.search(rb" HTTP/1\.[1-9]$", raw[start:end]):
                return raw
        head = raw[end + 2:].split(b"\r\n\r\n", 1)[0]
        if any(line.lower().startswith(b"host:") for line in head.split(b"\r\n")):
                return raw
        return raw[:end + 2] + b"Host: " + INSERTED_HOST.encode() + b"\r\n" + raw[end + 2:]


def insert_host(raw, case):
        """raw with a Host line after the request line of each HTTP/1.1 request that has none,
        and a copy of case in which the app sees that Host."""
        case = copy.deepcopy(case)
        out = b""
        pos = 0
        for req in case["requests"]:
                at = raw.index(b" " + req["raw_uri"].encode("latin-1") + b" HTTP/", pos)
                end = raw.index(b"\r\n", at) + 2
                out += raw[pos:end]
                pos = end
                if hostless(req):
                        out += b"Host: " + INSERTED_HOST.encode() + b"\r\n"
                        req["headers"].insert(0, ["HOST", INSERTED_HOST])
        return out + raw[pos:], case


def case_flags(settings):
        flags = []
        for name in sorted(settings):
                if name in FLAGS:
                        flags += [FLAGS[name], str(settings[name])]
        return tuple(flags)


def expected_environ_headers(headers):
        out = {}
        for name, value in headers:
                key = name.replace("-", "_")
                if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                        key = "HTTP_" + key
                out[key] = out[key] + "," + value if key in out else value
        return out


def expected_path_info(path):
        """The case's path is the raw one (bytes as latin-1); PATH_INFO is it percent-decoded."""
        return urllib.parse.unquote_to_bytes(path.encode("latin-1")).decode("latin-1")


def compare(expected, seen):
        diffs = []
        want = {
                "method": expected["method"],
                "raw_uri": expected["raw_uri"],
                "path": expected_path_info(expected["path"]),
                "query": expected["query"],
                "protocol": "HTTP/%d.%d" % tuple(expected["version"]),
                "headers": expected_environ_headers(expected["headers"]),
                "body_b64": expected["body_b64"],
        }
        for k, v in want.items():
                if seen.get(k) != v:
                        diffs.append("%s: want %r, got %r" % (k, v, seen.get(k)))
        return diffs


class Corpus:
        """Runs every case once, through one server per distinct settings."""

        results = None          # "valid/NAME" -> None (as Gunicorn) or how it differs
        unmet = None            # "valid/NAME" -> how a listed deviation's expectation fails
        broken = None           # cases after which the server stopped serving
        servers = {}

        @classmethod
        def server(cls, flags):
                srv = cls.servers.get(flags)
                if srv is None or not srv.alive():
                        srv = h.Server("recorder:app", args=list(flags) + ["--timeout", "3", "--keep-alive", "1"])
                        cls.servers[flags] = srv
                return srv

        @classmethod
        def stop(cls):
                for srv in cls.servers.values():
                        srv.stop()
                cls.servers = {}

        @classmethod
        def serves(cls, srv):
                # No headers at all: some cases run with tiny header limits.
                try:
                        data = srv.raw(b"GET /alive HTTP/1.0\r\n\r\n")
                        r = h.parse_responses(data)
                        return len(r) == 1 and r[0].status == 200
                except (OSError, h.ProtocolError, ValueError):
                        return False

        @classmethod
        def statuses(cls, srv, raw, case):
                """The statuses the bytes get, read until the server closes."""
                with srv.client() as c:
                        c.send(raw)
                        return [r.status for r in c.read_all_responses([req["method"] for req in case["requests"]])]

        @classmethod
        def replay(cls, srv, raw, case):
                """Problems against the case (None when it passes) and the statuses seen."""
                c = srv.client()
                statuses = []
                try:
                        c.send(raw)
                        problems = []
                        for i, req in enumerate(case["requests"]):
                                try:
                                        r = c.read_response(method=req["method"])
                                except (OSError, h.ProtocolError) as e:
                                        problems.append("request %d: no response (%s)" % (i, e))
                                        break
                                statuses.append(r.status)
                                if r.status != 200:
                                        problems.append("request %d: status %d" % (i, r.status))
                                        continue
                                if req["method"] == "HEAD":
                                        continue
                                diffs = compare(req, json.loads(r.body))
                                if diffs:
                                        problems.append("request %d: %s" % (i, "; ".join(diffs)))
                        if statuses and statuses[-1] != 200 and not c.at_eof():
                                problems.append("connection left open after %d" % statuses[-1])
                        return "; ".join(problems) or None, statuses
                finally:
                        c.close()

        @classmethod
        def run_valid(cls, raw, case, dev):
                """(how the case differs from Gunicorn or None, how a listed deviation is not as
                listed or None)"""
                srv = cls.server(case_flags(case["settings"]))
                deviates = []
                if dev.get("insert_host"):
                        first = next((i for i, req in enumerate(case["requests"]) if hostless(req)), None)
                        if first is None:
                                return None, "insert_host: every request has a Host"
                        got = cls.statuses(srv, raw, case)
                        want = [200] * first + [400]
                        if got != want:
                                return None, "without Host: want statuses %s, got %s" % (want, got)
                        deviates.append("400 for request %d without Host" % first)
                        raw, case = insert_host(raw, case)
                problems, statuses = cls.replay(srv, raw, case)
                if "status" in dev:
                        want = dev["status"]
                        n = len(statuses)
                        ok = (n >= 1 and statuses[:-1] == [200] * (n - 1) and statuses[-1] == want and
                              problems and "connection left open" not in problems)
                        if not ok:
                                return None, "want status %d then a close, got %s (%s)" % (want, statuses, problems)
                        deviates.append("status %d" % want)
                elif problems:
                        if dev.get("insert_host"):
                                return None, "with Host: %s" % problems
                        deviates.append(problems)
                return "; ".join(deviates) or None, None

        @classmethod
        def run_invalid(cls, raw, case):
                srv = cls.server(case_flags(case["settings"]))
                raw = insert_host_first(raw)
                with srv.connect() as s:
                        # No half-close: the server must find the fault in the bytes alone,
                        # and cases that stop mid-request end by the server's own timeout.
                        try:
                                s.sendall(raw)
                        except OSError:
                                pass
                        closed, data = h.wait_closed(s, 10)
                statuses = [int(x) for x in re.findall(rb"(?:^|\r\n)HTTP/1\.[01] (\d{3}) ", data) if int(x) >= 200]
                got = str(statuses[0]) if statuses else ("close" if closed else "open")
                want = case["expect"]
                ok = got == want
                if case.get("raised_when_body_read") and got == "close":
                        ok = True
                if any(200 <= st < 300 for st in statuses):
                        ok = False
                        got = "2xx (%s)" % statuses
                if not closed:
                        ok = False
                        got += ", connection left open"
                if not cls.serves(srv):
                        cls.broken.append(case["name"])
                return (None if ok else "want %s, got %s" % (want, got)), None

        @classmethod
        def run_all(cls, deviations):
                if cls.results is not None:
                        return
                cls.results = {}
                cls.unmet = {}
                cls.broken = []
                for kind in ("valid", "invalid"):
                        for path in sorted(glob.glob(os.path.join(CORPUS, kind, "*.raw"))):
                                name = kind + "/" + os.path.basename(path)[:-4]
                                with open(path, "rb") as f:
                                        raw = f.read()
                                with open(path[:-4] + ".json") as f:
                                        case = json.load(f)
                                case["name"] = name
                                try:
                                        if kind == "valid":
                                                res = cls.run_valid(raw, case, deviations.get(name, {}))
                                        else:
                                                res = cls.run_invalid(raw, case)
                                except (OSError, h.ProtocolError, ValueError) as e:
                                        # an entry that says what gcorn does instead must hold
                                        checked = set(deviations.get(name, {})) & {"insert_host", "status"}
                                        res = "error: %r" % e, ("error: %r" % e if checked else None)
                                cls.results[name], unmet = res
                                if unmet:
                                        cls.unmet[name] = unmet


class CorpusTest(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
                if not os.path.isdir(os.path.join(CORPUS, "valid")):
                        if os.environ.get("CI") == "true":
                                raise AssertionError("request corpus missing at %r under CI" % CORPUS)
                        raise unittest.SkipTest("request corpus not found at %r" % CORPUS)
                cls.deviations = load_deviations()
                Corpus.run_all(cls.deviations)

        @classmethod
        def tearDownClass(cls):
                Corpus.stop()

        def check_kind(self, kind):
                names = [n for n in sorted(Corpus.results) if n.startswith(kind + "/")]
                self.assertTrue(names, "no %s cases found" % kind)
                unlisted = []
                for name in names:
                        mismatch = Corpus.results[name]
                        if name in Corpus.unmet:
                                unlisted.append("%s: not as listed: %s" % (name, Corpus.unmet[name]))
                        elif mismatch and name not in self.deviations:
                                unlisted.append("%s: %s" % (name, mismatch))
                self.assertEqual(unlisted, [], "\n" + "\n".join(unlisted))

        def test_valid_cases(self):
                self.check_kind("valid")

        def test_invalid_cases(self):
                self.check_kind("invalid")

        def test_server_survives_invalid_cases(self):
                self.assertEqual(Corpus.broken, [])

        def test_deviation_table_is_current(self):
                stale = [n for n in self.deviations
                         if n not in Corpus.unmet and (n not in Corpus.results or not Corpus.results[n])]
                self.assertEqual(stale, [], "listed as deviations but no longer deviating (or unknown)")
                for name in sorted(self.deviations):
                        print("  allowed deviation %s: %s" % (name, Corpus.results[name]), file=sys.stderr)


if __name__ == "__main__":
        h.main()
