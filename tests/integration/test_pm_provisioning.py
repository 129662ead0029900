"""TS 32.593 5.4.1 PM upload configuration with per-device credentials, end to end: a real
hemsd (Serving HeMS) provisions each registering HeNB with its own upload username and random
password (AddObject + SetParameterValues of FAP.PerfMgmt.Config.{i}, or the TR-196 issue 1
FileMgmt form), keeps only their Digest HA1, and its PM upload endpoint accepts a device's
files only with that device's credentials; uploads of devices whose PM upload is disabled
(policy or an operator's task) are refused with 403."""
import base64
import hashlib
import json
import os
import re
import tempfile
import time
import unittest

import cpe as C
from hemsd import Hemsd, SHARED, http_request, main

NODE_USER, NODE_PW = "pm-node", "node-secret"
PM_FILE = os.path.join(SHARED, "pm", "example-both-forms-A20261126.1400+0000-1415+0000_HeNB-EX.xml")


def api(h, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    st, _, b = http_request(h.admin_port, method, path, body=data,
                            headers={"Content-Type": "application/json"} if body is not None else None)
    return st, (json.loads(b) if b.strip() else None), b


def spv_params(el):
    """{name: value} of a SetParameterValues request element."""
    return {k: v for k, (v, _) in C.spv_params(el).items()}


def session(port, sn, pc="HeNB", events=("0 BOOTSTRAP", "1 BOOT"), instance=3, params=None):
    """One CPE session answering every RPC with success (AddObject: <instance>).
    Returns [(rpc name, element)]."""
    return C.run_session(port, sn, pc=pc, events=events, params=params,
                         answer=lambda n, mid, el: C.default_answer(n, mid, el, instance))[1]


def upload(port, path, body, user=None, pw=None, scheme="Basic"):
    """PUT <body> to <path> with credentials; Digest answers the server's challenge first."""
    headers = {"Content-Type": "application/xml"}
    if user is not None and scheme == "Basic":
        headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()
    elif user is not None:
        st, hd, _ = http_request(port, "PUT", path, body=body, headers=headers)
        if st != 401:
            return st
        digest = [v for v in re.split(r",\s*(?=Digest|Basic)", hd["www-authenticate"]) if "Digest" in v]
        ch = dict(re.findall(r'(\w+)="?([^",]*)"?', hd["www-authenticate"]))
        ha1 = hashlib.md5(("%s:%s:%s" % (user, ch["realm"], pw)).encode()).hexdigest()
        ha2 = hashlib.md5(("PUT:%s" % path).encode()).hexdigest()
        cnonce = os.urandom(8).hex()
        resp = hashlib.md5(("%s:%s:00000001:%s:auth:%s" % (ha1, ch["nonce"], cnonce, ha2)).encode()).hexdigest()
        headers["Authorization"] = ('Digest username="%s", realm="%s", nonce="%s", uri="%s", qop=auth, '
                                    'nc=00000001, cnonce="%s", response="%s", algorithm=MD5'
                                    % (user, ch["realm"], ch["nonce"], path, cnonce, resp))
        assert digest or ch
    st, _, _ = http_request(port, "PUT", path, body=body, headers=headers)
    return st


class PmProvisioning(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        cls.policy = {
            "pm": {"url": "http://127.0.0.1:%d/pm/{device}/", "interval": 300,
                   "time": "2026-01-01T00:00:00Z",
                   "product_classes": {"HeNB-I1": {"form": "filemgmt"}},
                   "devices": {"00005A-HeNB-OFF": {"enabled": False}}},
        }
        cls.h = Hemsd(config="[hems]\nrole = serving\nnode_id = s1\npolicy_file = %s\n"
                             "[pm]\ndevice_credentials = true\nnode_credentials = false\n"
                             "username = %s\npassword = %s\n" % (cls.tmp.name, NODE_USER, NODE_PW))
        cls.policy["pm"]["url"] = cls.policy["pm"]["url"] % cls.h.cwmp_port
        json.dump(cls.policy, cls.tmp)
        cls.tmp.close()
        cls.h.start()
        with open(PM_FILE, "rb") as f:
            cls.pm = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.h.__exit__(None, None, None)
        os.unlink(cls.tmp.name)

    def register(self, sn, pc="HeNB", instance=3):
        rpcs = session(self.h.cwmp_port, sn, pc=pc, instance=instance)
        names = [n for n, _ in rpcs]
        pm = [spv_params(el) for n, el in rpcs if n == "SetParameterValues" and
              any("PerfMgmt" in k for k in spv_params(el))]
        return names, rpcs, (pm[0] if pm else None)

    def file_path(self, dev, n):
        return "/pm/%s/A20261126.14%02d+0000-1415+0000_%s.xml" % (dev, n, dev)

    def test_per_device_credentials(self):
        h = self.h
        a, b = "00005A-HeNB-PA", "00005A-HeNB-PB"
        names, rpcs, pa = self.register("PA", instance=3)
        # registration order: SPAs (IPsec, alarm tables), AddObject, its SPV, AdminState last
        self.assertEqual(names, ["SetParameterAttributes"] * 3 +
                         ["AddObject", "SetParameterValues", "SetParameterValues"])
        add = rpcs[3][1]
        self.assertEqual([e.text for e in add.iter() if e.tag.endswith("ObjectName")],
                         ["Device.FAP.PerfMgmt.Config."])
        cfg = "Device.FAP.PerfMgmt.Config.3."
        self.assertEqual(pa[cfg + "Username"], a)
        self.assertEqual(pa[cfg + "URL"], "http://127.0.0.1:%d/pm/%s/" % (h.cwmp_port, a))
        self.assertEqual(pa[cfg + "Enable"], "true")
        self.assertEqual(pa[cfg + "PeriodicUploadInterval"], "300")
        self.assertEqual(pa[cfg + "PeriodicUploadTime"], "2026-01-01T00:00:00Z")
        self.assertEqual(pa["Device.Services.FAPService.1.FAPControl.LTE.PMConfig"],
                         "Device.FAP.PerfMgmt.Config.3")
        self.assertRegex(pa[cfg + "Password"], r"^[0-9a-f]{32}$")
        self.assertEqual(spv_params(rpcs[5][1]),
                         {"Device.Services.FAPService.1.FAPControl.LTE.AdminState": "true"})
        _, _, pb = self.register("PB", instance=1)
        pw_a, pw_b = pa[cfg + "Password"], pb["Device.FAP.PerfMgmt.Config.1.Password"]
        self.assertNotEqual(pw_a, pw_b)

        # the API shows the PM configuration, never the password (nor its hash)
        st, d, raw = api(h, "GET", "/api/v1/devices/" + a)
        self.assertEqual(d["pm"]["state"], "enabled")
        self.assertEqual((d["pm"]["username"], d["pm"]["object"], d["pm"]["interval_s"]),
                         (a, cfg, 300))
        st, t, raw_tasks = api(h, "GET", "/api/v1/devices/%s/tasks" % a)
        for blob in (raw, raw_tasks):
            self.assertNotIn(pw_a.encode(), blob)
        ha1 = hashlib.md5(("%s:hems:%s" % (a, pw_a)).encode()).hexdigest()
        self.assertNotIn(ha1.encode(), raw)

        url_a = self.file_path(a, 0)
        # own credentials: Basic and Digest
        self.assertEqual(upload(h.cwmp_port, url_a, self.pm, a, pw_a), 201)
        self.assertEqual(upload(h.cwmp_port, self.file_path(a, 1), self.pm, a, pw_a, "Digest"), 201)
        # no credentials: challenged; a's name with b's password: challenged again
        self.assertEqual(upload(h.cwmp_port, self.file_path(a, 2), self.pm), 401)
        self.assertEqual(upload(h.cwmp_port, self.file_path(a, 2), self.pm, a, pw_b), 401)
        self.assertEqual(upload(h.cwmp_port, self.file_path(a, 2), self.pm, a, pw_b, "Digest"), 401)
        # b's valid credentials on a's URL: refused
        self.assertEqual(upload(h.cwmp_port, self.file_path(a, 2), self.pm, b, pw_b), 403)
        self.assertEqual(upload(h.cwmp_port, self.file_path(b, 2), self.pm, b, pw_b), 201)
        # the node-wide credentials are switched off (pm.node_credentials = false)
        self.assertEqual(upload(h.cwmp_port, self.file_path(a, 3), self.pm, NODE_USER, NODE_PW), 403)
        self.assertEqual(upload(h.cwmp_port, self.file_path(a, 3), self.pm, "nobody", "x"), 403)

        # an operator's task switches a's PM upload off: its uploads are refused from then on
        st, _, body = api(h, "POST", "/api/v1/devices/%s/tasks" % a, {
            "rpc": "SetParameterValues", "parameter_key": "pm-off",
            "params": [{"name": cfg + "Enable", "value": False, "type": "xsd:boolean"}]})
        self.assertEqual(st, 201, body)
        self.assertEqual([n for n, _ in session(h.cwmp_port, "PA", events=("2 PERIODIC",))],
                         ["SetParameterValues"])
        self.assertEqual(api(h, "GET", "/api/v1/devices/" + a)[1]["pm"]["state"], "disabled")
        self.assertEqual(upload(h.cwmp_port, self.file_path(a, 4), self.pm, a, pw_a), 403)
        # ... and back on
        st, _, body = api(h, "POST", "/api/v1/devices/%s/tasks" % a, {
            "rpc": "SetParameterValues", "parameter_key": "pm-on",
            "params": [{"name": cfg + "Enable", "value": True, "type": "xsd:boolean"}]})
        session(h.cwmp_port, "PA", events=("2 PERIODIC",))
        self.assertEqual(upload(h.cwmp_port, self.file_path(a, 4), self.pm, a, pw_a), 201)

        # rotation: a new registration (0 BOOTSTRAP) gives a new password; the old one stops
        _, _, pa2 = self.register("PA", instance=4)
        pw_a2 = pa2["Device.FAP.PerfMgmt.Config.4.Password"]
        self.assertNotEqual(pw_a2, pw_a)
        self.assertEqual(upload(h.cwmp_port, self.file_path(a, 5), self.pm, a, pw_a), 401)
        self.assertEqual(upload(h.cwmp_port, self.file_path(a, 5), self.pm, a, pw_a2), 201)

        m = h.metrics()
        self.assertGreaterEqual(m['hems_pm_uploads_refused_total{reason="other_device"}'], 1)
        self.assertGreaterEqual(m['hems_pm_uploads_refused_total{reason="unknown"}'], 2)
        self.assertGreaterEqual(m['hems_pm_uploads_refused_total{reason="disabled"}'], 1)
        self.assertGreaterEqual(m["hems_pm_upload_auth_failures_total"], 3)
        self.assertGreaterEqual(m["hems_pm_credentials_provisioned_total"], 3)
        logs = h.logs()
        self.assertIn("pm upload refused", logs)
        self.assertIn("PM upload disabled for device", logs)
        for pw in (pw_a, pw_b, pw_a2):
            self.assertNotIn(pw, logs)

    def test_disabled_by_policy_and_filemgmt_form(self):
        h = self.h
        names, _, pm = self.register("OFF")
        self.assertNotIn("AddObject", names)
        self.assertIsNone(pm)
        st, d, _ = api(h, "GET", "/api/v1/devices/00005A-HeNB-OFF")
        self.assertEqual(d["pm"]["state"], "disabled")
        # no upload is accepted for it, whatever it presents
        self.assertEqual(upload(h.cwmp_port, self.file_path("00005A-HeNB-OFF", 0), self.pm,
                                "00005A-HeNB-OFF", "guess"), 403)
        self.assertGreaterEqual(h.metrics()["hems_pm_upload_disabled_total"], 1)

        # TR-196 issue 1 form for this ProductClass: one SPV, PeriodicUploadEnable
        dev = "00005A-HeNB-I1-F1"
        names, _, pm = self.register("F1", pc="HeNB-I1")
        self.assertNotIn("AddObject", names)
        fm = "Device.Services.FAPService.1.PerfMgmt.FileMgmt."
        self.assertEqual(pm[fm + "PeriodicUploadEnable"], "true")
        self.assertEqual(pm[fm + "Username"], dev)
        self.assertEqual(upload(h.cwmp_port, self.file_path(dev, 0), self.pm, dev, pm[fm + "Password"],
                                "Digest"), 201)
        st, d, _ = api(h, "GET", "/api/v1/devices/" + dev)
        self.assertEqual((d["pm"]["state"], d["pm"]["form"], d["pm"]["object"]),
                         ("enabled", "filemgmt", fm))


class LoadgenUsesProvisionedCredentials(unittest.TestCase):
    """Simulated HeNBs (hems-loadgen with henb_agent state) register, are given their PM
    upload URL and credentials by SPV, and upload one file each with them."""
    N = 40

    def test_boot_then_upload_with_own_credentials(self):
        from test_loadgen import run_loadgen
        model = os.path.join(SHARED, "datamodels", "henb-tr196-lte-params.csv")
        tmp = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        h = Hemsd(shards=2, config="[hems]\nrole = serving\nnode_id = s1\npolicy_file = %s\n"
                                   "[pm]\ndevice_credentials = true\nnode_credentials = false\n"
                                   % tmp.name)
        json.dump({"pm": {"url": "http://127.0.0.1:%d/pm/{device}/" % h.cwmp_port,
                          "interval": 900}}, tmp)
        tmp.close()
        try:
            with h:
                r, out = run_loadgen(h.cwmp_port, "--scenario", "boot", "--devices", self.N,
                                     "--concurrency", 10, "--first-serial", 70000, "--model", model,
                                     "--pm-after-register", "--retry-min", 0.2, timeout=120)
                self.assertEqual(r["pm"]["files"], self.N, out)
                self.assertEqual(r["acs_requests"].get("AddObject"), self.N)
                m = h.metrics()
                self.assertEqual(sum(v for k, v in m.items()
                                     if k.startswith("hems_pm_uploads_refused_total")), 0)
                self.assertEqual(m["hems_pm_credentials_provisioned_total"], self.N)
                st, d, _ = api(h, "GET", "/api/v1/devices/00256D-HeNB-0000070000")
                self.assertEqual(d["pm"]["state"], "enabled")
                self.assertEqual(d["pm"]["object"], "Device.FAP.PerfMgmt.Config.1.")
        finally:
            os.unlink(tmp.name)


if __name__ == "__main__":
    main()
