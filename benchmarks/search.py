"""Search engine: per-trial overhead, staged evaluation, PostgreSQL workers, search quality.

Run: .venv/bin/python benchmarks/search.py            full budgets (7 min on 2 cores under load 3-5)
     .venv/bin/python benchmarks/search.py --quick    every budget shrunk (CI's slow tier: 1-2 min, < 4 min)
Prints one table (figure, value, unit, goal, ratio = value / goal, command) and the runtimes.
Each figure group alone (add --quick for the small budget):
  .venv/bin/python benchmarks/search.py --only overhead   sample + build + static estimators per trial on the
        paper's Listing 3, RandomSampler, Optuna in-memory storage (goal <= 5 ms) and the same loop through the
        default file storage (SQLite WAL, explorer.search.storage.open_storage(default_url(...)), ask/tell
        included): the storage's share; plus the real Objective per trial with training stubbed out (SQLite).
  .venv/bin/python benchmarks/search.py --only staged     cnn1d.yaml on basicmotions, hard constraint
        params_total <= the median of the benchmark's own candidates (so half violate): the real Objective
        (violating candidates never train) against a baseline in this file that trains every candidate and
        checks the constraint afterwards, same sampler and seed, same trials; pairs run in alternating order,
        the median of their ratios is the figure. Goal: staged <= 55 % of unstaged.
  .venv/bin/python benchmarks/search.py --only workers    run_search with --workers 1 and 2 on a PostgreSQL
        server started with engine/tests/services.py:start_postgres, a training-bound space (two 32-channel
        conv1d on basicmotions, many epochs), each run in a fresh process with torch threads = 1 in the main
        process too (the runner sets it only in its helper workers), runs interleaved (full: median of 2).
        Goal: throughput ratio >= 1.8. The short --quick run is dominated by the helper's start-up (spawn,
        imports, dataset), shown apart with the ratio once both workers run. Full mode adds a diagnostic run
        with the main process left at torch's default thread count, as `explorer search --workers 2` does.
  .venv/bin/python benchmarks/search.py --only quality    hypervolume (accuracy max, MACs min) after 50 trials
        of random, TPE and NSGA-II on cnn1d.yaml / basicmotions, 3 seeds, mean +- std, against the fixed
        reference point (accuracy 0, MACs 282,112 = the space's maximum over all 584 candidates, re-checked
        with --check-reference); shown as the fraction of the reference box [0, 1] x [0, 282,112].
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import optuna
import torch

from explorer.build import build
from explorer.data import load_dataset
from explorer.evaluate import DEFAULT_ESTIMATORS, EstimateContext, estimate_all
from explorer.search import Criteria, hypervolume, make_run, pareto_mask, run_search
from explorer.search import objective as objective_module
from explorer.search.objective import Objective, constraints_func, flatten
from explorer.search.samplers import make_sampler
from explorer.search.storage import default_url, open_storage
from explorer.space import load_space, sample
from explorer.spec import Spec
from explorer.train import TrainResult, train

HERE = Path(__file__).resolve()
ENGINE = HERE.parents[1] / "{{cookiecutter.project}}" / "engine"
LISTING3 = ENGINE / "tests" / "spaces" / "listing3.yaml"
TEMPLATE = HERE.parents[1]
CNN1D = TEMPLATE / "{{cookiecutter.project}}" / "search_spaces" / "cnn1d.yaml"
MACS_REF = 282_112  # max MACs of cnn1d.yaml (all 584 candidates; --check-reference enumerates them again)
# The static estimators every trial runs (params, macs, memory); those that name the metrics they serve
# (``requested_by``, e.g. predicted latency, which needs a calibration file) run only when a criterion asks.
STATIC = [e.name for e in DEFAULT_ESTIMATORS.by_cost() if e.cost == "static" and not getattr(e, "requested_by", ())]

# Training-bound and nearly constant in cost, so the worker figure measures parallelism, not sampling luck.
WIDE = """\
input: [6, 100]
output: 4
sequence:
  - {block: conv1, op_candidates: conv1d}
  - {block: conv2, op_candidates: conv1d}
  - {block: head, op_candidates: linear}
