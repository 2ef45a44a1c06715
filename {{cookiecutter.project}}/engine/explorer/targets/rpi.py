"""The Raspberry Pi target (Pi 4/5, 64-bit OS, aarch64).

Two programs measure the same model on the Pi and print the same JSON-lines protocol:

* the TorchScript runner (``runners/torchscript_runner.py``: torch and numpy on the Pi, nothing
  else) over ``model.ts``; it runs every op, so the target's reflection is the whole registry;
* the dependency-free C99 benchmark binary of ``explorer.targets.cgen``, cross-compiled for
  aarch64 (static, so the Pi needs no library), float32 or (``dtype: int8``) int8; it exists only
  when the model is within the C generator's ops for that dtype, and the manifest says why when
  it is not (the TorchScript runner is always there).

Deployment is over SSH (``explorer.targets.ssh``): the artifact is uploaded once per content hash
to ``<workdir>/<hash>`` and the runners are started there. Without a board both programs run on
this machine (the aarch64 binary through ``qemu-aarch64`` when the host is not aarch64).
"""

from __future__ import annotations

import hashlib
import json
import platform
import posixpath
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from . import manifest
from .base import Reflection, Target

RUNNER = "torchscript_runner.py"
RUNNERS = Path(__file__).parent / "runners"
CROSS_CC = "aarch64-linux-gnu-gcc"
C_DIR = "c"
BINARY = "c/bench"
EM_AARCH64 = 183  # ELF e_machine of a 64-bit Arm binary
EXPORT_TOLERANCE = 1e-5  # TorchScript re-runs PyTorch's own kernels: max abs diff relative to the output range
RUNNER_CHOICES = ("torchscript", "c", "both")
BUILD_FLAGS = ("-std=c99", "-O2")  # toolchains/rpi/build.sh's CFLAGS
C_SOURCES = ("model.c", "kernels.c", "bench_posix.c")


def _cgen():
    """The C generator, or None when this engine has none (the TorchScript path still works)."""
    try:
        from . import cgen
    except ImportError:
        return None
    return cgen


