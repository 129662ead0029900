"""Live alarm stream (GET /api/v1/alarms/stream, Server-Sent Events) and acknowledgements:
events come from the committed history with the alarm key as id; a consumer resumes from
Last-Event-ID without losing anything; a consumer that stops reading is cut once it is
alarms.stream_max_buffer_bytes behind and resumes; late commits (event time behind the
cursor) still reach live streams; heartbeats; POST /api/v1/alarms/{key}/ack is durable and
visible in queries."""
import hashlib
import json
import time
import unittest

from alarmlib import Sse, event, inform, iso, raise_alarms
from hemsd import Hemsd, http_request, main

T0 = 1795741200000  # 2026-11-27T01:00:00Z


def api(h, method, path, body=b"", token=None):
    hd = {"Authorization": "Bearer " + token} if token else None
    st, _, b = http_request(h.admin_port, method, path, body=body, headers=hd)
    return st, (json.loads(b) if b.strip() else None)


def history(h, device=None):
    out, after = [], None
    while True:
        q = "/api/v1/alarms?limit=1000" + ("&device=" + device if device else "") + \
            ("&after=" + after if after else "")
        st, j = api(h, "GET", q)
        assert st == 200, j
        out += j["alarms"]
        if not j["next"]:
            return out
        after = j["next"]


