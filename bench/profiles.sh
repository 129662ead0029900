#!/usr/bin/env bash
# Per-session server CPU of periodic Informs with 0, 10 and 100 fleet profiles defined
# (docs/benchmarks-profiles.md). For each count: a fresh hemsd (1 shard), the profiles PUT
# through the API (a tenth match the simulated HeNBs; the others select other product
# classes, software versions or tags, so the tag lookup runs too), DEVICES devices booted
# (their desired state is applied then), one periodic round, then a measured closed-loop
# periodic run of SECS seconds: hems-loadgen reports server CPU per session.
#   usage: bench/profiles.sh [BUILD_DIR]     env: DEVICES (2000), SECS (10), ROUNDS (2)
set -euo pipefail
BUILD=${1:-build}
DEVICES=${DEVICES:-2000}
SECS=${SECS:-10}
ROUNDS=${ROUNDS:-2}
tmp=$(mktemp -d)
trap 'kill $hpid 2>/dev/null || true; rm -rf "$tmp"' EXIT
hpid=
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

put_profiles() { # admin_port count
  python3 - "$1" "$2" <<'PY'
import json, sys, urllib.request
port, n = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    k = i % 10
    sel = ({"product_class": "HeNB"} if k == 0 else
           {"product_class": "Other%d" % i} if k <= 3 else
           {"software_version": "9.%d.*" % i} if k <= 6 else
           {"tags": ["t%d" % i]})
    body = {"priority": i, "selector": sel, "params": [
        {"name": "Device.Services.FAPService.1.X_BENCH_P%d" % i, "value": str(i)},
        {"name": "Device.Services.FAPService.1.X_BENCH_Common", "value": str(i)}]}
    req = urllib.request.Request("http://127.0.0.1:%d/api/v1/profiles/p%03d" % (port, i),
                                 data=json.dumps(body).encode(), method="PUT",
                                 headers={"Content-Type": "application/json"})
    assert urllib.request.urlopen(req).status == 200
PY
}

run() { # profiles round
  local n=$1 r=$2 hp ha
  hp=$(port); ha=$(port)
  "$BUILD/hemsd" --data-dir "$tmp/d$n-$r" --cwmp-listen 127.0.0.1:$hp --admin-listen 127.0.0.1:$ha \
    --shards 1 --log-level warn --set store.no_sync=1 2>"$tmp/hemsd-$n.log" &
  hpid=$!
  for _ in $(seq 50); do curl -sf http://127.0.0.1:$ha/healthz >/dev/null && break; sleep 0.1; done
  put_profiles $ha $n
  local lg=("$BUILD/hems-loadgen" --target 127.0.0.1:$hp --quiet --first-serial 5000000)
  "${lg[@]}" --scenario boot --devices "$DEVICES" --concurrency 32 >/dev/null
  "${lg[@]}" --scenario periodic --devices "$DEVICES" --concurrency 32 --sessions "$DEVICES" >/dev/null
  "${lg[@]}" --scenario periodic --devices "$DEVICES" --concurrency 32 --duration "$SECS" \
    --server-pid $hpid --json "$tmp/p$n-$r.json" >/dev/null
  curl -sf http://127.0.0.1:$ha/metrics | grep -E '^hems_profile_tasks_queued_total|^hems_profiles_defined' \
    > "$tmp/m$n-$r.txt" || true
  kill $hpid; wait $hpid || true
  hpid=
}

for r in $(seq "$ROUNDS"); do
  for n in 0 10 100; do run $n $r; done
done
python3 - "$tmp" "$ROUNDS" <<'PY'
import json, os, sys
d, rounds = sys.argv[1], int(sys.argv[2])
base = None
print("%-9s %6s %18s %12s %10s %14s" % ("profiles", "round", "CPU us/session", "sessions", "errors",
                                         "SPV tasks"))
res = {}
for n in (0, 10, 100):
    for r in range(1, rounds + 1):
        x = json.load(open(os.path.join(d, "p%d-%d.json" % (n, r))))
        m = open(os.path.join(d, "m%d-%d.txt" % (n, r))).read().split()
        q = m[m.index("hems_profile_tasks_queued_total") + 1] if "hems_profile_tasks_queued_total" in m else "?"
        cpu = x["server"]["cpu_us_per_session"]
        res.setdefault(n, []).append(cpu)
        print("%-9d %6d %18.1f %12d %10d %14s" % (n, r, cpu, x["sessions"]["ok"], x["errors"]["total"], q))
b = min(res[0])
for n in (10, 100):
    print("best of %d: %d profiles / 0 profiles = %.3f" % (rounds, n, min(res[n]) / b))
PY
