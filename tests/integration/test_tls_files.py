"""The file server and the PM upload endpoint over HTTPS (server.cwmps_listen): a HeNB with
its device certificate fetches a configuration file with the Download's credentials
(Basic and Digest, Range) and uploads a PM file, exactly as on the plain listener; the
configured files.base_url is what Download tasks carry."""
import base64
import hashlib
import http.client
import json
import os
import re
import time
import unittest

import test_tls as T
from hemsd import SHARED, Hemsd, http_request, main

CFG = b'<?xml version="1.0"?><config><cell id="1"><earfcn>6300</earfcn></cell></config>\n' * 20
PM = "handwritten-A20261126.1400+0000-1415+0000_HeNB-000001.xml"


def setUpModule():
    T.setUpModule()


def tearDownModule():
    T.tearDownModule()


class TlsFiles(unittest.TestCase):
    def https(self, method, path, body=None, headers=None):
        c = http.client.HTTPSConnection("127.0.0.1", self.tport, timeout=10,
                                        context=T.client_ctx("SN0001"))
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        c.close()
        return out

    def test_download_and_pm_upload_over_tls(self):
        self.tport = T.free_port()
        base = "https://localhost:%d/files/" % self.tport
        conf = T.tls_config(self.tport) + "[files]\nbase_url = %s\n" % base
        with Hemsd(config=conf) as h:
            st, _, b = http_request(h.admin_port, "PUT", "/api/v1/files/cell.xml?type=3&username=cpe",
                                    body=CFG)
            self.assertIn(st, (200, 201), b)
            pw = json.loads(b)["password"]
            st, _, b = http_request(h.admin_port, "GET", "/api/v1/files/cell.xml")
            self.assertEqual(json.loads(b)["url"], base + "cell.xml")
            # Basic
            auth = "Basic " + base64.b64encode(("cpe:%s" % pw).encode()).decode()
            st, hd, body = self.https("GET", "/files/cell.xml", headers={"Authorization": auth})
            self.assertEqual((st, body), (200, CFG))
            st, hd, body = self.https("GET", "/files/cell.xml",
                                      headers={"Authorization": auth, "Range": "bytes=10-19"})
            self.assertEqual((st, body), (206, CFG[10:20]))
            # Digest
            st, hd, _ = self.https("GET", "/files/cell.xml")
            self.assertEqual(st, 401)
            ch = dict(re.findall(r'(\w+)="?([^",]*)"?', hd["www-authenticate"]))
            self.assertIn("nonce", ch, hd["www-authenticate"])
            ha1 = hashlib.md5(("cpe:%s:%s" % (ch["realm"], pw)).encode()).hexdigest()
            ha2 = hashlib.md5(b"GET:/files/cell.xml").hexdigest()
            cn = os.urandom(8).hex()
            resp = hashlib.md5(("%s:%s:00000001:%s:auth:%s" % (ha1, ch["nonce"], cn, ha2)).encode()).hexdigest()
            dig = ('Digest username="cpe", realm="%s", nonce="%s", uri="/files/cell.xml", qop=auth, '
                   'nc=00000001, cnonce="%s", response="%s", algorithm=MD5' % (ch["realm"], ch["nonce"], cn, resp))
            st, _, body = self.https("GET", "/files/cell.xml", headers={"Authorization": dig})
            self.assertEqual((st, body), (200, CFG))
            # a wrong password is refused over TLS too
            bad = "Basic " + base64.b64encode(b"cpe:wrong").decode()
            self.assertEqual(self.https("GET", "/files/cell.xml", headers={"Authorization": bad})[0], 401)
            # PM upload over TLS, ingested like any other
            with open(os.path.join(SHARED, "pm", PM), "rb") as f:
                data = f.read()
            st, _, body = self.https("PUT", "/pm/" + PM, body=data)
            self.assertEqual(st, 201, body)
            deadline = time.time() + 20
            while time.time() < deadline:
                st, _, b = http_request(h.admin_port, "GET", "/api/v1/pm/files")
                files = {f["name"]: f for f in json.loads(b)["files"]}
                if files.get(PM, {}).get("status") == "ingested":
                    break
                time.sleep(0.1)
            self.assertEqual(files[PM]["status"], "ingested", files.get(PM))


if __name__ == "__main__":
    main()