class Stream(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = Hemsd(shards=2, config="[alarms]\nstream_heartbeat_ms = 400\n"
                                       "stream_late_window_ms = 3600000\nstream_poll_ms = 200\n").start()

    @classmethod
    def tearDownClass(cls):
        cls.h.__exit__(None, None, None)

    def test_replay_follow_resume(self):
        now = int(time.time()) * 1000  # EventTime has whole seconds
        raise_alarms(self.h, "STR-1", now - 1200000, 5, prefix="R")
        s = Sse(self.h.admin_port, "/api/v1/alarms/stream?since=%d&device=00005A-HeNB-STR-1"
                % (now - 1200000))
        self.assertEqual(s.head(), 200)
        self.assertTrue(s.headers["content-type"].startswith("text/event-stream"))
        self.assertNotIn("content-length", s.headers)
        ev = s.events(5)
        hist = history(self.h, "00005A-HeNB-STR-1")
        self.assertEqual([e["id"] for e in ev], [a["key"] for a in hist])
        self.assertEqual([e["data"]["alarm_id"] for e in ev], ["R-%d" % i for i in range(5)])
        self.assertEqual(ev[0]["event"], "alarm")
        # live: committed after the stream opened
        raise_alarms(self.h, "STR-1", now + 60000, 3, prefix="L")
        live = s.events(3, timeout=5)
        self.assertEqual([e["data"]["alarm_id"] for e in live], ["L-0", "L-1", "L-2"])
        s.close()
        # more while disconnected; resume from the last id seen: exactly the rest
        raise_alarms(self.h, "STR-1", now + 120000, 4, prefix="D")
        s = Sse(self.h.admin_port, "/api/v1/alarms/stream?device=00005A-HeNB-STR-1",
                last_id=live[-1]["id"])
        self.assertEqual(s.head(), 200)
        rest = s.events(4)
        self.assertEqual([e["data"]["alarm_id"] for e in rest], ["D-0", "D-1", "D-2", "D-3"])
        self.assertIsNone(s.next_event(timeout=1.0), "nothing more, no duplicates")
        # heartbeat comments while idle
        self.assertTrue(any(c.startswith(": keepalive") for c in s.comments), s.comments)
        s.close()
        # ?cursor= works like Last-Event-ID
        s = Sse(self.h.admin_port, "/api/v1/alarms/stream?device=00005A-HeNB-STR-1&cursor=" +
                rest[1]["id"])
        s.head()
        self.assertEqual([e["data"]["alarm_id"] for e in s.events(2)], ["D-2", "D-3"])
        s.close()

    def test_late_commit_reaches_live_stream(self):
        now = int(time.time() * 1000)
        s = Sse(self.h.admin_port, "/api/v1/alarms/stream?device=00005A-HeNB-STR-2")
        self.assertEqual(s.head(), 200)
        inform(self.h, event("Device", "ExpeditedEvent", 1, iso(now + 5000), "N-1", "NewAlarm",
                             "Minor"), "STR-2")
        self.assertEqual(s.next_event(5)["data"]["alarm_id"], "N-1")
        # a queued event from 10 minutes ago arrives after: its key is behind the cursor
        inform(self.h, event("Device", "QueuedEvent", 1, iso(now - 600000), "Q-1", "NewAlarm",
                             "Warning"), "STR-2", events=("2 PERIODIC",))
        e = s.next_event(5)
        self.assertIsNotNone(e, "late alarm not delivered")
        self.assertEqual(e["data"]["alarm_id"], "Q-1")
        self.assertIsNone(s.next_event(timeout=2.5), "late alarm sent twice")
        s.close()

    def test_big_replay_no_duplicates(self):
        # more alarms than one poll sends (512) and than the seen set holds (1024), inside
        # the late window: replayed in order, once, and the late rescans resend nothing
        n = 1100
        t0 = (int(time.time()) - 1800) * 1000
        raise_alarms(self.h, "BIG-1", t0, n, prefix="B", step_ms=1000)
        s = Sse(self.h.admin_port, "/api/v1/alarms/stream?since=%d&device=00005A-HeNB-BIG-1" % t0)
        self.assertEqual(s.head(), 200)
        got = s.events(n, timeout=20)
        self.assertEqual([e["data"]["alarm_id"] for e in got], ["B-%d" % i for i in range(n)])
        self.assertIsNone(s.next_event(timeout=2.5), "something sent twice")
        s.close()

    def test_errors(self):
        st, j = api(self.h, "GET", "/api/v1/alarms/stream?cursor=xyz")
        self.assertEqual(st, 400)
        st, j = api(self.h, "POST", "/api/v1/alarms/stream")
        self.assertEqual(st, 405)
        st, j = api(self.h, "POST", "/api/v1/alarms/%s/ack" % ("0" * 32))
        self.assertEqual(st, 404)
        st, j = api(self.h, "GET", "/api/v1/alarms/%s/ack" % ("0" * 32))
        self.assertEqual(st, 405)

    def test_ack(self):
        raise_alarms(self.h, "ACK-1", T0 + 500000, 2, prefix="K")
        hist = history(self.h, "00005A-HeNB-ACK-1")
        self.assertIsNone(hist[0]["ack"])
        key = hist[0]["key"]
        st, j = api(self.h, "POST", "/api/v1/alarms/%s/ack" % key, b'{"by": "alice"}')
        self.assertEqual(st, 200, j)
        self.assertEqual(j["ack"]["by"], "alice")
        self.assertEqual(j["alarm_id"], "K-0")
        at = j["ack"]["time_ms"]
        self.assertLess(abs(at - time.time() * 1000), 60000)
        hist = history(self.h, "00005A-HeNB-ACK-1")
        self.assertEqual(hist[0]["ack"], {"time_ms": at, "by": "alice"})
        self.assertIsNone(hist[1]["ack"])
        st, cur = api(self.h, "GET", "/api/v1/devices/00005A-HeNB-ACK-1/alarms")
        self.assertEqual({a["alarm_id"]: a["ack"] and a["ack"]["by"] for a in cur["alarms"]},
                         {"K-0": "alice", "K-1": None})
        # the first acknowledgement stands
        st, j = api(self.h, "POST", "/api/v1/alarms/%s/ack" % key, b'{"by": "bob"}')
        self.assertEqual((st, j["ack"]["by"]), (200, "alice"))
        # default: who = operator@peer
        st, j = api(self.h, "POST", "/api/v1/alarms/%s/ack" % hist[1]["key"])
        self.assertEqual(st, 200, j)
        self.assertTrue(j["ack"]["by"].startswith("operator@127.0.0.1"), j)
        st, j = api(self.h, "POST", "/api/v1/alarms/%s/ack" % key, b'{"by": 7}')
        self.assertEqual(st, 422)


class Durable(unittest.TestCase):
    def test_ack_survives_restart_and_roles(self):
        rd, op = "reader-token", "operator-token"
        cfg = "[api]\nreader_token_sha256 = %s\noperator_token_sha256 = %s\n" % (
            hashlib.sha256(rd.encode()).hexdigest(), hashlib.sha256(op.encode()).hexdigest())
        h = Hemsd(config=cfg).start()
        try:
            raise_alarms(h, "ACK-2", T0, 1, prefix="P")
            st, j = api(h, "GET", "/api/v1/alarms", token=rd)
            key = j["alarms"][0]["key"]
            st, j = api(h, "POST", "/api/v1/alarms/%s/ack" % key, token=rd)
            self.assertEqual(st, 403, j)
            st, j = api(h, "POST", "/api/v1/alarms/%s/ack" % key, b'{"by":"carol"}', token=op)
            self.assertEqual(st, 200, j)
            s = Sse(h.admin_port, "/api/v1/alarms/stream?since=1")
            self.assertEqual(s.head(), 401)
            s.close()
            s = Sse(h.admin_port, "/api/v1/alarms/stream?since=1", token=rd)
            self.assertEqual(s.head(), 200)
            self.assertEqual(s.next_event()["data"]["ack"]["by"], "carol")
            s.close()
            self.assertEqual(h.stop(), 0)
            h.start()
            st, j = api(h, "GET", "/api/v1/alarms", token=rd)
            self.assertEqual(j["alarms"][0]["ack"]["by"], "carol")
        finally:
            h.__exit__(None, None, None)


class SlowConsumer(unittest.TestCase):
    def test_cut_and_resume(self):
        h = Hemsd(config="[alarms]\nstream_max_buffer_bytes = 8192\n").start()
        try:
            s = Sse(h.admin_port, "/api/v1/alarms/stream?since=1", rcvbuf=4096)
            self.assertEqual(s.head(), 200)
            n = 240
            raise_alarms(h, "SLOW-1", T0, n, prefix="S")
            # the consumer reads nothing: cut within a few polls
            deadline = time.time() + 10
            while time.time() < deadline and "too slow" not in h.logs():
                time.sleep(0.1)
            self.assertIn("too slow", h.logs())
            self.assertGreaterEqual(h.metrics()["hems_alarm_streams_cut_total"], 1)
            got = []
            while True:
                e = s.next_event(timeout=3)
                if e is None:
                    break
                got.append(e)
            self.assertTrue(s.eof, "cut stream not closed")
            self.assertLess(len(got), n)
            s.close()
            # resume from the last complete event: the rest, nothing lost, no duplicates
            s = Sse(h.admin_port, "/api/v1/alarms/stream", last_id=got[-1]["id"] if got else None)
            self.assertEqual(s.head(), 200)
            got += s.events(n - len(got), timeout=15)
            s.close()
            keys = [a["key"] for a in history(h)]
            self.assertEqual(len(keys), n)
            self.assertEqual([e["id"] for e in got], keys)
            m = h.metrics()
            self.assertGreaterEqual(m["hems_alarm_stream_events_total"], n)
        finally:
            h.__exit__(None, None, None)


if __name__ == "__main__":
    main()
