"""What ``explorer search``/``report``/``hil bench`` left in ``results/<space>/``, read for the
pull-request report with the standard library only (no pandas, no Optuna): ``metrics.json``,
``pareto.csv``, ``bench/*.json``, ``report.md`` and the names of the PNG plots."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKERS = ("pareto.csv", "metrics.json", "report.md")


@dataclass
class SpaceResults:
    name: str
    folder: Path
    headline: dict[str, Any] = field(default_factory=dict)
    pareto: list[dict[str, str]] = field(default_factory=list)
    bench: list[dict[str, Any]] = field(default_factory=list)
    report: str | None = None
    plots: list[str] = field(default_factory=list)


def read_space(folder: Path) -> SpaceResults:
    found = SpaceResults(folder.name, folder)
    if (folder / "metrics.json").is_file():
        try:
            found.headline = json.loads((folder / "metrics.json").read_text())
        except json.JSONDecodeError:
            found.headline = {}
    if (folder / "pareto.csv").is_file():
        with open(folder / "pareto.csv", newline="", encoding="utf-8") as handle:
            found.pareto = list(csv.DictReader(handle))
    if (folder / "bench").is_dir():
        from ..hil.after import bench_records

        try:
            found.bench = bench_records(folder)
        except (json.JSONDecodeError, KeyError, TypeError):
            found.bench = []
    if (folder / "report.md").is_file():
        found.report = (folder / "report.md").read_text(encoding="utf-8")
    found.plots = sorted(p.name for p in folder.glob("*.png"))
    return found


def find_results(results: Path, order: list[str] | None = None, only: list[str] | None = None) -> list[SpaceResults]:
    """Every ``results/<space>/`` holding search results (or only those named), the spec's order first."""
    if not results.is_dir():
        return []
    folders = {p.name: p for p in results.iterdir() if p.is_dir() and any((p / m).is_file() for m in MARKERS)}
    if only is not None:
        folders = {n: p for n, p in folders.items() if n in only}
    names = [n for n in (order or []) if n in folders] + sorted(n for n in folders if n not in (order or []))
    return [read_space(folders[n]) for n in names]


def parse_spaces(text: str) -> list[str]:
    """Result folder names from the search matrix JSON (``{"space": [...]}`` or a list) or from
    comma-separated names or paths: ``search_spaces/cnn1d.yaml`` and ``cnn1d`` both mean ``cnn1d``."""
    text = text.strip()
    if text.startswith(("{", "[")):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            from ..errors import UserError

            raise UserError(f"--spaces: not JSON ({exc})", hint='the matrix {"space": [...]} or a,b,c') from None
        entries = parsed.get("space", []) if isinstance(parsed, dict) else parsed
    else:
        entries = [e for e in text.replace(",", " ").split() if e]
    names = []
    for entry in entries:
        name = str(entry).rsplit("/", 1)[-1]
        names.append(name.rsplit(".", 1)[0] if name.endswith((".yaml", ".yml")) else name)
    return list(dict.fromkeys(names))


def number(text: Any) -> float | None:
    """A CSV cell as a float; None for empty or non-numeric cells."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    try:
        return float(text) if text not in (None, "") else None
    except (TypeError, ValueError):
        return None


def fmt(value: Any) -> str:
    """Numbers the way the search report prints them: 4 significant digits, thousands separators."""
    if isinstance(value, str):
        parsed = number(value)
        if parsed is None:
            return value
        value = int(parsed) if parsed.is_integer() and "." not in value and "e" not in value.lower() else parsed
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if value != value:
            return "-"
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3e}"
    return "-" if value is None else str(value)
