"""What a study leaves in ``results/<space>/``: ``trials.csv``, ``pareto.csv``, ``models/<trial>/``
for the Pareto set and the top-k, and the headline figures DVC tracks as metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from ..spec import Spec
from .criteria import Criteria, direction, hypervolume, pareto_mask

MAX_TABLE = 20


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, reason, params, every estimator value, constraints, stage times."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {"number": t.number, "state": t.state.name, "reason": t.user_attrs.get("reason", "")}
        if t.values is not None:
            row.update({f"value_{i}": v for i, v in enumerate(t.values)})
        row.update({f"param_{k}": v for k, v in t.params.items()})
        row.update(t.user_attrs.get("metrics", {}))
        row.update({f"constraint_{i}": v for i, v in enumerate(t.user_attrs.get("constraints", []))})
        row.update(t.user_attrs.get("stages", {}))
        if t.datetime_start and t.datetime_complete:
            row["duration_s"] = (t.datetime_complete - t.datetime_start).total_seconds()
        rows.append(row)
    return pd.DataFrame(rows)


def with_bench(frame: pd.DataFrame, results: Path) -> pd.DataFrame:
    """``bench_*`` columns from boards that measured the exported models (``explorer hil bench``)."""
    from ..hil.after import bench_columns

    columns = bench_columns(results)
    if not columns or frame.empty:
        return frame
    extra = pd.DataFrame.from_dict(columns, orient="index")
    return frame.merge(extra, left_on="number", right_index=True, how="left")


def feasible_complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if all(c <= 0 for c in t.user_attrs.get("constraints", []))]


def pareto_trials(study: optuna.Study, spec: Spec) -> list[optuna.trial.FrozenTrial]:
    """Feasible complete trials not dominated on the objective criteria (single mode too)."""
    criteria = Criteria(spec)
    trials = feasible_complete(study)
    points = np.array([[t.user_attrs["metrics"][c.metric] for c in criteria.objectives] for t in trials])
    mask = pareto_mask(points, [direction(c) for c in criteria.objectives]) if trials else []
    chosen = [t for t, keep in zip(trials, mask) if keep]
    return sorted(chosen, key=lambda t: ranking_key(t, criteria))


def ranking_key(trial: optuna.trial.FrozenTrial, criteria: Criteria) -> tuple:
    first = criteria.objectives[0]
    value = trial.user_attrs["metrics"][first.metric]
    return (-value if direction(first) == "maximize" else value, trial.number)


def top_trials(study: optuna.Study, spec: Spec) -> list[optuna.trial.FrozenTrial]:
    """The Pareto set plus the best ``top_k`` by the first objective (single mode: by the score)."""
    criteria = Criteria(spec)
    trials = feasible_complete(study)
    if criteria.multi:
        best = sorted(trials, key=lambda t: ranking_key(t, criteria))[: spec.export.top_k]
    else:
        best = sorted(trials, key=lambda t: (t.value, t.number))[: spec.export.top_k]
    chosen = {t.number: t for t in [*pareto_trials(study, spec), *best]}
    return [chosen[n] for n in sorted(chosen)]


def headline(study: optuna.Study, spec: Spec) -> dict[str, Any]:
    """``metrics.json``: trial counts, the best value of each objective, hypervolume of the front."""
    criteria = Criteria(spec)
    trials = study.get_trials(deepcopy=False)
    counts = {f"trials_{s.name.lower()}": sum(t.state == s for t in trials)
              for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    out: dict[str, Any] = {"trials": len(trials), **counts}
    done = feasible_complete(study)
    dirs = [direction(c) for c in criteria.objectives]
    if done:
        points = np.array([[t.user_attrs["metrics"][c.metric] for c in criteria.objectives] for t in done])
        for i, c in enumerate(criteria.objectives):
            column = points[:, i]
            out[f"best_{c.metric}"] = float(column.max() if dirs[i] == "maximize" else column.min())
        reference = np.array([0.0 if d == "maximize" else float(points[:, i].max()) * 1.1 + 1e-12
                              for i, d in enumerate(dirs)])
        out["hypervolume"] = hypervolume(points[pareto_mask(points, dirs)], dirs, reference)
        best = pareto_trials(study, spec)[0]
        for key in ("params_total", "macs", "activations_int8", "latency_median"):
            if key in best.user_attrs["metrics"]:
                out[f"best_model_{key}"] = best.user_attrs["metrics"][key]
    return out


def export_models(study: optuna.Study, spec: Spec, results: Path, dataset: Any) -> list[int]:
    """``models/<trial>/``: weights, ``architecture.json``, pre-processing state, test samples with
PyTorch's outputs (what a target exports and checks against), ``metrics.json`` with test metrics."""
    import torch

    from ..build import build
    from ..preprocess import Pipeline, apply_to_dataset
    from ..space import Architecture
    from ..targets.model import DEFAULT_SAMPLES, write_model_dir
    from ..train import metrics

    models = results / "models"
    if models.exists():
        shutil.rmtree(models)
    exported = []
    for t in top_trials(study, spec):
        checkpoint = results / "checkpoints" / study.study_name / f"{t.number}.pt"
        if not checkpoint.is_file():
            continue
        arch = Architecture.from_json(t.user_attrs["architecture"])
        saved = torch.load(checkpoint, weights_only=True)
        model = build(arch)
        model.load_state_dict(saved["state_dict"])
        pipeline = Pipeline.from_json(arch.preprocessing)
        data = apply_to_dataset(pipeline, dataset)[0] if pipeline.steps else dataset
        folder = write_model_dir(models / str(t.number), arch, model, data.test.x[:DEFAULT_SAMPLES],
                                 data.test.y[:DEFAULT_SAMPLES], data.task,
                                 {"steps": arch.preprocessing, "state": saved["pipeline_state"]})
        record = {"trial": t.number, "validation": t.user_attrs["metrics"],
                  "test": metrics(model, data.test, data.task)}
        (folder / "metrics.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        exported.append(t.number)
    return exported


def write_results(study: optuna.Study, spec: Spec, results: Path, dataset: Any) -> dict[str, Any]:
    results.mkdir(parents=True, exist_ok=True)
    frame = with_bench(trials_frame(study), results)
    frame.to_csv(results / "trials.csv", index=False)
    pareto_numbers = {t.number for t in pareto_trials(study, spec)}
    frame[frame["number"].isin(pareto_numbers)].to_csv(results / "pareto.csv", index=False)
    exported = export_models(study, spec, results, dataset)
    figures = headline(study, spec)
    figures["models"] = exported
    (results / "metrics.json").write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return figures


def update_headline(results_root: Path, space: str, figures: dict[str, Any]) -> Path:
    """``results/metrics.json``: every space's headline figures, the file DVC tracks as metrics."""
    path = results_root / "metrics.json"
    current = json.loads(path.read_text()) if path.is_file() else {}
    current[space] = {k: v for k, v in figures.items() if k != "models"}
    path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    return path
