"""The five searchable pre-processing steps of the paper (Section IV-E).

A step declares its parameters with the same ``Param`` type as the ops (so the DSL validates
and documents them the same way), checks shapes without data (``infer``), fits state on the
training split only (``fit``), transforms (``apply``) and reports its cost. Every filter is
causal (second-order sections run forward only), so a board can run the same arithmetic.

Data flows as a ``Signal``: samples ``x [N, C, L]`` with labels ``y [N]``, or one stream
``x [C, T]`` with a label per step ``y [T]``. A windowing step turns either into samples.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..ops.registry import Infeasible, Param

ENABLED = Param("enabled", "bool", default=True, doc="whether the search uses this step")


@dataclass(frozen=True)
class Shape:
    """What a step sees: channels, length (per sample, or of the whole stream) and the layout."""

    channels: int
    length: int
    stream: bool


@dataclass
class Signal:
    x: np.ndarray
    y: np.ndarray
    stream: bool


@dataclass(frozen=True)
class StepCost:
    """MACs per new raw input step (all channels), and bytes of coefficients and buffers."""

    macs_per_step: float = 0.0
    state_bytes: int = 0


class Step(ABC):
    name: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    windowing: ClassVar[bool] = False
    doc: ClassVar[str] = ""

    def param(self, name: str) -> Param | None:
        return next((p for p in (ENABLED, *self.params) if p.name == name), None)

    def with_defaults(self, params: dict) -> dict:
        full = {p.name: p.default for p in self.params if not p.required}
        full.update({k: v for k, v in params.items() if k != "enabled"})
        return full

    @abstractmethod
    def infer(self, shape: Shape, p: dict) -> Shape:
        """The shape after this step; ``Infeasible`` with a reason when the data cannot take it."""

    def fit(self, signal: Signal, p: dict) -> dict:
        """State learned from the training split (JSON-serialisable)."""
        return {}

    @abstractmethod
    def apply(self, signal: Signal, p: dict, state: dict) -> Signal: ...

    def cost(self, shape: Shape, p: dict) -> StepCost:
        return StepCost()


STEPS: dict[str, Step] = {}


def register_step(name: str):
    """Register a pre-processing step (``@register_step("filter")``)."""

    def decorate(cls: type[Step]) -> type[Step]:
        cls.name = name
        STEPS[name] = cls()
        return cls

    return decorate


# ------------------------------------------------------------------ helpers


def _sos(p: dict) -> np.ndarray:
    from scipy import signal

    wn: Any = 2 * p["cutoff"]  # scipy normalises to Nyquist; our cut-offs are fractions of the sample rate
    if p["type"] == "bandpass":
        wn = [2 * p["cutoff"], 2 * p["cutoff_high"]]
    return signal.butter(p["order"], wn, btype=p["type"], output="sos")


def _sections(p: dict) -> int:
    return math.ceil(p["order"] / 2) * (2 if p["type"] == "bandpass" else 1)


def _mode(labels: np.ndarray) -> Any:
    values, counts = np.unique(labels, return_counts=True)
    return values[np.argmax(counts)]


def _per_channel(x: np.ndarray, stream: bool) -> np.ndarray:
    """Data of each channel as rows: [C, everything else]."""
    return x if stream else np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)


def _broadcast(v: np.ndarray, stream: bool) -> np.ndarray:
    return v[:, None] if stream else v[None, :, None]


# ------------------------------------------------------------------ the five steps


@register_step("filter")
class Filter(Step):
    doc = "causal Butterworth filter (second-order sections); cut-offs are fractions of the sample rate"
    params = (
        Param("type", "choice", default="lowpass", choices=("lowpass", "highpass", "bandpass")),
        Param("order", "int", default=4, ge=1, le=8),
        Param("cutoff", "float", default=0.25, gt=0, lt=0.5, doc="cut-off (lower edge for bandpass) / sample rate"),
        Param("cutoff_high", "float", default=0.45, gt=0, lt=0.5, doc="upper edge for bandpass / sample rate"),
    )

    def infer(self, shape, p):
        if p["type"] == "bandpass" and p["cutoff_high"] <= p["cutoff"]:
            raise Infeasible(f"filter bandpass needs cutoff_high > cutoff, got {p['cutoff_high']} <= {p['cutoff']}")
        return shape

    def apply(self, signal, p, state):
        from scipy.signal import sosfilt

        return Signal(sosfilt(_sos(p), signal.x, axis=-1).astype(np.float32), signal.y, signal.stream)

    def cost(self, shape, p):
        sections = _sections(p)
        return StepCost(macs_per_step=5 * sections * shape.channels, state_bytes=4 * sections * (6 + 2 * shape.channels))


@register_step("downsample")
class Downsample(Step):
    doc = "keep every factor-th step after a causal anti-aliasing filter (scipy.signal.decimate, IIR)"
    params = (Param("factor", "int", default=2, ge=2, le=64),)

    def infer(self, shape, p):
        length = math.ceil(shape.length / p["factor"])
        if length < 2:
            raise Infeasible(f"downsample factor {p['factor']} leaves {length} step of {shape.length}")
        return Shape(shape.channels, length, shape.stream)

    def apply(self, signal, p, state):
        from scipy.signal import decimate

        x = decimate(signal.x, p["factor"], ftype="iir", axis=-1, zero_phase=False).astype(np.float32)
        y = signal.y[:: p["factor"]] if signal.stream else signal.y
        return Signal(x, y, signal.stream)

    def cost(self, shape, p):
        sections = 4  # decimate's default anti-aliasing filter: Chebyshev I of order 8
        return StepCost(macs_per_step=5 * sections * shape.channels, state_bytes=4 * sections * (6 + 2 * shape.channels))


@register_step("window")
class Window(Step):
    doc = "sequential windows of a stream or long series; a stream window is labelled by its majority label"
    windowing = True
    params = (Param("length", "int", ge=2), Param("stride", "int", default=None, ge=1, doc="defaults to length"))

    def infer(self, shape, p):
        if p["length"] > shape.length:
            raise Infeasible(f"window length {p['length']} is longer than the signal ({shape.length} steps)")
        return Shape(shape.channels, p["length"], False)

    def apply(self, signal, p, state):
        n, stride = p["length"], p["stride"] or p["length"]
        length = signal.x.shape[-1]
        starts = range(0, length - n + 1, stride)
        if signal.stream:
            x = np.stack([signal.x[:, s:s + n] for s in starts])
            y = np.array([_mode(signal.y[s:s + n]) for s in starts])
        else:
            x = np.concatenate([signal.x[:, :, s:s + n] for s in starts])
            y = np.concatenate([signal.y for _ in starts])
        return Signal(x.astype(np.float32), y, False)

    def cost(self, shape, p):
        return StepCost(state_bytes=4 * shape.channels * p["length"])


@register_step("event_window")
class EventWindow(Step):
    doc = "windows around detected events: amplitude or energy of the standardised signal above a threshold"
    windowing = True
    params = (
        Param("detector", "choice", default="energy", choices=("amplitude", "energy")),
        Param("threshold", "float", default=3.0, gt=0, doc="in standard deviations of the training signal"),
        Param("refractory", "int", default=0, ge=0, doc="steps after an event in which no new event starts"),
        Param("before", "int", default=16, ge=0, doc="steps kept before the event"),
        Param("after", "int", default=48, ge=1, doc="steps kept from the event on"),
    )

    def infer(self, shape, p):
        n = p["before"] + p["after"]
        if n > shape.length:
            raise Infeasible(f"event window of {n} steps is longer than the signal ({shape.length} steps)")
        return Shape(shape.channels, n, False)

    def fit(self, signal, p):
        rows = _per_channel(signal.x, signal.stream)
        return {"mean": rows.mean(axis=1).tolist(), "std": (rows.std(axis=1) + 1e-8).tolist()}

    def score(self, x: np.ndarray, p: dict, state: dict, stream: bool) -> np.ndarray:
        z = (x - _broadcast(np.array(state["mean"]), stream)) / _broadcast(np.array(state["std"]), stream)
        axis = 0 if stream else 1
        return np.abs(z).max(axis=axis) if p["detector"] == "amplitude" else (z**2).mean(axis=axis)

    def events(self, score: np.ndarray, p: dict) -> list[int]:
        """Rising threshold crossings, at least ``refractory`` steps apart."""
        above = score > (p["threshold"] if p["detector"] == "amplitude" else p["threshold"] ** 2)
        rising = np.flatnonzero(above[1:] & ~above[:-1]) + 1
        if above.size and above[0]:
            rising = np.r_[0, rising]
        found: list[int] = []
        for t in rising:
            if not found or t - found[-1] > p["refractory"]:
                found.append(int(t))
        return found

    def apply(self, signal, p, state):
        before, after = p["before"], p["after"]
        score = self.score(signal.x, p, state, signal.stream)
        if signal.stream:
            length = signal.x.shape[-1]
            starts = [t - before for t in self.events(score, p) if t - before >= 0 and t + after <= length]
            if not starts:
                raise Infeasible("event_window found no event; lower the threshold")
            x = np.stack([signal.x[:, s:s + before + after] for s in starts])
            y = np.array([_mode(signal.y[s:s + before + after]) for s in starts])
            return Signal(x.astype(np.float32), y, False)
        length = signal.x.shape[-1]
        crops = []
        for i in range(signal.x.shape[0]):
            found = self.events(score[i], p)
            t = found[0] if found else int(np.argmax(score[i]))  # no crossing: the strongest step
            start = min(max(t - before, 0), length - before - after)
            crops.append(signal.x[i, :, start:start + before + after])
        return Signal(np.stack(crops).astype(np.float32), signal.y, False)

    def cost(self, shape, p):
        return StepCost(macs_per_step=2 * shape.channels, state_bytes=4 * shape.channels * (p["before"] + p["after"] + 2))


@register_step("normalize")
class Normalize(Step):
    doc = "per-channel z-score, min-max or robust (median / IQR) scaling fitted on the training split only"
    params = (Param("method", "choice", default="zscore", choices=("zscore", "minmax", "robust")),)

    def infer(self, shape, p):
        return shape

    def fit(self, signal, p):
        rows = _per_channel(signal.x, signal.stream).astype(np.float64)
        if p["method"] == "zscore":
            center, scale = rows.mean(axis=1), rows.std(axis=1)
        elif p["method"] == "minmax":
            center, scale = rows.min(axis=1), rows.max(axis=1) - rows.min(axis=1)
        else:
            q1, median, q3 = np.percentile(rows, [25, 50, 75], axis=1)
            center, scale = median, q3 - q1
        scale = np.where(scale > 1e-12, scale, 1.0)
        return {"center": center.tolist(), "scale": scale.tolist()}

    def apply(self, signal, p, state):
        center = _broadcast(np.array(state["center"]), signal.stream)
        scale = _broadcast(np.array(state["scale"]), signal.stream)
        return Signal(((signal.x - center) / scale).astype(np.float32), signal.y, signal.stream)

    def cost(self, shape, p):
        return StepCost(macs_per_step=shape.channels, state_bytes=8 * shape.channels)
