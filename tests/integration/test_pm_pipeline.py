#!/usr/bin/env python3
"""PM ingestion pipeline: upload (PUT, POST, multipart, gzip), spool, parse, store, query.

Counts of stored measurements are checked against an independent count taken from the
sample files (the same text-scanning rule as tests/unit/proto/test_pm.c).
"""
import glob
import gzip
import json
import os
import signal
import time
import unittest
import urllib.parse

from hemsd import SHARED, Hemsd, http_request, main

PM_DIR = os.path.join(SHARED, "pm")
# Same sender, beginTime and endTime as onap-C20190328...: a duplicate by the file header.
HEADER_DUP = "onap-lte-filter-test.xml"
EX = "example-both-forms-A20261126.1400+0000-1415+0000_HeNB-EX.xml"
HANDWRITTEN = "handwritten-A20261126.1400+0000-1415+0000_HeNB-000001.xml"


def samples():
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(PM_DIR, "*.xml")))


def read(name):
    with open(os.path.join(PM_DIR, name), "rb") as f:
        return f.read()


def count_expected(b):
    s = b.decode("utf-8", errors="replace")
    if "<PmFile" in s:
        end = s.find("</PmFile>")
        part = s[:end]
        return part.count("<V ") + part.count("<SV>")
    n = 0
    i = 0
    while True:
        i = s.find("<r", i)
        if i < 0:
            break
        if s[i + 2] in " >":
            t = s.index(">", i) + 1
            n += 1
            while s[t] != "<":
                n += s[t] == ","
                t += 1
        i += 2
    i = 0
    while True:
        i = s.find("<measResults>", i)
        if i < 0:
            break
        t = i + len("<measResults>")
        n += len(s[t:s.index("<", t)].split())
        i = t
    return n


def get_json(h, path):
    st, _, body = http_request(h.admin_port, "GET", path)
    assert st == 200, (st, body)
    return json.loads(body)


def files(h):
    return get_json(h, "/api/v1/pm/files")


