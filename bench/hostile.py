#!/usr/bin/env python3
"""Hostile clients vs normal devices (issue: reliability). Measures hemsd's capacity for
normal HeNBs as server CPU per periodic session (hems-loadgen, closed loop, --server-pid):
alone, then while slowloris clients (a request head sent one byte per second) and slow
readers (requests sent, responses never read) hold N connections. The capacity ratio
(CPU per session alone / CPU per session under attack) must stay >= 0.90. Server CPU rather
than sessions/s, because on one small machine the attack script's own CPU would otherwise be
charged to hemsd.

Usage: bench/hostile.py [BUILD_DIR] [HOSTILE_CONNECTIONS] [SECONDS]
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

build = sys.argv[1] if len(sys.argv) > 1 else "build-release"
n_hostile = int(sys.argv[2]) if len(sys.argv) > 2 else 8000
secs = sys.argv[3] if len(sys.argv) > 3 else "8"
tmp = tempfile.mkdtemp(prefix="hems-hostile-")
cport, aport = 21750, 21751
hemsd = subprocess.Popen([os.path.join(build, "hemsd"), "--data-dir", tmp + "/data",
                          "--cwmp-listen", "127.0.0.1:%d" % cport, "--admin-listen", "127.0.0.1:%d" % aport,
                          "--shards", "2", "--log-level", "error"], stderr=subprocess.DEVNULL)
time.sleep(1)


def loadgen(tag):
    out = os.path.join(tmp, tag + ".json")
    subprocess.run([os.path.join(build, "hems-loadgen"), "--target", "127.0.0.1:%d" % cport,
                    "--scenario", "periodic", "--concurrency", "32", "--devices", "5000",
                    "--duration", secs, "--server-pid", str(hemsd.pid), "--quiet", "--json", out],
                   stdout=subprocess.DEVNULL, check=True)
    r = json.load(open(out))
    return r["server"]["cpu_us_per_session"], r["sessions"]["per_s"], r["errors"]["total"]


stop = threading.Event()
socks = []


def hostile():
    # Half slowloris (a head trickling in), half slow readers (a big response left unread).
    for i in range(n_hostile):
        try:
            s = socket.create_connection(("127.0.0.1", cport))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            if i % 2:
                s.sendall(b"POST /cwmp HTTP/1.1\r\nHost: x\r\n")
            else:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 50)
            socks.append(s)
        except OSError:
            time.sleep(0.01)
    while not stop.is_set():
        for s in list(socks[1::2]):
            try:
                s.send(b"X")
            except OSError:
                pass
        time.sleep(1)


base, base_rate, e0 = loadgen("baseline")
t = threading.Thread(target=hostile)
t.start()
while len(socks) < n_hostile * 0.95 and t.is_alive():
    time.sleep(0.2)
under, under_rate, e1 = loadgen("hostile")
stop.set()
t.join()
active = "?"
try:
    import urllib.request
    m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % aport).read().decode()
    active = [l for l in m.splitlines() if l.startswith("hems_http_errors_timeout_total")][0]
except Exception:
    pass
hemsd.terminate()
hemsd.wait()
print("hostile connections held: %d (%s)" % (len(socks), active))
print("server CPU per periodic session alone: %.1f us (%.0f sessions/s, errors %d); with hostile "
      "clients: %.1f us (%.0f sessions/s, errors %d)" % (base, base_rate, e0, under, under_rate, e1))
print("capacity ratio %.2f (target >= 0.90)" % (base / under))
