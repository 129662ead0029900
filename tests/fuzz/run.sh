#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each on its committed corpus (new inputs go to a scratch
# folder, so the committed corpus only changes when you copy findings in on purpose).
# Usage: tests/fuzz/run.sh BUILD_FUZZ_DIR [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:?build folder configured with -DHM_FUZZ=ON}
secs=${2:-60}
status=0
for bin in "$build"/tests/fuzz/fuzz_*; do
  [[ -x "$bin" ]] || continue
  name=$(basename "$bin"); target=${name#fuzz_}
  corpus=tests/fuzz/corpus/$target
  scratch=$(mktemp -d)
  dict=(); [[ -f tests/fuzz/$target.dict ]] && dict=(-dict=tests/fuzz/$target.dict)
  echo "== $name ($secs s)"
  if ! "$bin" -max_total_time="$secs" -print_final_stats=1 "${dict[@]}" "$scratch" "$corpus" 2>"$scratch.log"; then
    status=1; tail -40 "$scratch.log"
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$scratch.log" || true
  rm -rf "$scratch" "$scratch.log"
done
exit $status
