"""FPGA target (e.g. the elasticAI ENV5's Spartan-7): fixed-point VHDL from elasticai.creator,
built and simulated with GHDL.

Its reflection holds only what was proven here to match the bit-exact fixed-point reference in
GHDL (``engine/tests/test_fpga.py``): ``linear`` with identity, relu (elasticai ``ReLU``), relu6
(elasticai ``HardTanh(0, 6)``), sigmoid or tanh (elasticai's lookup-table ``Sigmoid``/``Tanh``, 256
points), a ``batchnorm`` folded into the linear before it, and ops that only reshape. Left out, with
what GHDL showed (elasticai.creator 0.67):

* ``conv1d``: the fixed-point Conv1d addresses its weight ROM as ``in_channel * signal_length +
  k``, ignoring the output channel, so every output channel uses the first filter (54 of 54
  outputs wrong for 2->3 channels, kernel 3, length 8; it matches only for one channel in and out);
* ``lstm``: the generated ``lstm_network`` does not elaborate when ``ceil(log2(hidden+input))``
  differs from ``ceil(log2(hidden))`` (h_out_addr widths), needs ``-frelaxed`` for non-protected
  shared variables, and where it does run (hidden 3) it disagrees with elasticai's own fixed-point
  forward (27/31/27/28 vs 24/25/28/24 steps); it also uses hard sigmoid/tanh, reads ``input_size``
  as the number of steps of a single feature, and ends in exactly one linear with one output read;
* gelu, hardswish: elasticai.creator has no fixed-point layer for them (its HardSigmoid, SiLU and
  PReLU match no explorer activation and were not tried).

The chain of layers is our own ``network.vhd`` (``fpga_vhdl``): elasticai's Sequential misaligns
the inputs of every layer after the first.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError, require_extra
from ..space.architecture import Architecture
from . import manifest
from .base import OpSupport, Reflection, Target
from .fpga_fixed import RESHAPES

DEFAULT_FRAC_BITS = {8: 4, 16: 8}
REFERENCE = "reference.npz"
SAMPLES_TXT = "samples.txt"


@dataclass(frozen=True)
class FpgaReflection(Reflection):
    """Per-op support plus the one structural rule per-op support cannot say: a batchnorm is
    folded into the linear right before it, so it must follow a linear without activation."""

    def problems(self, architecture: Architecture) -> list[str]:
        found = super().problems(architecture)
        previous = None
        for layer in architecture.layers:
            if layer.op == "batchnorm" and not (
                    previous is not None and previous.op == "linear"
                    and previous.params.get("activation", "identity") == "identity"):
                found.append(f"{layer.path}: batchnorm must directly follow a linear without activation "
                             "(it is folded into that layer)")
            if layer.op not in RESHAPES:
                previous = layer
        if not found and not any(layer.op == "linear" for layer in architecture.layers):
            found.append("the model has no linear layer (nothing for the FPGA to compute)")
        return found


REFLECTION = FpgaReflection(
    ops={
        "linear": OpSupport(params={"activation": ("identity", "relu", "relu6", "sigmoid", "tanh")},
                            note="elasticai.creator fixed-point Linear (+ ReLU, HardTanh(0, 6) for relu6, "
                                 "lookup-table Sigmoid / Tanh)"),
        "batchnorm": OpSupport(note="folded into the preceding linear (BatchNormedLinear's folding)"),
        "flatten": OpSupport(note="row-major; no hardware"),
        "to_vector": OpSupport(note="row-major; no hardware"),
        "reshape": OpSupport(note="no hardware"),
        "identity": OpSupport(note="no hardware"),
        "dropout": OpSupport(note="inference: no hardware"),
    },
    dtypes=("fixed8", "fixed16"),
    recurrent=False,
    notes="fixed point, 8 or 16 bits (frac bits configurable); layers proven bit-exact in GHDL; "
          "conv1d and lstm of elasticai.creator 0.67 disagree in GHDL and are left out",
)


ENV5_PART = "xc7s15ftgb196-2"  # the ENV5's Spartan-7 (as elasticai's own ENV5 tooling names it)


def write_env5_firmware(fixed: Any, architecture_hash: str, folder: Path) -> list[str]:
    """elasticai.creator's ENV5 system integration around our ``network``: SPI middleware, the
    skeleton v2 (memory-mapped inputs/outputs, 8-bit data only) and the board top with its pin
    constraints. Returns the VHDL files (relative to ``folder``) in analysis order."""
    from elasticai.creator.file_generation.on_disk_path import OnDiskPath
    from elasticai.creator.vhdl.auto_wire_protocols.port_definitions import create_port
    from elasticai.creator.vhdl.system_integrations.firmware_env5 import FirmwareENv5

    from .fpga_vhdl import TOP

    if fixed.fmt.total_bits != 8:
        raise UserError("fpga: the ENV5 firmware carries 8-bit data only",
                        hint="export with total_bits=8 (and frac_bits to taste) for firmware=env5")

    class _Network:  # what FirmwareENv5 reads of a design: its name and port
        name = TOP
        port = create_port(x_width=8, y_width=8, x_count=fixed.input_size, y_count=fixed.output_size)

    skeleton_id = list(bytes.fromhex(architecture_hash[:32].ljust(32, "0")))
    FirmwareENv5(_Network(), x_num_values=fixed.input_size, y_num_values=fixed.output_size, id=skeleton_id,
                 skeleton_version="v2").save_to(OnDiskPath(folder.name, parent=str(folder.parent)))
    middleware = ["spi_slave", "UserLogicInterface", "InterfaceStateMachine", "icapInterface", "middleware"]
    sources = [f"srcs/middleware/{name}.vhd" for name in middleware]
    sources += ["srcs/skeleton.vhd", "srcs/env5_reconfig_top.vhd"]
    missing = [s for s in sources if not (folder / s).is_file()]
    if missing:
        raise RuntimeError(f"elasticai.creator's ENV5 firmware layout changed (missing {', '.join(missing)})")
    (folder / "sources.txt").write_text("\n".join(sources) + "\n")
    return sources


def expected_cycles(layers: list[dict]) -> int:
    """Clock cycles from enable to done: each Linear takes ``(in + 1) * out`` (one MAC per weight,
    one for the bias and write-back per row), each copy between layers ``out + 2``, plus the
    cycle in which done is seen."""
    return (sum((layer["in"] + 1) * layer["out"] for layer in layers)
            + sum(layer["out"] + 2 for layer in layers[:-1]) + 1)


class FpgaTarget(Target):
    name = "fpga"
    description = "elasticai.creator fixed-point VHDL (ENV5 Spartan-7), simulated with GHDL"
    reflection = REFLECTION
    toolchain = "fpga"
    artifacts = ("vhdl",)

    def export(self, model: Any, out: Path, options: dict[str, Any]) -> dict:
        from .fpga_fixed import Stats, fixed_point_model
        from .fpga_vhdl import PATCHES, TESTBENCH, TOP, write_design, write_samples

        require_extra("elasticai.creator", "fpga")
        total_bits = int(options.get("total_bits", 16))
        frac_bits = int(options.get("frac_bits", DEFAULT_FRAC_BITS.get(total_bits, total_bits // 2)))
        fixed = fixed_point_model(model, total_bits, frac_bits)
        sources = write_design(fixed, out / "vhdl")
        firmware = options.get("firmware")
        if firmware not in (None, "", "none", "env5"):
            raise UserError(f"fpga: unknown firmware {firmware!r}", hint="firmware=env5, or none")
        firmware_sources = write_env5_firmware(fixed, model.architecture.hash, out / "firmware") \
            if firmware == "env5" else None
        samples = model.samples
        x_int = fixed.quantize_input(samples.x)
        stats = Stats()
        y_int = fixed.forward(x_int, stats)
        write_samples(x_int, out / SAMPLES_TXT)
        np.savez(out / REFERENCE, x_int=x_int, y_int=y_int, x=samples.x, y=samples.y,
                 reference=samples.reference, task=np.array(samples.task))
        outputs = fixed.fmt.dequantize(y_int).reshape(samples.reference.shape)
        diff = np.abs(outputs - samples.reference.astype(np.float64))
        bound = fixed.error_bound(samples.x)
        layers = [{"name": f"linear_{i}", "from": s.layers, "in": s.in_features, "out": s.out_features,
                   "activation": s.activation} for i, s in enumerate(fixed.stages)]
        from importlib.metadata import version

        return {
            "artifacts": {"vhdl": "vhdl/sources.txt", "testbench": "vhdl/tb.vhd", "samples": SAMPLES_TXT},
            "fixed_point": fixed.fmt.to_json(),
            "layers": layers,
            "top": TOP,
            "testbench": TESTBENCH,
            "sources": [f"vhdl/{s}" for s in sources],
            "samples_file": SAMPLES_TXT,
            "firmware": None if firmware_sources is None else {
                "board": "env5", "part": ENV5_PART, "top": "env5_top_reconfig", "skeleton": "v2",
                "sources": [f"firmware/{s}" for s in firmware_sources],
                "constraints": "firmware/constraints/env5_config.xdc"},
            "generator": {"elasticai.creator": version("elasticai.creator"), "patches": PATCHES},
            "reference": {**stats.to_json(),
                          "max_abs_diff_vs_pytorch": float(diff.max()) if diff.size else 0.0,
                          "max_error_bound": float(bound.max()) if bound.size else 0.0,
                          "parameters": int(sum(s.weight.size + s.bias.size for s in fixed.stages)),
                          "rom_bits": int(sum((s.in_features + 1) * s.out_features for s in fixed.stages)
                                          * total_bits)},
            "expected_cycles": expected_cycles(layers),
        }

    # ------------------------------------------------------------ toolchain

    def build(self, artifact: Path, toolchain: str) -> dict:
        """``toolchains/fpga/build.sh``: ``ghdl -a --std=08`` over the sources in order, ``ghdl -e``;
        in the fpga image (``docker``) or with this machine's GHDL (``native``)."""
        from .toolchain import ToolchainError, run

        if toolchain == "native" and shutil.which("ghdl") is None:
            raise UserError("fpga: ghdl not found", hint="apt-get install ghdl, or use --toolchain docker")
        started = time.monotonic()
        try:
            done = run(toolchain, "fpga", Path(artifact), "build.sh", timeout=600)
        except ToolchainError as exc:
            raise UserError(f"fpga: GHDL could not build {artifact}: {exc}",
                            hint="bash toolchains/fpga/build.sh ARTIFACT shows the whole log") from None
        facts = json.loads(done.stdout.strip().splitlines()[-1])
        return {**facts, "seconds": round(time.monotonic() - started, 3)}

    @staticmethod
    def simulate_argv(artifact: Path, toolchain: str, samples: str) -> list[str]:
        """The GHDL run of ``simulate.sh``: where ``build`` ran (its work library is GHDL's own)."""
        from .toolchain import IMAGE_ROOT, MOUNT, _user, ensure_image, toolchains_root

        if toolchain == "docker":
            return ["docker", "run", "--rm", "-i", "--network", "none", *_user(), "-e", "HOME=/tmp",
                    "-v", f"{Path(artifact).resolve()}:{MOUNT}", "-w", MOUNT, ensure_image("fpga"),
                    f"{IMAGE_ROOT}/simulate.sh", MOUNT, samples]
        if shutil.which("ghdl") is None:
            raise UserError("fpga: ghdl not found", hint="apt-get install ghdl, or build with --toolchain docker")
        return ["bash", str(toolchains_root() / "fpga" / "simulate.sh"), str(Path(artifact).resolve()), samples]

    # ------------------------------------------------------------ bench

    def bench(self, artifact: Path, board: Any | None, options: dict[str, Any]) -> dict:
        """Simulate every exported sample in GHDL; outputs must equal the fixed-point reference bit
        for bit. Cycles are simulated clock cycles from enable to done (no I/O)."""
        from .local import run_program
        from .model import Samples
        from .scoring import score

        if board is not None:
            raise UserError("fpga: the only board here is the GHDL simulation (no --board)",
                            hint="a real board: toolchains/fpga/vendor_flow.sh builds the bitstream")
        found = manifest.read(artifact)
        if "build" not in found:
            raise UserError(f"{artifact}: not built yet", hint=f"explorer build --target fpga {artifact}")
        with np.load(Path(artifact) / REFERENCE) as data:
            y_int = data["y_int"]
            samples = Samples(data["x"], data["y"], data["reference"], str(data["task"]))
        count = len(y_int)
        fmt = found["fixed_point"]
        per_sample = found.get("expected_cycles", 10_000)
        timeout = float(options.get("timeout", 30 + count * per_sample / 20_000))
        argv = self.simulate_argv(Path(artifact), found["build"]["toolchain"], found["samples_file"])
        started = time.monotonic()
        ready, results = run_program(argv, count, timeout, source="ghdl")
        seconds = time.monotonic() - started
        if ready.get("input_size") != int(np.prod(found["model"]["input"]["shape"])) \
                or ready.get("total_bits") != fmt["total_bits"]:
            raise UserError(f"{artifact}: the testbench does not match the manifest ({ready})")
        outputs = np.array([r["output"] for r in results], dtype=np.int64).reshape(y_int.shape)
        mismatches = int((outputs != y_int).sum())
        step = 2.0 ** -fmt["frac_bits"]
        scored = [{"index": r["index"], "output": (np.array(r["output"]) * step).tolist()} for r in results]
        cycles = [r["cycles"] for r in results]
        return score(scored, samples, {
            "simulated_cycles": {"median": float(np.median(cycles)), "p90": float(np.percentile(cycles, 90)),
                                 "min": int(min(cycles)), "max": int(max(cycles)),
                                 "expected": found.get("expected_cycles"),
                                 "at_100mhz_ms": float(np.median(cycles)) * 1e-5,
                                 "note": "GHDL clock cycles from enable to done (no timing model); "
                                         "at_100mhz_ms assumes the ENV5's 100 MHz clock closes timing"},
            "fixed_point_reference": {"bit_exact": mismatches == 0, "mismatches": mismatches,
                                      "outputs": int(y_int.size), **{k: found["reference"][k] for k in
                                                                     ("saturated", "wrapped", "max_error_bound")}},
            "fixed_point": {"total_bits": fmt["total_bits"], "frac_bits": fmt["frac_bits"]},
            "simulator": {"name": "ghdl", "toolchain": found["build"]["toolchain"],
                          "seconds": round(seconds, 3)},
        })


TARGET = FpgaTarget()

__all__ = ["FpgaTarget", "REFLECTION", "TARGET"]
