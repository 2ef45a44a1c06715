"""Calibration of the latency predictor on the host: sample models, time them, fit, check.

Every model is timed by the ``latency`` estimator itself (one thread, warm-up, median), twice
per round: once bare for the whole-model median, once with forward hooks on its layers that
record each layer's time on its real input inside the running model. Rounds go round-robin over
the models, and each figure is the median over rounds, so a burst of load from other processes
on this machine hits one round of many models rather than every round of one model.

The report scores the fitted predictor on held-out models drawn with another seed, never used
for fitting but timed in the same rounds: the share within +-10 % of measurement, the median
and 90th percentile absolute percentage error, and how many held-out architectures the
calibration never saw.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UserError
from ..space.architecture import Architecture
from ..space.model import SearchSpace
from .predictor import TARGETS, Sample, errors, fit, predictor_path

if TYPE_CHECKING:
    from ..preprocess import Shape

HOLDOUT_SEED_OFFSET = 1_000_003  # held-out models come from an unrelated random stream

# Used when no experiment spec names spaces: the template's kinds of network at its input size
# ([6, 100] windows, 4 classes), widened so that every built-in op is calibrated, with the
# adapters these networks need (to_vector, to_steps, last_step).
BUILTIN_SPACES = {
    "conv1d": """
input: [6, 100]
output: 4
sequence:
  - {block: features, op_candidates: conv-block, type_repeat: {type: vary_all, depth: [1, 2, 3]}}
  - {block: pool, op_candidates: [global_avgpool, flatten, identity]}
  - {block: head, op_candidates: linear}
default_op_params:
  conv1d: {kernel_size: [3, 5], out_channels: [4, 8, 16], activation: [identity, relu]}
  dwsep_conv1d: {kernel_size: [3, 5], out_channels: [8, 16], padding: same}
composites:
  conv-block:
    sequence:
      - {block: conv, op_candidates: [conv1d, dwsep_conv1d]}
      - {block: pool, op_candidates: [maxpool, avgpool, identity]}
""",
    "conv2d": """
input: [1, 6, 100]
output: 4
sequence:
  - {block: features, op_candidates: conv2d-block, type_repeat: {type: vary_all, depth: [1, 2]}}
  - {block: pool, op_candidates: global_avgpool}
  - {block: head, op_candidates: linear}
default_op_params:
  conv2d: {out_channels: [8, 16], kernel_size: [3, 5], padding: same}
  dwsep_conv2d: {out_channels: [8, 16], kernel_size: 3, padding: same}
  activation: {op: [relu, relu6, hardswish]}
composites:
  conv2d-block:
    sequence:
      - {block: conv, op_candidates: [conv2d, dwsep_conv2d]}
      - {block: norm, op_candidates: [batchnorm, identity]}
      - {block: act, op_candidates: activation}
      - {block: pool, op_candidates: maxpool}
""",
    "mlp": """
input: [6, 100]
output: 4
sequence:
  - {block: flatten, op_candidates: flatten}
  - block: hidden
    op_candidates: linear
    linear: {width: [8, 16, 32, 64], activation: [relu, gelu, tanh]}
    type_repeat: {type: vary_all, depth: [1, 2, 3]}
  - {block: norm, op_candidates: [layernorm, batchnorm, dropout, identity]}
  - {block: head, op_candidates: linear}
""",
    "recurrent": """
input: [6, 100]
output: 4
sequence:
  - block: front
    op_candidates: [conv1d, identity]
    conv1d: {out_channels: 8, kernel_size: 5, stride: 2, activation: relu}
  - block: recurrent
    op_candidates: [lstm, gru]
    lstm: {hidden_size: [16, 32], num_layers: [1, 2]}
    gru: {hidden_size: [16, 32], num_layers: [1, 2]}
  - {block: head, op_candidates: linear}
