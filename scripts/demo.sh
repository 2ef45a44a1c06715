#!/usr/bin/env bash
# The main job: bake the default experiment repo into build/demo/ (or $DEMO_DIR), validate its
# search spaces, prepare the default dataset (BasicMotions, shipped offline by aeon) and run a short
# real search with training: it ends with the Pareto table and results/<space>/report.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/.venv/bin"
DEMO_DIR="${DEMO_DIR:-build/demo}"
TRIALS="${TRIALS:-16}"

rm -rf "$DEMO_DIR"
"$BIN/cookiecutter" . --no-input --output-dir "$DEMO_DIR"
cd "$DEMO_DIR/nas-experiment"
echo "== baked $PWD"

"$BIN/explorer" validate search_spaces/*.yaml
echo "== explorer prepare"
"$BIN/explorer" prepare > /dev/null
echo "== explorer search --space search_spaces/cnn1d.yaml --trials $TRIALS"
"$BIN/explorer" search --space search_spaces/cnn1d.yaml --trials "$TRIALS"
echo "== report: $PWD/results/cnn1d/report.md"
