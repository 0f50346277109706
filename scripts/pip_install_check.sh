#!/usr/bin/env bash
# Proves that `pip install .` builds and installs electra-convert onto a fresh venv's PATH, then
# uses the installed binary on a fixture. Not part of CI: it is a release build (several minutes
# on 2 cores the first time) and pip fetches maturin from PyPI.
#
#   scripts/pip_install_check.sh [PYTHON]      # PYTHON defaults to python3
#
# The venv lives in a temporary directory and is removed at the end. Cargo builds into this
# repository's target/ (release profile), so a second run is quick. Measured 2026-12-01 on the
# 2-core dev machine: 1500 s for `pip install .` with a cold release build (niced, load average
# 12-19 from other builds), 9 s warm; the installed binary then converted tied byte-identically.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${1:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== fresh venv in $work/venv ($("$python" --version))"
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip

echo "== pip install $repo"
start=$(date +%s)
"$work/venv/bin/python" -m pip install "$repo"
end=$(date +%s)
echo "== pip install took $((end - start)) s"

# The binary is on the venv's PATH, as for any console tool installed with pip.
export PATH="$work/venv/bin:$PATH"
installed="$(command -v electra-convert)"
case "$installed" in
    "$work/venv/bin/electra-convert") ;;
    *) echo "electra-convert on PATH is $installed, not the venv's" >&2; exit 1 ;;
esac
electra-convert --version

out="$work/tied-disc"
electra-convert --model discriminator "$repo/fixtures/electra/tied" -o "$out" --verify --quiet
for f in model.safetensors config.json tokenizer.json vocab.txt README.md; do
    test -s "$out/$f" || { echo "missing $out/$f" >&2; exit 1; }
done
cmp "$out/model.safetensors" "$repo/fixtures/electra/tied/expected/discriminator/model.safetensors"
echo "== ok: $installed converted the tied fixture byte-identically and --verify passed"

"$work/venv/bin/python" -m pip uninstall --yes --quiet electra-convert
test ! -e "$work/venv/bin/electra-convert"
echo "== ok: pip uninstall removed it"
