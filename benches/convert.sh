#!/usr/bin/env bash
# Conversion benchmark (issue #3): electra-convert vs `cp` of its own output vs transformers' Python path,
# measured side by side in one run on an ELECTRA-base-sized pretraining checkpoint with Adam slots.
#
#   PYTHON=/path/to/python benches/convert.sh            # RUNS=5 by default
#
# Needs: a release build (made here), /usr/bin/time, and for the checkpoint and the comparison a Python
# with fixtures/requirements.txt installed. The checkpoint (~1.4 GB) goes to $BENCH_DATA (default
# bench-data/, gitignored) and is generated once. All timings are warm-cache: each command runs once
# unmeasured first, so every contender reads the checkpoint from the page cache.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DATA=${BENCH_DATA:-bench-data}
RUNS=${RUNS:-5}
CKPT="$DATA/base/model.ckpt-766000"

if [ ! -f "$CKPT.index" ]; then
  echo "generating $CKPT ..." >&2
  "$PYTHON" benches/make_base_checkpoint.py "$DATA/base" >&2
fi

cargo build --release --quiet
BIN=target/release/electra-convert
OUT="$DATA/out-disc"
COPY="$DATA/cp-copy.safetensors"

# measure LABEL CMD...: prints "LABEL seconds peak_rss_kib" for one run.
measure() {
  local label=$1
  shift
  local timing
  timing=$(mktemp)
  /usr/bin/time -o "$timing" -f "%e %M" "$@" >/dev/null 2>&1
  echo "$label $(tail -n 1 "$timing")"
  rm -f "$timing"
}

# Warm-up: fill the page cache and make sure each command works.
"$BIN" --model discriminator "$CKPT" -o "$OUT" --force --quiet
cp "$OUT/model.safetensors" "$COPY"

# Every contender starts from a missing destination (deleting the previous 438 MB output is not
# part of anyone's time). The extra rows (--model both, --dtype f16) are not goals, just figures.
OUT_BOTH="$DATA/out-both"
OUT_F16="$DATA/out-f16"
results=$(mktemp)
for _ in $(seq "$RUNS"); do
  rm -rf "$OUT"
  measure electra-convert "$BIN" --model discriminator "$CKPT" -o "$OUT" --quiet >>"$results"
  rm -f "$COPY"
  measure cp cp "$OUT/model.safetensors" "$COPY" >>"$results"
  if [ "${SKIP_EXTRA:-0}" != 1 ]; then
    rm -rf "$OUT_BOTH" "$OUT_F16"
    measure electra-convert-both "$BIN" --model both "$CKPT" -o "$OUT_BOTH" --quiet >>"$results"
    measure electra-convert-f16 "$BIN" --model discriminator --dtype f16 "$CKPT" -o "$OUT_F16" --quiet >>"$results"
  fi
done
rm -rf "$OUT_BOTH" "$OUT_F16"

if [ "${SKIP_TRANSFORMERS:-0}" != 1 ]; then
  rm -rf "$DATA/out-transformers"
  measure transformers-4.57.6 "$PYTHON" benches/convert_transformers.py "$CKPT" "$DATA/out-transformers" >>"$results"
fi

echo "output size: $(stat -c %s "$OUT/model.safetensors") bytes"
echo "runs: $RUNS (median wall time, max peak RSS; ratio = median / cp's median)"
median_of() {
  local n
  n=$(grep -c "^$1 " "$results")
  grep "^$1 " "$results" | awk '{print $2}' | sort -n | sed -n "$(((n + 1) / 2))p"
}
cp_median=$(median_of cp)
for label in $(awk '{print $1}' "$results" | sort -u); do
  n=$(grep -c "^$label " "$results")
  median=$(median_of "$label")
  peak=$(grep "^$label " "$results" | awk '{print $3}' | sort -n | tail -n 1)
  printf "%-22s median %7.2f s  peak RSS %8.1f MiB  %6.1fx cp  (%d runs, all: %s)\n" "$label" "$median" \
    "$(echo "$peak / 1024" | bc -l)" "$(echo "$median / $cp_median" | bc -l)" "$n" \
    "$(grep "^$label " "$results" | awk '{print $2}' | sort -n | tr '\n' ' ' | sed 's/ $//')"
done
rm -f "$results" "$COPY"