default_op_params:
  conv1d: {kernel_size: [5, 7], out_channels: 32}
"""

BUDGETS = {  # full, quick
    "overhead_trials": (300, 100), "overhead_sqlite_trials": (300, 100), "objective_trials": (60, 30),
    "staged_trials": (40, 16), "staged_epochs": (50, 50), "staged_repeats": (5, 5),
    "worker_trials": (32, 12), "worker_epochs": (250, 200), "worker_repeats": (2, 1),
    "quality_trials": (50, 20), "quality_seeds": (3, 2), "quality_epochs": (30, 10),
}


def ms(seconds: float) -> float:
    return seconds * 1e3


class Table:
    def __init__(self, quick: bool):
        self.rows: list[tuple] = []
        self.suffix = " --quick" if quick else ""

    def add(self, figure: str, value: float | str, unit: str, goal: tuple[str, float] | str | None, only: str,
            ratio: float | None = None) -> None:
        self.rows.append((figure, value, unit, goal, ratio, f"--only {only}{self.suffix}"))

    def print(self) -> None:
        print(f"{'figure':58} {'value':>15}  {'unit':5} {'goal':>9}  {'ratio':>5}  command (benchmarks/search.py)")
        for figure, value, unit, goal, ratio, command in self.rows:
            text = value if isinstance(value, str) else f"{value:15.3f}" if abs(value) < 1e4 else f"{value:15.0f}"
            if ratio is None and isinstance(goal, tuple) and not isinstance(value, str):
                ratio = value / goal[1]
            shown = goal if isinstance(goal, str) else f"{goal[0]} {goal[1]:g}" if goal else "-"
            print(f"{figure:58} {text:>15}  {unit:5} {shown:>9}  {'-' if ratio is None else f'{ratio:.2f}':>5}  "
                  f"{command}")


def default_space():
    """cnn1d.yaml rendered for basicmotions: the template's spaces may hold Jinja filled in at bake time."""
    from jinja2 import Environment, StrictUndefined

    context = {**json.loads((TEMPLATE / "cookiecutter.json").read_text()), "dataset": "basicmotions"}
    environment = Environment(undefined=StrictUndefined, keep_trailing_newline=True)
    environment.filters["tojson"] = json.dumps
    folder = Path(tempfile.mkdtemp(prefix="explorer-bench-space-"))
    path = folder / CNN1D.name
    path.write_text(environment.from_string(CNN1D.read_text()).render(cookiecutter=context))
    try:
        return load_space(path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------- 1. engine overhead per trial


def overhead_loop(n: int, storage: optuna.storages.BaseStorage | None) -> dict[str, list[float]]:
    """ask, sample, static estimators, build, tell: every stage of a trial but training."""
    space = load_space(LISTING3)
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0),
                                directions=["maximize", "minimize"])
    times: dict[str, list[float]] = {k: [] for k in ("total", "ask+tell", "sample", "static", "build")}
    for _ in range(n):
        t0 = time.perf_counter()
        trial = study.ask()
        t1 = time.perf_counter()
        candidate = sample(space, trial)
        assert candidate.status == "ok", candidate.reason
        t2 = time.perf_counter()
        values = flatten(estimate_all(EstimateContext(candidate.architecture), STATIC))
        t3 = time.perf_counter()
        build(candidate.architecture)
        t4 = time.perf_counter()
        study.tell(trial, [0.0, values["macs"]])
        t5 = time.perf_counter()
        for key, value in (("total", t5 - t0), ("ask+tell", t1 - t0 + t5 - t4), ("sample", t2 - t1),
                           ("static", t3 - t2), ("build", t4 - t3)):
            times[key].append(value)
    return times


