"""TS 32.593 Serving HeMS discovery and registration end to end with two real hemsd nodes on
loopback: an Initial HeMS (whitelist, assignment, redirection by SetParameterValues) and a
Serving HeMS (registration provisioning), as a scripted HeNB sees them."""
import json
import os
import subprocess
import signal
import tempfile
import time
import unittest

import cpe as C
from hemsd import BIN_DIR, Hemsd, http_request, main

FAP = "Services.FAPService.1.FAPControl.LTE."


def api(h, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    st, _, b = http_request(h.admin_port, method, path, body=data,
                            headers={"Content-Type": "application/json"} if body is not None else None)
    return st, (json.loads(b) if b.strip() else None)


def node(role, policy, node_id=""):
    """A Hemsd (not started) with [hems] role and a policy file written from <policy>."""
    tmp = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(policy, tmp)
    tmp.close()
    conf = "[hems]\nrole = %s\nnode_id = %s\npolicy_file = %s\n" % (role, node_id, tmp.name)
    h = Hemsd(config=conf)
    h.policy_path = tmp.name
    return h


spv_params = C.spv_params


def bootstrap(port, sn, **kw):
    """One session; answers every RPC with success. Returns [(rpc name, element)]."""
    return C.run_session(port, sn, **kw)[1]


class Discovery(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.serving = node("serving", {
            "s1": {"servers": "10.20.0.1,10.20.0.2", "connection_mode": "One", "port": 36412},
            "ipsec_indicator": {"HeNB": {"path": "Device.IPsec.Enable", "value": "true"}},
        }, node_id="serving-a")
        serving_url = "http://127.0.0.1:%d/cwmp" % cls.serving.cwmp_port
        cls.initial = node("initial", {
            "whitelist": [
                {"device": "00005A-HeNB-GOOD-1"},
                {"oui": "00005A", "product_class": "HeNB", "serial_from": "R0000",
                 "serial_to": "R9999"},
                {"oui": "00005A", "product_class": "HeNB-IGD", "serial_from": "I0",
                 "serial_to": "I9"},
            ],
            "serving_nodes": [{"id": "serving-a", "url": serving_url, "weight": 3},
                              {"id": "serving-b", "url": "http://127.0.0.1:1/cwmp", "weight": 1}],
            "segws": [{"id": "segw-1", "servers": ["segw1.example", "segw2.example"]}],
            "static": [{"device": "00005A-HeNB-GOOD-1", "serving_node": "serving-a",
                        "segw": "segw-1"}],
        })
        cls.serving.start()
        cls.initial.start()

    @classmethod
    def tearDownClass(cls):
        for h in (cls.initial, cls.serving):
            h.__exit__(None, None, None)
            os.unlink(h.policy_path)

    def test_bootstrap_redirect_then_register(self):
        rpcs = bootstrap(self.initial.cwmp_port, "GOOD-1")
        self.assertEqual([n for n, _ in rpcs], ["SetParameterValues"])
        p = spv_params(rpcs[0][1])
        url = "http://127.0.0.1:%d/cwmp" % self.serving.cwmp_port
        self.assertEqual(p, {
            "Device." + FAP + "Gateway.SecGWServer1": ("segw1.example", "xsd:string"),
            "Device." + FAP + "Gateway.SecGWServer2": ("segw2.example", "xsd:string"),
            "Device." + FAP + "Gateway.SecGWServer3": ("", "xsd:string"),
            "Device.ManagementServer.URL": (url, "xsd:string"),
        })
        st, d = api(self.initial, "GET", "/api/v1/devices/00005A-HeNB-GOOD-1")
        self.assertEqual(st, 200)
        self.assertEqual((d["role"], d["registration"], d["serving_node"]),
                         ("initial", "redirected", "serving-a"))

        # The HeNB now follows ManagementServer.URL to the Serving HeMS.
        self.assertTrue(p["Device.ManagementServer.URL"][0].endswith(":%d/cwmp" % self.serving.cwmp_port))
        rpcs = bootstrap(self.serving.cwmp_port, "GOOD-1")
        self.assertEqual([n for n, _ in rpcs],
                         ["SetParameterValues"] + ["SetParameterAttributes"] * 3 + ["SetParameterValues"])
        self.assertEqual(spv_params(rpcs[0][1]), {
            "Device." + FAP + "Gateway.S1SigLinkServerList": ("10.20.0.1,10.20.0.2", "xsd:string"),
            "Device." + FAP + "Gateway.S1ConnectionMode": ("One", "xsd:string"),
            "Device." + FAP + "Gateway.S1SigLinkPort": ("36412", "xsd:unsignedInt"),
            "Device.IPsec.Enable": ("true", "xsd:boolean"),
        })
        spa = rpcs[1][1]
        names = [e.text for e in spa.iter() if e.tag.endswith("Name")]
        notif = [e.text for e in spa.iter() if e.tag.endswith("Notification")]
        self.assertEqual(names, ["Device.IPsec.IKEv2SA."])
        self.assertEqual(notif, ["2"])
        # the alarm event tables: expedited active, queued passive (reference 2.6), one each
        for (_, el), name, n in ((rpcs[2], "Device.FaultMgmt.ExpeditedEvent.", "2"),
                                 (rpcs[3], "Device.FaultMgmt.QueuedEvent.", "1")):
            self.assertEqual([e.text for e in el.iter() if e.tag.endswith("Name")], [name])
            self.assertEqual([e.text for e in el.iter() if e.tag.endswith("Notification")], [n])
            self.assertEqual([e.text for e in el.iter() if e.tag.endswith("NotificationChange")],
                             ["1"])
        self.assertEqual(spv_params(rpcs[4][1]), {"Device." + FAP + "AdminState": ("true", "xsd:boolean")})
        st, d = api(self.serving, "GET", "/api/v1/devices/00005A-HeNB-GOOD-1")
        self.assertEqual((d["role"], d["registration"], d["serving_node"]),
                         ("serving", "registered", "serving-a"))

        # A later plain BOOT of a registered device gets nothing again; a new BOOTSTRAP does.
        self.assertEqual(bootstrap(self.serving.cwmp_port, "GOOD-1", events=("1 BOOT",)), [])
        self.assertEqual(len(bootstrap(self.serving.cwmp_port, "GOOD-1")), 5)
        self.assertGreaterEqual(self.serving.metrics()["hems_registration_provisioned_total"], 2)

    def test_unknown_device_refused_and_counted(self):
        before = self.initial.metrics()["hems_discovery_refused_total"]
        self.assertEqual(bootstrap(self.initial.cwmp_port, "STRANGER-9"), [])
        st, d = api(self.initial, "GET", "/api/v1/devices/00005A-HeNB-STRANGER-9")
        self.assertEqual((d["registration"], d["serving_node"]), ("blocked", ""))
        self.assertEqual(self.initial.metrics()["hems_discovery_refused_total"], before + 1)
        with open(self.initial.log_path, "rb") as f:
            self.assertIn(b"bootstrap refused: device not in the whitelist", f.read())

    def test_whitelist_api(self):
        st, wl = api(self.initial, "GET", "/api/v1/policies/whitelist")
        self.assertEqual(st, 200)
        self.assertEqual(wl[0], {"device": "00005A-HeNB-GOOD-1"})
        self.assertEqual(bootstrap(self.initial.cwmp_port, "LATE-1"), [])
        st, e = api(self.initial, "PUT", "/api/v1/policies/whitelist", [{"oui": "00005A"}])
        self.assertEqual(st, 422, e)
        st, _ = api(self.initial, "PUT", "/api/v1/policies/whitelist", wl + [{"device": "00005A-HeNB-LATE-1"}])
        self.assertEqual(st, 200)
        rpcs = bootstrap(self.initial.cwmp_port, "LATE-1")
        self.assertEqual([n for n, _ in rpcs], ["SetParameterValues"])

    def test_igd_root(self):
        params = [("InternetGatewayDevice.DeviceInfo.SoftwareVersion", "1.0", "xsd:string")]
        rpcs = bootstrap(self.initial.cwmp_port, "I5", pc="HeNB-IGD", params=params)
        p = spv_params(rpcs[0][1])
        self.assertIn("InternetGatewayDevice." + FAP + "Gateway.SecGWServer1", p)
        self.assertIn("InternetGatewayDevice.ManagementServer.URL", p)

    def test_spread_by_weight(self):
        counts = {}
        n = 60
        for i in range(n):
            sn = "R%04d" % i
            cpe = C.Cpe(self.initial.cwmp_port)
            r = cpe.post(C.inform_xml(sn=sn, events=("0 BOOTSTRAP",)))
            self.assertEqual(r.rpc()[0], "InformResponse")
            cpe.close()  # leaves the SPV queued; the assignment is already recorded
            st, d = api(self.initial, "GET", "/api/v1/devices/00005A-HeNB-" + sn)
            self.assertEqual(d["registration"], "redirected")
            counts[d["serving_node"]] = counts.get(d["serving_node"], 0) + 1
        # weights 3:1 -> about 45:15; binomial sd ~3.4
        self.assertEqual(set(counts), {"serving-a", "serving-b"})
        self.assertGreater(counts["serving-a"], 33)
        self.assertGreater(counts["serving-b"], 5)
        # deterministic: the same device maps to the same node again
        st, t = api(self.initial, "GET", "/api/v1/devices/00005A-HeNB-R0001/tasks")
        url = [p["value"] for p in t["tasks"][0]["args"]["params"] if p["name"] == "Device.ManagementServer.URL"]
        st, d = api(self.initial, "GET", "/api/v1/devices/00005A-HeNB-R0001")
        expect = "http://127.0.0.1:1/cwmp" if d["serving_node"] == "serving-b" else \
            "http://127.0.0.1:%d/cwmp" % self.serving.cwmp_port
        self.assertEqual(url, [expect])


class BothRoles(unittest.TestCase):
    """role = both: a device assigned to this node is first given this node's own Serving
    HeMS URL (it reached the node by another URL, e.g. a load balancer's Initial HeMS URL)
    and registers when it comes back, or at once when it already used that URL; group static
    entries; the policy file re-read on SIGHUP."""

    def test_both_static_group_and_reload(self):
        import signal
        import time
        pol = {
            "whitelist": [{"device": "00005A-HeNB-B1"}, {"device": "00005A-HeNB-Lab-L1"}],
            "serving_nodes": [{"id": "self", "url": "http://127.0.0.1:9/self"},
                              {"id": "other", "url": "http://127.0.0.1:9/other", "weight": 0}],
            "static": [{"product_class": "HeNB-Lab", "serving_node": "other"}],
            "location_params": ["Services.FAPService.1.FAPControl.LTE.X_GPS.Latitude"],
        }
        h = node("both", pol, node_id="self")
        with h:
            rpcs = bootstrap(h.cwmp_port, "B1")  # Host 127.0.0.1, not 127.0.0.1:9: redirected
            self.assertEqual([n for n, _ in rpcs], ["GetParameterValues", "SetParameterValues"])
            self.assertEqual(spv_params(rpcs[1][1])["Device.ManagementServer.URL"][0],
                             "http://127.0.0.1:9/self")
            st, d = api(h, "GET", "/api/v1/devices/00005A-HeNB-B1")
            self.assertEqual((d["registration"], d["serving_node"]), ("redirected", "self"))
            rpcs = bootstrap(h.cwmp_port, "B1")  # back after the redirection: registered
            self.assertEqual([n for n, _ in rpcs], ["SetParameterAttributes"] * 3 + ["SetParameterValues"])
            st, d = api(h, "GET", "/api/v1/devices/00005A-HeNB-B1")
            self.assertEqual((d["role"], d["registration"], d["serving_node"]),
                             ("serving", "registered", "self"))
            rpcs = bootstrap(h.cwmp_port, "L1", pc="HeNB-Lab")
            self.assertEqual([n for n, _ in rpcs], ["GetParameterValues", "SetParameterValues"])
            self.assertEqual([e.text for e in rpcs[0][1].iter() if e.tag.split("}")[-1] == "string"],
                             ["Device." + FAP + "X_GPS.Latitude"])
            self.assertEqual(spv_params(rpcs[1][1])["Device.ManagementServer.URL"][0],
                             "http://127.0.0.1:9/other")
            st, pr = api(h, "GET", "/api/v1/devices/00005A-HeNB-Lab-L1/parameters?prefix=Device.Services.")
            self.assertEqual([(x["name"], x["value"]) for x in pr["parameters"]],
                             [("Device." + FAP + "X_GPS.Latitude", "0")])
            self.assertEqual(bootstrap(h.cwmp_port, "B2"), [])
            pol["whitelist"].append({"device": "00005A-HeNB-B2"})
            with open(h.policy_path, "w") as f:
                f.write("{broken")
            h.signal(signal.SIGHUP)
            time.sleep(0.3)
            self.assertEqual(bootstrap(h.cwmp_port, "B2"), [])  # bad file: old policy kept
            with open(h.policy_path, "w") as f:
                json.dump(pol, f)
            h.signal(signal.SIGHUP)
            deadline = time.time() + 5
            while True:
                rpcs = bootstrap(h.cwmp_port, "B2")
                if rpcs or time.time() > deadline:
                    break
                time.sleep(0.1)
            # its location read and redirection
            self.assertEqual([n for n, _ in rpcs], ["GetParameterValues", "SetParameterValues"])
            with open(h.log_path, "rb") as f:
                self.assertIn(b"policy reload refused", f.read())
        os.unlink(h.policy_path)


class PolicyApi(unittest.TestCase):
    """The assignment policy changed through the API: validated whole, applied to the next
    bootstrap, kept over a SIGHUP reload of the file and a restart (stored), reverted to the
    file's by DELETE."""

    def test_assignment_override_persists(self):
        pol = {"whitelist": [{"oui": "00005A", "product_class": "HeNB", "serial_from": "P000",
                              "serial_to": "P999"}],
               "serving_nodes": [{"id": "file-node", "url": "http://127.0.0.1:9/file"}]}
        h = node("initial", pol)
        url = lambda sn: spv_params(bootstrap(h.cwmp_port, sn)[0][1])["Device.ManagementServer.URL"][0]
        h.start()
        try:
            self.assertEqual(url("P001"), "http://127.0.0.1:9/file")
            st, all_ = api(h, "GET", "/api/v1/policies")
            self.assertEqual((st, all_["overridden"]), (200, []))
            self.assertEqual(all_["policy"]["serving_nodes"], pol["serving_nodes"])
            # invalid: the error names the field; nothing changes
            st, e = api(h, "PUT", "/api/v1/policies/serving_nodes",
                        [{"id": "x", "url": "http://127.0.0.1:9/x", "weight": -1}])
            self.assertEqual(st, 422, e)
            self.assertIn("serving_nodes[0].weight", e["error"]["message"])
            st, e = api(h, "PUT", "/api/v1/policies/nonsense", [])
            self.assertEqual(st, 404, e)
            st, _, b = http_request(h.admin_port, "PUT", "/api/v1/policies/s1", body=b"{bad",
                                    headers={"Content-Type": "application/json"})
            self.assertEqual(st, 400, b)
            new = [{"id": "api-node", "url": "http://127.0.0.1:9/api", "weight": 2}]
            st, r = api(h, "PUT", "/api/v1/policies/serving_nodes", new)
            self.assertEqual(st, 200, r)
            self.assertEqual((r["value"], r["overridden"]), (new, True))
            self.assertEqual(url("P002"), "http://127.0.0.1:9/api")
            h.signal(signal.SIGHUP)  # the file is re-read; the API's section stays
            time.sleep(0.3)
            self.assertEqual(url("P003"), "http://127.0.0.1:9/api")
            self.assertEqual(h.stop(), 0)
            h.start()  # same data folder: the override comes back from the store
            st, r = api(h, "GET", "/api/v1/policies/serving_nodes")
            self.assertEqual((r["value"], r["overridden"]), (new, True))
            self.assertEqual(url("P004"), "http://127.0.0.1:9/api")
            self.assertEqual(api(h, "GET", "/api/v1/policies")[1]["overridden"], ["serving_nodes"])
            ctl = lambda *a: subprocess.run([os.path.join(BIN_DIR, "hemsctl"), "--admin",
                                             "127.0.0.1:%d" % h.admin_port] + list(a),
                                            capture_output=True, text=True, timeout=30)
            r = ctl("policy", "serving_nodes")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("api-node", r.stdout)
            self.assertIn('"overridden": true', ctl("--json", "policy", "serving_nodes").stdout.replace('":true', '": true'))
            r = ctl("policy", "set", "segws", '[{"id": "g", "servers": []}]')
            self.assertEqual(r.returncode, 1)
            self.assertIn("segws[0].servers", r.stderr)
            r = ctl("policy", "whitelist")
            self.assertEqual(r.stdout.strip(), json.dumps(pol["whitelist"][0], separators=(",", ":")))
            st, r = api(h, "DELETE", "/api/v1/policies/serving_nodes")
            self.assertEqual((st, r["value"], r["overridden"]), (200, pol["serving_nodes"], False))
            self.assertEqual(url("P005"), "http://127.0.0.1:9/file")
        finally:
            h.__exit__(None, None, None)
            os.unlink(h.policy_path)


if __name__ == "__main__":
    main()
