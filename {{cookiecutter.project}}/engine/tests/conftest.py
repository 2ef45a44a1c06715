from __future__ import annotations

from pathlib import Path

import atexit
import os
import shutil
import tempfile

import optuna
from hypothesis.configuration import set_hypothesis_home_dir
import pytest

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
SPACES = HERE / "spaces"

optuna.logging.set_verbosity(optuna.logging.WARNING)
# Hypothesis keeps caches in ./.hypothesis; inside engine/ they would be baked into experiment repos.
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="explorer-hypothesis-")
set_hypothesis_home_dir(_HYPOTHESIS_HOME)
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    """A PostgreSQL server for the whole test session (initdb in a temp folder, 127.0.0.1)."""
    from .services import start_postgres

    url, stop = start_postgres(tmp_path_factory.mktemp("postgres"))
    yield url
    stop()


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


@pytest.fixture(scope="session")
def docker():
    """A Docker daemon (the running one, or one started for the session); DOCKER_HOST points at it."""
    from .services_docker import start_docker

    host, stop = start_docker()
    previous = os.environ.get("DOCKER_HOST")
    if host:
        os.environ["DOCKER_HOST"] = host
    yield host
    if host:
        if previous is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = previous
    stop()
