"""File server and configuration by file Download (TS 32.593 5.2.2) against a real hemsd:
upload through the API, a Download task naming the file, the CPE fetching it with the
credentials the RPC carried (Basic, Digest, Range, HEAD), TransferComplete with success, with
a fault, and after a reboot (`1 BOOT` + `M Download`), the applied record, and the bad-input
rows of docs/security.md (traversal, 413, 401)."""
import base64
import hashlib
import json
import os
import re
import subprocess
import tempfile
import unittest
import xml.etree.ElementTree as ET

import cpe as C
from hemsd import BIN_DIR, Hemsd, http_request, main

CFG = b'<?xml version="1.0"?><config><cell id="1"><earfcn>6300</earfcn></cell></config>\n' * 40


def api(h, method, path, body=None, raw=None, headers=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    hd = dict(headers or {})
    if body is not None:
        hd["Content-Type"] = "application/json"
    st, _, b = http_request(h.admin_port, method, path, body=data, headers=hd)
    try:
        return st, (json.loads(b) if b.strip() else None)
    except ValueError:
        return st, b


def download_args(reply):
    """The Download RPC's fields from the ACS's envelope."""
    _, mid, el = reply.rpc()
    return mid, {e.tag.split("}")[-1]: (e.text or "") for e in el}


def digest_get(port, path, user, pw, extra=None):
    st, hd, _ = http_request(port, "GET", path)
    assert st == 401, st
    chal = [v for v in [hd.get("www-authenticate", "")] if v]
    # the server sends Basic then Digest: read_response keeps the last header of a name
    ch = dict(re.findall(r'(\w+)="?([^",]*)"?', chal[0]))
    ha1 = hashlib.md5(("%s:%s:%s" % (user, ch["realm"], pw)).encode()).hexdigest()
    ha2 = hashlib.md5(("GET:%s" % path).encode()).hexdigest()
    cn = os.urandom(8).hex()
    resp = hashlib.md5(("%s:%s:00000001:%s:auth:%s" % (ha1, ch["nonce"], cn, ha2)).encode()).hexdigest()
    auth = ('Digest username="%s", realm="%s", nonce="%s", uri="%s", qop=auth, nc=00000001, '
            'cnonce="%s", response="%s", algorithm=MD5' % (user, ch["realm"], ch["nonce"], path, cn, resp))
    h = {"Authorization": auth}
    h.update(extra or {})
    return http_request(port, "GET", path, headers=h)


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}


