"""TS 32.593 5.1.2.2 location verification at the Initial HeMS, end to end with a real hemsd:
the position a HeNB reports (in its bootstrap Inform, or in answer to the GetParameterValues
the node queues) is compared with the allowed area of the policy (global, or per whitelist
entry); outside, the device is refused (CWMP Fault 8001 on the Inform, or its redirection
withdrawn), logged and counted; with the policy off nothing is checked."""
import json
import os
import tempfile
import unittest

import cpe as C
from hemsd import Hemsd, http_request, main

LAT, LON = "Device.FAP.GPS.LockedLatitude", "Device.FAP.GPS.LockedLongitude"
PARIS = ("48900000", "2400000")      # micro-degrees (TR-262), ~7 km from the centre
NEW_YORK = ("40712800", "-74006000")
BASE = [("Device.DeviceInfo.SoftwareVersion", "4.2.1", "xsd:string"),
        ("Device.ManagementServer.ConnectionRequestURL", "http://127.0.0.1:30005/cr", "xsd:string")]


def api(h, path):
    st, _, b = http_request(h.admin_port, "GET", path)
    return st, json.loads(b)


def session(port, sn, gps_in_inform=None, gps_answer=None):
    """A bootstrap session. Returns (Inform reply, [(rpc, element)], [GPV names asked])."""
    params = list(BASE)
    if gps_in_inform:
        params += [(LAT, gps_in_inform[0], "xsd:int"), (LON, gps_in_inform[1], "xsd:int")]
    asked = []

    def answer(name, mid, el):
        if name != "GetParameterValues":
            return None
        asked[:] = [e.text for e in el.iter() if e.tag.split("}")[-1] == "string"]
        vals = dict(zip((LAT, LON), gps_answer or ("0", "0")))
        return C.gpv_response(mid, [(n, vals.get(n, "x"), "xsd:int") for n in asked])

    first, rpcs = C.run_session(port, sn, events=("0 BOOTSTRAP", "1 BOOT"), params=params,
                                answer=answer, strict=False)
    return first, rpcs, asked


class Location(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        pol = {
            "whitelist": [{"oui": "00005A", "product_class": "HeNB", "serial_from": "L000",
                           "serial_to": "L999"},
                          {"device": "00005A-HeNB-NY1",
                           "area": {"box": [40.4, -74.3, 41.0, -73.6]}}],
            "serving_nodes": [{"id": "s", "url": "http://127.0.0.1:9/cwmp"}],
            "location_check": {"area": {"center": [48.8566, 2.3522], "radius_m": 50000}},
        }
        cls.tmp = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump(pol, cls.tmp)
        cls.tmp.close()
        cls.h = Hemsd(config="[hems]\nrole = initial\npolicy_file = %s\n" % cls.tmp.name).start()

    @classmethod
    def tearDownClass(cls):
        cls.h.__exit__(None, None, None)
        os.unlink(cls.tmp.name)

    def test_location_in_inform(self):
        h = self.h
        m0 = h.metrics()
        first, rpcs, _ = session(h.cwmp_port, "L001", gps_in_inform=PARIS)
        self.assertEqual([n for n, _ in rpcs], ["SetParameterValues"])  # no GPV needed
        first, rpcs, _ = session(h.cwmp_port, "L002", gps_in_inform=NEW_YORK)
        self.assertEqual(first.status, 200)
        self.assertEqual(first.fault_code(), 8001)
        self.assertEqual(rpcs, [])
        # a per-entry area replaces the global one
        first, rpcs, _ = session(h.cwmp_port, "NY1", gps_in_inform=NEW_YORK)
        self.assertEqual([n for n, _ in rpcs], ["SetParameterValues"])
        m = h.metrics()
        self.assertEqual(m["hems_discovery_location_refused_total"] -
                         m0["hems_discovery_location_refused_total"], 1)
        self.assertEqual(m["hems_discovery_location_verified_total"] -
                         m0["hems_discovery_location_verified_total"], 2)
        self.assertIn("bootstrap refused: location outside the allowed area", h.logs())
        self.assertIn("device=00005A-HeNB-L002", h.logs())

    def test_location_by_gpv(self):
        h = self.h
        _, rpcs, asked = session(h.cwmp_port, "L010", gps_answer=PARIS)
        self.assertEqual(asked, [LAT, LON])
        self.assertEqual([n for n, _ in rpcs], ["GetParameterValues", "SetParameterValues"])
        st, d = api(h, "/api/v1/devices/00005A-HeNB-L010")
        self.assertEqual(d["registration"], "redirected")

        _, rpcs, _ = session(h.cwmp_port, "L011", gps_answer=NEW_YORK)
        self.assertEqual([n for n, _ in rpcs], ["GetParameterValues"])  # redirection withdrawn
        st, d = api(h, "/api/v1/devices/00005A-HeNB-L011")
        self.assertEqual((d["registration"], d["serving_node"]), ("blocked", ""))
        st, t = api(h, "/api/v1/devices/00005A-HeNB-L011/tasks")
        self.assertEqual([(x["rpc"], x["state"]) for x in t["tasks"]],
                         [("GetParameterValues", "done"), ("SetParameterValues", "failed")])
        self.assertIn("location outside", json.dumps(t["tasks"][1]["result"]))

        # no fix (0, 0): unknown, allowed by the default "missing": "allow"
        m0 = h.metrics()
        _, rpcs, _ = session(h.cwmp_port, "L012", gps_answer=("0", "0"))
        self.assertEqual([n for n, _ in rpcs], ["GetParameterValues", "SetParameterValues"])
        m = h.metrics()
        self.assertEqual(m["hems_discovery_location_unverified_total"] -
                         m0["hems_discovery_location_unverified_total"], 1)

    def test_policy_off_checks_nothing(self):
        tmp = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump({"whitelist": [{"device": "00005A-HeNB-L100"}],
                   "serving_nodes": [{"id": "s", "url": "http://127.0.0.1:9/cwmp"}]}, tmp)
        tmp.close()
        try:
            with Hemsd(config="[hems]\nrole = initial\npolicy_file = %s\n" % tmp.name) as h:
                first, rpcs, _ = session(h.cwmp_port, "L100", gps_in_inform=NEW_YORK)
                self.assertEqual(first.rpc()[0], "InformResponse")
                self.assertEqual([n for n, _ in rpcs], ["SetParameterValues"])
        finally:
            os.unlink(tmp.name)


if __name__ == "__main__":
    main()
