"""Fleet profiles and parameter pools end to end (docs/profiles.md): a real hemsd with the
BBF data models, scripted HeNBs (tests/integration/cpe.py) and the northbound API."""
import json
import os
import threading
import unittest

import cpe as C
from hemsd import SHARED, Hemsd, http_request, main

L = "Device.Services.FAPService.1.CellConfig.LTE."
TAC = L + "EPC.TAC"
CID = L + "RAN.Common.CellIdentity"
PCI = L + "RAN.RF.PhyCellID"
EARFCN = L + "RAN.RF.EARFCNDL"
PII = "Device.ManagementServer.PeriodicInformInterval"
MODEL = ",".join(os.path.join(SHARED, "datamodels", f) for f in (
    "tr-181-2-17-0-cwmp-full.xml", "tr-196-2-1-2-cwmp-full.xml"))


def start(h):
    """Starts <h>; loading the data models takes long under sanitizers."""
    h.start(wait=False)
    h.wait_ready(timeout=90)
    return h


def api(h, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    st, _, b = http_request(h.admin_port, method, path, body=data, timeout=20,
                            headers={"Content-Type": "application/json"} if body is not None else None)
    return st, (json.loads(b) if b.strip() else None)


def spv_of(el):
    """({name: (value, xsi:type)}, ParameterKey) of a SetParameterValues element."""
    key = next(((p.text or "") for p in el.iter() if p.tag.split("}")[-1] == "ParameterKey"), None)
    return C.spv_params(el), key


def session(port, sn, pc="HeNB", sw="4.2.1", pkey="", extra=(), events=("2 PERIODIC",),
            on_spv=None):
    """One CWMP session. <on_spv>(params, cwmp id) -> reply body (default: success).
    Returns the list of (params, ParameterKey) of the SetParameterValues received."""
    params = [("Device.DeviceInfo.SoftwareVersion", sw, "xsd:string"),
              ("Device.ManagementServer.ConnectionRequestURL", "http://127.0.0.1:1/cr", "xsd:string"),
              ("Device.ManagementServer.ParameterKey", pkey, "xsd:string")] + list(extra)
    spvs = []

    def answer(name, mid, el):
        if name != "SetParameterValues":
            return None
        ps, key = spv_of(el)
        spvs.append((ps, key))
        return on_spv(ps, mid) if on_spv else None

    C.run_session(port, sn, pc=pc, events=events, params=params, answer=answer)
    return spvs


def spv_fault_multi(msg_id, names):
    faults = "".join("<SetParameterValuesFault><ParameterName>%s</ParameterName><FaultCode>9007"
                     "</FaultCode><FaultString>bad</FaultString></SetParameterValuesFault>" % n
                     for n in names)
    return C.envelope('<soapenv:Fault><faultcode>Client</faultcode><faultstring>CWMP fault'
                      '</faultstring><detail><cwmp:Fault><FaultCode>9003</FaultCode><FaultString>'
                      'Invalid arguments</FaultString>%s</cwmp:Fault></detail></soapenv:Fault>'
                      % faults, msg_id)


def whole_fault(msg_id, code=9004):
    return C.envelope('<soapenv:Fault><faultcode>Server</faultcode><faultstring>CWMP fault'
                      '</faultstring><detail><cwmp:Fault><FaultCode>%d</FaultCode><FaultString>'
                      'Resources exceeded</FaultString></cwmp:Fault></detail></soapenv:Fault>'
                      % code, msg_id)


class Profiles(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = start(Hemsd("--set", "datamodel.files=" + MODEL, shards=2))

    @classmethod
    def tearDownClass(cls):
        cls.h.__exit__(None, None, None)

    def put(self, name, body, want=200):
        st, b = api(self.h, "PUT", "/api/v1/profiles/" + name, body)
        self.assertEqual(st, want, b)
        return b

    def test_validation_names_the_parameter(self):
        st, b = api(self.h, "PUT", "/api/v1/profiles/bad", {
            "selector": {"product_class": "X"}, "params": [{"name": TAC, "value": "70000"}]})
        self.assertEqual(st, 422, b)
        self.assertIn("TAC", b["error"]["message"])
        st, b = api(self.h, "PUT", "/api/v1/profiles/bad", {
            "params": [{"name": "Device.DeviceInfo.SoftwareVersion", "value": "1"}]})
        self.assertEqual(st, 422)
        self.assertIn("SoftwareVersion", b["error"]["message"])
        st, b = api(self.h, "PUT", "/api/v1/profiles/bad", {
            "params": [{"name": PCI, "value": "${pool:nosuch}"}]})
        self.assertEqual(st, 422)
        self.assertIn("nosuch", b["error"]["message"])
        self.assertEqual(api(self.h, "GET", "/api/v1/profiles/bad")[0], 404)

    def test_precedence_minimal_diff_and_key(self):
        self.put("p-base", {"priority": 0, "selector": {"product_class": "PrecHeNB"},
                            "params": [{"name": TAC, "value": "100"},
                                       {"name": PII, "value": "300"},
                                       {"name": EARFCN, "value": "1300"}]})
        self.put("p-north", {"priority": 10, "selector": {"product_class": "PrecHeNB",
                                                          "tags": ["north"]},
                             "params": [{"name": TAC, "value": "200"}]})
        self.put("p-v5", {"priority": 5, "selector": {"software_version": "5.*"},
                          "params": [{"name": EARFCN, "value": "2850"}]})
        dev = "00005A-PrecHeNB-P1"
        st, tags = api(self.h, "PUT", "/api/v1/devices/%s/tags" % dev, ["north", "lab", "north"])
        self.assertEqual((st, tags), (200, ["lab", "north"]))
        # The Inform already reports PII = 300: only TAC (north wins) and EARFCN go out.
        spvs = session(self.h.cwmp_port, "P1", pc="PrecHeNB",
                       extra=[(PII, "300", "xsd:unsignedInt")])
        self.assertEqual(len(spvs), 1, spvs)
        ps, key = spvs[0]
        self.assertEqual(ps, {TAC: ("200", "xsd:unsignedInt"), EARFCN: ("1300", "xsd:string")})
        self.assertTrue(key.startswith("profile-"), key)
        st, d = api(self.h, "GET", "/api/v1/devices/%s/desired" % dev)
        self.assertEqual(st, 200, d)
        self.assertEqual((d["parameter_key"], d["state"]), (key, "applied"))
        # In sync: the next Inform (reporting the key) queues nothing, nor does one without it.
        self.assertEqual(session(self.h.cwmp_port, "P1", pc="PrecHeNB", pkey=key), [])
        self.assertEqual(session(self.h.cwmp_port, "P1", pc="PrecHeNB", pkey="other"), [])
        # Software 5.x: EARFCN from p-v5 (priority 5 over 0); only that changes.
        spvs = session(self.h.cwmp_port, "P1", pc="PrecHeNB", sw="5.0.2", pkey=key)
        self.assertEqual([s[0] for s in spvs], [{EARFCN: ("2850", "xsd:string")}])
        self.assertNotEqual(spvs[0][1], key)
        # A device without the tag gets the base TAC; one of another class, only p-v5.
        spvs = session(self.h.cwmp_port, "P2", pc="PrecHeNB")
        self.assertEqual(spvs[0][0][TAC], ("100", "xsd:unsignedInt"))
        self.assertEqual(session(self.h.cwmp_port, "P3", pc="Other"), [])
        spvs = session(self.h.cwmp_port, "P3", pc="Other", sw="5.1")
        self.assertEqual([s[0] for s in spvs], [{EARFCN: ("2850", "xsd:string")}])
        # Explicit device list, highest priority.
        self.put("p-one", {"priority": 100, "selector": {"devices": ["00005A-PrecHeNB-P2"]},
                           "params": [{"name": TAC, "value": "999"}]})
        spvs = session(self.h.cwmp_port, "P2", pc="PrecHeNB", pkey=spvs and "x")
        self.assertEqual([s[0] for s in spvs], [{TAC: ("999", "xsd:unsignedInt")}])
        st, lst = api(self.h, "GET", "/api/v1/profiles")
        self.assertEqual(st, 200)
        self.assertLessEqual({"p-base", "p-north", "p-v5", "p-one"}, {p["name"] for p in lst})
        self.assertEqual(api(self.h, "DELETE", "/api/v1/profiles/p-one")[0], 204)
        self.assertEqual(api(self.h, "GET", "/api/v1/profiles/p-one")[0], 404)
        self.assertEqual(api(self.h, "DELETE", "/api/v1/profiles/p-one")[0], 404)

    def test_partial_fault_then_split(self):
        self.put("f-all", {"selector": {"product_class": "FaultHeNB"},
                           "params": [{"name": TAC, "value": "7"}, {"name": PII, "value": "120"},
                                      {"name": EARFCN, "value": "100"}]})
        calls = []

        def refuse_earfcn(ps, mid):
            calls.append(sorted(ps))
            return spv_fault_multi(mid, [EARFCN]) if EARFCN in ps else None
        spvs = session(self.h.cwmp_port, "F1", pc="FaultHeNB", on_spv=refuse_earfcn)
        # first the whole set, then at once the rest without the refused parameter
        self.assertEqual(calls, [sorted([TAC, PII, EARFCN]), sorted([TAC, PII])])
        st, d = api(self.h, "GET", "/api/v1/devices/00005A-FaultHeNB-F1/desired")
        self.assertEqual(d["rejected"], [EARFCN])
        self.assertEqual(d["state"], "applied")
        # The refused parameter is not retried while the desired state is unchanged.
        self.assertEqual(session(self.h.cwmp_port, "F1", pc="FaultHeNB", pkey="zzz"), [])
        # A device that refuses more than one parameter per request as a whole (9004).
        calls.clear()

        def one_at_a_time(ps, mid):
            calls.append(len(ps))
            return whole_fault(mid) if len(ps) > 1 else None
        session(self.h.cwmp_port, "F2", pc="FaultHeNB", on_spv=one_at_a_time)
        self.assertEqual(calls[0], 3)
        self.assertEqual(sum(1 for c in calls if c == 1), 3, calls)
        m = self.h.metrics()
        self.assertGreaterEqual(m["hems_profile_params_rejected_total"], 1)
        self.assertGreaterEqual(m["hems_profile_splits_total"], 1)

    def test_drift_from_inform_and_gpv(self):
        self.put("d-all", {"selector": {"product_class": "DriftHeNB"},
                           "params": [{"name": TAC, "value": "42"},
                                      {"name": PII, "value": "900"}]})
        spvs = session(self.h.cwmp_port, "D1", pc="DriftHeNB")
        key = spvs[0][1]
        self.assertEqual(session(self.h.cwmp_port, "D1", pc="DriftHeNB", pkey=key), [])
        # Someone changed TAC on the device: a value-change Inform shows it.
        spvs = session(self.h.cwmp_port, "D1", pc="DriftHeNB", pkey=key,
                       events=("4 VALUE CHANGE",), extra=[(TAC, "43", "xsd:unsignedInt")])
        self.assertEqual([s[0] for s in spvs], [{TAC: ("42", "xsd:unsignedInt")}])
        self.assertEqual(spvs[0][1], key)
        # Drift read back by GetParameterValues (our session helper answers "0").
        st, _ = api(self.h, "POST", "/api/v1/devices/00005A-DriftHeNB-D1/tasks",
                    {"rpc": "GetParameterValues", "names": [PII]})
        self.assertEqual(st, 201)
        spvs = session(self.h.cwmp_port, "D1", pc="DriftHeNB", pkey=key)
        self.assertEqual([s[0] for s in spvs], [{PII: ("900", "xsd:unsignedInt")}])
        self.assertGreaterEqual(self.h.metrics()["hems_profile_drift_total"], 2)


class Pools(unittest.TestCase):
    def test_unique_across_concurrent_registrations_and_restart(self):
        h = start(Hemsd("--set", "datamodel.files=" + MODEL, shards=2))
        try:
            st, p = api(h, "PUT", "/api/v1/pools/cid", {"lo": 1000, "hi": 1299})
            self.assertEqual((st, p["size"]), (200, 300))
            st, b = api(h, "PUT", "/api/v1/profiles/cells", {
                "selector": {"product_class": "PoolHeNB"},
                "params": [{"name": CID, "value": "${pool:cid}"}, {"name": TAC, "value": "5"}]})
            self.assertEqual(st, 200, b)
            got, errors = {}, []
            lock = threading.Lock()

            def worker(k):
                try:
                    for i in range(k, 250, 10):
                        spvs = session(h.cwmp_port, "S%03d" % i, pc="PoolHeNB",
                                       events=("0 BOOTSTRAP", "1 BOOT"))
                        with lock:
                            got["S%03d" % i] = int(spvs[0][0][CID][0])
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(repr(e))
            ts = [threading.Thread(target=worker, args=(k,)) for k in range(10)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            self.assertEqual(errors, [])
            self.assertEqual(len(got), 250)
            self.assertEqual(len(set(got.values())), 250, "duplicate pool values")
            self.assertTrue(all(1000 <= v <= 1299 for v in got.values()))
            st, p = api(h, "GET", "/api/v1/pools/cid")
            self.assertEqual((p["used"], p["exhausted"]), (250, 0))
            # 60 more devices: 50 get a value, 10 find the pool exhausted (counted, visible).
            for i in range(250, 310):
                session(h.cwmp_port, "S%03d" % i, pc="PoolHeNB")
            st, p = api(h, "GET", "/api/v1/pools/cid")
            self.assertEqual(p["used"], 300)
            self.assertGreaterEqual(p["exhausted"], 10)
            self.assertGreaterEqual(h.metrics()["hems_pool_exhausted_total"], 10)
            self.assertIn("parameter pool exhausted", h.logs())
            # Exhaustion is an alarm of the device (with its other alarms), cleared once the
            # pool has room again and the device got its value.
            dev = "/api/v1/devices/00005A-PoolHeNB-S309"
            st, al = api(h, "GET", dev + "/alarms")
            ids = {a["alarm_id"]: a for a in al["alarms"]}
            self.assertIn("HEMS-POOL-cid", ids, al)
            self.assertEqual(ids["HEMS-POOL-cid"]["severity"], "Major")
            self.assertIn("no free value", ids["HEMS-POOL-cid"]["additional_text"])
            session(h.cwmp_port, "S309", pc="PoolHeNB")  # still exhausted: raised once
            st, hist = api(h, "GET", "/api/v1/alarms?device=00005A-PoolHeNB-S309")
            self.assertEqual(len(hist["alarms"]), 1, hist)
            self.assertEqual(api(h, "PUT", "/api/v1/pools/cid", {"lo": 1000, "hi": 1300})[0], 200)
            spvs = session(h.cwmp_port, "S309", pc="PoolHeNB")
            self.assertEqual(spvs[0][0][CID][0], "1300")
            st, al = api(h, "GET", dev + "/alarms")
            self.assertEqual(al["alarms"], [])
            st, hist = api(h, "GET", "/api/v1/alarms?device=00005A-PoolHeNB-S309")
            self.assertEqual([a["notification"] for a in hist["alarms"]], ["new", "cleared"])
            # Shrinking below an allocated value is refused.
            self.assertEqual(api(h, "PUT", "/api/v1/pools/cid", {"lo": 1000, "hi": 1100})[0], 409)
            self.assertEqual(h.stop(), 0)
            # Restart: allocations, pools and profiles come back from the store; a device
            # re-registering after a factory reset (0 BOOTSTRAP) gets its old value again.
            h.proc = None
            h.log.close()
            start(h)
            st, p = api(h, "GET", "/api/v1/pools/cid")
            self.assertEqual((p["used"], p["hi"]), (301, 1300))
            for sn in ("S000", "S123", "S249"):
                spvs = session(h.cwmp_port, sn, pc="PoolHeNB", events=("0 BOOTSTRAP", "1 BOOT"))
                self.assertEqual(int(spvs[0][0][CID][0]), got[sn], sn)
                self.assertEqual(spvs[0][0][TAC][0], "5")
                # a periodic Inform after that queues nothing
                self.assertEqual(session(h.cwmp_port, sn, pc="PoolHeNB"), [])
                st, d = api(h, "GET", "/api/v1/devices/00005A-PoolHeNB-%s/desired" % sn)
                vals = {e["name"]: e["value"] for e in d["params"]}
                self.assertEqual(int(vals[CID]), got[sn])
        finally:
            h.__exit__(None, None, None)


if __name__ == "__main__":
    main()
