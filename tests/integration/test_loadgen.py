"""hems-loadgen against a real hemsd: the engine (healthz scenario, open and closed loop,
keep-alive, POST bodies), the JSON report, multi-worker aggregation, source addresses,
server sampling and the hold scenario. The CWMP scenarios are in test_loadgen_cwmp.py."""
import json
import os
import subprocess
import tempfile
import unittest

from hemsd import Hemsd, free_port, main, BIN_DIR

LOADGEN = os.path.join(BIN_DIR, "hems-loadgen")


def run_loadgen(port, *args, timeout=60):
    """Runs hems-loadgen against 127.0.0.1:<port>; returns (report dict, stdout)."""
    with tempfile.TemporaryDirectory(prefix="loadgen-test-") as tmp:
        path = os.path.join(tmp, "report.json")
        cmd = [LOADGEN, "--target", "127.0.0.1:%d" % port, "--json", path, "--quiet"] + [str(a) for a in args]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if p.returncode != 0:
            raise AssertionError("hems-loadgen exited %d\nstdout:\n%s\nstderr:\n%s"
                                 % (p.returncode, p.stdout.decode(), p.stderr.decode()))
        with open(path) as f:
            r = json.load(f)
        assert 0 < r["elapsed_s"] < 3600, "elapsed_s %r" % r["elapsed_s"]
        return r, p.stdout.decode()


class Report(unittest.TestCase):
    def assert_latency_sane(self, lat, count):
        self.assertEqual(set(lat), {"count", "min", "mean", "p50", "p90", "p99", "p999", "max"})
        self.assertEqual(lat["count"], count)
        self.assertGreater(lat["p50"], 0)
        self.assertLessEqual(lat["min"], lat["p50"])
        self.assertLessEqual(lat["p50"], lat["p90"])
        self.assertLessEqual(lat["p90"], lat["p99"])
        self.assertLessEqual(lat["p99"], lat["p999"])
        self.assertLessEqual(lat["p999"], lat["max"])
        self.assertLessEqual(lat["min"], lat["mean"])
        self.assertLessEqual(lat["mean"], lat["max"])
        self.assertLess(lat["max"], 10_000_000, "a loopback exchange took over 10 s")

    def assert_no_errors(self, r):
        self.assertEqual(r["errors"]["total"], 0, r["errors"])
        self.assertEqual(r["errors"]["unfinished"], 0, r["errors"])
        self.assertEqual(r["sessions"]["failed"], 0)


