"""``manifest.json``: what an artifact folder holds, for which model and target, with hashes.

A board runs only what the manifest describes; a file changed after export is caught before it
is deployed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..errors import UserError

NAME = "manifest.json"
FORMAT = 1


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != NAME}


def write(folder: Path, fields: dict[str, Any]) -> dict:
    """(Re)write the manifest: ``fields`` plus the hash of every file now in ``folder``."""
    manifest = {"format": FORMAT, **fields, "files": file_hashes(folder)}
    (folder / NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read(folder: Path, verify: bool = True) -> dict:
    """The manifest of an artifact folder; with ``verify``, every listed file must hash the same."""
    path = Path(folder) / NAME
    if not path.is_file():
        raise UserError(f"{folder}: no {NAME}", hint="explorer export --target T MODEL_DIR -o OUT writes one")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON ({exc.msg})") from None
    if manifest.get("format") != FORMAT:
        raise UserError(f"{path}: unsupported manifest format {manifest.get('format')!r}")
    if verify:
        for name, digest in manifest.get("files", {}).items():
            file = Path(folder) / name
            if not file.is_file():
                raise UserError(f"{path}: listed file {name} is missing", hint="export the model again")
            if sha256(file) != digest:
                raise UserError(f"{path}: {name} changed after export (sha256 mismatch)", hint="export the model again")
    return manifest


def update(folder: Path, fields: dict[str, Any]) -> dict:
    """Merge ``fields`` (e.g. build facts) and re-hash the folder."""
    manifest = read(folder, verify=False)
    manifest.pop("files", None)
    manifest.pop("format", None)
    manifest.update(fields)
    return write(folder, manifest)