def wait_files(h, n, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        f = files(h)
        if len(f["files"]) >= n and f["spool_files"] == 0:
            return {x["name"]: x for x in f["files"]}
        time.sleep(0.05)
    raise AssertionError("not ingested: %r\n%s" % (files(h), h.logs()))


def multipart(name, data, boundary="----hemsPMboundary42"):
    return (("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
             "Content-Type: application/xml\r\n\r\n" % (boundary, name)).encode() + data +
            ("\r\n--%s--\r\n" % boundary).encode(),
            "multipart/form-data; boundary=%s" % boundary)


class PmPipeline(unittest.TestCase):
    def test_every_sample_put_and_counts(self):
        with Hemsd() as h:
            for n in samples():
                st, _, body = http_request(h.cwmp_port, "PUT", "/pm/" + n, read(n))
                self.assertEqual(st, 201, body)
            names = [n for n in samples() if n != HEADER_DUP]
            got = wait_files(h, len(names))
            self.assertNotIn(HEADER_DUP, got)
            for n in names:
                self.assertEqual(got[n]["status"], "ingested", got[n])
                self.assertEqual(got[n]["measurements"], count_expected(read(n)), n)
            m = h.metrics()
            self.assertEqual(m["hems_pm_files_ingested_total"], len(names))
            self.assertEqual(m["hems_pm_uploads_duplicate_total"], 1)
            self.assertEqual(m["hems_pm_measurements_ingested_total"],
                             sum(count_expected(read(n)) for n in names))
            # a series query: cell 1 of the hand-written file, value 123 at 14:00 UTC
            q = urllib.parse.urlencode({"object": "ManagedElement=HeNB-000001/ENBFunction=1,EUtranCellFDD=1",
                                        "counter": "RRC.ConnEstabAtt.Sum"})
            j = get_json(h, "/api/v1/pm/series?" + q)
            self.assertEqual(j["points"], [{"start": 1795701600, "value": 123, "duration_s": 900,
                                            "suspect": False}])
            st, hd, body = http_request(h.admin_port, "GET", "/api/v1/pm/series?format=csv&" + q)
            self.assertEqual(st, 200)
            self.assertEqual(body.decode().splitlines(), ["start,value,duration_s,suspect",
                                                          "1795701600,123,900,0"])
            q2 = urllib.parse.urlencode({"object": "ManagedElement=HeNB-000001/ENBFunction=1,EUtranCellFDD=1",
                                         "counter": "RRC.ConnMean"})
            self.assertEqual(get_json(h, "/api/v1/pm/series?" + q2)["points"][0]["value"], 4.5)
            agg = get_json(h, "/api/v1/pm/aggregates")["counters"]
            self.assertGreaterEqual(agg["RRC.ConnEstabAtt.Sum"]["count"], 2)
            self.assertEqual(agg["RRC.ConnEstabAtt.Sum"]["max"], 123)

    def test_post_multipart_gzip_and_duplicates(self):
        with Hemsd() as h:
            data = read(HANDWRITTEN)
            std = "A20261126.1400+0000-1415+0000_HeNB-000001.xml"  # a TS 32.432 name
            st, _, _ = http_request(h.cwmp_port, "POST", "/pm/" + std, data)
            self.assertEqual(st, 201)
            wait_files(h, 1)
            # same name again: 200, not ingested twice
            st, _, _ = http_request(h.cwmp_port, "PUT", "/pm/" + std, data)
            self.assertEqual(st, 200)
            # same content under a nonconforming name: header identity (sender + period)
            st, _, _ = http_request(h.cwmp_port, "PUT", "/pm/upload.xml", data)
            self.assertEqual(st, 201)
            time.sleep(0.5)
            # multipart, gzip by Content-Encoding and by .gz name
            onap = "onap-A20181002.0000-1000-0015-1000_5G.xml"
            body, ct = multipart(onap, read(onap))
            st, _, b = http_request(h.cwmp_port, "POST", "/pm/", body, {"Content-Type": ct})
            self.assertEqual(st, 201, b)
            cm = "magma-enodebd-pm_file_example-CMCC-PmFile.xml"
            st, _, _ = http_request(h.cwmp_port, "PUT", "/pm/" + cm, gzip.compress(read(cm)),
                                    {"Content-Encoding": "gzip"})
            self.assertEqual(st, 201)
            ex = "example-both-forms-A20261126.1400+0000-1415+0000_HeNB-EX.xml"
            st, _, _ = http_request(h.cwmp_port, "PUT", "/pm/" + ex + ".gz", gzip.compress(read(ex)))
            self.assertEqual(st, 201)
            got = wait_files(h, 4)
            self.assertEqual(got[onap]["measurements"], count_expected(read(onap)))
            self.assertEqual(got[cm]["measurements"], count_expected(read(cm)))
            self.assertEqual(got[ex + ".gz"]["measurements"], count_expected(read(ex)))
            m = h.metrics()
            self.assertEqual(m["hems_pm_files_ingested_total"], 4)
            self.assertEqual(m["hems_pm_uploads_duplicate_total"], 2)
            self.assertEqual(m["hems_pm_measurements_ingested_total"],
                             count_expected(data) + sum(count_expected(read(n)) for n in (onap, cm, ex)))

    def test_malformed_and_truncated_quarantined(self):
        with Hemsd() as h:
            data = read(HANDWRITTEN)
            bad = "A20261126.1400+0000-1415+0000_HeNB-BAD.xml"
            trunc = "A20261126.1400+0000-1415+0000_HeNB-TRUNC.xml"
            st, _, _ = http_request(h.cwmp_port, "PUT", "/pm/" + bad, b"<measCollecFile><oops></measCollecFile>")
            self.assertEqual(st, 201)
            st, _, _ = http_request(h.cwmp_port, "PUT", "/pm/" + trunc, data[: len(data) // 2])
            self.assertEqual(st, 201)
            # the pipeline goes on after bad files
            st, _, _ = http_request(h.cwmp_port, "PUT", "/pm/" + HANDWRITTEN, data)
            self.assertEqual(st, 201)
            got = wait_files(h, 3)
            self.assertEqual(got[bad]["status"], "quarantined")
            self.assertEqual(got[trunc]["status"], "quarantined")
            self.assertTrue(got[trunc]["error"])
            self.assertEqual(got[HANDWRITTEN]["status"], "ingested")
            q = sorted(os.listdir(os.path.join(h.data_dir, "pm-quarantine")))
            self.assertEqual(len(q), 2)
            self.assertEqual(h.metrics()["hems_pm_files_quarantined_total"], 2)
            self.assertIn("pm file quarantined", h.logs())

    def test_spool_full_503(self):
        with Hemsd("--set", "pm.spool_max_bytes=100") as h:
            st, hd, _ = http_request(h.cwmp_port, "PUT", "/pm/" + HANDWRITTEN, read(HANDWRITTEN))
            self.assertEqual(st, 503)
            self.assertIn("retry-after", {k.lower() for k in hd})
            self.assertEqual(h.metrics()["hems_pm_uploads_rejected_full_total"], 1)

    def test_basic_auth(self):
        with Hemsd("--set", "pm.username=henb", "--set", "pm.password=s3cret") as h:
            st, _, _ = http_request(h.cwmp_port, "PUT", "/pm/" + HANDWRITTEN, read(HANDWRITTEN))
            self.assertEqual(st, 401)
            import base64
            a = "Basic " + base64.b64encode(b"henb:s3cret").decode()
            st, _, _ = http_request(h.cwmp_port, "PUT", "/pm/" + HANDWRITTEN, read(HANDWRITTEN),
                                    {"Authorization": a})
            self.assertEqual(st, 201)
            bad = "Basic " + base64.b64encode(b"henb:wrong").decode()
            st, _, _ = http_request(h.cwmp_port, "PUT", "/pm/x.xml", b"<x/>", {"Authorization": bad})
            self.assertEqual(st, 401)
            # Digest (RFC 7616, MD5, qop=auth) with the nonce from the challenge
            import hashlib
            import re
            st, hd, _ = http_request(h.cwmp_port, "PUT", "/pm/" + EX, read(EX))
            self.assertEqual(st, 401)
            m = re.search(r'nonce="([^"]+)"', hd["www-authenticate"])  # the last one: Digest
            self.assertIsNotNone(m, hd)
            nonce, uri = m.group(1), "/pm/" + EX
            md5 = lambda t: hashlib.md5(t.encode()).hexdigest()
            ha1 = md5("henb:hems:s3cret")
            ha2 = md5("PUT:" + uri)
            resp = md5("%s:%s:00000001:abcdef:auth:%s" % (ha1, nonce, ha2))
            dig = ('Digest username="henb", realm="hems", nonce="%s", uri="%s", qop=auth, '
                   'nc=00000001, cnonce="abcdef", response="%s", algorithm=MD5' % (nonce, uri, resp))
            st, _, _ = http_request(h.cwmp_port, "PUT", uri, read(EX), {"Authorization": dig})
            self.assertEqual(st, 201)
            wrong = dig.replace(resp, md5("nope"))
            st, _, _ = http_request(h.cwmp_port, "PUT", uri, read(EX), {"Authorization": wrong})
            self.assertEqual(st, 401)

    def test_kill9_after_201_loses_nothing(self):
        h1 = Hemsd().start()
        try:
            for n in samples():
                st, _, _ = http_request(h1.cwmp_port, "PUT", "/pm/" + n, read(n))
                self.assertEqual(st, 201)
            names = [n for n in samples() if n != HEADER_DUP]
            h1.proc.send_signal(signal.SIGKILL)
            h1.proc.wait()
            with Hemsd("--data-dir", h1.data_dir) as h2:
                got = wait_files(h2, len(names))
                for n in names:
                    self.assertEqual(got[n]["status"], "ingested")
                    self.assertEqual(got[n]["measurements"], count_expected(read(n)))
                self.assertEqual(os.listdir(os.path.join(h1.data_dir, "pm-spool")), [])
        finally:
            h1.log.close()
            h1.tmp.cleanup()


    def test_kill9_during_ingestion_of_concurrent_uploads(self):
        """Concurrent uploads share spool segments; a kill -9 right after the last 201 (files
        still being ingested, segments partly committed) loses none of them and ingests none
        twice."""
        import threading
        base = read(HANDWRITTEN)
        n = 48
        names = ["A20261126.1400+0000-1415+0000_HeNB-%06d.xml" % (i + 100) for i in range(n)]
        bodies = {nm: base.replace(b"HeNB-000001", b"HeNB-%06d" % (i + 100))
                  for i, nm in enumerate(names)}
        h1 = Hemsd().start()
        try:
            errors = []

            def up(part):
                for nm in part:
                    st, _, _ = http_request(h1.cwmp_port, "PUT", "/pm/" + nm, bodies[nm])
                    if st != 201:
                        errors.append((nm, st))
            ts = [threading.Thread(target=up, args=(names[k::8],)) for k in range(8)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            h1.proc.send_signal(signal.SIGKILL)
            h1.proc.wait()
            self.assertEqual(errors, [])
            with Hemsd("--data-dir", h1.data_dir) as h2:
                got = wait_files(h2, n)
                for nm in names:
                    self.assertEqual(got[nm]["status"], "ingested", nm)
                    self.assertEqual(got[nm]["measurements"], 16, nm)
                self.assertEqual(os.listdir(os.path.join(h1.data_dir, "pm-spool")), [])
                q = urllib.parse.urlencode({"object": "ManagedElement=HeNB-000147/ENBFunction=1,"
                                                      "EUtranCellFDD=1",
                                            "counter": "RRC.ConnEstabAtt.Sum"})
                self.assertEqual(get_json(h2, "/api/v1/pm/series?" + q)["points"],
                                 [{"start": 1795701600, "value": 123, "duration_s": 900,
                                   "suspect": False}])
        finally:
            h1.log.close()
            h1.tmp.cleanup()

if __name__ == "__main__":
    main()
