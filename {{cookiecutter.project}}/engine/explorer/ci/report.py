"""The pull-request report in markdown, built from ``results/``: per space the headline
figures, the Pareto front as a table and as a Mermaid chart (both readable in the comment
itself), the board measurements, and the full search report folded away; then
``dvc metrics diff`` against the base branch.

PNG plots are not embedded: a comment could only show them from a third-party host. They go
to the workflow's artifacts, and the report names the artifact (``--artifact``, ``{space}``
is replaced by the space's name) and links the run when it knows it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .dvcdiff import metrics_diff
from .mermaid import quadrant_chart
from .results import SpaceResults, find_results, fmt, number

MARKER = "<!-- explorer-report -->"
MAX_ROWS = 20
EXTRA = ("params_total", "macs", "activations_int8")
MAXIMIZED = {"accuracy", "f1"}


@dataclass(frozen=True)
class Objective:
    column: str
    direction: str  # minimize or maximize

    @property
    def title(self) -> str:
        return f"{self.column} {'↑' if self.direction == 'maximize' else '↓'}"


def objectives_of(spec_path: Path | None) -> tuple[list[Objective], list[str]]:
    """The spec's objectives (metric and direction) and its spaces' names; ([], []) without a spec."""
    if spec_path is None or not spec_path.is_file():
        return [], []
    from ..spec import load_spec

    try:
        spec, path = load_spec(spec_path)
    except UserError:
        return [], []  # the report still renders, with the objectives the CSV names
    found = [Objective(c.metric, c.direction or ("maximize" if c.metric in MAXIMIZED else "minimize"))
             for c in spec.criteria if c.kind == "objective"]
    names = [p.stem for p in spec.space_paths(path.parent)]
    return found, names


def _objectives(space: SpaceResults, given: list[Objective]) -> list[Objective]:
    columns = set(space.pareto[0]) if space.pareto else set()
    chosen = [o for o in given if o.column in columns]
    if chosen or not columns:
        return chosen
    return [Objective(c, "minimize") for c in sorted(columns) if re.fullmatch(r"value_\d+", c)]


def _cost_columns(columns: list[str]) -> list[str]:
    """Board figures next to the estimates: ``hw_cost`` (hardware in the loop) and ``bench_*_cost``."""
    return [c for c in columns if c == "hw_cost" or (c.startswith("bench_") and c.endswith("_cost"))]


def _units(space: SpaceResults) -> dict[str, str]:
    """target -> unit of its cost figure, from the board measurements."""
    from ..hil.loop import flatten_metrics

    units = {}
    for r in space.bench:
        flat = flatten_metrics(r.get("metrics", {})) if "fault" not in r else {}
        if flat:
            units[r["target"]] = ("ms" if "hw_latency_ms_median" in flat else "instructions"
                                  if "hw_simulated_instructions_median" in flat else "cycles")
    return units


def _cost_title(column: str, units: dict[str, str]) -> str:
    """``bench_pico_cost`` -> ``pico cost (instructions)``; ``hw_cost`` -> ``board cost``."""
    if column == "hw_cost":
        return "board cost"
    words = column[len("bench_"):-len("_cost")].split("_")
    unit = units.get(words[0])
    return f"{' '.join(words)} cost" + (f" ({unit})" if unit else "")


def pareto_table(space: SpaceResults, objectives: list[Objective]) -> list[str]:
    if not space.pareto:
        return ["No feasible complete trial yet: no Pareto front."]
    columns = list(space.pareto[0])
    extras = [c for c in EXTRA if c in columns and c not in {o.column for o in objectives}]
    costs = _cost_columns(columns)
    rows = list(space.pareto)
    if objectives:
        first = objectives[0]
        sign = -1 if first.direction == "maximize" else 1
        rows.sort(key=lambda r: (number(r.get(first.column)) is None, sign * (number(r.get(first.column)) or 0.0),
                                 number(r.get("number")) or 0))
    units = _units(space)
    header = ["trial", *[o.title for o in objectives], *extras, *[_cost_title(c, units) for c in costs]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for row in rows[:MAX_ROWS]:
        cells = [row.get("number", "?"), *[fmt(row.get(o.column, "")) for o in objectives],
                 *[fmt(row.get(c, "")) for c in extras], *[fmt(row.get(c, "")) or "-" for c in costs]]
        lines.append("| " + " | ".join(cell if cell != "" else "-" for cell in cells) + " |")
    if len(rows) > MAX_ROWS:
        lines.append(f"\n{len(rows) - MAX_ROWS} more Pareto trials are in `results/{space.name}/pareto.csv`.")
    return lines


def pareto_chart(space: SpaceResults, objectives: list[Objective]) -> list[str]:
    """The front on the first two objectives (x: the second, y: the first, as in dvc plots)."""
    if len(objectives) < 2:
        return []
    y, x = objectives[0], objectives[1]
    points = []
    for row in space.pareto:
        px, py = number(row.get(x.column)), number(row.get(y.column))
        if px is not None and py is not None:
            points.append((f"trial {row.get('number', '?')}", px, py))
    if not points:
        return []
    points = points[:MAX_ROWS]
    chart = quadrant_chart(points, x.column, y.column, f"{space.name} Pareto front", x.direction, y.direction)
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    caption = (f"x: {x.column} from {fmt(min(xs))} (left) to {fmt(max(xs))} (right); "
               f"y: {y.column} from {fmt(min(ys))} (bottom) to {fmt(max(ys))} (top); "
               "axes scaled to the front's range.")
    return ["```mermaid", chart, "```", "", caption]


def bench_table(space: SpaceResults) -> list[str]:
    """Measured on boards (``explorer hil bench``): one row per model and board."""
    if not space.bench:
        return []
    from ..hil.loop import flatten_metrics

    lines = ["| trial | target | board | accuracy | agreement with PyTorch | cost | memory |",
             "|---:|---|---|---:|---:|---:|---:|"]
    for r in space.bench:
        if "fault" in r:
            lines.append(f"| {r['trial']} | {r['target']} | {r['board']} | not measured: "
                         f"{str(r['fault']).replace('|', '/')} | | | |")
            continue
        flat = flatten_metrics(r.get("metrics", {}))
        cost = flat.get("hw_cost")
        unit = ("ms" if "hw_latency_ms_median" in flat else "instructions (simulated)"
                if "hw_simulated_instructions_median" in flat else "cycles (simulated)")
        memory = flat.get("hw_arena_bytes") or flat.get("hw_ram_bytes")
        lines.append(f"| {r['trial']} | {r['target']} | {r['board']} | {fmt(flat.get('hw_accuracy'))} "
                     f"| {fmt(flat.get('hw_agreement_argmax_match'))} "
                     f"| {fmt(cost) + ' ' + unit if cost is not None else '-'} "
                     f"| {f'{memory:,.0f} B' if memory else '-'} |")
    return lines


def headline_line(space: SpaceResults, objectives: list[Objective]) -> str:
    h = space.headline
    if not h:
        return "No `metrics.json`: the search has not finished."
    parts = [f"{h.get('trials', '?')} trials: {h.get('trials_complete', 0)} complete, "
             f"{h.get('trials_pruned', 0)} pruned, {h.get('trials_fail', 0)} failed"]
    for o in objectives:
        if f"best_{o.column}" in h:
            parts.append(f"best {o.column} {fmt(h[f'best_{o.column}'])}")
    if "hypervolume" in h:
        parts.append(f"hypervolume {fmt(h['hypervolume'])}")
    return " · ".join(parts)


def folded_report(space: SpaceResults) -> list[str]:
    """The search's own report.md (architectures, all figures) behind a <details>, images dropped."""
    if not space.report:
        return []
    body: list[str] = []
    for line in space.report.splitlines():
        if re.match(r"\s*!\[[^\]]*\]\([^)]*\)\s*$", line):  # a PNG beside report.md: in the artifact
            if not body or not body[-1].startswith("_The PNG plots"):
                body.append("_The PNG plots are in the workflow artifact named above._")
            continue
        if line.startswith("#"):
            line = "###" + line  # below this report's own headings
        body.append(line)
    while body and not body[-1].strip():
        body.pop()
    return ["<details><summary>Full search report (architectures, all figures)</summary>", "", *body, "",
            "</details>"]