def export_torchscript(module: Any, x: np.ndarray, path: Path) -> float:
    """Trace ``module`` into ``path`` and return the largest difference of the saved file's outputs
    from PyTorch's, sample by sample as the runner feeds them (relative to the output range)."""
    import warnings

    import torch

    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about shape checks it freezes (nn.LSTM's); the saved file is checked below
        # on every sample instead, and TorchScript's deprecation notice is no news to a Pi user.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(module, torch.as_tensor(x[:1]), check_trace=False)
        traced.save(str(path))
        loaded = torch.jit.load(str(path)).eval()
        got = np.concatenate([loaded(torch.as_tensor(x[i:i + 1])).numpy() for i in range(len(x))])
        want = module(torch.as_tensor(x)).numpy()
    scale = max(float(np.abs(want).max()), 1e-6)
    return float(np.abs(got - want).max()) / scale


def artifact_hash(found: dict) -> str:
    """Content hash of an artifact (its manifest's file hashes): the remote folder's name."""
    return hashlib.sha256(json.dumps(found.get("files", {}), sort_keys=True).encode()).hexdigest()[:16]


def load_samples(artifact: Path):
    from .model import Samples

    with np.load(Path(artifact) / "samples.npz") as data:
        return Samples(data["x"].astype(np.float32), data["y"], data["reference"].astype(np.float32),
                       str(data["task"]))


def cross_compile(artifact: Path, choice: str) -> tuple[Path, str]:
    """``c/bench`` for aarch64: ``toolchains/rpi/build.sh`` in the pinned rpi image (``docker``) or with
    the cross compiler on this machine (``native``); the same script, so the same binary.
    Returns (binary, compiler)."""
    from . import toolchain

    c_dir = Path(artifact) / C_DIR
    if choice == "native" and shutil.which(CROSS_CC) is None:
        raise UserError(f"{CROSS_CC} not found (the native rpi toolchain)",
                        hint="apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross, or --toolchain docker")
    if (toolchain.toolchains_root() / "rpi" / "build.sh").is_file():
        try:
            done = toolchain.run(choice, "rpi", c_dir, args=["bench"], timeout=1800)
        except toolchain.ToolchainError as exc:
            lines = str(exc).splitlines()
            raise UserError(f"{c_dir}: aarch64 build failed: {lines[-1] if lines else exc}",
                            hint="\n".join(lines[1:]) or None) from None
        # build.sh ends with "OUTPUT COMPILER_VERSION SHA256"
        last = (done.stdout.strip().splitlines() or [""])[-1].split()
        return c_dir / "bench", f"{CROSS_CC} {last[1]}" if len(last) == 3 else CROSS_CC
    if choice == "docker":
        raise UserError(f"no rpi toolchain folder in {toolchain.toolchains_root()}", hint="use --toolchain native")
    # An engine installed without the template's toolchains/ folder: build.sh's command, here.
    argv = [CROSS_CC, *BUILD_FLAGS, "-static", *C_SOURCES, "-lm", "-o", "bench"]
    done = subprocess.run(argv, cwd=c_dir, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise UserError(f"{c_dir}: aarch64 build failed: {lines[0] if lines else f'exit code {done.returncode}'}",
                        hint=done.stderr[-2000:] or None)
    version = subprocess.run([CROSS_CC, "-dumpfullversion"], capture_output=True, text=True).stdout.strip()
    return c_dir / "bench", f"{CROSS_CC} {version}"


def elf_machine(binary: Path) -> int:
    header = Path(binary).read_bytes()[:20]
    if header[:4] != b"\x7fELF":
        raise UserError(f"{binary}: not an ELF binary")
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def local_exec_wrapper() -> list[str]:
    """How this machine runs an aarch64 binary: directly on aarch64, else through qemu-aarch64 user
    mode (the binary is static, so no sysroot is needed)."""
    if platform.machine() in ("aarch64", "arm64"):
        return []
    if shutil.which("qemu-aarch64") is None:
        raise UserError("qemu-aarch64 not found: cannot run the aarch64 binary on this machine",
                        hint="apt-get install qemu-user, or bench on a board with --board")
    return ["qemu-aarch64"]


def emulated(wrapper: list[str]) -> str | None:
    """The emulator in an exec wrapper (its times are the emulator's, not the Pi's)."""
    return next((Path(w).name for w in wrapper[:1] if Path(w).name.startswith("qemu")), None)


class RpiTarget(Target):
    name = "rpi"
    description = ("Raspberry Pi 4/5 (aarch64) over SSH: TorchScript with a Python runner, and the C99 "
                   "benchmark binary cross-compiled for aarch64")
    reflection = Reflection(ops=None, dtypes=("float32", "int8"),
                            notes="TorchScript (float32) runs every op; the aarch64 C99 binary (float32, or int8 "
                                  "with --dtype int8) is added when the model is within the C generator's ops")
    toolchain = "rpi"
    artifacts = ("torchscript", "c99-aarch64")

    # ------------------------------------------------------------------ export

    def export(self, model, out: Path, options: dict[str, Any]) -> dict:
        module = model.module()
        samples = model.samples
        diff = export_torchscript(module, samples.x, out / "model.ts")
        if not diff <= EXPORT_TOLERANCE:
            raise UserError(f"{model.folder}: the TorchScript export differs from PyTorch "
                            f"(max difference {diff:.2e} of the output range)",
                            hint="an op traces differently; report it with the architecture.json")
        np.savez(out / "samples.npz", x=samples.x, y=samples.y, reference=samples.reference,
                 task=np.array(samples.task))
        shutil.copy(RUNNERS / RUNNER, out / RUNNER)
        fields: dict[str, Any] = {
            "artifacts": {"torchscript": "model.ts", "runner": RUNNER, "samples": "samples.npz"},
            "export_check": {"torchscript": diff},
        }
        cgen, dtype = _cgen(), options.get("dtype") or "float32"
        if dtype not in ("float32", "int8"):
            raise UserError(f"rpi: dtype {dtype!r} is not supported", hint="float32, or int8 for the C benchmark")
        problems = (cgen.reflection_for(dtype).problems(model.architecture) if cgen is not None
                    else ["this engine has no C generator"])
        if problems:  # TorchScript still runs it; the manifest says why there is no binary
            fields["c"] = {"skipped": f"no {dtype} C benchmark: {problems[0]}" + (
                f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")}
        else:
            fields["c"] = cgen.generate(model, out / C_DIR, dtype=dtype)
            fields["artifacts"]["c"] = C_DIR
        return fields

    # ------------------------------------------------------------------ build

    def build(self, artifact: Path, toolchain: str) -> dict:
        found = manifest.read(artifact)
        if "c" not in found.get("artifacts", {}):
            return {"binaries": {}, "note": found.get("c", {}).get("skipped", "no C sources")}
        binary, compiler = cross_compile(Path(artifact), toolchain)
        if elf_machine(binary) != EM_AARCH64:
            raise UserError(f"{binary}: the toolchain did not produce an aarch64 binary")
        facts: dict[str, Any] = {"binaries": {"c": BINARY}, "binary_bytes": binary.stat().st_size,
                                 "static": True, "compiler": compiler, "sha256": manifest.sha256(binary)}
        size = shutil.which("aarch64-linux-gnu-size")
        if size:
            done = subprocess.run([size, str(binary)], capture_output=True, text=True)
            if done.returncode == 0:
                text, data, bss = (int(v) for v in done.stdout.splitlines()[1].split()[:3])
                facts["sections"] = {"text": text, "data": data, "bss": bss}
        return facts

    # ------------------------------------------------------------------ bench

    def bench(self, artifact: Path, board: Any | None, options: dict[str, Any]) -> dict:
        artifact = Path(artifact)
        found = manifest.read(artifact)
        samples = load_samples(artifact)
        runners = self._runners(artifact, found, options.get("runner", "both"))
        repeats = int(options.get("repeats", 5))
        timeout = float(options.get("timeout", board.timeout if board is not None else 120.0))
        count = len(samples.x)
        raw: dict[str, tuple[dict, list[dict]]] = {}
        if board is None:
            from .local import run_program

            wrapper = local_exec_wrapper() if "c" in runners else []
            for runner in runners:
                argv = ([sys.executable, RUNNER, "model.ts", "samples.npz", str(repeats)] if runner == "torchscript"
                        else [*wrapper, BINARY, f"{C_DIR}/inputs.bin", str(repeats)])
                raw[runner] = run_program(argv, count, timeout, cwd=artifact, source=f"local/{runner}")
            where = {"board": "localhost"}
        else:
            from .ssh import SshBoard, run_remote

            wrapper = list(board.exec_wrapper)
            with SshBoard(board) as pi:
                remote, uploaded = deploy(pi, artifact, found)
                for runner in runners:
                    argv = ([*shlex.split(board.python), RUNNER, "model.ts", "samples.npz", str(repeats)]
                            if runner == "torchscript"
                            else [*wrapper, f"./{BINARY}", f"{C_DIR}/inputs.bin", str(repeats)])
                    command = f"cd {shlex.quote(remote)} && {shlex.join(argv)}"
                    raw[runner] = run_remote(pi, command, count, timeout, source=f"{board.name}/{runner}")
            where = {"board": board.name, "remote": remote, "uploaded": uploaded}
        return self._metrics(artifact, found, samples, raw, wrapper, where, repeats)

    def _runners(self, artifact: Path, found: dict, choice: str) -> list[str]:
        if choice not in RUNNER_CHOICES:
            raise UserError(f"unknown rpi runner {choice!r}", hint=f"one of: {', '.join(RUNNER_CHOICES)}")
        has_binary = (artifact / BINARY).is_file() and "c" in found.get("build", {}).get("binaries", {})
        if choice == "c" and not has_binary:
            why = found.get("c", {}).get("skipped") or "not built yet (explorer build --target rpi ARTIFACT)"
            raise UserError(f"{artifact}: no aarch64 C benchmark: {why}")
        if choice == "both":
            return ["torchscript", "c"] if has_binary else ["torchscript"]
        return [choice]

    def _metrics(self, artifact: Path, found: dict, samples, raw: dict, wrapper: list[str], where: dict,
                 repeats: int) -> dict:
        from .scoring import score

        runs: dict[str, dict] = {}
        if "torchscript" in raw:
            ready, results = raw["torchscript"]
            runs["torchscript"] = score(results, samples, {
                "runtime": "torchscript", "torch": ready.get("version"),
                "model_bytes": (artifact / "model.ts").stat().st_size})
        if "c" in raw:
            ready, results = raw["c"]
            build = found.get("build", {})
            extra = {"runtime": "c99", "dtype": ready.get("dtype"), "arena_bytes": ready.get("arena_bytes"),
                     "weight_bytes": ready.get("weight_bytes"), "binary_bytes": build.get("binary_bytes")}
            if emulated(wrapper):
                extra["emulated"] = emulated(wrapper)  # times are the emulator's, not the Pi's
            runs["c"] = score(results, samples, extra)
        main_name = "torchscript" if "torchscript" in runs else "c"
        main = runs.pop(main_name)
        return {"target": self.name, **where, "runner": main_name, "repeats": repeats, **main, **runs}


def deploy(pi: Any, artifact: Path, found: dict) -> tuple[str, bool]:
    """Upload ``artifact`` to ``<workdir>/<content hash>`` unless it is already there; (path, uploaded).
    The upload goes to a ``.partial`` folder renamed at the end, so a broken upload is never reused."""
    remote = posixpath.join(pi.remote_path(pi.board.workdir), artifact_hash(found))
    if pi.exists(remote):
        return remote, False
    partial = remote + ".partial"
    if pi.exists(partial):
        pi.rmtree(partial)
    pi.upload(artifact, partial)
    pi.rename(partial, remote)
    return remote, True


TARGET = RpiTarget()

__all__ = ["TARGET", "RpiTarget", "artifact_hash", "deploy", "export_torchscript"]
