"""An exported model folder (``results/<space>/models/<trial>/``) as the targets read it.

The folder is self-contained: architecture, weights, the fitted pre-processing state and
``samples.npz`` (test inputs as the model sees them, their labels and PyTorch's outputs), so a
target needs neither the dataset nor Optuna to export, check and benchmark a model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..space.architecture import Architecture

SAMPLES = "samples.npz"
DEFAULT_SAMPLES = 64


@dataclass(frozen=True)
class Samples:
    """``x`` model inputs [N, *input], ``y`` labels [N] (or targets), ``reference`` PyTorch outputs [N, *output]."""

    x: np.ndarray
    y: np.ndarray
    reference: np.ndarray
    task: str = "classification"


@dataclass(frozen=True)
class ExportedModel:
    folder: Path
    architecture: Architecture
    state_dict: dict
    preprocessing: dict  # {"steps": [...], "state": [...]}
    samples: Samples

    @property
    def name(self) -> str:
        return self.folder.name

    def module(self) -> Any:
        """The PyTorch model in eval mode, weights loaded."""
        from ..build import build

        model = build(self.architecture)
        model.load_state_dict(self.state_dict)
        return model.eval()


def reference_outputs(model: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model.eval()(torch.tensor(np.asarray(x), dtype=torch.float32)).numpy().astype(np.float32)


def write_model_dir(folder: Path, architecture: Architecture, model: Any, x: np.ndarray, y: np.ndarray,
                    task: str = "classification", preprocessing: dict | None = None) -> Path:
    """Save ``model`` the way the search exports it; ``x``/``y`` become the folder's test samples."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "model.pt")
    (folder / "architecture.json").write_text(json.dumps(architecture.to_json(), indent=2, sort_keys=True) + "\n")
    (folder / "preprocessing.json").write_text(json.dumps(
        preprocessing or {"steps": architecture.preprocessing, "state": []}, indent=2, sort_keys=True) + "\n")
    x = np.ascontiguousarray(x, dtype=np.float32)
    np.savez(folder / SAMPLES, x=x, y=np.asarray(y), reference=reference_outputs(model, x), task=np.array(task))
    return folder


def load_model_dir(folder: Path) -> ExportedModel:
    """Read a model folder; a missing or foreign folder is a user error naming what is missing."""
    import torch

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such model folder", hint="explorer report writes results/<space>/models/<trial>/")
    missing = [n for n in ("architecture.json", "model.pt", SAMPLES) if not (folder / n).is_file()]
    if missing:
        raise UserError(f"{folder}: not an exported model folder (missing {', '.join(missing)})",
                        hint="explorer report writes results/<space>/models/<trial>/ with every file a target needs")
    try:
        architecture = Architecture.from_json(json.loads((folder / "architecture.json").read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{folder / 'architecture.json'}: unreadable architecture ({exc})") from None
    preprocessing_file = folder / "preprocessing.json"
    preprocessing = (json.loads(preprocessing_file.read_text()) if preprocessing_file.is_file()
                     else {"steps": [], "state": []})
    with np.load(folder / SAMPLES) as data:
        samples = Samples(data["x"].astype(np.float32), data["y"], data["reference"].astype(np.float32),
                          str(data["task"]) if "task" in data else "classification")
    state_dict = torch.load(folder / "model.pt", weights_only=True)
    return ExportedModel(folder, architecture, state_dict, preprocessing, samples)
