#!/usr/bin/env bash
# Periodic-Inform sessions: hemsd (the real ACS, durable device update per session) vs the
# nginx floor (Debian's nginx answering the same HTTP exchanges with static replies: 200 +
# an InformResponse for the Inform POST, 204 for the empty POST), both driven by the same
# hems-loadgen run in the same script, one worker thread/process each (hemsd --shards 1,
# nginx master_process off), so each server is one PID whose CPU the load generator samples.
#
# Each session: new TCP connection, 7 KB Inform with 40 parameters, InformResponse, empty
# POST, 204, close. Prints server CPU microseconds per session and the ratio hemsd/nginx.
#
# Usage: bench/cwmp_vs_nginx.sh [BUILD_DIR] [SECONDS] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-release}
SECS=${2:-10}
CONC=${3:-32}
command -v nginx >/dev/null || { echo "run ops/install-deps.sh --bench" >&2; exit 1; }
tmp=$(mktemp -d /tmp/hems-cwmpbench.XXXXXX)
HP=21700; HA=21701; NP=21702
cleanup() { kill ${hpid:-} ${npid:-} 2>/dev/null || true; sleep 0.3; rm -rf "$tmp"; }
trap cleanup EXIT

IR='<?xml version="1.0" encoding="UTF-8"?><soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:soap-enc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cwmp="urn:dslforum-org:cwmp-1-2"><soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">1</cwmp:ID></soap-env:Header><soap-env:Body><cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse></soap-env:Body></soap-env:Envelope>'
cat > "$tmp/nginx.conf" <<NGX
master_process off;
daemon off;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events { worker_connections 20000; }
worker_rlimit_nofile 20000;
http {
  access_log off;
  client_body_buffer_size 16k;
  server {
    listen 127.0.0.1:$NP;
    location = /cwmp {
      if (\$http_content_length = "0") { return 204; }
      default_type 'text/xml; charset="utf-8"';
      return 200 '$IR';
    }
  }
}
NGX
nginx -c "$tmp/nginx.conf" -p "$tmp" 2>/dev/null &
npid=$!
"$BUILD/hemsd" --data-dir "$tmp/data" --cwmp-listen 127.0.0.1:$HP --admin-listen 127.0.0.1:$HA \
  --shards 1 --log-level warn 2>"$tmp/hemsd.log" &
hpid=$!
sleep 1
run() { # port pid -> json path
  "$BUILD/hems-loadgen" --target 127.0.0.1:$1 --scenario periodic --concurrency "$CONC" \
    --devices 5000 --duration "$SECS" --server-pid "$2" --quiet --json "$tmp/$3.json" >/dev/null
  echo "$tmp/$3.json"
}
h=$(run $HP $hpid hemsd)
n=$(run $NP $npid nginx)
python3 - "$h" "$n" <<'PY'
import json, sys
h, n = (json.load(open(p)) for p in sys.argv[1:3])
def row(name, r):
    s = r["server"]
    return (name, r["sessions"]["ok"], r["sessions"]["per_s"], s["cpu_us_per_session"],
            r["errors"]["total"])
print("%-8s %10s %12s %18s %7s" % ("server", "sessions", "sessions/s", "server us/session", "errors"))
for name, r in (("hemsd", h), ("nginx", n)):
    print("%-8s %10d %12.0f %18.1f %7d" % row(name, r))
print("ratio hemsd/nginx server CPU per session: %.2f (target <= 1.5)"
      % (h["server"]["cpu_us_per_session"] / n["server"]["cpu_us_per_session"]))
PY
