"""The in-memory dataset every loader returns: three splits plus what a model needs to know.

Per-sample layouts follow the ops' tensor kinds: ``[N, F]`` vectors, ``[N, C, L]`` series,
``[N, C, H, W]`` images. A *stream* is one continuous recording per split, ``x`` of shape
``[C, T]`` with one label per time step; pre-processing windows it into samples later.
Arrays are made read-only, so the fingerprint always describes what training sees.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .config import Task

SPLITS = ("train", "val", "test")


@dataclass(frozen=True, eq=False)
class Split:
    """Inputs ``x`` (float32) and targets ``y``: class indices, regression targets, or ``x`` itself."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if self.x.dtype != np.float32:
            raise ValueError(f"x must be float32, got {self.x.dtype}")
        for array in (self.x, self.y):
            array.setflags(write=False)


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    task: Task
    train: Split
    val: Split
    test: Split
    classes: tuple[str, ...] = ()
    sample_rate: float | None = None  # Hz, when the samples are time series with a known rate
    stream: bool = False
    description: str = ""

    @property
    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def sizes(self) -> dict[str, int]:
        """Samples per split; time steps for a stream."""
        return {name: s.x.shape[-1] if self.stream else len(s.x) for name, s in self.splits.items()}

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The per-sample shape; for a stream only ``(C,)``: windowing decides the length."""
        if self.stream:
            return self.train.x.shape[:1]
        return self.train.x.shape[1:]

    def class_counts(self) -> dict[str, dict[str, int]] | None:
        """Samples (time steps for a stream) per class and split; None unless classification."""
        if self.task != "classification":
            return None
        return {name: dict(zip(self.classes, np.bincount(s.y, minlength=len(self.classes)).tolist()))
                for name, s in self.splits.items()}

    def metadata(self) -> dict:
        """Everything but the arrays and the prose: what the fingerprint covers besides the data."""
        return {"name": self.name, "task": self.task, "classes": list(self.classes),
                "sample_rate": self.sample_rate, "stream": self.stream}

    @cached_property
    def fingerprint(self) -> str:
        """sha256 over the metadata and every array (dtype, shape, bytes): equal data, equal hash."""
        digest = hashlib.sha256(json.dumps(self.metadata(), sort_keys=True).encode())
        for name, split in self.splits.items():
            for array in (split.x, split.y):
                digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
                digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()
