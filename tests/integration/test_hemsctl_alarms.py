"""hemsctl alarms / ack / tail alarms against a real hemsd: the table and --json forms, the
device filter, acknowledging, and tail following the SSE stream across a hemsd restart
(it reconnects with Last-Event-ID and prints what was raised after its last event, which a
fresh stream would skip: the late window is off here)."""
import json
import os
import subprocess
import threading
import time
import unittest

from alarmlib import raise_alarms
from hemsd import BIN_DIR, Hemsd, main

T0 = 1795741200000


def ctl(h, *args):
    r = subprocess.run([os.path.join(BIN_DIR, "hemsctl"), "--admin", "127.0.0.1:%d" % h.admin_port]
                       + list(args), capture_output=True, timeout=20)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


class Lines:
    """Collects a process's stdout lines on a thread."""

    def __init__(self, proc):
        self.lines, self.proc = [], proc
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        for ln in self.proc.stdout:
            self.lines.append(ln.decode().rstrip("\n"))

    def wait(self, n, timeout=15):
        end = time.time() + timeout
        while len(self.lines) < n and time.time() < end:
            time.sleep(0.05)
        return self.lines


class HemsctlAlarms(unittest.TestCase):
    def test_list_ack_json(self):
        with Hemsd(shards=2) as h:
            raise_alarms(h, "CTL-1", T0, 2, prefix="A", sev="Major")
            raise_alarms(h, "CTL-2", T0, 1, prefix="B", sev="Critical")
            rc, out, err = ctl(h, "alarms")
            self.assertEqual(rc, 0, err)
            lines = out.splitlines()
            self.assertTrue(lines[0].startswith("EVENT TIME"), out)
            self.assertEqual(len(lines), 4, out)
            self.assertIn("00005A-HeNB-CTL-2 B-0", out)
            rc, out, err = ctl(h, "alarms", "--device", "00005A-HeNB-CTL-1", "--json")
            self.assertEqual(rc, 0, err)
            j = json.loads(out)
            self.assertEqual(sorted(a["alarm_id"] for a in j["alarms"]), ["A-0", "A-1"])
            key = j["alarms"][0]["key"]
            rc, out, err = ctl(h, "ack", key, "bob")
            self.assertEqual(rc, 0, err)
            self.assertIn("ack=bob", out)
            rc, out, err = ctl(h, "--device", "00005A-HeNB-CTL-1", "alarms")
            self.assertIn("ack=bob", out)
            rc, out, err = ctl(h, "ack", "0" * 32)
            self.assertEqual(rc, 1)
            self.assertIn("404 not_found", err)
            rc, out, err = ctl(h, "tail")
            self.assertEqual(rc, 2)

    def test_tail_resumes_across_restart(self):
        h = Hemsd(config="[alarms]\nstream_late_window_ms = 0\n")
        h.start()
        p = None
        try:
            raise_alarms(h, "TAIL-1", T0, 2, prefix="T")
            p = subprocess.Popen([os.path.join(BIN_DIR, "hemsctl"), "--admin",
                                  "127.0.0.1:%d" % h.admin_port, "tail", "alarms",
                                  "--device", "00005A-HeNB-TAIL-1", str(T0)],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            out = Lines(p)
            self.assertEqual(len(out.wait(2)), 2, out.lines)
            self.assertIn(" T-0 ", out.lines[0])
            self.assertIn(" T-1 ", out.lines[1])
            self.assertEqual(h.stop(), 0)
            h.start()
            # old event times, after the last one printed: only a resumed stream has them
            raise_alarms(h, "TAIL-1", T0 + 60000, 2, prefix="U")
            raise_alarms(h, "TAIL-9", T0 + 70000, 1, prefix="V")  # other device: filtered
            lines = out.wait(4, timeout=20)
            self.assertEqual([ln.split()[4] for ln in lines], ["T-0", "T-1", "U-0", "U-1"], lines)
            time.sleep(0.5)
            self.assertEqual(len(out.lines), 4, out.lines)
        finally:
            if p:
                p.kill()
                p.wait()
            h.__exit__(None, None, None)

    def test_tail_json(self):
        with Hemsd() as h:
            raise_alarms(h, "TJ-1", T0, 1, prefix="J")
            p = subprocess.Popen([os.path.join(BIN_DIR, "hemsctl"), "--json", "--admin",
                                  "127.0.0.1:%d" % h.admin_port, "tail", "alarms", "1"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            try:
                out = Lines(p)
                lines = out.wait(1)
                self.assertEqual(json.loads(lines[0])["alarm_id"], "J-0")
            finally:
                p.kill()
                p.wait()


if __name__ == "__main__":
    main()