def run_url() -> str | None:
    server, repo, run = (os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else None


def space_section(space: SpaceResults, objectives: list[Objective], artifact: str) -> list[str]:
    chosen = _objectives(space, objectives)
    lines = [f"### `{space.name}`", "", headline_line(space, chosen), "", "**Pareto front**", "",
             *pareto_table(space, chosen)]
    chart = pareto_chart(space, chosen)
    if chart:
        lines += ["", *chart]
    bench = bench_table(space)
    if bench:
        lines += ["", "**Measured on boards**", "", *bench]
    if space.plots:
        name = artifact.replace("{space}", space.name)
        where = f"the workflow artifact `{name}`"
        url = run_url()
        lines += ["", f"Plots ({', '.join(space.plots)}) are in {where}" + (f" of [this run]({url})." if url else ".")]
    folded = folded_report(space)
    if folded:
        lines += ["", *folded]
    return lines


def build_report(root: Path, spec_path: Path | None, base: str = "main", artifact: str = "results-{space}",
                 only: list[str] | None = None, compare: bool = True) -> str:
    """The whole markdown report for the experiment at ``root`` (``results/`` below it); ``only``
    restricts it to the spaces a pull request searched (results of other spaces may be committed)."""
    objectives, order = objectives_of(spec_path)
    spaces = find_results(root / "results", order, only)
    sha = os.environ.get("GITHUB_SHA", "")
    url = run_url()
    lines = [MARKER, "## Architecture search results", ""]
    facts = [f"{len(spaces)} space{'s' * (len(spaces) != 1)} with results"]
    if sha:
        facts.append(f"commit `{sha[:7]}`")
    if url:
        facts.append(f"[workflow run]({url})")
    lines += [" · ".join(facts), ""]
    if not spaces:
        lines += ["No results yet: `results/<space>/` holds nothing from `explorer search`.", ""]
    missing = [n for n in only or [] if n not in {s.name for s in spaces}]
    if missing:
        lines += [f"No results for {', '.join(f'`{n}`' for n in missing)}: did the search job fail?", ""]
    for space in spaces:
        lines += [*space_section(space, objectives, artifact), ""]
    if compare:
        table, note = metrics_diff(root, base)
        lines += [f"### Compared with `{base}`", "", note]
        if table:
            lines += ["", table]
    return "\n".join(lines).rstrip() + "\n"
