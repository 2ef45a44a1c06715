"""One trial, evaluated in stages (Section V): sample, static estimators, hard constraints,
then training, then measured estimators and the objectives. A candidate that fails ends
its own trial with its state and reason recorded; the study goes on."""

from __future__ import annotations

import math
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from ..evaluate import DEFAULT_ESTIMATORS, EstimateContext, EstimatorRegistry, estimate_all
from ..errors import UserError
from ..ops import DEFAULT_REGISTRY, Registry
from ..preprocess import Pipeline, Shape, apply_to_dataset
from ..space import SearchSpace, sample
from ..spec import Spec
from ..train import TrainingDiverged, train
from .criteria import Criteria, direction

REASON = "reason"
INTERRUPTED = "interrupted by the user"


def data_shape(dataset: Any) -> Shape:
    """The shape pre-processing starts from: channels and length of a sample or of the stream."""
    x = dataset.train.x
    if dataset.stream:
        return Shape(x.shape[0], x.shape[1], True)
    if x.ndim != 3:
        raise ValueError(f"pre-processing needs [C, L] series or a stream, dataset {dataset.name} has {x.shape[1:]}")
    return Shape(x.shape[1], x.shape[2], False)


def flatten(results: dict[str, dict[str, float]]) -> dict[str, float]:
    return {k: float(v) for values in results.values() for k, v in values.items()}


