"""``explorer search``: one persistent, resumable study per search space.

``trials`` is the study's total of finished trials, so a rerun of a finished study adds
nothing and a rerun after ``kill -9`` only adds what is missing (a stale running trial is
failed by Optuna's heartbeat and retried with the same parameters).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import optuna
from optuna.trial import TrialState

from ..data import load_dataset
from ..errors import Diagnostic, UserError
from ..plugins import load_plugins
from ..space import SearchSpace, load_space
from ..space.source import load_yaml, locate
from ..space.validate import did_you_mean
from ..spec import Spec
from .criteria import Criteria, hypervolume, pareto_mask, reference_point
from .objective import INTERRUPTED, REASON, Objective, constraints_func
from .samplers import make_sampler
from .storage import check_workers, default_url, open_storage, shown

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass
class Run:
    """Everything one search needs, resolved from the spec and the command line."""

    spec: Spec
    spec_path: Path
    space_path: Path
    trials: int
    timeout: float | None
    storage: str
    workers: int

    @property
    def root(self) -> Path:
        return self.spec_path.parent

    @property
    def results(self) -> Path:
        return self.root / "results" / self.space_path.stem

    def study_name(self, space: SearchSpace) -> str:
        return f"{self.space_path.stem}-{space.hash[:8]}-{self.spec.fingerprint()}"

    def checkpoints(self, space: SearchSpace) -> Path:
        """Trained weights of each trial, per study: another study of the same space never mixes in."""
        return self.results / "checkpoints" / self.study_name(space)


def finished(study: optuna.Study) -> int:
    """Finished trials: a failed trial that was retried counts once (by its retry), and a trial the
    user interrupted does not count (a rerun replaces it)."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.system_attrs["failed_trial"] for t in trials if "failed_trial" in t.system_attrs}
    return sum(t.state in FINISHED and not (t.state == TrialState.FAIL and (
        t.number in retried or t.user_attrs.get(REASON) == INTERRUPTED)) for t in trials)


def _misfit(space: SearchSpace, key: str, message: str, hint: str) -> UserError:
    line, col = locate(load_yaml(space.file), (key,))
    return UserError([Diagnostic(space.file, line, col, message, hint)])


def check_fit(space: SearchSpace, dataset: Any) -> None:
    """The space's ``input`` and ``output`` must fit the dataset: one located line, before any trial."""
    if space.preprocessing is None and not dataset.stream:
        shape = tuple(dataset.train.x.shape[1:])
        if space.input is not None and space.input.shape != shape:
            raise _misfit(space, "input", f"input {list(space.input.shape)} does not fit dataset '{dataset.name}' "
                                          f"(samples of shape {list(shape)})", f"set input: {list(shape)}")
    expected = None
    if dataset.task == "classification":
        expected = len(dataset.classes)
    elif dataset.task == "regression":
        y = dataset.train.y
        expected = 1 if y.ndim == 1 else int(np.prod(y.shape[1:]))
    if expected is not None and space.output.shape != (expected,):
        raise _misfit(space, "output", f"output {list(space.output.shape)} does not fit dataset '{dataset.name}' "
                                       f"({dataset.task}, {expected} outputs)", f"set output: {expected}")


def _spec_error(run: Run, path: tuple, message: str, hint: str | None = None) -> UserError:
    line, col = locate(load_yaml(run.spec_path), path) if run.spec_path.is_file() else (1, 1)
    return UserError([Diagnostic(str(run.spec_path), line, col, message, hint)])


def preflight(run: Run, space: SearchSpace, dataset: Any) -> None:
    """Mistakes that would fail every trial end the command before the first one, in one located line."""
    from ..space import space_size
    from .objective import Objective

    check_fit(space, dataset)
    if dataset.stream and space.preprocessing is None:
        raise _misfit(space, "sequence", f"dataset '{dataset.name}' is one continuous stream: the space needs a "
                                         "preprocessing section", "add preprocessing: {window: {length: ...}}")
    if run.spec.search.sampler == "grid" and space_size(space).continuous:
        raise _spec_error(run, ("search", "sampler"), "sampler 'grid' needs a space without continuous ranges",
                          "give float ranges a step, or use tpe / random")
    criteria = Criteria(run.spec)
    criteria.aggregation()  # a bad dotted path fails here, not in every trial
    known = Objective(space, run.spec, dataset, run.checkpoints(space), root=run.root).known_metrics()
    for i, criterion in enumerate(run.spec.criteria):
        if criterion.metric.startswith("hw_") and run.spec.hardware is None:
            raise _spec_error(run, ("criteria", i, "metric"), f"metric '{criterion.metric}' is measured on a board",
                              "add a hardware: section (target, inventory) to the spec")
        if known is not None and criterion.metric not in known:
            raise _spec_error(run, ("criteria", i, "metric"), f"no estimator gives metric '{criterion.metric}'",
                              did_you_mean(criterion.metric, sorted(known)) or f"one of {', '.join(sorted(known))}")


def open_study(run: Run, space: SearchSpace) -> optuna.Study:
    """Create (or load) the run's study; the first process does it before any worker starts, so
    workers never race to create the tables or the study."""
    storage = open_storage(run.storage, run.workers)
    return optuna.create_study(study_name=run.study_name(space), storage=storage,
                               directions=Criteria(run.spec).directions(), load_if_exists=True)


