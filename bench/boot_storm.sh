#!/usr/bin/env bash
# Boot storm of DEVICES HeNBs from factory state through an Initial HeMS and a Serving HeMS
# (docs/benchmarks.md, "Boot storm"). Two fresh hemsd on loopback (--shards SHARDS each,
# admission control on with its defaults), hems-loadgen --scenario discovery spread over
# WORKERS processes and SOURCES 127.0.0.x source addresses (past the per-process open-file
# limit and the 28k ephemeral ports of one address). Prints: time until all registered,
# retries per device against what the TR-069 backoff allows, the admission counters of both
# nodes (hems_admission_* from /metrics), and each hemsd's peak RSS and bytes per device.
#
#   DEVICES=100000 bench/boot_storm.sh [BUILD_DIR]
# Environment: DEVICES (100000), RATE (0: every device powers on at once; else arrivals/s),
#   WORKERS (8), SOURCES (16), SHARDS (2), RETRY_MIN (5: TR-069's default
#   CWMPRetryMinimumWaitInterval), RETRY_MULT (2000), MAX_RETRIES (100: a CPE does not give
#   up; its wait stops growing after the 10th retry), STRICT (1: --strict-backoff, a
#   Retry-After never shortens the TR-069 backoff), TIMEOUT (30),
#   LG_PIN / HEMSD_PIN (taskset CPU lists, default none), EXTRA (more hems-loadgen options)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
DEVICES=${DEVICES:-100000}
RATE=${RATE:-0}
WORKERS=${WORKERS:-8}
SOURCES=${SOURCES:-16}
SHARDS=${SHARDS:-2}
RETRY_MIN=${RETRY_MIN:-5}
RETRY_MULT=${RETRY_MULT:-2000}
MAX_RETRIES=${MAX_RETRIES:-100}
TIMEOUT=${TIMEOUT:-30}
EXTRA=${EXTRA:-}

