"""hems-loadgen's procedure scenarios against real hemsd nodes on loopback:
- discovery: a boot storm through an Initial HeMS (whitelist, assignment, redirection by
  SetParameterValues of ManagementServer.URL) to a Serving HeMS (registration provisioning);
- alarms: periodic Informs carrying FaultMgmt ExpeditedEvent / QueuedEvent entries, each
  committed as an alarm before the InformResponse."""
import json
import os
import tempfile
import time
import unittest

from hemsd import Hemsd, fleet_size, http_request, main
from test_loadgen import Report, run_loadgen


def api(h, path):
    st, _, body = http_request(h.admin_port, "GET", path)
    assert st == 200, (path, st, body)
    return json.loads(body)


def all_devices(h):
    out, after = [], ""
    while True:
        page = api(h, "/api/v1/devices?limit=500" + ("&after=" + after if after else ""))
        out += page["devices"]
        if not page.get("next") or not page["devices"]:
            return out
        after = page["next"]


def metric(h, name):
    return int(h.metrics().get(name, 0))


def node(role, node_id, policy):
    tmp = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(policy, tmp)
    tmp.close()
    h = Hemsd(config="[hems]\nrole = %s\nnode_id = %s\npolicy_file = %s\n"
              % (role, node_id, tmp.name), shards=2)
    h.policy_path = tmp.name
    return h


