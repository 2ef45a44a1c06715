"""Mode 1: after the search, the exported models (Pareto set and top-k) measured on boards.

Two steps, two DVC stages per space and target: ``export_models`` writes
``results/<space>/artifacts/<target>/<trial>/`` (exported and built), ``bench_artifacts`` measures
them and writes ``results/<space>/bench/<target>.json``. ``explorer report`` adds the values as
``bench_<target>_*`` columns to trials.csv / pareto.csv and a table to report.md.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import UserError
from .loop import bench_on, flatten_metrics

REFUSED = "refused.json"


def artifacts_dir(results: Path, target: str) -> Path:
    return results / "artifacts" / target


def bench_file(results: Path, target: str) -> Path:
    return results / "bench" / f"{target}.json"


def export_models(results: Path, target: str, options: dict[str, Any] | None = None,
                  toolchain: str = "auto") -> dict[str, list[int]]:
    """Every model of ``results/models/`` exported and built for ``target``; a model the target
    cannot run (or that does not build) is listed in ``refused.json`` with the reason."""
    from .. import targets
    from ..targets.toolchain import ToolchainError

    models = sorted((p for p in (results / "models").glob("*") if p.is_dir()), key=lambda p: int(p.name))
    if not models:
        raise UserError(f"{results}: no exported models", hint="explorer search (or explorer report) exports them")
    work = artifacts_dir(results, target)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    built, refused = [], []
    for model in models:
        try:
            targets.export(target, model, work / model.name, dict(options or {}))
            targets.build(work / model.name, toolchain)
        except (UserError, ToolchainError) as exc:  # this model only: e.g. an op the target cannot run
            shutil.rmtree(work / model.name, ignore_errors=True)
            reason = str(exc).splitlines()[0].replace(f"{model}: ", "").split(" (hint: ")[0]
            refused.append({"trial": int(model.name), "reason": reason})
            continue
        built.append(int(model.name))
    (work / REFUSED).write_text(json.dumps(refused, indent=2) + "\n")
    return {"built": built, "refused": [r["trial"] for r in refused]}


def bench_artifacts(results: Path, target: str, boards: list[Any]) -> list[dict[str, Any]]:
    """Every built artifact measured on each board (None: the target's local runner or
    simulator); boards measure in parallel, one model at a time each. A fault is recorded."""
    from ..targets import BoardError

    work = artifacts_dir(results, target)
    if not work.is_dir():
        export_models(results, target)
    artifacts = sorted((p for p in work.iterdir() if p.is_dir()), key=lambda p: int(p.name))
    refused = json.loads((work / REFUSED).read_text()) if (work / REFUSED).is_file() else []

    def on(board: Any) -> list[dict[str, Any]]:
        name = getattr(board, "name", "local")
        found = []
        for artifact in artifacts:
            try:
                record = {"metrics": bench_on(artifact, board, {})}
            except BoardError as exc:
                record = {"fault": str(exc)}
            found.append({"trial": int(artifact.name), "board": name, "target": target, **record})
        return found

    with ThreadPoolExecutor(max_workers=max(1, len(boards))) as pool:
        records = [r for found in pool.map(on, boards or [None]) for r in found]
    records += [{"trial": r["trial"], "board": "-", "target": target, "fault": r["reason"]} for r in refused]
    path = bench_file(results, target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(sorted(records, key=lambda r: (r["trial"], r["board"])), indent=2,
                               sort_keys=True) + "\n")
    return records


def bench_records(results: Path) -> list[dict[str, Any]]:
    """Every measurement of every target, in trial order."""
    records = []
    for path in sorted((results / "bench").glob("*.json")):
        records += json.loads(path.read_text())
    return sorted(records, key=lambda r: (r["trial"], r["target"], r["board"]))


def bench_columns(results: Path) -> dict[int, dict[str, Any]]:
    """``bench_<target>_*`` values per trial (``bench_<target>_<board>_*`` when a target has several boards)."""
    records = bench_records(results)
    boards: dict[str, set[str]] = {}
    for r in records:
        if r["board"] != "-":
            boards.setdefault(r["target"], set()).add(r["board"])
    columns: dict[int, dict[str, Any]] = {}
    for r in records:
        several = len(boards.get(r["target"], ())) > 1 and r["board"] != "-"
        prefix = f"bench_{r['target']}_" + (f"{r['board']}_" if several else "")
        row = columns.setdefault(r["trial"], {})
        if "fault" in r:
            row[prefix + "fault"] = r["fault"]
        else:
            row.update({prefix + k[len("hw_"):]: v for k, v in flatten_metrics(r["metrics"]).items()})
    return columns
