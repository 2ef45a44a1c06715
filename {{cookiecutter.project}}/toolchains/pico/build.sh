#!/bin/sh
# Build the firmware of a generated C model (model.c/.h, kernels.c/.h in ARTIFACT_DIR).
#
# Usage: build.sh ARTIFACT_DIR [mps2|pico|pico2]
#   mps2   (default) ELF for QEMU's mps2-an505 (Cortex-M33, the Pico 2 stand-in the tests run) with
#          arm-none-eabi-gcc: the protocol loop and board layer come from FIRMWARE_DIR (default
#          ARTIFACT_DIR/firmware, a copy of explorer/targets/firmware). -> build/mps2-an505/firmware.elf
#          CPU=cortex-m0plus builds Armv6-M code (the Pico 1's instruction set) for the same machine.
#   pico, pico2  pico-sdk build of the project staged in ARTIFACT_DIR (CMakeLists.txt from
#          explorer.targets.mcu.stage_pico_project) for the RP2040 or RP2350 -> build/<board>/*.uf2.
#          Needs PICO_SDK_PATH (set in the pico image; not available on the machine that wrote this).
# The same script runs natively and in the pico image (artifact mounted at /artifact).
set -eu

dir=${1:?usage: build.sh ARTIFACT_DIR [mps2|pico|pico2]}
mode=${2:-mps2}
CC=${CC:-arm-none-eabi-gcc}
cd "$dir"

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "build.sh: $1 not found ($2)" >&2; exit 3; }
}

case "$mode" in
mps2)
  need "$CC" "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi"
  fw=${FIRMWARE_DIR:-firmware}
  for f in model.c model.h kernels.c "$fw/main_mcu.c" "$fw/board.h" "$fw/mps2_an505/board_mps2.c" \
           "$fw/mps2_an505/startup.c" "$fw/mps2_an505/sections.ld"; do
    [ -f "$f" ] || { echo "build.sh: $dir/$f missing (a C model and a copy of explorer/targets/firmware?)" >&2; exit 2; }
  done
  case "${CPU:=cortex-m33}" in
    cortex-m33) cpu_flags="-mcpu=cortex-m33 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16"; out=build/mps2-an505 ;;
    cortex-m0plus) cpu_flags="-mcpu=cortex-m0plus -mthumb -mfloat-abi=soft"; out=build/mps2-an505-cortex-m0plus ;;
    *) echo "build.sh: CPU must be cortex-m33 or cortex-m0plus, not $CPU" >&2; exit 2 ;;
  esac
  mkdir -p "$out"
  # QEMU's AN505 memory map (code in SSRAM1, data in SSRAM2/3); flags as explorer.targets.mcu.
  printf 'MEMORY\n{\n    FLASH (rx) : ORIGIN = 0x10000000, LENGTH = 4M\n    RAM (rwx) : ORIGIN = 0x38000000, LENGTH = 4M\n}\nINCLUDE sections.ld\n' \
    >"$out/firmware.ld"
  # shellcheck disable=SC2086
  "$CC" $cpu_flags -std=c99 -O2 -ffp-contract=off -ffunction-sections -fdata-sections -Wall \
    -DICOUNT_SHIFT=8 -I. -I"$fw" model.c kernels.c "$fw/main_mcu.c" "$fw/mps2_an505/board_mps2.c" \
    "$fw/mps2_an505/startup.c" -nostartfiles --specs=nano.specs -Wl,--gc-sections \
    -Wl,--defsym=STACK_SIZE=16384 -L"$fw/mps2_an505" -T"$out/firmware.ld" -lm -o "$out/firmware.elf"
  size=${CC%gcc}size
  echo "$out/firmware.elf $("$CC" -dumpversion) $("$size" -B "$out/firmware.elf" | awk 'NR == 2 {print "text=" $1, "data=" $2, "bss=" $3}')"
  ;;
pico|pico2)
  need cmake "apt-get install cmake"
  need "$CC" "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib"
  [ -n "${PICO_SDK_PATH:-}" ] && [ -d "$PICO_SDK_PATH" ] || {
    echo "build.sh: PICO_SDK_PATH is not set to a pico-sdk checkout (build in the pico toolchain image)" >&2; exit 3; }
  [ -f CMakeLists.txt ] || {
    echo "build.sh: $dir has no CMakeLists.txt (stage the project with explorer.targets.mcu.stage_pico_project)" >&2; exit 2; }
  cmake -S . -B "build/$mode" -DPICO_BOARD="$mode" -DPICO_SDK_PATH="$PICO_SDK_PATH" -DCMAKE_BUILD_TYPE=Release
  cmake --build "build/$mode" -j"$(nproc 2>/dev/null || echo 2)"
  ls "build/$mode"/*.uf2
  ;;
*)
  echo "build.sh: unknown target $mode (mps2, pico or pico2)" >&2; exit 2 ;;
esac
