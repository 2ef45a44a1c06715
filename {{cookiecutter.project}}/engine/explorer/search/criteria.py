"""Optimisation criteria (Section V): objectives, soft constraints (a penalty beyond a limit)
and hard constraints (a limit that must hold), turned into Optuna values and constraints.

Multi mode returns one value per objective (a Pareto front); single mode a weighted sum of
objectives divided by their ``scale`` plus soft penalties, or a user aggregation function.
Constraints follow Optuna's ``constraints_func`` convention: a value <= 0 is satisfied.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..errors import UserError
from ..spec import Criterion, Spec

MAXIMIZED = {"accuracy", "f1"}


def direction(c: Criterion) -> str:
    return c.direction or ("maximize" if c.metric in MAXIMIZED else "minimize")


def violation(c: Criterion, value: float) -> float:
    """How far ``value`` lies beyond the criterion's limit (<= 0: within), relative to the limit."""
    assert c.limit is not None
    over = value - c.limit if direction(c) == "minimize" else c.limit - value
    return over / (abs(c.limit) or 1.0)


@dataclass
class Criteria:
    spec: Spec

    @property
    def objectives(self) -> list[Criterion]:
        return [c for c in self.spec.criteria if c.kind == "objective"]

    @property
    def hard(self) -> list[Criterion]:
        return [c for c in self.spec.criteria if c.kind == "hard"]

    @property
    def soft(self) -> list[Criterion]:
        return [c for c in self.spec.criteria if c.kind == "soft"]

    @property
    def multi(self) -> bool:
        return self.spec.mode == "multi"

    def directions(self) -> list[str]:
        return [direction(c) for c in self.objectives] if self.multi else ["minimize"]

    def metrics(self) -> set[str]:
        return {c.metric for c in self.spec.criteria}

    def first_violation(self, values: dict[str, float]) -> Criterion | None:
        """The first hard constraint whose metric is known and violated (staged evaluation)."""
        return next((c for c in self.hard if c.metric in values and violation(c, values[c.metric]) > 0), None)

    def constraints(self, values: dict[str, float]) -> list[float]:
        """Optuna constraint values: hard constraints, and in multi mode the soft ones too."""
        chosen = self.hard + (self.soft if self.multi else [])
        return [violation(c, values[c.metric]) for c in chosen]

    def aggregation(self) -> Callable[[dict[str, float], list[Criterion]], float] | None:
        """The user's scalarisation function (single mode), loaded from its dotted path."""
        path = self.spec.aggregation
        if not path:
            return None
        module, _, name = path.rpartition(".")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise UserError(f"cannot load aggregation '{path}': {exc}", hint="a dotted path module.function") from None

    def values(self, values: dict[str, float]) -> float | list[float]:
        """What the trial returns to Optuna."""
        if self.multi:
            return [values[c.metric] for c in self.objectives]
        custom = self.aggregation()
        if custom is not None:
            return float(custom(values, self.spec.criteria))
        total = 0.0
        for c in self.objectives:
            sign = 1.0 if direction(c) == "minimize" else -1.0
            total += c.weight * sign * values[c.metric]
        for c in self.soft:
            total += c.weight * max(0.0, violation(c, values[c.metric]))
        return total


def pareto_mask(points: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Rows of ``points`` not dominated by any other row (ties are all kept)."""
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    signs = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    losses = points * signs
    keep = np.ones(len(points), dtype=bool)
    for i in range(len(points)):
        dominated = np.all(losses <= losses[i], axis=1) & np.any(losses < losses[i], axis=1)
        keep[i] = not dominated.any()
    return keep


def reference_point(points: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Just beyond the worst value of each objective (works for negative values too)."""
    worst = np.array([points[:, i].max() if d == "minimize" else points[:, i].min() for i, d in enumerate(directions)])
    margin = 0.1 * np.abs(worst) + 1e-9
    return np.where(np.array(directions) == "minimize", worst + margin, worst - margin)


def hypervolume(points: np.ndarray, directions: Sequence[str], reference: np.ndarray) -> float:
    """Hypervolume of the (minimisation-oriented) points against ``reference`` (Optuna's WFG)."""
    from optuna._hypervolume import compute_hypervolume

    if len(points) == 0:
        return 0.0
    signs = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    losses = points * signs
    ref = reference * signs
    inside = np.all(losses < ref, axis=1)
    if not inside.any():
        return 0.0
    return float(compute_hypervolume(losses[inside], ref))
