#!/usr/bin/env bash
# Conversion benchmark (issues #3 and #11): electra-convert vs a durable copy of its own output
# (`dd ... conv=fsync`, the floor for a converter, which must fsync) vs `cp` of it (no fsync) vs
# transformers' Python path, measured side by side in one run on an ELECTRA-base-sized pretraining
# checkpoint with Adam slots.
#
#   PYTHON=/path/to/python benches/convert.sh            # RUNS=5 by default
#   BASELINE_BIN=/path/to/old/electra-convert ...        # also time an older binary, interleaved
#   SKIP_TRANSFORMERS=1 ...                              # leave out the (slow) transformers row
#
# With a baseline, the `--model both` and `--dtype f16` pairs run in alternating order (the
# baseline first in every other round), so neither binary always follows the other.
# Needs: a release build (made here), /usr/bin/time, dd, and for the checkpoint and the comparison a
# Python with fixtures/requirements.txt installed. The checkpoint (~1.4 GB) goes to $BENCH_DATA
# (default bench-data/, gitignored) and is generated once. All timings are warm-cache: each command
# runs once unmeasured first, so every contender reads the checkpoint (and the copies their source)
# from the page cache. Before each timed command the previous outputs are deleted and `sync` is run
# (outside the timer), so no contender pays for another's writeback.
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
BASE=${BASELINE_BIN:-}
OUT="$DATA/out-disc"
COPY="$DATA/cp-copy.safetensors"
DURABLE="$DATA/durable-copy"
# Reference outputs, the sources of the durable copies of `--model both` and `--dtype f16`.
REF_BOTH="$DATA/ref-both"
REF_F16="$DATA/ref-f16"

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

# durable_copy SRC...: copy each file into $DURABLE/ and fsync it, as dd does (one process per
# file, so `--model both` pays two dd start-ups and two fsyncs, like the converter).
durable_copy() {
  mkdir -p "$DURABLE"
  local i=0
  for src in "$@"; do
    i=$((i + 1))
    dd if="$src" of="$DURABLE/$i" bs=8M conv=fsync status=none
  done
}

# Warm-up: fill the page cache and make sure each command works.
"$BIN" --model discriminator "$CKPT" -o "$OUT" --force --quiet
[ -z "$BASE" ] || "$BASE" --model discriminator "$CKPT" -o "$OUT" --force --quiet
"$BIN" --model both "$CKPT" -o "$REF_BOTH" --force --quiet
"$BIN" --model discriminator --dtype f16 "$CKPT" -o "$REF_F16" --force --quiet
"$BIN" --model discriminator "$CKPT" -o "$OUT" --force --quiet
cp "$OUT/model.safetensors" "$COPY"

# Every contender starts from a missing destination, with nothing of ours waiting to be written
# back: deleting the previous outputs and the `sync` are not part of anyone's time. Each
# conversion row is compared with the durable copy of its own output (the row without a suffix,
# the discriminator in f32, with `durable-copy`; `-both` with `durable-copy-both`, ...).
OUT_OTHER="$DATA/out-other"
fresh() {
  rm -rf "$OUT_OTHER" "$COPY" "$DURABLE"
  sync
}
# convert LABEL BINARY ARGS...: one timed conversion into a fresh $OUT_OTHER.
convert() {
  local label=$1 bin=$2
  shift 2
  fresh
  measure "$label" "$bin" "$@" "$CKPT" -o "$OUT_OTHER" --quiet >>"$results"
}
copy() {
  local label=$1
  shift
  fresh
  measure "$label" bash -c 'durable_copy "$@"' durable_copy "$@" >>"$results"
}
export DURABLE
export -f durable_copy
# pair SUFFIX ARGS...: this tree's binary and the baseline (if any) on the same arguments, the
# baseline first in every other round, so that neither always runs right after the other.
round=0
pair() {
  local suffix=$1
  shift
  if [ -n "$BASE" ] && [ $((round % 2)) = 1 ]; then
    convert "baseline$suffix" "$BASE" "$@"
    convert "electra-convert$suffix" "$BIN" "$@"
  else
    convert "electra-convert$suffix" "$BIN" "$@"
    [ -z "$BASE" ] || convert "baseline$suffix" "$BASE" "$@"
  fi
}
results=$(mktemp)
for _ in $(seq "$RUNS"); do
  round=$((round + 1))
  fresh
  rm -rf "$OUT"
  sync
  measure electra-convert "$BIN" --model discriminator "$CKPT" -o "$OUT" --quiet >>"$results"
  copy durable-copy "$OUT/model.safetensors"
  fresh
  measure cp cp "$OUT/model.safetensors" "$COPY" >>"$results"
  [ -z "$BASE" ] || convert baseline "$BASE" --model discriminator
  if [ "${SKIP_EXTRA:-0}" != 1 ]; then
    pair -both --model both
    copy durable-copy-both "$REF_BOTH/discriminator/model.safetensors" "$REF_BOTH/generator/model.safetensors"
    pair -f16 --model discriminator --dtype f16
    copy durable-copy-f16 "$REF_F16/model.safetensors"
  fi
done
fresh
rm -rf "$REF_BOTH" "$REF_F16"

if [ "${SKIP_TRANSFORMERS:-0}" != 1 ]; then
  rm -rf "$DATA/out-transformers"
  measure transformers-4.57.6 "$PYTHON" benches/convert_transformers.py "$CKPT" "$DATA/out-transformers" >>"$results"
fi

echo "output size: $(stat -c %s "$OUT/model.safetensors") bytes"
echo "runs: $RUNS (median wall time, max peak RSS; ratios = median / the median of the durable copy"
echo "of the same output, and / cp's median of the discriminator's file)"
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
  case $label in
    *-both) floor=durable-copy-both ;;
    *-f16) floor=durable-copy-f16 ;;
    *) floor=durable-copy ;;
  esac
  floor_median=$(median_of "$floor")
  printf "%-22s median %7.2f s  peak RSS %8.1f MiB  %5.2fx durable copy  %6.1fx cp  (%d runs, all: %s)\n" \
    "$label" "$median" "$(echo "$peak / 1024" | bc -l)" "$(echo "$median / $floor_median" | bc -l)" \
    "$(echo "$median / $cp_median" | bc -l)" "$n" \
    "$(grep "^$label " "$results" | awk '{print $2}' | sort -n | tr '\n' ' ' | sed 's/ $//')"
done
rm -f "$results"
