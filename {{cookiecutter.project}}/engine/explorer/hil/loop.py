"""Mode 2: each trial exported, built and measured on a board of the spec's target.

The values come back as metrics ``hw_<name>`` (``flatten_metrics``), usable as objectives and
constraints like any estimator value. A board fault fails the one trial with its reason and
counts against that board (the pool takes it out after ``max_faults``); with no healthy board
left, ``fallback`` names estimator values that stand in, or the trial fails.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..spec import HardwareSettings
from .cache import MeasurementCache, generator_version, measurement_key

PREFIX = "hw_"
COST_KEYS = ("latency_ms_median", "simulated_instructions_median", "simulated_cycles_median")  # what hw_cost is, by board


class NoMeasurement(Exception):
    """No healthy board could measure the trial (and no fallback was allowed)."""


def board_kind(board: Any) -> str:
    """What part of the cache key a board is: its kind and variant (a Pi 4 and a Pi 5 differ)."""
    return "local" if board is None else f"{board.kind}:{board.variant or '-'}"


def bench_on(artifact: Path, board: Any, options: dict[str, Any], wait: float = 600.0) -> dict[str, Any]:
    """``targets.bench`` on one named board under its lease, with its health updated (a fault counts
    toward taking it out of the pool); no board: the target's local runner or simulator."""
    from .. import targets
    from ..targets import BoardError

    if board is None:
        return targets.bench(artifact, None, options)
    from ..boards.pool import BoardPool

    pool = BoardPool([board])
    with pool.board(target=board.target, wait=wait) as leased:
        try:
            metrics = targets.bench(artifact, leased, options)
        except BoardError as exc:
            pool.report_fault(leased, str(exc))
            raise
        pool.report_ok(leased)
        return metrics


def flatten_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """A bench result as flat ``hw_*`` numbers (one nested level: ``hw_agreement_argmax_match``),
    plus ``hw_cost``: the board's cost figure (latency, simulated instructions or cycles)."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update({f"{key}_{k}": float(v) for k, v in value.items()
                         if isinstance(v, (int, float)) and not isinstance(v, bool)})
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[key] = float(value)
    cost = next((flat[k] for k in COST_KEYS if k in flat), None)
    if cost is not None:
        flat["cost"] = cost
    return {PREFIX + k: v for k, v in flat.items()}


class HardwareLoop:
    """Measures candidates for one spec: its target, board pool (or local simulator) and cache."""

    def __init__(self, settings: HardwareSettings, root: Path):
        from ..targets import get_target

        self.settings = settings
        self.target = get_target(settings.target)
        self.cache = MeasurementCache(root / settings.cache)
        self.pool = None
        self.boards_kind = "local"  # part of the cache key: a Pi 4 and a Pi 5 measure differently
        if settings.inventory is not None:
            from ..boards import load_inventory
            from ..boards.pool import BoardPool

            boards = [b for b in load_inventory(root / settings.inventory).boards if b.target == settings.target]
            self.pool = BoardPool(boards, max_faults=settings.max_faults)
            self.boards_kind = ",".join(sorted({board_kind(b) for b in boards if set(settings.labels) <= set(b.labels)}))

    def key_parts(self, trained: Any) -> dict[str, Any]:
        """What a measurement depends on besides the board: the candidate (not its trained weights:
        a repeated candidate reuses the first measurement, hw_accuracy included), the target, the
        export options and how many test inputs run."""
        return {"architecture": trained.architecture.hash, "preprocessing": trained.architecture.preprocessing,
                "target": self.target.name, "options": {**self.settings.options, "samples": self.settings.samples}}

    def cache_key(self, trained: Any, kind: str | None = None) -> str:
        return measurement_key(**self.key_parts(trained), board_kind=kind or self.boards_kind)

    def cached(self, trained: Any) -> dict[str, float] | None:
        found = self.cache.get(self.cache_key(trained))
        return None if found is None else {**found["values"], "hw_cached": 1.0}

    def remember(self, key: str, metrics: dict[str, Any], board: str) -> dict[str, float]:
        """Cache a bench result under the candidate's key; its ``hw_*`` values."""
        values = flatten_metrics(metrics)
        self.cache.put(key, {"values": values, "metrics": metrics, "board": board, "target": self.target.name,
                             "generator": generator_version()})
        return {**values, "hw_cached": 0.0}

    def model_dir(self, trained: Any, folder: Path) -> Path:
        """The trained candidate as an exported model folder with its first test samples."""
        from ..targets.model import write_model_dir

        n = self.settings.samples
        return write_model_dir(folder, trained.architecture, trained.model, trained.data.test.x[:n],
                               trained.data.test.y[:n], trained.data.task, trained.preprocessing)

    def measure(self, trained: Any) -> dict[str, float]:
        """``hw_*`` values of a trained candidate on its test samples; cached by candidate."""
        cached = self.cached(trained)
        if cached is not None:
            return cached
        with tempfile.TemporaryDirectory(prefix="explorer-hil-") as folder:
            model_dir = self.model_dir(trained, Path(folder) / "model")
            metrics, board = self.measure_folder(model_dir, Path(folder) / "artifact")
        return self.remember(self.cache_key(trained), metrics, board)

    def measure_folder(self, model_dir: Path, artifact: Path) -> tuple[dict[str, Any], str]:
        """Export, build and bench one model folder on a free board: (bench metrics, board name)."""
        from .. import targets

        targets.export(self.target.name, model_dir, artifact, self.settings.options)
        targets.build(artifact, "auto")
        return self.bench_artifact(artifact)

    def bench_artifact(self, artifact: Path) -> tuple[dict[str, Any], str]:
        from .. import targets
        from ..targets import BoardError

        options = {"timeout": self.settings.timeout}
        if self.pool is None:
            return targets.bench(artifact, None, options), "local"
        from ..boards.pool import NoBoardError

        try:
            with self.pool.board(target=self.target.name, labels=self.settings.labels,
                                 wait=self.settings.wait) as board:
                try:
                    metrics = targets.bench(artifact, board, {"timeout": max(board.timeout, self.settings.timeout)})
                except BoardError as exc:
                    self.pool.report_fault(board, str(exc))
                    raise
                self.pool.report_ok(board)
                return metrics, board.name
        except NoBoardError as exc:
            raise NoMeasurement(str(exc)) from None

    def fallback(self, values: dict[str, float], reason: str) -> dict[str, float]:
        """Stand-in ``hw_*`` values from estimator values when the user allowed it."""
        if not self.settings.fallback:
            raise NoMeasurement(f"{reason}; no fallback configured (hardware.fallback)")
        missing = [m for m in self.settings.fallback.values() if m not in values]
        if missing:
            raise NoMeasurement(f"{reason}; fallback metric {missing[0]!r} was not estimated")
        return {hw: values[metric] for hw, metric in self.settings.fallback.items()} | {"hw_fallback": 1.0}
