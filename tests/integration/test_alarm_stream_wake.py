"""The live alarm stream wakes on commit: with the fallback poll timer set to a minute, an
alarm committed by an Inform still reaches an open stream (on either shard) within a fraction
of a second, because the ACS's commit completion posts a wake to every shard with streams."""
import time
import unittest

from alarmlib import Sse, raise_alarms
from hemsd import Hemsd, main


class Wake(unittest.TestCase):
    def test_commit_wakes_streams_without_the_poll(self):
        conf = "[alarms]\nstream_poll_ms = 60000\nstream_heartbeat_ms = 60000\n"
        with Hemsd(shards=2, config=conf) as h:
            # two streams: the admin connections may land on either shard
            streams = [Sse(h.admin_port, "/api/v1/alarms/stream") for _ in range(2)]
            for s in streams:
                self.assertEqual(s.head(), 200)
            time.sleep(0.3)  # the streams' first (priming) poll has run
            for k in range(3):
                t0 = time.monotonic()
                raise_alarms(h, "WAKE-%d" % k, (int(time.time()) + 5 + k) * 1000, 1, prefix="W%d" % k)
                for s in streams:
                    ev = s.next_event(timeout=5)
                    self.assertIsNotNone(ev)
                    self.assertEqual(ev["data"]["alarm_id"], "W%d-0" % k)
                took = time.monotonic() - t0
                # the fallback poll would take 60 s; an Inform session plus the wake is ms
                self.assertLess(took, 2.0)
            m = h.metrics()
            self.assertGreaterEqual(m["hems_alarm_stream_wakes_total"], 3)
            for s in streams:
                s.close()


if __name__ == "__main__":
    main()
