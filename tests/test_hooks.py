"""Hooks that fail say so in one line, exit non-zero and leave nothing behind."""

import json
import subprocess

from bakery import BIN, TEMPLATE, isolated_env, run_cookiecutter, tool


def test_missing_git_is_one_clear_line(tmp_path, home):
    out = tmp_path / "out"
    out.mkdir()
    result = run_cookiecutter(out, {}, home, PATH=str(BIN))  # the venv only: no git on PATH
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "error: post_gen_project: git is not installed (hint: install it and bake again)"
    )
    assert "Traceback" not in result.stdout + result.stderr
    assert list(out.iterdir()) == []


def test_replay_with_a_bad_value_is_stopped_by_pre_gen(tmp_path, home):
    """--replay skips option resolution, so pre_gen_project checks the options again."""
    first = run_cookiecutter(tmp_path / "first", {"project": "replayed"}, home)
    assert first.returncode == 0, first.stdout + first.stderr
    replay = json.loads((home / ".cookiecutter_replay" / f"{TEMPLATE.name}.json").read_text())
    replay["cookiecutter"]["project"] = "Bad Slug"
    bad = tmp_path / "bad-replay.json"
    bad.write_text(json.dumps(replay))
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(
        [tool("cookiecutter"), str(TEMPLATE), "--replay-file", str(bad), "--output-dir", str(out)],
        env=isolated_env(home),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.strip().startswith("error: option project='Bad Slug' is invalid")
    assert "Traceback" not in result.stdout + result.stderr
    assert list(out.iterdir()) == []
