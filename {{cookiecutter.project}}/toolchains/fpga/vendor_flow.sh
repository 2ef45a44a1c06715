#!/usr/bin/env bash
# The vendor flow for a real board: AMD Vivado in batch (non-project) mode over an FPGA artifact
# that `explorer export --target fpga` wrote. Nothing here runs in the tests (no Vivado on CI);
# `--dry-run` writes and prints the Tcl so the file list can be checked without it.
#
#   with ARTIFACT/firmware/ (export option firmware=env5, 8-bit formats only):
#       elasticai.creator's ENV5 system integration (SPI middleware, skeleton v2, env5_top_reconfig)
#       around the network, the board's pin constraints -> synthesis, place, route, reports and
#       ARTIFACT/vivado/env5_top_reconfig.bit plus a .bin for the ENV5's flash
#   without it:
#       the network alone, out of context -> synthesis, place, route, utilisation and timing
#       reports at the clock below (what the model costs on the part; no bitstream without pins)
#
# Usage: vendor_flow.sh ARTIFACT_DIR [--part PART] [--clock-ns NS] [--jobs N] [--dry-run]
# Env:   VIVADO  the vivado executable (default: vivado on PATH, e.g. after
#                `source /opt/Xilinx/Vivado/<version>/settings64.sh`; tested releases: none here)
#        PART    default part (ENV5: xc7s15ftgb196-2, its Spartan-7 XC7S15)
#
# Loading the bitstream onto an ENV5: its RP2040 writes the .bin into the flash over USB and
# reconfigures the FPGA (elastic-ai.runtime.enV5); any board: Vivado's hardware manager
# (open_hw_manager; program_hw_devices) over JTAG.
set -euo pipefail

usage() { sed -n '2,25p' "$0" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
artifact=$(cd "$1" && pwd); shift
part="${PART:-xc7s15ftgb196-2}"
clock_ns=10        # the ENV5's 100 MHz oscillator (constraints set it for the board top)
jobs=2
dry_run=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --part) part="$2"; shift 2 ;;
    --clock-ns) clock_ns="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage ;;
    *) echo "vendor_flow.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -f "$artifact/vhdl/sources.txt" ]] || { echo "vendor_flow.sh: $artifact is not an fpga artifact" >&2; exit 2; }

out="$artifact/vivado"
mkdir -p "$out"
tcl="$out/flow.tcl"
{
  echo "# Written by toolchains/fpga/vendor_flow.sh for $artifact"
  echo "set_param general.maxThreads $jobs"
  echo "set out {$out}"
  # the network: elasticai.creator layers + explorer's top; the testbench is simulation only
  while read -r src; do
    [[ -z "$src" || "$src" == tb.vhd ]] && continue
    echo "read_vhdl -vhdl2008 {$artifact/vhdl/$src}"
  done < "$artifact/vhdl/sources.txt"
  if [[ -f "$artifact/firmware/sources.txt" ]]; then
    top=env5_top_reconfig
    while read -r src; do
      [[ -n "$src" ]] && echo "read_vhdl {$artifact/firmware/$src}"
    done < "$artifact/firmware/sources.txt"
    echo "read_xdc {$artifact/firmware/constraints/env5_config.xdc}"
    echo "synth_design -top $top -part $part"
  else
    top=network
    echo "synth_design -top $top -part $part -mode out_of_context"
    echo "create_clock -name clock -period $clock_ns [get_ports clock]"
  fi
  cat <<TCL
write_checkpoint -force \$out/post_synth.dcp
report_utilization -file \$out/utilization_synth.rpt
opt_design
place_design
route_design
write_checkpoint -force \$out/post_route.dcp
report_utilization -file \$out/utilization.rpt
report_timing_summary -file \$out/timing.rpt
report_power -file \$out/power.rpt
TCL
  if [[ $top == env5_top_reconfig ]]; then
    cat <<TCL
set_property BITSTREAM.GENERAL.COMPRESS TRUE [current_design]
write_bitstream -force -bin_file \$out/$top.bit
TCL
  fi
} > "$tcl"

if [[ $dry_run == 1 ]]; then
  cat "$tcl"
  exit 0
fi
vivado="${VIVADO:-vivado}"
command -v "$vivado" >/dev/null || {
  echo "vendor_flow.sh: $vivado not found: install AMD Vivado (free edition covers Spartan-7) and source" \
       "its settings64.sh, or set VIVADO; the Tcl is at $tcl" >&2
  exit 3
}
cd "$out"
exec "$vivado" -mode batch -nojournal -log "$out/vivado.log" -source "$tcl"