class Files(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = Hemsd(config="[files]\nmax_bytes = 100000\n").start()

    @classmethod
    def tearDownClass(cls):
        cls.h.__exit__(None, None, None)

    def upload(self, name, data, query="?type=3&username=cpe"):
        st, j = api(self.h, "PUT", "/api/v1/files/%s%s" % (name, query), raw=data)
        self.assertIn(st, (200, 201), j)
        return j

    def session(self, sn, events=("2 PERIODIC",), **kw):
        cpe = C.Cpe(self.h.cwmp_port)
        r = cpe.post(C.inform_xml(sn=sn, events=events, **kw))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.rpc()[0], "InformResponse")
        return cpe

    def queue(self, dev, body):
        st, t = api(self.h, "POST", "/api/v1/devices/%s/tasks" % dev, body)
        self.assertEqual(st, 201, t)
        return t["id"]

    def task(self, dev, tid):
        st, t = api(self.h, "GET", "/api/v1/devices/%s/tasks/%d" % (dev, tid))
        self.assertEqual(st, 200, t)
        return t

    def applied(self, dev):
        st, j = api(self.h, "GET", "/api/v1/files?device=%s" % dev)
        self.assertEqual(st, 200, j)
        return j["applied"]

    def fetch_with(self, url, user, pw):
        path = url.split("127.0.0.1:%d" % self.h.cwmp_port, 1)[1]
        return path, http_request(self.h.cwmp_port, "GET", path, headers=basic(user, pw))

    def test_upload_list_get_delete(self):
        j = self.upload("list-me.xml", b"<a/>", query="?type=1")
        self.assertEqual(j["type"], "1 Firmware Upgrade Image")
        self.assertEqual(j["size"], 4)
        self.assertEqual(j["sha256"], hashlib.sha256(b"<a/>").hexdigest())
        self.assertNotIn("password", j)  # no credentials asked for
        st, lst = api(self.h, "GET", "/api/v1/files")
        self.assertEqual(st, 200)
        names = [f["name"] for f in lst["files"]]
        self.assertIn("list-me.xml", names)
        for f in lst["files"]:
            self.assertNotIn("ha1", f)
            self.assertNotIn("cred_id", f)
        st, one = api(self.h, "GET", "/api/v1/files/list-me.xml")
        self.assertEqual(st, 200)
        self.assertTrue(one["url"].endswith("/files/list-me.xml"), one)
        # served without credentials, whole
        st, hd, b = http_request(self.h.cwmp_port, "GET", "/files/list-me.xml")
        self.assertEqual((st, b), (200, b"<a/>"))
        self.assertEqual(hd["accept-ranges"], "bytes")
        # replacing keeps one entry and serves the new bytes
        j = self.upload("list-me.xml", b"<b></b>", query="?type=1")
        self.assertEqual(len([f for f in api(self.h, "GET", "/api/v1/files")[1]["files"]
                              if f["name"] == "list-me.xml"]), 1)
        # a protected file keeps its password when replaced by the same user
        p1 = self.upload("keep.xml", b"1", query="?username=u")["password"]
        self.assertEqual(self.upload("keep.xml", b"2", query="?username=u")["password"], p1)
        self.assertNotEqual(self.upload("keep.xml", b"3", query="?username=v")["password"], p1)
        st, hd, b = http_request(self.h.cwmp_port, "GET", "/files/list-me.xml")
        self.assertEqual(b, b"<b></b>")
        self.assertEqual(api(self.h, "DELETE", "/api/v1/files/list-me.xml")[0], 204)
        self.assertEqual(api(self.h, "DELETE", "/api/v1/files/list-me.xml")[0], 404)
        self.assertEqual(http_request(self.h.cwmp_port, "GET", "/files/list-me.xml")[0], 404)
        # the blob is gone from disk too (no other file refers to it)
        blob = os.path.join(self.h.data_dir, "files", hashlib.sha256(b"<b></b>").hexdigest())
        self.assertFalse(os.path.exists(blob))

    def test_download_task_fetch_and_transfer_complete(self):
        up = self.upload("henb-cfg.xml", CFG)
        dev, sn = "00005A-HeNB-FDL-1", "FDL-1"
        tid = self.queue(dev, {"rpc": "Download", "file": "henb-cfg.xml"})
        t = self.task(dev, tid)
        self.assertEqual(t["args"].get("password", ""), "")  # never stored with the task
        cpe = self.session(sn)
        r = cpe.post()
        self.assertEqual(r.rpc()[0], "Download")
        mid, a = download_args(r)
        self.assertEqual(a["CommandKey"], "task-%d" % tid)
        self.assertEqual(a["FileType"], "3 Vendor Configuration File")
        self.assertEqual(int(a["FileSize"]), len(CFG))
        self.assertEqual(a["Username"], "cpe")
        self.assertEqual(a["Password"], up["password"])
        self.assertEqual(a["URL"], "http://127.0.0.1:%d/files/henb-cfg.xml" % self.h.cwmp_port)
        # the CPE fetches it: Basic, then Digest with a Range, then HEAD
        path, (st, hd, b) = self.fetch_with(a["URL"], a["Username"], a["Password"])
        self.assertEqual((st, b), (200, CFG))
        st, hd, b = digest_get(self.h.cwmp_port, path, a["Username"], a["Password"],
                               extra={"Range": "bytes=10-19"})
        self.assertEqual(st, 206)
        self.assertEqual(b, CFG[10:20])
        self.assertEqual(hd["content-range"], "bytes 10-19/%d" % len(CFG))
        st, hd, b = http_request(self.h.cwmp_port, "GET", path,
                                 headers=dict(basic("cpe", a["Password"]), Range="bytes=-5"))
        self.assertEqual((st, b), (206, CFG[-5:]))
        # validators: If-None-Match -> 304; If-Range with another ETag -> whole file
        etag = '"%s"' % hashlib.sha256(CFG).hexdigest()
        st, hd, b = http_request(self.h.cwmp_port, "GET", path,
                                 headers=dict(basic("cpe", a["Password"]), **{"If-None-Match": etag}))
        self.assertEqual((st, b, hd["etag"]), (304, b"", etag))
        st, hd, b = http_request(self.h.cwmp_port, "GET", path,
                                 headers=dict(basic("cpe", a["Password"]), Range="bytes=0-9",
                                              **{"If-Range": '"0000"'}))
        self.assertEqual((st, b), (200, CFG))
        st, hd, b = http_request(self.h.cwmp_port, "GET", path,
                                 headers=dict(basic("cpe", a["Password"]), Range="bytes=0-9",
                                              **{"If-Range": etag}))
        self.assertEqual((st, b), (206, CFG[:10]))
        st, hd, b = http_request(self.h.cwmp_port, "HEAD", path, headers=basic("cpe", a["Password"]))
        self.assertEqual((st, int(hd["content-length"]), b), (200, len(CFG), b""))
        st, hd, _ = http_request(self.h.cwmp_port, "GET", path,
                                 headers=dict(basic("cpe", a["Password"]), Range="bytes=%d-" % len(CFG)))
        self.assertEqual(st, 416)
        self.assertEqual(hd["content-range"], "bytes */%d" % len(CFG))
        # accepted, transfer pending
        r = cpe.post(C.status_response("DownloadResponse", mid, status=1,
                                       extra="<StartTime>0001-01-01T00:00:00Z</StartTime>"
                                             "<CompleteTime>0001-01-01T00:00:00Z</CompleteTime>"))
        self.assertEqual(r.status, 204)
        cpe.close()
        self.assertEqual(self.task(dev, tid)["state"], "sent")
        self.assertEqual(self.applied(dev), [])
        # TransferComplete in a later session
        cpe = self.session(sn, events=("7 TRANSFER COMPLETE",))
        r = cpe.post(C.transfer_complete("tc-1", "task-%d" % tid))
        self.assertEqual(r.rpc()[0], "TransferCompleteResponse")
        self.assertEqual(cpe.post().status, 204)
        cpe.close()
        t = self.task(dev, tid)
        self.assertEqual((t["state"], t["fault_code"]), ("done", 0))
        ap = self.applied(dev)
        self.assertEqual(len(ap), 1)
        self.assertEqual((ap[0]["file"], ap[0]["task"], ap[0]["sha256"]),
                         ("henb-cfg.xml", tid, hashlib.sha256(CFG).hexdigest()))

    def test_failed_download_changes_nothing_applied(self):
        self.upload("good.xml", b"<good/>")
        self.upload("bad.xml", b"<bad/>")
        dev, sn = "00005A-HeNB-FDL-2", "FDL-2"
        ok = self.queue(dev, {"rpc": "Download", "file": "good.xml"})
        cpe = self.session(sn)
        mid, a = download_args(cpe.post())
        cpe.post(C.status_response("DownloadResponse", mid, status=1))
        cpe.close()
        cpe = self.session(sn, events=("7 TRANSFER COMPLETE",))
        cpe.post(C.transfer_complete("tc-1", "task-%d" % ok))
        cpe.post()
        cpe.close()
        bad = self.queue(dev, {"rpc": "Download", "file": "bad.xml"})
        cpe = self.session(sn)
        mid, a = download_args(cpe.post())
        self.assertEqual(cpe.post(C.status_response("DownloadResponse", mid, status=1)).status, 204)
        # the next session on the same connection reports 9010 Download failure
        r = cpe.post(C.inform_xml(sn=sn, events=("7 TRANSFER COMPLETE",)))
        self.assertEqual(r.rpc()[0], "InformResponse")
        r = cpe.post(C.transfer_complete("tc-2", "task-%d" % bad, fault_code=9010))
        self.assertEqual(r.rpc()[0], "TransferCompleteResponse")
        self.assertEqual(cpe.post().status, 204)
        cpe.close()
        t = self.task(dev, bad)
        self.assertEqual((t["state"], t["fault_code"]), ("failed", 9010))
        self.assertEqual(t["result"]["fault"]["code"], 9010)
        ap = self.applied(dev)
        self.assertEqual([(x["file"], x["task"]) for x in ap], [("good.xml", ok)])

    def test_transfer_complete_after_reboot(self):
        self.upload("reboot.xml", CFG[:100])
        dev, sn = "00005A-HeNB-FDL-3", "FDL-3"
        tid = self.queue(dev, {"rpc": "Download", "file": "reboot.xml", "delay_seconds": 0})
        cpe = self.session(sn)
        mid, a = download_args(cpe.post())
        self.assertEqual(self.fetch_with(a["URL"], a["Username"], a["Password"])[1][0], 200)
        cpe.post(C.status_response("DownloadResponse", mid, status=1))
        cpe.close()
        # the CPE applies the configuration and reboots
        cpe = self.session(sn, events=("1 BOOT", "7 TRANSFER COMPLETE", "M Download"),
                           command_keys={"M Download": "task-%d" % tid})
        r = cpe.post(C.transfer_complete("tc-9", "task-%d" % tid))
        self.assertEqual(r.rpc()[0:2], ("TransferCompleteResponse", "tc-9"))
        self.assertEqual(cpe.post().status, 204)
        cpe.close()
        self.assertEqual(self.task(dev, tid)["state"], "done")
        self.assertEqual([x["file"] for x in self.applied(dev)], ["reboot.xml"])

    def test_firmware_download_status_zero(self):
        self.upload("fw.bin", b"\x7fELF" + bytes(range(256)) * 4, query="?type=1")
        dev, sn = "00005A-HeNB-FDL-4", "FDL-4"
        tid = self.queue(dev, {"rpc": "Download", "file": "fw.bin"})
        cpe = self.session(sn)
        mid, a = download_args(cpe.post())
        self.assertEqual(a["FileType"], "1 Firmware Upgrade Image")
        self.assertEqual(a["Username"], "")  # no credentials asked for at upload
        cpe.post(C.status_response("DownloadResponse", mid, status=0))
        cpe.close()
        self.assertEqual(self.task(dev, tid)["state"], "done")
        self.assertEqual([x["file_type"] for x in self.applied(dev)], ["1 Firmware Upgrade Image"])

    def test_task_errors(self):
        dev = "00005A-HeNB-FDL-E"
        for body in ({"rpc": "Download", "file": "nope.xml"},
                     {"rpc": "Download", "file": "../etc/passwd"},
                     {"rpc": "Download", "file": "x.xml", "url": "http://x/"},
                     {"rpc": "Upload", "file": "x.xml", "file_type": "1", "url": "http://x/"},
                     {"rpc": "Download", "url": "http://x/", "file_type": "3 Vendor Configuration File",
                      "cred_id": "00"}):
            st, j = api(self.h, "POST", "/api/v1/devices/%s/tasks" % dev, body)
            self.assertEqual(st, 422, (body, j))
            self.assertEqual(j["error"]["code"], "invalid_task")

    # ---- bad-input rows of docs/security.md ----

    def test_traversal_refused(self):
        self.upload("t.xml", b"<t/>", query="")
        secret = os.path.join(self.h.data_dir, "files", ".secret")
        self.assertTrue(os.path.exists(secret))
        # device ids are not prefixes of each other in the applied records
        self.assertEqual(api(self.h, "GET", "/api/v1/files?device=00005A-HeNB-FDL")[1]["applied"], [])
        for p in ("/files/../store/data.mdb", "/files/..%2fstore%2fdata.mdb", "/files/.secret",
                  "/files/%2e%2e/hemsd.log", "/files/a/../t.xml", "/files/", "/files/t.xml%00",
                  "/files//etc/passwd", "/files/" + hashlib.sha256(b"<t/>").hexdigest()):
            st, _, b = http_request(self.h.cwmp_port, "GET", p)
            self.assertIn(st, (400, 404), p)
            self.assertNotIn(b"<t/>", b)
        for p in ("/api/v1/files/..", "/api/v1/files/.secret", "/api/v1/files/a%2fb",
                  "/api/v1/files/" + "x" * 129):
            st, j = api(self.h, "PUT", p, raw=b"x")
            self.assertEqual(st, 400, p)
            self.assertEqual(j["error"]["code"], "bad_name")
        self.assertEqual(http_request(self.h.cwmp_port, "GET", "/files/t.xml")[0], 200)

    def test_oversized_upload_refused(self):
        st, j = api(self.h, "PUT", "/api/v1/files/big.bin", raw=b"x" * 100001)
        self.assertEqual(st, 413)
        self.assertEqual(j["error"]["code"], "too_large")
        self.assertEqual(api(self.h, "GET", "/api/v1/files/big.bin")[0], 404)
        st, j = api(self.h, "PUT", "/api/v1/files/e.bin", raw=b"")
        self.assertEqual(st, 422)
        st, j = api(self.h, "PUT", "/api/v1/files/e.bin?type=9", raw=b"x")
        self.assertEqual(st, 422)
        self.assertEqual(api(self.h, "POST", "/api/v1/files/e.bin", raw=b"x")[0], 405)

    def test_wrong_credentials_refused(self):
        j = self.upload("secret.xml", b"<s/>")
        before = self.h.metrics()["hems_files_auth_failures_total"]
        for h in ({}, basic("cpe", "wrong"), basic("other", j["password"]),
                  {"Authorization": "Bearer x"}, {"Authorization": "Basic !!!"}):
            st, hd, b = http_request(self.h.cwmp_port, "GET", "/files/secret.xml", headers=h)
            self.assertEqual(st, 401, h)
            self.assertIn("realm=", hd["www-authenticate"])
            self.assertNotIn(b"<s/>", b)
        self.assertEqual(http_request(self.h.cwmp_port, "HEAD", "/files/secret.xml")[0], 401)
        st, _, b = digest_get(self.h.cwmp_port, "/files/secret.xml", "cpe", "wrong")
        self.assertEqual(st, 401)
        self.assertGreaterEqual(self.h.metrics()["hems_files_auth_failures_total"], before + 6)
        st, _, b = http_request(self.h.cwmp_port, "GET", "/files/secret.xml",
                                headers=basic("cpe", j["password"]))
        self.assertEqual((st, b), (200, b"<s/>"))
        self.assertEqual(http_request(self.h.cwmp_port, "PUT", "/files/secret.xml", body=b"x")[0], 405)


