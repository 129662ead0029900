"""Rollout campaigns (docs/campaigns.md) against a real hemsd.

CampaignsScripted: a handful of scripted CPEs (tests/integration/cpe.py): waves, a halt on the
first failure, resume with retry_failed, completion, firmware success only once the target
SoftwareVersion is reported, the API's bad-input answers, metrics.

CampaignsFleet: HEMS_CAMPAIGN_DEVICES (default 10000) simulated HeNBs (hems-loadgen, which
fetches the file and reports TransferComplete, with injected 9010 failures): the campaign
halts at its threshold, hemsd restarts on the same data folder, the campaign is still halted
with the same counts, and after a resume with a higher threshold it completes.
"""
import json
import os
import re
import signal
import subprocess
import time
import unittest

import cpe as C
from hemsd import BIN_DIR, Hemsd, free_port, http_request, main

CFG = b'<?xml version="1.0"?><config><cell id="1"><earfcn>6300</earfcn></cell></config>\n' * 20


def api(h, method, path, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    hd = {"Content-Type": "application/json"} if data else {}
    st, _, b = http_request(h.admin_port, method, path, body=data, headers=hd, timeout=20)
    try:
        return st, (json.loads(b) if b.strip() else None)
    except ValueError:
        return st, b


def params(version):
    return [("Device.DeviceInfo.SoftwareVersion", version, "xsd:string"),
            ("Device.ManagementServer.ConnectionRequestURL", "http://127.0.0.1:9/cr", "xsd:string"),
            ("Device.ManagementServer.ParameterKey", "", "xsd:string")]


def wait_for(fn, timeout=30, step=0.1, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(step)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


class CampaignsScripted(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = Hemsd().start()
        for i in range(6):
            cls.inform(cls, "CS-%d" % i).close()
        for i in range(2):
            cls.inform(cls, "FW-%d" % i, pc="FwBox").close()
        st, j = api(cls.h, "PUT", "/api/v1/files/cfg.xml?type=3&username=cpe", raw=CFG)
        assert st == 201, (st, j)
        st, j = api(cls.h, "PUT", "/api/v1/files/fw-5.0.bin?type=1", raw=b"\x7fFW" * 100)
        assert st == 201, (st, j)

    @classmethod
    def tearDownClass(cls):
        cls.h.__exit__(None, None, None)

    def inform(self, sn, pc="HeNB", events=("2 PERIODIC",), version="4.2.1", command_keys=None):
        cpe = C.Cpe(self.h.cwmp_port)
        r = cpe.post(C.inform_xml(sn=sn, pc=pc, events=events, params=params(version),
                                  command_keys=command_keys))
        assert r.status == 200 and r.rpc()[0] == "InformResponse", r.body
        return cpe

    def download(self, sn, pc="HeNB", fault=0, version="4.2.1"):
        """One device's Download (status 1) and, in a later session, its TransferComplete."""
        cpe = self.inform(sn, pc=pc)
        r = cpe.post()
        self.assertEqual(r.rpc()[0], "Download", r.body)
        _, mid, el = r.rpc()
        args = {e.tag.split("}")[-1]: (e.text or "") for e in el}
        self.assertEqual(cpe.post(C.status_response("DownloadResponse", mid, status=1)).status, 204)
        cpe.close()
        ck = args["CommandKey"]
        cpe = self.inform(sn, pc=pc, events=("7 TRANSFER COMPLETE", "M Download"), version=version,
                          command_keys={"M Download": ck})
        r = cpe.post(C.transfer_complete("tc", ck, fault))
        self.assertEqual(r.rpc()[0], "TransferCompleteResponse")
        self.assertEqual(cpe.post().status, 204)
        cpe.close()
        return args

    def get(self, name):
        st, j = api(self.h, "GET", "/api/v1/campaigns/" + name)
        self.assertEqual(st, 200, j)
        return j

    def devs(self, name, q=""):
        st, j = api(self.h, "GET", "/api/v1/campaigns/%s/devices%s" % (name, q))
        self.assertEqual(st, 200, j)
        return j

    def in_progress(self, name, n):
        return wait_for(lambda: (lambda d: d if len(d) == n else None)(
            [d["device"] for d in self.devs(name, "?state=in_progress")["devices"]]),
            what="%d devices in progress" % n)

    def test_bad_input(self):
        h = self.h
        self.assertEqual(api(h, "POST", "/api/v1/campaigns", raw=b"{nope")[0], 400)
        cases = [
            ({"name": "x", "file": "cfg.xml"}, "selector"),
            ({"name": "x/y", "file": "cfg.xml", "selector": {}}, "name"),
            ({"name": "x", "file": "cfg.xml", "selector": {}, "waves": [0]}, "waves[0]"),
            ({"name": "x", "file": "cfg.xml", "selector": {}, "max_failure_ratio": "a"},
             "max_failure_ratio"),
            ({"name": "x", "file": "cfg.xml", "selector": {}, "speed": 1}, "speed"),
            ({"name": "x", "file": "missing.xml", "selector": {}}, "missing.xml"),
            ({"name": "x", "file": "cfg.xml", "selector": {"product_class": "Nope"}}, "no device"),
            ({"name": "x", "file": "fw-5.0.bin", "selector": {}}, "target_version"),
        ]
        for body, word in cases:
            st, j = api(h, "POST", "/api/v1/campaigns", body)
            self.assertEqual(st, 422, (body, j))
            self.assertEqual(j["error"]["code"], "invalid_campaign")
            self.assertIn(word, j["error"]["message"], body)
        self.assertEqual(api(h, "GET", "/api/v1/campaigns/none")[0], 404)
        self.assertEqual(api(h, "POST", "/api/v1/campaigns/none/start")[0], 404)
        self.assertEqual(api(h, "PUT", "/api/v1/campaigns")[0], 405)
        self.assertEqual(api(h, "GET", "/api/v1/campaigns/none/start")[0], 405)
        self.assertEqual(api(h, "GET", "/api/v1/campaigns/none/bogus")[0], 404)
        self.assertEqual(api(h, "GET", "/api/v1/campaigns/none/devices?limit=0")[0], 400)
        self.assertEqual(api(h, "GET", "/api/v1/campaigns/none/devices?state=odd")[0], 400)

    def test_config_campaign_halts_resumes_completes(self):
        h = self.h
        st, j = api(h, "POST", "/api/v1/campaigns",
                    {"name": "cfg1", "file": "cfg.xml", "selector": {"product_class": "HeNB"},
                     "waves": [2, "100%"], "max_failure_ratio": 0, "cr_per_s": 50,
                     "timeout_s": 120})
        self.assertEqual(st, 201, j)
        self.assertEqual((j["state"], j["totals"]["devices"], j["waves_total"]), ("created", 6, 2))
        self.assertEqual([w["size"] for w in j["waves"]], [2, 4])
        self.assertEqual(api(h, "POST", "/api/v1/campaigns", {"name": "cfg1", "file": "cfg.xml",
                                                             "selector": {}})[0], 409)
        self.assertEqual(api(h, "POST", "/api/v1/campaigns/cfg1/pause")[0], 409)
        st, j = api(h, "POST", "/api/v1/campaigns/cfg1/start")
        self.assertEqual((st, j["state"]), (200, "running"), j)
        self.assertEqual(api(h, "POST", "/api/v1/campaigns/cfg1/start")[0], 409)
        first = self.in_progress("cfg1", 2)
        a = self.download(first[0].split("-", 2)[2])
        self.assertEqual(a["FileType"], "3 Vendor Configuration File")
        self.assertEqual(a["Username"], "cpe")
        self.download(first[1].split("-", 2)[2], fault=9010)
        j = wait_for(lambda: (lambda c: c if c["state"] == "halted" else None)(self.get("cfg1")),
                     what="halt")
        self.assertIn("wave 1", j["reason"])
        self.assertEqual((j["waves"][0]["succeeded"], j["waves"][0]["failed"]), (1, 1))
        self.assertEqual(j["waves"][1]["pending"], 4)  # the next wave never opened
        failed = self.devs("cfg1", "?state=failed")["devices"]
        self.assertEqual([(d["device"], d["fault_code"]) for d in failed], [(first[1], 9010)])
        # resume refused while over the threshold, then with retry_failed
        st, j = api(h, "POST", "/api/v1/campaigns/cfg1/resume")
        self.assertEqual(st, 409, j)
        self.assertIn("retry_failed", j["error"]["message"])
        self.assertEqual(api(h, "POST", "/api/v1/campaigns/cfg1/resume", {"speed": 2})[0], 422)
        st, j = api(h, "POST", "/api/v1/campaigns/cfg1/resume", {"retry_failed": True})
        self.assertEqual((st, j["state"]), (200, "running"), j)
        again = self.in_progress("cfg1", 1)
        self.assertEqual(again, [first[1]])
        self.download(first[1].split("-", 2)[2])
        rest = self.in_progress("cfg1", 4)
        for d in rest:
            self.download(d.split("-", 2)[2])
        j = wait_for(lambda: (lambda c: c if c["state"] == "completed" else None)(self.get("cfg1")),
                     what="completion")
        self.assertEqual((j["totals"]["succeeded"], j["totals"]["failed"]), (6, 0))
        page = self.devs("cfg1", "?limit=4")
        self.assertEqual((page["total"], len(page["devices"]), page["next_offset"]), (6, 4, 4))
        self.assertEqual(len(self.devs("cfg1", "?offset=4&limit=4")["devices"]), 2)
        self.assertEqual(len(self.devs("cfg1", "?wave=2")["devices"]), 4)
        st, _, body = http_request(h.admin_port, "GET", "/metrics")
        self.assertIn(b'hems_campaign_devices{campaign="cfg1",state="succeeded"} 6', body)
        self.assertIn(b"hems_campaign_halts_total 1", body)
        st, j = api(h, "GET", "/api/v1/campaigns")
        self.assertIn("cfg1", [c["name"] for c in j["campaigns"]])
        self.assertEqual(api(h, "DELETE", "/api/v1/campaigns/cfg1")[0], 204)
        self.assertEqual(api(h, "GET", "/api/v1/campaigns/cfg1")[0], 404)

    def test_firmware_needs_target_version(self):
        h = self.h
        st, j = api(h, "POST", "/api/v1/campaigns",
                    {"name": "fw1", "file": "fw-5.0.bin", "target_version": "5.0",
                     "selector": {"product_class": "FwBox"}, "max_failure_ratio": 0.5,
                     "cr_per_s": 50})
        self.assertEqual(st, 201, j)
        self.assertEqual(j["definition"]["file_type"], 1)
        self.assertEqual(api(h, "POST", "/api/v1/campaigns/fw1/start")[0], 200)
        devs = self.in_progress("fw1", 2)
        # TransferComplete without fault, but the device still reports the old version
        a = self.download(devs[0].split("-", 2)[2], pc="FwBox", version="4.2.1")
        self.assertEqual(a["FileType"], "1 Firmware Upgrade Image")
        self.download(devs[1].split("-", 2)[2], pc="FwBox", version="5.0")
        wait_for(lambda: self.get("fw1")["totals"]["succeeded"] == 1, what="one success")
        time.sleep(0.5)
        self.assertEqual(self.get("fw1")["totals"]["in_progress"], 1)
        # the BOOT Inform with the new version completes it
        self.inform(devs[0].split("-", 2)[2], pc="FwBox", events=("1 BOOT",), version="5.0").close()
        j = wait_for(lambda: (lambda c: c if c["state"] == "completed" else None)(self.get("fw1")),
                     what="completion")
        self.assertEqual(j["totals"]["succeeded"], 2)

    def test_cancel(self):
        h = self.h
        st, j = api(h, "POST", "/api/v1/campaigns",
                    {"name": "c3", "file": "cfg.xml", "selector": {"devices": ["00005A-HeNB-CS-0",
                                                                                "00005A-HeNB-CS-1"]},
                     "waves": [1, 1], "cr_per_s": 50})
        self.assertEqual(st, 201, j)
        self.assertEqual(j["totals"]["devices"], 2)
        self.assertEqual(api(h, "DELETE", "/api/v1/campaigns/c3")[0], 204)  # created: deletable
        st, j = api(h, "POST", "/api/v1/campaigns",
                    {"name": "c3", "file": "cfg.xml", "selector": {"devices": ["00005A-HeNB-CS-0",
                                                                                "00005A-HeNB-CS-1"]},
                     "waves": [1, 1], "cr_per_s": 50})
        self.assertEqual(api(h, "POST", "/api/v1/campaigns/c3/start")[0], 200)
        dev = self.in_progress("c3", 1)[0]
        self.assertEqual(api(h, "DELETE", "/api/v1/campaigns/c3")[0], 409)
        st, j = api(h, "POST", "/api/v1/campaigns/c3/cancel")
        self.assertEqual((st, j["state"]), (200, "cancelled"), j)
        self.assertEqual((j["totals"]["cancelled"], j["totals"]["in_progress"]), (2, 0))
        # the queued task was withdrawn: the device gets no Download
        cpe = self.inform(dev.split("-", 2)[2])
        self.assertEqual(cpe.post().status, 204)
        cpe.close()
        self.assertEqual(api(h, "POST", "/api/v1/campaigns/c3/resume")[0], 409)


if __name__ == "__main__":
    main()
