"""Mode 1: after the search, the exported models (Pareto set and top-k) measured on boards.

``results/<space>/bench.json`` keeps one record per model and board; ``explorer report`` adds
the values as ``bench_*`` columns to trials.csv / pareto.csv and a table to report.md.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import UserError
from .loop import flatten_metrics

BENCH = "bench.json"


def bench_models(results: Path, target: str, boards: list[Any], options: dict[str, Any] | None = None,
                 toolchain: str = "auto") -> list[dict[str, Any]]:
    """Every model of ``results/models/`` exported, built and measured on each board (None: the
    target's local runner or simulator); boards measure in parallel, one model at a time each."""
    from .. import targets
    from ..targets import BoardError
    from ..targets.toolchain import ToolchainError

    models = sorted((p for p in (results / "models").glob("*") if p.is_dir()), key=lambda p: int(p.name))
    if not models:
        raise UserError(f"{results}: no exported models", hint="explorer search (or explorer report) exports them")
    work = results / "bench" / target
    if work.exists():
        shutil.rmtree(work)
    artifacts, refused = {}, []
    for model in models:
        artifact = work / model.name
        try:
            targets.export(target, model, artifact, dict(options or {}))
            targets.build(artifact, toolchain)
        except (UserError, ToolchainError) as exc:  # this model only: e.g. an op the target cannot run
            refused.append({"trial": int(model.name), "board": "-", "target": target, "fault": str(exc)})
            continue
        artifacts[model.name] = artifact

    def on(board: Any) -> list[dict[str, Any]]:
        name = getattr(board, "name", "local")
        found = []
        for trial, artifact in artifacts.items():
            try:
                record = {"metrics": targets.bench(artifact, board, {})}
            except BoardError as exc:
                record = {"fault": str(exc)}
            found.append({"trial": int(trial), "board": name, "target": target, **record})
        return found

    with ThreadPoolExecutor(max_workers=max(1, len(boards))) as pool:
        records = refused + [r for found in pool.map(on, boards or [None]) for r in found]
    (results / BENCH).write_text(json.dumps(records, indent=2, sort_keys=True) + "\n")
    return records


def bench_columns(results: Path) -> dict[int, dict[str, Any]]:
    """``bench_*`` values per trial from bench.json (one board: its values; several: per board)."""
    path = results / BENCH
    if not path.is_file():
        return {}
    records = json.loads(path.read_text())
    boards = sorted({r["board"] for r in records})
    columns: dict[int, dict[str, Any]] = {}
    for r in records:
        prefix = "bench_" if len(boards) == 1 else f"bench_{r['board']}_"
        row = columns.setdefault(r["trial"], {})
        if "fault" in r:
            row[prefix + "fault"] = r["fault"]
        else:
            row.update({prefix + k[len("hw_"):]: v for k, v in flatten_metrics(r["metrics"]).items()})
    return columns
