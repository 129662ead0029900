"""PCI pools with a reuse distance per TAC and S1 far-end regions (docs/profiles.md), end to
end: a real hemsd (serving role, policy file), thousands of HeNBs booting at once from
concurrent hems-loadgen processes, checked through the northbound API; then a restart and
a re-registration of every device."""
import json
import os
import subprocess
import tempfile
import threading
import unittest
from collections import defaultdict

from hemsd import SHARED, Hemsd, fleet_size, http_request, main
from test_loadgen import run_loadgen

L = "Device.Services.FAPService.1.CellConfig.LTE."
TAC = L + "EPC.TAC"
PCI = L + "RAN.RF.PhyCellID"
GW = "Device.Services.FAPService.1.FAPControl.LTE.Gateway."
S1LIST = GW + "S1SigLinkServerList"
S1PORT = GW + "S1SigLinkPort"
MODEL = ",".join(os.path.join(SHARED, "datamodels", f) for f in (
    "tr-181-2-17-0-cwmp-full.xml", "tr-196-2-1-2-cwmp-full.xml"))
OUI = "00256D"
# 250 (the pool's exhaustion is reached); 100 under the sanitizers (no exhaustion there: the
# unit tests cover it in those passes)
PER_CLASS = fleet_size(250, env="HM_PCI_TEST_PER_CLASS", sanitized=100)
# product class -> TAC. Distance 1: the pairs (100,101), (103,104), (106,107), (109,110)
# share the 504 PCIs (2 x 250 = 500 of them); 101/103, 104/106, ... are 2 apart and reuse.
CLASSES = {"HeNB-A": 100, "HeNB-B": 101, "HeNB-C": 103, "HeNB-D": 104,
           "HeNB-E": 106, "HeNB-F": 107, "HeNB-G": 109, "HeNB-H": 110}
NORTH = ["10.1.0.1", "10.1.0.2", "10.1.0.3"]
SOUTH = ["10.2.0.1", "10.2.0.2"]