@contextlib.contextmanager
def synchronous_normal():
    """Every SQLite connection opened inside the block gets ``PRAGMA synchronous=NORMAL``."""
    import sqlalchemy

    def pragma(connection, record):
        if type(connection).__module__.startswith("sqlite3"):
            connection.execute("PRAGMA synchronous=NORMAL")

    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "connect", pragma)
    try:
        yield
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "connect", pragma)


def stub_train(model, dataset, settings, seed=0) -> TrainResult:
    return TrainResult({"loss": 1.0, "accuracy": 0.5, "f1": 0.5}, best_epoch=1, epochs_run=1)


def bench_overhead(table: Table, b: dict, tmp: Path) -> None:
    memory = overhead_loop(b["overhead_trials"], None)
    med = {k: statistics.median(v) for k, v in memory.items()}
    table.add(f"overhead/trial, in-memory (median of {b['overhead_trials']})", ms(med["total"]), "ms",
              ("<=", 5.0), "overhead")
    for key in ("sample", "static", "build", "ask+tell"):
        table.add(f"  of which {key}", ms(med[key]), "ms", None, "overhead")
    url = default_url(tmp / "overhead")
    sqlite = overhead_loop(b["overhead_sqlite_trials"], open_storage(url))
    total = statistics.median(sqlite["total"])
    table.add(f"overhead/trial, SQLite WAL (median of {b['overhead_sqlite_trials']})", ms(total), "ms", None,
              "overhead")
    table.add("  storage share (1 - in-memory / SQLite)", 100 * (1 - med["total"] / total), "%", None, "overhead")
    table.add("  of which ask+tell (SQLite)", ms(statistics.median(sqlite["ask+tell"])), "ms", None, "overhead")
    table.add("  of which sample incl. suggest writes (SQLite)", ms(statistics.median(sqlite["sample"])), "ms", None,
              "overhead")
    with synchronous_normal():  # what the fsync per commit costs: WAL with synchronous=NORMAL skips it
        relaxed = statistics.median(overhead_loop(b["overhead_sqlite_trials"],
                                                  open_storage(default_url(tmp / "relaxed")))["total"])
    table.add("  diagnostic: SQLite WAL with PRAGMA synchronous=NORMAL", ms(relaxed), "ms", None, "overhead")

    # The real Objective: user attributes per stage, heartbeat thread, checkpoint file; training stubbed out.
    spec = Spec()
    storage = open_storage(default_url(tmp / "objective"))
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0),
                                directions=Criteria(spec).directions())
    objective = Objective(load_space(LISTING3), spec, None, tmp / "objective" / "checkpoints")
    durations = []

    def timed(trial: optuna.Trial):
        start = time.perf_counter()
        try:
            return objective(trial)
        finally:
            durations.append(time.perf_counter() - start)

    with mock.patch.object(objective_module, "train", stub_train):
        start = time.perf_counter()
        study.optimize(timed, n_trials=b["objective_trials"])
        wall = time.perf_counter() - start
    shutil.rmtree(tmp / "objective" / "checkpoints", ignore_errors=True)
    table.add(f"real Objective/trial, train stubbed, SQLite (median of {b['objective_trials']})",
              ms(statistics.median(durations)), "ms", None, "overhead")
    table.add("  incl. optimize's ask/tell/heartbeat (wall / trials)", ms(wall / b["objective_trials"]), "ms", None,
              "overhead")


# ---------------------------------------------------------------------- 2. staged vs unstaged


def staged_spec(epochs: int, limit: float) -> Spec:
    return Spec.model_validate({
        "dataset": "basicmotions", "search": {"sampler": "random", "seed": 0},
        "train": {"epochs": epochs, "patience": None},
        "criteria": [{"metric": "accuracy", "direction": "maximize"}, {"metric": "macs"},
                     {"metric": "params_total", "kind": "hard", "limit": limit}]})


