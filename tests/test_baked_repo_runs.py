"""The slow tier: a baked repo works end to end with the engine, and so does `make demo` (its DVC
pipeline: test_gitops.py)."""

import os
import subprocess
import sys

import pytest

from bakery import BIN, DEFAULTS, TEMPLATE, isolated_env, run_cookiecutter

pytestmark = pytest.mark.slow


@pytest.fixture
def repo(tmp_path, home):
    """A default bake of this test's own (these tests change the repo)."""
    result = run_cookiecutter(tmp_path / "out", {}, home)
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp_path / "out" / DEFAULTS["project"]


def run(command, cwd, home, **env):
    """Run with the venv first on PATH (where `explorer` is); return stdout, fail on non-zero."""
    env = isolated_env(home, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", **env)
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout


def test_baked_repo_tests_pass(repo, home):
    out = run([sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"], repo, home)
    assert " passed" in out and "failed" not in out


def test_preprocessing_example_searches_on_the_default_data(repo, home, tmp_path):
    out = run([sys.executable, "-m", "explorer.cli", "search", "--space", "search_spaces/cnn1d_preprocess.yaml",
               "--trials", "3"], repo, home)
    assert "3 finished trials" in out
    trials = (repo / "results" / "cnn1d_preprocess" / "trials.csv").read_text(encoding="utf-8")
    assert "param_preprocess/window/length" in trials.splitlines()[0]


def test_demo_script(tmp_path, home):
    demo = tmp_path / "demo"
    out = run(["bash", "scripts/demo.sh"], TEMPLATE, home, DEMO_DIR=str(demo), TRIALS="3")
    repo = demo / DEFAULTS["project"]
    assert (repo / ".git").is_dir() and (repo / "data" / "prepared" / "manifest.json").is_file()
    assert "Pareto front: cnn1d.yaml" in out and "3 finished trials" in out
    results = repo / "results" / "cnn1d"
    report = (results / "report.md").read_text(encoding="utf-8")
    assert "## Pareto front" in report and "| trial | accuracy | macs |" in report
    assert len((results / "trials.csv").read_text(encoding="utf-8").splitlines()) == 4
