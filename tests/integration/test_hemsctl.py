"""hemsctl end to end against a real hemsd: the fleet, PM and status commands (tables and
--json), ids that need percent-encoding, exit codes (1 API error, 2 usage, 3 unreachable).
The alarm, file, task and policy commands have their own tests (test_hemsctl_alarms,
test_files, test_connreq, test_discovery)."""
import json
import os
import subprocess
import unittest

import cpe as C
from hemsd import BIN_DIR, Hemsd, free_port, main


class Hemsctl(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = Hemsd().start()

    @classmethod
    def tearDownClass(cls):
        cls.h.__exit__(None, None, None)

    def ctl(self, *args, port=None):
        return subprocess.run([os.path.join(BIN_DIR, "hemsctl"), "--admin",
                               "127.0.0.1:%d" % (port or self.h.admin_port)] + list(args),
                              capture_output=True, text=True, timeout=30)

    def ok(self, *args):
        r = self.ctl(*args)
        self.assertEqual(r.returncode, 0, (args, r.stderr))
        return r.stdout

    def test_pools_profiles_tags_desired(self):
        self.ok("pool", "set", "eci", "1000", "1999")
        pools = json.loads(self.ok("--json", "pools"))
        self.assertEqual([(p["name"], p["lo"], p["hi"]) for p in pools],
                         [("eci", 1000, 1999)])
        self.assertEqual(self.ctl("pool", "set", "eci", "9", "x").returncode, 2)  # usage
        prof = {"priority": 5, "selector": {"tags": ["north"]},
                "params": [{"name": "Device.ManagementServer.PeriodicInformInterval", "value": "600"}]}
        self.ok("profile", "set", "north", json.dumps(prof))
        self.assertIn("north", self.ok("profiles"))
        r = self.ctl("profile", "set", "bad", "{not json")
        self.assertEqual(r.returncode, 1)
        self.assertIn("400 bad_json", r.stderr)
        # A device id with a space and a plus goes through percent-encoded, intact.
        c = C.Cpe(self.h.cwmp_port)
        self.assertEqual(c.post(C.inform_xml(pc="He NB+1", sn="T1", events=("1 BOOT",))).status, 200)
        self.assertEqual(c.post().status, 204)
        c.close()
        dev = "00005A-He NB+1-T1"
        self.assertEqual(json.loads(self.ok("--json", "device", dev))["id"], dev)
        self.ok("tags", dev, "set", "north", "lab")
        self.assertEqual(json.loads(self.ok("--json", "tags", dev)), ["lab", "north"])
        desired = json.loads(self.ok("--json", "desired", dev))
        self.assertEqual([p["name"] for p in desired["params"]],
                         ["Device.ManagementServer.PeriodicInformInterval"])
        self.ok("tags", dev, "set")  # none: cleared
        self.assertEqual(json.loads(self.ok("--json", "tags", dev)), [])
        region = {"servers": ["10.9.0.1", "10.9.0.2"], "selector": {"tags": ["north"]}}
        self.ok("region", "set", "north", json.dumps(region))
        self.assertIn("north", self.ok("regions"))
        self.assertEqual(json.loads(self.ok("--json", "region", "north"))["servers"], region["servers"])
        self.ok("region", "delete", "north")
        self.assertEqual(self.ctl("region", "north").returncode, 1)
        self.ok("profile", "delete", "north")
        r = self.ctl("profile", "north")
        self.assertEqual(r.returncode, 1)
        self.assertIn("404", r.stderr)

    def test_status_pm_and_exit_codes(self):
        self.assertIn("version", self.ok("status"))
        files = json.loads(self.ok("--json", "pm", "files"))
        self.assertIn("files", files)
        series = json.loads(self.ok("--json", "pm", "series", "ManagedElement=1", "pmX", "0"))
        self.assertEqual(series.get("points", series.get("values", [])), [])
        self.assertEqual(self.ctl("pm", "nonsense").returncode, 2)
        self.assertEqual(self.ctl("nonsense").returncode, 2)
        self.assertEqual(self.ctl("status", port=free_port()).returncode, 3)


if __name__ == "__main__":
    main()
