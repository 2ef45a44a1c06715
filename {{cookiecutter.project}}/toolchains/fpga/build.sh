#!/usr/bin/env bash
# Build an FPGA artifact (explorer export --target fpga) for simulation: analyse its VHDL with GHDL
# in the order vhdl/sources.txt gives (elasticai.creator layers, network top, testbench last), all
# as VHDL-2008, then elaborate the testbench. The same script runs natively and in the fpga image.
#
# Usage: build.sh ARTIFACT_DIR
# Output: one JSON line with the facts the manifest records (GHDL version, backend, units).
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: build.sh ARTIFACT_DIR" >&2; exit 2; }
artifact=$(cd "$1" && pwd)
command -v ghdl >/dev/null || { echo "build.sh: ghdl not found (apt-get install ghdl)" >&2; exit 3; }
[[ -f "$artifact/vhdl/sources.txt" ]] || { echo "build.sh: $artifact/vhdl/sources.txt missing (not an fpga artifact?)" >&2; exit 2; }

work="$artifact/ghdl"
rm -rf "$work"
mkdir -p "$work"
# Relative paths from vhdl/: the mcode backend re-reads sources when it runs, and simulate.sh
# runs from the same folder, so the artifact may move (or be mounted at /artifact in Docker).
cd "$artifact/vhdl"
mapfile -t sources < <(grep -v '^[[:space:]]*$' sources.txt)
ghdl -a --std=08 --workdir=../ghdl "${sources[@]}"
ghdl -e --std=08 --workdir=../ghdl tb

about=$(ghdl --version)   # whole output: a pipe into head could SIGPIPE ghdl under pipefail
version=${about%%$'\n'*}
backend=$(sed -n 's/^ *\(.*\) code generator.*/\1/p' <<<"$about")
printf '{"ghdl": "%s", "backend": "%s", "std": "08", "sources": %d, "workdir": "ghdl"}\n' \
  "${version//\"/}" "${backend:-unknown}" "${#sources[@]}"