class Discovery(Report):
    N = fleet_size(600, sanitized=200)

    @classmethod
    def setUpClass(cls):
        cls.serving = node("serving", "hems-b", {
            "s1": {"servers": "10.20.0.1,10.20.0.2", "connection_mode": "One", "port": 36412,
                   "set_by": "serving"},
            "ipsec_indicator": {"*": {"path": "Device.IPsec.Enable", "value": "true",
                                      "type": "xsd:boolean"}}}).start()
        cls.initial = node("initial", "init-1", {
            "whitelist": [{"oui": "00256D", "product_class": "HeNB",
                           "serial_from": "0000100000", "serial_to": "0000100999"}],
            "serving_nodes": [{"id": "hems-b", "weight": 1,
                               "url": "http://127.0.0.1:%d/cwmp" % cls.serving.cwmp_port}],
            "segws": [{"id": "segw-1", "servers": ["segw1.op.example"], "weight": 1}]}).start()

    @classmethod
    def tearDownClass(cls):
        for h in (cls.initial, cls.serving):
            h.__exit__(None, None, None)
            os.unlink(h.policy_path)

    def test_boot_storm_through_initial_to_serving(self):
        r, out = run_loadgen(self.initial.cwmp_port, "--scenario", "discovery",
                             "--devices", self.N, "--workers", 2, "--first-serial", 100000,
                             "--retry-min", 0.2, "--server-pid", self.initial.proc.pid,
                             timeout=120)
        self.assertIn("registered %d of %d" % (self.N, self.N), out)
        self.assertEqual(r["discovery"], {"redirects": self.N, "registered": self.N, "fallbacks": 0})
        e = dict(r["errors"])
        for shed in ("retry_8005", "http_503", "total"):  # shedding, retried with backoff
            e.pop(shed)
        self.assertEqual(sum(e.values()), 0, r["errors"])
        # two boot sessions per device: one at each node
        self.assertEqual(r["sessions"]["ok"], 2 * self.N)
        # Initial: 1 redirection SPV; Serving: registration SPV, 3 SPA (IPsec inner address,
        # expedited and queued alarm events), AdminState SPV
        self.assertEqual(r["acs_requests"].get("SetParameterValues"), 3 * self.N)
        self.assertEqual(r["acs_requests"].get("SetParameterAttributes"), 3 * self.N)

        served = all_devices(self.serving)
        self.assertEqual(len(served), self.N)
        for d in served:
            self.assertEqual((d["registration"], d["role"], d["serving_node"]),
                             ("registered", "serving", "hems-b"), d)
        initial = all_devices(self.initial)
        self.assertEqual(len(initial), self.N)
        self.assertTrue(all(d["registration"] == "redirected" and d["serving_node"] == "hems-b"
                            for d in initial))
        # every provisioning task ran and succeeded, in order, on a sample of devices
        for d in served[:: self.N // 6]:
            tasks = api(self.serving, "/api/v1/devices/%s/tasks" % d["id"])["tasks"]
            self.assertEqual([t["state"] for t in tasks], ["done"] * 5, tasks)
        self.assertEqual(metric(self.initial, "hems_discovery_assigned_total"), self.N)

    def test_devices_outside_whitelist_are_not_redirected(self):
        r, out = run_loadgen(self.initial.cwmp_port, "--scenario", "discovery",
                             "--devices", 20, "--first-serial", 200000, "--retry-min", 0.2)
        self.assertEqual(r["discovery"], {"redirects": 0, "registered": 20, "fallbacks": 0})
        blocked = [d for d in all_devices(self.initial) if d["serial"] >= "0000200000"]
        self.assertEqual(len(blocked), 20)
        self.assertTrue(all(d["registration"] == "blocked" for d in blocked))


class Alarms(Report):
    @classmethod
    def setUpClass(cls):
        cls.h = Hemsd(shards=2).start()

    @classmethod
    def tearDownClass(cls):
        cls.h.__exit__(None, None, None)

    def check(self, first, queued):
        before = metric(self.h, 'hems_store_entries{db="alarms"}')
        args = ["--scenario", "alarms", "--devices", 80, "--interval", 1, "--duration", 2.5,
                "--alarms", 3, "--first-serial", first, "--retry-min", 0.2]
        if queued:
            args.append("--alarms-queued")
        r, out = run_loadgen(self.h.cwmp_port, *args)
        sent = r["alarms"]["sent"]
        self.assertEqual(sent, 3 * r["sessions"]["ok"])
        self.assertGreaterEqual(r["sessions"]["ok"], 2 * 80)
        # every alarm answered by an InformResponse is in the history, once
        self.assertEqual(metric(self.h, 'hems_store_entries{db="alarms"}') - before, sent)
        dev = "00256D-HeNB-%010d" % first
        hist = api(self.h, "/api/v1/alarms?device=%s&limit=100" % dev)["alarms"]
        self.assertEqual({a["alarm_id"] for a in hist}, {"LG-1", "LG-2", "LG-3"})
        notifs = [a["notification"] for a in hist if a["alarm_id"] == "LG-1"]
        self.assertEqual(notifs[0], "new")
        self.assertTrue(all(a != b for a, b in zip(notifs, notifs[1:])), notifs)
        cur = api(self.h, "/api/v1/devices/%s/alarms" % dev)["alarms"]
        # raised after an odd number of sessions, cleared after an even one
        self.assertEqual(len(cur), 3 if len(notifs) % 2 else 0, (notifs, cur))

    def test_expedited_alarm_storm(self):
        self.check(300000, False)

    def test_queued_alarm_storm(self):
        self.check(400000, True)


class IpsecChanges(Report):
    def test_inner_address_changes_recorded_with_history(self):
        with Hemsd(shards=2) as h:
            n, first = 30, 850000
            r, out = run_loadgen(h.cwmp_port, "--scenario", "periodic", "--devices", n,
                                 "--interval", 0.5, "--duration", 2.5, "--first-serial", first,
                                 "--ipsec-change-every", 2, "--retry-min", 0.2)
            self.assertGreater(r["ipsec_changes"], 0)
            recorded = 0
            for i in range(n):
                d = api(h, "/api/v1/devices/00256D-HeNB-%010d" % (first + i))
                addrs = [a["address"] for a in d["ipsec_inner_addresses"]]
                self.assertEqual(len(set(addrs)), len(addrs), addrs)  # each a new address
                self.assertTrue(addrs[-1].startswith("172."), addrs)  # the first one
                if len(addrs) > 1:
                    self.assertTrue(addrs[0].startswith("10."), addrs)  # the latest change
                recorded += len(addrs) - 1
            # every change the devices reported is in their records' history
            self.assertEqual(recorded, r["ipsec_changes"])


class ConnectionRequests(Report):
    """Tasks queued with "connection_request": true reach simulated HeNBs at once: hemsd's
    connection-request client authenticates (Digest) to each device's listener in the load
    generator, which opens a "6 CONNECTION REQUEST" session that runs the task."""

    @classmethod
    def setUpClass(cls):
        cls.h = Hemsd("--set", "cwmp.cr_username=acs", "--set", "cwmp.cr_password=crsecret",
                      "--set", "cwmp.cr_max_per_s=500", shards=2).start()

    @classmethod
    def tearDownClass(cls):
        cls.h.__exit__(None, None, None)

    def test_tasks_run_at_once_after_connection_requests(self):
        import subprocess
        from test_loadgen import LOADGEN
        n, first, port = 60, 800000, 0  # each worker listens on an ephemeral port
        with tempfile.TemporaryDirectory() as tmp:
            report = os.path.join(tmp, "r.json")
            # registered devices that would only Inform again in an hour
            lg = subprocess.Popen([LOADGEN, "--target", "127.0.0.1:%d" % self.h.cwmp_port,
                                   "--scenario", "discovery", "--devices", str(n),
                                   "--first-serial", str(first), "--interval", "3600",
                                   "--duration", "8", "--workers", "2", "--cr-port", str(port),
                                   "--cr-username", "acs", "--cr-password", "crsecret",
                                   "--quiet", "--json", report],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                ids = ["00256D-HeNB-%010d" % (first + i) for i in range(n)]
                deadline = time.time() + 5
                while len(all_devices(self.h)) < n and time.time() < deadline:
                    time.sleep(0.1)
                t0 = time.time()
                for d in ids:
                    st, _, b = http_request(self.h.admin_port, "POST", "/api/v1/devices/%s/tasks" % d,
                                            json.dumps({"rpc": "GetParameterValues",
                                                        "names": ["Device.DeviceInfo.SerialNumber"],
                                                        "connection_request": True}).encode(),
                                            {"Content-Type": "application/json"})
                    self.assertEqual(st, 201, b)
                done = set()
                while len(done) < n and time.time() < t0 + 5:
                    for d in ids:
                        if d not in done and api(self.h, "/api/v1/devices/%s/tasks" % d)["tasks"][-1]["state"] == "done":
                            done.add(d)
                    time.sleep(0.1)
                self.assertEqual(len(done), n, "tasks not run within 5 s of their connection requests")
                out, _ = lg.communicate(timeout=30)
            finally:
                if lg.poll() is None:
                    lg.kill()
            with open(report) as f:
                r = json.load(f)
        cr = r["connection_requests"]
        self.assertEqual(cr["received"], n, out)
        self.assertEqual(cr["sessions"], n)
        self.assertEqual(cr["challenges"], n)  # one Digest challenge each
        self.assertEqual((cr["refused"], cr["bad"]), (0, 0))
        self.assertEqual(r["acs_requests"].get("GetParameterValues"), n)
        self.assertEqual(metric(self.h, 'hems_connreq_total{result="requested"}'), n)


class PmUploads(Report):
    @classmethod
    def setUpClass(cls):
        cls.h = Hemsd("--set", "pm.username=henb", "--set", "pm.password=s3cret", shards=2).start()

    @classmethod
    def tearDownClass(cls):
        cls.h.__exit__(None, None, None)

    def wait_ingested(self, n, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if metric(self.h, "hems_pm_files_ingested_total") >= n:
                return
            time.sleep(0.1)
        self.fail("ingested %d of %d" % (metric(self.h, "hems_pm_files_ingested_total"), n))

    def test_uploads_are_ingested_and_idempotent(self):
        args = ["--scenario", "pm", "--devices", 50, "--interval", 1, "--sessions", 100,
                "--username", "henb", "--password", "s3cret", "--first-serial", 500000,
                "--retry-min", 0.2]
        r, out = run_loadgen(self.h.cwmp_port, *args)
        self.assertEqual(r["pm"]["files"], 100, r)
        self.assertEqual(r["pm"]["duplicates"], 0)
        self.assertEqual(r["http_status"].get("201"), 100)
        self.assertEqual(r["auth_challenges"], 100)  # Digest on every new connection
        self.wait_ingested(100)
        # 254 counters per cell, 2 cells per file (bench/pm_gen.h)
        self.assertEqual(metric(self.h, "hems_pm_measurements_ingested_total"), 100 * 508)
        self.assertEqual(metric(self.h, "hems_pm_files_quarantined_total"), 0)
        st, _, body = http_request(self.h.admin_port, "GET", "/api/v1/pm/files?limit=1000")
        names = {f["name"] for f in json.loads(body)["files"]}
        self.assertIn("A20261127.0000+0000-0015+0000_00256D-HeNB-0000500000.xml", names)
        self.assertIn("A20261127.0015+0000-0030+0000_00256D-HeNB-0000500049.xml", names)
        # the same uploads again: acknowledged, not ingested twice
        r, out = run_loadgen(self.h.cwmp_port, *args)
        self.assertEqual((r["pm"]["files"], r["pm"]["duplicates"]), (100, 100))
        time.sleep(0.5)
        self.assertEqual(metric(self.h, "hems_pm_files_ingested_total"), 100)

    def test_wrong_password_is_refused(self):
        r, out = run_loadgen(self.h.cwmp_port, "--scenario", "pm", "--devices", 5,
                             "--interval", 1, "--sessions", 5, "--username", "henb",
                             "--password", "wrong", "--first-serial", 600000, "--max-retries", 0)
        self.assertEqual(r["pm"]["files"], 0)
        # each upload: challenged, answered, refused; none acknowledged (the last one may
        # count as unfinished: it failed as the run was ending)
        self.assertEqual(r["sessions"]["failed"] + r["errors"]["unfinished"], 5)
        self.assertEqual(r["sessions"]["ok"], 0)
        self.assertEqual(r["http_status"].get("401"), 10)


if __name__ == "__main__":
    main()
