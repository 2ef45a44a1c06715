#!/usr/bin/env bash
# Run a built FPGA artifact's testbench in GHDL: it reads SAMPLES (integers in the fixed-point
# format, one sample a line after the count) and prints the board protocol's JSON lines, one
# result per sample with its simulated clock cycles. Natively or in the fpga image alike.
#
# Usage: simulate.sh ARTIFACT_DIR [SAMPLES_FILE]   (SAMPLES_FILE relative to ARTIFACT_DIR; default samples.txt)
set -euo pipefail

[[ $# -ge 1 && $# -le 2 ]] || { echo "usage: simulate.sh ARTIFACT_DIR [SAMPLES_FILE]" >&2; exit 2; }
artifact=$(cd "$1" && pwd)
samples="${2:-samples.txt}"
[[ -d "$artifact/ghdl" ]] || { echo "simulate.sh: $artifact is not built (run build.sh first)" >&2; exit 2; }
[[ "$samples" = /* ]] || samples="../$samples"
cd "$artifact/vhdl"
exec ghdl -r --std=08 --workdir=../ghdl tb "-gSAMPLES_FILE=$samples" --ieee-asserts=disable-at-0
