"""Firmware of the C99 model for microcontrollers: the Pico 2 stand-in in QEMU, size checks for
Pico 1/2, and the host reference build of the very same protocol code.

A firmware is the generated model (``model.h``, ``model.c``, ``kernels.c``/``kernels.h``), the
board-independent protocol loop ``firmware/main_mcu.c`` and one board layer (``board.h``):

- ``mps2_an505/`` runs on ``qemu-system-arm -M mps2-an505`` (a Cortex-M33 like the RP2350's):
  vector table at 0x10000000, data and stack in SSRAM2/3 at 0x38000000, CMSDK UART0 as the
  serial link, and the CMSDK timer 0 as an instruction counter under ``-icount shift=8``
  (``board_mps2.c`` says how, and checks it at boot);
- ``host/`` is a POSIX process on stdin/stdout (the reference outputs of the same C);
- ``pico/`` is the real Pico with pico-sdk stdio over USB CDC (builds only in the pico
  toolchain image; not compiled here).

Every build uses ``-std=c99 -ffp-contract=off``: no fused multiply-adds on either side, so the
float32 arithmetic of the M33 and of the host is the same IEEE sequence.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

FIRMWARE = Path(__file__).parent / "firmware"
MODEL_FILES = ("model.h", "model.c", "kernels.c")  # what the C generator writes (kernels.h too)
ICOUNT_SHIFT = 8  # QEMU -icount shift: 1 instruction = 256 ns of virtual time (see board_mps2.c)
STACK_BYTES = 16 * 1024

C_FLAGS = ("-std=c99", "-O2", "-ffp-contract=off", "-ffunction-sections", "-fdata-sections", "-Wall")
CPU_FLAGS = {
    "cortex-m33": ("-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"),
    "cortex-m0plus": ("-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft"),
}
LINK_FLAGS = ("-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections")


@dataclass(frozen=True)
class Chip:
    name: str
    board: str
    sram_bytes: int
    flash_bytes: int


# The Pico chips by CPU, with the limits the issue names (RP2040 264 KB / 2 MB, RP2350 520 KB / 4 MB).
CHIPS = {
    "cortex-m0plus": Chip("rp2040", "Pico 1", 264 * 1024, 2 * 1024 * 1024),
    "cortex-m33": Chip("rp2350", "Pico 2", 520 * 1024, 4 * 1024 * 1024),
}

# The memory map of size checks: roomy, so an oversized model still links and reports its sizes
# (compared with the chip's limits afterwards). Runnable images use firmware/mps2_an505/mps2_an505.ld.
SIZE_CHECK_MEMORY = "FLASH (rx) : ORIGIN = 0x10000000, LENGTH = 256M\n    RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 256M"


def require_tool(name: str, hint: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise UserError(f"{name} not found on PATH", hint=hint)
    return found


def _arm_cc(cc: str) -> str:
    return require_tool(cc, "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi, or build in the pico "
                            "toolchain image (--toolchain docker)")


def model_sources(source_dir: Path) -> list[Path]:
    """The generated C files of ``source_dir`` (``model.c``, ``kernels.c``); a folder without
    them is a user error naming what is missing."""
    source_dir = Path(source_dir)
    missing = [name for name in MODEL_FILES if not (source_dir / name).is_file()]
    if missing:
        raise UserError(f"{source_dir}: no generated C model here (missing {', '.join(missing)})",
                        hint="explorer export --target pico writes the C sources")
    return [source_dir / "model.c", source_dir / "kernels.c"]


def compile_image(sources: list[Path], include_dirs: list[Path], out: Path, *, cpu: str = "cortex-m33",
                  memory: str | None = None, cc: str = "arm-none-eabi-gcc", stack_bytes: int = STACK_BYTES,
                  defines: tuple[str, ...] = ()) -> Path:
    """Compile and link a bare-metal image (start-up and sections of ``firmware/mps2_an505``) for
    QEMU's AN505 memory map, or for ``memory`` (the body of a linker MEMORY block)."""
    if cpu not in CPU_FLAGS:
        raise UserError(f"unknown cpu {cpu!r}", hint=f"one of: {', '.join(CPU_FLAGS)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    script = FIRMWARE / "mps2_an505" / "mps2_an505.ld"
    if memory is not None:
        script = out.with_suffix(".ld")
        script.write_text(f"MEMORY\n{{\n    {memory}\n}}\nINCLUDE sections.ld\n")
    argv = [_arm_cc(cc), *CPU_FLAGS[cpu], *C_FLAGS, *(f"-D{d}" for d in defines),
            *(f"-I{d}" for d in include_dirs), *map(str, sources), str(FIRMWARE / "mps2_an505" / "startup.c"),
            *LINK_FLAGS, f"-Wl,--defsym=STACK_SIZE={stack_bytes}", f"-L{FIRMWARE / 'mps2_an505'}",
            f"-T{script}", "-lm", "-o", str(out)]
    _run(argv, out)
    return out


def build_mps2(source_dir: Path, cc: str = "arm-none-eabi-gcc", out: Path | None = None,
               cpu: str = "cortex-m33") -> Path:
    """The firmware ELF of the model in ``source_dir`` for QEMU's mps2-an505 (Pico 2 stand-in).

    ``out`` defaults to ``<source_dir>/build/mps2-an505[-<cpu>]/firmware.elf``; ``section_sizes``
    gives its flash and static RAM. ``cpu="cortex-m0plus"`` compiles Armv6-M code (the Pico 1's
    instruction set, soft float), which the M33 of the machine also runs: its instruction counts
    stand in for the RP2040's."""
    source_dir = Path(source_dir)
    suffix = "" if cpu == "cortex-m33" else f"-{cpu}"
    out = Path(out) if out else source_dir / "build" / f"mps2-an505{suffix}" / "firmware.elf"
    sources = [*model_sources(source_dir), FIRMWARE / "main_mcu.c", FIRMWARE / "mps2_an505" / "board_mps2.c"]
    return compile_image(sources, [source_dir, FIRMWARE], out, cpu=cpu, cc=cc,
                         defines=(f"ICOUNT_SHIFT={ICOUNT_SHIFT}",))


def build_host(source_dir: Path, cc: str = "cc", out: Path | None = None) -> Path:
    """The same protocol program for this machine (stdin/stdout): the reference outputs of the
    firmware's C, and a local runner of the serial protocol."""
    source_dir = Path(source_dir)
    out = Path(out) if out else source_dir / "build" / "host" / "firmware"
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler = require_tool(cc, "install a C compiler (apt-get install gcc)")
    argv = [compiler, *C_FLAGS, f"-I{source_dir}", f"-I{FIRMWARE}", *map(str, model_sources(source_dir)),
            str(FIRMWARE / "main_mcu.c"), str(FIRMWARE / "host" / "board_host.c"), "-lm", "-o", str(out)]
    _run(argv, out)
    return out


def section_sizes(elf: Path, size_tool: str | None = None) -> dict[str, int]:
    """Berkeley sizes of an ELF (``arm-none-eabi-size``): flash = text + data (the load image),
    static RAM = data + bss (bss includes the reserved stack)."""
    tool = require_tool(size_tool or "arm-none-eabi-size", "apt-get install binutils-arm-none-eabi")
    done = subprocess.run([tool, "-B", str(elf)], capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f"{elf}: {tool} failed: {done.stderr.strip()[:200]}")
    text, data, bss = (int(v) for v in done.stdout.splitlines()[1].split()[:3])
    return {"text": text, "data": data, "bss": bss, "flash_bytes": text + data, "ram_bytes": data + bss}


def compile_for(source_dir: Path, cpu: str, cc: str = "arm-none-eabi-gcc", out: Path | None = None) -> dict:
    """Compile-and-link size check of the model for a Pico's CPU (``cortex-m0plus``: RP2040,
    ``cortex-m33``: RP2350) against that chip's SRAM and flash.

    The image is the model, the protocol loop and the small UART board layer; pico-sdk's USB
    stdio adds to it on the real board, so treat ``fits`` as necessary, not sufficient."""
    if cpu not in CHIPS:
        raise UserError(f"unknown cpu {cpu!r}", hint=f"one of: {', '.join(CHIPS)}")
    source_dir = Path(source_dir)
    chip = CHIPS[cpu]
    out = Path(out) if out else source_dir / "build" / f"size-{chip.name}" / "firmware.elf"
    sources = [*model_sources(source_dir), FIRMWARE / "main_mcu.c", FIRMWARE / "mps2_an505" / "board_mps2.c"]
    compile_image(sources, [source_dir, FIRMWARE], out, cpu=cpu, memory=SIZE_CHECK_MEMORY, cc=cc)
    sizes = section_sizes(out, _size_tool(cc))
    problems = []
    if sizes["flash_bytes"] > chip.flash_bytes:
        problems.append(f"flash {sizes['flash_bytes']} B > {chip.flash_bytes} B")
    if sizes["ram_bytes"] > chip.sram_bytes:
        problems.append(f"static RAM {sizes['ram_bytes']} B > {chip.sram_bytes} B")
    return {"cpu": cpu, "chip": chip.name, "board": chip.board, **sizes, "stack_bytes": STACK_BYTES,
            "flash_limit": chip.flash_bytes, "sram_limit": chip.sram_bytes, "fits": not problems,
            "problems": problems, "elf": str(out)}


def stage_pico_project(source_dir: Path, out: Path) -> Path:
    """A pico-sdk project folder (CMakeLists.txt, protocol loop, USB CDC board layer, model) for
    the pico toolchain image: ``cmake -DPICO_BOARD=pico2 ..`` there. Not buildable here."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for source in [*model_sources(source_dir), Path(source_dir) / "model.h"]:
        shutil.copy2(source, out / source.name)
    kernels_h = Path(source_dir) / "kernels.h"
    if kernels_h.is_file():
        shutil.copy2(kernels_h, out / "kernels.h")
    for name in ("main_mcu.c", "board.h"):
        shutil.copy2(FIRMWARE / name, out / name)
    for source in (FIRMWARE / "pico").iterdir():
        shutil.copy2(source, out / source.name)
    return out


def _size_tool(cc: str) -> str:
    return cc[: -len("gcc")] + "size" if cc.endswith("gcc") else "arm-none-eabi-size"


def _run(argv: list[str], out: Path) -> None:
    """Run a compiler; a failure is one line naming the first error, the full log beside ``out``."""
    done = subprocess.run(argv, capture_output=True, text=True)
    log = out.parent / (out.name + ".log")
    log.write_text(" ".join(argv) + "\n" + done.stdout + done.stderr)
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if "error" in line.lower()] or done.stderr.splitlines()
        first = errors[0].strip() if errors else f"exit status {done.returncode}"
        raise UserError(f"building {out.name} failed: {first[:300]}", hint=f"full compiler output in {log}")
