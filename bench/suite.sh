#!/usr/bin/env bash
# The benchmark suite: the standard hems-loadgen scenarios against a fresh hemsd and, in the
# same run, against the floor: Debian's nginx answering the same HTTP exchanges with static
# replies (200 + an InformResponse for an Inform POST, 204 for the empty POST, "ok" for
# /healthz). One worker each (hemsd --shards 1, nginx master_process off), so each server is
# one PID whose CPU and memory the load generator samples. Prints one table.
#
#   healthz-keepalive  POST /healthz, 2 KB body, 100 requests per connection, 32 in flight
#   periodic           new TCP connection, 7 KB Inform (40 params), InformResponse, empty
#                      POST, 204, close; hemsd commits the device update before answering
#   boot               factory-state registration (0 BOOTSTRAP + 1 BOOT) of N new devices
#   hold               idle connections held open: server bytes per connection
#
# Usage: bench/suite.sh [BUILD_DIR] [SECONDS] [DEVICES]   (ops/install-deps.sh --bench first)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-release}
SECS=${2:-10}
DEVICES=${3:-20000}
command -v nginx >/dev/null || { echo "run ops/install-deps.sh --bench" >&2; exit 1; }
[[ -x $BUILD/hemsd && -x $BUILD/hems-loadgen ]] || {
  echo "build first: cmake -B $BUILD -DCMAKE_BUILD_TYPE=Release -DHM_TESTS=OFF && cmake --build $BUILD" >&2; exit 1; }
tmp=$(mktemp -d /tmp/hems-suite.XXXXXX)
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
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  server {
    listen 127.0.0.1:$NP;
    location = /healthz { default_type text/plain; return 200 "ok\n"; }
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
  --shards 1 --log-level warn --set http.idle_timeout_ms=300000 \
  --set http.header_timeout_ms=300000 2>"$tmp/hemsd.log" &
hpid=$!
sleep 1

lg() { # name port pid args... -> json path
  local name=$1 port=$2 pid=$3; shift 3
  "$BUILD/hems-loadgen" --target 127.0.0.1:$port --server-pid "$pid" --quiet \
    --json "$tmp/$name.json" "$@" >/dev/null
}
for side in hemsd nginx; do
  if [[ $side == hemsd ]]; then port=$HP; pid=$hpid; else port=$NP; pid=$npid; fi
  lg $side-healthz $port $pid --scenario healthz --post --body-size 2048 --keepalive 100 \
     --concurrency 32 --duration "$SECS"
  lg $side-boot $port $pid --scenario boot --devices "$DEVICES" --concurrency 64 \
     --first-serial 1000000
  lg $side-periodic $port $pid --scenario periodic --devices "$DEVICES" --concurrency 32 \
     --duration "$SECS" --first-serial 1000000
  lg $side-hold $port $pid --scenario hold --devices 10000 --interval 60 --duration 8
done
python3 - "$tmp" <<'PY'
import json, os, sys
d = sys.argv[1]
def r(n):
    return json.load(open(os.path.join(d, n + ".json")))
def cpu(n):
    x = r(n)
    per = x["server"]["cpu_us_per_session"]
    return per, x["sessions"]["ok"], x["errors"]["total"]
rows = []
for sc, unit in (("healthz", "us/request"), ("boot", "us/registration"), ("periodic", "us/session")):
    h, n = cpu("hemsd-" + sc), cpu("nginx-" + sc)
    if sc == "healthz":  # sessions are connections of 100 requests each
        h, n = (h[0] / 100, h[1] * 100, h[2]), (n[0] / 100, n[1] * 100, n[2])
    rows.append((sc, unit, h, n))
print("%-10s %-16s %12s %12s %8s %10s %10s" % ("scenario", "server CPU", "hemsd", "nginx", "ratio",
                                               "hemsd ok", "errors"))
for sc, unit, h, n in rows:
    print("%-10s %-16s %12.1f %12.1f %8.2f %10d %10d" % (sc, unit, h[0], n[0], h[0] / n[0], h[1], h[2] + n[2]))
def mem(n):
    x = r(n)
    held = x["held"]["peak"] or 1
    return (x["server"]["rss_kb_peak"] - x["server"]["rss_kb_start"]) * 1024.0 / held, held
hm, hh = mem("hemsd-hold")
nm, nh = mem("nginx-hold")
print("%-10s %-16s %12.0f %12.0f %8.2f %10d" % ("hold", "bytes/idle conn", hm, nm, hm / nm if nm else 0, hh))
b = r("hemsd-boot")
print("boot storm: %d devices registered in %.1f s (%.0f/s), %d retried after 8005"
      % (b["sessions"]["ok"], b["elapsed_s"], b["sessions"]["per_s"], b["errors"]["retry_8005"]))
PY
