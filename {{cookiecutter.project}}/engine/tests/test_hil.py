"""Hardware in the loop on real simulated boards: mode 2 inside the search (GHDL, QEMU, a
loopback sshd pool), the measurement cache, board faults, ask/measure/tell through files, and
mode 1 (the exported models measured after the search)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from explorer.cli import main
from explorer.hil import flatten_metrics

from .services import free_port, unavailable
from .services_ssh import start_sshd

MLP = """\
input: [3, 64]
output: 4
sequence:
  - block: flatten
    op_candidates: flatten
  - block: hidden
    op_candidates: linear
    linear: {width: [4, 6, 8], activation: relu}
  - block: head
    op_candidates: linear
"""
MCU = """\
input: [3, 64]
output: 4
sequence:
  - block: conv
    op_candidates: conv1d
    conv1d: {out_channels: [4, 6], kernel_size: 3, stride: 2, activation: relu}
  - block: pool
    op_candidates: global_avgpool
  - block: head
    op_candidates: linear
"""


def experiment(root: Path, space: str, hardware: dict, trials: int = 4, metric: str = "hw_cost",
               sampler: str = "random") -> Path:
    (root / "spaces").mkdir(parents=True, exist_ok=True)
    (root / "spaces" / "net.yaml").write_text(space)
    spec = {"dataset": "synthetic", "spaces": ["spaces/net.yaml"],
            "search": {"sampler": sampler, "seed": 0, "trials": trials, "target": hardware["target"]},
            "train": {"epochs": 1, "batch_size": 64, "lr": 0.01},
            "criteria": [{"metric": "accuracy", "direction": "maximize"}, {"metric": metric, "direction": "minimize"}],
            "hardware": {"samples": 8, **hardware}}
    (root / "params.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def trials_of(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "results" / "net" / "trials.csv")


@pytest.fixture(autouse=True)
def leases(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_LEASE_DIR", str(tmp_path / "leases"))


@pytest.fixture(autouse=True)
def tools():
    for tool in ("ghdl", "qemu-system-arm", "arm-none-eabi-gcc"):
        if shutil.which(tool) is None:
            unavailable(tool)


def test_flatten_metrics_names_every_number_and_the_board_cost():
    flat = flatten_metrics({"n": 8, "accuracy": 0.5, "simulated": True, "board": "x",
                            "agreement": {"argmax_match": 1.0, "note": "-"},
                            "simulated_instructions": {"median": 1200.0, "p90": 1300.0}})
    assert flat == {"hw_n": 8.0, "hw_accuracy": 0.5, "hw_agreement_argmax_match": 1.0,
                    "hw_simulated_instructions_median": 1200.0, "hw_simulated_instructions_p90": 1300.0,
                    "hw_cost": 1200.0}


def test_mode2_on_the_fpga_simulator_caches_repeated_candidates(tmp_path, monkeypatch):
    root = experiment(tmp_path, MLP, {"target": "fpga"}, trials=6)
    monkeypatch.chdir(root)
    assert main(["search"]) == 0
    trials = trials_of(root)
    assert (trials["state"] == "COMPLETE").all()
    assert (trials["hw_cost"] > 0).all() and (trials["hw_fixed_point_reference_mismatches"] == 0).all()
    widths = trials["param_hidden/linear/width"]
    assert widths.nunique() < len(trials)  # 3 widths, 6 trials: repeats exist
    first = ~widths.duplicated()
    assert (trials.loc[first, "hw_cached"] == 0).all() and (trials.loc[~first, "hw_cached"] == 1).all()
    # a cached measurement is the one taken first for the same candidate
    for width, group in trials.groupby("param_hidden/linear/width"):
        assert group["hw_cost"].nunique() == 1
    assert len(list((root / "results" / "hil-cache").glob("*.json"))) == widths.nunique()
    pareto = pd.read_csv(root / "results" / "net" / "pareto.csv")
    assert "hw_cost" in pareto.columns and len(pareto) >= 1


def test_mode2_on_the_simulated_pico(tmp_path, monkeypatch):
    root = experiment(tmp_path, MCU, {"target": "pico", "options": {"dtype": "int8"}, "timeout": 30}, trials=2,
                      metric="hw_simulated_instructions_median")
    monkeypatch.chdir(root)
    assert main(["search"]) == 0
    trials = trials_of(root)
    assert (trials["state"] == "COMPLETE").all(), trials["reason"].tolist()
    assert (trials["hw_simulated_instructions_median"] > 1000).all()
    assert (trials["hw_arena_bytes"] > 0).all() and (trials["hw_agreement_argmax_match"] >= 0.75).all()


def test_a_criterion_on_a_board_metric_needs_a_hardware_section(tmp_path, monkeypatch, capsys):
    root = experiment(tmp_path, MLP, {"target": "fpga"})
    spec = yaml.safe_load((root / "params.yaml").read_text())
    del spec["hardware"]
    (root / "params.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    monkeypatch.chdir(root)
    assert main(["search"]) == 2
    err = capsys.readouterr().err
    assert "params.yaml:" in err and "metric 'hw_cost' is measured on a board" in err and "hardware:" in err


def test_ask_measure_tell_through_files_gives_the_in_process_study(tmp_path, monkeypatch, capsys):
    in_process = experiment(tmp_path / "loop", MLP, {"target": "fpga"}, trials=4)
    monkeypatch.chdir(in_process)
    assert main(["search"]) == 0
    files = experiment(tmp_path / "files", MLP, {"target": "fpga"}, trials=4)
    monkeypatch.chdir(files)
    assert main(["hil", "ask", "--n", "4", "-o", "asked"]) == 0
    assert sorted(p.name for p in (files / "asked").iterdir()) == ["0", "1", "2", "3", "asked.json"]
    cached = [n for n in range(4) if (files / "asked" / str(n) / "measurement.json").is_file()]
    assert main(["hil", "measure", "asked"]) == 0
    assert main(["hil", "tell", "asked"]) == 0
    assert "complete 4, failed 0" in capsys.readouterr().out
    loop, told = trials_of(in_process), trials_of(files)
    columns = ["number", "state", "param_hidden/linear/width", "accuracy", "hw_cost", "value_0", "value_1"]
    pd.testing.assert_frame_equal(loop[columns], told[columns])
    # the in-process loop reads repeated candidates from the cache; measured ones agree exactly
    both = (loop["hw_cached"] == 0) & (told["hw_cached"] == 0)
    assert both.any() and (loop.loc[both, "hw_accuracy"] == told.loc[both, "hw_accuracy"]).all()
    assert main(["hil", "tell", "asked"]) == 0  # told twice: nothing changes
    assert len(trials_of(files)) == 4
    assert cached == []  # a fresh cache: every candidate went to the board


def test_ask_uses_the_cache_and_tell_records_a_board_fault(tmp_path, monkeypatch, capsys):
    root = experiment(tmp_path, MLP, {"target": "fpga"}, trials=6)
    monkeypatch.chdir(root)
    assert main(["hil", "ask", "--n", "6", "-o", "asked"]) == 0
    asked = root / "asked"
    from_cache = [n for n in range(6) if (asked / str(n) / "measurement.json").is_file()]
    assert from_cache == []  # nothing measured yet when asking: the cache is filled by tell
    artifact = asked / "1" / "artifact"
    (artifact / "samples.txt").write_text("garbage\n")  # the testbench cannot read its inputs
    from explorer.targets import manifest

    manifest.write(artifact, {k: v for k, v in manifest.read(artifact, verify=False).items()
                              if k not in ("files", "format")})
    assert main(["hil", "measure", "asked"]) == 0
    assert "trial 1:" in capsys.readouterr().err
    assert main(["hil", "tell", "asked"]) == 0
    trials = trials_of(root)
    assert trials.loc[trials["number"] == 1, "state"].item() == "FAIL"
    assert "board local:" in trials.loc[trials["number"] == 1, "reason"].item()
    assert (trials.loc[trials["number"] != 1, "state"] == "COMPLETE").all()
    assert main(["hil", "ask", "--n", "3", "-o", "again"]) == 0  # repeated candidates come from the cache
    again = json.loads((root / "again" / "asked.json").read_text())["trials"]
    assert any((root / "again" / str(n) / "measurement.json").is_file() for n in again)


def test_mode1_measures_the_exported_models_and_reports_them(tmp_path, monkeypatch, capsys):
    root = experiment(tmp_path, MLP, {"target": "fpga"}, trials=3)
    spec = yaml.safe_load((root / "params.yaml").read_text())
    del spec["hardware"]
    spec["criteria"][1] = {"metric": "macs"}
    (root / "params.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    monkeypatch.chdir(root)
    assert main(["search"]) == 0
    assert main(["hil", "export", "--target", "fpga"]) == 0
    assert main(["hil", "bench", "--target", "fpga"]) == 0
    assert main(["report"]) == 0
    records = json.loads((root / "results" / "net" / "bench" / "fpga.json").read_text())
    models = sorted(int(p.name) for p in (root / "results" / "net" / "models").iterdir())
    assert sorted(r["trial"] for r in records) == models and all("metrics" in r for r in records)
    trials = trials_of(root)
    measured = trials[trials["number"].isin(models)]
    assert (measured["bench_fpga_cost"] > 0).all()
    assert trials[~trials["number"].isin(models)]["bench_fpga_cost"].isna().all()
    assert "bench_fpga_cost" in pd.read_csv(root / "results" / "net" / "pareto.csv").columns
    report = (root / "results" / "net" / "report.md").read_text()
    assert "## Measured on boards" in report and "cycles (simulated)" in report


def test_mode2_pool_skips_a_dead_board_and_falls_back_when_none_is_left(tmp_path, monkeypatch):
    inventory = tmp_path / "boards.yaml"
    dead = {"name": "pi-dead", "kind": "rpi-ssh", "host": "127.0.0.1", "port": free_port(), "user": "root",
            "known_hosts": str(tmp_path / "known_hosts"), "timeout": 5}
    (tmp_path / "known_hosts").write_text("")
    inventory.write_text(yaml.safe_dump({"boards": [dead]}))
    root = experiment(tmp_path / "exp", MLP, {"target": "rpi", "inventory": str(inventory), "max_faults": 2,
                                              "options": {"runner": "torchscript"},
                                              "fallback": {"hw_cost": "macs"}}, trials=4)
    monkeypatch.chdir(root)
    assert main(["search"]) == 0
    trials = trials_of(root)
    assert list(trials["state"]) == ["FAIL", "FAIL", "COMPLETE", "COMPLETE"]
    assert all("pi-dead" in r or "127.0.0.1" in r for r in trials["reason"][:2])
    assert (trials["hw_fallback"][2:] == 1).all() and (trials["hw_cost"][2:] == trials["macs"][2:]).all()
    health = json.loads((tmp_path / "leases" / "pi-dead.health.json").read_text())
    assert health["healthy"] is False


def test_mode2_pool_of_two_sshd_boards_goes_on_without_the_dead_one(tmp_path, monkeypatch):
    live = start_sshd(tmp_path / "sshd")
    try:
        board = json.loads(live.board(name="pi-live").model_dump_json())
        dead = {**board, "name": "pi-dead", "port": free_port()}
        inventory = tmp_path / "boards.yaml"
        inventory.write_text(yaml.safe_dump({"boards": [dead, board]}))
        root = experiment(tmp_path / "exp", MLP, {"target": "rpi", "inventory": str(inventory), "max_faults": 1,
                                                  "options": {"runner": "torchscript"}}, trials=5)
        monkeypatch.chdir(root)
        assert main(["search"]) == 0
        trials = trials_of(root)
        failed = trials[trials["state"] == "FAIL"]
        assert len(failed) <= 1 and all("pi-dead" in r or "refused" in r for r in failed["reason"])
        assert (trials["state"] == "COMPLETE").sum() >= 4
        health = tmp_path / "leases" / "pi-dead.health.json"  # written only if the pool ever chose it
        unhealthy = health.is_file() and json.loads(health.read_text())["healthy"] is False
        assert unhealthy == (len(failed) == 1)
    finally:
        live.stop()
