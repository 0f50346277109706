#!/usr/bin/env bash
# TF2 conversion benchmark (issue #13): converting a Model-Garden-shaped ELECTRA-base pretraining
# checkpoint (einsum kernels, object-graph resolution) side by side with the Google TF1 one of the
# same sizes, interleaved in one run, warm cache.
#
#   MG_PYTHON=/work/venvs/mg/bin/python PYTHON=/path/to/tf1/python BENCH_DATA=bench-data \
#     RUNS=5 bash benches/convert_tf2.sh
#
# The TF1 checkpoint comes from benches/make_base_checkpoint.py (PYTHON), the Model Garden one from
# benches/make_model_garden_checkpoint.py (MG_PYTHON, tf-models-official 2.20); both are generated
# once into $BENCH_DATA. Each row: median wall time and max peak RSS of `--model discriminator`
# (and `--model both`), plus `cp` of the written file as the floor.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
MG_PYTHON=${MG_PYTHON:-python3}
DATA=${BENCH_DATA:-bench-data}
RUNS=${RUNS:-5}
TF1="$DATA/base/model.ckpt-766000"
MG="$DATA/model-garden/ckpt-766000"

[ -f "$TF1.index" ] || "$PYTHON" benches/make_base_checkpoint.py "$DATA/base" >&2
[ -f "$MG.index" ] || "$MG_PYTHON" benches/make_model_garden_checkpoint.py "$DATA/model-garden" >&2

cargo build --release --quiet
BIN=target/release/electra-convert

measure() {
  local label=$1
  shift
  local timing
  timing=$(mktemp)
  /usr/bin/time -o "$timing" -f "%e %M" "$@" >/dev/null 2>&1
  echo "$label $(tail -n 1 "$timing")"
  rm -f "$timing"
}

# Warm-up: page cache, and a check that both convert.
"$BIN" convert -m discriminator "$TF1" -o "$DATA/out-tf1" --force --quiet
"$BIN" convert -m discriminator "$MG" -o "$DATA/out-mg" --force --quiet
echo "uptime before: $(uptime)"
results=$(mktemp)
for _ in $(seq "$RUNS"); do
  rm -rf "$DATA/out-tf1" "$DATA/out-mg" "$DATA/out-tf1-both" "$DATA/out-mg-both" "$DATA/cp-copy"
  measure tf1-discriminator "$BIN" convert -m discriminator "$TF1" -o "$DATA/out-tf1" --quiet >>"$results"
  measure mg-discriminator "$BIN" convert -m discriminator "$MG" -o "$DATA/out-mg" --quiet >>"$results"
  measure cp-mg-output cp "$DATA/out-mg/model.safetensors" "$DATA/cp-copy" >>"$results"
  measure tf1-both "$BIN" convert -m both "$TF1" -o "$DATA/out-tf1-both" --quiet >>"$results"
  measure mg-both "$BIN" convert -m both "$MG" -o "$DATA/out-mg-both" --quiet >>"$results"
done
echo "uptime after: $(uptime)"
echo "outputs: tf1 $(stat -c %s "$DATA/out-tf1/model.safetensors") bytes, mg $(stat -c %s "$DATA/out-mg/model.safetensors") bytes"
for label in tf1-discriminator mg-discriminator cp-mg-output tf1-both mg-both; do
  all=$(grep "^$label " "$results" | awk '{print $2}' | sort -n | tr '\n' ' ')
  n=$(grep -c "^$label " "$results")
  median=$(grep "^$label " "$results" | awk '{print $2}' | sort -n | sed -n "$(((n + 1) / 2))p")
  peak=$(grep "^$label " "$results" | awk '{print $3}' | sort -n | tail -n 1)
  printf "%-18s median %6.2f s  peak RSS %7.1f MiB  (all: %s)\n" "$label" "$median" "$(echo "$peak / 1024" | bc -l)" "$all"
done
rm -f "$results"
rm -rf "$DATA/out-tf1-both" "$DATA/out-mg-both" "$DATA/cp-copy"
