#!/usr/bin/env bash
# TLS benchmark: hemsd (BoringSSL on io_uring) vs Debian's nginx (OpenSSL), same machine,
# same certificates (ops/make-test-pki.sh: ECDSA P-256 server, mutual TLS with a P-256
# device certificate), same client, same run.
#
# For TLS 1.3 and 1.2 it runs `openssl s_time` for full handshakes (-new) and resumed ones
# (-reuse: tickets), each connection fetching one small response, and prints handshakes per
# server CPU-second (user+system time of the server's processes, from /proc) and the ratio
# hemsd/nginx. Each scenario runs ROUNDS times (default 2), alternating the servers, and
# keeps each server's best round (CPU time on a shared VM is inflated by noise). Then it opens N idle mTLS connections (one request each, kept open) to each
# server and prints the growth of the server's resident memory per connection.
#
# Usage: [IDLE_ONLY=1] [ROUNDS=n] bench/tls_vs_nginx.sh [BUILD_DIR] [SECONDS] [IDLE_CONNS]
# Needs: ops/install-deps.sh --bench (nginx-light), openssl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-release}
SECS=${2:-5}
NIDLE=${3:-1000}
HEMSD="$BUILD/hemsd"
[[ -x "$HEMSD" ]] || { echo "build hemsd first: cmake -B $BUILD -DCMAKE_BUILD_TYPE=Release -DHM_TESTS=OFF && cmake --build $BUILD" >&2; exit 1; }
command -v nginx >/dev/null && command -v openssl >/dev/null || { echo "run ops/install-deps.sh --bench" >&2; exit 1; }

tmp=$(mktemp -d /tmp/hems-tlsbench.XXXXXX)
HP=18647; HA=18657; HS=18648; NP=18680
cleanup() { [[ -n "${hpid:-}" ]] && kill "$hpid" 2>/dev/null; [[ -f $tmp/nginx.pid ]] && kill "$(cat $tmp/nginx.pid)" 2>/dev/null; sleep 0.5; rm -rf "$tmp"; }
trap cleanup EXIT
ops/make-test-pki.sh "$tmp/pki" SN0001 >/dev/null
P=$tmp/pki

cat > "$tmp/nginx.conf" <<NGX
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events { worker_connections 20000; }
worker_rlimit_nofile 20000;
http {
  access_log off;
  keepalive_timeout 600s;
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:$NP ssl;
    ssl_certificate $P/server-ec.pem;
    ssl_certificate_key $P/server-ec.key;
    ssl_client_certificate $P/ca.pem;
    ssl_verify_client on;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ecdh_curve X25519:prime256v1:secp384r1;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305;
    ssl_session_tickets on;
    ssl_session_cache shared:SSL:10m;
    ssl_session_timeout 1h;
    location / { return 405; }
  }
}
NGX
nginx -c "$tmp/nginx.conf" -p "$tmp" 2>/dev/null || nginx -c "$tmp/nginx.conf" -p "$tmp"
"$HEMSD" --data-dir "$tmp/data" --cwmp-listen 127.0.0.1:$HP --admin-listen 127.0.0.1:$HA \
  --shards 1 --log-level error -s server.cwmps_listen=127.0.0.1:$HS \
  -s tls.cert="$P/server-ec.pem" -s tls.key="$P/server-ec.key" -s tls.ca="$P/ca.pem" \
  -s http.idle_timeout_ms=600000 -s http.header_timeout_ms=600000 2>"$tmp/hemsd.log" &
hpid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HA/healthz" >/dev/null && break; sleep 0.1; done

cpu_of() { # total user+system ticks of the given pids
  local t=0
  for p in "$@"; do
    [[ -r /proc/$p/stat ]] || continue
    read -r -a f < <(sed 's/^.*) //' /proc/$p/stat)
    t=$((t + f[11] + f[12]))
  done
  echo $t
}
rss_of() { # total VmRSS (KiB) of the given pids
  local t=0
  for p in "$@"; do t=$((t + $(awk '/^VmRSS/ {print $2}' /proc/$p/status))); done
  echo $t
}
nginx_pids() { local m; m=$(cat "$tmp/nginx.pid"); echo "$m $(pgrep -P "$m" | xargs)"; }
HZ=$(getconf CLK_TCK)

