"""Two hemsd nodes behind Debian's HAProxy (ops/haproxy.cfg on loopback, L4 + PROXY v2):
HeNBs reach both, each node records the HeNB's own address, one node is killed mid-run and
the HeNBs carry on through the survivor; after the dead node restarts, every Inform that was
acknowledged by either node is in that node's store."""
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import unittest

import cpe as C
from hemsd import Hemsd, free_port, http_request, main

SRC = os.environ.get("HEMS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


class Haproxy(unittest.TestCase):
    def setUp(self):
        if not shutil.which("haproxy"):
            raise SystemExit(77)

    def test_two_nodes_failover_nothing_acknowledged_lost(self):
        nodes = [Hemsd("--set", "server.cwmp_proxy_protocol=true").start() for _ in range(2)]
        port = free_port()
        with open(os.path.join(SRC, "ops", "haproxy.cfg")) as f:
            cfg = f.read()
        cfg = cfg.replace("bind 0.0.0.0:7547", "bind 127.0.0.1:%d" % port)
        cfg = cfg.replace("server hems1 10.0.0.11:7547", "server hems1 127.0.0.1:%d" % nodes[0].cwmp_port)
        cfg = cfg.replace("server hems2 10.0.0.12:7547", "server hems2 127.0.0.1:%d" % nodes[1].cwmp_port)
        cfg = cfg.replace("balance source", "balance roundrobin")  # one client address here
        cfg = cfg.replace("maxconn 200000", "maxconn 4000")  # this machine's descriptor limit
        cfg_path = os.path.join(nodes[0].tmp.name, "haproxy.cfg")
        with open(cfg_path, "w") as f:
            f.write(cfg)
        hap = subprocess.Popen(["haproxy", "-db", "-f", cfg_path], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        acked = {}  # serial -> (local port of the HeNB's connection)
        after_kill = []
        lock = threading.Lock()
        stop = threading.Event()
        killed = threading.Event()
        try:
            time.sleep(1.5)  # first health checks

            def henb(w):
                n = 0
                while not stop.is_set():
                    sn = "HA-%d-%d" % (w, n)
                    try:
                        c = C.Cpe(port)
                        lport = c.sock.getsockname()[1]
                        r = c.post(C.inform_xml(sn=sn))
                        if r.status == 200 and r.rpc()[0] == "InformResponse":
                            c.post()
                            with lock:
                                acked[sn] = lport
                                if killed.is_set():
                                    after_kill.append(sn)
                        c.close()
                    except (OSError, ValueError, ConnectionError):
                        time.sleep(0.05)
                    n += 1

            threads = [threading.Thread(target=henb, args=(w,)) for w in range(4)]
            for t in threads:
                t.start()
            time.sleep(1.5)
            nodes[0].proc.send_signal(signal.SIGKILL)
            nodes[0].proc.wait()
            killed.set()
            time.sleep(3.0)
            stop.set()
            for t in threads:
                t.join()
            self.assertGreater(len(after_kill), 20, "HeNBs did not carry on through the survivor")
            # Restart the killed node on its data and look every acknowledged Inform up.
            dead = nodes[0]
            dead.log.close()
            dead.proc = None
            dead.start()
            found = {0: 0, 1: 0}
            for sn, lport in acked.items():
                where = None
                for i, h in enumerate(nodes):
                    st, _, b = http_request(h.admin_port, "GET", "/api/v1/devices/00005A-HeNB-%s" % sn)
                    if st == 200:
                        where = i
                        src = json.loads(b)["source_address"]
                        self.assertEqual(src, "127.0.0.1:%d" % lport,
                                         "the HeNB's own address, not HAProxy's, must be recorded")
                        break
                self.assertIsNotNone(where, "acknowledged Inform of %s lost" % sn)
                found[where] += 1
            self.assertGreater(found[0], 0)
            self.assertGreater(found[1], 0)
        finally:
            stop.set()
            hap.terminate()
            hap.wait()
            for h in nodes:
                h.__exit__(None, None, None)


if __name__ == "__main__":
    main()
