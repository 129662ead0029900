#!/usr/bin/env python3
"""Alarm stream cost and latency against a real hemsd (docs/benchmarks-alarmsui.md).

Opens K SSE streams, measures hemsd's CPU time while they idle, then raises alarms one
Inform at a time and measures, for each, the time from the InformResponse (the commit) to
the event's arrival on every stream.

  HEMS_BIN_DIR=build python3 bench/alarm_stream_bench.py [K] [ALARMS]
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from alarmlib import Sse, event, inform, iso  # noqa: E402
from hemsd import Hemsd  # noqa: E402


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    k = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    with Hemsd(shards=1, config="[alarms]\nstream_heartbeat_ms = 15000\n") as h:
        pid = h.proc.pid
        idle0, t0 = cpu_s(pid), time.time()
        time.sleep(5)
        base = (cpu_s(pid) - idle0) / (time.time() - t0)
        streams = [Sse(h.admin_port, "/api/v1/alarms/stream") for _ in range(k)]
        for s in streams:
            assert s.head() == 200
        time.sleep(1)
        idle0, t0 = cpu_s(pid), time.time()
        time.sleep(10)
        idle = (cpu_s(pid) - idle0) / (time.time() - t0)
        lat = []
        for i in range(n):
            now = int(time.time() + 1) * 1000
            inform(h, event("Device", "ExpeditedEvent", 1, iso(now), "B-%d" % i, "NewAlarm",
                            "Major"), "BENCH-%d" % i)
            t_commit = time.time()
            for s in streams:
                e = s.next_event(timeout=5)
                assert e and e["data"]["alarm_id"] == "B-%d" % i, e
                lat.append(time.time() - t_commit)
        for s in streams:
            s.close()
        lat.sort()
        print("streams=%d alarms=%d" % (k, n))
        print("hemsd cpu, no stream: %.2f%% of a core; %d idle streams: %.2f%%"
              % (base * 100, k, idle * 100))
        print("commit->event on the last of %d streams: p50 %.1f ms  p99 %.1f ms  max %.1f ms"
              % (k, lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000, lat[-1] * 1000))


if __name__ == "__main__":
    main()
