#!/usr/bin/env bash
# Installs the Debian 12 packages hems needs to build, test and benchmark. Idempotent: asks
# apt only for what is missing. Usage: ops/install-deps.sh [--bench]
set -euo pipefail
pkgs=(build-essential cmake pkg-config git
      liburing-dev android-libboringssl-dev libxml2-dev libjemalloc-dev liblmdb-dev
      libinih-dev libck-dev libjansson-dev zlib1g-dev
      check python3 curl openssl libxml2-utils lmdb-utils haproxy
      clang libclang-rt-14-dev
      chromium)  # headless, for the dashboard's end-to-end test
if [[ "${1:-}" == "--bench" ]]; then
  pkgs+=(nginx-light wrk linux-perf)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "hems: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
