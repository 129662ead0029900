#!/usr/bin/env bash
# Admission control under overload: the curve offered vs completed sessions, with and without
# the controller, in one run (docs/admission.md, docs/benchmarks-admission.md).
#
#   1. peak: closed loop (periodic scenario, PEAK_CONC in flight, default 64) against a fresh
#      hemsd --shards 1; the completed rate is the peak P. The fleet is large enough
#      (SECONDS x 40,000 devices, or PEAK_DEVICES) that every session is a device's first, as
#      in the open-loop runs below (their fleets are rate x interval devices, each connecting
#      once in the window): a device's later sessions are cheaper (its record exists), and
#      a peak measured on a 20,000-device pool was 15 % above what hemsd
#      completes of first sessions, which scaled every done/P below it down by that much.
#      Every run, peak included, gives its devices scattered serials (hems-loadgen
#      --scatter-serials): under overload the shed devices come back seconds later, so the
#      sessions hemsd admits reach its store in no particular key order, as a real fleet's
#      do; a closed loop with serials 1, 2, 3, ... writes B-tree appends instead, which cost
#      hemsd ~25 % less per session (LMDB writes neighbouring new pages, not scattered
#      copy-on-write pages) and made P ~25 % high against the open-loop runs.
#   2. for m in 0.5 1 2 3: open loop at m*P sessions/s (new devices every --interval, TR-069
#      backoff and Retry-After honoured, coordinated-omission corrected), against a fresh hemsd
#      in three modes: off (admission.enabled=false), adaptive (the defaults), cap (adaptive
#      plus admission.max_rate_per_shard = 0.9 P, the capacity-planning setting). Retry-After is 2 s (1..3 s jittered) so shed
#      devices come back inside the window and their retries are part of the offered load.
#
# Reported per run: offered (sessions/s started by the load generator, retries excluded),
# completed (sessions ending in 204 per second of the window), completed/P, p99 of admitted
# sessions (the successful attempt, connect to 204), p99 of all sessions from their intended
# start (includes backoff after a shed), p99 of the admitted sessions from their TCP connection's
# establishment (leaves out the client's SYN retransmissions while the accept queue was full:
# the time the server's own queues and work took), sheds, server peak RSS.
#
# Usage: [PEAK=N] [HEMSD_PIN=CPUS LG_PIN=CPUS] [LOADS="0.5 1 2 3"] [MODES="off adaptive cap"]
#        bench/admission.sh [BUILD_DIR] [SECONDS]
#        (defaults: build, 4). PEAK skips the peak measurement (e.g. the figure of a quieter
#        run). HEMSD_PIN / LG_PIN: taskset CPU lists for hemsd and the load generator (e.g.
#        0 and 1: each its own core, so neither starves the other).
#        HEMSD_CPU=F (e.g. 0.3, needs root and the cgroup v1 or v2 cpu controller): hemsd runs in
#        a cgroup limited to F of one CPU (CFS quota, 10 ms period), peak included, so that a
#        load generator on a core of its own can offer 3x hemsd's peak on a 2-CPU machine.
#        HEMSD_EXTRA: more hemsd options for every run (e.g. "--set admission.target_lag_ms=100").
#        TLS=1: the sessions go over TLS (server-authenticated, tls.client_auth=none, no
#        resumption unless TLS_RESUME=1) to hemsd's CWMP TLS listener; a shed connection is
#        then reset before its handshake (docs/admission.md).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
SECS=${2:-4}
[[ -x $BUILD/hemsd && -x $BUILD/hems-loadgen ]] || { echo "build $BUILD first" >&2; exit 1; }
tmp=$(mktemp -d /tmp/hems-adm.XXXXXX)
PORT=21710; APORT=21711; TPORT=21712
tls_srv=(); tls_lg=()
if [[ -n ${TLS:-} ]]; then
  ops/make-test-pki.sh "$tmp/pki" SN0001 >/dev/null
  tls_srv=(--set server.cwmps_listen=127.0.0.1:$TPORT --set tls.cert="$tmp/pki/server-ec.pem"
           --set tls.key="$tmp/pki/server-ec.key" --set tls.client_auth=none)
  tls_lg=(--tls)
  [[ -n ${TLS_RESUME:-} ]] && tls_lg+=(--tls-resume)
