"""Targets on sampled models: the engine's SRAM estimate vs TFLite Micro's real arena, the C
generator's static arena and flash vs TFLM's, and export + build time per target.

Run: .venv/bin/python benchmarks/targets.py [--models 50] [--seed S] [--timing 3]
Models are sampled (random weights, random inputs) from the Pico-sized test spaces: 1-D conv,
2-D conv and MLP. For each: litert-torch int8 conversion and the tflite-micro interpreter's
arena (``print_allocations``), ``explorer.evaluate.arena.arena_estimate`` (goal: within +-10 %
for at least 95 % of models), memory.py's activation peak (the layer-wise lower bound the search
uses by default), and the C generator's int8 arena and Cortex-M33 flash image. Then export +
build times of ``--timing`` models per target (host, rpi, pico, fpga).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from explorer.evaluate import EstimateContext, estimate_all
from explorer.evaluate.arena import arena_estimate
from explorer.targets import build, export, get_target, load_model_dir, mcu
from explorer.targets.cgen import generate
from explorer.targets.litert import convert, tflm_arena_bytes
from explorer.targets.sampled import sampled_model_dirs

SPACES = Path(__file__).resolve().parents[1] / "{{cookiecutter.project}}" / "engine" / "tests" / "spaces"
MEMORY_SPACES = ("litert_conv1d", "litert_conv2d", "litert_mlp")
TIMING_SPACES = {"host": "litert_conv1d", "rpi": "litert_conv1d", "pico": "litert_conv1d", "fpga": "fpga_mlp"}
GOAL_WITHIN = 95.0  # % of models whose arena estimate is within +-10 % of TFLM's


def memory_rows(models: int, seed: int, root: Path) -> list[dict]:
    reflection = get_target("pico").reflection
    per_space = -(-models // len(MEMORY_SPACES))
    rows = []
    for space in MEMORY_SPACES:
        for folder in sampled_model_dirs(SPACES / f"{space}.yaml", per_space, root / space, seed=seed, samples=8,
                                         reflection=reflection):
            if len(rows) == models:
                break
            model = load_model_dir(folder)
            arch = model.architecture
            convert(model, folder / "tflite", quantize="int8")
            tflm = tflm_arena_bytes(folder / "tflite" / "model.tflite")
            facts = generate(model, folder / "c", "int8")
            flash = mcu.compile_for(folder / "c", "cortex-m33")["flash_bytes"]
            peak = estimate_all(EstimateContext(arch), ["memory"])["memory"]["activations_int8"]
            rows.append({"space": space, "tflm": tflm, "estimate": arena_estimate(arch, "int8"), "peak": peak,
                         "c_arena": facts["arena_bytes"], "c_flash": flash,
                         "tflite_bytes": (folder / "tflite" / "model.tflite").stat().st_size})
    return rows


def timing_rows(count: int, seed: int, root: Path) -> list[tuple[str, float, float]]:
    rows = []
    for target, space in TIMING_SPACES.items():
        reflection = get_target(target).reflection
        folders = sampled_model_dirs(SPACES / f"{space}.yaml", count, root / f"t-{target}", seed=seed, samples=8,
                                     reflection=reflection)
        exports, builds = [], []
        for folder in folders:
            art = root / f"art-{target}" / folder.name
            started = time.perf_counter()
            export(target, folder, art, {})
            exports.append(time.perf_counter() - started)
            started = time.perf_counter()
            build(art, "native")
            builds.append(time.perf_counter() - started)
        rows.append((target, statistics.median(exports), statistics.median(builds)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=50, help="sampled models for the memory figures")
    parser.add_argument("--timing", type=int, default=3, help="models per target for export/build times")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        started = time.perf_counter()
        rows = memory_rows(args.models, args.seed, root)
        memory_seconds = time.perf_counter() - started
        timings = timing_rows(args.timing, args.seed, root)

    tflm = np.array([r["tflm"] for r in rows], dtype=float)

    def within(values: list[float]) -> float:
        return 100.0 * float(np.mean(np.abs(np.array(values) / tflm - 1) <= 0.10))

    def ratio(key: str) -> float:
        return float(np.median([r[key] / r["tflm"] for r in rows]))

    estimate = [r["estimate"] for r in rows]
    print(f"{len(rows)} int8 models sampled from {', '.join(MEMORY_SPACES)} (seed {args.seed}); "
          f"conversion + TFLM + C generation + M33 link: {memory_seconds:.0f} s on {os.cpu_count()} CPUs")
    print(f"{'figure':58} {'value':>10}  unit  {'goal':>6}  ratio")
    print(f"{'arena_estimate within +-10 % of the TFLM arena':58} {within(estimate):10.1f}  %     "
          f"{'>=' + format(GOAL_WITHIN, 'g'):>6}  {within(estimate) / GOAL_WITHIN:.2f}")
    print(f"{'arena_estimate / TFLM arena, median':58} {ratio('estimate'):10.3f}  x     {'-':>6}  -")
    print(f"{'arena_estimate / TFLM arena, worst':58} "
          f"{max(abs(r['estimate'] / r['tflm'] - 1) for r in rows) + 1:10.3f}  x     {'-':>6}  -")
    print(f"{'memory.py activations_int8 within +-10 % of TFLM':58} {within([r['peak'] for r in rows]):10.1f}  %     "
          f"{'-':>6}  -")
    print(f"{'memory.py activations_int8 / TFLM arena, median':58} {ratio('peak'):10.3f}  x     {'-':>6}  -")
    print(f"{'C generator static arena / TFLM arena, median':58} {ratio('c_arena'):10.3f}  x     {'-':>6}  -")
    print(f"{'TFLM arena, median':58} {statistics.median(tflm):10.0f}  B     {'-':>6}  -")
    print(f"{'C generator static arena, median':58} {statistics.median(r['c_arena'] for r in rows):10.0f}  B     "
          f"{'-':>6}  -")
    print(f"{'C firmware flash (M33 image, model + protocol), median':58} "
          f"{statistics.median(r['c_flash'] for r in rows):10.0f}  B     {'-':>6}  -")
    print(f"{'.tflite file (weights + graph; TFLM runtime not included)':58} "
          f"{statistics.median(r['tflite_bytes'] for r in rows):10.0f}  B     {'-':>6}  -")
    for target, export_s, build_s in timings:
        print(f"{f'{target}: export / build per model, median':58} {export_s:6.2f}/{build_s:<5.2f} s     {'-':>6}  -")


if __name__ == "__main__":
    main()
