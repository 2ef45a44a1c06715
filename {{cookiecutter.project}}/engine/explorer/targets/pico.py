"""The Pico target (Pico 1 RP2040, Pico 2 RP2350): int8 (or float32) C99 firmware from the C
generator, plus a LiteRT ``.tflite`` checked in the tflite-micro interpreter.

The simulated board is QEMU's mps2-an505 (a Cortex-M33 like the RP2350's) with its UART on a
pty, driven through pyserial exactly like a real Pico's USB CDC port. QEMU models no timing:
the cost it reports is instructions (``simulated_instructions``), never milliseconds. The
pico-sdk / TFLM firmware for a real board builds in ``toolchains/pico`` on a networked machine.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from . import cgen, litert, manifest
from .base import Reflection, Target
from .scoring import score

VARIANTS = {  # SRAM and flash of each chip (datasheets)
    "rp2350": (520 * 1024, 4 * 1024 * 1024),
    "rp2040": (264 * 1024, 2 * 1024 * 1024),
}
DEFAULT_VARIANT = "rp2350"
CPU = {"rp2350": "cortex-m33", "rp2040": "cortex-m0plus"}


def _reflection(variant: str) -> Reflection:
    sram, flash = VARIANTS[variant]
    both = cgen.REFLECTION_INT8.intersect(litert.REFLECTION, sram_bytes=sram, flash_bytes=flash)
    return replace(both, dtypes=("int8", "float32"),
                   notes="ops both the C generator (int8) and LiteRT/TFLM run; no recurrent layers")


class PicoTarget(Target):
    name = "pico"
    description = ("Raspberry Pi Pico 1/2 (RP2040/RP2350): C99 firmware (int8) and LiteRT .tflite; "
                   "simulated on QEMU mps2-an505 over a serial pty")
    toolchain = "pico"
    artifacts = ("c99-firmware", "tflite")
    reflection = _reflection(DEFAULT_VARIANT)
    image_offline = False  # the pico image fetches pico-sdk and TFLM: it builds only with network

    def reflection_for(self, variant: str | None = None) -> Reflection:
        variant = variant or DEFAULT_VARIANT
        if variant not in VARIANTS:
            raise UserError(f"unknown pico variant {variant!r}", hint=f"one of: {', '.join(VARIANTS)}")
        return _reflection(variant)

    def export(self, model, out: Path, options: dict[str, Any]) -> dict:
        dtype = options.get("dtype", "int8")
        variant = options.get("variant", DEFAULT_VARIANT)
        c_facts = cgen.generate(model, out / "c", dtype)
        shutil.copytree(Path(__file__).parent / "firmware", out / "firmware")  # toolchains/pico/build.sh reads it
        np.savez(out / "samples.npz", x=model.samples.x, y=model.samples.y, reference=model.samples.reference,
                 task=np.array(model.samples.task))
        sram, flash = VARIANTS[variant]
        return {"variant": variant, "dtype": dtype, "c": c_facts, "tflite": self.export_tflite(model, out, dtype),
                "limits": {"sram_bytes": sram, "flash_bytes": flash}}

    @staticmethod
    def export_tflite(model, out: Path, dtype: str) -> dict:
        """The LiteRT artifact checked in TFLM. A candidate litert-torch cannot convert keeps its C
        firmware (what the board runs) and the converter's reason in the manifest."""
        litert._litert()  # a missing extra is one line, not a conversion failure
        try:
            tflite = litert.convert(model, out, quantize="int8" if dtype == "int8" else "none")
            check = litert.tflm_check(out / litert.TFLITE, model.samples)
        except Exception as exc:  # the converter's limitation for this candidate, not the user's mistake
            (out / litert.TFLITE).unlink(missing_ok=True)
            return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
        return {**tflite, "tflm_arena_bytes": check["arena_bytes"], "tflm_agreement": check["agreement"]}

    def build(self, artifact: Path, toolchain: str) -> dict:
        from . import mcu
        from .toolchain import run_in_image

        if toolchain == "docker":
            run_in_image("pico", artifact, args=["mps2"])
            elf = artifact / "c" / "build" / "mps2-an505" / "firmware.elf"
        else:
            elf = mcu.build_mps2(artifact / "c")
        found = manifest.read(artifact, verify=False)
        chip = mcu.compile_for(artifact / "c", CPU[found["variant"]])
        return {"elf": str(elf.relative_to(artifact)), **mcu.section_sizes(elf),
                "chip": {k: v for k, v in chip.items() if k != "elf"}}

    def bench(self, artifact: Path, board, options: dict[str, Any]) -> dict:
        from . import qemu, serial_link
        from .model import Samples

        found = manifest.read(artifact)
        if "build" not in found:
            raise UserError(f"{artifact}: not built yet", hint=f"explorer build {artifact}")
        with np.load(artifact / "samples.npz") as data:
            samples = Samples(data["x"], data["y"], data["reference"], str(data["task"]))
        timeout = float(options.get("timeout", board.timeout if board is not None else 60.0))
        if board is None or board.simulator == "qemu-mps2-an505":
            ready, results = qemu.run_mps2(artifact / found["build"]["elf"], samples.x, timeout=timeout)
            where = board.name if board is not None else "qemu-mps2-an505"
        else:
            ready, results = serial_link.run_board(samples.x, device=board.device,
                                                   serial_number=board.serial_number, timeout=timeout)
            where = board.name
        build = found["build"]
        return score(results, samples, {
            "target": self.name, "board": where, "simulated": ready.get("cost") == "instructions",
            "cost_unit": ready.get("cost"), "dtype": found["dtype"], "variant": found["variant"],
            "arena_bytes": found["c"]["arena_bytes"], "weight_bytes": found["c"]["weight_bytes"],
            "flash_bytes": build["chip"]["flash_bytes"], "ram_bytes": build["chip"]["ram_bytes"],
            "fits": build["chip"]["fits"], "tflm_arena_bytes": found["tflite"].get("tflm_arena_bytes")})


TARGET = PicoTarget()
