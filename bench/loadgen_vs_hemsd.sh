#!/bin/bash
# CPU per CWMP session of hems-loadgen versus hemsd (docs/benchmarks-loadgen.md).
# Starts a fresh hemsd on loopback, registers DEVICES HeNBs with a boot storm, then runs the
# periodic scenario at each of RATES sessions/s for DURATION seconds, REPEAT times, and
# prints one markdown table row per run.
#   bench/loadgen_vs_hemsd.sh [HEMSD] [HEMS_LOADGEN [HEMS_LOADGEN_2 ...]]
# With several load generators (e.g. an older build), each row is run by each of them in
# turn against the same hemsd, and the first column names the binary.
# Environment: DEVICES (5000), RATES ("500 1000 2000"), DURATION (10), REPEAT (1),
#              SHARDS (1), WORKERS (1), EXTRA (more hems-loadgen options),
#              HEMSD_PIN / LG_PIN (taskset CPU lists, e.g. 0 and 1)
set -euo pipefail
HEMSD=${1:-build/hemsd}
LG=${2:-build/hems-loadgen}
LGS=("${@:2}")
[[ ${#LGS[@]} -eq 0 ]] && LGS=("$LG")
DEVICES=${DEVICES:-5000}
RATES=${RATES:-"500 1000 2000"}
DURATION=${DURATION:-10}
REPEAT=${REPEAT:-1}
SHARDS=${SHARDS:-1}
WORKERS=${WORKERS:-1}
EXTRA=${EXTRA:-}

tmp=$(mktemp -d /tmp/loadgen-bench.XXXXXX)
port=$((12000 + RANDOM % 18000)) # below the ephemeral range: no clash with clients
hpre=(); lpre=()
[[ -n ${HEMSD_PIN:-} ]] && hpre=(taskset -c "$HEMSD_PIN")
[[ -n ${LG_PIN:-} ]] && lpre=(taskset -c "$LG_PIN")
"${hpre[@]}" "$HEMSD" --data-dir "$tmp/data" --cwmp-listen 127.0.0.1:$port \
    --admin-listen 127.0.0.1:$((port + 1)) --shards "$SHARDS" >"$tmp/hemsd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.1
done

"$LG" --target 127.0.0.1:$port --scenario boot --devices "$DEVICES" --rate 1000 \
    --retry-min 0.5 --quiet --json "$tmp/boot.json" >/dev/null
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); \
print('boot storm: %d/%d devices registered, errors %d' % (r['sessions']['ok'], $DEVICES, r['errors']['total']))" "$tmp/boot.json"

echo "| loadgen | rate/s | done/s | session p50 / p99 (ms) | loadgen us/session (all / user) | hemsd us/session (all / user) | ratio all | ratio user |"
echo "|---|---|---|---|---|---|---|---|"
for rate in $RATES; do
    for _ in $(seq "$REPEAT"); do
      for lg in "${LGS[@]}"; do
        # shellcheck disable=SC2086
        "${lpre[@]}" "$lg" --target 127.0.0.1:$port --scenario periodic --devices "$DEVICES" --rate "$rate" \
            --duration "$DURATION" --workers "$WORKERS" --server-pid $pid --retry-min 0.5 \
            --quiet --json "$tmp/p.json" $EXTRA >/dev/null
        python3 - "$tmp/p.json" "$rate" "$lg" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s, l, v = r["server"], r["loadgen"], r["latency_us"]["session"]
print("| %s | %s | %.0f | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %.3f | %.3f |" % (
    sys.argv[3], sys.argv[2], r["sessions"]["per_s"], v["p50"] / 1e3, v["p99"] / 1e3,
    l["cpu_us_per_session"], l["user_us_per_session"],
    s["cpu_us_per_session"], s["user_us_per_session"],
    r["cpu_ratio_loadgen_to_server"], r["user_cpu_ratio_loadgen_to_server"] or 0))
if r["errors"]["total"]:
    print("  errors:", {k: n for k, n in r["errors"].items() if n})
PY
      done
    done
done
