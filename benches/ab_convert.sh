#!/usr/bin/env bash
# A/B conversion benchmark: two electra-convert binaries, interleaved, on the same checkpoint.
#
#   benches/ab_convert.sh OLD_BIN NEW_BIN [CKPT]      # RUNS=7, MODEL=discriminator, ARGS=...
#
# Every round runs OLD then NEW (then swaps the order next round), each into a missing output
# directory, with the checkpoint in the page cache (one unmeasured warm-up each). Prints one line
# per run ("label wall_s user_s sys_s peak_rss_kib") and then the median wall time, the median
# CPU time (user + sys) and the largest peak RSS per binary. CKPT defaults to the base checkpoint
# benches/make_base_checkpoint.py writes under $BENCH_DATA (default bench-data/).
set -euo pipefail
OLD=$1
NEW=$2
DATA=${BENCH_DATA:-bench-data}
CKPT=${3:-$DATA/base/model.ckpt-766000}
RUNS=${RUNS:-7}
MODEL=${MODEL:-discriminator}
read -r -a EXTRA <<<"${ARGS:-}"
OUT=$(mktemp -d "${TMPDIR:-/tmp}/ab-convert.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

run() { # run LABEL BIN: one measured conversion into a fresh directory
  rm -rf "$OUT/o"
  /usr/bin/time -o "$OUT/t" -f "%e %U %S %M" "$2" --model "$MODEL" "$CKPT" -o "$OUT/o" --quiet "${EXTRA[@]}" >/dev/null
  echo "$1 $(tail -n 1 "$OUT/t")"
}

run warm-old "$OLD" >/dev/null
run warm-new "$NEW" >/dev/null
for i in $(seq "$RUNS"); do
  if [ $((i % 2)) = 1 ]; then run old "$OLD"; run new "$NEW"; else run new "$NEW"; run old "$OLD"; fi
done | tee "$OUT/all"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for label in old new; do
  wall=$(awk -v l="$label" '$1 == l { print $2 }' "$OUT/all" | median)
  cpu=$(awk -v l="$label" '$1 == l { print $3 + $4 }' "$OUT/all" | median)
  user=$(awk -v l="$label" '$1 == l { print $3 }' "$OUT/all" | median)
  rss=$(awk -v l="$label" '$1 == l && $5 > m { m = $5 } END { printf "%.1f", m / 1024 }' "$OUT/all")
  echo "$label: median wall ${wall} s, median user ${user} s, median user+sys ${cpu} s, peak RSS ${rss} MiB ($RUNS runs)"
done
