"""The dataset registry: loaders by name, with what they declare about themselves.

A loader is a function ``(DatasetConfig) -> Dataset`` registered with
``@register_dataset("name", task=..., description=...)``; user plugins named in the spec add
theirs the same way. What an entry declares (task, input shape, class count, sample rate) is
enough for ``explorer datasets`` to list it without loading any data.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from ..plugins import find_spec
from ..space.validate import did_you_mean
from .config import DatasetConfig, Task
from .dataset import Dataset

Loader = Callable[[DatasetConfig], Dataset]


@dataclass(frozen=True)
class DatasetEntry:
    """A registered loader and its declared metadata (None where only the data can tell)."""

    name: str
    loader: Loader
    task: Task | None  # None: inferred from the user's file
    description: str
    input_shape: tuple[int, ...] | None = None  # for a stream: (C,)
    classes: int | None = None
    sample_rate: float | None = None
    stream: bool = False


@dataclass
class DatasetRegistry:
    """Datasets by name. ``DEFAULT_DATASETS`` holds the built-ins; tests may use ``.copy()``."""

    entries: dict[str, DatasetEntry] = field(default_factory=dict)

    def register(self, name: str, *, task: Task | None, description: str, input_shape: tuple[int, ...] | None = None,
                 classes: int | None = None, sample_rate: float | None = None, stream: bool = False):
        """Function decorator: ``@registry.register("gunpoint", task="classification", description=...)``."""

        def decorate(loader: Loader) -> Loader:
            if name in self.entries:
                raise ValueError(f"dataset {name!r} is already registered")
            self.entries[name] = DatasetEntry(name, loader, task, description, input_shape, classes, sample_rate,
                                              stream)
            return loader

        return decorate

    def __getitem__(self, name: str) -> DatasetEntry:
        return self.entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def names(self) -> list[str]:
        return sorted(self.entries)

    def copy(self) -> DatasetRegistry:
        return DatasetRegistry(dict(self.entries))

    def load(self, config: DatasetConfig) -> Dataset:
        if config.name not in self.entries:
            hint = did_you_mean(config.name, self.names()) or "`explorer datasets` lists them"
            raise config.error(f"unknown dataset '{config.name}'", hint)
        entry = self.entries[config.name]
        dataset = entry.loader(config)
        return dataset if dataset.description else replace(dataset, description=entry.description)


DEFAULT_DATASETS = DatasetRegistry()


def register_dataset(name: str, *, task: Task | None, description: str, registry: DatasetRegistry | None = None,
                     **declared: Any):
    """Register a loader under ``name`` in ``registry`` (default: the built-ins), like ``@register_layer``."""
    return (registry or DEFAULT_DATASETS).register(name, task=task, description=description, **declared)


def load_dataset(config: DatasetConfig | str | dict, registry: DatasetRegistry | None = None,
                 root: Path | None = None) -> Dataset:
    """Load a dataset; relative paths start at ``root`` (default: the folder of the nearest params.yaml)."""
    config = DatasetConfig.parse(config, root=root)
    if config.root is None:
        spec = find_spec()
        config = config.bind(root=spec.parent if spec else Path.cwd())
    return (registry or DEFAULT_DATASETS).load(config)