fi
hpid=
cleanup() { [[ -n $hpid ]] && kill "$hpid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
cg=
if [[ -n ${HEMSD_CPU:-} ]]; then
  quota=$(python3 -c "print(max(1000, int(10000 * float('$HEMSD_CPU'))))")
  if [[ -d /sys/fs/cgroup/cpu && ! -f /sys/fs/cgroup/cgroup.controllers ]]; then # cgroup v1
    cg=/sys/fs/cgroup/cpu/hems-adm.$$
    mkdir "$cg" && echo 10000 >"$cg/cpu.cfs_period_us" && echo "$quota" >"$cg/cpu.cfs_quota_us"
  else # cgroup v2
    cg=/sys/fs/cgroup/hems-adm.$$
    mkdir "$cg" && echo "$quota 10000" >"$cg/cpu.max"
  fi || { echo "HEMSD_CPU: cannot make a cgroup (root and a cpu controller needed)" >&2; exit 1; }
  trap 'cleanup; rmdir "$cg" 2>/dev/null || true' EXIT
fi
net=$((RANDOM % 200 + 1))

start_hemsd() { # enabled [max_rate]
  rm -rf "$tmp/data"
  local pre=()
  [[ -n ${HEMSD_PIN:-} ]] && pre=(taskset -c "$HEMSD_PIN")
  # in the cgroup from its first instruction: every thread it starts inherits the quota
  [[ -n $cg ]] && pre=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" "${pre[@]}")
  "${pre[@]}" "$BUILD/hemsd" --data-dir "$tmp/data" --cwmp-listen 127.0.0.1:$PORT \
    --admin-listen 127.0.0.1:$APORT --shards 1 --log-level error \
    --set admission.enabled="$1" --set admission.max_rate_per_shard="${2:-0}" \
    --set admission.retry_after_s=2 "${tls_srv[@]}" ${HEMSD_EXTRA:-} 2>>"$tmp/hemsd.log" &
  hpid=$!
  for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$APORT/healthz" >/dev/null 2>&1 && return 0; sleep 0.1
  done
  echo "hemsd did not start" >&2; exit 1
}
stop_hemsd() {
  curl -s "http://127.0.0.1:$APORT/metrics" >"$tmp/$1.metrics" || true
  kill "$hpid"; wait "$hpid" 2>/dev/null || true; hpid=
}
lg() { # name args...
  local name=$1; shift
  net=$((net % 200 + 1)) # fresh source addresses: no TIME_WAIT left from the previous run
  local pre=()
  [[ -n ${LG_PIN:-} ]] && pre=(taskset -c "$LG_PIN")
  "${pre[@]}" "$BUILD/hems-loadgen" --target 127.0.0.1:$([[ -n ${TLS:-} ]] && echo $TPORT || echo $PORT) \
    --server-pid "$hpid" --quiet "${tls_lg[@]}" \
    --source "127.0.$net.1-127.0.$net.60" --scatter-serials --json "$tmp/$name.json" "$@" \
    >/dev/null 2>&1 || true
}

if [[ -n ${PEAK:-} ]]; then
  peak=$PEAK
  echo "peak (given): $peak sessions/s   machine: $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
else
  # the best of two closed-loop runs (64 in flight): one unlucky run on a shared machine
  # would scale the whole curve down
  peak=0
  for i in 1 2; do
    start_hemsd true
    lg peak$i --scenario periodic --devices "${PEAK_DEVICES:-$((SECS * 40000))}" \
      --concurrency "${PEAK_CONC:-64}" --duration "$SECS"
    stop_hemsd peak$i
    p=$(python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(int(j['sessions']['ok']/$SECS))" "$tmp/peak$i.json")
    (( p > peak )) && peak=$p
  done
  echo "peak (closed loop, ${PEAK_CONC:-64} in flight, best of 2 x ${SECS}s): $peak sessions/s   machine: $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)${HEMSD_CPU:+, hemsd limited to $HEMSD_CPU CPU}"
fi

LOADS=${LOADS:-0.5 1 2 3}
MODES=${MODES:-off adaptive cap}
for m in $LOADS; do
  rate=$(python3 -c "print(int($peak*$m))")
  for mode in $MODES; do
    case $mode in
      off) start_hemsd false ;;
      adaptive) start_hemsd true ;;
      cap) start_hemsd true $((peak * 9 / 10)) ;;
    esac
    lg "r$m-$mode" --scenario periodic --rate "$rate" --interval "${INTERVAL:-2}" --duration "$SECS" --drain 2 \
      --timeout 10
    stop_hemsd "r$m-$mode"
  done
done

python3 - "$tmp" "$peak" "$SECS" "$LOADS" "$MODES" <<'PY'
import json, os, re, sys
d, peak, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
loads, modes = sys.argv[4].split(), sys.argv[5].split()
def metric(name, key):
    try:
        for line in open(os.path.join(d, name + ".metrics")):
            if line.startswith(key + " "):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0
def shed(name):
    t = 0.0
    for line in open(os.path.join(d, name + ".metrics")):
        if line.startswith("hems_admission_shed_total{"):
            t += float(line.split()[1])
    return int(t)
print("%-5s %-9s %9s %8s %7s %12s %11s %11s %7s %7s %6s %6s" % ("load", "admission",
      "offered/s", "done/s", "done/P", "p99 admit ms", "p99 srvd ms", "p99 all ms", "shed",
      "rss MB", "srv%", "lg%"))
for m in loads:
    for mode in modes:
        n = "r%s-%s" % (m, mode)
        j = json.load(open(os.path.join(d, n + ".json")))
        started = j["sessions"]["started"]
        ok = j["sessions"]["ok"]
        lat = j["latency_us"]
        rss = j.get("server", {}).get("rss_kb_peak", 0) / 1024
        el = j.get("elapsed_s", secs) or secs
        srv = 100.0 * j.get("server", {}).get("cpu_s", 0) / el
        lgc = j.get("loadgen", {}).get("cpu_s", 0)
        srvd = lat.get("served", {}).get("p99", 0) / 1000
        print("%-5s %-9s %9.0f %8.0f %6.0f%% %12.1f %11.1f %11.1f %7d %7.0f %6.0f %6s" % (
            m + "x", mode, started / secs, ok / secs,
            100.0 * ok / secs / peak, lat["admitted"]["p99"] / 1000, srvd,
            lat["session"]["p99"] / 1000,
            shed(n), rss, srv, "%.0f" % (100.0 * lgc / el) if lgc else "-"))
PY