def unstaged(space, spec: Spec, dataset, n: int, seed: int) -> optuna.Study:
    """The baseline: train every candidate, check the hard constraint afterwards."""
    criteria = Criteria(spec)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed), directions=criteria.directions())
    for _ in range(n):
        trial = study.ask()
        candidate = sample(space, trial)
        if candidate.status != "ok":
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        context = EstimateContext(candidate.architecture)
        values = flatten(estimate_all(context, STATIC))
        result = train(context.built_model(), dataset, spec.train, seed=spec.search.seed + trial.number)
        values.update(result.val)
        if criteria.first_violation(values) is not None:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, criteria.values(values))
    return study


def bench_staged(table: Table, b: dict, tmp: Path) -> None:
    n, seed = b["staged_trials"], 0
    space, dataset = default_space(), load_dataset("basicmotions")
    dry = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    params = []
    for _ in range(n):  # the same draws the runs below make: the limit is their median
        candidate = sample(space, dry.ask())
        params.append(flatten(estimate_all(EstimateContext(candidate.architecture), ["params"]))["params_total"])
    limit = float(np.median(params))
    spec = staged_spec(b["staged_epochs"], limit)
    train(build(sample(space, dry.ask()).architecture), dataset, spec.train)  # warm torch up for both runs

    walls: dict[str, list[float]] = {"unstaged": [], "staged": []}
    for repeat in range(b["staged_repeats"]):  # pairs in alternating order, so drifting machine load cancels
        for kind in ("unstaged", "staged") if repeat % 2 == 0 else ("staged", "unstaged"):
            start = time.perf_counter()
            if kind == "unstaged":
                baseline = unstaged(space, spec, dataset, n, seed)
            else:
                study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed),
                                            directions=Criteria(spec).directions())
                study.optimize(Objective(space, spec, dataset, tmp / "staged" / "checkpoints"), n_trials=n)
            walls[kind].append(time.perf_counter() - start)
        assert [t.params for t in study.trials] == [t.params for t in baseline.trials], "the runs drew other trials"
    t_unstaged, t_staged = statistics.median(walls["unstaged"]), statistics.median(walls["staged"])
    ratio = statistics.median(s / u for s, u in zip(walls["staged"], walls["unstaged"]))
    rejected = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    table.add(f"staged: violating share (params_total <= {limit:g})", 100 * rejected / n, "%", None, "staged")
    repeats = f"median of {b['staged_repeats']}"
    table.add(f"unstaged wall, {n} trials x {b['staged_epochs']} epochs ({repeats})", t_unstaged, "s", None, "staged")
    table.add(f"staged wall, {n} trials, real Objective ({repeats})", t_staged, "s", None, "staged")
    table.add(f"staged / unstaged wall time (median of the {b['staged_repeats']} pairs)", 100 * ratio, "%",
              ("<=", 55.0), "staged")


# ---------------------------------------------------------------------- 3. PostgreSQL workers


