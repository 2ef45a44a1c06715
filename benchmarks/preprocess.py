"""Pre-processing speed: time per step on the default dataset, and the cache hit rate of apply_to_dataset.

Run: .venv/bin/python benchmarks/preprocess.py            (full: 50 repeats per step, 50-trial samples)
     .venv/bin/python benchmarks/preprocess.py --quick    (10 repeats instead of 50; a few seconds)
Prints one table (figure, value, unit, goal, ratio; no goal was set for these figures) and the runtime.

* Each step alone, as one ``apply_to_dataset`` miss does it: fit on the training split, transform train,
  validation and test. On basicmotions (samples [N, 6, 100]); event_window and a stream window on
  basicmotions-stream (one [6, T] recording per split). Median ms over the repeats.
* The cache: 50 trials of SPACE below (filter on/off, downsample off/2/4, window 32/64, normalize
  zscore/robust) drawn with Optuna's RandomSampler and TPESampler through
  ``sample(space, trial, data=Shape(6, 100, False))``; every feasible candidate's pipeline goes through
  ``apply_to_dataset`` as in the Objective. Hit rate from ``apply_to_dataset.hits / misses``, next to the
  best an unbounded cache could do (1 - distinct pipelines / calls). TPE is told the candidate's static
  MACs (pre-processing included, minimised), a stand-in for a search that converges.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import optuna

from explorer.data import load_dataset
from explorer.evaluate import EstimateContext, estimate_all
from explorer.preprocess import Pipeline, Shape, Signal, apply_to_dataset
from explorer.preprocess import pipeline as pipeline_module
from explorer.space import load_space, sample

SPACE = """\
output: 4
preprocessing:
  filter: {enabled: [true, false], type: lowpass, order: 4, cutoff: 0.2}
  downsample: {enabled: [true, false], factor: [2, 4]}
  window: {length: [32, 64]}
  normalize: {method: [zscore, robust]}
sequence:
  - block: conv
    op_candidates: conv1d
    conv1d: {out_channels: 8, kernel_size: [3, 5]}
  - block: head
    op_candidates: linear
"""

STEPS = [  # figure, dataset, pipeline
    ("filter (lowpass, order 4)", "basicmotions", [("filter", {"type": "lowpass", "order": 4, "cutoff": 0.2})]),
    ("downsample (factor 2)", "basicmotions", [("downsample", {"factor": 2})]),
    ("window (length 32, samples)", "basicmotions", [("window", {"length": 32, "stride": None})]),
    ("window (length 64, stride 32, stream)", "basicmotions-stream", [("window", {"length": 64, "stride": 32})]),
    ("event_window (energy > 1 sd, stream)", "basicmotions-stream",
     [("event_window", {"detector": "energy", "threshold": 1.0, "refractory": 100, "before": 10, "after": 90})]),
    ("normalize (zscore)", "basicmotions", [("normalize", {"method": "zscore"})]),
    ("normalize (robust)", "basicmotions", [("normalize", {"method": "robust"})]),
]


def ms(seconds: float) -> float:
    return seconds * 1e3


def run_steps(pipeline: Pipeline, dataset) -> None:
    """What one cache miss does: fit on train, transform every split."""
    _, states = pipeline.fit(Signal(dataset.train.x, dataset.train.y, dataset.stream))
    for split in (dataset.val, dataset.test):
        pipeline.transform(Signal(split.x, split.y, dataset.stream), states)


def cache_run(space, dataset, sampler: optuna.samplers.BaseSampler, trials: int) -> dict:
    pipeline_module._CACHE.clear()  # each sampler starts cold (the cache is per process)
    hits, misses = apply_to_dataset.hits, apply_to_dataset.misses
    study = optuna.create_study(sampler=sampler)
    shape = Shape(dataset.train.x.shape[1], dataset.train.x.shape[2], False)
    keys, times = [], {"hit": [], "miss": []}
    for _ in range(trials):
        trial = study.ask()
        candidate = sample(space, trial, data=shape)
        if candidate.status != "ok":
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        pipeline = Pipeline.from_json(candidate.architecture.preprocessing)
        keys.append(pipeline.key)
        before = apply_to_dataset.hits
        start = time.perf_counter()
        apply_to_dataset(pipeline, dataset)
        times["hit" if apply_to_dataset.hits > before else "miss"].append(time.perf_counter() - start)
        context = EstimateContext(candidate.architecture, pipeline=pipeline.cost(shape))
        study.tell(trial, estimate_all(context, ["macs"])["macs"]["macs"])
    calls = len(keys)
    return {"calls": calls, "hits": apply_to_dataset.hits - hits, "misses": apply_to_dataset.misses - misses,
            "distinct": len(set(keys)), "times": times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 repeats per step instead of 50 (a few seconds)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    repeats, trials = (10, 50) if args.quick else (50, 50)
    began = time.perf_counter()
    datasets = {name: load_dataset(name) for name in ("basicmotions", "basicmotions-stream")}
    rows = []
    for figure, name, steps in STEPS:
        dataset, pipeline = datasets[name], Pipeline(tuple(steps))
        run_steps(pipeline, dataset)  # warm-up: scipy imports, first-call allocations
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run_steps(pipeline, dataset)
            times.append(time.perf_counter() - start)
        size = "x".join(map(str, dataset.train.x.shape))
        rows.append((f"{figure}, train {size} + val + test", ms(statistics.median(times)), "ms", None))

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "preprocess.yaml"
        path.write_text(SPACE)
        space = load_space(path)
    dataset = datasets["basicmotions"]
    dataset.fingerprint  # noqa: B018  (computed once per dataset; not part of a lookup's cost)
    for label, sampler in (("random", optuna.samplers.RandomSampler(seed=0)),
                           ("TPE", optuna.samplers.TPESampler(seed=0))):
        result = cache_run(space, dataset, sampler, trials)
        calls = result["calls"]
        rows.append((f"cache hit rate, {label}, {trials} trials ({calls} feasible calls)",
                     100 * result["hits"] / max(calls, 1), "%", None))
        rows.append((f"  unbounded-cache bound ({result['distinct']} distinct pipelines)",
                     100 * (1 - result["distinct"] / max(calls, 1)), "%", None))
        for kind in ("miss", "hit"):
            if result["times"][kind]:
                rows.append((f"  apply_to_dataset {kind}, median of {len(result['times'][kind])}",
                             ms(statistics.median(result["times"][kind])), "ms", None))

    print(f"{'figure':66} {'value':>9}  unit  {'goal':>6}  ratio")
    for name, value, unit, goal in rows:
        ratio = f"{value / goal:.2f}" if goal else "-"
        print(f"{name:66} {value:9.3f}  {unit:4}  {goal if goal else '-':>6}  {ratio}")
    load = os.getloadavg()
    print(f"\nmode: {'quick' if args.quick else 'full'}; runtime {time.perf_counter() - began:.1f} s "
          f"(dataset loading included); load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on "
          f"{os.cpu_count()} cores")


if __name__ == "__main__":
    main()
