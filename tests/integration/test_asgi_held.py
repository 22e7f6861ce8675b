#!/usr/bin/python3
"""The asgi worker holds a task's small answer in its connection's queue until the event
loop's round ends, and sends the round's answers back to back there (README, "The asgi
worker", "What a request costs"): the answer leaves once the task yields, not at its send;
a task that goes on waiting still has its answer sent; answers of many connections in one
round, and a held chunk followed by one too large to hold, arrive whole and in order."""
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcorn_harness as h  # noqa: E402

APP = "asgi_held_app:app"
ASAN = "ASAN_OPTIONS" in os.environ
LOOP = h.ASGI_LOOP


class TestHeldAnswers(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
                cls.marks = tempfile.mkdtemp(prefix="gcorn-held-")
                cls.srv = h.Server(APP, args=["-k", "asgi", "-w", "1"] + LOOP,
                                   env={"GCORN_TEST_MARKS": cls.marks})

        @classmethod
        def tearDownClass(cls):
                cls.srv.stop()
                shutil.rmtree(cls.marks, ignore_errors=True)

        def test_answer_leaves_when_the_task_yields(self):
                # The task sends its whole answer, then blocks the loop for a while before it
                # returns: the answer waits for the round's end, so by the time the client has
                # it, the task has written its mark (sent at once, it would arrive during the
                # block, before the mark).
                mark = os.path.join(self.marks, "blocked-done")
                if os.path.exists(mark):
                        os.unlink(mark)
                r = self.srv.get("/then-block?1.0")
                self.assertEqual((r.status, r.body), (200, b"sent before the block\n"))
                self.assertTrue(os.path.exists(mark), "the answer left before its task yielded")

        def test_answer_of_a_waiting_task_goes_out(self):
                # The task keeps running (it awaits /release): its held answer still goes out
                # with the next round, not at the task's end.
                with self.srv.client(timeout=10) as c:
                        c.send_request("GET", "/then-wait")
                        r = c.read_response()
                        self.assertEqual((r.status, r.body), (200, b"sent before the wait\n"))
                self.assertEqual(self.srv.get("/release").body, b"released\n")

        def test_many_connections_in_one_round(self):
                n = 8 if ASAN else 40
                clients = [self.srv.client() for _ in range(n)]
                try:
                        for i, c in enumerate(clients):
                                body = (b"%03d-" % i) * (10 + i * 25)
                                c.send_request("POST", "/echo", body=body)
                        for rounds in range(2):
                                for i, c in enumerate(clients):
                                        r = c.read_response(method="POST")
                                        self.assertEqual(r.status, 200)
                                        self.assertEqual(r.body, (b"%03d-" % i) * (10 + i * 25))
                                        if rounds == 0:
                                                # the same connections again (keep-alive)
                                                c.send_request("POST", "/echo", body=(b"%03d-" % i) * (10 + i * 25))
                finally:
                        for c in clients:
                                c.close()

        def test_pipelined_answers_in_order(self):
                bodies = [b"first", b"second" * 1000, b"third"]
                data = b"".join(h.build_request("POST", "/echo", [], b) for b in bodies)
                with self.srv.client() as c:
                        c.send(data)
                        for b in bodies:
                                r = c.read_response(method="POST")
                                self.assertEqual((r.status, r.body), (200, b))

        def test_held_chunk_then_a_large_one(self):
                r = self.srv.get("/small-then-large")
                self.assertEqual(r.status, 200)
                self.assertTrue(r.complete)
                self.assertEqual(r.body, b"a" * 100 + b"b" * 200000)


if __name__ == "__main__":
        unittest.main(verbosity=2)
