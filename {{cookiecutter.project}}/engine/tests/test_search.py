"""The search runner on real components: staged evaluation, results, resume after SIGKILL,
two workers on a real PostgreSQL server, and a failing candidate that fails only its trial."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import torch

from explorer.cli import main
from explorer.search import Criteria, finished, hypervolume, pareto_mask
from explorer.search.storage import GRACE_SECONDS, open_storage
from explorer.spec import Spec, TrainSettings
from explorer.train import train

SPACE = """\
input: [3, 64]
output: 4
sequence:
  - block: features
    op_candidates: conv-block
    type_repeat: {type: vary_all, depth: [1, 2]}
  - block: head
    op_candidates: linear
default_op_params:
  conv1d: {kernel_size: [3, 5], out_channels: [4, 8], activation: relu}
composites:
  conv-block:
    sequence:
      - {block: conv, op_candidates: conv1d}
      - {block: pool, op_candidates: [maxpool, identity]}
"""

SPEC = """\
dataset: synthetic
spaces: [spaces/net.yaml]
search: {{sampler: {sampler}, seed: 0, trials: {trials}}}
train: {{epochs: {epochs}, batch_size: 32, lr: 0.01}}
criteria:
  - {{metric: accuracy, direction: maximize}}
  - {{metric: macs}}
{extra}
"""


def experiment(root: Path, *, trials=4, epochs=2, sampler="tpe", extra="", space=SPACE) -> Path:
    (root / "spaces").mkdir(parents=True, exist_ok=True)
    (root / "spaces" / "net.yaml").write_text(space)
    (root / "params.yaml").write_text(SPEC.format(trials=trials, epochs=epochs, sampler=sampler, extra=extra))
    return root


def study_of(root: Path, url: str | None = None) -> optuna.Study:
    storage = open_storage(url or f"sqlite:///{root / 'results' / 'net' / 'optuna.db'}")
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


def trial_states(db: Path) -> list[str]:
    """Trial states read straight from SQLite, read-only: polling must not create Optuna's tables
    while the search process creates them."""
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            return [row[0] for row in connection.execute("SELECT state FROM trials")]
    except sqlite3.Error:
        return []


def search_until_mid_trial(root: Path, completed: int) -> subprocess.Popen:
    """A real ``explorer search`` process, returned once ``completed`` trials are done and one runs."""
    process = subprocess.Popen([sys.executable, "-m", "explorer.cli", "search"], cwd=root, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    db, deadline = root / "results" / "net" / "optuna.db", time.time() + 300
    while time.time() < deadline and process.poll() is None:
        time.sleep(0.5)
        states = trial_states(db)
        if states.count("COMPLETE") >= completed and "RUNNING" in states:
            break
    assert process.poll() is None, "the search ended before it could be interrupted"
    return process


def explorer(*args, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "explorer.cli", *args], cwd=cwd, capture_output=True, text=True,
                          **kwargs)


def test_search_writes_results_and_a_rerun_adds_nothing(tmp_path, monkeypatch, capsys):
    root = experiment(tmp_path)
    monkeypatch.chdir(root)
    assert main(["search"]) == 0
    out = capsys.readouterr().out
    assert "Pareto front" in out and "4 finished trials" in out
    results = root / "results" / "net"
    for name in ("trials.csv", "pareto.csv", "report.md", "metrics.json", "optimization_history.png"):
        assert (results / name).is_file(), name
    trials = pd.read_csv(results / "trials.csv")
    assert list(trials["number"]) == [0, 1, 2, 3]
    assert {"state", "reason", "accuracy", "macs", "params_total", "time_train"} <= set(trials.columns)
    pareto = pd.read_csv(results / "pareto.csv")
    assert 1 <= len(pareto) <= 4 and set(pareto["number"]) <= set(trials["number"])
    figures = json.loads((results / "metrics.json").read_text())
    assert figures["trials_complete"] == 4 and 0 <= figures["best_accuracy"] <= 1
    headline = json.loads((root / "results" / "metrics.json").read_text())  # what DVC tracks
    assert headline["net"]["best_accuracy"] == figures["best_accuracy"]
    model = results / "models" / str(figures["models"][0])
    assert {"model.pt", "architecture.json", "preprocessing.json", "metrics.json"} <= {p.name for p in model.iterdir()}
    assert "test" in json.loads((model / "metrics.json").read_text())
    # the model folder is all a target needs: its test samples agree with the saved weights
    assert main(["export", "--target", "host", str(model), "-o", str(root / "artifact")]) == 0
    capsys.readouterr()
    assert main(["bench", "--target", "host", str(root / "artifact"), "--repeats", "1"]) == 0
    measured = json.loads(capsys.readouterr().out)
    assert measured["agreement"]["argmax_match"] == 1.0 and measured["n"] > 0
    report = (results / "report.md").read_text()
    assert "## Pareto front" in report and "| trial | accuracy | macs |" in report
    before = (results / "trials.csv").read_text()
    assert main(["search"]) == 0  # the study is finished: nothing is added
    assert len(study_of(root).trials) == 4
    assert (results / "trials.csv").read_text() == before


def test_failing_hard_constraint_never_trains(tmp_path, monkeypatch):
    root = experiment(tmp_path, extra="  - {metric: params_total, kind: hard, limit: 10}")
    monkeypatch.chdir(root)
    calls = []
    monkeypatch.setattr("explorer.search.objective.train", lambda *a, **k: calls.append(1))
    assert main(["search"]) == 0
    trials = study_of(root).trials
    assert calls == [] and len(trials) == 4
    assert all(t.state == optuna.trial.TrialState.PRUNED for t in trials)
    assert all(t.user_attrs["reason"].startswith("hard constraint params_total <= 10 violated") for t in trials)
    assert all("time_train" not in t.user_attrs["stages"] for t in trials)


BROKEN_OP = '''
from explorer.ops import LayerBuilder, Param, register_layer


@register_layer("fragile")
class Fragile(LayerBuilder):
    params = (Param("mode", "choice", default="ok", choices=("ok", "crash")),)

    def infer(self, x, p):
        return x

    def build_layer(self, x, p):
        import torch

        class Layer(torch.nn.Module):
            def forward(self, t):
                if p["mode"] == "crash":
                    raise RuntimeError("fragile layer crashed")
                return t

        return Layer()
'''


def test_a_crashing_candidate_fails_its_trial_only(tmp_path):
    space = SPACE.replace("  - block: head", "  - {block: f, op_candidates: fragile, fragile: {mode: [ok, crash]}}\n"
                                             "  - block: head")
    root = experiment(tmp_path, trials=8, epochs=1, sampler="random", extra="plugins: [fragile.py]", space=space)
    (root / "fragile.py").write_text(BROKEN_OP)
    result = explorer("search", cwd=root)
    assert result.returncode == 0, result.stderr
    trials = study_of(root).trials
    states = {t.state for t in trials}
    assert len(trials) == 8 and states == {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL}
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert all(t.params["f/fragile/mode"] == "crash" for t in failed)
    assert "Traceback" not in result.stdout


@pytest.mark.slow
def test_kill_9_then_rerun_resumes_without_losing_or_doubling_trials(tmp_path):
    root = experiment(tmp_path, trials=6, epochs=40, sampler="random")
    process = search_until_mid_trial(root, completed=2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed = [t.number for t in study_of(root).trials if t.state == optuna.trial.TrialState.RUNNING]
    assert killed, "the search was not killed mid-trial"
    time.sleep(GRACE_SECONDS + 1)  # the heartbeat of the killed trial is now stale
    result = explorer("search", cwd=root)
    assert result.returncode == 0, result.stderr
    study = study_of(root)
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    assert finished(study) == 6
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") in killed]
    assert len(retried) == 1 and retried[0].state == optuna.trial.TrialState.COMPLETE
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in study.trials)


@pytest.mark.slow
def test_two_workers_share_one_postgresql_study(tmp_path, postgres_url):
    root = experiment(tmp_path, trials=8, epochs=20, sampler="random")  # the workers start trials together
    result = explorer("search", "--workers", "2", "--storage", postgres_url, cwd=root)
    assert result.returncode == 0, result.stderr
    study = study_of(root, postgres_url)
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers)) and finished(study) >= 8
    workers = {t.user_attrs.get("worker") for t in study.trials}
    assert len(workers) == 2  # both processes contributed trials


def test_sqlite_refuses_several_workers(tmp_path):
    result = explorer("search", "--workers", "2", cwd=experiment(tmp_path))
    assert result.returncode == 2 and "cannot share the SQLite storage" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_trainer_restores_the_best_epochs_weights():
    from explorer.data import load_dataset
    from explorer.build import build
    from explorer.space import Architecture
    from explorer.space.architecture import Layer
    from explorer.ops import DEFAULT_REGISTRY, Tensor

    data = load_dataset("synthetic")
    x = Tensor("channels", (3, 64))
    flat = Layer("to_vector", {}, "a", x, Tensor("vector", (192,)), adapter=True)
    head = Layer("linear", DEFAULT_REGISTRY["linear"].with_defaults({"width": 4}), "h", flat.output,
                 Tensor("vector", (4,)), last=True)
    arch = Architecture(x, Tensor("vector", (4,)), (flat, head), "t")
    settings = TrainSettings(epochs=12, lr=0.5, optimizer="sgd", patience=None)  # overshoots: loss goes up
    torch.manual_seed(0)
    model = build(arch)
    result = train(model, data, settings, seed=3)
    assert result.best_epoch < result.epochs_run and result.history[result.best_epoch - 1] == min(result.history)
    torch.manual_seed(0)
    again = build(arch)
    train(again, data, settings.model_copy(update={"epochs": result.best_epoch}), seed=3)
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_criteria_single_mode_sum_penalty_and_pareto():
    spec = Spec.model_validate({"mode": "single", "criteria": [
        {"metric": "accuracy", "direction": "maximize", "weight": 2.0},
        {"metric": "macs", "weight": 1e-6},
        {"metric": "params_total", "kind": "soft", "limit": 100, "weight": 0.5}]})
    criteria = Criteria(spec)
    assert criteria.directions() == ["minimize"]
    value = criteria.values({"accuracy": 0.5, "macs": 1e6, "params_total": 150})
    assert value == pytest.approx(-2 * 0.5 + 1.0 + 0.5 * 0.5)
    points = np.array([[0.9, 10.0], [0.8, 5.0], [0.7, 20.0], [0.9, 10.0]])
    assert list(pareto_mask(points, ["maximize", "minimize"])) == [True, True, False, True]
    hv = hypervolume(points[:2], ["maximize", "minimize"], np.array([0.0, 30.0]))
    assert hv == pytest.approx(0.9 * 20 + 0.8 * 5)


def test_hypervolume_patience_stops_the_study(tmp_path, monkeypatch):
    root = experiment(tmp_path, trials=20, epochs=1, sampler="random")
    spec = (root / "params.yaml").read_text().replace("trials: 20}", "trials: 20, hv_patience: 2, hv_threshold: 10.0}")
    (root / "params.yaml").write_text(spec)
    monkeypatch.chdir(root)
    assert main(["search"]) == 0
    study = study_of(root)
    assert len(study.trials) < 20 and "did not improve" in study.user_attrs["stopped"]


@pytest.mark.slow
def test_ctrl_c_marks_the_running_trial_and_writes_results(tmp_path):
    root = experiment(tmp_path, trials=6, epochs=40, sampler="random")
    process = search_until_mid_trial(root, completed=1)
    db = root / "results" / "net" / "optuna.db"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    states = trial_states(db)
    assert "RUNNING" not in states and "FAIL" in states
    assert (root / "results" / "net" / "trials.csv").is_file()
    interrupted = [t for t in study_of(root).trials if t.state == optuna.trial.TrialState.FAIL]
    assert interrupted[0].user_attrs["reason"] == "interrupted by the user"
    assert finished(study_of(root)) == states.count("COMPLETE") + states.count("PRUNED")  # a rerun replaces it


def test_dashboard_serves_the_study_on_loopback(tmp_path, monkeypatch):
    from .services import free_port

    root = experiment(tmp_path, trials=2, epochs=1)
    monkeypatch.chdir(root)
    assert main(["search"]) == 0
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "explorer.cli", "dashboard", "--port", str(port)], cwd=root,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import urllib.request

        deadline, body = time.time() + 60, ""
        while time.time() < deadline and not body:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as response:
                    body = response.read().decode()
            except OSError:
                time.sleep(0.5)
        assert "net-" in body  # the study, served from the experiment's storage
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_resumed_study_draws_new_candidates(tmp_path, monkeypatch):
    root = experiment(tmp_path, trials=3, epochs=1, sampler="random")
    monkeypatch.chdir(root)
    assert main(["search"]) == 0
    assert main(["search", "--trials", "6"]) == 0
    trials = study_of(root).trials
    assert len(trials) == 6
    first, second = ([json.dumps(t.params, sort_keys=True) for t in trials[i:i + 3]] for i in (0, 3))
    assert first != second  # the sampler is not replayed from the same seed


@pytest.mark.parametrize("extra,line,fragment", [
    ("  - {metric: acuracy, direction: maximize}", 8, "no estimator gives metric 'acuracy'"),
    ("aggregation: nowhere.nothing", 8, "cannot load aggregation"),
])
def test_spec_mistakes_stop_before_the_first_trial(tmp_path, extra, line, fragment):
    root = experiment(tmp_path, extra=extra)
    if "aggregation" in extra:
        (root / "params.yaml").write_text((root / "params.yaml").read_text() + "mode: single\n")
    result = explorer("search", cwd=root)
    assert result.returncode == 2 and fragment in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    if "metric" in extra:
        assert f"params.yaml:{line}:" in result.stderr and "did you mean 'accuracy'" in result.stderr
    assert not (root / "results" / "net" / "optuna.db").exists() or trial_states(
        root / "results" / "net" / "optuna.db") == []


def test_storage_passwords_are_never_printed(tmp_path):
    root = experiment(tmp_path)
    result = explorer("report", "--storage", "postgresql://alice:S3cretPW@127.0.0.1:1/db", cwd=root)
    assert result.returncode == 2 and "S3cretPW" not in result.stderr + result.stdout
    assert "cannot open storage postgresql://alice:***@127.0.0.1:1/db" in result.stderr
