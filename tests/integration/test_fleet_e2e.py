"""TS 32.593 end to end over a fleet: 1,000 simulated HeNBs (stateful Python CPEs, several
in parallel) go from factory state through an Initial HeMS (whitelist, assignment,
redirection) to a Serving HeMS (registration provisioning), then get their PM upload and
alarm reporting configuration by SetParameterValues, report an IPsec inner address change,
take a vendor configuration file by Download (fetched from hemsd's file server with the
file's credentials, completed by TransferComplete after a reboot), raise an expedited and a
queued alarm; every device's record, tasks, applied files and alarms are then checked
through the northbound API of both real hemsd nodes."""
import base64
import hashlib
import json
import os
import tempfile
import threading
import unittest
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import cpe as C
from hemsd import Hemsd, fleet_size, http_request, main

N = fleet_size(1000, env="HEMS_FLEET_N")
OUI, PC = "00256D", "HeNB"
FAP = "Device.Services.FAPService.1."
IKESA = "Device.IPsec.IKEv2SA.1.LocalAddress"


def api(h, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    st, _, b = http_request(h.admin_port, method, path, body=data, timeout=30,
                            headers={"Content-Type": "application/json"} if body is not None else None)
    return st, (json.loads(b) if b.strip() else None)


def alarm(ring, k, when, aid, notif, sev):
    p = "Device.FaultMgmt.%s.%d." % (ring, k)
    return [(p + "EventTime", when, "xsd:dateTime"), (p + "AlarmIdentifier", aid, "xsd:string"),
            (p + "NotificationType", notif, "xsd:string"),
            (p + "ManagedObjectInstance", "ENBFunction=1", "xsd:string"),
            (p + "EventType", "Communications Alarm", "xsd:string"),
            (p + "ProbableCause", "Loss of signal", "xsd:string"),
            (p + "SpecificProblem", "S1 down", "xsd:string"),
            (p + "PerceivedSeverity", sev, "xsd:string"),
            (p + "AdditionalText", "", "xsd:string"),
            (p + "AdditionalInformation", "", "xsd:string")]


class Henb:
    """A HeNB with its own parameter values, ACS URL and pending events."""

    def __init__(self, i, acs_url):
        self.sn = "F%07d" % i
        self.id = "%s-%s-%s" % (OUI, PC, self.sn)
        self.url = acs_url
        self.events = ["0 BOOTSTRAP", "1 BOOT"]
        self.values = {
            "Device.DeviceInfo.SoftwareVersion": "4.2.1",
            "Device.ManagementServer.ConnectionRequestURL": "http://127.0.0.1:1/cr/%s" % self.sn,
            "Device.ManagementServer.ParameterKey": "",
            "Device.ManagementServer.URL": acs_url,
            IKESA: "172.16.%d.%d" % (i // 250, i % 250 + 1),
        }
        self.rpcs = []
        self.transfer = None  # CommandKey of a download to report with TransferComplete
        self.fetched = None   # the bytes of the last file downloaded

    def inform_params(self, names, extra=()):
        return [(n, self.values[n], "xsd:string") for n in names] + list(extra)

    def session(self, extra=(), changed=()):
        """One CWMP session; answers every ACS request like a real CPE would."""
        u = urlparse(self.url)
        cpe = C.Cpe(u.port, path=u.path)
        names = ["Device.DeviceInfo.SoftwareVersion", "Device.ManagementServer.ConnectionRequestURL",
                 "Device.ManagementServer.ParameterKey", IKESA] + list(changed)
        ck = {"M Download": self.transfer} if self.transfer else None
        r = cpe.post(C.inform_xml(oui=OUI, pc=PC, sn=self.sn, events=self.events,
                                  params=self.inform_params(dict.fromkeys(names), extra),
                                  command_keys=ck))
        assert r.status == 200 and r.rpc()[0] == "InformResponse", (self.id, r.status, r.body)
        self.events = []
        if self.transfer:  # a CPE request before the empty POST (TR-069 3.7.1.5)
            r = cpe.post(C.transfer_complete("tc-" + self.transfer, self.transfer))
            assert r.status == 200 and r.rpc()[0] == "TransferCompleteResponse", (self.id, r.body)
            self.transfer = None
        r = cpe.post()
        new_url = None
        while r.status == 200:
            name, mid, el = r.rpc()
            self.rpcs.append(name)
            if name == "SetParameterValues":
                for p in el.iter():
                    if p.tag.endswith("ParameterValueStruct"):
                        k = v = None
                        for c in p:
                            if c.tag.endswith("Name"):
                                k = c.text
                            elif c.tag.endswith("Value"):
                                v = c.text or ""
                        self.values[k] = v
                        if k == "Device.ManagementServer.URL" and v != self.url:
                            new_url = v
                    elif p.tag.endswith("ParameterKey"):
                        self.values["Device.ManagementServer.ParameterKey"] = p.text or ""
                r = cpe.post(C.status_response("SetParameterValuesResponse", mid))
            elif name == "Download":
                a = {e.tag.split("}")[-1]: (e.text or "") for e in el}
                f = urlparse(a["URL"])
                auth = base64.b64encode(("%s:%s" % (a["Username"], a["Password"])).encode()).decode()
                st, _, body = http_request(f.port, "GET", f.path, headers={"Authorization": "Basic " + auth})
                assert st == 200 and len(body) == int(a["FileSize"]), (self.id, st, len(body))
                self.fetched = body
                self.transfer = a["CommandKey"]
                r = cpe.post(C.status_response("DownloadResponse", mid, status=1,
                                               extra="<StartTime>0001-01-01T00:00:00Z</StartTime>"
                                                     "<CompleteTime>0001-01-01T00:00:00Z</CompleteTime>"))
            elif name == "GetParameterValues":
                want = [e.text for e in el.iter() if e.tag.split("}")[-1] == "string"]
                got = [(k, v, "xsd:string") for k, v in self.values.items()
                       if any(k == w or (w.endswith(".") and k.startswith(w)) for w in want)]
                r = cpe.post(C.gpv_response(mid, got))
            else:
                r = cpe.post(C.status_response(name + "Response", mid))
        assert r.status == 204, (self.id, r.status, r.body)
        cpe.close()
        if new_url:  # TR-069: a changed ACS URL means a new BOOTSTRAP there
            self.url = new_url
            self.events = ["0 BOOTSTRAP", "1 BOOT"]
        return new_url


def policy_node(role, node_id, policy):
    tmp = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(policy, tmp)
    tmp.close()
    h = Hemsd(config="[hems]\nrole = %s\nnode_id = %s\npolicy_file = %s\n" % (role, node_id, tmp.name),
              shards=2)
    h.policy_path = tmp.name
    return h


class Fleet(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.serving = policy_node("serving", "serving-1", {
            "s1": {"servers": "10.20.0.1", "connection_mode": "One", "port": 36412,
                   "set_by": "serving"},
            "ipsec_indicator": {"*": {"path": "Device.IPsec.Enable", "value": "true",
                                      "type": "xsd:boolean"}}}).start()
        cls.initial = policy_node("initial", "initial-1", {
            "whitelist": [{"oui": OUI, "product_class": PC, "serial_from": "F0000000",
                           "serial_to": "F9999999"}],
            "serving_nodes": [{"id": "serving-1", "weight": 1,
                               "url": "http://127.0.0.1:%d/cwmp" % cls.serving.cwmp_port}],
            "segws": [{"id": "segw-1", "servers": ["segw1.op.example", "segw2.op.example"]}]}).start()
        cls.fleet = [Henb(i, "http://127.0.0.1:%d/cwmp" % cls.initial.cwmp_port) for i in range(N)]
        cls.pool = ThreadPoolExecutor(max_workers=16)

    @classmethod
    def tearDownClass(cls):
        cls.pool.shutdown()
        for h in (cls.initial, cls.serving):
            h.__exit__(None, None, None)
            os.unlink(h.policy_path)

    def each(self, fn):
        errors = []
        lock = threading.Lock()

        def run(d):
            try:
                fn(d)
            except Exception as e:  # collected: one failure must not hide the others
                with lock:
                    errors.append("%s: %r" % (d.id, e))
        list(self.pool.map(run, self.fleet))
        self.assertEqual(errors[:5], [], "%d devices failed" % len(errors))

    def queue(self, d, task):
        st, body = api(self.serving, "POST", "/api/v1/devices/%s/tasks" % d.id, task)
        self.assertEqual(st, 201, body)

    def test_fleet_end_to_end(self):
        serving_url = "http://127.0.0.1:%d/cwmp" % self.serving.cwmp_port

        # 1. factory state -> Initial HeMS -> redirected -> Serving HeMS registration
        def boot(d):
            assert d.session() == serving_url
            d.session()
            assert d.rpcs == ["SetParameterValues", "SetParameterValues"] + \
                ["SetParameterAttributes"] * 3 + ["SetParameterValues"], d.rpcs
            assert d.values[FAP + "FAPControl.LTE.AdminState"] == "true"
            assert d.values[FAP + "FAPControl.LTE.Gateway.SecGWServer1"] == "segw1.op.example"
        self.each(boot)

        # 2. operator configuration: a vendor configuration file (5.2.2), PM upload (5.4.1)
        #    and alarm reporting (5.3)
        cfg = b"<HeNBConfig><EARFCN>38950</EARFCN><TxPower>20</TxPower></HeNBConfig>\n" * 40
        st, _, b = http_request(self.serving.admin_port, "PUT", "/api/v1/files/henb-rf.xml?type=3&username=cpe",
                                body=cfg)
        self.assertIn(st, (200, 201), b)
        for d in self.fleet:
            self.queue(d, {"rpc": "Download", "file": "henb-rf.xml"})
            self.queue(d, {"rpc": "SetParameterValues", "parameter_key": "pm-1", "params": [
                {"name": "Device.FAP.PerfMgmt.Config.1.Enable", "value": "true", "type": "xsd:boolean"},
                {"name": "Device.FAP.PerfMgmt.Config.1.URL", "value": "http://127.0.0.1:%d/pm"
                 % self.serving.cwmp_port, "type": "xsd:string"},
                {"name": "Device.FAP.PerfMgmt.Config.1.PeriodicUploadInterval", "value": "900",
                 "type": "xsd:unsignedInt"}]})
            self.queue(d, {"rpc": "SetParameterValues", "parameter_key": "fm-1", "params": [
                {"name": "Device.FaultMgmt.SupportedAlarm.1.ReportingMechanism",
                 "value": "0 Expedited", "type": "xsd:string"}]})

        def configure(d):
            d.events = ["2 PERIODIC"]
            d.session()
            assert d.fetched == cfg and d.transfer
            assert d.values["Device.FAP.PerfMgmt.Config.1.Enable"] == "true"
            assert d.values["Device.ManagementServer.ParameterKey"] == "fm-1"
            # applies the file with a reboot, then reports the transfer
            d.events = ["1 BOOT", "M Download", "7 TRANSFER COMPLETE"]
            d.session()
        self.each(configure)

        # 3. IPsec inner address change (5.2.4) with an expedited alarm; 4. a queued alarm
        def change(d):
            old = d.values[IKESA]
            d.values[IKESA] = "10.99." + old.split(".", 2)[2]
            d.events = ["4 VALUE CHANGE"]
            d.session(extra=alarm("ExpeditedEvent", 1, "2026-11-27T02:00:00Z", "S1-DOWN",
                                  "NewAlarm", "Major"))
            d.events = ["2 PERIODIC"]
            d.session(extra=alarm("QueuedEvent", 1, "2026-11-27T02:05:00Z", "CELL-DEGRADED",
                                  "NewAlarm", "Minor"))
        self.each(change)

        # 5. everything is visible through the northbound API, for every device
        def check(d):
            st, rec = api(self.serving, "GET", "/api/v1/devices/" + d.id)
            assert st == 200, st
            assert (rec["registration"], rec["role"], rec["serving_node"]) == \
                ("registered", "serving", "serving-1"), rec
            assert rec["parameter_key"] == "fm-1", rec
            addrs = [a["address"] for a in rec["ipsec_inner_addresses"]]
            assert addrs[:1] == [d.values[IKESA]] and len(addrs) == 2, addrs
            st, t = api(self.serving, "GET", "/api/v1/devices/%s/tasks" % d.id)
            states = [x["state"] for x in t["tasks"]]
            assert states == ["done"] * 8, t  # registration: 5 (3 SPA), then 3 operator tasks
            st, f = api(self.serving, "GET", "/api/v1/files?device=" + d.id)
            assert [(x["file"], x["sha256"]) for x in f["applied"]] == \
                [("henb-rf.xml", hashlib.sha256(cfg).hexdigest())], f
            st, a = api(self.serving, "GET", "/api/v1/devices/%s/alarms" % d.id)
            assert sorted(x["alarm_id"] for x in a["alarms"]) == ["CELL-DEGRADED", "S1-DOWN"], a
            st, rec = api(self.initial, "GET", "/api/v1/devices/" + d.id)
            assert (rec["registration"], rec["serving_node"]) == ("redirected", "serving-1"), rec
        self.each(check)


if __name__ == "__main__":
    main()
