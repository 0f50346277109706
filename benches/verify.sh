#!/usr/bin/env bash
# Parity-check benchmark (issue #11): wall time and peak RSS of `convert --verify`,
# `verify --checkpoint` and `verify --reference` on ELECTRA-base-sized and ELECTRA-large-sized
# pretraining checkpoints, for this tree's release build and, interleaved in the same loop, a
# baseline binary (e.g. an older main built into its own directory).
#
#   BASELINE_BIN=/path/to/old/electra-convert PYTHON=/path/to/python RUNS=3 benches/verify.sh
#
# Needs: /usr/bin/time; a Python with fixtures/requirements.txt to generate the checkpoints (once,
# into $BENCH_DATA, default bench-data/) and the reference file. Warm cache: every command runs
# once unmeasured first. Output directories of the convert rows start missing in every run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DATA=${BENCH_DATA:-bench-data}
RUNS=${RUNS:-3}
BASE="$DATA/base/model.ckpt-766000"
LARGE="$DATA/large/model.ckpt-766000"
WORK="$DATA/verify-bench"

if [ ! -f "$BASE.index" ]; then
  "$PYTHON" benches/make_base_checkpoint.py "$DATA/base" >&2
fi
if [ "${SKIP_LARGE:-0}" != 1 ] && [ ! -f "$LARGE.index" ]; then
  # Adam slots are not read by the check (only the model's variables are), so they are left out.
  "$PYTHON" benches/make_base_checkpoint.py --size large --no-slots "$DATA/large" >&2
fi

cargo build --release --quiet
NEW=target/release/electra-convert
declare -A BINS=([new]="$NEW")
if [ -n "${BASELINE_BIN:-}" ]; then
  BINS[baseline]="$BASELINE_BIN"
fi

mkdir -p "$WORK"
for kind in discriminator generator; do
  [ -d "$WORK/base-$kind" ] || "$NEW" convert --model "$kind" "$BASE" -o "$WORK/base-$kind" --quiet
  if [ "${SKIP_LARGE:-0}" != 1 ]; then
    [ -d "$WORK/large-$kind" ] || "$NEW" convert --model "$kind" "$LARGE" -o "$WORK/large-$kind" --quiet
  fi
done
REF="$WORK/base-discriminator-reference.safetensors"
[ -f "$REF" ] || "$PYTHON" benches/make_reference.py "$WORK/base-discriminator" "$REF" >&2

# Rows: label, then the arguments after the binary. OUT is replaced by a fresh output directory.
rows=(
  "convert-verify-base-discriminator|convert --model discriminator $BASE -o OUT --verify --quiet"
  "convert-verify-base-generator|convert --model generator $BASE -o OUT --verify --quiet"
  "convert-verify-base-both|convert --model both $BASE -o OUT --verify --quiet"
  "verify-checkpoint-base-discriminator|verify $WORK/base-discriminator --checkpoint $BASE"
  "verify-checkpoint-base-generator|verify $WORK/base-generator --checkpoint $BASE"
  "verify-reference-base-discriminator|verify $WORK/base-discriminator --reference $REF"
)
if [ "${SKIP_LARGE:-0}" != 1 ]; then
  rows+=(
    "verify-checkpoint-large-discriminator|verify $WORK/large-discriminator --checkpoint $LARGE"
    "verify-checkpoint-large-generator|verify $WORK/large-generator --checkpoint $LARGE"
  )
fi

results=$(mktemp)
# run_row BIN_LABEL ROW MEASURE(0/1): one run of a row; measured runs append to $results.
run_row() {
  local which=$1 row=$2 measure=$3
  local bin=${BINS[$which]} label=${row%%|*} args=${row#*|}
  local out="$WORK/out-$which"
  rm -rf "$out"
  local argv
  read -r -a argv <<<"${args//OUT/$out}"
  if [ "$measure" = 1 ]; then
    local timing
    timing=$(mktemp)
    /usr/bin/time -o "$timing" -f "%e %M" "$bin" "${argv[@]}" >/dev/null 2>&1 ||
      { echo "FAILED: $bin ${argv[*]}" >&2; exit 1; }
    echo "$label $which $(tail -n 1 "$timing")" >>"$results"
    rm -f "$timing"
  else
    "$bin" "${argv[@]}" >/dev/null 2>&1 || { echo "FAILED: $bin ${argv[*]}" >&2; exit 1; }
  fi
  rm -rf "$out"
}

echo "# start: $(uptime)"
for row in "${rows[@]}"; do
  for which in "${!BINS[@]}"; do run_row "$which" "$row" 0; done
done
for run in $(seq "$RUNS"); do
  for row in "${rows[@]}"; do
    for which in "${!BINS[@]}"; do run_row "$which" "$row" 1; done
  done
  echo "# after run $run: $(uptime)"
done

echo "runs: $RUNS (median wall time, largest peak RSS)"
for row in "${rows[@]}"; do
  label=${row%%|*}
  for which in $(printf '%s\n' "${!BINS[@]}" | sort); do
    lines=$(grep "^$label $which " "$results")
    n=$(echo "$lines" | wc -l)
    median=$(echo "$lines" | awk '{print $3}' | sort -n | sed -n "$(((n + 1) / 2))p")
    peak=$(echo "$lines" | awk '{print $4}' | sort -n | tail -n 1)
    printf "%-38s %-9s median %6.2f s  peak RSS %8.1f MiB  (all: %s)\n" "$label" "$which" "$median" \
      "$(echo "$peak / 1024" | bc -l)" "$(echo "$lines" | awk '{print $3}' | sort -n | tr '\n' ' ' | sed 's/ $//')"
  done
done
rm -f "$results"
