"""What ``explorer datasets`` and ``explorer prepare`` do, as plain functions the CLI wraps."""

from __future__ import annotations

from pathlib import Path

from ..plugins import find_spec
from .config import DatasetConfig
from .prepare import prepare
from .registry import DEFAULT_DATASETS, DatasetRegistry


def datasets_table(registry: DatasetRegistry | None = None) -> list[dict]:
    """One row per registered dataset from what it declares: nothing is loaded, nothing heavy imported."""
    rows = []
    for entry in (registry or DEFAULT_DATASETS).entries.values():
        shape = "stream" if entry.stream else list(entry.input_shape) if entry.input_shape else "from file"
        rows.append({"name": entry.name, "task": entry.task or "from file", "input_shape": shape,
                     "classes": entry.classes, "sample_rate": entry.sample_rate, "description": entry.description})
    return rows


def run_prepare(config: DatasetConfig | str | dict, root: Path | None = None, out: Path | None = None,
                registry: DatasetRegistry | None = None) -> dict:
    """Prepare the dataset; ``root`` defaults to the folder of the nearest params.yaml. Returns the manifest."""
    if root is None:
        spec = find_spec()
        root = spec.parent if spec else Path.cwd()
    return prepare(config, root, out, registry)