class Clock:
    """Seconds per stage, kept in the trial's ``stages`` attribute as they finish."""

    def __init__(self, trial: optuna.Trial):
        self.trial, self.last, self.stages = trial, time.perf_counter(), {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.stages[f"time_{name}"] = round(now - self.last, 4)
        self.last = now
        self.trial.set_user_attr("stages", self.stages)


@dataclass
class Trained:
    """A candidate after the stages this machine runs: what a board measures next."""

    architecture: Any
    model: Any
    data: Any
    states: list[dict]
    values: dict[str, float]

    @property
    def preprocessing(self) -> dict:
        return {"steps": self.architecture.preprocessing, "state": self.states}


class Rejected(optuna.TrialPruned):
    """A candidate that ends early: infeasible shapes or a violated hard constraint."""


@dataclass
class Objective:
    space: SearchSpace
    spec: Spec
    dataset: Any
    checkpoints: Path
    registry: Registry = field(default_factory=lambda: DEFAULT_REGISTRY)
    estimators: EstimatorRegistry = field(default_factory=lambda: DEFAULT_ESTIMATORS)
    root: Path = field(default_factory=Path.cwd)  # the spec's folder: hardware inventory and cache paths

    def __post_init__(self) -> None:
        self.criteria = Criteria(self.spec)
        self.shape = data_shape(self.dataset) if self.space.preprocessing else None
        wanted = self.criteria.metrics()
        claimed = {v for e in self.estimators.by_cost() for v in e.requested_by}  # latency_predicted is not latency
        self.static = [e.name for e in self.estimators.by_cost() if e.cost == "static"
                       and (not e.requested_by or wanted & set(e.requested_by))]
        self.measured = [e.name for e in self.estimators.by_cost() if e.cost == "measured"
                         and any(m.startswith(e.name) and m not in claimed for m in wanted)]
        self.hardware = None
        if self.spec.hardware is not None:
            from ..hil import HardwareLoop

            self.hardware = HardwareLoop(self.spec.hardware, self.root)
        self.reflection = None
        if self.spec.search.target is not None:
            from ..targets import get_target

            self.reflection = get_target(self.spec.search.target).reflection

    def known_metrics(self, tries: int = 50) -> set[str] | None:
        """The metrics a trial will produce, from one sampled candidate (None: none was feasible)."""
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        for _ in range(tries):
            candidate = sample(self.space, study.ask(), self.registry, data=self.shape)
            if candidate.status == "ok":
                try:
                    static = self.static_values(candidate.architecture)[1]
                except UserError:
                    raise  # e.g. a predictor that was never calibrated: the user's to fix before any trial
                except Exception:  # a candidate that breaks an estimator fails its own trial later
                    continue
                trained = ("accuracy", "f1") if self.dataset.task == "classification" else ("mse", "mae")
                measured = ("latency_median", "latency_p90") if "latency" in self.estimators else ()
                # hw_* names depend on the board's bench output: any is accepted, a missing one fails its trial
                hardware = {m for m in self.criteria.metrics() if m.startswith("hw_")} if self.hardware else set()
                return {*static, "loss", "best_epoch", *trained, *measured, *hardware}
        return None

    def static_values(self, arch: Any) -> tuple[EstimateContext, dict[str, float]]:
        """The estimate context of ``arch`` (pipeline cost included) and its static estimator values."""
        cost = Pipeline.from_json(arch.preprocessing).cost(self.shape) if self.shape else None
        context = EstimateContext(arch, pipeline=cost, registry=self.registry)
        return context, flatten(estimate_all(context, self.static, self.estimators))

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        try:
            return self.evaluate(trial)
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            trial.set_user_attr(REASON, INTERRUPTED)  # not the candidate's fault: a rerun replaces it
            raise
        except Exception as exc:  # the candidate's fault: this trial fails with its reason, the study goes on
            if REASON not in trial.user_attrs:
                trial.set_user_attr(REASON, f"{type(exc).__name__}: {exc}")
            raise

    def evaluate(self, trial: optuna.Trial) -> float | list[float]:
        clock = Clock(trial)
        trained = self.prepare(trial, clock)
        if self.hardware is not None:
            self.record(trial, trained.values)
            trained.values.update(self.measure_on_board(trained))
            clock.lap("hardware")
        self.save(trial.number, trained.model, trained.states)
        return self.finish(trial, trained.values)

    def prepare(self, trial: optuna.Trial, clock: Clock) -> Trained:
        """Every stage this machine runs: sample, static estimates, hard constraints, training,
        measured estimators. A board measures the result next (in process, or via ``explorer hil``)."""
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        candidate = sample(self.space, trial, self.registry, data=self.shape)
        clock.lap("sample")
        if candidate.status != "ok":
            self.reject(trial, f"infeasible: {candidate.reason}")
        arch = candidate.architecture
        problems = self.reflection.problems(arch) if self.reflection else []
        if problems:
            self.reject(trial, f"infeasible: target {self.spec.search.target} cannot run it: {problems[0]}")
        trial.set_user_attr("architecture", arch.to_json())
        pipeline = Pipeline.from_json(arch.preprocessing)
        context, values = self.static_values(arch)
        clock.lap("static")
        self.record(trial, values)
        violated = self.criteria.first_violation(values)
        if violated is not None:
            self.reject(trial, f"hard constraint {violated.metric} {'>=' if direction(violated) == 'maximize' else '<='} "
                               f"{violated.limit:g} violated: {values[violated.metric]:g}", values)
        data, states = apply_to_dataset(pipeline, self.dataset) if pipeline.steps else (self.dataset, [])
        clock.lap("preprocess")
        import torch

        seed = self.spec.search.seed + trial.number
        torch.manual_seed(seed)  # initial weights per trial, not per process: a trial reproduces anywhere
        model = context.built_model()
        try:
            result = train(model, data, self.spec.train, seed=seed)
        except TrainingDiverged as exc:
            trial.set_user_attr(REASON, f"training diverged: {exc}")
            raise
        values.update(result.val)
        values["best_epoch"] = result.best_epoch
        clock.lap("train")
        if self.measured:
            values.update(flatten(estimate_all(context, self.measured, self.estimators)))
            clock.lap("measure")
        self.record(trial, values)
        return Trained(arch, model.eval(), data, states, values)

    def finish(self, trial: optuna.Trial, values: dict[str, float]) -> float | list[float]:
        """The objective values from every metric; a missing metric or a non-finite objective fails the trial."""
        self.record(trial, values)
        missing = sorted(self.criteria.metrics() - values.keys())
        if missing:
            raise KeyError(f"no estimator produced {', '.join(missing)}")
        trial.set_user_attr("constraints", self.criteria.constraints(values))
        out = self.criteria.values(values)
        if any(not math.isfinite(v) for v in (out if isinstance(out, list) else [out])):
            trial.set_user_attr(REASON, "an objective is not finite")
            raise TrainingDiverged(f"objective values {out}")
        return out

    def measure_on_board(self, trained: Trained) -> dict[str, float]:
        """``hw_*`` values of the trained model on a board (a board fault fails this trial only)."""
        from ..hil import NoMeasurement

        try:
            return self.hardware.measure(trained)
        except NoMeasurement as exc:
            return self.hardware.fallback(trained.values, str(exc))

    def record(self, trial: optuna.Trial, values: dict[str, float]) -> None:
        trial.set_user_attr("metrics", values)

    def reject(self, trial: optuna.Trial, reason: str, values: dict[str, float] | None = None) -> None:
        trial.set_user_attr(REASON, reason)
        if values is not None and all(c.metric in values for c in self.criteria.hard + self.criteria.soft):
            trial.set_user_attr("constraints", self.criteria.constraints(values))
        raise Rejected(reason)

    def save(self, number: int, model: Any, states: list[dict]) -> None:
        import torch

        self.checkpoints.mkdir(parents=True, exist_ok=True)  # results/<space>/checkpoints/<study>/
        torch.save({"state_dict": model.state_dict(), "pipeline_state": states}, self.checkpoints / f"{number}.pt")


def constraints_func(criteria: Criteria):
    """Optuna's constraints_func (None without constraints): values <= 0 are satisfied; a trial
    rejected before its values were known counts as violating every constraint."""
    n = len(criteria.constraints({c.metric: 0.0 for c in criteria.spec.criteria}))
    if n == 0:
        return None
    return lambda trial: trial.user_attrs.get("constraints", [1.0] * n)
