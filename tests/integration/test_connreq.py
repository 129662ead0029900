"""Connection Request end to end: a task queued with "connection_request": true makes hemsd
send an HTTP GET with Digest authentication to the device's ConnectionRequestURL; a Python
HTTP server plays the CPE's listener (checks the Digest response with its own code) and, on a
valid request, runs a scripted CPE session that picks up the task. Refused and timeout cases
record "offline"/"timeout"; a 503 records "busy"; all are counted in /metrics."""
import hashlib
import http.server
import json
import os
import re
import socket
import subprocess
import threading
import time
import unittest

import cpe as C
from hemsd import BIN_DIR, Hemsd, free_port, http_request, main

USER, PASS, REALM = "acs", "s3cret", "HeNB-CR"


def api(h, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    st, _, b = http_request(h.admin_port, method, path, body=data,
                            headers={"Content-Type": "application/json"} if body is not None else None)
    return st, (json.loads(b) if b.strip() else None)


class CrListener(http.server.BaseHTTPRequestHandler):
    mode = "digest"  # or "busy"
    nonce = os.urandom(8).hex()
    on_valid = None
    valid = 0
    challenged = 0

    def log_message(self, *a):
        pass

    def do_GET(self):
        cls = type(self)
        if cls.mode == "busy":
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Digest "):
            cls.challenged += 1
            self.send_response(401)
            self.send_header("WWW-Authenticate",
                             'Digest realm="%s", nonce="%s", qop="auth", algorithm=MD5, opaque="op1"'
                             % (REALM, cls.nonce))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        f = dict(re.findall(r'(\w+)="?([^",]*)"?', auth[7:]))
        ha1 = hashlib.md5(("%s:%s:%s" % (USER, REALM, PASS)).encode()).hexdigest()
        ha2 = hashlib.md5(("GET:%s" % f.get("uri", "")).encode()).hexdigest()
        want = hashlib.md5(("%s:%s:%s:%s:%s:%s" % (ha1, cls.nonce, f.get("nc"), f.get("cnonce"),
                                                   f.get("qop"), ha2)).encode()).hexdigest()
        ok = (f.get("username") == USER and f.get("uri") == self.path and f.get("response") == want
              and f.get("opaque") == "op1")
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if ok:
            cls.valid += 1
            if cls.on_valid:
                threading.Thread(target=cls.on_valid).start()


def wait_for(fn, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    return fn()


class ConnReq(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = Hemsd(config="[cwmp]\ncr_username = %s\ncr_password = %s\ncr_timeout_ms = 700\n"
                      % (USER, PASS)).start()
        cls.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CrListener)
        cls.cr_port = cls.srv.server_address[1]
        threading.Thread(target=cls.srv.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.shutdown()
        cls.h.__exit__(None, None, None)

    def register(self, sn, url):
        c = C.Cpe(self.h.cwmp_port)
        r = c.post(C.inform_xml(sn=sn, events=("1 BOOT",), params=[
            ("Device.ManagementServer.ConnectionRequestURL", url, "xsd:string")]))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(c.post().status, 204)
        c.close()

    def last(self, dev):
        st, d = api(self.h, "GET", "/api/v1/devices/" + dev)
        self.assertEqual(st, 200)
        return d.get("connection_request")

    def test_digest_request_triggers_session(self):
        self.register("CR-1", "http://127.0.0.1:%d/cr/CR-1" % self.cr_port)
        got = {}

        def session():
            c = C.Cpe(self.h.cwmp_port)
            r = c.post(C.inform_xml(sn="CR-1", events=("6 CONNECTION REQUEST",)))
            r = c.post()
            got["rpc"] = r.rpc()[0] if r.status == 200 else r.status
            c.close()

        CrListener.on_valid = session
        st, t = api(self.h, "POST", "/api/v1/devices/00005A-HeNB-CR-1/tasks",
                    {"rpc": "GetParameterValues", "names": ["Device.DeviceInfo."],
                     "connection_request": True})
        self.assertEqual(st, 201, t)
        self.assertTrue(wait_for(lambda: "rpc" in got), "no session after the connection request")
        self.assertEqual(got["rpc"], "GetParameterValues")
        self.assertGreaterEqual(CrListener.challenged, 1)
        self.assertEqual(CrListener.valid, 1)
        cr = wait_for(lambda: self.last("00005A-HeNB-CR-1"))
        self.assertEqual(cr["last_result"], "requested")
        self.assertGreater(cr["at_ms"], 0)
        # The flag is not stored with the task.
        st, task = api(self.h, "GET", "/api/v1/devices/00005A-HeNB-CR-1/tasks/%d" % t["id"])
        self.assertNotIn("connection_request", json.dumps(task))
        st, e = api(self.h, "POST", "/api/v1/devices/00005A-HeNB-CR-1/tasks",
                    {"rpc": "Reboot", "connection_request": "yes"})
        self.assertEqual(st, 422)

    def test_wait_for_result(self):
        """POST with "wait_seconds": the answer comes when the task has run (200, with the
        CPE's result), or when the wait is over (202, the task still queued)."""
        dev = "00005A-HeNB-CR-5"
        self.register("CR-5", "http://127.0.0.1:%d/cr/CR-5" % self.cr_port)

        def session():
            c = C.Cpe(self.h.cwmp_port)
            c.post(C.inform_xml(sn="CR-5", events=("6 CONNECTION REQUEST",)))
            r = c.post()
            if r.status == 200 and r.rpc()[0] == "GetParameterValues":
                time.sleep(0.3)  # the device takes its time
                c.post(C.gpv_response(r.rpc()[1], [("Device.DeviceInfo.UpTime", "4242",
                                                     "xsd:unsignedInt")]))
            c.close()

        CrListener.on_valid = session
        body = json.dumps({"rpc": "GetParameterValues", "names": ["Device.DeviceInfo.UpTime"],
                           "connection_request": True, "wait_seconds": 20}).encode()
        t0 = time.time()
        st, hdrs, b = http_request(self.h.admin_port, "POST", "/api/v1/devices/%s/tasks" % dev,
                                   body=body, headers={"Content-Type": "application/json"},
                                   timeout=30)
        task = json.loads(b)
        self.assertEqual(st, 200, task)
        self.assertEqual(task["state"], "done")
        self.assertEqual(task["result"]["params"][0]["value"], "4242", task)
        self.assertLess(time.time() - t0, 15)
        loc = {k.lower(): v for k, v in hdrs.items()}.get("location")
        self.assertEqual(loc, "/api/v1/devices/%s/tasks/%d" % (dev, task["id"]))
        self.assertEqual(api(self.h, "GET", loc)[1]["state"], "done")
        # Nobody runs the task: the wait ends after 1 s with 202 and the queued task.
        CrListener.on_valid = None
        t0 = time.time()
        st, task = api(self.h, "POST", "/api/v1/devices/%s/tasks" % dev,
                       {"rpc": "Reboot", "wait_seconds": 1})
        self.assertEqual(st, 202, task)
        self.assertEqual((task["state"], task["wait"]), ("queued", "timeout"))
        self.assertGreaterEqual(time.time() - t0, 0.9)
        # hemsctl task --wait: exit status 4 while the task is still pending
        r = subprocess.run([os.path.join(BIN_DIR, "hemsctl"), "--admin", "127.0.0.1:%d" % self.h.admin_port,
                            "--json", "task", dev, '{"rpc":"Reboot"}', "--wait", "1"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertEqual(json.loads(r.stdout)["state"], "queued")
        for bad in (-1, 301, "5", 1.5):
            st, e = api(self.h, "POST", "/api/v1/devices/%s/tasks" % dev,
                        {"rpc": "Reboot", "wait_seconds": bad})
            self.assertEqual(st, 422, bad)
            self.assertIn("wait_seconds", e["error"]["message"])
        # A device id that needs escaping comes back percent-encoded in Location.
        st, hdrs, b = http_request(self.h.admin_port, "POST", "/api/v1/devices/a%20b%0D%0AX/tasks",
                                   body=b'{"rpc":"Reboot"}', headers={"Content-Type": "application/json"})
        self.assertEqual(st, 201, b)
        loc = {k.lower(): v for k, v in hdrs.items()}.get("location")
        self.assertTrue(loc.startswith("/api/v1/devices/a%20b%0D%0AX/tasks/"), loc)

    def test_refused_timeout_busy(self):
        closed = free_port()  # nothing listens
        self.register("CR-2", "http://127.0.0.1:%d/cr" % closed)
        mute = socket.socket()
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)  # accepts, never answers
        self.register("CR-3", "http://127.0.0.1:%d/cr" % mute.getsockname()[1])
        self.register("CR-4", "http://127.0.0.1:%d/cr" % self.cr_port)
        CrListener.mode = "busy"
        try:
            for sn in ("CR-2", "CR-3", "CR-4"):
                st, _ = api(self.h, "POST", "/api/v1/devices/00005A-HeNB-%s/tasks" % sn,
                            {"rpc": "Reboot", "connection_request": True})
                self.assertEqual(st, 201)
            self.assertEqual(wait_for(lambda: self.last("00005A-HeNB-CR-2"))["last_result"], "offline")
            self.assertEqual(wait_for(lambda: self.last("00005A-HeNB-CR-4"))["last_result"], "busy")
            # Timeout 700 ms, retried once.
            self.assertEqual(wait_for(lambda: self.last("00005A-HeNB-CR-3"))["last_result"], "timeout")
        finally:
            CrListener.mode = "digest"
            mute.close()
        m = self.h.metrics()
        for res in ("offline", "timeout", "busy"):
            self.assertGreaterEqual(m['hems_connreq_total{result="%s"}' % res], 1, res)
        self.assertGreaterEqual(m["hems_connreq_attempts_total"], 5)  # retries counted


if __name__ == "__main__":
    main()