""",
}


def check_target(target: str) -> None:
    if target not in TARGETS:
        raise UserError(f"calibration target '{target}' is not supported yet; only 'host' is",
                        hint="board targets come with the hardware-in-the-loop issue")


def builtin_spaces() -> dict[str, SearchSpace]:
    from ..space import check_file

    spaces = {}
    for name, text in BUILTIN_SPACES.items():
        space, diagnostics = check_file(f"<builtin {name}>", text=text)
        if space is None:
            raise UserError(diagnostics)
        spaces[name] = space
    return spaces


def host_info() -> dict[str, Any]:
    """What the numbers belong to: CPU model, cores, threads used for timing, torch version."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "threads": 1, "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform()}


def draw_models(spaces: dict[str, SearchSpace], n_models: int, seed: int,
                data: Shape | None = None) -> list[tuple[str, Architecture]]:
    """About ``n_models`` feasible architectures spread evenly over the spaces, drawn the way
    ``explorer sample`` draws (seeded random sampler, each one built)."""
    from ..sampling import draw

    per_space = max(1, -(-n_models // max(1, len(spaces))))
    models = []
    for name, space in spaces.items():
        records = draw(space, 3 * per_space, seed, data if space.preprocessing else None)
        ok = [r for r in records if r["status"] == "ok"][:per_space]
        models += [(name, Architecture.from_json(r["architecture"])) for r in ok]
    return models[:n_models]


@dataclass
class Timer:
    """Rounds of the latency estimator's own timing over many models (medians over rounds)."""

    warmup: int = 5
    repeats: int = 30
    rounds: int = 5
    seconds: list[float] = field(default_factory=lambda: [0.0, 0.0], init=False)  # fit models, held-out ones

    def measure(self, fit: list[Architecture], holdout: list[Architecture] = ()) -> tuple[list[Sample], list[float]]:
        """Per-layer and whole-model medians of the ``fit`` models, whole-model medians of the
        ``holdout`` ones, all in the same rounds so both sets see the same machine load."""
        from ..build import build
        from .estimator import EstimateContext
        from .latency import LatencyEstimator

        estimator = LatencyEstimator(self.warmup, self.repeats)
        contexts = [EstimateContext(a, model=build(a)) for a in (*fit, *holdout)]
        whole: list[list[float]] = [[] for _ in contexts]
        per_layer: list[list[list[float]]] = [[[] for _ in a.layers] for a in fit]
        self.seconds = [0.0, 0.0]
        for _ in range(self.rounds):
            for i, context in enumerate(contexts):
                started = time.perf_counter()
                whole[i].append(estimator.estimate(context)["latency_median"])
                if i < len(fit):
                    for j, ms in enumerate(self._layers(estimator, context)):
                        per_layer[i][j].append(ms)
                self.seconds[i >= len(fit)] += time.perf_counter() - started
        medians = [statistics.median(w) for w in whole]
        samples = [Sample(a, ms, [statistics.median(t) for t in layers])
                   for a, ms, layers in zip(fit, medians, per_layer)]
        return samples, medians[len(fit):]

    def _layers(self, estimator, context) -> list[float]:
        """Median ms of each layer in the running model: a pre- and a post-forward hook on every
        top-level module (one per layer) bracket its call; warm-up calls are dropped."""
        model = context.model
        starts: list[int] = [0] * len(model)
        spans: list[list[int]] = [[] for _ in model]
        handles = []

        def opened(j):
            def hook(module, args):
                starts[j] = time.perf_counter_ns()
            return hook

        def closed(j):
            def hook(module, args, output):
                spans[j].append(time.perf_counter_ns() - starts[j])
            return hook

        for j, module in enumerate(model):
            handles += [module.register_forward_pre_hook(opened(j)), module.register_forward_hook(closed(j))]
        try:
            estimator.estimate(context)
        finally:
            for handle in handles:
                handle.remove()
        return [statistics.median(s[self.warmup:]) / 1e6 for s in spans]


def calibrate(target: str = "host", spaces: dict[str, SearchSpace] | None = None, n_models: int = 400,
              seed: int = 0, out: Path | None = None, holdout: int = 100, timer: Timer | None = None,
              data: Shape | None = None) -> dict[str, Any]:
    """Fit a predictor for ``target`` on ``n_models`` sampled models, write it to ``out`` and
    return the report, which scores it on ``holdout`` models drawn with another seed."""
    check_target(target)
    spaces = spaces or builtin_spaces()
    timer = timer or Timer()
    started = time.perf_counter()
    drawn = draw_models(spaces, n_models, seed, data)
    if not drawn:
        raise UserError("no feasible model could be sampled from the calibration spaces",
                        hint="check them with `explorer sample`")
    drawing = time.perf_counter() - started
    held = draw_models(spaces, holdout, seed + HOLDOUT_SEED_OFFSET, data) if holdout > 0 else []
    samples, held_ms = timer.measure([a for _, a in drawn], [a for _, a in held])
    started = time.perf_counter()
    info = host_info()
    predictor = fit(samples, info, {"spaces": sorted(spaces), "models": len(samples), "seed": seed,
                                    "warmup": timer.warmup, "repeats": timer.repeats, "rounds": timer.rounds})
    report: dict[str, Any] = {
        "target": target, "models": len(samples), "layers": sum(len(s.architecture.layers) for s in samples),
        "kinds": len(predictor.ops), "overhead_ms": predictor.overhead_ms,
        # sampling, timing and fitting the calibration models; the held-out ones are not counted
        "seconds": drawing + timer.seconds[0] + time.perf_counter() - started,
        "fit": errors(predictor, [(s.architecture, s.ms) for s in samples])}
    if held:
        seen = {s.architecture.hash for s in samples}
        pairs = [(a, ms) for (_, a), ms in zip(held, held_ms)]
        by_space: dict[str, list] = {}
        for (name, _), pair in zip(held, pairs):
            by_space.setdefault(name, []).append(pair)
        report["holdout"] = {**errors(predictor, pairs), "seed": seed + HOLDOUT_SEED_OFFSET,
                             "new": errors(predictor, [(a, ms) for a, ms in pairs if a.hash not in seen]),
                             "spaces": {name: errors(predictor, p) for name, p in by_space.items()},
                             "fallback_models": sum(bool(predictor.predict(a).unseen) for a, _ in pairs)}
    predictor.calibration["report"] = dict(report)
    if out is not None:
        report["out"] = str(predictor.save(out))
    report["host"] = info
    return report


def _data_shape(spaces: dict[str, SearchSpace], spec: Path | None) -> Shape | None:
    """The dataset's shape when some space pre-processes (its input follows from the data)."""
    if all(s.preprocessing is None for s in spaces.values()):
        return None
    from ..data import load_dataset
    from ..search.objective import data_shape
    from ..spec import load_spec

    return data_shape(load_dataset(load_spec(spec)[0].dataset))


def run_calibrate(target: str = "host", spaces: list[Path] | None = None, n_models: int = 400, seed: int = 0,
                  out: Path | None = None, spec: Path | None = None, holdout: int = 100) -> dict[str, Any]:
    """``explorer calibrate``: fit on ``n_models`` models of ``spaces`` (default: the experiment
    spec's, else the built-ins), write ``out`` (default: results/latency-predictor-<target>.json
    under the experiment root) and return the report. Loads the spec's plugins first."""
    from ..plugins import find_spec, load_plugins
    from ..space import load_space
    from ..spec import load_spec

    check_target(target)
    spec = spec or find_spec()
    load_plugins(spec)
    named = load_spec(spec)[0].space_paths(spec.parent) if spec is not None and not spaces else []
    if spaces:
        chosen = {str(p): load_space(p) for p in spaces}
    elif named:
        chosen = {str(path.relative_to(spec.parent)): load_space(path) for path in named}  # type: ignore[union-attr]
    else:
        chosen = builtin_spaces()
    out = out or predictor_path(target, spec.parent if spec else Path.cwd())
    return calibrate(target, chosen, n_models, seed, out, holdout, data=_data_shape(chosen, spec))
