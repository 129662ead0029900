"""Operations artefacts stay true to the code: every metric the Grafana dashboard queries is
exported by a running hemsd, and the systemd unit and HAProxy configuration parse."""
import json
import os
import re
import shutil
import subprocess
import unittest

from hemsd import Hemsd, http_request, main

SRC = os.environ.get("HEMS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


class Ops(unittest.TestCase):
    def test_dashboard_queries_exported_metrics(self):
        with Hemsd() as h:
            st, _, body = http_request(h.admin_port, "GET", "/metrics")
            self.assertEqual(st, 200)
            exported = set(re.findall(r"^(hems_[a-z0-9_]+)", body.decode(), re.M))
        with open(os.path.join(SRC, "ops", "grafana-dashboard.json")) as f:
            dash = json.load(f)
        used = set()
        for p in dash["panels"]:
            for t in p["targets"]:
                used |= set(re.findall(r"\b(hems_[a-z0-9_]+)", t["expr"]))
        self.assertTrue(used)
        missing = {m for m in used if m not in exported}
        self.assertEqual(missing, set(), "dashboard queries metrics hemsd does not export")

    def test_haproxy_config_parses(self):
        if not shutil.which("haproxy"):
            raise unittest.SkipTest("no haproxy")
        cfg = open(os.path.join(SRC, "ops", "haproxy.cfg")).read().replace("maxconn 200000", "maxconn 1000")
        path = "/tmp/hems-haproxy-check.cfg"
        with open(path, "w") as f:
            f.write(cfg)
        r = subprocess.run(["haproxy", "-c", "-f", path], capture_output=True)
        os.unlink(path)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_systemd_unit_runs_check_config(self):
        unit = open(os.path.join(SRC, "ops", "hemsd.service")).read()
        self.assertIn("--check-config", unit)
        self.assertRegex(unit, r"LimitNOFILE=\d+")
        self.assertIn("ExecReload=/bin/kill -HUP $MAINPID", unit)


if __name__ == "__main__":
    main()
