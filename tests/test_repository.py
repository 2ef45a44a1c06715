"""The baked repo as a repository: one commit on main made without any git identity configured,
a clean work tree, DVC initialised with analytics off, the chosen remote as default, a valid
pipeline."""

import subprocess

from pathlib import Path

import pytest

from bakery import CASES, expected_spaces, isolated_env, targets, tool


def run(repo, home, *command):
    result = subprocess.run(
        command, cwd=repo, env=isolated_env(home), capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def dvc(repo, home, *args):
    return run(repo, home, tool("python"), "-m", "dvc", *args)


@pytest.mark.parametrize("case", CASES)
def test_one_commit_on_main_and_clean_tree(baked, home, case):
    repo, options = baked(case), CASES[case]
    assert run(repo, home, "git", "branch", "--show-current").strip() == "main"
    assert run(repo, home, "git", "rev-list", "--count", "HEAD").strip() == "1"
    assert run(repo, home, "git", "log", "--format=%an <%ae>").strip() == (
        f"{options['author']} <{options['email']}>"
    )
    assert run(repo, home, "git", "status", "--porcelain", "--untracked-files=all") == ""


def test_build_droppings_are_not_committed(baked, home):
    tracked = run(baked("default"), home, "git", "ls-files").splitlines()
    assert [path for path in tracked if "__pycache__" in path or ".egg-info" in path] == []
    assert {".dvc/config", ".dvcignore", "dvc.yaml", "params.yaml", "engine/pyproject.toml"} <= set(tracked)


@pytest.mark.parametrize("case", CASES)
def test_dvc_is_initialised_with_the_chosen_remote(baked, home, case):
    repo, options = baked(case), CASES[case]
    assert (repo / ".dvc").is_dir()
    dvc(repo, home, "status")
    config = set(dvc(repo, home, "config", "--list", "--project").splitlines())
    expected = {"core.analytics=false"}
    if options["dvc_remote"] != "none":
        expected |= {"core.remote=storage", f"remote.storage.url={options['dvc_remote_url']}"}
    assert config == expected


@pytest.mark.parametrize("case", ["default", "host-only"])
def test_pipeline_has_its_stages_per_space_and_target(baked, home, case):
    stages = [line.split()[0] for line in dvc(baked(case), home, "stage", "list").splitlines()]
    spaces = [Path(space).stem for space in expected_spaces(CASES[case])]
    matrix = [f"{space}-{target}" for space in spaces for target in targets(CASES[case])]
    assert stages == (["prepare"] + [f"search@{s}" for s in spaces] + [f"export@{m}" for m in matrix]
                      + [f"bench@{m}" for m in matrix] + [f"report@{s}" for s in spaces])