class Hemsctl(unittest.TestCase):
    def test_files_commands(self):
        with Hemsd() as h:
            def ctl(*args):
                r = subprocess.run([os.path.join(BIN_DIR, "hemsctl"), "--admin", "127.0.0.1:%d" % h.admin_port]
                                   + list(args), capture_output=True, timeout=30)
                return r.returncode, r.stdout.decode(), r.stderr.decode()
            with tempfile.NamedTemporaryFile(suffix=".xml") as f:
                f.write(CFG)
                f.flush()
                rc, out, err = ctl("files", "upload", f.name, "ctl.xml", "type=3", "username=cpe-1")
                self.assertEqual(rc, 0, err)
                self.assertRegex(out, r"password\s+[0-9a-f]{32}")
                self.assertRegex(out, r"username\s+cpe-1")
                rc, out, err = ctl("--json", "files", "upload", f.name, "type=1")
                self.assertEqual(rc, 0, err)
                j = json.loads(out)
                self.assertEqual((j["name"], j["type"], j["size"]),
                                 (os.path.basename(f.name), "1 Firmware Upgrade Image", len(CFG)))
            rc, out, _ = ctl("files", "list")
            self.assertEqual(rc, 0)
            self.assertEqual(out.splitlines()[0].split()[:4], ["NAME", "TYPE", "SIZE", "SHA256"])
            row = [l for l in out.splitlines() if l.startswith("ctl.xml")][0]
            self.assertIn("3 Vendor Configuration File", row)
            self.assertIn(str(len(CFG)), row)
            rc, out, _ = ctl("--json", "files", "list")
            self.assertEqual(len(json.loads(out)["files"]), 2)
            rc, out, _ = ctl("files", "show", "ctl.xml")
            self.assertIn("/files/ctl.xml", out)
            rc, out, _ = ctl("files", "applied", "00005A-HeNB-NONE")
            self.assertEqual((rc, out.split()[:2]), (0, ["FILE", "TYPE"]))
            self.assertEqual(ctl("files", "delete", "ctl.xml")[0], 0)
            rc, _, err = ctl("files", "delete", "ctl.xml")
            self.assertEqual(rc, 1)
            self.assertIn("404 not_found", err)
            self.assertEqual(ctl("files", "upload", "/nonexistent/x")[0], 3)
            self.assertEqual(ctl("files", "bogus")[0], 2)
            rc, _, err = ctl("files", "upload", "/etc/hostname", "../x")
            self.assertEqual(rc, 1)
            self.assertIn("bad_name", err)


