"""What the ``explorer targets/export/build/bench`` and ``validate --target`` commands do,
kept out of the CLI layer so tests and the HIL loop call the same functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import Diagnostic, UserError
from . import manifest


def targets_table() -> list[dict[str, Any]]:
    from . import all_targets

    rows = []
    for t in all_targets():
        reflection = t.reflection.to_json()
        rows.append({"name": t.name, "description": t.description, "artifacts": list(t.artifacts),
                     "toolchain": t.toolchain, "reflection": reflection})
    return rows


def target_diagnostics(file: Path, space: Any, target_name: str) -> list[Diagnostic]:
    """What ``target_name`` cannot run in a valid ``space``, located at the block's ``op_candidates``:
    a warning when choices are left (sampling for the target skips them), an error when none is."""
    from ..space.source import load_yaml, locate
    from . import get_target
    from .restrict import restrict

    _, findings = restrict(space, get_target(target_name).reflection)
    if not findings:
        return []
    root = load_yaml(file)
    out = []
    for f in findings:
        line, col = locate(root, (*f.block, "op_candidates"))
        out.append(Diagnostic(str(file), line, col, f"target {target_name}: {f.message}",
                              "sampling for this target skips it" if not f.fatal
                              else f"explorer targets shows what {target_name} runs",
                              "error" if f.fatal else "warning"))
    return out


def check_target(artifact: Path, target: str | None) -> dict:
    found = manifest.read(artifact)
    if target is not None and found["target"] != target:
        raise UserError(f"{artifact}: exported for target {found['target']!r}, not {target!r}",
                        hint=f"explorer export --target {target} MODEL_DIR -o OUT")
    return found


def resolve_board(name: str | None, inventory: Path | None, target: str) -> Any:
    """The inventory's board ``name`` (None: the target's local runner or simulator)."""
    if name is None:
        return None
    from ..boards import find_board, load_inventory

    path = inventory or Path("boards.yaml")
    board = find_board(load_inventory(path), name, path)
    if board.target != target:
        raise UserError(f"{path}: board {name!r} is a {board.kind} board, it does not serve target {target!r}")
    return board
