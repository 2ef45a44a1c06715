"""The generated repo's DVC pipeline on real components (slow tier): prepare -> search -> export
-> bench (on the simulated boards: GHDL, QEMU, the host) -> report; a second `dvc repro` runs
nothing; a new space on a branch reruns only its own stages; `dvc push` / `dvc pull` round trips
through a local remote and an SSH remote on a loopback sshd."""

from __future__ import annotations

import filecmp
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bakery import BIN, DEFAULTS, ENGINE, isolated_env, run_cookiecutter

pytestmark = pytest.mark.slow


def engine_tests_module(name: str):
    """A helper module of the engine's tests (they are a package with relative imports)."""
    if "engine_tests" not in sys.modules:
        spec = importlib.util.spec_from_file_location("engine_tests", ENGINE / "tests" / "__init__.py",
                                                      submodule_search_locations=[str(ENGINE / "tests")])
        module = importlib.util.module_from_spec(spec)
        sys.modules["engine_tests"] = module
        spec.loader.exec_module(module)
    return importlib.import_module(f"engine_tests.{name}")


def run(command, cwd, home, check=True, **env):
    env = isolated_env(home, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", **env)
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800, check=False)
    if check:
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def git(repo, home, *args):
    return run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], repo, home).stdout


def dvc(repo, home, *args):
    return run([sys.executable, "-m", "dvc", *args], repo, home).stdout


def bake(tmp_path, home, **options) -> Path:
    result = run_cookiecutter(tmp_path / "out", options, home)
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp_path / "out" / DEFAULTS["project"]


def small_pipeline(repo: Path, spaces: list[str], targets: list[str]) -> None:
    """The spec cut to a test budget: few trials, one epoch, one exported model besides the front."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params.update(spaces=spaces, targets=targets)
    params["search"]["trials"] = 3
    params["train"]["epochs"] = 1
    params["export"]["top_k"] = 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture
def home(tmp_path):
    path = tmp_path / "home"
    path.mkdir()
    return path


def test_pipeline_runs_every_stage_and_reruns_only_what_changed(tmp_path, home):
    repo = bake(tmp_path, home)
    small_pipeline(repo, ["fpga_mlp"], ["host", "fpga", "pico"])
    dvc(repo, home, "repro")
    results = repo / "results" / "fpga_mlp"
    assert json.loads((results / "metrics.json").read_text())["trials"] == 3
    for target in ("host", "fpga", "pico"):
        records = json.loads((results / "bench" / f"{target}.json").read_text())
        assert records and all("metrics" in r for r in records), target
    assert all(r["metrics"]["simulated"] for r in json.loads((results / "bench" / "pico.json").read_text()))
    assert "## Measured on boards" in (results / "report.md").read_text()
    assert "Data and pipelines are up to date" in dvc(repo, home, "repro")
    git(repo, home, "add", "-A")
    git(repo, home, "commit", "-qm", "first results")

    git(repo, home, "switch", "-qc", "new-space")
    text = (repo / "search_spaces" / "fpga_mlp.yaml").read_text().replace("[8, 16, 32]", "[32, 64]")
    (repo / "search_spaces" / "wide_mlp.yaml").write_text(text)
    small_pipeline(repo, ["fpga_mlp", "wide_mlp"], ["host", "fpga", "pico"])
    git(repo, home, "add", "-A")
    git(repo, home, "commit", "-qm", "a wider MLP")
    changed = run([sys.executable, "-m", "explorer.cli", "ci", "changed-spaces", "--base", "main", "--head", "HEAD",
                   "--all-on", "engine/"], repo, home).stdout
    assert json.loads(changed) == {"space": ["wide_mlp"]}
    out = dvc(repo, home, "repro")
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert ran == {"search@wide_mlp", "export@wide_mlp-host", "export@wide_mlp-fpga", "export@wide_mlp-pico",
                   "bench@wide_mlp-host", "bench@wide_mlp-fpga", "bench@wide_mlp-pico", "report@wide_mlp"}, out
    run([sys.executable, "-m", "explorer.cli", "ci", "report", "-o", "pr-report.md", "--base", "main"], repo, home)
    report = (repo / "pr-report.md").read_text()
    assert report.startswith("<!-- explorer-report -->") and "```mermaid" in report
    assert "results/wide_mlp/metrics.json" in report and "hypervolume" in report  # dvc metrics diff main
    assert "Data and pipelines are up to date" in dvc(repo, home, "repro")


def pipeline_outputs(repo: Path) -> list[Path]:
    """What DVC versions: the prepared data and every result file (the study database included)."""
    return sorted(p.relative_to(repo) for folder in ("data/prepared", "results")
                  for p in (repo / folder).rglob("*") if p.is_file() and not p.name.endswith(("-wal", "-shm")))


def round_trip(repo: Path, home: Path, tmp_path: Path, local_config=lambda repo: None) -> None:
    """Push everything, clone fresh, pull: the clone holds the same files byte for byte.
    ``local_config`` sets what each clone keeps out of git (.dvc/config.local: key file, user)."""
    local_config(repo)
    small_pipeline(repo, ["fpga_mlp"], ["fpga"])
    dvc(repo, home, "repro")
    git(repo, home, "add", "-A")
    git(repo, home, "commit", "-qm", "results")
    dvc(repo, home, "push")
    clone = tmp_path / "clone"
    git(tmp_path, home, "clone", "-q", str(repo), str(clone))
    assert not (clone / "data" / "prepared").exists()
    local_config(clone)
    dvc(clone, home, "pull")
    for relative in pipeline_outputs(repo):
        assert filecmp.cmp(repo / relative, clone / relative, shallow=False), relative
    assert json.loads(dvc(clone, home, "status", "--json")) == {}


def test_dvc_push_pull_round_trip_through_a_local_remote(tmp_path, home):
    remote = tmp_path / "remote"
    repo = bake(tmp_path, home, dvc_remote="local", dvc_remote_url=str(remote))
    round_trip(repo, home, tmp_path)
    assert any(remote.rglob("*")), "nothing reached the remote"


def test_dvc_push_pull_round_trip_through_an_ssh_remote(tmp_path, home):
    services = engine_tests_module("services_ssh")
    sshd = services.start_sshd(tmp_path / "sshd")
    try:
        storage = tmp_path / "ssh-remote"
        storage.mkdir()
        url = f"ssh://127.0.0.1:{sshd.port}{storage}"
        repo = bake(tmp_path, home, dvc_remote="ssh", dvc_remote_url=url)
        (home / ".ssh").mkdir(mode=0o700)
        shutil.copy(sshd.known_hosts, home / ".ssh" / "known_hosts")  # host key verified, never trusted on first use

        def local_config(checkout: Path) -> None:
            dvc(checkout, home, "remote", "modify", "--local", "storage", "keyfile", str(sshd.identity_file))
            dvc(checkout, home, "remote", "modify", "--local", "storage", "user", sshd.user)

        round_trip(repo, home, tmp_path, local_config)
        assert any(storage.rglob("*")), "nothing reached the SSH remote"
    finally:
        sshd.stop()
