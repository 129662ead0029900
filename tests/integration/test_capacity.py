"""hems-capacity on a real measurement: hems-loadgen runs the periodic scenario against a real
hemsd with --server-pid, and the planner turns that report and a fleet description into cores,
memory, disk and nodes (docs/capacity-planning.md). Checks the arithmetic the planner states."""
import json
import math
import os
import subprocess
import unittest

from hemsd import Hemsd, main
from test_loadgen import run_loadgen

SRC = os.environ.get("HEMS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
PLANNER = os.path.join(SRC, "bench", "hems-capacity")


def plan(report, *args):
    out = subprocess.run(["python3", PLANNER, "--report", report, "--json"] + list(args),
                         capture_output=True, text=True, timeout=30)
    if out.returncode:
        raise AssertionError("hems-capacity exited %d: %s" % (out.returncode, out.stderr))
    return json.loads(out.stdout)


class Capacity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = Hemsd()
        cls.h.start()
        cls.report = os.path.join(cls.h.tmp.name, "periodic.json")
        r, _ = run_loadgen(cls.h.cwmp_port, "--scenario", "periodic", "--devices", "200",
                           "--concurrency", "8", "--duration", "2", "--server-pid", str(cls.h.proc.pid))
        with open(cls.report, "w") as f:
            json.dump(r, f)
        cls.measured = r

    @classmethod
    def tearDownClass(cls):
        cls.h.__exit__(None, None, None)

    def test_answer_follows_the_measured_cost(self):
        us = self.measured["server"]["cpu_us_per_session"]
        self.assertGreater(us, 0)
        p = plan(self.report, "--henbs", "1000000", "--inform-interval", "3600", "--pm-period", "900",
                 "--pm-file-kb", "40", "--alarm-rate", "0", "--peak-factor", "3", "--headroom", "0.5")
        f, load, ans = p["figures_used"], p["load"], p["answer"]
        self.assertAlmostEqual(f["cpu_us_per_session"], us, places=3)
        self.assertIn("measured", f["sources"]["cpu_us_per_session"])
        # sessions: 1e6 / 3600 per second, x3 at peak; shard cores = peak x cost / (1 - headroom)
        self.assertAlmostEqual(load["sessions_per_s_avg"], 1e6 / 3600, delta=0.1)
        self.assertAlmostEqual(load["sessions_per_s_peak"], 3 * 1e6 / 3600, delta=0.1)
        self.assertAlmostEqual(ans["cores_for_sessions"], 3 * 1e6 / 3600 * us / 1e6 / 0.5, delta=0.01)
        # PM: the measured pipeline figure scaled to 40 KB files
        self.assertAlmostEqual(f["pm_files_per_core_s"], 2480.0 * 30.3 / 40, places=3)
        self.assertAlmostEqual(load["pm_files_per_s"], 1e6 / 900, delta=0.1)
        self.assertAlmostEqual(ans["cores_for_pm"], 1e6 / 900 * 3 / f["pm_files_per_core_s"] / 0.5, delta=0.01)
        self.assertGreaterEqual(ans["cores"], math.ceil(ans["cores_for_sessions"] + ans["cores_for_pm"]))
        self.assertGreaterEqual(ans["nodes"], 1)

    def test_bigger_fleet_needs_more(self):
        small = plan(self.report, "--henbs", "100000")["answer"]
        big = plan(self.report, "--henbs", "2000000")["answer"]
        for k in ("cores", "store_gib_devices", "pm_store_gib_per_day", "disk_write_mb_s_peak",
                  "disk_iops_peak"):
            self.assertGreater(big[k], small[k], k)
        self.assertGreaterEqual(big["nodes"], small["nodes"])
        # an explicit PM figure replaces the default
        p = plan(self.report, "--henbs", "100000", "--pm-files-per-core-s", "500")
        self.assertEqual(p["figures_used"]["pm_files_per_core_s"], 500)
        self.assertEqual(p["figures_used"]["sources"]["pm_files_per_core_s"], "measured (argument)")

    def test_report_without_server_figures_is_refused(self):
        bad = self.report + ".bad"
        with open(self.report) as f:
            r = json.load(f)
        r.pop("server", None)
        with open(bad, "w") as f:
            json.dump(r, f)
        try:
            out = subprocess.run(["python3", PLANNER, "--report", bad, "--henbs", "1000"],
                                 capture_output=True, text=True, timeout=30)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("--server-pid", out.stderr)
        finally:
            os.unlink(bad)


if __name__ == "__main__":
    main()
