"""Fixtures of the template tests (helpers and expected contents are in bakery.py)."""

from __future__ import annotations

import fcntl
import shutil
from pathlib import Path

import pytest

from bakery import CASES, run_cookiecutter


@pytest.fixture(scope="session")
def baked(tmp_path_factory, worker_id):
    """Bake a case once for the whole run (shared by xdist workers through a file lock).

    Shared bakes are read-only for tests; a test that changes a repo bakes its own.
    """
    root = tmp_path_factory.getbasetemp()
    root = (root if worker_id == "master" else root.parent) / "shared-bakes"
    root.mkdir(exist_ok=True)

    def bake(case: str) -> Path:
        out = root / case
        with open(root / f"{case}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (root / f"{case}.done").exists():
                shutil.rmtree(out, ignore_errors=True)
                home = out.with_name(f"{case}.home")
                home.mkdir(exist_ok=True)
                result = run_cookiecutter(out, CASES[case], home)
                assert result.returncode == 0, result.stdout + result.stderr
                (root / f"{case}.done").touch()
        return out / CASES[case]["project"]

    return bake


@pytest.fixture
def home(tmp_path) -> Path:
    """An empty HOME for one test."""
    path = tmp_path / "home"
    path.mkdir()
    return path
