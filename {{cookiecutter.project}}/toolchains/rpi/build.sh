#!/bin/sh
# Cross-compile the C99 benchmark folder of an rpi artifact (cgen's model.c, kernels.c, bench_posix.c)
# into a static aarch64 binary. The same script runs natively and in the rpi image (artifact mounted
# at /artifact), so both give the same binary.
#
# Usage: build.sh [ARTIFACT_DIR] [OUTPUT]     (defaults: . and bench-aarch64)
# Env:   CC (aarch64-linux-gnu-gcc), CFLAGS (-std=c99 -O2), SOURCES (model.c kernels.c bench_posix.c)
set -eu

dir=${1:-.}
out=${2:-bench-aarch64}
CC=${CC:-aarch64-linux-gnu-gcc}
CFLAGS=${CFLAGS:--std=c99 -O2}
SOURCES=${SOURCES:-model.c kernels.c bench_posix.c}

command -v "$CC" >/dev/null 2>&1 || {
  echo "build.sh: $CC not found (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)" >&2; exit 3; }
cd "$dir"
for src in $SOURCES; do
  [ -f "$src" ] || { echo "build.sh: $dir/$src missing (not a C benchmark folder?)" >&2; exit 2; }
done
# Relative source names and no debug info: nothing of the build machine ends up in the binary.
# shellcheck disable=SC2086
"$CC" $CFLAGS -static $SOURCES -lm -o "$out"
echo "$out $("$CC" -dumpfullversion) $(sha256sum "$out" | cut -d' ' -f1)"
