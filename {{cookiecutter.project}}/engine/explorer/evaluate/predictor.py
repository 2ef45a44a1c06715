"""Predicted host latency: a per-layer regression fitted on this machine, read without torch.

In the spirit of nn-Meter: every layer gets a small linear model of its op kind (non-negative
coefficients on a few static features: MACs split dense / element-wise, input and output
elements, parameters, recurrent layers and steps, and how long ago its op last ran), the
model's latency is the sum of its layers plus a per-model overhead. ``calibrate``
measures and fits it; this module holds the features, the fit, the JSON file and the
``predicted_latency`` estimator, so a search can constrain latency before training (it is
``static``: Architecture only, no torch).

Layers are timed in the running model (see ``calibrate``), because a layer in a chain costs
more than the same layer repeated alone: on microsecond-scale ops, an op whose code has not run
for a while (cold instruction cache and branch predictors) is markedly slower. Timed in place,
the per-layer times add up to the whole model's, and the ``reuse`` feature carries that context.

The overhead, calibrated on whole-model medians, is a constant plus a once-per-model term for
each op kind the model contains: some kinds leave the CPU slower for the rest of the inference
(on the reference host, torch's oneDNN path for 5x5 convolutions and the LSTM add ~10 us to the
layers after them), which no per-layer time can attribute.

The file keeps coefficients for each specific kind (``conv2d/image/k5/relu``) and for each bare
op (``conv2d``, all its variants pooled); a layer uses the first it finds, and an op never seen
in calibration falls back to the global model on MACs (flagged in the result).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import UserError
from ..space.architecture import Architecture, Layer
from .estimator import EstimateContext, Estimator, register_estimator
from .tables import MissingFormula, activation_of, recurrent_layers

FORMAT = 1
TARGETS = ("host",)
FEATURES = ("one", "dense_macs", "elementwise_macs", "input_elements", "output_elements", "params",
            "recurrent_layers", "recurrent_steps", "depthwise", "reuse")
GLOBAL_FEATURES = ("one", "dense_macs", "elementwise_macs")  # the model for ops never calibrated
REUSE_CAP = 8  # layers since an op last ran beyond which its code counts as fully cold
CALIBRATE_HINT = "run `explorer calibrate --target host` in the experiment repository"


def predictor_path(target: str = "host", root: Path | None = None) -> Path:
    """Where calibration writes and the estimator looks: ``results/latency-predictor-<target>.json``
    under the experiment root (folder of the nearest params.yaml, else the current directory)."""
    if root is None:
        from ..plugins import find_spec

        spec = find_spec()
        root = spec.parent if spec else Path.cwd()
    return root / "results" / f"latency-predictor-{target}.json"


def reuse(architecture: Architecture, index: int) -> float:
    """Layers run since this layer's op last ran, counting around the loop (a model runs again
    and again, so an op used once last ran one whole model ago), as a fraction of
    ``REUSE_CAP``: 1/8 right after itself, 1 after ``REUSE_CAP`` or more other layers."""
    layers, op = architecture.layers, architecture.layers[index].op
    distance = next(k for k in range(1, len(layers) + 1) if layers[index - k].op == op)
    return min(distance, REUSE_CAP) / REUSE_CAP


def layer_features(layer: Layer, reused: float = 1.0) -> tuple[float, ...]:
    """The layer's values for ``FEATURES``, from the Architecture alone (``reused``: see
    ``reuse``). An op without MACs or parameter formulas (not registered at all) counts 0 for
    them rather than failing."""
    from .macs import MACS, Macs
    from .params import PARAMS, ParamCount

    try:
        macs = MACS[layer](layer)
    except MissingFormula:
        macs = Macs()
    try:
        params = PARAMS[layer](layer).total
    except MissingFormula:
        params = ParamCount().total
    # An LSTM/GRU pays a fixed cost per stacked layer and direction, then a cost per time step.
    stacked = len(recurrent_layers(layer)) if layer.op in ("lstm", "gru") else 0
    steps = layer.input.shape[0] * stacked
    # A depthwise convolution over more than one channel takes torch's grouped path (slow on CPU).
    depthwise = 1.0 if layer.op.startswith("dwsep_") and layer.input.shape[0] > 1 else 0.0
    return (1.0, float(macs.dense), float(macs.elementwise), float(layer.input.numel), float(layer.output.numel),
            float(params), float(stacked), float(steps), depthwise, reused)


def features(architecture: Architecture) -> list[tuple[float, ...]]:
    """``layer_features`` of every layer, in order."""
    return [layer_features(layer, reuse(architecture, i)) for i, layer in enumerate(architecture.layers)]


def op_kinds(layer: Layer) -> tuple[str, str]:
    """(specific kind, op): the op with its input layout, kernel size and fused activation, e.g.
    ``conv2d/image/k5/relu``, whose cost differs by implementation path (a 5x5 'same' convolution
    is several times a 3x3 one); the bare op pools every variant for kinds never calibrated."""
    kind = f"{layer.op}/{layer.input.kind}"
    if isinstance(layer.params.get("kernel_size"), int):
        kind += f"/k{layer.params['kernel_size']}"
    if layer.op != "activation" and activation_of(layer) != "identity":
        kind += f"/{activation_of(layer)}"
    return kind, layer.op


@dataclass
class Prediction:
    ms: float
    unseen: list[str] = field(default_factory=list)  # ops predicted by the global MACs model


@dataclass
class LatencyPredictor:
    """Coefficients (ms per feature unit) per op kind, a global MACs model and the overhead:
    ``overhead_ms`` for every model plus ``once_ms[kind]`` for a model that contains the kind."""

    ops: dict[str, list[float]]
    global_model: list[float]
    overhead_ms: float
    once_ms: dict[str, float] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)

    def layer_ms(self, layer: Layer, x: Sequence[float]) -> tuple[float, bool]:
        """One layer's predicted ms from its features ``x`` and whether it fell back to the
        global model."""
        for kind in op_kinds(layer):
            if kind in self.ops:
                return sum(c * v for c, v in zip(self.ops[kind], x)), False
        picked = [x[FEATURES.index(name)] for name in GLOBAL_FEATURES]
        return sum(c * v for c, v in zip(self.global_model, picked)), True

    def predict(self, architecture: Architecture) -> Prediction:
        total, unseen = self.overhead(architecture), []
        for layer, x in zip(architecture.layers, features(architecture)):
            ms, fallback = self.layer_ms(layer, x)
            total += ms
            if fallback and layer.op not in unseen:
                unseen.append(layer.op)
        return Prediction(total, unseen)

    def overhead(self, architecture: Architecture) -> float:
        kinds = {op_kinds(layer)[0] for layer in architecture.layers}
        return self.overhead_ms + sum(self.once_ms.get(kind, 0.0) for kind in kinds)

    def to_json(self) -> dict:
        return {"format": FORMAT, "features": list(FEATURES), "global_features": list(GLOBAL_FEATURES),
                "overhead_ms": self.overhead_ms, "once_ms": dict(sorted(self.once_ms.items())),
                "ops": dict(sorted(self.ops.items())), "global": self.global_model, "host": self.host,
                "calibration": self.calibration}

    @staticmethod
    def from_json(data: dict, source: str = "predictor") -> LatencyPredictor:
        if data.get("format") != FORMAT or data.get("features") != list(FEATURES) \
                or data.get("global_features") != list(GLOBAL_FEATURES):
            raise UserError(f"{source}: latency predictor format {data.get('format')!r} with other features than "
                            f"this explorer's (format {FORMAT})", hint=CALIBRATE_HINT)
        return LatencyPredictor({k: list(v) for k, v in data["ops"].items()}, list(data["global"]),
                                float(data["overhead_ms"]), {k: float(v) for k, v in data["once_ms"].items()},
                                dict(data.get("host", {})), dict(data.get("calibration", {})))

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return path

    @staticmethod
    def load(path: Path) -> LatencyPredictor:
        if not path.is_file():
            raise UserError(f"no latency predictor at {path}", hint=CALIBRATE_HINT)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: unreadable latency predictor ({exc})", hint=CALIBRATE_HINT) from None
        return LatencyPredictor.from_json(data, str(path))


@dataclass
class Sample:
    """One calibration model: its architecture, whole-model median and per-layer medians (ms)."""

    architecture: Architecture
    ms: float
    layer_ms: list[float]


def _nnls(rows: list[Sequence[float]], targets: list[float], weights: list[float]) -> list[float]:
    """Weighted non-negative least squares; columns are scaled to their largest value first so
    MACs (thousands) and constants (1) are solved on the same footing."""
    import numpy as np
    from scipy.optimize import nnls

    x, y, w = np.asarray(rows, float), np.asarray(targets, float), np.asarray(weights, float)
    scale = np.abs(x).max(axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls((x / scale) * w[:, None], y * w)
    return [float(c) for c in coef / scale]


def fit(samples: list[Sample], host: dict[str, Any] | None = None,
        calibration: dict[str, Any] | None = None) -> LatencyPredictor:
    """Per-kind NNLS on the layers, then the overhead on the whole-model medians.

    Each layer row is weighted by 1 / (its model's ms): what counts is a layer's error relative
    to the model it is part of, so a 1 us identity in a 20 us MLP weighs as much as 10 us of a
    200 us CNN. The overhead (a constant and one term per kind present) is the NNLS fit of what
    the layers leave unexplained, with the same relative weights."""
    if not samples:
        raise ValueError("no calibration samples")
    groups: dict[str, tuple[list, list, list]] = {}
    every: tuple[list, list, list] = ([], [], [])
    for s in samples:
        for layer, x, ms in zip(s.architecture.layers, features(s.architecture), s.layer_ms):
            for kind in (*op_kinds(layer), None):
                rows, ys, ws = groups.setdefault(kind, ([], [], [])) if kind else every
                rows.append(x if kind else [x[FEATURES.index(n)] for n in GLOBAL_FEATURES])
                ys.append(ms)
                ws.append(1.0 / s.ms)
    ops = {kind: _nnls(*g) for kind, g in groups.items()}
    global_model = _nnls(*every)
    predictor = LatencyPredictor(ops, global_model, 0.0, {}, host or {}, calibration or {})
    kinds = sorted(k for k in ops if "/" in k)  # the specific kinds
    present = [{op_kinds(layer)[0] for layer in s.architecture.layers} for s in samples]
    rows = [[1.0] + [float(k in p) for k in kinds] for p in present]
    left = [s.ms - predictor.predict(s.architecture).ms for s in samples]
    overhead = _nnls(rows, left, [1.0 / s.ms for s in samples])
    predictor.overhead_ms = overhead[0]
    predictor.once_ms = {k: c for k, c in zip(kinds, overhead[1:]) if c > 0}
    return predictor


def errors(predictor: LatencyPredictor, samples: list[tuple[Architecture, float]]) -> dict[str, float]:
    """Accuracy on measured models: share within +-10 %, median and 90th percentile APE."""
    ape = sorted(abs(predictor.predict(a).ms - ms) / ms for a, ms in samples)
    if not ape:
        return {"n": 0}
    p90 = ape[min(len(ape) - 1, math.ceil(0.9 * len(ape)) - 1)]
    median = (ape[(len(ape) - 1) // 2] + ape[len(ape) // 2]) / 2
    return {"n": len(ape), "within_10pct": sum(e <= 0.10 for e in ape) / len(ape), "median_ape": median,
            "p90_ape": p90}


@register_estimator("predicted_latency")
class PredictedLatencyEstimator(Estimator):
    """``latency_predicted`` (ms) from the calibrated predictor file, and
    ``latency_predicted_fallback`` = 1 when some op was never calibrated (global MACs model)."""

    unit = "ms"
    cost = "static"
    requested_by = ("latency_predicted", "latency_predicted_fallback")  # needs a calibration file first

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else None
        self._cache: dict[Path, tuple[float, LatencyPredictor]] = {}

    def predictor(self) -> LatencyPredictor:
        """The predictor file, read once per path and again only when it changes."""
        path = (self.path or predictor_path()).resolve()
        mtime = path.stat().st_mtime if path.is_file() else None
        cached = self._cache.get(path)
        if cached is None or cached[0] != mtime:
            self._cache[path] = (mtime, LatencyPredictor.load(path))  # type: ignore[assignment]
        return self._cache[path][1]

    def estimate(self, context: EstimateContext) -> dict[str, float]:
        prediction = self.predictor().predict(context.architecture)
        return {"latency_predicted": prediction.ms, "latency_predicted_fallback": float(bool(prediction.unseen))}
