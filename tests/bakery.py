"""What the template tests share: where things are, how to bake, what a bake must contain.

The expected contents are declared here by hand (not read from cookiecutter.json or a bake), so a
mistake in the template's board table shows up as a failing test.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]
PROJECT_TEMPLATE = TEMPLATE / "{{cookiecutter.project}}"
ENGINE = PROJECT_TEMPLATE / "engine"
BIN = Path(sys.executable).parent

BOARDS = ("rpi", "pico", "fpga")
REMOTE_URLS = {
    "none": "",
    "local": "/srv/dvc-cache",
    "ssh": "ssh://storage.example.org:2222/srv/dvc",
    "s3": "s3://nas-bucket/experiments",
}
PYTHON_VERSIONS = ("3.11", "3.12", "3.13")
DATASETS = ("basicmotions", "gunpoint", "arrowhead", "italypowerdemand", "digits", "synthetic")
DEFAULTS = {
    "project": "nas-experiment",
    "project_name": "NAS experiment",
    "author": "Your Name",
    "email": "you@example.com",
    **{board: "yes" for board in BOARDS},
    "dvc_remote": "none",
    "dvc_remote_url": "",
    "dataset": "basicmotions",
    "python_version": "3.11",
}

# Search spaces each target brings, in the order params.yaml lists them.
SPACES_BY_TARGET = {
    "host": ["search_spaces/cnn1d.yaml", "search_spaces/cnn1d_preprocess.yaml", "search_spaces/cnn2d.yaml",
             "search_spaces/lstm.yaml"],
    "rpi": [],
    "pico": ["search_spaces/mcu_tiny.yaml"],
    "fpga": ["search_spaces/fpga_mlp.yaml"],
}
# Toolchain files each board brings (the host needs none; base/ builds every image's Debian).
TOOLCHAIN_FILES = {
    "host": {"toolchains/README.md", "toolchains/base/README.md", "toolchains/base/make-base-image.sh"},
    "rpi": {"toolchains/rpi/Dockerfile", "toolchains/rpi/README.md", "toolchains/rpi/build.sh"},
    "pico": {"toolchains/pico/Dockerfile", "toolchains/pico/README.md", "toolchains/pico/build.sh",
             "toolchains/pico/fetch-source.sh", "toolchains/pico/fetch-git.sh", "toolchains/pico/pin-sources.sh"},
    "fpga": {"toolchains/fpga/Dockerfile", "toolchains/fpga/README.md", "toolchains/fpga/build.sh",
             "toolchains/fpga/simulate.sh", "toolchains/fpga/vendor_flow.sh"},
}
# Files every experiment repo has, besides engine/ (compared with the template's engine/) and the
# search spaces above. .dvc/ comes from `dvc init`.
COMMON_FILES = {
    ".dvc/.gitignore",
    ".dvc/config",
    ".actrc",
    ".dvcignore",
    ".github/events/pull_request-fork.json",
    ".github/events/pull_request-opened.json",
    ".github/events/pull_request-synchronize.json",
    ".github/events/push-main.json",
    ".github/events/workflow_dispatch.json",
    ".github/actionlint.yaml",
    ".github/workflows/bench.yml",
    ".github/workflows/pull-request.yml",
    ".github/workflows/report.yml",
    ".github/workflows/search.yml",
    ".github/workflows/validate.yml",
    ".gitignore",
    ".pre-commit-config.yaml",
    ".vscode/settings.json",
    "Makefile",
    "README.md",
    "dvc.yaml",
    "params.yaml",
    "pyproject.toml",
    "runners/README.md",
    "runners/boards.example.yaml",
    "runners/register.sh",
    "runners/runner-lib.sh",
    "runners/runner-prepare.sh",
    "runners/systemd/explorer-boards-check.service",
    "runners/systemd/explorer-boards-check.timer",
    "runners/systemd/explorer-runner.service",
    "runners/take-out-of-service.sh",
    "runners/udev/99-explorer-pico.rules",
    "schema/search-space.schema.json",
    "schema/params.schema.json",
    "tests/test_spaces.py",
}


def _case(index: int, boards: tuple[str, ...]) -> dict[str, str]:
    """One board subset, with remote kind, Python version and dataset rotated across cases."""
    remote = list(REMOTE_URLS)[index % len(REMOTE_URLS)]
    return {
        **DEFAULTS,
        **{board: "yes" if board in boards else "no" for board in BOARDS},
        "dvc_remote": remote,
        "dvc_remote_url": REMOTE_URLS[remote],
        "python_version": PYTHON_VERSIONS[index % len(PYTHON_VERSIONS)],
        "dataset": DATASETS[index % len(DATASETS)],
    }


SUBSETS = [subset for size in range(len(BOARDS) + 1) for subset in itertools.combinations(BOARDS, size)]
# The default, then all 8 board subsets; together they cover every remote kind, Python and dataset.
CASES = {"default": dict(DEFAULTS)} | {
    "+".join(subset) or "host-only": _case(index, subset) for index, subset in enumerate(SUBSETS)
}


def targets(options: dict[str, str]) -> list[str]:
    return ["host", *[board for board in BOARDS if options[board] == "yes"]]


# Example spaces a dataset cannot feed: 2-D convolutions on one-channel series, pre-processing of images.
EXCLUDED_BY_DATASET = {
    "gunpoint": {"search_spaces/cnn2d.yaml"},
    "arrowhead": {"search_spaces/cnn2d.yaml"},
    "italypowerdemand": {"search_spaces/cnn2d.yaml", "search_spaces/cnn1d_preprocess.yaml"},  # 24 steps
    "digits": {"search_spaces/cnn1d_preprocess.yaml"},
}


def expected_toolchain_files(options: dict[str, str]) -> set[str]:
    return set().union(*(TOOLCHAIN_FILES[target] for target in targets(options)))


def expected_spaces(options: dict[str, str]) -> list[str]:
    excluded = EXCLUDED_BY_DATASET.get(options["dataset"], set())
    return [space for target in targets(options) for space in SPACES_BY_TARGET[target] if space not in excluded]


def tool(name: str) -> str:
    """A command installed in the venv running the tests; missing means failing, never skipping."""
    path = BIN / name
    assert path.exists(), f"{name} is not installed in {BIN} (run `make install`)"
    return str(path)


def isolated_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment with an empty HOME: no git identity, no cookiecutter or DVC user config."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GIT_", "DVC_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_CONFIG_NOSYSTEM="1", **extra)
    return env


def run_cookiecutter(
    output_dir: Path, options: dict[str, str], home: Path, *args: str, **env: str
) -> subprocess.CompletedProcess:
    """The real `cookiecutter` CLI, `--no-input`, options given as key=value."""
    command = [tool("cookiecutter"), str(TEMPLATE), "--no-input", "--output-dir", str(output_dir), *args]
    command += [f"{key}={value}" for key, value in options.items()]
    return subprocess.run(
        command, env=isolated_env(home, **env), capture_output=True, text=True, timeout=300, check=False
    )
