"""Which committed search spaces a pull request or push changed: the search workflow's matrix.

Rules (what a reviewer can predict from the diff):

- A pull request compares its head with the merge base (``base...head``, what the branch added);
  a push compares ``before..after``; a manual run, a schedule or a new branch searches every space.
- A changed ``search_spaces/*.yaml`` file (or any file the spec's ``spaces:`` names) is searched
  when it exists at head and validates. It does not have to be listed in ``params.yaml`` yet: a
  researcher's new space is searched on its pull request, and a note says that DVC's pipeline
  only runs it once ``spaces:`` lists it. A deleted space is not searched; an invalid one is
  left to the validate workflow, which annotates its mistakes.
- A change under an ``--all-on`` path (default ``params.yaml`` and ``engine/``: the spec or the
  engine itself) searches every space the spec lists.

A matrix entry is what ``spaces:`` would say: ``cnn1d`` for ``search_spaces/cnn1d.yaml``
(results go to ``results/cnn1d/``), else the path relative to the spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from ..errors import UserError
from . import git
from .event import ZERO_SHA, Event

SPACES_DIR = "search_spaces"
DEFAULT_ALL_ON = ("params.yaml", "engine/")


@dataclass
class Changes:
    spaces: list[str] = field(default_factory=list)
    reason: str = ""
    notes: list[str] = field(default_factory=list)  # skipped files and unlisted spaces, one line each

    def matrix(self) -> dict[str, list[str]]:
        return {"space": self.spaces}


def space_name(path: str) -> str:
    """``search_spaces/x.yaml`` -> ``x``; any other path stays as it is."""
    parts = path.split("/")
    if len(parts) == 2 and parts[0] == SPACES_DIR and parts[1].endswith((".yaml", ".yml")):
        return parts[1].rsplit(".", 1)[0]
    return path


def is_space_file(path: str, listed: set[str]) -> bool:
    return path in listed or fnmatch(path, f"{SPACES_DIR}/*.yaml") or fnmatch(path, f"{SPACES_DIR}/*.yml")


def matches(path: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """``engine/`` (or ``engine``) matches everything below it; a file matches itself; globs work."""
    for pattern in patterns:
        bare = pattern.rstrip("/")
        if path == bare or path.startswith(bare + "/") or fnmatch(path, pattern):
            return True
    return False


def _listed(root: Path, spec_path: Path | None) -> list[str]:
    """The spec's spaces as paths relative to ``root`` (the spec's folder), in the spec's order."""
    if spec_path is None or not spec_path.is_file():
        return []
    from ..spec import load_spec

    spec, path = load_spec(spec_path)
    found = []
    for file in spec.space_paths(path.parent):
        try:
            found.append(file.resolve().relative_to(root.resolve()).as_posix())
        except ValueError:  # a space outside the repo: nothing a diff can change
            continue
    return found


def _keep(root: Path, head: str, paths: list[str], listed: list[str], spec_path: Path | None) -> Changes:
    """The paths that exist at ``head`` and validate, as matrix entries."""
    from ..plugins import load_plugins
    from ..space import check_file

    load_plugins(spec_path if spec_path is not None and spec_path.is_file() else None)
    out = Changes()
    for path in dict.fromkeys(paths):
        text = git.read_at(root, head, path)
        if text is None:
            out.notes.append(f"{path}: deleted at {head[:12]}, not searched")
            continue
        space, diagnostics = check_file(path, text=text)
        if space is None:
            errors = sum(d.severity == "error" for d in diagnostics)
            out.notes.append(f"{path}: invalid ({errors} error{'s' * (errors != 1)}), not searched "
                             f"(hint: explorer validate {path})")
            continue
        if listed and path not in listed:
            out.notes.append(f"{path}: not listed in params.yaml spaces:, searched here; list it so "
                             f"dvc repro runs it too")
        out.spaces.append(space_name(path))
    return out


def _all_spaces(root: Path, head: str, listed: list[str]) -> list[str]:
    """The spec's spaces, or every ``search_spaces/*.yaml`` at head when there is no spec."""
    if listed:
        return listed
    return [p for p in git.files_at(root, head, SPACES_DIR) if is_space_file(p, set())]


def _every(root: Path, head: str, listed: list[str], spec_path: Path | None, reason: str) -> Changes:
    out = _keep(root, head, _all_spaces(root, head, listed), listed, spec_path)
    out.reason = reason
    return out


def changed_spaces(root: Path, event: Event | None, base: str | None = None, head: str | None = None,
                   all_on: tuple[str, ...] | list[str] = DEFAULT_ALL_ON, spec_path: Path | None = None) -> Changes:
    """The search matrix for ``event`` (or for ``base``/``head`` given directly) in the repo at ``root``."""
    git.require_repo(root)
    listed = _listed(root, spec_path)
    merge_base = True
    if base is None and event is not None:
        if event.kind == "other":
            return _every(root, git.commit(root, head or "HEAD"), listed, spec_path, f"{event.name}: every space")
        base, event_head = event.shas()
        head = head or event_head
        merge_base = event.kind == "pull_request"
        if event.kind == "push" and head == ZERO_SHA:
            return Changes(reason="push deleted the branch: nothing to search")
        if event.kind == "push" and (not base or base == ZERO_SHA):
            return _every(root, git.commit(root, head or "HEAD"), listed, spec_path,
                          "push created the branch: every space")
        if not base or not head:
            raise UserError(f"{event.source}: the payload has no base and head commits",
                            hint="a pull_request or push event, or pass --base REF --head REF")
    if base is None:
        raise UserError("no base to compare with", hint="pass --event FILE or --base REF")
    base_sha, head_sha = git.commit(root, base), git.commit(root, head or "HEAD")
    changed = git.changed_files(root, base_sha, head_sha, merge_base)
    triggers = [p for p in changed if matches(p, all_on)]
    if triggers:
        more = f" (and {len(triggers) - 1} more)" if len(triggers) > 1 else ""
        return _every(root, head_sha, listed, spec_path, f"{triggers[0]} changed{more}: every space of the spec")
    candidates = sorted(p for p in changed if is_space_file(p, set(listed)))
    out = _keep(root, head_sha, candidates, listed, spec_path)
    out.reason = (f"{len(candidates)} changed space file{'s' * (len(candidates) != 1)} "
                  f"({base_sha[:7]}{'...' if merge_base else '..'}{head_sha[:7]})")
    return out
