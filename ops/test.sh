#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a passing test suite: installs what is
# missing, builds with -Werror, runs every unit and integration test (ctest), then builds and
# runs the suite again with AddressSanitizer + UndefinedBehaviorSanitizer, and once more with
# ThreadSanitizer (shards, the store's writer thread and their message paths), and ends with
# a 10-second libFuzzer smoke run of every parser (long runs: tests/fuzz/run.sh DIR 600).
# Options: --quick (skip the sanitizer passes).
set -euo pipefail
cd "$(dirname "$0")/.."
ops/install-deps.sh
jobs=$(nproc)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs") | tee -a "$log"
if [[ "${1:-}" != "--quick" ]]; then
  echo "== sanitizer pass (ASan + UBSan)"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHM_ASAN=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j"$jobs") | tee -a "$log"
  echo "== sanitizer pass (TSan)"
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DHM_TSAN=ON >/dev/null
  cmake --build build-tsan -j"$jobs"
  (cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
     ctest --output-on-failure -j"$jobs") | tee -a "$log"
  echo "== fuzz smoke (10 s per target, $jobs at once)"
  CC=clang cmake -S . -B build-fuzz -DHM_FUZZ=ON -DHM_TESTS=OFF >/dev/null
  cmake --build build-fuzz -j"$jobs"
  JOBS=$jobs tests/fuzz/run.sh build-fuzz 10
fi
# One closing line over every ctest pass (set -o pipefail above stops at the first failure).
awk '/tests passed, [0-9]+ tests failed out of/ {p += $NF - $4; f += $4} END {printf "%d passed, %d failed\n", p, f}' "$log"
