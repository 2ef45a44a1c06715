"""``dvc metrics diff --md <base>``: the headline figures of this branch against ``main``.

Every reason the comparison can be missing (no dvc, not a DVC repo, the base not fetched,
dvc failing) becomes one line in the report instead of an error: the rest of the report
is still worth posting.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import UserError
from . import git


def dvc_executable() -> str | None:
    """``dvc`` next to this Python (a venv that is not on PATH) or on PATH."""
    local = Path(sys.executable).parent / "dvc"
    return str(local) if local.is_file() else shutil.which("dvc")


def resolve_base(root: Path, base: str) -> str | None:
    """``base`` as this clone knows it: ``main`` in a full clone, ``origin/main`` in a checkout of a
    pull request (actions/checkout fetches remote branches but creates no local ``main``)."""
    for candidate in (base, f"origin/{base}"):
        if git.resolve(root, candidate):
            return candidate
    return None


def metrics_diff(root: Path, base: str, timeout: float = 300) -> tuple[str | None, str]:
    """(markdown table or None, one line saying what was compared or why nothing was)."""
    dvc = dvc_executable()
    if dvc is None:
        return None, "`dvc metrics diff` was not run: dvc is not installed here (pip install dvc)."
    if not any((folder / ".dvc").is_dir() for folder in (root, *root.parents)):
        return None, "`dvc metrics diff` was not run: this is not a DVC repository (dvc init)."
    try:
        git.require_repo(root)
    except UserError:
        return None, "`dvc metrics diff` was not run: this is not a git repository."
    ref = resolve_base(root, base)
    if ref is None:
        return None, (f"`dvc metrics diff` was not run: `{base}` is not in this clone "
                      "(actions/checkout with fetch-depth: 0 fetches it).")
    try:
        result = subprocess.run([dvc, "metrics", "diff", "--md", ref], cwd=root, capture_output=True, text=True,
                                timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"`dvc metrics diff` was not run: it took longer than {timeout:.0f} s."
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit {result.returncode}"
        return None, f"`dvc metrics diff {ref}` failed: {reason}"
    table = result.stdout.strip()
    if not table:
        return None, f"No metric differs from `{ref}` (`dvc metrics diff {ref}`)."
    return table, f"`dvc metrics diff {ref}`: this branch's metrics (workspace) against `{ref}`."
