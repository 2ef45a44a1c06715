"""``report.md`` with the Pareto table, the trial summary and PNG plots made with Optuna's
matplotlib visualisation; the same rows feed the terminal's Pareto table."""

from __future__ import annotations

import collections
import json
import warnings
from pathlib import Path
from typing import Any

import optuna

from ..spec import Spec
from .criteria import Criteria, direction
from .results import pareto_trials

EXTRA = ("params_total", "macs", "activations_int8")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3e}"
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


def pareto_rows(study: optuna.Study, spec: Spec) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the Pareto table: trial, objectives, sizes, the layers."""
    criteria = Criteria(spec)
    metrics = [c.metric for c in criteria.objectives] + [m for m in EXTRA if m not in {c.metric for c in
                                                                                       criteria.objectives}]
    header = ["trial", *metrics, "architecture"]
    rows = []
    for t in pareto_trials(study, spec):
        values = t.user_attrs["metrics"]
        layers = [layer["op"] for layer in t.user_attrs["architecture"]["layers"] if not layer["adapter"]]
        steps = [s["step"] for s in t.user_attrs["architecture"].get("preprocessing", [])]
        arch = " > ".join(layers)
        if steps:
            arch = f"[{' > '.join(steps)}] {arch}"
        rows.append([str(t.number), *[_fmt(values.get(m, "")) for m in metrics], arch])
    return header, rows


def _plots(study: optuna.Study, spec: Spec, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as vis

    criteria = Criteria(spec)
    names = [f"{c.metric} ({direction(c)[:3]})" for c in criteria.objectives]
    made = []
    jobs = {"optimization_history.png": lambda: vis.plot_optimization_history(
        study, target=(lambda t: t.values[0]) if criteria.multi else None, target_name=names[0])}
    if criteria.multi and 2 <= len(criteria.objectives) <= 3:
        jobs["pareto_front.png"] = lambda: vis.plot_pareto_front(study, target_names=names)
    if len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))) >= 3:
        jobs["param_importances.png"] = lambda: vis.plot_param_importances(
            study, target=(lambda t: t.values[0]) if criteria.multi else None, target_name=names[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib backend experimental
        for name, make in jobs.items():
            try:
                axes = make()
            except (ValueError, RuntimeError, ZeroDivisionError):
                continue  # e.g. importances need parameters that vary; the report says what it has
            figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
            figure.set_size_inches(7, 4.5)
            figure.tight_layout()
            figure.savefig(folder / name, dpi=100)
            plt.close(figure)
            made.append(name)
    return made


def _bench_section(results: Path) -> list[str]:
    """Measured on boards (``explorer hil bench``): one row per model and board."""
    from ..hil.after import bench_records
    from ..hil.loop import flatten_metrics

    records = bench_records(results)
    if not records:
        return []
    lines = ["", "## Measured on boards", "", "| trial | target | board | accuracy | agreement | cost | memory |",
             "|---|---|---|---|---|---|---|"]
    for r in records:
        if "fault" in r:
            lines.append(f"| {r['trial']} | {r['target']} | {r['board']} | not measured: {r['fault']} | | | |")
            continue
        flat = flatten_metrics(r["metrics"])
        cost = flat.get("hw_cost")
        unit = ("ms" if "hw_latency_ms_median" in flat else "instructions (simulated)"
                if "hw_simulated_instructions_median" in flat else "cycles (simulated)")
        memory = flat.get("hw_arena_bytes") or flat.get("hw_ram_bytes")
        lines.append(f"| {r['trial']} | {r['target']} | {r['board']} | {_fmt(flat.get('hw_accuracy', float('nan')))} "
                     f"| {_fmt(flat.get('hw_agreement_argmax_match', float('nan')))} "
                     f"| {_fmt(cost) + ' ' + unit if cost is not None else '-'} "
                     f"| {f'{memory:.0f} B' if memory else '-'} |")
    return lines


def write_report(study: optuna.Study, spec: Spec, results: Path, figures: dict[str, Any], space_file: str) -> Path:
    header, rows = pareto_rows(study, spec)
    trials = study.get_trials(deepcopy=False)
    reasons = collections.Counter(t.user_attrs.get("reason", "").split(":")[0] or t.state.name.lower()
                                  for t in trials if t.state != optuna.trial.TrialState.COMPLETE)
    lines = [f"# Search report: `{space_file}`", "",
             f"Study `{study.study_name}`: {len(trials)} trials, {figures.get('trials_complete', 0)} complete, "
             f"{figures.get('trials_pruned', 0)} pruned, {figures.get('trials_fail', 0)} failed.", ""]
    if reasons:
        lines += ["Trials that did not complete: " + ", ".join(f"{n} {r}" for r, n in reasons.most_common()), ""]
    lines += ["## Pareto front", ""]
    if rows:
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    else:
        lines.append("No feasible complete trial yet.")
    lines += _bench_section(results)
    lines += ["", "## Headline figures", "", "| figure | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in sorted(figures.items()) if k != "models"]
    plots = _plots(study, spec, results)
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p[:-4]}]({p})" for p in plots]
    if figures.get("models"):
        lines += ["", f"Exported models: {', '.join(f'`models/{n}`' for n in figures['models'])}."]
    path = results / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
