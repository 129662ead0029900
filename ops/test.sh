#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a passing test suite: installs what is
# missing, builds with -Werror, runs every unit and integration test (ctest), then builds the
# suite again with AddressSanitizer + UndefinedBehaviorSanitizer and runs it once more.
# Options: --quick (skip the sanitizer pass).
set -euo pipefail
cd "$(dirname "$0")/.."
ops/install-deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")
if [[ "${1:-}" != "--quick" ]]; then
  echo "== sanitizer pass (ASan + UBSan)"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHM_ASAN=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j"$jobs")
fi