class FilesShed(unittest.TestCase):
    def test_download_burst_beyond_inflight_cap(self):
        import threading
        with Hemsd(config="[files]\nmax_inflight_bytes = 1\n[http]\nmax_body_bytes = 2000000\n") as h:
            big = os.urandom(1 << 20)
            st, _ = api(h, "PUT", "/api/v1/files/big.bin", raw=big)
            self.assertEqual(st, 201)
            res = []

            def get():
                st, hd, b = http_request(h.cwmp_port, "GET", "/files/big.bin", timeout=30)
                res.append((st, hd.get("retry-after"), b == big))
            ts = [threading.Thread(target=get) for _ in range(24)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            ok = [r for r in res if r[0] == 200]
            shed = [r for r in res if r[0] == 503]
            self.assertEqual(len(ok) + len(shed), 24, res)
            self.assertTrue(ok and all(r[2] for r in ok))  # one is always let through
            self.assertTrue(all(r[1] == "5" for r in shed))
            self.assertEqual(h.metrics()["hems_files_shed_total"], len(shed))
            self.assertEqual(h.metrics()["hems_files_inflight_bytes"], 0)


class FilesDurable(unittest.TestCase):
    def test_files_survive_restart_and_api_roles(self):
        tok_r, tok_o = "reader-token", "operator-token"
        cfg = "[api]\nreader_token_sha256 = %s\noperator_token_sha256 = %s\n" % (
            hashlib.sha256(tok_r.encode()).hexdigest(), hashlib.sha256(tok_o.encode()).hexdigest())
        h = Hemsd(config=cfg)
        h.start()
        try:
            auth_o = {"Authorization": "Bearer " + tok_o}
            auth_r = {"Authorization": "Bearer " + tok_r}
            self.assertEqual(api(h, "PUT", "/api/v1/files/x.xml", raw=b"<x/>")[0], 401)
            self.assertEqual(api(h, "PUT", "/api/v1/files/x.xml", raw=b"<x/>", headers=auth_r)[0], 403)
            st, j = api(h, "PUT", "/api/v1/files/x.xml?username=u", raw=b"<x/>", headers=auth_o)
            self.assertEqual(st, 201, j)
            self.assertEqual(api(h, "GET", "/api/v1/files", headers=auth_r)[0], 200)
            self.assertEqual(api(h, "DELETE", "/api/v1/files/x.xml", headers=auth_r)[0], 403)
            h.stop()
            # an interrupted upload and an orphan blob are swept at the next start
            fdir = os.path.join(h.data_dir, "files")
            orphan = os.path.join(fdir, "ab" * 32)
            for p in (orphan, os.path.join(fdir, ".tmp-" + "cd" * 32)):
                with open(p, "wb") as f:
                    f.write(b"junk")
            h.start()
            st, _, b = http_request(h.cwmp_port, "GET", "/files/x.xml", headers=basic("u", j["password"]))
            self.assertEqual((st, b), (200, b"<x/>"))  # same password after a restart
            self.assertEqual(sorted(os.listdir(fdir)), sorted([".secret", hashlib.sha256(b"<x/>").hexdigest()]))
        finally:
            h.__exit__(None, None, None)


if __name__ == "__main__":
    main()
