"""DSL speed: validate time per file, sample+build time per candidate on the paper's Listing 3.

Run: .venv/bin/python benchmarks/dsl.py   (prints one table; goals from issue #3)
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import optuna
import torch

from explorer.build import build
from explorer.space import check_file, load_space, sample

ENGINE = Path(__file__).resolve().parents[1] / "{{cookiecutter.project}}" / "engine"
LISTING3 = ENGINE / "tests" / "spaces" / "listing3.yaml"
FILES = [LISTING3, *sorted((ENGINE / "tests" / "corpus" / "good").glob("*.yaml"))]


def ms(seconds: float) -> float:
    return seconds * 1e3


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    validate = [statistics.median(timed(lambda f=f: check_file(f), 20)) for f in FILES]
    rows.append(("validate, in process (median over files)", ms(statistics.median(validate)), "ms", None))
    cli = timed(lambda: subprocess.run([sys.executable, "-m", "explorer.cli", "validate", str(LISTING3)],
                                       capture_output=True, check=True), 5)
    rows.append(("validate, CLI incl. start-up (median)", ms(statistics.median(cli)), "ms", 1000.0))

    space = load_space(LISTING3)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    samples, totals = [], []
    for _ in range(500):
        start = time.perf_counter()
        trial = study.ask()
        cand = sample(space, trial)
        mid = time.perf_counter()
        build(cand.architecture)
        end = time.perf_counter()
        study.tell(trial, 0.0)
        samples.append(mid - start)
        totals.append(end - start)
    totals.sort()
    rows.append(("sample (ask + suggest + shapes), median", ms(statistics.median(samples)), "ms", None))
    rows.append(("sample + build, median", ms(statistics.median(totals)), "ms", 1.5))
    rows.append(("sample + build, p95", ms(totals[int(0.95 * len(totals))]), "ms", None))

    print(f"{'figure':45} {'value':>9}  unit  {'goal':>6}  ratio")
    for name, value, unit, goal in rows:
        ratio = f"{value / goal:.2f}" if goal else "-"
        print(f"{name:45} {value:9.3f}  {unit:4}  {goal if goal else '-':>6}  {ratio}")


if __name__ == "__main__":
    main()