class Healthz(Report):
    @classmethod
    def setUpClass(cls):
        cls.h = Hemsd(shards=2).start()

    @classmethod
    def tearDownClass(cls):
        cls.h.__exit__(None, None, None)

    def test_open_loop_rate_and_report(self):
        r, out = run_loadgen(self.h.cwmp_port, "--scenario", "healthz", "--rate", 400,
                             "--duration", 2, "--devices", 100, "--server-pid", self.h.proc.pid)
        self.assertEqual(r["scenario"], "healthz")
        self.assertEqual(r["mode"], "open")
        self.assert_no_errors(r)
        n = r["sessions"]["ok"]
        # 2 s at 400/s, arrivals on a fixed grid: 800 (+1 for the slot at t0)
        self.assertGreaterEqual(n, 790)
        self.assertLessEqual(n, 802)
        self.assertEqual(r["sessions"]["started"], n)
        self.assertEqual(r["exchanges"]["count"], n)
        self.assertEqual(r["connects"], n)
        self.assertEqual(r["http_status"], {"200": n})
        self.assert_latency_sane(r["latency_us"]["exchange"], n)
        self.assert_latency_sane(r["latency_us"]["session"], n)
        self.assert_latency_sane(r["latency_us"]["connect"], n)
        # open loop: a session is measured from its intended start, so it is never shorter
        # than the exchange it contains
        self.assertGreaterEqual(r["latency_us"]["session"]["p50"], r["latency_us"]["exchange"]["p50"])
        self.assertGreater(r["loadgen"]["cpu_s"], 0)
        self.assertEqual(r["server"]["pid"], self.h.proc.pid)
        self.assertGreater(r["server"]["cpu_s"], 0)
        self.assertGreater(r["server"]["rss_kb_peak"], 1000)
        self.assertIn("p99.9", out)
        self.assertIn("sessions  ok %d" % n, out)

    def test_timeline_and_svg_plot(self):
        with tempfile.TemporaryDirectory(prefix="loadgen-plot-") as tmp:
            svg = os.path.join(tmp, "run.svg")
            r, _ = run_loadgen(self.h.cwmp_port, "--scenario", "healthz", "--rate", 300,
                               "--duration", 3, "--devices", 50, "--server-pid", self.h.proc.pid,
                               "--plot", svg)
            tl = r["timeline"]
            self.assertGreaterEqual(len(tl), 2)
            self.assertEqual([round(p["t_s"]) for p in tl], list(range(1, len(tl) + 1)))
            # every completed session is in one second's point but those of the part-second
            # after the last point; a worker's report that reaches the parent late moves its
            # sessions to the next point (a 0 then a double), so only the sum is exact
            total = sum(p["ok_per_s"] for p in tl)
            self.assertLessEqual(total, r["sessions"]["ok"])
            self.assertGreaterEqual(total, r["sessions"]["ok"] - 400, tl)
            self.assertTrue(all(p["ok_per_s"] <= 3 * 300 for p in tl), tl)
            self.assertTrue(all(p["errors_per_s"] == 0 for p in tl))
            self.assertTrue(all("server_rss_kb" in p for p in tl))
            import xml.etree.ElementTree as ET
            root = ET.parse(svg).getroot()
            self.assertEqual(root.tag, "{http://www.w3.org/2000/svg}svg")
            lines = root.findall(".//{http://www.w3.org/2000/svg}polyline")
            self.assertEqual(len(lines), 5)  # 3 rates, p99, server CPU
            pts = lines[-1 - 2].get("points").split()  # completed/s is drawn last of its panel
            self.assertGreaterEqual(len(pts), 2)

    def test_closed_loop_keepalive_post(self):
        r, _ = run_loadgen(self.h.cwmp_port, "--scenario", "healthz", "--concurrency", 8,
                           "--sessions", 300, "--keepalive", 5, "--post", "--body-size", 3000)
        self.assertEqual(r["mode"], "closed")
        self.assert_no_errors(r)
        self.assertEqual(r["sessions"]["ok"], 300)
        self.assertEqual(r["exchanges"]["count"], 1500)
        self.assertEqual(r["connects"], 300, "keep-alive: one connection per session")
        self.assertGreaterEqual(r["bytes"]["sent"], 1500 * 3000)
        self.assert_latency_sane(r["latency_us"]["exchange"], 1500)
        self.assert_latency_sane(r["latency_us"]["session"], 300)

    def test_workers_aggregate(self):
        r, _ = run_loadgen(self.h.cwmp_port, "--scenario", "healthz", "--workers", 3,
                           "--concurrency", 6, "--sessions", 600, "--keepalive", 2)
        self.assert_no_errors(r)
        self.assertEqual(r["config"]["workers"], 3)
        self.assertEqual(len(r["workers"]), 3)
        self.assertEqual([w["sessions_ok"] for w in r["workers"]], [200, 200, 200])
        self.assertEqual(sum(w["exchanges"] for w in r["workers"]), r["exchanges"]["count"])
        self.assertEqual(r["sessions"]["ok"], 600)
        self.assertEqual(r["exchanges"]["count"], 1200)
        self.assert_latency_sane(r["latency_us"]["exchange"], 1200)

    def test_uneven_split_and_source_addresses(self):
        r, _ = run_loadgen(self.h.cwmp_port, "--scenario", "healthz", "--workers", 2,
                           "--rate", 300, "--sessions", 301, "--devices", 7,
                           "--source", "127.0.0.2-127.0.0.4")
        self.assert_no_errors(r)
        self.assertEqual(r["sessions"]["ok"], 301)
        self.assertEqual(sorted(w["sessions_ok"] for w in r["workers"]), [150, 151])

    def test_connect_refused_is_counted(self):
        # a port nobody listens on: every session fails with a connect error, none hangs
        r, _ = run_loadgen(free_port(), "--scenario", "healthz", "--rate", 100, "--sessions", 20,
                           "--devices", 5, "--timeout", 2)
        self.assertEqual(r["sessions"]["failed"], 20)
        self.assertEqual(r["errors"]["connect"], 20)
        self.assertEqual(r["sessions"]["ok"], 0)

    def test_bind_failure_neither_recurses_nor_spins(self):
        # 192.0.2.1 (TEST-NET-1) is not a local address: bind() fails at once for every
        # session; closed loop must report them all without a stack overflow or a hot loop
        r, _ = run_loadgen(self.h.cwmp_port, "--scenario", "healthz", "--concurrency", 50,
                           "--sessions", 2000, "--devices", 2000, "--source", "192.0.2.1")
        self.assertEqual(r["errors"]["connect"], 2000)
        self.assertEqual(r["sessions"]["failed"], 2000)
        self.assertEqual(r["connects"], 0)

    def test_not_found_counted_as_http_error(self):
        r, _ = run_loadgen(self.h.cwmp_port, "--scenario", "healthz", "--healthz-path", "/nope",
                           "--concurrency", 2, "--sessions", 10)
        self.assertEqual(r["errors"]["http_status"], 10)
        self.assertEqual(r["http_status"], {"404": 10})
        self.assertEqual(r["sessions"]["failed"], 10)


class Hold(Report):
    def test_hold_connections_then_release(self):
        with Hemsd(shards=1) as h:
            r, _ = run_loadgen(h.cwmp_port, "--scenario", "hold", "--devices", 300,
                               "--rate", 3000, "--interval", 0.5, "--duration", 2,
                               "--server-pid", h.proc.pid)
            self.assert_no_errors(r)
            self.assertEqual(r["held"]["peak"], 300)
            self.assertEqual(r["sessions"]["ok"], 300)
            # each held connection re-requested about every 0.5 s for ~1.9 s
            self.assertGreaterEqual(r["exchanges"]["count"], 300 * 3)
            self.assertEqual(r["connects"], 300)
            self.assertIn("server_rss_bytes_per_held", r)

    def test_hold_closed_loop_ramps_every_device(self):
        # --concurrency bounds the connects in flight, not the connections held
        with Hemsd(shards=1) as h:
            r, _ = run_loadgen(h.cwmp_port, "--scenario", "hold", "--devices", 150,
                               "--concurrency", 4, "--duration", 1.5)
            self.assert_no_errors(r)
            self.assertEqual(r["held"]["peak"], 150)
            self.assertEqual(r["sessions"]["ok"], 150)


if __name__ == "__main__":
    if not os.path.exists(LOADGEN):
        print("hems-loadgen not found in", BIN_DIR)
        raise SystemExit(1)
    main()
