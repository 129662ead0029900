#!/usr/bin/env bash
# CPU per CWMP session of hems-loadgen versus hemsd, with the loopback receive path charged
# to the receiver (docs/benchmarks-loadgen.md, "Who pays for loopback").
#
# On loopback the kernel runs the receiving socket's TCP input (net_rx_action: IP, TCP,
# queueing into the peer's socket, waking it) in the softirq of the *sending* task: the
# 7 KB Inform that hems-loadgen sends is received on hemsd's behalf in hems-loadgen's
# context, and getrusage charges it to the load generator. On a real network that work runs
# on the receiving host. This script samples hemsd's threads and the load generator's processes
# with perf (task clock, softirq work done in their context included, which getrusage leaves
# out when the kernel accounts IRQ time apart) while a closed-loop periodic run goes (hemsd pinned on HEMSD_PIN, the load generator on LG_PIN, so each CPU's backlog is
# drained by the task that filled it), then moves every sample whose stack holds
# net_rx_action to the other side, and prints both ratios.
#
#   bench/loadgen_cpu_split.sh [BUILD_DIR] [SECONDS]      (build, 6)
# Environment: HEMSD_PIN (0), LG_PIN (1), CONC (32 sessions in flight), DEVICES (5000),
#   ENGINE (auto | epoll | io_uring), FREQ (perf sampling Hz, 2999). Needs perf and root (or
#   perf_event_paranoid <= 1).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
SECS=${2:-6}
HEMSD_PIN=${HEMSD_PIN:-0}
LG_PIN=${LG_PIN:-1}
CONC=${CONC:-32}
DEVICES=${DEVICES:-5000}
ENGINE=${ENGINE:-auto}
FREQ=${FREQ:-2999}
command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 1; }
[[ -x $BUILD/hemsd && -x $BUILD/hems-loadgen ]] || { echo "build $BUILD first" >&2; exit 1; }
tmp=$(mktemp -d /tmp/hems-cpusplit.XXXXXX)
port=$((12000 + RANDOM % 18000))
hpid=
cleanup() { [[ -n $hpid ]] && kill "$hpid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
taskset -c "$HEMSD_PIN" "$BUILD/hemsd" --data-dir "$tmp/data" --cwmp-listen 127.0.0.1:$port \
  --admin-listen 127.0.0.1:$((port + 1)) --shards 1 --log-level error \
  --set admission.enabled=false 2>"$tmp/hemsd.log" &
hpid=$!
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$((port + 1))/healthz" >/dev/null 2>&1 && break; sleep 0.1
done
net=$((RANDOM % 200 + 1))
# one perf attached to hemsd's threads, one following the load generator and its worker
# processes: other hemsd or load generators on the machine are not counted
perf record -g -F "$FREQ" -p "$hpid" -o "$tmp/hemsd.perf" >/dev/null 2>&1 &
perfpid=$!
sleep 0.5
perf record -g -F "$FREQ" -o "$tmp/lg.perf" -- taskset -c "$LG_PIN" "$BUILD/hems-loadgen" \
  --target 127.0.0.1:$port --server-pid "$hpid" \
  --quiet --source "127.0.$net.1-127.0.$net.20" --json "$tmp/lg.json" --scenario periodic \
  --devices "$DEVICES" --concurrency "$CONC" --duration "$SECS" --workers 1 \
  --engine "$ENGINE" >/dev/null 2>&1
kill -INT "$perfpid"; wait "$perfpid" || true
perf script -i "$tmp/hemsd.perf" -F comm,period,ip,sym 2>/dev/null >"$tmp/hemsd.txt"
perf script -i "$tmp/lg.perf" -F comm,period,ip,sym 2>/dev/null >"$tmp/lg.txt"
python3 - "$tmp/hemsd.txt" "$tmp/lg.txt" "$tmp/lg.json" <<'PY'
import json, sys
# perf script: a header line "comm period" then the stack (tab-indented), a blank line
# between samples
ns = {}  # (side, rx) -> ns of CPU
def flush(side, comm, period, stack):
    if comm is None or comm in ("perf", "perf-exec", "taskset"):
        return
    rx = any("net_rx_action" in s for s in stack)
    ns[(side, rx)] = ns.get((side, rx), 0) + period
for side, path in (("hemsd", sys.argv[1]), ("lg", sys.argv[2])):
    comm, period, stack = None, 0, []
    for line in open(path, errors="replace"):
        if not line.strip():
            flush(side, comm, period, stack)
            comm, stack = None, []
            continue
        if comm is None and not line.startswith("\t"):
            parts = line.split()
            comm, period = " ".join(parts[:-1]), int(parts[-1])
            continue
        stack.append(line.strip())
    flush(side, comm, period, stack)
j = json.load(open(sys.argv[3]))
n = j["sessions"]["ok"]
g = lambda side, rx: ns.get((side, rx), 0) / 1e3 / max(n, 1)  # us per session
lg_all, lg_rx = g("lg", False) + g("lg", True), g("lg", True)
hs_all, hs_rx = g("hemsd", False) + g("hemsd", True), g("hemsd", True)
print("sessions %d in %s s; perf samples (task clock, softirq run in the task included), "
      "us of CPU per session:" % (n, j.get("elapsed_s")))
print("  hems-loadgen %.1f (of which receive path run for hemsd %.1f)" % (lg_all, lg_rx))
print("  hemsd        %.1f (of which receive path run for hems-loadgen %.1f)" % (hs_all, hs_rx))
print("  getrusage:   hems-loadgen %.1f, hemsd %.1f" % (j["loadgen"]["cpu_us_per_session"],
                                                   j["server"]["cpu_us_per_session"]))
print("ratio loadgen / hemsd, as charged by the kernel: %.2f" % (lg_all / hs_all))
lg_own = lg_all - lg_rx + hs_rx
hs_own = hs_all - hs_rx + lg_rx
print("ratio with each receive path charged to its receiver (as on a network): %.2f "
      "(loadgen %.1f, hemsd %.1f us/session)" % (lg_own / hs_own, lg_own, hs_own))
PY
