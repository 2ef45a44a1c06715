"""What a bake writes: the exact file set for the chosen options, the engine byte for byte, no
template syntax left over, files that parse, and the option values where they belong."""

import filecmp
from pathlib import Path
import json
import re
import tomllib

import pytest
import yaml

from bakery import CASES, COMMON_FILES, ENGINE, expected_spaces, expected_toolchain_files, targets

TEXT_SUFFIXES = {".md", ".yaml", ".yml", ".toml", ".json", ".py", ".txt", ""}
# Paths written by tools at run time, not by the template: git's database and DVC's scratch space.
RUNTIME = (".git/", ".dvc/tmp/")
GITHUB_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")
TEMPLATE_SYNTAX = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")


def files_under(root, skip=()):
    """Relative POSIX paths of every file below root, without bytecode caches."""
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and not path.relative_to(root).as_posix().startswith(skip)
    }


def template_output(repo):
    """Baked files the template rendered (not engine/, schema/ or toolchains/, which are copied verbatim)."""
    return sorted(
        repo / path
        for path in files_under(repo, skip=RUNTIME + ("engine/", "schema/", "toolchains/"))
        if (repo / path).suffix in TEXT_SUFFIXES
    )


@pytest.mark.parametrize("case", CASES)
def test_exact_file_set(baked, case):
    repo = baked(case)
    engine = {f"engine/{path}" for path in files_under(ENGINE)}
    expected = COMMON_FILES | set(expected_spaces(CASES[case])) | expected_toolchain_files(CASES[case]) | engine
    assert files_under(repo, skip=RUNTIME) == expected


def test_engine_copied_byte_identical(baked):
    repo = baked("default")
    for path in files_under(ENGINE):
        assert filecmp.cmp(ENGINE / path, repo / "engine" / path, shallow=False), path


@pytest.mark.parametrize("case", CASES)
def test_no_template_syntax_left(baked, case):
    for path in template_output(baked(case)):
        text = path.read_text(encoding="utf-8")
        if ".github/workflows" in path.as_posix():
            text = GITHUB_EXPRESSION.sub("", text)
        assert not TEMPLATE_SYNTAX.search(text), path
        assert "cookiecutter" not in text, path


@pytest.mark.parametrize("case", CASES)
def test_every_data_file_parses(baked, case):
    parsers = {
        ".yaml": yaml.safe_load,
        ".yml": yaml.safe_load,
        ".json": json.loads,
        ".toml": tomllib.loads,
    }
    parsed = 0
    for path in template_output(baked(case)):
        if path.suffix in parsers:
            parsers[path.suffix](path.read_text(encoding="utf-8"))
            parsed += 1
    assert parsed >= 8


@pytest.mark.parametrize("case", CASES)
def test_params_follow_options(baked, case):
    options = CASES[case]
    params = yaml.safe_load((baked(case) / "params.yaml").read_text(encoding="utf-8"))
    assert params["dataset"] == options["dataset"]
    assert params["spaces"] == [Path(space).stem for space in expected_spaces(options)]
    assert params["targets"] == targets(options)
    assert params["search"] == {"sampler": "tpe", "seed": 0, "trials": 20, "timeout": None}
    assert params["train"] == {"epochs": 5, "batch_size": 32, "lr": 0.003, "patience": 3}
    assert params["storage"] is None
    assert params["export"] == {"top_k": 3}


@pytest.mark.parametrize("case", CASES)
def test_python_version_lands_in_ci_pyproject_and_readme(baked, case):
    repo, version = baked(case), CASES[case]["python_version"]
    workflow = yaml.safe_load((repo / ".github/workflows/validate.yml").read_text(encoding="utf-8"))
    setups = [
        step["with"]["python-version"]
        for step in workflow["jobs"]["validate"]["steps"]
        if step.get("uses", "").startswith("actions/setup-python@")
    ]
    assert setups == [version]
    pyproject = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["requires-python"] == f">={version}"
    assert f"Python {version}" in (repo / "README.md").read_text(encoding="utf-8")


def test_spaces_reference_the_schema(baked):
    for path in sorted((baked("default") / "search_spaces").glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../schema/search-space.schema.json", path
