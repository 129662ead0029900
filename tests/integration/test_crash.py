"""Crash safety of a real hemsd under load: simulated HeNBs send Informs (some carrying new
expedited alarms) and the operator queues tasks from several threads while hemsd is killed
with SIGKILL at random moments; after each restart every Inform answered with an
InformResponse, every alarm such an Inform carried, and every task answered 201 must be in
the store, and the store must open cleanly.

Default: 3 rounds (part of the normal suite). Long run: HEMS_CRASH_ROUNDS=100 python3 test_crash.py
"""
import json
import os
import random
import signal
import threading
import time
import unittest

import alarmlib
import cpe as C
from hemsd import Hemsd, http_request, main

ROUNDS = int(os.environ.get("HEMS_CRASH_ROUNDS", "3"))


def api(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    st, _, b = http_request(port, method, path, body=data)
    return st, (json.loads(b) if b.strip() else None)


class Crash(unittest.TestCase):
    def test_acknowledged_writes_survive_sigkill_under_load(self):
        h = Hemsd(shards=2).start()
        data_dir = h.data_dir
        acked_informs = {}   # serial -> last acknowledged software version
        acked_tasks = []     # (device, task id)
        acked_alarms = {}    # serial -> alarm ids carried by acknowledged Informs
        lock = threading.Lock()
        rng = random.Random(1234)
        try:
            for rnd in range(ROUNDS):
                stop = threading.Event()

                def henb(worker):
                    n = 0
                    while not stop.is_set():
                        sn = "CR-%d-%d" % (worker, n % 50)
                        ver = "v%d.%d" % (rnd, n)
                        try:
                            c = C.Cpe(h.cwmp_port)
                            r = c.post(C.inform_xml(sn=sn, params=[
                                ("Device.DeviceInfo.SoftwareVersion", ver, "xsd:string")]))
                            if r.status == 200 and r.rpc()[0] == "InformResponse":
                                with lock:
                                    acked_informs[sn] = ver
                            c.close()
                        except (OSError, ValueError):
                            pass
                        n += 1

                def operator():
                    n = 0
                    while not stop.is_set():
                        dev = "00005A-HeNB-CR-0-%d" % (n % 50)
                        try:
                            st, t = api(h.admin_port, "POST", "/api/v1/devices/%s/tasks" % dev,
                                        {"rpc": "GetParameterValues", "names": ["Device.DeviceInfo."]})
                            if st == 201:
                                with lock:
                                    acked_tasks.append((dev, t["id"]))
                        except (OSError, ValueError):
                            pass
                        n += 1

                def alarmer(worker):
                    n = 0
                    while not stop.is_set():
                        sn = "AL-%d-%d" % (worker, n % 20)
                        ids = ["A%d-%d-%d-%d" % (rnd, worker, n, k) for k in range(3)]
                        t = int(time.time() * 1000)
                        params = []
                        for k, aid in enumerate(ids):
                            params += alarmlib.event("Device", "ExpeditedEvent", k + 1,
                                                     alarmlib.iso(t + k), aid, "NewAlarm", "Major")
                        try:
                            c = C.Cpe(h.cwmp_port)
                            r = c.post(C.inform_xml(sn=sn, events=("4 VALUE CHANGE",), params=params))
                            if r.status == 200 and r.rpc()[0] == "InformResponse":
                                with lock:
                                    acked_alarms.setdefault(sn, set()).update(ids)
                            c.close()
                        except (OSError, ValueError):
                            pass
                        n += 1

                threads = [threading.Thread(target=henb, args=(w,)) for w in range(3)]
                threads += [threading.Thread(target=alarmer, args=(w,)) for w in range(2)]
                threads.append(threading.Thread(target=operator))
                for t in threads:
                    t.start()
                time.sleep(0.3 + rng.random() * 1.2)
                h.proc.send_signal(signal.SIGKILL)
                h.proc.wait()
                stop.set()
                for t in threads:
                    t.join()
                h.log.close()
                # Restart on the same data folder and check every acknowledged write.
                h2 = Hemsd(shards=2)
                h2.tmp.cleanup()
                h2.tmp, h2.data_dir = h.tmp, data_dir
                h2.args[h2.args.index("--data-dir") + 1] = data_dir
                h2.log_path = h.log_path + ".%d" % rnd
                h2.start()
                for sn, ver in list(acked_informs.items()):
                    st, d = api(h2.admin_port, "GET", "/api/v1/devices/00005A-HeNB-%s" % sn)
                    self.assertEqual(st, 200, "round %d: acknowledged Inform of %s lost" % (rnd, sn))
                    # A later unacknowledged Inform may have committed too; an acknowledged one
                    # may never be rolled back to an older version.
                    got = d["software_version"]
                    self.assertTrue(got == ver or tuple(map(int, got[1:].split("."))) >
                                    tuple(map(int, ver[1:].split("."))),
                                    "round %d: %s has %s, acknowledged %s" % (rnd, sn, got, ver))
                for sn, ids in list(acked_alarms.items()):
                    st, cur = api(h2.admin_port, "GET", "/api/v1/devices/00005A-HeNB-%s/alarms" % sn)
                    self.assertEqual(st, 200)
                    missing = ids - {a["alarm_id"] for a in cur["alarms"]}
                    self.assertFalse(missing, "round %d: acknowledged alarms of %s lost: %s"
                                     % (rnd, sn, sorted(missing)[:5]))
                for dev, tid in acked_tasks:
                    st, _ = api(h2.admin_port, "GET", "/api/v1/devices/%s/tasks/%d" % (dev, tid))
                    self.assertEqual(st, 200, "round %d: acknowledged task %d lost" % (rnd, tid))
                h = h2
            self.assertGreater(len(acked_informs), 10)
            self.assertGreater(len(acked_tasks), 5)
            self.assertGreater(sum(map(len, acked_alarms.values())), 30)
        finally:
            if h.proc and h.proc.poll() is None:
                h.proc.kill()
                h.proc.wait()
            h.tmp.cleanup()


class Corruption(unittest.TestCase):
    def test_foreign_or_corrupt_store_refused_at_start(self):
        for content in (b"this is not an LMDB file" * 100, b"\0" * 8192):
            h = Hemsd()
            os.makedirs(os.path.join(h.data_dir, "store"))
            with open(os.path.join(h.data_dir, "store", "data.mdb"), "wb") as f:
                f.write(content)
            h.start(wait=False)
            rc = h.proc.wait(10)
            self.assertEqual(rc, 1)
            logs = h.logs()
            self.assertIn("refusing to start", logs)
            self.assertIn("store", logs)
            h.log.close()
            h.tmp.cleanup()


if __name__ == "__main__":
    main()
