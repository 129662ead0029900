"""hems-loadgen's CWMP scenarios (periodic, boot, hold with CWMP sessions) against a real
hemsd. Exits 77 (skipped) while hemsd has no CWMP ACS, i.e. POST /cwmp answers 404."""
import os
import sys
import unittest

from hemsd import Hemsd, SHARED, http_request, main, BIN_DIR
from test_loadgen import LOADGEN, Report, run_loadgen


def acs_present():
    with Hemsd(shards=1) as h:
        st, _, _ = http_request(h.cwmp_port, "POST", "/cwmp", b"",
                                {"Content-Type": "text/xml"})
        return st != 404


class Cwmp(Report):
    @classmethod
    def setUpClass(cls):
        cls.h = Hemsd(shards=2).start()

    @classmethod
    def tearDownClass(cls):
        cls.h.__exit__(None, None, None)

    def assert_cwmp_clean(self, r):
        # 8005 retries are the ACS shedding load: allowed, but nothing else
        e = dict(r["errors"])
        e.pop("retry_8005")
        e.pop("total")
        self.assertEqual(sum(e.values()), 0, r["errors"])
        self.assertEqual(r["sessions"]["failed"], 0)

    def test_periodic_sessions(self):
        r, _ = run_loadgen(self.h.cwmp_port, "--scenario", "periodic", "--devices", 60,
                           "--interval", 1, "--duration", 3, "--first-serial", 1000,
                           "--retry-min", 0.2, "--server-pid", self.h.proc.pid)
        self.assert_cwmp_clean(r)
        n = r["sessions"]["ok"]
        self.assertGreaterEqual(n, 170)  # 60 devices x 3 periods, + the slots at t0
        # every session: Inform, empty POST, one POST per ACS request; ends with 204
        self.assertEqual(r["http_status"].get("204"), n)
        requests = sum(r["acs_requests"].values())
        self.assertEqual(r["exchanges"]["count"],
                         2 * n + requests + r["errors"]["retry_8005"])
        self.assert_latency_sane(r["latency_us"]["session"], n)
        self.assertGreater(r["server"]["cpu_s"], 0)

    def test_periodic_with_henb_agents(self):
        model = os.path.join(SHARED, "datamodels", "henb-tr196-lte-params.csv")
        r, _ = run_loadgen(self.h.cwmp_port, "--scenario", "periodic", "--devices", 40,
                           "--interval", 1, "--duration", 2, "--first-serial", 3000,
                           "--retry-min", 0.2, "--model", model, "--workers", 2)
        self.assert_cwmp_clean(r)
        self.assertEqual(r["config"]["cpe"], "henb_agent")
        self.assertGreaterEqual(r["sessions"]["ok"], 75)
        self.assertEqual(r["http_status"].get("204"), r["sessions"]["ok"])

    def test_boot_storm_every_device_once(self):
        r, _ = run_loadgen(self.h.cwmp_port, "--scenario", "boot", "--devices", 200,
                           "--rate", 400, "--first-serial", 5000, "--retry-min", 0.2)
        self.assert_cwmp_clean(r)
        self.assertEqual(r["sessions"]["ok"], 200)
        self.assertEqual(r["sessions"]["started"], 200)

    def test_boot_closed_loop_two_workers(self):
        r, _ = run_loadgen(self.h.cwmp_port, "--scenario", "boot", "--devices", 100,
                           "--concurrency", 10, "--workers", 2, "--first-serial", 9000,
                           "--retry-min", 0.2)
        self.assert_cwmp_clean(r)
        self.assertEqual(r["sessions"]["ok"], 100)
        self.assertEqual(len(r["workers"]), 2)

    def test_hold_cwmp_sessions(self):
        r, _ = run_loadgen(self.h.cwmp_port, "--scenario", "hold", "--hold-cwmp",
                           "--devices", 100, "--rate", 500, "--duration", 1.5,
                           "--first-serial", 20000, "--server-pid", self.h.proc.pid)
        self.assert_cwmp_clean(r)
        self.assertEqual(r["held"]["peak"], 100)


if __name__ == "__main__":
    if not os.path.exists(LOADGEN):
        print("hems-loadgen not found in", BIN_DIR)
        raise SystemExit(1)
    if not acs_present():
        print("hemsd has no CWMP ACS yet (POST /cwmp -> 404): skipped")
        sys.exit(77)
    main()
