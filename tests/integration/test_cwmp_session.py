"""CWMP sessions end to end against a real hemsd: Inform -> InformResponse, tasks queued through
the northbound API and carried out in the device's next session, faults, TransferComplete,
one session per device, Digest authentication, and durability across kill -9."""
import json
import os
import signal
import socket
import threading
import time
import unittest
import xml.etree.ElementTree as ET

import cpe as C
from hemsd import Hemsd, http_request, main


def api(h, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    st, hd, b = http_request(h.admin_port, method, path, body=data,
                             headers={"Content-Type": "application/json"} if body is not None else None)
    return st, (json.loads(b) if b.strip() else None)


class Sessions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = Hemsd(shards=2).start()

    @classmethod
    def tearDownClass(cls):
        cls.h.__exit__(None, None, None)

    def session(self, sn, events=("2 PERIODIC",), ns="urn:dslforum-org:cwmp-1-0", **kw):
        cpe = C.Cpe(self.h.cwmp_port)
        r = cpe.post(C.inform_xml(sn=sn, events=events, ns=ns, **kw))
        self.assertEqual(r.status, 200, r.body)
        name, mid, _ = r.rpc()
        self.assertEqual(name, "InformResponse")
        self.assertEqual(mid, "inf-1")
        self.assertIn(ns, r.body.decode())
        self.assertTrue(cpe.cookie.startswith("hems_session="))
        return cpe

    def test_inform_registers_device(self):
        cpe = self.session("REG-1", events=("0 BOOTSTRAP", "1 BOOT"))
        r = cpe.post()
        self.assertEqual(r.status, 204)
        cpe.close()
        st, d = api(self.h, "GET", "/api/v1/devices/00005A-HeNB-REG-1")
        self.assertEqual(st, 200, d)
        self.assertEqual(d["registration"], "registered")
        self.assertEqual(d["software_version"], "4.2.1")
        self.assertEqual(d["events"], ["0 BOOTSTRAP", "1 BOOT"])
        self.assertEqual(d["connection_request_url"], "http://127.0.0.1:30005/cr")
        self.assertTrue(d["source_address"].startswith("127.0.0.1:"))
        st, p = api(self.h, "GET", "/api/v1/devices/00005A-HeNB-REG-1/parameters?prefix=Device.DeviceInfo.")
        self.assertEqual(st, 200)
        self.assertEqual([(x["name"], x["value"]) for x in p["parameters"]],
                         [("Device.DeviceInfo.SoftwareVersion", "4.2.1")])
        st, lst = api(self.h, "GET", "/api/v1/devices?limit=1000")
        self.assertIn("00005A-HeNB-REG-1", [x["id"] for x in lst["devices"]])

    def test_reply_uses_cpe_namespace(self):
        cpe = self.session("NS-12", ns="urn:dslforum-org:cwmp-1-2", prefix="soap_env")
        self.assertEqual(cpe.post().status, 204)

    def test_cwmp_version_negotiation(self):
        cpe = self.session("V14", ns="urn:dslforum-org:cwmp-1-2",
                           extra_header="<cwmp:SupportedCWMPVersions>1.0,1.1,1.2,1.3,1.4,1.9"
                                        "</cwmp:SupportedCWMPVersions>")
        self.assertEqual(cpe.post().status, 204)
        cpe = C.Cpe(self.h.cwmp_port)
        r = cpe.post(C.inform_xml(sn="V14b", ns="urn:dslforum-org:cwmp-1-2",
                                  extra_header="<cwmp:SupportedCWMPVersions>1.0,1.4</cwmp:SupportedCWMPVersions>"))
        root = r.root
        uv = [e.text for e in root.iter() if e.tag.endswith("UseCWMPVersion")]
        self.assertEqual(uv, ["1.4"])

    def test_captured_informs_accepted(self):
        shared = os.environ.get("HEMS_SHARED_DATA", "../shared/data")
        for sub in ("genie", "easy", "genie-fap"):
            path = os.path.join(shared, "captures", sub, "0001-cpe-Inform.xml")
            if not os.path.exists(path):
                continue
            cpe = C.Cpe(self.h.cwmp_port)
            r = cpe.post(open(path, "rb").read())
            self.assertEqual(r.status, 200, (sub, r.body))
            self.assertEqual(r.rpc()[0], "InformResponse")
            self.assertEqual(cpe.post().status, 204)
            cpe.close()

    def test_tasks_run_in_next_session(self):
        dev = "00005A-HeNB-TASK-1"
        self.session("TASK-1").post()
        st, t1 = api(self.h, "POST", "/api/v1/devices/%s/tasks" % dev,
                     {"rpc": "GetParameterValues", "names": ["Device.DeviceInfo."]})
        self.assertEqual(st, 201, t1)
        st, t2 = api(self.h, "POST", "/api/v1/devices/%s/tasks" % dev,
                     {"rpc": "SetParameterValues", "parameter_key": "k7",
                      "params": [{"name": "Device.Services.FAPService.1.CellConfig.LTE.RAN.RF.PhyCellID",
                                  "value": 700, "type": "xsd:unsignedInt"}]})
        self.assertEqual(st, 201, t2)
        st, t3 = api(self.h, "POST", "/api/v1/devices/%s/tasks" % dev, {"rpc": "Reboot"})
        self.assertEqual(st, 201)
        st, lst = api(self.h, "GET", "/api/v1/devices/%s/tasks" % dev)
        self.assertEqual([t["state"] for t in lst["tasks"]], ["queued"] * 3)

        cpe = self.session("TASK-1")
        r = cpe.post()
        self.assertEqual(r.status, 200)
        name, mid, el = r.rpc()
        self.assertEqual(name, "GetParameterValues")
        self.assertEqual(mid, str(t1["id"]))
        self.assertIn("Device.DeviceInfo.", r.body.decode())
        r = cpe.post(C.gpv_response(mid, [("Device.DeviceInfo.HardwareVersion", "hw2", "xsd:string"),
                                          ("Device.DeviceInfo.UpTime", "42", "xsd:unsignedInt")]))
        name, mid, el = r.rpc()
        self.assertEqual(name, "SetParameterValues")
        body = r.body.decode()
        self.assertIn('xsi:type="xsd:unsignedInt">700<', body)
        self.assertIn("<ParameterKey>k7</ParameterKey>", body)
        r = cpe.post(C.spv_fault(mid, "Device.Services.FAPService.1.CellConfig.LTE.RAN.RF.PhyCellID"))
        name, mid, el = r.rpc()
        self.assertEqual(name, "Reboot")
        self.assertIn("task-%d" % t3["id"], r.body.decode())
        r = cpe.post(C.envelope("<cwmp:RebootResponse/>", mid))
        self.assertEqual(r.status, 204)
        cpe.close()

        st, t = api(self.h, "GET", "/api/v1/devices/%s/tasks/%d" % (dev, t1["id"]))
        self.assertEqual(t["state"], "done")
        self.assertEqual([p["name"] for p in t["result"]["params"]],
                         ["Device.DeviceInfo.HardwareVersion", "Device.DeviceInfo.UpTime"])
        st, t = api(self.h, "GET", "/api/v1/devices/%s/tasks/%d" % (dev, t2["id"]))
        self.assertEqual((t["state"], t["fault_code"]), ("failed", 9003))
        self.assertEqual(t["result"]["fault"]["params"][0]["code"], 9007)
        st, t = api(self.h, "GET", "/api/v1/devices/%s/tasks/%d" % (dev, t3["id"]))
        self.assertEqual(t["state"], "done")
        st, p = api(self.h, "GET", "/api/v1/devices/%s/parameters?prefix=Device.DeviceInfo.UpTime" % dev)
        self.assertEqual(p["parameters"][0]["value"], "42")
        # Nothing queued any more: the next session ends at once.
        cpe = self.session("TASK-1")
        self.assertEqual(cpe.post().status, 204)

    def whole_session(self, sn, **kw):
        """Inform, then the empty POST that the ACS ends with 204 (nothing queued)."""
        cpe = self.session(sn, **kw)
        self.assertEqual(cpe.post().status, 204)
        cpe.close()

    def params_of(self, dev):
        st, p = api(self.h, "GET", "/api/v1/devices/%s/parameters?prefix=Device." % dev)
        self.assertEqual(st, 200, p)
        return {x["name"]: (x["value"], x["type"], x["time_ms"]) for x in p["parameters"]}

    def unchanged_count(self):
        return sum(v for k, v in self.h.metrics().items()
                   if k.startswith("hems_cwmp_inform_params_unchanged_total"))

    def test_repeated_inform_parameters_are_not_rewritten(self):
        # a periodic Inform mostly repeats what the store holds: those parameters keep the
        # time they were learnt (no rewrite), a changed value or type is written with the
        # new time, and a new parameter is added
        dev = "00005A-HeNB-REPEAT-1"
        base = [("Device.DeviceInfo.SoftwareVersion", "4.2.1", "xsd:string"),
                ("Device.DeviceInfo.UpTime", "100", "xsd:unsignedInt"),
                ("Device.ManagementServer.ParameterKey", "", "xsd:string")]
        self.whole_session("REPEAT-1", params=base)
        first = self.params_of(dev)
        self.assertEqual(first["Device.DeviceInfo.UpTime"][:2], ("100", "xsd:unsignedInt"))
        before = self.unchanged_count()
        time.sleep(0.05)  # a rewrite would carry a later time_ms
        again = [base[0], ("Device.DeviceInfo.UpTime", "160", "xsd:unsignedInt"),
                 ("Device.ManagementServer.ParameterKey", "", "xsd:int"),
                 ("Device.DeviceInfo.HardwareVersion", "hw2", "xsd:string")]
        self.whole_session("REPEAT-1", params=again)
        second = self.params_of(dev)
        self.assertEqual(second["Device.DeviceInfo.SoftwareVersion"],
                         first["Device.DeviceInfo.SoftwareVersion"])  # same time_ms too
        self.assertEqual(second["Device.DeviceInfo.UpTime"][:2], ("160", "xsd:unsignedInt"))
        self.assertGreater(second["Device.DeviceInfo.UpTime"][2], first["Device.DeviceInfo.UpTime"][2])
        self.assertEqual(second["Device.ManagementServer.ParameterKey"][1], "xsd:int")
        self.assertGreater(second["Device.ManagementServer.ParameterKey"][2],
                           first["Device.ManagementServer.ParameterKey"][2])
        self.assertEqual(second["Device.DeviceInfo.HardwareVersion"][0], "hw2")
        self.assertEqual(self.unchanged_count() - before, 1)
        st, d = api(self.h, "GET", "/api/v1/devices/" + dev)
        self.assertGreater(d["last_inform_ms"], first["Device.DeviceInfo.SoftwareVersion"][2])

    def test_download_completed_by_transfer_complete(self):
        dev = "00005A-HeNB-DL-1"
        st, t = api(self.h, "POST", "/api/v1/devices/%s/tasks" % dev,
                    {"rpc": "Download", "file_type": "3 Vendor Configuration File",
                     "url": "http://127.0.0.1:7547/files/cfg.xml", "file_size": 1234})
        self.assertEqual(st, 201)
        cpe = self.session("DL-1")
        r = cpe.post()
        name, mid, _ = r.rpc()
        self.assertEqual(name, "Download")
        self.assertIn("<CommandKey>task-%d</CommandKey>" % t["id"], r.body.decode())
        r = cpe.post(C.status_response("DownloadResponse", mid, status=1,
                                       extra="<StartTime>0001-01-01T00:00:00Z</StartTime>"
                                             "<CompleteTime>0001-01-01T00:00:00Z</CompleteTime>"))
        self.assertEqual(r.status, 204)
        cpe.close()
        st, tt = api(self.h, "GET", "/api/v1/devices/%s/tasks/%d" % (dev, t["id"]))
        self.assertEqual(tt["state"], "sent")
        cpe = self.session("DL-1", events=("7 TRANSFER COMPLETE", "M Download"),
                           command_keys={"M Download": "task-%d" % t["id"]})
        r = cpe.post(C.transfer_complete("tc-1", "task-%d" % t["id"]))
        self.assertEqual(r.rpc()[0:2], ("TransferCompleteResponse", "tc-1"))
        self.assertEqual(cpe.post().status, 204)
        st, tt = api(self.h, "GET", "/api/v1/devices/%s/tasks/%d" % (dev, t["id"]))
        self.assertEqual(tt["state"], "done")
        self.assertTrue(tt["result"]["transfer_complete"])

    def test_one_session_per_device(self):
        a = self.session("DUP-1")
        b = C.Cpe(self.h.cwmp_port)
        r = b.post(C.inform_xml(sn="DUP-1"))
        self.assertEqual(r.fault_code(), 8005)
        a.post()
        a.close()
        time.sleep(0.2)
        self.session("DUP-1").post()
        m = self.h.metrics()
        self.assertGreaterEqual(m["hems_cwmp_sessions_refused_busy_total"], 1)
        # Latency histograms: every completed session and every commit wait is observed.
        self.assertEqual(m["hems_cwmp_session_seconds_count"], m["hems_cwmp_sessions_completed_total"])
        self.assertGreaterEqual(m["hems_cwmp_commit_wait_seconds_count"], m["hems_cwmp_informs_total"])
        self.assertEqual(m['hems_cwmp_session_seconds_bucket{le="+Inf"}'], m["hems_cwmp_session_seconds_count"])

    def test_protocol_errors(self):
        cpe = C.Cpe(self.h.cwmp_port)
        self.assertEqual(cpe.post().status, 400)  # empty POST before an Inform
        r = cpe.post(C.envelope("<cwmp:GetRPCMethods/>", "x1"))
        self.assertEqual(r.fault_code(), 8003)
        r = cpe.post(C.envelope("<cwmp:NoSuchMethod/>", "x2"))
        self.assertEqual(r.fault_code(), 8000)
        r = cpe.post(b"<not-xml")
        self.assertEqual(r.status, 400)
        r = cpe.post(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>')
        self.assertEqual(r.status, 400)
        r = cpe.post(C.inform_xml(oui="XYZ", sn="BAD"))
        self.assertEqual(r.fault_code(), 8003)
        st, _, _ = http_request(self.h.cwmp_port, "GET", "/cwmp")
        self.assertEqual(st, 405)
        # A CPE request inside a session gets its response.
        cpe = self.session("RPC-1")
        r = cpe.post(C.envelope("<cwmp:GetRPCMethods/>", "g1"))
        name, mid, el = r.rpc()
        self.assertEqual((name, mid), ("GetRPCMethodsResponse", "g1"))
        self.assertIn("TransferComplete", r.body.decode())
        self.assertEqual(cpe.post().status, 204)

    def test_api_errors(self):
        st, e = api(self.h, "GET", "/api/v1/devices/nope")
        self.assertEqual((st, e["error"]["code"]), (404, "not_found"))
        st, e = api(self.h, "POST", "/api/v1/devices/00005A-HeNB-X/tasks", {"rpc": "Explode"})
        self.assertEqual((st, e["error"]["code"]), (422, "invalid_task"))
        st, e = api(self.h, "POST", "/api/v1/devices/00005A-HeNB-X/tasks",
                    {"rpc": "SetParameterValues", "params": [{"name": "Device.X.", "value": "1"}]})
        self.assertEqual(st, 422)
        self.assertIn("object", e["error"]["message"])
        sth, _, b = http_request(self.h.admin_port, "POST", "/api/v1/devices/x/tasks", body=b"{bad json")
        self.assertEqual(sth, 400)
        self.assertEqual(json.loads(b)["error"]["code"], "bad_json")
        st, t = api(self.h, "POST", "/api/v1/devices/00005A-HeNB-X/tasks", {"rpc": "FactoryReset"})
        st, _ = api(self.h, "DELETE", "/api/v1/devices/00005A-HeNB-X/tasks/%d" % t["id"])
        self.assertEqual(st, 204)
        st, _ = api(self.h, "GET", "/api/v1/devices/00005A-HeNB-X/tasks/%d" % t["id"])
        self.assertEqual(st, 404)


class Auth(unittest.TestCase):
    def test_digest(self):
        conf = "[cwmp]\nauth = digest\nusername = cpe\npassword = s3cret\n"
        with Hemsd(config=conf) as h:
            cpe = C.Cpe(h.cwmp_port, auth=("cpe", "s3cret"))
            r = cpe.post(C.inform_xml(sn="AUTH-1"))
            self.assertEqual(r.status, 401)
            self.assertIn('qop="auth"', r.headers["www-authenticate"])
            r = cpe.post(C.inform_xml(sn="AUTH-1"))
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(cpe.post().status, 204)
            bad = C.Cpe(h.cwmp_port, auth=("cpe", "wrong"))
            self.assertEqual(bad.post(C.inform_xml(sn="AUTH-2")).status, 401)
            self.assertEqual(bad.post(C.inform_xml(sn="AUTH-2")).status, 401)
            self.assertGreaterEqual(h.metrics()["hems_cwmp_auth_failures_total"], 1)
            self.assertNotIn("s3cret", h.logs())
            self.assertIn("CPE authentication failed", h.logs())


class ApiAuth(unittest.TestCase):
    def test_bearer_tokens_and_roles(self):
        import hashlib, subprocess
        from hemsd import BIN_DIR
        rd, op = "reader-secret-1", "operator-secret-2"
        conf = "[api]\nreader_token_sha256 = %s\noperator_token_sha256 = %s\n" % (
            hashlib.sha256(rd.encode()).hexdigest(), hashlib.sha256(op.encode()).hexdigest())
        with Hemsd(config=conf) as h:
            def call(method, path, token=None, body=None):
                hd = {"Authorization": "Bearer " + token} if token else {}
                st, _, b = http_request(h.admin_port, method, path, body=body or b"", headers=hd)
                return st
            self.assertEqual(call("GET", "/api/v1/status"), 401)
            self.assertEqual(call("GET", "/api/v1/status", "wrong"), 401)
            self.assertEqual(call("GET", "/api/v1/status", rd), 200)
            task = json.dumps({"rpc": "Reboot"}).encode()
            self.assertEqual(call("POST", "/api/v1/devices/00005A-HeNB-T/tasks", rd, task), 403)
            self.assertEqual(call("POST", "/api/v1/devices/00005A-HeNB-T/tasks", op, task), 201)
            self.assertEqual(call("GET", "/healthz"), 200)  # health stays open for probes
            r = subprocess.run([os.path.join(BIN_DIR, "hemsctl"), "--admin", "127.0.0.1:%d" % h.admin_port,
                                "--token", op, "tasks", "00005A-HeNB-T"], capture_output=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(b"Reboot", r.stdout)
            self.assertNotIn(op, h.logs())

    def test_admin_off_loopback_needs_tokens(self):
        import subprocess
        from hemsd import BIN_DIR
        r = subprocess.run([os.path.join(BIN_DIR, "hemsd"), "--admin-listen", "0.0.0.0:17999",
                            "--check-config"], capture_output=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"not a loopback address", r.stderr)


class DataModel(unittest.TestCase):
    def test_tasks_checked_against_the_model(self):
        from hemsd import SHARED
        files = ",".join(os.path.join(SHARED, "datamodels", f) for f in (
            "tr-181-2-17-0-cwmp-full.xml", "tr-196-2-1-2-cwmp-full.xml", "tr-098-1-8-0-full.xml"))
        with Hemsd("--set", "datamodel.files=" + files) as h:
            self.assertIn("data model loaded", h.logs())
            dev = "/api/v1/devices/00005A-HeNB-DM-1/tasks"
            def spv(name, value, **kw):
                p = dict(name=name, value=value, **kw)
                return api(h, "POST", dev, {"rpc": "SetParameterValues", "params": [p]})
            cases = [
                (spv("Device.DeviceInfo.NoSuch", "1"), "no such parameter"),
                (spv("Device.DeviceInfo.SoftwareVersion", "1"), "not writable"),
                (spv("Device.ManagementServer.PeriodicInformInterval", "0"), "outside"),
                (spv("Device.ManagementServer.PeriodicInformInterval", "300", type="xsd:int"), "type"),
                (spv("Device.ManagementServer.PeriodicInformEnable", "maybe"), "boolean"),
                (api(h, "POST", dev, {"rpc": "GetParameterValues", "names": ["Device.Nope."]}), "no such"),
                (api(h, "POST", dev, {"rpc": "AddObject", "object": "Device.DeviceInfo."}), "no such"),
            ]
            for (st, body), why in cases:
                self.assertEqual(st, 422, body)
                self.assertIn(why, body["error"]["message"])
            st, _ = spv("Device.ManagementServer.PeriodicInformInterval", 600)
            self.assertEqual(st, 201)
            st, _ = spv("Device.DeviceInfo.X_ACME_Knob", "on")  # vendor extension
            self.assertEqual(st, 201)
            # The model's xsi:type goes out on the wire.
            cpe = C.Cpe(h.cwmp_port)
            self.assertEqual(cpe.post(C.inform_xml(sn="DM-1")).status, 200)
            r = cpe.post()
            self.assertEqual(r.rpc()[0], "SetParameterValues")
            self.assertIn('xsi:type="xsd:unsignedInt">600<', r.body.decode())
            cpe.close()
            # A device that reports RootDataModelVersion 2.15 has no HostName (Device:2.16):
            # refused, naming both versions; one at 2.17 (and one that never said) gets it.
            for sn, ver in (("DM-OLD", "2.15"), ("DM-NEW", "2.17")):
                cpe = C.Cpe(h.cwmp_port)
                self.assertEqual(cpe.post(C.inform_xml(sn=sn, params=[
                    ("Device.RootDataModelVersion", ver, "xsd:string")])).status, 200)
                self.assertEqual(cpe.post().status, 204)
                cpe.close()
            host = {"rpc": "SetParameterValues", "params": [
                {"name": "Device.DeviceInfo.HostName", "value": "henb-1"}]}
            st, body = api(h, "POST", "/api/v1/devices/00005A-HeNB-DM-OLD/tasks", host)
            self.assertEqual(st, 422, body)
            self.assertIn("Device.DeviceInfo.HostName: added in data model version 2.16; the "
                          "device reports RootDataModelVersion 2.15", body["error"]["message"])
            st, body = api(h, "POST", "/api/v1/devices/00005A-HeNB-DM-OLD/tasks",
                           {"rpc": "AddObject", "object": "Device.DeviceInfo.LogRotate."})
            self.assertEqual(st, 422, body)
            for dev in ("DM-NEW", "DM-1"):
                st, body = api(h, "POST", "/api/v1/devices/00005A-HeNB-%s/tasks" % dev, host)
                self.assertEqual(st, 201, body)
        h2 = Hemsd("--set", "datamodel.files=/nonexistent.xml")
        h2.start(wait=False)
        self.assertEqual(h2.proc.wait(10), 1)
        self.assertIn("cannot load the data model", h2.logs())
        h2.log.close()
        h2.tmp.cleanup()


class Durability(unittest.TestCase):
    def test_acknowledged_informs_survive_kill9(self):
        h = Hemsd(shards=2).start()
        acked = []
        try:
            for i in range(30):
                cpe = C.Cpe(h.cwmp_port)
                r = cpe.post(C.inform_xml(sn="KILL-%d" % i))
                if r.status == 200:
                    acked.append(i)
                cpe.close()
            h.proc.send_signal(signal.SIGKILL)
            h.proc.wait()
            h.log.close()
            h2 = Hemsd(shards=1)
            h2.tmp.cleanup()
            h2.tmp = h.tmp
            h2.data_dir = h.data_dir
            h2.args[h2.args.index("--data-dir") + 1] = h.data_dir
            h2.log_path = h.log_path + ".2"
            h2.start()
            for i in acked:
                st, d = api(h2, "GET", "/api/v1/devices/00005A-HeNB-KILL-%d" % i)
                self.assertEqual(st, 200, "acknowledged Inform %d lost" % i)
            self.assertEqual(len(acked), 30)
            self.assertEqual(h2.stop(), 0)
            h2.log.close()
        finally:
            if h.proc.poll() is None:
                h.proc.kill()
            h.tmp.cleanup()


if __name__ == "__main__":
    main()