hs_run() { # port mode(-new|-reuse) version pids... -> "handshakes cpu_seconds"
  local port=$1 mode=$2 ver=$3; shift 3
  local c0 c1 n r out
  c0=$(cpu_of "$@")
  out=$(openssl s_time -connect 127.0.0.1:$port $mode $ver -time "$SECS" -cert "$P/dev-SN0001.pem" \
        -key "$P/dev-SN0001.key" -CAfile "$P/ca.pem" -www /cwmp 2>/dev/null)
  c1=$(cpu_of "$@")
  n=$(awk '/connections in/ {print $1; exit}' <<<"$out")
  r=$(grep -v 'connections' <<<"$out" | tr -cd 'r' | wc -c) # s_time prints r per resumption
  echo "$n $(awk -v d=$((c1 - c0)) -v hz="$HZ" 'BEGIN {printf "%.2f", d / hz}') $r"
}

idle_run() { # port pids... -> "first marginal": bytes per idle connection over the first N
  # connections (this includes filling fixed pools: hemsd's 16 MiB of provided receive buffers
  # per shard, which the kernel touches buffer by buffer, nginx's connection array), and per
  # connection over N more (marginal: what each further idle connection costs)
  local port=$1; shift
  python3 - "$port" "$P" "$NIDLE" "$@" <<'PY'
import os, socket, ssl, sys, time
port, pki, n, pids = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4:]
def rss():
    t = 0
    for p in pids:
        for line in open("/proc/%s/status" % p):
            if line.startswith("VmRSS"):
                t += int(line.split()[1]) * 1024
    return t
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(os.path.join(pki, "ca.pem"))
ctx.load_cert_chain(os.path.join(pki, "dev-SN0001.pem"), os.path.join(pki, "dev-SN0001.key"))
def conn():
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    s.sendall(b"GET /cwmp HTTP/1.1\r\nHost: localhost\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    head, rest = buf.split(b"\r\n\r\n", 1)
    cl = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")]
    while len(rest) < (cl[0] if cl else 0):
        rest += s.recv(4096)
    return s
warm = [conn() for _ in range(50)]
for s in warm:
    s.close()
time.sleep(0.5)
r0 = rss()
keep = [conn() for _ in range(n)]
time.sleep(0.5)
r1 = rss()
keep += [conn() for _ in range(n)]
time.sleep(0.5)
r2 = rss()
print((r1 - r0) // n, (r2 - r1) // n)
for s in keep:
    s.close()
PY
}

npids=$(nginx_pids)
ROUNDS=${ROUNDS:-2}
printf "%-22s %12s %12s %10s\n" scenario "hemsd hs/cpu-s" "nginx hs/cpu-s" ratio
VERSIONS="-tls1_3 -tls1_2"
[[ -n "${IDLE_ONLY:-}" ]] && VERSIONS="" # IDLE_ONLY=1: the idle-memory figure only
for ver in $VERSIONS; do
  for mode in -new -reuse; do
    hb=0; nb=0; hline=""; nline=""
    for _ in $(seq "$ROUNDS"); do # alternate the servers, keep each one's best round
      read -r hn hc hr < <(hs_run $HS $mode $ver $hpid)
      # shellcheck disable=SC2086
      read -r nn nc nr < <(hs_run $NP $mode $ver $npids)
      h=$(awk -v n="$hn" -v c="$hc" 'BEGIN {printf "%.0f", (c > 0 ? n / c : 0)}')
      n=$(awk -v n="$nn" -v c="$nc" 'BEGIN {printf "%.0f", (c > 0 ? n / c : 0)}')
      ((h > hb)) && { hb=$h; hline="hemsd $hn hs, $hr resumed, in $hc cpu-s"; }
      ((n > nb)) && { nb=$n; nline="nginx $nn, $nr, $nc"; }
    done
    awk -v s="${ver#-} ${mode#-}" -v h="$hb" -v n="$nb" -v d="($hline; $nline)" 'BEGIN {
      printf "%-22s %12d %12d %9.2fx   %s\n", s, h, n, (n > 0 ? h / n : 0), d }'
  done
done
ulimit -n 20000 2>/dev/null || true
read -r hb hm < <(idle_run $HS $hpid)
# shellcheck disable=SC2086
read -r nb nm < <(idle_run $NP $(pgrep -P "$(cat $tmp/nginx.pid)" | xargs))
echo "idle mTLS connection (TLS 1.3, after one request), resident bytes each:"
awk -v h="$hb" -v n="$nb" -v c="$NIDLE" 'BEGIN { printf "  first %d connections:     hemsd %6d  nginx %6d  hemsd/nginx %.2f\n", c, h, n, h / n }'
awk -v h="$hm" -v n="$nm" -v c="$NIDLE" 'BEGIN { printf "  next %d (marginal):       hemsd %6d  nginx %6d  hemsd/nginx %.2f\n", c, h, n, h / n }'
