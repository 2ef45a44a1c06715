"""Targets: where a model runs, and how it gets there (generator, toolchain, transport, reflection).

``export`` -> ``build`` -> ``bench`` is the same three steps for every target; the registry maps a
name to its ``Target``. Target modules import their heavy libraries only inside their methods.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from typing import Any

from ..errors import UserError
from . import manifest
from .base import OpSupport, Reflection, Target
from .model import ExportedModel, Samples, load_model_dir, write_model_dir
from .protocol import BoardError

# name -> module defining ``TARGET``; imported on first use so `explorer targets` stays light.
MODULES = {
    "host": "explorer.targets.host",
    "rpi": "explorer.targets.rpi",
    "pico": "explorer.targets.pico",
    "fpga": "explorer.targets.fpga",
}
_LOADED: dict[str, Target] = {}


def get_target(name: str) -> Target:
    if name not in MODULES:
        from ..space.validate import did_you_mean

        raise UserError(f"unknown target {name!r}", hint=did_you_mean(name, MODULES) or
                        f"one of: {', '.join(MODULES)}")
    if name not in _LOADED:
        _LOADED[name] = importlib.import_module(MODULES[name]).TARGET
    return _LOADED[name]


def all_targets() -> list[Target]:
    return [get_target(name) for name in MODULES]


def export(target_name: str, model_dir: Path, out: Path, options: dict[str, Any] | None = None) -> dict:
    """Model folder -> artifact folder with ``manifest.json``; refuses a model the target cannot run."""
    target = get_target(target_name)
    model = load_model_dir(model_dir)
    options = dict(options or {})
    problems = target.reflection_for(options.get("variant")).problems(model.architecture)
    if problems:
        raise UserError(f"{model_dir}: target {target.name} cannot run this model: {problems[0]}"
                        + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""),
                        hint=f"explorer targets shows what {target.name} supports")
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    fields = target.export(model, out, options)
    return manifest.write(out, {
        "target": target.name, **fields,
        "model": {"folder": str(model.folder), "architecture_hash": model.architecture.hash,
                  "input": model.architecture.input.to_json(), "output": model.architecture.output.to_json(),
                  "summary": model.architecture.summary(), "samples": len(model.samples.x)}})


def build(artifact: Path, toolchain: str = "auto") -> dict:
    """Compile an exported artifact in place with ``docker``, ``native`` or ``auto`` (docker when a
    daemon answers and the target has an image, else native: the same sources, the same result)."""
    from .toolchain import resolve

    found = manifest.read(artifact)
    target = get_target(found["target"])
    chosen = resolve(toolchain, target)
    facts = target.build(Path(artifact), chosen)
    return manifest.update(artifact, {"build": {"toolchain": chosen, **facts}})


def bench(artifact: Path, board: Any | None = None, options: dict[str, Any] | None = None) -> dict:
    """Measure an artifact on ``board`` (None: the target's local runner or simulator)."""
    found = manifest.read(artifact)
    target = get_target(found["target"])
    return target.bench(Path(artifact), board, dict(options or {}))


__all__ = ["BoardError", "ExportedModel", "OpSupport", "Reflection", "Samples", "Target", "all_targets", "bench",
           "build", "export", "get_target", "load_model_dir", "write_model_dir"]
