"""Disk full, for real: hemsd's data folder sits on a small tmpfs mounted in a private mount
namespace (unshare -rm, no root needed). The test fills the filesystem, checks that Informs get
fault 8005 with a Retry-After (never an InformResponse for data that was not stored, never a
crash), that the northbound API still reads, that the episode shows in /metrics and is logged
once; then frees space and checks that writes succeed again without a restart.
Skips (77) where user namespaces are not available."""
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

IN_NS = os.environ.get("HEMS_DISK_FULL_NS") == "1"

if not IN_NS:
    if shutil.which("unshare") is None:
        print("unshare not found: skipping")
        raise SystemExit(77)
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        print("user namespaces unavailable: skipping (%s)" % probe.stderr.decode().strip())
        raise SystemExit(77)
    env = dict(os.environ, HEMS_DISK_FULL_NS="1")
    os.execvpe("unshare", ["unshare", "-rm", sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)

import cpe as C  # noqa: E402
from hemsd import Hemsd, http_request, main  # noqa: E402

FS_BYTES = 16 << 20


def api_get(h, path):
    st, _, b = http_request(h.admin_port, "GET", path)
    return st, (json.loads(b) if b.strip() else None)


def big_params(n, tag):
    return [("Device.X_TEST.Obj.%d.Value" % i, (tag * 40)[:200], "xsd:string") for i in range(n)]


class DiskFull(unittest.TestCase):
    def setUp(self):
        self.mnt = tempfile.mkdtemp(prefix="hems-diskfull-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d" % FS_BYTES, "tmpfs", self.mnt], check=True)
        self.ballast = os.path.join(self.mnt, "ballast")

    def tearDown(self):
        subprocess.run(["umount", "-l", self.mnt])
        os.rmdir(self.mnt)

    def fill(self):
        """Writes ballast until the filesystem refuses even a 512-byte write."""
        fd = os.open(self.ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            size = 1 << 20
            while size >= 512:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as e:
                    self.assertEqual(e.errno, errno.ENOSPC)
                    size //= 2
        finally:
            os.close(fd)

    def inform(self, h, sn, nparams, tag):
        cpe = C.Cpe(h.cwmp_port)
        try:
            r = cpe.post(C.inform_xml(sn=sn, params=big_params(nparams, tag)))
            if r.status == 200 and r.rpc()[0] == "InformResponse":
                self.assertEqual(cpe.post().status, 204)
            return r
        finally:
            cpe.close()

    def test_disk_full_refuses_writes_serves_reads_recovers(self):
        data = os.path.join(self.mnt, "data")
        # small initial map so the test also crosses a map growth; no PM threads needed
        with Hemsd("--data-dir", data, "--set", "store.map_size_mb=4",
                   "--set", "admission.retry_after_s=4") as h:
            r = self.inform(h, "DF-OK", 20, "a")
            self.assertEqual(r.rpc()[0], "InformResponse")
            st, d = api_get(h, "/api/v1/devices/00005A-HeNB-DF-OK")
            self.assertEqual(st, 200, d)

            self.fill()
            # new devices with many parameters need new pages: the commit hits ENOSPC
            faults = 0
            for i in range(40):
                r = self.inform(h, "DF-%d" % i, 150, "b")
                self.assertEqual(r.status, 200, r.body)
                name = r.rpc()[0]
                if name == "Fault":
                    self.assertEqual(r.fault_code(), 8005)
                    ra = int(r.headers["retry-after"])
                    self.assertTrue(2 <= ra <= 6, ra)
                    faults += 1
                    # not acknowledged, so not stored
                    st, _ = api_get(h, "/api/v1/devices/00005A-HeNB-DF-%d" % i)
                    self.assertEqual(st, 404)
                    if faults >= 3:
                        break
            self.assertGreaterEqual(faults, 3, "the full filesystem never refused a commit")
            m = h.metrics()
            self.assertEqual(m["hems_store_write_failing"], 1)
            self.assertEqual(m["hems_store_disk_full"], 1)
            self.assertEqual(m["hems_store_write_fail_episodes_total"], 1)
            self.assertGreaterEqual(m['hems_admission_shed_total{reason="store_error"}'], 3)
            # reads keep working
            st, d = api_get(h, "/api/v1/devices/00005A-HeNB-DF-OK")
            self.assertEqual(st, 200, d)
            st, lst = api_get(h, "/api/v1/devices?limit=10")
            self.assertEqual(st, 200)
            st, _, _ = http_request(h.admin_port, "GET", "/healthz")
            self.assertEqual(st, 200)
            logs = h.logs()
            self.assertEqual(logs.count("store: disk full"), 1, logs[-3000:])

            # space returns: the next write succeeds, no restart
            os.unlink(self.ballast)
            r = self.inform(h, "DF-AFTER", 150, "c")
            self.assertEqual(r.rpc()[0], "InformResponse", r.body)
            st, d = api_get(h, "/api/v1/devices/00005A-HeNB-DF-AFTER")
            self.assertEqual(st, 200, d)
            m = h.metrics()
            self.assertEqual(m["hems_store_write_failing"], 0)
            self.assertIn("store: writes recovered", h.logs())
        # clean shutdown checked by the context manager; the data reopens and holds both devices
        with Hemsd("--data-dir", data) as h2:
            for sn in ("DF-OK", "DF-AFTER"):
                st, _ = api_get(h2, "/api/v1/devices/00005A-HeNB-%s" % sn)
                self.assertEqual(st, 200, sn)


if __name__ == "__main__":
    main()
