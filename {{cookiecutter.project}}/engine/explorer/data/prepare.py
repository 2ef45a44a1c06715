"""The dataset as files a pipeline tracks: ``train.npz``, ``val.npz``, ``test.npz`` and ``manifest.json``.

Writing is deterministic (fixed zip timestamps, uncompressed members, sorted JSON) and a file
whose bytes would not change is not touched, so re-running ``prepare`` gives DVC nothing to
see. ``load_prepared`` checks every file against the manifest before trusting it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import UserError
from .config import DatasetConfig, file_error
from .dataset import SPLITS, Dataset, Split
from .registry import DatasetRegistry, load_dataset

MANIFEST = "manifest.json"
DEFAULT_OUT = Path("data") / "prepared"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def prepare(config: DatasetConfig | str | dict, root: Path, out: Path | None = None,
            registry: DatasetRegistry | None = None) -> dict:
    """Load the dataset and write it to ``out`` (default ``root/data/prepared``); return the manifest."""
    config = DatasetConfig.parse(config, root=root)
    dataset = load_dataset(config, registry)
    out = Path(out) if out is not None else Path(root) / DEFAULT_OUT
    out.mkdir(parents=True, exist_ok=True)
    files = {f"{name}.npz": _write(out / f"{name}.npz", _npz({"x": split.x, "y": split.y}))
             for name, split in dataset.splits.items()}
    manifest = {
        **dataset.metadata(),
        "description": dataset.description,
        "input_shape": list(dataset.input_shape),
        "samples": dataset.sizes(),  # time steps for a stream
        "class_counts": dataset.class_counts(),
        "files": files,
        "fingerprint": dataset.fingerprint,
        "config": config.model_dump(mode="json"),
    }
    _write(out / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return manifest


def load_prepared(out: Path) -> Dataset:
    """The dataset ``prepare`` wrote to ``out``; a file changed since then is a one-line error."""
    out = Path(out)
    path = out / MANIFEST
    if not path.is_file():
        raise UserError(f"no prepared dataset in '{out}' (no {MANIFEST})", hint="run `explorer prepare` first")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise file_error(str(path), f"invalid JSON: {exc.msg}", "run `explorer prepare` again",
                         exc.lineno, exc.colno) from None
    expected = {f"{name}.npz" for name in SPLITS}
    if not isinstance(manifest, dict) or set(manifest.get("files", {})) != expected:
        raise file_error(str(path), f"not a prepared-dataset manifest (expected files {sorted(expected)})",
                         "run `explorer prepare` again")
    splits = {}
    for name in SPLITS:
        file = out / f"{name}.npz"
        data = file.read_bytes() if file.is_file() else None
        if data is None or hashlib.sha256(data).hexdigest() != manifest["files"][file.name]:
            problem = "is missing" if data is None else "changed since it was prepared (sha256 differs)"
            raise file_error(str(file), f"{problem}; {MANIFEST} does not match",
                             "run `explorer prepare` again (or `dvc checkout`)")
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            splits[name] = Split(arrays["x"], arrays["y"])
    dataset = Dataset(manifest["name"], manifest["task"], **splits, classes=tuple(manifest["classes"]),
                      sample_rate=manifest["sample_rate"], stream=manifest["stream"],
                      description=manifest["description"])
    if dataset.fingerprint != manifest["fingerprint"]:
        raise file_error(str(path), "the fingerprint does not match the data files", "run `explorer prepare` again")
    return dataset


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` archive as ``numpy.savez`` writes it, minus the timestamps that make it differ per run."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_EPOCH)
            info.create_system, info.external_attr = 3, 0o644 << 16  # the same bytes on every OS
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> str:
    """Write ``data`` atomically unless the file already holds it; return its sha256."""
    if not (path.is_file() and path.read_bytes() == data):
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(data)
        os.replace(partial, path)
    return hashlib.sha256(data).hexdigest()
