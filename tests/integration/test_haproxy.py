"""Two hemsd nodes behind Debian's HAProxy (ops/haproxy.cfg on loopback, L4 + PROXY v2).
1. HeNBs reach both, each node records the HeNB's own address, one node is killed mid-run
   and the HeNBs carry on through the survivor; after the dead node restarts, every Inform
   that was acknowledged by either node is in that node's store.
2. hems-loadgen runs a fleet through the Initial HeMS frontend: both nodes (role both)
   assign Serving HeMS nodes across both by consistent hashing; one node is killed mid-run,
   the operator removes it from the policy (SIGHUP), its HeNBs fall back to the Initial HeMS
   and end up registered on the survivor, and the killed node's store still holds what it
   acknowledged."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import cpe as C
from hemsd import Hemsd, free_port, http_request, main
from test_loadgen import LOADGEN

SRC = os.environ.get("HEMS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def haproxy_config(tmpdir, nodes, port, serving_ports=None, tls_port=None):
    """ops/haproxy.cfg moved onto loopback: <port> is the balanced (Initial HeMS) frontend,
    <serving_ports> the per-node Serving HeMS frontends (free ports when None), <tls_port> the
    TLS passthrough frontend to the nodes' cwmps_port (a free port when None)."""
    with open(os.path.join(SRC, "ops", "haproxy.cfg")) as f:
        cfg = f.read()
    serving_ports = serving_ports or [free_port(), free_port()]
    cfg = cfg.replace("bind 0.0.0.0:7547", "bind 127.0.0.1:%d" % port)
    cfg = cfg.replace("bind 0.0.0.0:7548", "bind 127.0.0.1:%d" % serving_ports[0])
    cfg = cfg.replace("bind 0.0.0.0:7549", "bind 127.0.0.1:%d" % serving_ports[1])
    cfg = cfg.replace("server hems1 10.0.0.11:7547", "server hems1 127.0.0.1:%d" % nodes[0].cwmp_port)
    cfg = cfg.replace("server hems2 10.0.0.12:7547", "server hems2 127.0.0.1:%d" % nodes[1].cwmp_port)
    cfg = cfg.replace("bind 0.0.0.0:7443", "bind 127.0.0.1:%d" % (tls_port or free_port()))
    for i, h in enumerate(nodes):
        cfg = cfg.replace("server hems%d 10.0.0.1%d:7443 port 7547" % (i + 1, i + 1),
                          "server hems%d 127.0.0.1:%d port %d"
                          % (i + 1, getattr(h, "cwmps_port", None) or free_port(), h.cwmp_port))
    cfg = cfg.replace("balance source", "balance roundrobin")  # one client address here
    cfg = cfg.replace("maxconn 200000", "maxconn 4000")  # this machine's descriptor limit
    assert "0.0.0.0" not in cfg and "10.0.0." not in cfg
    path = os.path.join(tmpdir, "haproxy.cfg")
    with open(path, "w") as f:
        f.write(cfg)
    return subprocess.Popen(["haproxy", "-db", "-f", path], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def make_pki(tmpdir, devices):
    pki = os.path.join(tmpdir, "pki")
    subprocess.run([os.path.join(SRC, "ops", "make-test-pki.sh"), pki] + devices, check=True,
                   stdout=subprocess.DEVNULL)
    return pki


def tls_node(pki, key_file, *args):
    """A hemsd node with a TLS CWMP listener (mutual TLS required), PROXY on both listeners,
    session-ticket keys from <key_file>."""
    port = free_port()
    cfg = ("[server]\ncwmps_listen = 127.0.0.1:%d\ncwmp_proxy_protocol = true\n"
           "cwmps_proxy_protocol = true\n[tls]\ncert = %s\nkey = %s\nca = %s\n"
           "client_auth = required\nticket_key_file = %s\n"
           % (port, os.path.join(pki, "server-ec.pem"), os.path.join(pki, "server-ec.key"),
              os.path.join(pki, "ca.pem"), key_file))
    h = Hemsd(*args, config=cfg)
    h.cwmps_port = port
    return h.start()


class Haproxy(unittest.TestCase):
    def setUp(self):
        if not shutil.which("haproxy"):
            raise SystemExit(77)

    def test_two_nodes_failover_nothing_acknowledged_lost(self):
        nodes = [Hemsd("--set", "server.cwmp_proxy_protocol=true").start() for _ in range(2)]
        port = free_port()
        hap = haproxy_config(nodes[0].tmp.name, nodes, port)
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

    def test_discovery_across_nodes_and_failover_by_policy(self):
        n = 300
        fi, fa, fb = free_port(), free_port(), free_port()
        policy = {
            "whitelist": [{"oui": "00256D", "product_class": "HeNB", "serial_from": "0000700000",
                           "serial_to": "0000700999"}],
            "serving_nodes": [{"id": "hems-a", "url": "http://127.0.0.1:%d/cwmp" % fa, "weight": 1},
                              {"id": "hems-b", "url": "http://127.0.0.1:%d/cwmp" % fb, "weight": 1}],
            "segws": [{"id": "segw-1", "servers": ["segw1.op.example"]}],
        }
        nodes = []
        for node_id in ("hems-a", "hems-b"):
            tmp = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
            json.dump(policy, tmp)
            tmp.close()
            h = Hemsd("--set", "server.cwmp_proxy_protocol=true",
                      config="[hems]\nrole = both\nnode_id = %s\npolicy_file = %s\n"
                      % (node_id, tmp.name))
            h.policy_path = tmp.name
            nodes.append(h.start())
        hap = haproxy_config(nodes[0].tmp.name, nodes, fi, [fa, fb])
        report = os.path.join(nodes[0].tmp.name, "loadgen.json")
        lg = None
        try:
            time.sleep(1.5)  # first health checks
            lg = subprocess.Popen([LOADGEN, "--target", "127.0.0.1:%d" % fi, "--scenario",
                                   "discovery", "--devices", str(n), "--first-serial", "700000",
                                   "--rate", "300", "--interval", "1", "--duration", "9",
                                   "--retry-min", "0.3", "--fallback-after", "2", "--timeout", "3",
                                   "--quiet", "--json", report],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            time.sleep(3.0)
            # node A dies; the operator takes it out of the policy on the survivor
            nodes[0].proc.send_signal(signal.SIGKILL)
            nodes[0].proc.wait()
            policy["serving_nodes"] = policy["serving_nodes"][1:]
            with open(nodes[1].policy_path, "w") as f:
                json.dump(policy, f)
            nodes[1].signal(signal.SIGHUP)
            out, _ = lg.communicate(timeout=60)
            self.assertEqual(lg.returncode, 0, out)
            with open(report) as f:
                r = json.load(f)
            d = r["discovery"]
            self.assertEqual(d["registered"], n, out)  # every HeNB registered at the end
            self.assertGreater(d["fallbacks"], 0, out)  # A's HeNBs came back through Initial
            self.assertGreater(d["redirects"], 0, out)
            # all of them registered on the survivor, as its own
            for i in range(n):
                st, _, b = http_request(nodes[1].admin_port, "GET",
                                        "/api/v1/devices/00256D-HeNB-%010d" % (700000 + i))
                self.assertEqual(st, 200, i)
                rec = json.loads(b)
                self.assertEqual((rec["registration"], rec["serving_node"]),
                                 ("registered", "hems-b"), rec)
                self.assertTrue(rec["source_address"].startswith("127.0.0.1:"), rec)
            # what A acknowledged before it died is still in its store
            dead = nodes[0]
            dead.log.close()
            dead.proc = None
            dead.start()
            st, _, b = http_request(dead.admin_port, "GET", "/api/v1/devices?limit=1000")
            mine = [x for x in json.loads(b)["devices"] if x["serving_node"] == "hems-a" and
                    x["registration"] == "registered"]
            self.assertGreater(len(mine), 0)
        finally:
            if lg and lg.poll() is None:
                lg.kill()
            hap.terminate()
            hap.wait()
            for h in nodes:
                h.__exit__(None, None, None)
                os.unlink(h.policy_path)

    def test_tls_passthrough_mutual_tls_and_client_address(self):
        """HeNBs with their own certificates through HAProxy's TLS passthrough (mode tcp,
        send-proxy-v2) to two nodes: hemsd terminates TLS, binds each certificate to its
        DeviceId, and records the HeNB's address (127.0.0.2, the load generator's source),
        not HAProxy's (127.0.0.1). Both nodes share a ticket key file (ops/ticket-keys.sh),
        so a HeNB resumes its session on either node: round robin alternates them."""
        if not shutil.which("openssl") or not os.path.exists(LOADGEN):
            self.skipTest("needs the openssl CLI and hems-loadgen")
        with tempfile.TemporaryDirectory(prefix="hems-haproxy-tls-") as tmp:
            n = 6
            pki = make_pki(tmp, ["%010d" % i for i in range(1, n + 1)])
            keys = os.path.join(tmp, "ticket.keys")
            subprocess.run([os.path.join(SRC, "ops", "ticket-keys.sh"), keys], check=True)
            nodes = [tls_node(pki, keys) for _ in range(2)]
            port, tls_port = free_port(), free_port()
            hap = haproxy_config(tmp, nodes, port, tls_port=tls_port)
            try:
                time.sleep(1.5)  # first health checks
                report = os.path.join(tmp, "lg.json")
                common = ["--target", "127.0.0.1:%d" % tls_port, "--scenario", "periodic",
                          "--first-serial", "1", "--host", "localhost", "--source",
                          "127.0.0.2", "--tls", "--tls-ca", os.path.join(pki, "ca.pem"),
                          "--timeout", "5", "--quiet", "--json", report]
                out = subprocess.run([LOADGEN, "--devices", str(n), "--concurrency", "3",
                                      "--sessions", str(4 * n), "--tls-cert-dir", pki,
                                      "--tls-resume"] + common,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     timeout=60).stdout.decode(errors="replace")
                with open(report) as f:
                    r = json.load(f)
                self.assertEqual(r["sessions"]["ok"], 4 * n, out)
                self.assertEqual(r["sessions"]["failed"], 0, out)
                ms = [h.metrics() for h in nodes]
                for m in ms:  # round robin: both nodes terminated TLS
                    self.assertGreater(sum(m.get('hems_tls_handshakes_total{kind="%s"}' % k, 0)
                                           for k in ("full", "resumed")), 0)
                    self.assertEqual(m.get("hems_tls_identity_mismatch_total", 0), 0)
                # one full handshake per device, then its ticket resumes on either node
                self.assertEqual(sum(m.get('hems_tls_handshakes_total{kind="full"}', 0)
                                     for m in ms), n)
                self.assertEqual(sum(m.get('hems_tls_handshakes_total{kind="resumed"}', 0)
                                     for m in ms), 3 * n)
                seen = set()
                for h in nodes:
                    st, _, b = http_request(h.admin_port, "GET", "/api/v1/devices?limit=1000")
                    self.assertEqual(st, 200)
                    for d in json.loads(b)["devices"]:
                        seen.add(d["serial"])
                        self.assertTrue(d["source_address"].startswith("127.0.0.2:"),
                                        "the HeNB's address, not HAProxy's: %s" % d)
                self.assertGreaterEqual(len(seen), n)
                # Identity binding still works behind the balancer: device 2 presenting
                # device 1's certificate is refused.
                out = subprocess.run([LOADGEN, "--devices", "2", "--concurrency", "2",
                                      "--sessions", "2", "--max-retries", "1", "--tls-cert",
                                      os.path.join(pki, "dev-0000000001.pem"), "--tls-key",
                                      os.path.join(pki, "dev-0000000001.key")] + common,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     timeout=60).stdout.decode(errors="replace")
                with open(report) as f:
                    r = json.load(f)
                self.assertEqual(r["sessions"]["ok"], 1, out)
                self.assertEqual(r["http_status"].get("403"), 1, out)
                self.assertEqual(sum(h.metrics().get("hems_tls_identity_mismatch_total", 0)
                                     for h in nodes), 1)
            finally:
                hap.terminate()
                hap.wait()
                for h in nodes:
                    h.__exit__(None, None, None)


if __name__ == "__main__":
    main()
