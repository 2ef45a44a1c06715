from __future__ import annotations

from pathlib import Path

import optuna
import pytest

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
SPACES = HERE / "spaces"

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(autouse=True)
def _outside_any_experiment_repo(tmp_path, monkeypatch):
    """Run every test from an empty folder, so no params.yaml above the checkout is picked up."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def trial_factory():
    """Fresh Optuna trials from a seeded random sampler: the path the search uses."""

    def make(seed: int = 0):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        return study

    return make


@pytest.fixture
def write_space(tmp_path):
    def write(text: str, name: str = "space.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
