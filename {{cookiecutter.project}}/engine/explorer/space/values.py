"""The three value forms of the DSL after validation: fixed, choice, range.

Each form knows how to ask an Optuna-style trial for a value and how many distinct values
it has (``None`` for a continuous range).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol


class TrialLike(Protocol):
    """What sampling needs from a trial: ``optuna.Trial`` fits, so does a test double."""

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...
    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int: ...
    def suggest_float(self, name: str, low: float, high: float, step: float | None = None,
                      log: bool = False) -> float: ...


@dataclass(frozen=True)
class Fixed:
    value: Any

    def suggest(self, trial: TrialLike, name: str) -> Any:
        return self.value

    def count(self) -> int | None:
        return 1

    def values(self) -> list:
        return [self.value]


@dataclass(frozen=True)
class Choice:
    options: tuple

    def suggest(self, trial: TrialLike, name: str) -> Any:
        if len(set(map(repr, self.options))) == 1:
            return self.options[0]
        return trial.suggest_categorical(name, self.options)

    def count(self) -> int | None:
        return len(set(map(repr, self.options)))

    def values(self) -> list:
        return list(dict.fromkeys(self.options))


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    step: int = 1
    log: bool = False

    def suggest(self, trial: TrialLike, name: str) -> int:
        if self.low == self.high:
            return self.low
        return trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log)

    def count(self) -> int | None:
        return (self.high - self.low) // self.step + 1

    def values(self) -> list:
        return list(range(self.low, self.high + 1, self.step))


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    step: float | None = None
    log: bool = False

    def suggest(self, trial: TrialLike, name: str) -> float:
        if self.low == self.high:
            return self.low
        return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)

    def count(self) -> int | None:
        if self.low == self.high:
            return 1
        if self.step is not None:  # Optuna lowers high to the last step below it
            return math.floor((self.high - self.low) / self.step + 1e-9) + 1
        return None


Value = Fixed | Choice | IntRange | FloatRange


def parse_value(raw: Any) -> Value:
    """The value form of an already validated raw YAML value."""
    if isinstance(raw, list):
        return Choice(tuple(raw))
    if isinstance(raw, dict):
        low, high = raw["low"], raw["high"]
        step, log = raw.get("step"), bool(raw.get("log", False))
        if isinstance(low, int) and isinstance(high, int) and isinstance(step, (int, type(None))):
            return IntRange(low, high, step or 1, log)
        return FloatRange(float(low), float(high), None if step is None else float(step), log)
    return Fixed(raw)
