"""Every committed search space validates and samples into architectures that build.

Runs the `explorer` command the way a researcher and CI do, so a space that passes here passes
in the pull request too.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPACES = sorted((REPO / "search_spaces").glob("*.yaml"))
# The console script installed next to the running Python (works without an activated venv).
EXPLORER = Path(sys.executable).with_name("explorer")


def explorer(*args: str) -> subprocess.CompletedProcess:
    assert EXPLORER.exists(), f"{EXPLORER} missing: run `make install` (pip install -e engine)"
    return subprocess.run(
        [str(EXPLORER), *args], cwd=REPO, capture_output=True, text=True, timeout=600, check=False
    )


def test_params_lists_existing_spaces():
    from explorer.spec import load_spec

    spec, _ = load_spec(REPO / "params.yaml")
    assert spec.spaces, "params.yaml lists no search space"
    assert [path for path in spec.space_paths(REPO) if not path.is_file()] == []


@pytest.mark.parametrize("space", SPACES, ids=lambda path: path.name)
def test_space_validates(space):
    result = explorer("validate", str(space.relative_to(REPO)))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("space", SPACES, ids=lambda path: path.name)
def test_space_samples_and_builds(space):
    result = explorer("sample", str(space.relative_to(REPO)), "--trials", "5", "--seed", "0", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    trials = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(trials) == 5
    assert {trial["status"] for trial in trials} <= {"ok", "infeasible"}
    assert any(trial["status"] == "ok" for trial in trials), trials
