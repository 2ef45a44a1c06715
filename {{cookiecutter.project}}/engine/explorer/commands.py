"""The search-side commands (``search``, ``report``): resolve the runs, show progress, write results."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .errors import UserError
from .plugins import load_plugins
from .search import Run, finished, load_study, make_run, run_search
from .search.runner import load_inputs
from .search.criteria import Criteria, direction
from .search.report import pareto_rows, write_report
from .search.results import update_headline, write_results
from .spec import load_spec


def resolve_runs(spec_path: Path | None, spaces: list[Path] | None, trials: int | None, timeout: float | None,
                 storage: str | None, workers: int | None) -> list[Run]:
    spec, path = load_spec(spec_path)
    load_plugins(path if path.is_file() else None)
    chosen = spaces or spec.space_paths(path.parent)
    if not chosen:
        raise UserError(f"{path}: no search space to run", hint="list files under 'spaces:' or pass --space FILE")
    for file in chosen:
        if not file.is_file():
            raise UserError(f"{file}: no such search space", hint="check 'spaces:' in params.yaml or --space")
    return [make_run(spec, path, file, trials, timeout, storage, workers) for file in chosen]


def _best(study: optuna.Study, run: Run) -> str:
    criteria = Criteria(run.spec)
    first = criteria.objectives[0]
    values = [t.user_attrs.get("metrics", {}).get(first.metric) for t in
              study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    best = max(values) if direction(first) == "maximize" else min(values)
    return f"{first.metric} {best:.4g}"


def pareto_table(study: optuna.Study, run: Run) -> Table:
    header, rows = pareto_rows(study, run.spec)
    table = Table(title=f"Pareto front: {run.space_path.name} ({len(rows)} trials)")
    for col in header:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def finish(run: Run, study: optuna.Study, out: Console) -> None:
    from .data import load_dataset

    figures = write_results(study, run.spec, run.results, load_dataset(run.spec.dataset))
    update_headline(run.results.parent, run.space_path.stem, figures)
    report = write_report(study, run.spec, run.results, figures, str(run.space_path))
    out.print(pareto_table(study, run))
    out.print(f"results: {run.results}  report: {report}", markup=False)


def run_search_command(spec_path, spaces, trials, timeout, storage, workers, out: Console, err: Console) -> int:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    code = 0
    for run in resolve_runs(spec_path, spaces, trials, timeout, storage, workers):
        started = time.perf_counter()
        inputs = load_inputs(run)  # a mistake ends the command here, before the progress bar
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      TextColumn("{task.fields[status]}"), console=err, transient=False) as progress:
            task = progress.add_task(run.space_path.stem, total=run.trials, status="")

            def update(study: optuna.Study) -> None:
                trials = study.get_trials(deepcopy=False)
                pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in trials)
                failed = sum(t.state == optuna.trial.TrialState.FAIL for t in trials)
                progress.update(task, completed=min(finished(study), run.trials),
                                status=f"best {_best(study, run)} | infeasible {pruned} | failed {failed}")

            try:
                study = run_search(run, update, inputs)
                update(study)
            except KeyboardInterrupt:
                code = 130
                err.print("interrupted: the running trial is marked failed; rerun to resume", markup=False)
                study, _ = load_study(run)
        finish(run, study, out)
        out.print(f"{finished(study)} finished trials in {time.perf_counter() - started:.1f} s", markup=False)
        if code:
            break
    return code


def run_report_command(spec_path, spaces, storage, out: Console) -> int:
    for run in resolve_runs(spec_path, spaces, None, None, storage, None):
        study, _ = load_study(run)
        finish(run, study, out)
    return 0
