#!/usr/bin/env bash
# HTTP engine benchmark: hemsd vs Debian's nginx, same machine, same wrk load, same run.
#
# Both servers answer POST /healthz (a 2 KB body read and discarded, a 3-byte reply) with the
# same number of worker threads/processes. For each scenario it prints requests per server
# CPU-second (user+system time of the server's processes, from /proc) and the ratio
# hemsd/nginx. Scenarios: keep-alive with 100 and 1000 connections, and connection churn
# (every third request carries "Connection: close", so clients reconnect).
#
# Usage: bench/http_vs_nginx.sh [BUILD_DIR] [SECONDS] [WORKERS]
# Needs: ops/install-deps.sh --bench (nginx-light, wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-release}
SECS=${2:-10}
WORKERS=${3:-$(nproc)}
HEMSD="$BUILD/hemsd"
[[ -x "$HEMSD" ]] || { echo "build hemsd first: cmake -B $BUILD -DCMAKE_BUILD_TYPE=Release -DHM_TESTS=OFF && cmake --build $BUILD" >&2; exit 1; }
command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "run ops/install-deps.sh --bench" >&2; exit 1; }

tmp=$(mktemp -d /tmp/hems-bench.XXXXXX)
HP=18547; HA=18557; NP=18580
cleanup() { [[ -n "${hpid:-}" ]] && kill "$hpid" 2>/dev/null; [[ -f $tmp/nginx.pid ]] && kill "$(cat $tmp/nginx.pid)" 2>/dev/null; sleep 0.5; rm -rf "$tmp"; }
trap cleanup EXIT

cat > "$tmp/nginx.conf" <<NGX
worker_processes $WORKERS;
worker_cpu_affinity auto;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events { worker_connections 20000; }
worker_rlimit_nofile 20000;
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  client_body_buffer_size 16k;
  server {
    listen 127.0.0.1:$NP reuseport;
    location = /healthz { default_type text/plain; return 200 "ok\n"; }
  }
}
NGX
nginx -c "$tmp/nginx.conf" -p "$tmp" 2>/dev/null || nginx -c "$tmp/nginx.conf" -p "$tmp"
"$HEMSD" --data-dir "$tmp/data" --cwmp-listen 127.0.0.1:$HP --admin-listen 127.0.0.1:$HA \
  --shards "$WORKERS" --log-level warn 2>"$tmp/hemsd.log" &
hpid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HP/healthz" >/dev/null && break; sleep 0.1; done

cat > "$tmp/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = string.rep("x", 2048)
wrk.headers["Content-Type"] = "text/xml"
LUA
cat > "$tmp/churn.lua" <<'LUA'
local n = 0
local body = string.rep("x", 2048)
request = function()
  n = n + 1
  local h = { ["Content-Type"] = "text/xml" }
  if n % 3 == 0 then h["Connection"] = "close" end
  return wrk.format("POST", "/healthz", h, body)
end
LUA

cpu_of() { # total user+system ticks of the given pids
  local t=0
  for p in "$@"; do
    [[ -r /proc/$p/stat ]] || continue
    read -r -a f < <(sed 's/^.*) //' /proc/$p/stat)
    t=$((t + f[11] + f[12]))   # utime + stime, all threads of the process
  done
  echo $t
}
nginx_pids() { local m; m=$(cat "$tmp/nginx.pid"); echo "$m $(pgrep -P "$m" | xargs)"; }
HZ=$(getconf CLK_TCK)

run() { # name port script conns -> prints "requests cpu_seconds"
  local port=$1 script=$2 conns=$3 pids=$4
  local c0 c1 out reqs
  c0=$(cpu_of $pids)
  out=$(wrk -t2 -c"$conns" -d"${SECS}s" -s "$script" "http://127.0.0.1:$port/healthz" 2>&1)
  c1=$(cpu_of $pids)
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  local errs; errs=$(echo "$out" | grep -E "Socket errors|Non-2xx" | tr '\n' ' ')
  echo "$reqs $(( c1 - c0 )) $errs"
}

printf "%-28s %14s %14s %10s %10s %8s\n" scenario hemsd_req hemsd_req/cpu-s nginx_req nginx_req/cpu-s ratio
for sc in "keepalive-100 post.lua 100" "keepalive-1000 post.lua 1000" "churn-every-3 churn.lua 100"; do
  set -- $sc
  read -r hr hc herr <<<"$(run $HP "$tmp/$2" "$3" "$hpid")"
  read -r nr nc nerr <<<"$(run $NP "$tmp/$2" "$3" "$(nginx_pids)")"
  awk -v n="$1" -v hr="$hr" -v hc="$hc" -v nr="$nr" -v nc="$nc" -v hz="$HZ" 'BEGIN {
    hps = hr / (hc / hz); nps = nr / (nc / hz);
    printf "%-28s %14d %14.0f %10d %14.0f %8.2f\n", n, hr, hps, nr, nps, hps / nps }'
  [[ -z "$herr$nerr" ]] || echo "   errors: hemsd: ${herr:-none} nginx: ${nerr:-none}"
done
