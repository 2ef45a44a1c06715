"""The host target: TorchScript and ONNX, measured with the same runner scripts a board uses,
as local processes. Outputs are compared with PyTorch at export and at every benchmark."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .base import Reflection, Target
from .scoring import score
from .local import run_program

RUNNERS = Path(__file__).parent / "runners"
EXPORT_TOLERANCE = 1e-4  # float32 re-implementations of the same graph: relative to the output range


def export_torchscript(model: Any, example: np.ndarray, path: Path) -> None:
    import torch

    with torch.no_grad():
        traced = torch.jit.trace(model, torch.as_tensor(example), check_trace=False)
    traced.save(str(path))


def export_onnx(model: Any, example: np.ndarray, path: Path) -> None:
    import torch

    with torch.no_grad():
        torch.onnx.export(model, (torch.as_tensor(example),), str(path), input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          dynamo=False)


def max_relative_diff(outputs: np.ndarray, reference: np.ndarray) -> float:
    scale = max(float(np.abs(reference).max()), 1e-6)
    return float(np.abs(outputs - reference).max()) / scale


def check_artifacts(folder: Path, x: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Relative max difference of each artifact's outputs from PyTorch's, in process."""
    import onnxruntime
    import torch

    ts = torch.jit.load(str(folder / "model.ts"))
    with torch.no_grad():
        ts_out = ts(torch.as_tensor(x)).numpy()
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {"input": x})[0]
    return {"torchscript": max_relative_diff(ts_out, reference), "onnx": max_relative_diff(onnx_out, reference)}


class HostTarget(Target):
    name = "host"
    description = "this machine: TorchScript and ONNX (onnxruntime), the CI runner's own CPU"
    reflection = Reflection(ops=None, dtypes=("float32",), notes="every op of the registry")
    artifacts = ("torchscript", "onnx")

    def export(self, model, out: Path, options: dict[str, Any]) -> dict:
        from ..errors import UserError

        module = model.module()
        x, reference = model.samples.x, model.samples.reference
        export_torchscript(module, x[:1], out / "model.ts")
        export_onnx(module, x[:1], out / "model.onnx")
        np.savez(out / "samples.npz", x=x, y=model.samples.y, reference=reference, task=np.array(model.samples.task))
        for runner in ("torchscript_runner.py", "onnx_runner.py"):
            shutil.copy(RUNNERS / runner, out / runner)
        check = check_artifacts(out, x, reference)
        bad = {k: v for k, v in check.items() if v > EXPORT_TOLERANCE}
        if bad:
            raise UserError(f"{model.folder}: exported outputs differ from PyTorch ({bad})",
                            hint="an op exports differently; report it with the architecture.json")
        return {"artifacts": {"torchscript": "model.ts", "onnx": "model.onnx"}, "export_check": check}

    def bench(self, artifact: Path, board, options: dict[str, Any]) -> dict:
        from .model import Samples

        with np.load(artifact / "samples.npz") as data:
            samples = Samples(data["x"], data["y"], data["reference"], str(data["task"]))
        repeats = str(options.get("repeats", 5))
        timeout = float(options.get("timeout", 120.0))
        runs = {}
        for runtime, runner, model_file in (("onnx", "onnx_runner.py", "model.onnx"),
                                            ("torchscript", "torchscript_runner.py", "model.ts")):
            ready, results = run_program([sys.executable, runner, model_file, "samples.npz", repeats],
                                         len(samples.x), timeout, cwd=artifact, source=f"host/{runtime}")
            runs[runtime] = score(results, samples, {"runtime": ready.get("runtime", runtime)})
        main = runs.pop("onnx")
        return {"target": self.name, "board": "localhost", **main, "torchscript": runs["torchscript"]}


TARGET = HostTarget()
