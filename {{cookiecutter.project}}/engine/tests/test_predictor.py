"""Latency predictor: calibration writes a file that loads back without refitting, unseen ops fall
back with a flag, predictions are positive and monotone, and the estimator explains what is
missing. Behaviour only: accuracy on this machine is measured by benchmarks/latency.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.errors import UserError
from explorer.evaluate import DEFAULT_ESTIMATORS, EstimateContext, estimate_all
from explorer.evaluate.calibrate import Timer, builtin_spaces, calibrate, run_calibrate
from explorer.evaluate.predictor import FEATURES, LatencyPredictor, PredictedLatencyEstimator, predictor_path
from explorer.ops import DEFAULT_REGISTRY, Tensor
from explorer.space import check_file
from explorer.space.architecture import Architecture, Layer

MLP = """
input: 24
output: 4
sequence:
  - block: hidden
    op_candidates: linear
    linear: {width: [8, 16, 32, 64], activation: [identity, relu]}
    type_repeat: {type: vary_all, depth: [1, 2]}
  - {block: head, op_candidates: linear}
"""
FAST = Timer(warmup=1, repeats=5, rounds=1)


def space(text: str = MLP):
    compiled, diagnostics = check_file("mlp.yaml", text=text)
    assert compiled is not None, diagnostics
    return compiled


def single(op: str, x: Tensor, params: dict) -> Architecture:
    builder = DEFAULT_REGISTRY[op]
    full = builder.with_defaults(params)
    y = builder.infer(x, full)
    return Architecture(x, y, (Layer(op, full, op, x, y),), "test")


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("predictor") / "latency-predictor-host.json"
    report = calibrate("host", {"mlp": space()}, n_models=12, seed=0, out=out, holdout=4, timer=FAST)
    return out, report


def test_calibration_writes_a_versioned_file_that_loads_back_without_refitting(calibrated):
    out, report = calibrated
    data = json.loads(out.read_text())
    assert data["format"] == 1 and data["features"] == list(FEATURES)
    assert {"cpu", "threads", "torch"} <= data["host"].keys() and data["host"]["threads"] == 1
    assert any(kind.startswith("linear/vector") for kind in data["ops"]) and "linear" in data["ops"]
    assert data["overhead_ms"] >= 0 and all(c >= 0 for cs in data["ops"].values() for c in cs)
    assert report["models"] == 12 and report["holdout"]["n"] == 4 and report["out"] == str(out)
    assert 0 <= report["holdout"]["within_10pct"] <= 1 and report["holdout"]["median_ape"] >= 0
    loaded = LatencyPredictor.load(out)
    assert loaded.to_json() == data  # the same numbers, nothing refitted
    arch = single("linear", Tensor("vector", (24,)), {"width": 16, "activation": "relu"})
    assert loaded.predict(arch).ms == LatencyPredictor.from_json(data).predict(arch).ms


def test_predictions_are_positive_and_monotone_in_width(calibrated):
    predictor = LatencyPredictor.load(calibrated[0])
    x = Tensor("vector", (24,))
    for activation in ("identity", "relu"):
        ms = [predictor.predict(single("linear", x, {"width": w, "activation": activation})).ms
              for w in (8, 16, 32, 64, 256, 1024)]
        assert ms[0] > 0 and ms == sorted(ms)


def test_an_op_never_calibrated_falls_back_to_the_global_model_with_a_flag(calibrated):
    estimator = PredictedLatencyEstimator(calibrated[0])
    seen = estimator.estimate(EstimateContext(single("linear", Tensor("vector", (24,)), {"width": 8})))
    assert seen["latency_predicted"] > 0 and seen["latency_predicted_fallback"] == 0.0
    gru = single("gru", Tensor("steps", (50, 6)), {"hidden_size": 16})
    unseen = estimator.estimate(EstimateContext(gru))
    assert unseen["latency_predicted"] > 0 and unseen["latency_predicted_fallback"] == 1.0
    assert LatencyPredictor.load(calibrated[0]).predict(gru).unseen == ["gru"]


def test_without_a_predictor_file_the_estimator_says_to_calibrate(tmp_path):
    arch = single("linear", Tensor("vector", (24,)), {"width": 8})
    with pytest.raises(UserError, match=r"no latency predictor at .*explorer calibrate --target host"):
        PredictedLatencyEstimator(tmp_path / "missing.json").estimate(EstimateContext(arch))
    with pytest.raises(UserError, match="explorer calibrate --target host"):
        estimate_all(EstimateContext(arch), ["predicted_latency"])  # no params.yaml, no results/
    (tmp_path / "bad.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(UserError, match="format 99"):
        LatencyPredictor.load(tmp_path / "bad.json")


def test_the_default_estimator_finds_the_file_under_the_experiment_root(calibrated, tmp_path, monkeypatch):
    (tmp_path / "params.yaml").write_text("spaces: []\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert predictor_path() == tmp_path / "results" / "latency-predictor-host.json"
    predictor_path().parent.mkdir()
    predictor_path().write_text(calibrated[0].read_text())
    arch = single("linear", Tensor("vector", (24,)), {"width": 8})
    result = estimate_all(EstimateContext(arch), ["predicted_latency"])["predicted_latency"]
    assert result["latency_predicted"] > 0
    assert DEFAULT_ESTIMATORS["predicted_latency"].cost == "static"


def test_run_calibrate_reads_the_spec_spaces_and_writes_under_results(tmp_path, monkeypatch):
    (tmp_path / "mlp.yaml").write_text(MLP)
    (tmp_path / "params.yaml").write_text("spaces: [mlp.yaml]\n")
    monkeypatch.setattr("explorer.evaluate.calibrate.Timer", lambda: FAST)
    report = run_calibrate("host", n_models=4, seed=1, holdout=0)
    assert report["out"] == str(tmp_path / "results" / "latency-predictor-host.json")
    assert json.loads(Path(report["out"]).read_text())["calibration"]["spaces"] == ["mlp.yaml"]


def test_only_the_host_target_is_implemented(tmp_path):
    with pytest.raises(UserError, match=r"target 'pico'.*hardware-in-the-loop"):
        run_calibrate("pico", out=tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_builtin_spaces_cover_every_builtin_op():
    ops = set().union(*(s.primitive_ops() for s in builtin_spaces().values()))
    builtin = {name for name, op in DEFAULT_REGISTRY.searchable().items()
               if type(op).__module__ == "explorer.ops.builtin"}
    assert builtin <= ops and len(builtin) >= 16


def test_a_search_runs_the_predictor_only_when_a_criterion_asks_for_it(tmp_path):
    from explorer.search.objective import Objective
    from explorer.spec import Spec

    def stages(*metrics: str) -> tuple[list[str], list[str]]:
        spec = Spec.model_validate({"criteria": [{"metric": m} for m in metrics]})
        objective = Objective(space(), spec, dataset=None, checkpoints=tmp_path)
        return objective.static, objective.measured

    assert stages("macs") == (["params", "macs", "memory"], [])
    assert stages("latency_predicted") == (["params", "macs", "memory", "predicted_latency"], [])
    assert stages("latency_median")[1] == ["latency"]


def test_the_predictor_needs_no_torch(calibrated):
    arch = single("linear", Tensor("vector", (24,)), {"width": 8})
    code = ("import sys\nfrom explorer.evaluate import EstimateContext\n"
            "from explorer.evaluate.predictor import PredictedLatencyEstimator\n"
            "from explorer.space.architecture import Architecture\n"
            f"arch = Architecture.loads({arch.dumps()!r})\n"
            f"estimator = PredictedLatencyEstimator({str(calibrated[0])!r})\n"
            "assert estimator.estimate(EstimateContext(arch))['latency_predicted'] > 0\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
