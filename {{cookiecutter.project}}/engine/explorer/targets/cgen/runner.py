"""Build the generated sources into the POSIX benchmark and run it (on this machine, or through an
exec wrapper such as ``qemu-aarch64 -L /usr/aarch64-linux-gnu`` for a cross-compiled binary)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from ...errors import UserError
from ..protocol import BoardError, EventStream, LineReader

# -ffp-contract=off: no fused multiply-adds, so every build (host, aarch64, Cortex-M) rounds alike
CFLAGS = ("-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror", "-pedantic")
SOURCES = ("model.c", "kernels.c", "bench_posix.c")
HERE = Path(__file__).parent


def _cc(cmd: list[str], what: Path) -> None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        raise UserError(f"C compiler {cmd[0]!r} not found", hint="install gcc (or the cross compiler)") from None
    if done.returncode != 0:
        first = (done.stderr or done.stdout).strip().splitlines()[:1]
        raise UserError(f"{cmd[0]} failed on {what}: {first[0] if first else '?'}", hint=done.stderr[-2000:])


def compile_kernels(obj: Path, cc: str = "gcc", extra: tuple[str, ...] = ()) -> Path:
    """The kernels alone as an object file, to link into many models (benchmarks, tests)."""
    _cc([cc, *CFLAGS, *extra, "-c", "-o", str(obj), str(HERE / "kernels.c")], HERE / "kernels.c")
    return Path(obj)


def compile_host(out: Path, cc: str = "gcc", extra: tuple[str, ...] = (), name: str = "bench",
                 kernels_object: Path | None = None) -> Path:
    """``out/bench`` (or ``out/<name>``) from the generated sources with ``cc`` (warnings are
    errors); ``kernels_object`` (from ``compile_kernels`` with the same ``cc``) saves compiling the kernels."""
    out = Path(out)
    binary = out / name
    sources = [str(out / s) for s in SOURCES if not (kernels_object and s == "kernels.c")]
    objects = [str(kernels_object)] if kernels_object else []
    _cc([cc, *CFLAGS, *extra, "-I", str(out), "-o", str(binary), *sources, *objects, "-lm"], out)
    return binary


def run_posix(binary: Path, inputs: Path, exec_wrapper: list[str] | tuple[str, ...] = (), timeout: float = 60.0,
              repeats: int = 1, raw: bool = False) -> list[dict[str, Any]]:
    """The result events of ``binary inputs repeats [--raw]``, parsed with the board protocol
    (``raw``: the inputs are raw samples and the binary runs the on-device pre-processing)."""
    cmd = [*exec_wrapper, str(binary), str(inputs), str(repeats), *(["--raw"] if raw else [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    source = Path(binary).name if not exec_wrapper else f"{exec_wrapper[0]} {Path(binary).name}"
    try:
        events = EventStream(LineReader(proc.stdout, source).readline, source, timeout)
        ready = events.expect_ready()
        size = Path(inputs).stat().st_size
        count = size // (4 * int(ready["input_size"]))
        results = events.results(count)
        proc.wait(timeout=timeout)
        if proc.returncode != 0:
            raise BoardError(f"{source}: exited with status {proc.returncode}: "
                             f"{proc.stderr.read().decode(errors='replace')[-300:]}")
        return results
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