def load_services():
    spec = importlib.util.spec_from_file_location("explorer_test_services", ENGINE / "tests" / "services.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def create_database(url: str, name: str) -> str:
    import psycopg2

    base = url.replace("postgresql+psycopg2://", "postgresql://")
    connection = psycopg2.connect(base)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    connection.close()
    return url.rsplit("/", 1)[0] + f"/{name}"


def worker_run(args: dict) -> None:
    """In a fresh process: one `explorer search --workers N` run through the library, timed."""
    if args["threads"]:
        torch.set_num_threads(args["threads"])
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    root = Path(args["root"])
    spec = Spec.model_validate_json(args["spec"])
    run = make_run(spec, root / "params.yaml", root / "spaces" / "wide.yaml", args["trials"], None, args["url"],
                   args["workers"])
    started = datetime.datetime.now()
    start = time.perf_counter()
    study = run_search(run)
    wall = time.perf_counter() - start
    me = f"{socket.gethostname()}:{os.getpid()}"
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    helper_first = min((t.datetime_start for t in done if t.user_attrs.get("worker") != me), default=None)
    steady = None
    if helper_first is not None:  # trials started once both workers ran, per second of that period
        ended = started + datetime.timedelta(seconds=wall)
        steady = sum(t.datetime_start >= helper_first for t in done) / (ended - helper_first).total_seconds()
    print(json.dumps({
        "wall": wall, "complete": len(done), "workers": len({t.user_attrs.get("worker") for t in done}),
        "helper_start": (helper_first - started).total_seconds() if helper_first else None, "steady": steady,
        "trial_seconds": statistics.median((t.datetime_complete - t.datetime_start).total_seconds() for t in done),
    }))


def bench_workers(table: Table, b: dict, tmp: Path, diagnose: bool) -> None:
    try:
        services = load_services()
        url, stop = services.start_postgres(tmp / "postgres")
    except BaseException as exc:  # services.unavailable() raises pytest's Skipped (a BaseException)
        table.add("workers: PostgreSQL unavailable", f"{type(exc).__name__}", "", None, "workers")
        return
    try:
        root = tmp / "workers"
        (root / "spaces").mkdir(parents=True)
        (root / "spaces" / "wide.yaml").write_text(WIDE)
        spec = Spec.model_validate({"dataset": "basicmotions", "search": {"sampler": "random", "seed": 0},
                                    "train": {"epochs": b["worker_epochs"], "patience": None}})
        (root / "params.yaml").write_text(json.dumps(spec.model_dump(mode="json", exclude_none=True)))
        runs = [("w1", 1, 1), ("w2", 2, 1)] * b["worker_repeats"] + ([("w2default", 2, 0)] if diagnose else [])
        results: dict[str, list[dict]] = {}
        for i, (name, workers, threads) in enumerate(runs):  # interleaved: load changes hit both alike
            args = {"root": str(root), "spec": spec.model_dump_json(), "trials": b["worker_trials"],
                    "url": create_database(url, f"{name}_{i}"), "workers": workers, "threads": threads}
            load = os.getloadavg()[0]
            done = subprocess.run([sys.executable, str(HERE), "--worker-run", json.dumps(args)], capture_output=True,
                                  text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"worker run {name} failed:\n{done.stderr[-3000:]}")
            results.setdefault(name, []).append({**json.loads(done.stdout.strip().splitlines()[-1]), "load": load})

        def median(name: str, key: str) -> float:
            return statistics.median(r[key] for r in results[name])

        def throughput(name: str) -> float:
            return statistics.median(r["complete"] / r["wall"] for r in results[name])

        n, reps = b["worker_trials"], f"median of {b['worker_repeats']}"
        loads = "/".join(f"{r['load']:.1f}" for name in ("w1", "w2") for r in results[name])
        table.add(f"--workers 1: wall for {n} trials x {b['worker_epochs']} epochs ({reps})", median("w1", "wall"),
                  "s", None, "workers")
        table.add(f"--workers 2: wall for {n} trials ({reps})", median("w2", "wall"), "s", None, "workers")
        table.add("  1-min load average before each run (w1.../w2...)", loads, "", None, "workers")
        table.add("  helper start-up (spawn -> its first trial)", median("w2", "helper_start"), "s", None, "workers")
        table.add("  median trial time, 1 worker / 2 workers",
                  f"{median('w1', 'trial_seconds'):.2f} / {median('w2', 'trial_seconds'):.2f}", "s", None, "workers")
        table.add("throughput 2 workers / 1 worker", throughput("w2") / throughput("w1"), "x", (">=", 1.8), "workers")
        table.add("  the same once the helper runs (excl. its start-up)", median("w2", "steady") / throughput("w1"),
                  "x", None, "workers")
        table.add("  ceiling set by the slower trials (2 x trial time w1 / w2)",
                  2 * median("w1", "trial_seconds") / median("w2", "trial_seconds"), "x", None, "workers")
        if "w2default" in results:
            table.add("  diagnostic: 2 workers, main at torch default threads",
                      throughput("w2default") / throughput("w1"), "x", None, "workers")
    finally:
        stop()


# ---------------------------------------------------------------------- 4. search quality


def run_quality(sampler: str, seed: int, b: dict, space, dataset, tmp: Path) -> float:
    spec = Spec.model_validate({"dataset": "basicmotions", "search": {"sampler": sampler, "seed": seed},
                                "train": {"epochs": b["quality_epochs"], "patience": None}})
    criteria = Criteria(spec)
    n = b["quality_trials"]
    study = optuna.create_study(sampler=make_sampler(sampler, seed, constraints_func(criteria), n),
                                directions=criteria.directions())
    objective = Objective(space, spec, dataset, tmp / "quality" / f"{sampler}-{seed}")
    study.optimize(objective, n_trials=n)
    points = np.array([t.values for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE], dtype=float)
    if points[:, 1].max() > MACS_REF:
        raise AssertionError(f"a candidate has {points[:, 1].max():g} MACs, above the reference {MACS_REF}")
    dirs = criteria.directions()
    hv = hypervolume(points[pareto_mask(points, dirs)], dirs, np.array([0.0, MACS_REF]))
    return hv / MACS_REF  # fraction of the box [0, 1] x [0, MACS_REF]


def bench_quality(table: Table, b: dict, tmp: Path) -> None:
    space, dataset = default_space(), load_dataset("basicmotions")
    seeds = list(range(b["quality_seeds"]))
    means = {}
    for sampler in ("random", "tpe", "nsga2"):
        start = time.perf_counter()
        hvs = [run_quality(sampler, seed, b, space, dataset, tmp) for seed in seeds]
        means[sampler] = statistics.mean(hvs)
        std = statistics.stdev(hvs) if len(hvs) > 1 else 0.0
        table.add(f"HV {sampler}, {b['quality_trials']} trials x {len(seeds)} seeds "
                  f"({time.perf_counter() - start:.0f} s)", f"{means[sampler]:.4f} +- {std:.4f}", "frac",
                  None if sampler == "random" else ">= random", "quality", means[sampler] / means["random"])


def check_reference() -> float:
    space = default_space()
    study = optuna.create_study(sampler=optuna.samplers.BruteForceSampler(seed=0))
    best = 0.0

    def objective(trial):
        nonlocal best
        macs = flatten(estimate_all(EstimateContext(sample(space, trial).architecture), ["macs"]))["macs"]
        best = max(best, macs)
        return macs

    study.optimize(objective)
    return best


# ---------------------------------------------------------------------- main

GROUPS = ("overhead", "staged", "workers", "quality")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shrink every budget (CI's slow tier, < 4 min)")
    parser.add_argument("--only", choices=GROUPS, action="append", help="run only these figure groups")
    parser.add_argument("--check-reference", action="store_true", help="enumerate cnn1d.yaml for its max MACs")
    parser.add_argument("--worker-run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    if args.worker_run:
        worker_run(json.loads(args.worker_run))
        return
    if args.check_reference:
        print(f"max MACs of {CNN1D.name}: {check_reference():.0f} (MACS_REF = {MACS_REF})")
        return
    torch.set_num_threads(1)  # the 2-core machine: one thread per process, as the runner gives its helpers
    b = {k: v[1 if args.quick else 0] for k, v in BUDGETS.items()}
    table = Table(args.quick)
    runtimes, loads = {}, {}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="explorer-bench-") as folder:
        tmp = Path(folder)
        for group in args.only or GROUPS:
            start, loads[group] = time.perf_counter(), os.getloadavg()[0]
            if group == "overhead":
                bench_overhead(table, b, tmp)
            elif group == "staged":
                bench_staged(table, b, tmp)
            elif group == "workers":
                bench_workers(table, b, tmp, diagnose=not args.quick)
            else:
                bench_quality(table, b, tmp)
            runtimes[group] = time.perf_counter() - start
    table.print()
    print(f"\nmode: {'quick' if args.quick else 'full'}; runtime (1-min load average at its start) "
          + ", ".join(f"{g} {s:.0f} s ({loads[g]:.1f})" for g, s in runtimes.items())
          + f"; total {time.perf_counter() - began:.0f} s; load average {os.getloadavg()[0]:.2f} "
            f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
