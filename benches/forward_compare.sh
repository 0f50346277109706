#!/usr/bin/env bash
# Side-by-side forward-pass timing: candle (benches/forward.rs) vs PyTorch (benches/forward_torch.py),
# interleaved so that background load hits both alike. Usage: benches/forward_compare.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
python=${PYTHON:-python3}
cargo build --release --benches --quiet
bench=$(ls -t target/release/deps/forward-* | grep -v '\.d$' | head -1)
for round in $(seq "$rounds"); do
  for threads in 1 2; do
    echo "# round $round, threads $threads, $(uptime | sed 's/.*load/load/')"
    RAYON_NUM_THREADS=$threads "$bench" --bench
    "$python" benches/forward_torch.py --threads "$threads" 2>/dev/null
  done
done