tmp=$(mktemp -d /tmp/hems-bootstorm.XXXXXX)
base=$((12000 + RANDOM % 18000)) # below the ephemeral range (32768-): no clash with clients
SP=$base; SA=$((base + 1)); IP=$((base + 2)); IA=$((base + 3))
cleanup() { kill ${spid:-} ${ipid:-} 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
last=$((1000000 + DEVICES - 1))
cat >"$tmp/serving.json" <<EOF
{"s1": {"servers": "10.20.0.1,10.20.0.2", "connection_mode": "One", "port": 36412,
        "set_by": "serving"},
 "ipsec_indicator": {"*": {"path": "Device.IPsec.Enable", "value": "true",
                           "type": "xsd:boolean"}}}
EOF
cat >"$tmp/initial.json" <<EOF
{"whitelist": [{"oui": "00256D", "product_class": "HeNB",
                "serial_from": "0001000000", "serial_to": "$(printf %010d $last)"}],
 "serving_nodes": [{"id": "hems-b", "weight": 1, "url": "http://127.0.0.1:$SP/cwmp"}],
 "segws": [{"id": "segw-1", "servers": ["segw1.op.example"], "weight": 1}]}
EOF
printf '[hems]\nrole = serving\nnode_id = hems-b\npolicy_file = %s\n' "$tmp/serving.json" >"$tmp/serving.conf"
printf '[hems]\nrole = initial\nnode_id = init-1\npolicy_file = %s\n' "$tmp/initial.json" >"$tmp/initial.conf"
start() { # name cwmp admin; sets $started (the hemsd's own pid: taskset execs it)
    local pre=()
    [[ -n ${HEMSD_PIN:-} ]] && pre=(taskset -c "$HEMSD_PIN")
    "${pre[@]}" "$BUILD/hemsd" --config "$tmp/$1.conf" --data-dir "$tmp/$1-data" \
        --cwmp-listen 127.0.0.1:$2 --admin-listen 127.0.0.1:$3 --shards "$SHARDS" \
        --log-level warn >"$tmp/$1.log" 2>&1 &
    started=$!
}
start serving $SP $SA; spid=$started
start initial $IP $IA; ipid=$started
for port in $SA $IA; do
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
        sleep 0.1
    done
done
kill -0 $spid $ipid || { tail -n 3 "$tmp"/*.log; exit 1; }
rss() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
s_rss0=$(rss $spid VmRSS); i_rss0=$(rss $ipid VmRSS)
echo "boot storm: $DEVICES HeNBs, rate ${RATE} (0 = all at once), $WORKERS loadgen workers," \
     "$SOURCES source addresses, hemsd --shards $SHARDS x 2 nodes, nofile $(ulimit -n)"
src_last=$((1 + SOURCES))
rate_opt=()
[[ $RATE != 0 ]] && rate_opt=(--rate "$RATE")
t0=$(date +%s.%N)
# shellcheck disable=SC2086
lgpre=()
[[ -n ${LG_PIN:-} ]] && lgpre=(taskset -c "$LG_PIN")
[[ ${STRICT:-1} == 1 ]] && EXTRA="--strict-backoff $EXTRA"
"${lgpre[@]}" "$BUILD/hems-loadgen" --target 127.0.0.1:$IP --scenario discovery \
    --devices "$DEVICES" --first-serial 1000000 --workers "$WORKERS" \
    --source "127.0.0.2-127.0.0.$src_last" "${rate_opt[@]}" --retry-min "$RETRY_MIN" \
    --retry-mult "$RETRY_MULT" --max-retries "$MAX_RETRIES" --timeout "$TIMEOUT" \
    --server-pid $spid --json "$tmp/lg.json" --quiet $EXTRA >"$tmp/lg.out" || true
t1=$(date +%s.%N)
tail -n 30 "$tmp/lg.out"
s_hwm=$(rss $spid VmHWM); s_rss1=$(rss $spid VmRSS)
i_hwm=$(rss $ipid VmHWM); i_rss1=$(rss $ipid VmRSS)
curl -s "http://127.0.0.1:$SA/metrics" >"$tmp/serving.metrics"
curl -s "http://127.0.0.1:$IA/metrics" >"$tmp/initial.metrics"
python3 - "$tmp" "$DEVICES" "$RETRY_MIN" "$RETRY_MULT" "$MAX_RETRIES" "$t0" "$t1" \
    "$s_rss0" "$s_rss1" "$s_hwm" "$i_rss0" "$i_rss1" "$i_hwm" <<'PY'
import json, os, re, sys
d, n = sys.argv[1], int(sys.argv[2])
m, k, maxr = float(sys.argv[3]), float(sys.argv[4]) / 1000, int(sys.argv[5])
t0, t1 = float(sys.argv[6]), float(sys.argv[7])
s_rss0, s_rss1, s_hwm, i_rss0, i_rss1, i_hwm = (int(x) for x in sys.argv[8:14])
r = json.load(open(os.path.join(d, "lg.json")))
disc = r.get("discovery", {})
reg = disc.get("registered", 0)
print("registered %d of %d HeNBs in %.1f s (loadgen elapsed %.1f s, wall %.1f s): %.0f/s"
      % (reg, n, r["elapsed_s"], r["elapsed_s"], t1 - t0, reg / max(r["elapsed_s"], 1e-9)))
print("sessions ok %d (2 per device: initial + serving), redirects %d, fallbacks %d"
      % (r["sessions"]["ok"], disc.get("redirects", 0), disc.get("fallbacks", 0)))
errs = {e: c for e, c in r["errors"].items() if c}
print("errors:", errs)
# the quickest schedule TR-069 allows: retry i waits at least m * k^(i-1) (3.2.1.1)
el, waited, allowed = r["elapsed_s"], 0.0, 0
while allowed < maxr and waited + m * k ** allowed <= el:
    waited += m * k ** allowed
    allowed += 1
rmax, dmax = r.get("retries_max"), r.get("retries_device_max")
# RetryCount restarts at 0 after a successful session (each device has two: Initial and
# Serving HeMS), so the bound applies per session
print("retries: %d extra attempts in all; most by one session %s (by one device, both "
      "sessions: %s); the TR-069 backoff (m=%g s, k=%g) allows a session at most %d in "
      "%.1f s%s" % (r["retries"], rmax, dmax, m, k, allowed, el,
                    "" if rmax is None else (": OK" if rmax <= allowed else ": EXCEEDED")))
if r.get("retries_hist"):
    print("sessions by retries:", r["retries_hist"])
lat = r["latency_us"]
for h in ("session", "admitted", "exchange"):
    if h in lat:
        v = lat[h]
        print("%-9s p50 %.2f s  p99 %.2f s  max %.2f s" % (h, v["p50"] / 1e6, v["p99"] / 1e6, v["max"] / 1e6))
def adm(name):
    out = {}
    for line in open(os.path.join(d, name + ".metrics")):
        if line.startswith("hems_admission_") and not line.startswith("#"):
            key, val = line.rsplit(" ", 1)
            out[key] = val.strip()
    return out
for node in ("initial", "serving"):
    a = adm(node)
    keep = {k: v for k, v in a.items() if "total" in k or "enabled" in k}
    print("%s admission counters:" % node)
    for k_, v in sorted(keep.items()):
        print("   %s %s" % (k_, v))
for node, r0, r1, hwm in (("serving", s_rss0, s_rss1, s_hwm), ("initial", i_rss0, i_rss1, i_hwm)):
    print("%s hemsd RSS: start %.1f MB, end %.1f MB, peak %.1f MB; (end - start) / device "
          "%.0f B, peak / device %.0f B" % (node, r0 / 1024, r1 / 1024, hwm / 1024,
                                             (r1 - r0) * 1024.0 / n, hwm * 1024.0 / n))
print("loadgen: peak RSS per worker %.1f MB, cpu %.1f s" % (r["loadgen"].get("worker_max_rss_kb", 0) / 1024,
      r["loadgen"].get("cpu_s", 0)))
PY
