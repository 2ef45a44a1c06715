"""A sampled architecture: plain data that can be saved, diffed in a pull request and rebuilt
into the same model without Optuna."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ..ops.registry import Tensor

FORMAT = 1


@dataclass(frozen=True)
class Layer:
    """One layer: the op, its complete parameters, and the tensors it maps."""

    op: str
    params: dict[str, Any]
    path: str
    input: Tensor
    output: Tensor
    adapter: bool = False
    last: bool = False  # built with the op's get_last_layer

    def to_json(self) -> dict:
        return {"op": self.op, "params": self.params, "path": self.path, "input": self.input.to_json(),
                "output": self.output.to_json(), "adapter": self.adapter, "last": self.last}

    @staticmethod
    def from_json(data: dict) -> Layer:
        return Layer(data["op"], dict(data["params"]), data["path"], Tensor.from_json(data["input"]),
                     Tensor.from_json(data["output"]), data.get("adapter", False), data.get("last", False))


@dataclass(frozen=True)
class Architecture:
    """Layers in order (adapters included and marked), the network's input and output, the
    space it came from, the sampled choices (Optuna parameter name -> value) and the sampled
    pre-processing pipeline (``Pipeline.to_json()``: steps in order with their parameters)."""

    input: Tensor
    output: Tensor
    layers: tuple[Layer, ...]
    space_hash: str
    choices: dict[str, Any] = field(default_factory=dict)
    preprocessing: list = field(default_factory=list)

    def to_json(self) -> dict:
        return {"format": FORMAT, "space_hash": self.space_hash, "input": self.input.to_json(),
                "output": self.output.to_json(), "layers": [layer.to_json() for layer in self.layers],
                "choices": self.choices, "preprocessing": self.preprocessing}

    @staticmethod
    def from_json(data: dict) -> Architecture:
        if data.get("format") != FORMAT:
            raise ValueError(f"unsupported architecture format {data.get('format')!r}")
        return Architecture(Tensor.from_json(data["input"]), Tensor.from_json(data["output"]),
                            tuple(Layer.from_json(x) for x in data["layers"]), data["space_hash"],
                            dict(data.get("choices", {})), list(data.get("preprocessing", [])))

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)

    @staticmethod
    def loads(text: str) -> Architecture:
        return Architecture.from_json(json.loads(text))

    @property
    def hash(self) -> str:
        """Identity of the network itself (layers and shapes), independent of how it was sampled."""
        body = json.dumps([layer.to_json() for layer in self.layers], sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def summary(self) -> str:
        """One line per non-adapter op, e.g. ``conv1d(16,k5) > maxpool > linear(4)``."""
        return " > ".join(layer.op for layer in self.layers if not layer.adapter)
