#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each on its committed corpus (new inputs go to a scratch
# folder, so the committed corpus only changes when you copy findings in on purpose).
# JOBS targets run at once (default 1; each one is a single process), their reports printed
# whole, in target order.
# Usage: [JOBS=N] tests/fuzz/run.sh BUILD_FUZZ_DIR [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:?build folder configured with -DHM_FUZZ=ON}
secs=${2:-60}
jobs=${JOBS:-1}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

run_one() { # bin: writes $out/<name>.report and $out/<name>.failed on failure
  local bin=$1 name target corpus scratch dict=()
  name=$(basename "$bin"); target=${name#fuzz_}
  corpus=tests/fuzz/corpus/$target
  scratch=$(mktemp -d)
  [[ -f tests/fuzz/$target.dict ]] && dict=(-dict=tests/fuzz/$target.dict)
  {
    echo "== $name ($secs s)"
    if ! "$bin" -max_total_time="$secs" -print_final_stats=1 "${dict[@]}" "$scratch" "$corpus" \
         2>"$scratch.log"; then
      touch "$out/$name.failed"; tail -40 "$scratch.log"
    fi
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$scratch.log" || true
  } >"$out/$name.report"
  rm -rf "$scratch" "$scratch.log"
}

bins=()
for bin in "$build"/tests/fuzz/fuzz_*; do
  [[ -x "$bin" ]] && bins+=("$bin")
done
running=0
for bin in "${bins[@]}"; do
  run_one "$bin" &
  running=$((running + 1))
  if ((running >= jobs)); then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true
status=0
for bin in "${bins[@]}"; do
  name=$(basename "$bin")
  cat "$out/$name.report"
  [[ -e $out/$name.failed ]] && status=1
done
exit $status
