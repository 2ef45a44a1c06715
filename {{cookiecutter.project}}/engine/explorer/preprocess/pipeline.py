"""A sampled pre-processing pipeline: plain data (steps in order with their parameters) that
infers the model's input shape, fits on the training split only, transforms every split the
same way, and reports its own cost so "pre-processing + model" is what the search optimises.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ops.registry import Infeasible, Tensor
from .steps import STEPS, Shape, Signal


@dataclass(frozen=True)
class PipelineCost:
    """MACs to produce one model input from the raw signal, and bytes of coefficients and buffers."""

    ops_per_sample: float = 0.0
    buffer_bytes: int = 0


@dataclass(frozen=True)
class Pipeline:
    """Enabled steps in order: ``(("filter", {...}), ("window", {...}))``; empty means no pre-processing."""

    steps: tuple[tuple[str, dict], ...] = ()

    def to_json(self) -> list[dict]:
        return [{"step": name, "params": params} for name, params in self.steps]

    @staticmethod
    def from_json(data: list[dict] | None) -> Pipeline:
        return Pipeline(tuple((d["step"], dict(d["params"])) for d in data or []))

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:16]

    def infer(self, data: Shape) -> Shape:
        """The shape of one model input; ``Infeasible`` when the data cannot take these steps."""
        windowing = [name for name, _ in self.steps if STEPS[name].windowing]
        if len(windowing) > 1:
            raise Infeasible(f"only one windowing step may be enabled, got {' and '.join(windowing)}")
        if data.stream and not windowing:
            raise Infeasible("a stream needs a window or event_window step to become samples")
        shape = data
        for name, params in self.steps:
            shape = STEPS[name].infer(shape, params)
        return shape

    def input_tensor(self, data: Shape) -> Tensor:
        shape = self.infer(data)
        return Tensor("channels", (shape.channels, shape.length))

    def fit(self, signal: Signal) -> tuple[Signal, list[dict]]:
        """Fit each step on the (training) signal as it arrives there; return the result and the states."""
        states = []
        for name, params in self.steps:
            state = STEPS[name].fit(signal, params)
            signal = STEPS[name].apply(signal, params, state)
            states.append(state)
        return signal, states

    def transform(self, signal: Signal, states: list[dict]) -> Signal:
        for (name, params), state in zip(self.steps, states):
            signal = STEPS[name].apply(signal, params, state)
        return signal

    def cost(self, data: Shape) -> PipelineCost:
        """Cost per model input: each step's MACs per step times the steps it processes per input.

        After windowing a step processes the window; before it, the new steps one window needs
        (its stride on a stream, the sample's share on samples) scaled back through downsampling.
        """
        shapes = [data]
        for name, params in self.steps:
            shapes.append(STEPS[name].infer(shapes[-1], params))
        windows = [i for i, (name, _) in enumerate(self.steps) if STEPS[name].windowing]
        per_input = {}
        if windows:
            w = windows[0]
            name, params = self.steps[w]
            if name == "window":
                stride = params["stride"] or params["length"]
                count = (shapes[w].length - params["length"]) // stride + 1
                at_window = stride if data.stream else shapes[w].length / count
            else:
                at_window = params["before"] + params["after"] if data.stream else shapes[w].length
            scale = at_window
            for i in range(w, -1, -1):
                per_input[i] = scale
                if i > 0 and self.steps[i - 1][0] == "downsample":
                    scale *= self.steps[i - 1][1]["factor"]
        macs, buffers = 0.0, 0
        for i, (name, params) in enumerate(self.steps):
            cost = STEPS[name].cost(shapes[i], params)
            macs += cost.macs_per_step * per_input.get(i, shapes[i].length)
            buffers += cost.state_bytes
        return PipelineCost(macs, buffers)


_CACHE: OrderedDict[tuple[str, str], Any] = OrderedDict()
CACHE_SIZE = 16


def apply_to_dataset(pipeline: Pipeline, dataset: Any) -> tuple[Any, list[dict]]:
    """The dataset with every split transformed (fitted on train only) and the fitted states.

    Cached per (dataset fingerprint, pipeline) so trials that sample the same pipeline reuse it.
    """
    key = (dataset.fingerprint, pipeline.key)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        apply_to_dataset.hits += 1  # type: ignore[attr-defined]
        return _CACHE[key]
    apply_to_dataset.misses += 1  # type: ignore[attr-defined]
    train, states = pipeline.fit(Signal(dataset.train.x, dataset.train.y, dataset.stream))
    splits = {"train": train}
    for name in ("val", "test"):
        split = getattr(dataset, name)
        splits[name] = pipeline.transform(Signal(split.x, split.y, dataset.stream), states)
    out = {}
    for name, signal in splits.items():
        y = signal.x if dataset.task == "reconstruction" else signal.y
        out[name] = dataclasses.replace(getattr(dataset, name), x=np.ascontiguousarray(signal.x), y=y)
    result = dataclasses.replace(dataset, stream=False, **out), states
    _CACHE[key] = result
    if len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return result


apply_to_dataset.hits = 0  # type: ignore[attr-defined]
apply_to_dataset.misses = 0  # type: ignore[attr-defined]
