"""The few git questions CI asks, each failure as one line: not a repository, an unknown
revision (usually a shallow clone), no merge base."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..errors import UserError

FETCH_HINT = "fetch the history: actions/checkout with fetch-depth: 0, or git fetch origin <ref>"


def _git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    if shutil.which("git") is None:
        raise UserError("git is not installed", hint="apt-get install git")
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, encoding="utf-8",
                            errors="replace", timeout=120)
    if check and result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise UserError(f"git {args[0]} failed: {lines[-1] if lines else f'exit {result.returncode}'}")
    return result


def require_repo(root: Path) -> Path:
    """The work tree's top folder; a one-line error when ``root`` is not inside a git repository."""
    if not root.is_dir():
        raise UserError(f"{root}: no such folder")
    result = _git(root, "rev-parse", "--show-toplevel", check=False)
    if result.returncode != 0:
        raise UserError(f"{root}: not a git repository", hint="run inside the experiment repo (git init or clone)")
    return Path(result.stdout.strip())


def resolve(root: Path, ref: str) -> str | None:
    """The commit ``ref`` names, or None when this clone does not have it."""
    if not ref or ref.startswith("-"):
        return None
    result = _git(root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def commit(root: Path, ref: str) -> str:
    """Like ``resolve`` but an unknown revision is a one-line error with the usual cause."""
    found = resolve(root, ref)
    if found is None:
        raise UserError(f"unknown git revision '{ref}' in {root}", hint=FETCH_HINT)
    return found


def changed_files(root: Path, base: str, head: str, merge_base: bool) -> list[str]:
    """Paths (relative to ``root``, under it only) that differ: ``base...head`` (what head added since
    it left base, a pull request's view) or ``base..head`` (a push's view). Renames count as a
    deletion plus an addition."""
    if merge_base:
        found = _git(root, "merge-base", base, head, check=False)
        if found.returncode != 0:
            raise UserError(f"no merge base between {base[:12]} and {head[:12]}", hint=FETCH_HINT)
    spec = f"{base}...{head}" if merge_base else f"{base}..{head}"
    result = _git(root, "diff", "--name-only", "--no-renames", "--relative", "-z", spec, "--")
    return [p for p in result.stdout.split("\0") if p]


def read_at(root: Path, ref: str, path: str) -> str | None:
    """The text of ``path`` (relative to ``root``) at ``ref``; None when it does not exist there."""
    result = _git(root, "show", f"{ref}:./{path}", check=False)
    return result.stdout if result.returncode == 0 else None


def files_at(root: Path, ref: str, folder: str) -> list[str]:
    """Files directly in ``folder`` (relative to ``root``) at ``ref``."""
    result = _git(root, "ls-tree", "--name-only", "-z", f"{ref}:./{folder}", check=False)
    if result.returncode != 0:
        return []
    return sorted(f"{folder}/{name}" for name in result.stdout.split("\0") if name)
