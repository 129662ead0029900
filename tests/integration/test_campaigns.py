"""Rollout campaigns (docs/campaigns.md) against a real hemsd.

CampaignsScripted: a handful of scripted CPEs (tests/integration/cpe.py): waves, a halt on the
first failure, resume with retry_failed, completion, firmware success only once the target
SoftwareVersion is reported, the API's bad-input answers, metrics.

CampaignsFleet: HEMS_CAMPAIGN_DEVICES (default 10000; 1000 under the sanitizers) simulated HeNBs (hems-loadgen, which
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
from hemsd import BIN_DIR, Hemsd, fleet_size, free_port, http_request, main

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

    def ctl(self, *args, rc=0):
        p = subprocess.run([os.path.join(BIN_DIR, "hemsctl"), "--admin",
                            "127.0.0.1:%d" % self.h.admin_port] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, rc, (args, p.stdout, p.stderr))
        return p.stdout.decode() + p.stderr.decode()

    def test_hemsctl(self):
        self.assertIn("the selector matches no device", self.ctl(
            "campaigns", "create", "ctl0", "cfg.xml", "tags=nope", rc=1))
        out = self.ctl("campaigns", "create", "ctl1", "cfg.xml", "waves=1,100%", "ratio=0.5",
                       "rate=20", "timeout=600", "devices=00005A-HeNB-CS-4,00005A-HeNB-CS-5")
        self.assertIn("state      created", out)
        self.assertRegex(out, r"\n1 +1 +1 +0 ")
        out = self.ctl("campaigns")
        self.assertRegex(out, r"ctl1 +created +1/2 +2 +2 ")
        self.assertIn("running", self.ctl("campaigns", "start", "ctl1"))
        self.assertIn("409 conflict", self.ctl("campaigns", "start", "ctl1", rc=1))
        j = json.loads(self.ctl("--json", "campaigns", "show", "ctl1"))
        self.assertEqual(j["definition"]["waves"], [1, "100%"])
        self.assertIn("paused", self.ctl("campaigns", "pause", "ctl1"))
        out = self.ctl("campaigns", "devices", "ctl1")
        self.assertIn("00005A-HeNB-CS-", out)
        self.assertIn("DEVICE", out)
        self.assertIn("running", self.ctl("campaigns", "resume", "ctl1", "ratio=0.6"))
        self.assertIn("cancelled", self.ctl("campaigns", "cancel", "ctl1"))
        self.assertIn("ok (204)", self.ctl("campaigns", "delete", "ctl1"))
        self.assertIn("404 not_found", self.ctl("campaigns", "show", "ctl1", rc=1))
        self.ctl("campaigns", "bogus", rc=2)

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


def splitmix_fails(i, pct):
    """bench/loadgen_dl.c hm_lg_dl_fails(): whether device index <i> injects 9010."""
    m = (1 << 64) - 1
    z = (i + 0x9e3779b97f4a7c15) & m
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & m
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & m
    z ^= z >> 31
    return z % 100 < pct


class CampaignsFleet(unittest.TestCase):
    """HEMS_CAMPAIGN_DEVICES simulated HeNBs (default 10000), 10 % injected failures."""
    N = fleet_size(10000, env="HEMS_CAMPAIGN_DEVICES", sanitized=1000)
    FIRST = 500000
    PCT = 10

    def setUp(self):
        from test_loadgen import LOADGEN
        import tempfile
        self.h = Hemsd("--set", "cwmp.cr_max_per_s=5000", "--set", "store.no_sync=true",
                       "--set", "log.level=warn", shards=2).start()
        self.tmp = tempfile.TemporaryDirectory(prefix="campaign-fleet-")
        self.report = os.path.join(self.tmp.name, "r.json")
        st, j = api(self.h, "PUT", "/api/v1/files/fleet.xml?type=3&username=cpe", raw=CFG)
        self.assertEqual(st, 201, j)
        self.lg = subprocess.Popen(
            [LOADGEN, "--target", "127.0.0.1:%d" % self.h.cwmp_port, "--scenario", "discovery",
             "--devices", str(self.N), "--first-serial", str(self.FIRST), "--interval", "3600",
             "--rate", "2500", "--duration", "600", "--workers", "2", "--cr-port", "0",
             "--download-fail-pct", str(self.PCT), "--retry-min", "0.5", "--max-retries", "20",
             "--quiet", "--json", self.report],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def tearDown(self):
        if self.lg.poll() is None:
            self.lg.kill()
            self.lg.wait()
        self.lg.stdout.close()
        self.h.__exit__(None, None, None)
        self.tmp.cleanup()

    def camp(self):
        st, j = api(self.h, "GET", "/api/v1/campaigns/fleet")
        self.assertEqual(st, 200, j)
        return j

    def failed_devices(self):
        out, off = set(), 0
        while True:
            st, j = api(self.h, "GET", "/api/v1/campaigns/fleet/devices?state=failed&limit=1000&offset=%d" % off)
            self.assertEqual(st, 200, j)
            for d in j["devices"]:
                self.assertEqual(d["fault_code"], 9010, d)
                out.add(d["device"])
            if "next_offset" not in j:
                return out
            off = j["next_offset"]

    def test_halts_survives_restart_resumes_completes(self):
        n, t0 = self.N, time.time()
        wait_for(lambda: api(self.h, "GET", "/api/v1/status")[1]["devices"] >= n, timeout=60,
                 step=0.25, what="%d devices registered" % n)
        t_reg = time.time() - t0
        st, j = api(self.h, "POST", "/api/v1/campaigns",
                    {"name": "fleet", "file": "fleet.xml", "selector": {"product_class": "HeNB"},
                     "waves": ["2%", "20%", "100%"], "max_failure_ratio": 0.05,
                     "cr_per_s": 1000, "timeout_s": 120, "cr_retry_s": 10})
        self.assertEqual(st, 201, j)
        self.assertEqual(j["totals"]["devices"], n)
        self.assertEqual(api(self.h, "POST", "/api/v1/campaigns/fleet/start")[0], 200)
        t_start = time.time()
        # ~10 % fail: the first wave (2 %) goes over 5 % and halts; what was in flight ends
        j = wait_for(lambda: (lambda c: c if c["state"] == "halted" and c["totals"]["in_progress"] == 0
                              else None)(self.camp()), timeout=60, step=0.25, what="halt")
        w = j["wave"]  # 1 with 10000 devices (200 in the first wave, ~20 fail)
        self.assertIn("wave %d" % w, j["reason"])
        cur = j["waves"][w - 1]
        self.assertGreater(cur["failed"], cur["size"] * 0.05)
        for later in j["waves"][w:]:
            self.assertEqual(later["pending"], later["size"])  # never opened
        t_halt = time.time()
        halted = {k: j[k] for k in ("state", "reason", "wave", "totals", "waves")}
        failed_before = self.failed_devices()
        # restart on the same data folder: same state, same counts, same outcomes
        self.assertEqual(self.h.stop(), 0)
        self.h.log.close()
        self.h.start()
        t_restart = time.time()
        j = self.camp()
        self.assertEqual({k: j[k] for k in ("state", "reason", "wave", "totals", "waves")}, halted)
        self.assertEqual(self.failed_devices(), failed_before)
        # resume with a threshold above the injected rate: every wave completes
        st, j = api(self.h, "POST", "/api/v1/campaigns/fleet/resume", {"max_failure_ratio": 0.2})
        self.assertEqual((st, j["state"]), (200, "running"), j)
        t_resume = time.time()
        j = wait_for(lambda: (lambda c: c if c["state"] != "running" else None)(self.camp()),
                     timeout=120, step=0.5, what="completion")
        t_done = time.time()
        self.assertEqual(j["state"], "completed", j)
        tot = j["totals"]
        self.assertEqual(tot["succeeded"] + tot["failed"], n, tot)
        self.assertEqual(tot["timed_out"], 0, tot)
        # exactly the devices the load generator was told to fail
        expect = {"00256D-HeNB-%010d" % (self.FIRST + i) for i in range(n)
                  if splitmix_fails(i, self.PCT)}
        self.assertEqual(self.failed_devices(), expect)
        elapsed = time.time() - t0
        self.lg.send_signal(signal.SIGINT)
        out, _ = self.lg.communicate(timeout=60)
        self.assertEqual(self.lg.returncode, 0, out)
        with open(self.report) as f:
            r = json.load(f)
        dl = r["downloads"]
        self.assertEqual(dl["fetched"], n - len(expect), dl)  # 9010 after a full fetch
        self.assertEqual(dl["injected_failures"], len(expect))
        self.assertEqual(dl["errors"], 0)
        rest = n - halted["totals"]["succeeded"] - halted["totals"]["failed"]
        print("\ncampaign over %d devices: registered in %.1f s; start to halt (wave 1 settled) "
              "%.1f s; hemsd restart %.1f s; resume to completion %.1f s for %d devices "
              "(%.0f devices/s); whole test %.1f s; %d failed (injected)"
              % (n, t_reg, t_halt - t_start, t_restart - t_halt, t_done - t_resume, rest,
                 rest / (t_done - t_resume), elapsed, len(expect)))


class CampaignsLoadgenFirmware(unittest.TestCase):
    """A firmware campaign over 40 simulated HeNBs: each fetches the image, reboots ("1 BOOT"
    + "7 TRANSFER COMPLETE" + "M Download") and reports the new SoftwareVersion - by default
    the image's file name (docs/loadgen.md)."""

    def test_firmware_rollout(self):
        from test_loadgen import LOADGEN
        import tempfile
        n, first = 40, 700000
        with Hemsd("--set", "cwmp.cr_max_per_s=500") as h, \
                tempfile.TemporaryDirectory(prefix="campaign-fw-") as tmp:
            st, j = api(h, "PUT", "/api/v1/files/henb-5.0.img?type=1&username=cpe",
                        raw=b"\x7fIMG" * 2000)
            self.assertEqual(st, 201, j)
            report = os.path.join(tmp, "r.json")
            lg = subprocess.Popen(
                [LOADGEN, "--target", "127.0.0.1:%d" % h.cwmp_port, "--scenario", "discovery",
                 "--devices", str(n), "--first-serial", str(first), "--interval", "3600",
                 "--duration", "120", "--cr-port", "0", "--quiet", "--json", report],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                wait_for(lambda: api(h, "GET", "/api/v1/status")[1]["devices"] >= n,
                         what="devices registered")
                st, j = api(h, "POST", "/api/v1/campaigns",
                            {"name": "fw", "file": "henb-5.0.img", "target_version": "henb-5.0.img",
                             "selector": {"product_class": "HeNB", "software_version": "4.2.*"},
                             "waves": [5, "100%"], "max_failure_ratio": 0, "cr_per_s": 100,
                             "timeout_s": 60})
                self.assertEqual(st, 201, j)
                self.assertEqual(api(h, "POST", "/api/v1/campaigns/fw/start")[0], 200)
                j = wait_for(lambda: (lambda c: c if c["state"] != "running" else None)(
                    api(h, "GET", "/api/v1/campaigns/fw")[1]), timeout=60, what="completion")
                self.assertEqual(j["state"], "completed", j)
                self.assertEqual(j["totals"]["succeeded"], n)
                dev = "00256D-HeNB-%010d" % (first + 7)
                st, d = api(h, "GET", "/api/v1/devices/" + dev)
                self.assertEqual(d["software_version"], "henb-5.0.img")
                self.assertEqual(d["events"], ["1 BOOT", "7 TRANSFER COMPLETE", "M Download"])
                st, t = api(h, "GET", "/api/v1/devices/%s/tasks" % dev)
                self.assertEqual((t["tasks"][-1]["state"], t["tasks"][-1]["fault_code"]), ("done", 0))
                lg.send_signal(signal.SIGINT)
                out, _ = lg.communicate(timeout=60)
                self.assertEqual(lg.returncode, 0, out)
                with open(report) as f:
                    r = json.load(f)
                self.assertEqual(r["downloads"]["fetched"], n, r["downloads"])
                self.assertEqual(r["downloads"]["transfer_complete_acked"], n)
            finally:
                if lg.poll() is None:
                    lg.kill()
                    lg.wait()
                lg.stdout.close()


if __name__ == "__main__":
    main()
