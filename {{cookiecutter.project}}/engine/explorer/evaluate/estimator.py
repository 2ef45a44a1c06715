"""The estimator interface: what a cost/quality metric declares, what it is given, how it is found.

An ``Estimator`` turns an ``EstimateContext`` (the sampled ``Architecture``, optionally its built
model and the pre-processing pipeline's cost) into named numbers. Estimators register by name
in an ``EstimatorRegistry`` (``@register_estimator("name")``, like ``@register_layer``), and
``estimate_all`` runs them cheapest first, so a search can stop before the expensive ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ..ops.registry import Registry
from ..preprocess.pipeline import PipelineCost
from ..space.architecture import Architecture

Direction = Literal["minimize", "maximize"]
Cost = Literal["static", "measured", "training", "hardware"]

# Cheapest first. The issue names three classes; ``measured`` sits between static and training:
# host latency runs the model (needs torch, takes seconds, varies between runs and machines), so
# calling it ``static`` would break that class's promise (deterministic, from the Architecture
# alone, no torch), while ``hardware`` means the target board, which it never touches.
COSTS: tuple[Cost, ...] = ("static", "measured", "training", "hardware")
DIRECTIONS: tuple[Direction, ...] = ("minimize", "maximize")


@dataclass
class EstimateContext:
    """Everything an estimator may read. Static estimators use ``architecture`` (and ``pipeline``)
    only; ``model`` is optional and built on first use by estimators that run it."""

    architecture: Architecture
    model: Any = None  # torch.nn.Module; typed Any so this module never imports torch
    pipeline: PipelineCost | None = None
    registry: Registry | None = None  # op registry to build custom ops with (default: built-ins)

    def built_model(self) -> Any:
        """The model, built from the architecture once when none was given."""
        if self.model is None:
            from ..build import build

            self.model = build(self.architecture, self.registry)
        return self.model


class Estimator(ABC):
    """One metric family. Subclasses set the class attributes and implement ``estimate``."""

    name: ClassVar[str] = ""
    unit: ClassVar[str] = ""  # unit of the returned values, for people and reports
    direction: ClassVar[Direction] = "minimize"
    cost: ClassVar[Cost] = "static"
    # Non-empty: a search runs this estimator only when a criterion names one of these values
    # (for estimators that need setup first, e.g. the calibration file of predicted_latency).
    requested_by: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def estimate(self, context: EstimateContext) -> dict[str, float]:
        """Named values for ``context``; keys are stable so studies can compare trials."""


@dataclass
class EstimatorRegistry:
    """Estimators by name. ``DEFAULT_ESTIMATORS`` holds the built-ins; use ``copy()`` to add
    estimators for one experiment without mutating global state."""

    estimators: dict[str, Estimator] = field(default_factory=dict)

    def register(self, name: str):
        """Class decorator: ``@registry.register("energy")`` registers an instance of the class."""

        def decorate(cls: type[Estimator]) -> type[Estimator]:
            if name in self.estimators:
                raise ValueError(f"estimator {name!r} is already registered")
            if cls.cost not in COSTS:
                raise ValueError(f"estimator {name!r}: cost must be one of {', '.join(COSTS)}, got {cls.cost!r}")
            if cls.direction not in DIRECTIONS:
                raise ValueError(f"estimator {name!r}: direction must be minimize or maximize, got {cls.direction!r}")
            cls.name = name
            self.estimators[name] = cls()
            return cls

        return decorate

    def __getitem__(self, name: str) -> Estimator:
        if name not in self.estimators:
            raise KeyError(f"unknown estimator {name!r}; known: {', '.join(self.estimators)}")
        return self.estimators[name]

    def __contains__(self, name: object) -> bool:
        return name in self.estimators

    def copy(self) -> EstimatorRegistry:
        return EstimatorRegistry(dict(self.estimators))

    def by_cost(self, names: list[str] | None = None) -> list[Estimator]:
        """The requested estimators (all when ``names`` is None), cheapest cost class first; the
        given (or registration) order breaks ties."""
        chosen = [self[n] for n in (self.estimators if names is None else names)]
        return sorted(chosen, key=lambda e: COSTS.index(e.cost))


DEFAULT_ESTIMATORS = EstimatorRegistry()


def register_estimator(name: str, registry: EstimatorRegistry | None = None):
    """Register an ``Estimator`` subclass under ``name`` (default registry unless one is given)."""
    return (registry or DEFAULT_ESTIMATORS).register(name)


def estimate_all(context: EstimateContext, names: list[str] | None = None,
                 registry: EstimatorRegistry | None = None) -> dict[str, dict[str, float]]:
    """Run the requested estimators cheapest first; results by estimator name, in run order."""
    return {e.name: e.estimate(context) for e in (registry or DEFAULT_ESTIMATORS).by_cost(names)}
