"""Measurements by what determines them: architecture, pre-processing, target, board kind,
export options and the generator/toolchain version. A folder of JSON files DVC can track; a
repeated candidate is read back, never measured twice."""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any


@lru_cache(maxsize=None)
def generator_version() -> str:
    """Hash of the engine's target code and the toolchain folders: a changed generator re-measures."""
    from ..targets.toolchain import toolchains_root

    digest = hashlib.sha256()
    roots = [Path(__file__).resolve().parents[1] / "targets", toolchains_root()]
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def measurement_key(architecture: str, preprocessing: Any, target: str, board_kind: str,
                    options: dict[str, Any]) -> str:
    body = json.dumps({"architecture": architecture, "preprocessing": preprocessing, "target": target,
                       "board": board_kind, "options": options, "generator": generator_version()},
                      sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:24]


class MeasurementCache:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def put(self, key: str, record: dict[str, Any]) -> None:
        """Atomic: a reader never sees half a file, a killed writer leaves none."""
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = self._path(key).with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        os.replace(temporary, self._path(key))
