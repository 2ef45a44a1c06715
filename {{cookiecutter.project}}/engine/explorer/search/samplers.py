"""Optuna samplers by the names the experiment spec uses."""

from __future__ import annotations

from typing import Callable

import optuna

from ..errors import UserError


def make_sampler(name: str, seed: int, constraints: Callable | None, trials: int) -> optuna.samplers.BaseSampler:
    """The sampler ``name``; constraint-aware samplers get ``constraints`` (Optuna's constraints_func)."""
    s = optuna.samplers
    population = max(4, min(50, trials // 4))
    makers = {
        "tpe": lambda: s.TPESampler(seed=seed, multivariate=True, constraints_func=constraints),
        "random": lambda: s.RandomSampler(seed=seed),
        "nsga2": lambda: s.NSGAIISampler(seed=seed, population_size=population, constraints_func=constraints),
        "nsga3": lambda: s.NSGAIIISampler(seed=seed, population_size=population, constraints_func=constraints),
        "gp": lambda: s.GPSampler(seed=seed, constraints_func=constraints),
        "qmc": lambda: s.QMCSampler(seed=seed),
        "grid": lambda: s.BruteForceSampler(seed=seed),  # exhaustive, also for conditional (nested) spaces
    }
    if name not in makers:
        raise UserError(f"unknown sampler '{name}'", hint=f"one of {', '.join(makers)}")
    return makers[name]()