def api(h, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    st, _, b = http_request(h.admin_port, method, path, body=data, timeout=30,
                            headers={"Content-Type": "application/json"} if body is not None else None)
    return st, (json.loads(b) if b.strip() else None)


def dev_id(pc, i):
    return "%s-%s-%010d" % (OUI, pc, serial(pc, i))


def serial(pc, i):
    return 100000 * (1 + sorted(CLASSES).index(pc)) + i


def boot_all(h, classes, n, first=0):
    """One loadgen process per product class, all at once (each: 0 BOOTSTRAP sessions)."""
    errors, reports = [], {}

    def one(pc):
        try:
            reports[pc] = run_loadgen(h.cwmp_port, "--scenario", "boot", "--devices", n,
                                      "--concurrency", 16, "--product-class", pc,
                                      "--first-serial", serial(pc, first), "--retry-min", 0.2,
                                      timeout=300)[0]
        except Exception as e:  # noqa: BLE001 - reported by the caller
            errors.append(repr(e))
    ts = [threading.Thread(target=one, args=(pc,)) for pc in classes]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return errors, reports


class PciRegions(unittest.TestCase):
    def setUp(self):
        self.policy = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump({"s1": {"servers": "10.9.9.9", "connection_mode": "One", "port": 36412},
                   "registration": True}, self.policy)
        self.policy.close()
        self.h = Hemsd("--set", "datamodel.files=" + MODEL,
                       config="[hems]\nrole = serving\nnode_id = hems-a\npolicy_file = %s\n"
                       % self.policy.name, shards=2)
        self.h.start(wait=False)
        self.h.wait_ready(timeout=90)

    def tearDown(self):
        self.h.__exit__(None, None, None)
        os.unlink(self.policy.name)

    def restart(self):
        self.assertEqual(self.h.stop(), 0)
        self.h.proc = None
        self.h.log.close()
        self.h.start(wait=False)
        self.h.wait_ready(timeout=90)

    def allocations(self):
        st, a = api(self.h, "GET", "/api/v1/pools/pci/allocations")
        self.assertEqual(st, 200, a)
        return {e["device"]: (e["value"], e.get("tac")) for e in a}

    def check_distance(self, allocs):
        by_tac = defaultdict(dict)
        for dev, (v, tac) in allocs.items():
            self.assertIsNotNone(tac, dev)
            self.assertTrue(0 <= v <= 503, (dev, v))
            self.assertNotIn(v, by_tac[tac], "TAC %d: %s and %s share PCI %d"
                             % (tac, dev, by_tac[tac].get(v), v))
            by_tac[tac][v] = dev
        for t in by_tac:
            for n in (t - 1, t + 1):
                shared = set(by_tac[t]) & set(by_tac.get(n, {}))
                self.assertEqual(shared, set(), "TACs %d and %d (distance 1) share %s"
                                 % (t, n, sorted(shared)[:5]))
        return by_tac

    def test_pci_distance_s1_regions_restart(self):
        h = self.h
        # configuration: PCI pool, two regions, one profile per product class
        st, p = api(h, "PUT", "/api/v1/pools/pci", {"kind": "pci", "reuse_distance": 1})
        self.assertEqual(st, 200, p)
        self.assertEqual((p["kind"], p["lo"], p["hi"], p["reuse_distance"]), ("pci", 0, 503, 1))
        self.assertEqual(api(h, "PUT", "/api/v1/pools/pci", {"lo": 0, "hi": 503})[0], 422)
        self.assertEqual(api(h, "PUT", "/api/v1/pools/bad", {"kind": "pci", "hi": 5000,
                                                            "lo": 0})[0], 422)
        st, r = api(h, "PUT", "/api/v1/regions/north", {
            "servers": NORTH, "port": 36413, "selector": {"tac": [[100, 104]]}})
        self.assertEqual(st, 200, r)
        st, r = api(h, "PUT", "/api/v1/regions/south", {
            "servers": ",".join(SOUTH), "selector": {"tac": [[105, 110]]}})
        self.assertEqual((st, r["servers"]), (200, SOUTH), r)
        st, r = api(h, "PUT", "/api/v1/regions/bad", {"servers": [], "selector": {"tac": [1]}})
        self.assertEqual(st, 422, r)
        self.assertIn("servers", r["error"]["message"])
        st, r = api(h, "PUT", "/api/v1/regions/bad", {"servers": ["a"], "selectr": {}})
        self.assertEqual(st, 422, r)
        st, r = api(h, "PUT", "/api/v1/regions/tmp", {"servers": ["1.2.3.4"]})
        self.assertEqual(st, 200, r)
        self.assertEqual(api(h, "DELETE", "/api/v1/regions/tmp")[0], 204)
        self.assertEqual(api(h, "DELETE", "/api/v1/regions/tmp")[0], 404)
        self.assertEqual(api(h, "GET", "/api/v1/regions/tmp")[0], 404)
        st, rs = api(h, "GET", "/api/v1/regions")
        self.assertEqual([x["name"] for x in rs], ["north", "south"])
        for pc, tac in CLASSES.items():
            st, b = api(h, "PUT", "/api/v1/profiles/cell-" + pc, {
                "selector": {"product_class": pc},
                "params": [{"name": TAC, "value": str(tac)}, {"name": PCI, "value": "${pool:pci}"},
                           {"name": S1LIST, "value": "${s1:servers}"},
                           {"name": S1PORT, "value": "${s1:port}"}]})
            self.assertEqual(st, 200, b)

        # thousands of HeNBs registering at once
        errors, reports = boot_all(h, CLASSES, PER_CLASS)
        self.assertEqual(errors, [])
        for pc, r in reports.items():
            self.assertEqual(r["sessions"]["ok"], PER_CLASS, (pc, r["sessions"], r["errors"]))
        allocs = self.allocations()
        self.assertEqual(len(allocs), len(CLASSES) * PER_CLASS)
        by_tac = self.check_distance(allocs)
        for pc, tac in CLASSES.items():
            self.assertEqual(len(by_tac[tac]), PER_CLASS, pc)
            for i in (0, PER_CLASS - 1):
                self.assertEqual(allocs[dev_id(pc, i)][1], tac)
        # PCIs are reused two TACs apart (2000 devices, 504 values)
        if len(CLASSES) * PER_CLASS > 504:
            self.assertTrue(set(by_tac[101]) & set(by_tac[103]) or
                            set(by_tac[100]) & set(by_tac[103]))
        st, p = api(h, "GET", "/api/v1/pools/pci")
        self.assertEqual((p["used"], p["exhausted"], p["tacs"]),
                         (len(CLASSES) * PER_CLASS, 0, len(CLASSES)))

        # what the devices were sent: PCI and the S1 list of their region, in their order
        firsts = defaultdict(int)
        sample = [(pc, i) for pc in CLASSES for i in range(0, PER_CLASS, max(1, PER_CLASS // 12))]
        for pc, i in sample:
            dev = dev_id(pc, i)
            st, ps = api(h, "GET", "/api/v1/devices/%s/parameters?prefix=Device.Services." % dev)
            self.assertEqual(st, 200, ps)
            vals = {e["name"]: e["value"] for e in ps["parameters"]}
            self.assertEqual(int(vals[PCI]), allocs[dev][0], dev)
            region, port = (NORTH, "36413") if CLASSES[pc] <= 104 else (SOUTH, None)
            lst = vals[S1LIST].split(",")
            self.assertEqual(sorted(lst), sorted(region), dev)
            firsts[lst[0]] += 1
            self.assertEqual(vals.get(S1PORT), port or vals.get(S1PORT), dev)
            if port:
                self.assertEqual(vals[S1PORT], port)
            # the registration (hems-registration) carried the same list, before AdminState
            st, ts = api(h, "GET", "/api/v1/devices/%s/tasks" % dev)
            reg = [t for t in ts["tasks"] if t["args"].get("parameter_key") == "hems-registration"]
            self.assertEqual(len(reg), 1, ts)
            rp = {e["name"]: e["value"] for e in reg[0]["args"]["params"]}
            self.assertEqual(rp[S1LIST], vals[S1LIST], dev)
            st, d = api(h, "GET", "/api/v1/devices/%s/desired" % dev)
            self.assertEqual(d["state"], "applied", d)
        # the load spreads: every server is the first choice of some devices
        self.assertEqual(set(firsts), set(NORTH) | set(SOUTH), firsts)

        # exhaustion: 6 more devices in TAC 100 (TACs 100+101 hold 500 of 504): an alarm each
        extra = 6
        errors, reports = boot_all(h, ["HeNB-A"], extra, first=PER_CLASS)
        self.assertEqual(errors, [])
        allocs = self.allocations()
        self.check_distance(allocs)
        got = [i for i in range(PER_CLASS, PER_CLASS + extra) if dev_id("HeNB-A", i) in allocs]
        left = 504 - 2 * PER_CLASS
        self.assertEqual(len(got), min(extra, left), got)
        st, p = api(h, "GET", "/api/v1/pools/pci")
        self.assertGreaterEqual(p["exhausted"], extra - left)
        refused = [i for i in range(PER_CLASS, PER_CLASS + extra) if i not in got]
        for i in refused:
            st, al = api(h, "GET", "/api/v1/devices/%s/alarms" % dev_id("HeNB-A", i))
            ids = {a["alarm_id"]: a for a in al["alarms"]}
            self.assertIn("HEMS-POOL-pci", ids, al)
            self.assertIn("TAC 100", ids["HEMS-POOL-pci"]["additional_text"])
        before = allocs

        # restart: the same allocations, and a re-registration of every device keeps them
        self.restart()
        self.assertEqual(self.allocations(), before)
        st, rs = api(h, "GET", "/api/v1/regions")
        self.assertEqual([x["name"] for x in rs], ["north", "south"])
        errors, reports = boot_all(h, CLASSES, PER_CLASS)
        self.assertEqual(errors, [])
        after = self.allocations()
        self.assertEqual(after, before)
        for pc, i in sample[::3]:
            dev = dev_id(pc, i)
            st, ps = api(h, "GET", "/api/v1/devices/%s/parameters?prefix=Device.Services." % dev)
            vals = {e["name"]: e["value"] for e in ps["parameters"]}
            self.assertEqual(int(vals[PCI]), before[dev][0], dev)

        # a region's list changes: a device's next Inform brings the new list (drift-free)
        st, r = api(h, "PUT", "/api/v1/regions/south", {
            "servers": SOUTH + ["10.2.0.3"], "selector": {"tac": [[105, 110]]}})
        self.assertEqual(st, 200, r)
        dev = dev_id("HeNB-H", 0)
        st, d = api(h, "GET", "/api/v1/devices/%s/desired" % dev)
        want = {e["name"]: e["value"] for e in d["params"]}[S1LIST]
        self.assertEqual(sorted(want.split(",")), sorted(SOUTH + ["10.2.0.3"]))
        self.assertEqual(d["state"], "pending")
        m = h.metrics()
        self.assertEqual(m.get("hems_s1_unassigned_total", 0), 0)


if __name__ == "__main__":
    main()