def _optimize(run: Run, space: SearchSpace, dataset: Any, callbacks: list[Callable]) -> optuna.Study:
    criteria = Criteria(run.spec)
    study = open_study(run, space)
    # Seeded anew for each run from the trials already there: a resumed study draws new candidates.
    seed = run.spec.search.seed + len(study.trials) + (os.getpid() if run.workers > 1 else 0)
    study.sampler = make_sampler(run.spec.search.sampler, seed, constraints_func(criteria), run.trials)
    objective = Objective(space, run.spec, dataset, run.checkpoints(space), root=run.root)

    def budget(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if finished(study) >= run.trials:
            study.stop()

    remaining = run.trials - finished(study)
    if remaining > 0:
        study.optimize(objective, n_trials=remaining + 2 * run.workers, timeout=run.timeout,
                       callbacks=[budget, *callbacks], catch=(Exception,), gc_after_trial=False)
    return study


def _share_cores(workers: int) -> None:
    """Each worker process trains with its share of the cores (more threads than cores slow all)."""
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


READY_SECONDS = 300


def _start_together(barrier: Any) -> None:
    """Wait until every worker has loaded its data, so all start trials at once (a worker that
    died on the way breaks the barrier and the others go on without it)."""
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=READY_SECONDS)


def _worker(run: Run, barrier: Any) -> None:
    """A worker process: same study, same budget, no progress display."""
    _share_cores(run.workers)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    load_plugins(run.spec_path if run.spec_path.is_file() else None)
    space = space_for(run)
    dataset = load_dataset(run.spec.dataset)
    _start_together(barrier)
    _optimize(run, space, dataset, [])


def hv_stopper(run: Run) -> Callable | None:
    """Study-level early stop: hypervolume not improved by ``hv_threshold`` over ``hv_patience`` trials."""
    patience = run.spec.search.hv_patience
    if not patience:
        return None
    criteria = Criteria(run.spec)

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        if len(done) <= patience:
            return
        points = np.array([t.values for t in done], dtype=float)
        dirs = criteria.directions()
        reference = reference_point(points, dirs)
        before = hypervolume(points[:-patience][pareto_mask(points[:-patience], dirs)], dirs, reference)
        now = hypervolume(points[pareto_mask(points, dirs)], dirs, reference)
        if now <= before * (1 + run.spec.search.hv_threshold):
            study.set_user_attr("stopped", f"hypervolume did not improve over {patience} trials")
            study.stop()

    return callback


def space_for(run: Run) -> SearchSpace:
    """The run's space, restricted to what ``search.target`` runs when the spec names one."""
    space = load_space(run.space_path)
    target = run.spec.search.target
    if target is None:
        return space
    from ..targets import get_target
    from ..targets.restrict import restrict

    space, findings = restrict(space, get_target(target).reflection)
    fatal = [f for f in findings if f.fatal]
    if fatal:
        raise UserError(f"{run.space_path}: target {target} cannot run this space: {fatal[0].message}",
                        hint=f"explorer validate --target {target} {run.space_path}")
    return space


def load_inputs(run: Run) -> tuple[SearchSpace, Any]:
    """The space and the dataset of a run, checked together before any trial (``preflight``)."""
    space = space_for(run)
    dataset = load_dataset(run.spec.dataset)
    preflight(run, space, dataset)
    return space, dataset


def run_search(run: Run, progress: Callable[[optuna.Study], None] | None = None,
               inputs: tuple[SearchSpace, Any] | None = None) -> optuna.Study:
    """Run (or resume) the study of one space; extra workers are separate processes on the same storage."""
    space, dataset = inputs or load_inputs(run)
    run.results.mkdir(parents=True, exist_ok=True)
    _share_cores(run.workers)
    context = multiprocessing.get_context("spawn")
    open_study(run, space)
    barrier = context.Barrier(run.workers)
    helpers = [context.Process(target=_worker, args=(run, barrier)) for _ in range(run.workers - 1)]
    for process in helpers:
        process.start()
    callbacks = [c for c in (hv_stopper(run), (lambda s, t: progress(s)) if progress else None) if c]
    try:
        if helpers:
            _start_together(barrier)
        study = _optimize(run, space, dataset, callbacks)
    finally:
        for process in helpers:
            process.join()
    return study


def load_study(run: Run) -> tuple[optuna.Study, SearchSpace]:
    space = space_for(run)
    storage = open_storage(run.storage)
    try:
        return optuna.load_study(study_name=run.study_name(space), storage=storage), space
    except KeyError:
        raise UserError(f"no study for {run.space_path} in {shown(run.storage)}", hint="run `explorer search` first") from None


def make_run(spec: Spec, spec_path: Path, space: Path, trials: int | None, timeout: float | None,
             storage: str | None, workers: int | None) -> Run:
    root = spec_path.parent
    results = root / "results" / space.stem
    workers = workers or spec.search.workers
    url = storage or spec.storage or default_url(results)
    check_workers(url, workers)
    return Run(spec=spec, spec_path=spec_path, space_path=space, trials=trials or spec.search.trials,
               timeout=timeout if timeout is not None else spec.search.timeout,
               storage=url, workers=workers)
