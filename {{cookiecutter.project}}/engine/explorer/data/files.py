"""Your own data: the ``npz`` and ``csv`` datasets. Every mistake is one located line.

``path`` is relative to the experiment root (the folder of ``params.yaml``)::

    dataset: {name: npz, path: data/motions.npz}
    dataset: {name: csv, path: data/motions.csv, target: activity, shape: [6, 100]}

npz layout (``numpy.savez``; text arrays are fine, Python objects are not)
    Either ``x_train``, ``y_train``, ``x_test``, ``y_test`` and optionally ``x_val``, ``y_val``
    (else validation is held out of the training data), or just ``x``, ``y`` (then a seeded
    stratified 80/20 train/test split is made first). Inputs are ``[N, F]`` vectors,
    ``[N, C, L]`` series or ``[N, C, H, W]`` images, the same per-sample shape in every split;
    targets have one row per sample. Optional: ``classes`` (text array: the labels are
    indices into it) and ``sample_rate`` (a number, Hz). The task follows the labels:
    integers or text -> classification, floats (``[N]`` or ``[N, K]``) -> regression, unless
    ``task`` says otherwise; with ``task: reconstruction`` the ``y`` arrays may be left out.

csv layout (UTF-8, a header row, one row per sample)
    A label column (``target``, default ``label``), an optional ``split`` column with
    ``train`` / ``val`` / ``test`` (missing ones are held out as for npz), and every other
    column a numeric feature. Without ``shape`` a sample is the feature vector ``[F]``;
    ``shape`` reshapes it in column order, channel-major: ``[6, 100]`` reads 600 columns as
    6 channels of 100 steps (one ``-1`` may stand for the size the column count implies).
    Integer labels -> classification, other numbers -> regression, text -> classification.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..space.validate import did_you_mean
from .config import DatasetConfig, Task, file_error
from .dataset import SPLITS, Dataset
from .registry import register_dataset
from .splits import Fail, assemble

NPZ_KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "x", "y", "classes", "sample_rate")
NPZ_LAYOUT = "an npz holds x_train, y_train, x_test, y_test (optional x_val, y_val), or x, y"
SPLIT_COLUMN = "split"


def _existing(config: DatasetConfig) -> Path:
    if not config.file.is_file():
        raise config.error(f"dataset file '{config.path}' not found",
                           f"paths are relative to the experiment root {config.root or Path.cwd()}")
    return config.file


@register_dataset("npz", task=None, description="your .npz file: x_train, y_train, x_test, y_test or x, y")
def npz(config: DatasetConfig) -> Dataset:
    fail = partial(file_error, config.path)
    arrays = _read_npz(_existing(config), fail)
    for key in arrays:
        if key not in NPZ_KEYS:
            raise fail(f"unknown array '{key}'", did_you_mean(key.lower(), list(NPZ_KEYS)) or NPZ_LAYOUT)
    split_layout = any(key.endswith(("_train", "_val", "_test")) for key in arrays)
    suffixes = {"train": "_train", "val": "_val", "test": "_test"} if split_layout else {"train": ""}
    with_y = config.task != "reconstruction"
    mixed = sorted(arrays.keys() & {"x", "y"}) if split_layout else []
    if mixed:
        raise fail(f"array '{mixed[0]}' cannot be combined with the *_train / *_test arrays", NPZ_LAYOUT)
    pairs = {}
    for split, suffix in suffixes.items():
        xk, yk = "x" + suffix, "y" + suffix
        if split == "val" and xk not in arrays and yk not in arrays:
            continue  # validation is then held out of the training data
        for key in (xk, yk) if with_y else (xk,):
            if key not in arrays:
                raise fail(f"missing array '{key}'", NPZ_LAYOUT)
        pairs[split] = _pair(arrays, xk, yk if with_y else None, "x" + suffixes["train"], fail)
    y = pairs["train"][1]
    task: Task = config.task or ("regression" if y.dtype.kind == "f" else "classification")
    return assemble(config, task=task, **pairs, classes=_classes(arrays, fail), sample_rate=_rate(arrays, fail),
                    description=f"npz file {config.path}", fail=fail)


def _read_npz(path: Path, fail: Fail) -> dict[str, np.ndarray]:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile):
        raise fail("not a NumPy .npz archive", "write it with numpy.savez") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise fail("holds a single array, not an .npz archive", f"write it with numpy.savez; {NPZ_LAYOUT}")
    arrays = {}
    with archive:
        for key in archive.files:
            try:
                arrays[key] = archive[key]
            except ValueError:
                raise fail(f"array '{key}' holds Python objects", "save numbers or text (e.g. .astype(str))") from None
    return arrays


def _pair(arrays: dict, xk: str, yk: str | None, first: str, fail: Fail) -> tuple[np.ndarray, np.ndarray | None]:
    x, y = arrays[xk], arrays.get(yk) if yk else None
    if not 2 <= x.ndim <= 4:
        raise fail(f"'{xk}' must be [N, F], [N, C, L] or [N, C, H, W], got shape {list(x.shape)}")
    if x.shape[1:] != arrays[first].shape[1:]:
        raise fail(f"'{xk}' samples are {list(x.shape[1:])} but '{first}' samples are "
                   f"{list(arrays[first].shape[1:])}")
    if y is not None and (y.ndim == 0 or len(y) != len(x)):
        raise fail(f"'{yk}' has {len(y) if y.ndim else 0} rows but '{xk}' has {len(x)}", "one target per sample")
    return x, y


def _classes(arrays: dict, fail: Fail) -> tuple[str, ...] | None:
    if "classes" not in arrays:
        return None
    classes = arrays["classes"]
    if classes.ndim != 1 or classes.dtype.kind not in "US":
        raise fail(f"'classes' must be a 1-D text array, got {classes.dtype} of shape {list(classes.shape)}")
    return tuple(str(c) for c in classes)


def _rate(arrays: dict, fail: Fail) -> float | None:
    if "sample_rate" not in arrays:
        return None
    rate = arrays["sample_rate"]
    if rate.ndim != 0 or rate.dtype.kind not in "iuf" or not rate > 0:
        raise fail("'sample_rate' must be one positive number (Hz)")
    return float(rate)


@register_dataset("csv", task=None, description="your .csv file: one row per sample, a label column, features")
def csv_file(config: DatasetConfig) -> Dataset:
    text = _existing(config).read_text(encoding="utf-8-sig")
    table = Table(config.path, text)
    fail = table.fail
    target = table.header.index(config.target) if config.target in table.header else None
    if target is None and config.task != "reconstruction":
        raise fail(f"no label column '{config.target}'",
                   did_you_mean(config.target, table.header) or "set dataset.target to the label column")
    split = table.header.index(SPLIT_COLUMN) if SPLIT_COLUMN in table.header else None
    features = [j for j in range(len(table.header)) if j not in (target, split)]
    if not features:
        raise fail("no feature columns")
    x = _reshape(table.numbers(features), config.shape, fail)
    y, task = (None, "reconstruction") if config.task == "reconstruction" else table.labels(target, config.task)
    rows = {"train": np.arange(len(x))}
    if split is not None:
        for line, fields in table.rows:
            if fields[split] not in SPLITS:
                raise fail(f"column '{SPLIT_COLUMN}' has value '{fields[split]}', expected train, val or test",
                           did_you_mean(fields[split], list(SPLITS)), line, table.col(line, split))
        names = table.column(split)
        rows = {name: np.flatnonzero(names == name) for name in SPLITS}
        if not len(rows["train"]):
            raise fail(f"no rows with {SPLIT_COLUMN} 'train'")
    pairs = {name: (x[i], None if y is None else y[i]) for name, i in rows.items() if len(i)}
    return assemble(config, task=config.task or task, **pairs, description=f"csv file {config.path}", fail=fail)


class Table:
    """The cells of a CSV file with the line and column of each, for located errors."""

    def __init__(self, file: str, text: str):
        self.file = file
        self.lines = text.split("\n")  # the line breaks csv counts (\r\n leaves a harmless \r)
        reader = csv.reader(io.StringIO(text))
        self.header = [name.strip() for name in next(reader, [])]
        if not self.header:
            raise self.fail("empty file, expected a header row")
        for j, name in enumerate(self.header):
            if not name:
                raise self.fail(f"column {j + 1} has no name", "write the file without an index column", 1,
                                self.col(1, j))
            if name in self.header[:j]:
                raise self.fail(f"column '{name}' appears twice", None, 1, self.col(1, j))
        self.rows: list[tuple[int, list[str]]] = []
        start = reader.line_num + 1
        for fields in reader:
            if fields:
                if len(fields) != len(self.header):
                    raise self.fail(f"row has {len(fields)} fields, the header has {len(self.header)}", None, start)
                self.rows.append((start, [f.strip() for f in fields]))
            start = reader.line_num + 1
        if not self.rows:
            raise self.fail("no data rows after the header")

    def fail(self, message: str, hint: str | None = None, line: int = 1, col: int = 1) -> UserError:
        return file_error(self.file, message, hint, line, col)

    def col(self, line: int, j: int) -> int:
        """The 1-based character column where field ``j`` starts on ``line``."""
        starts, quoted = [1], False
        for i, char in enumerate(self.lines[line - 1], 1):
            if char == '"':
                quoted = not quoted
            elif char == "," and not quoted:
                starts.append(i + 1)
        return starts[min(j, len(starts) - 1)]

    def column(self, j: int) -> np.ndarray:
        return np.array([fields[j] for _, fields in self.rows])

    def numbers(self, columns: list[int]) -> np.ndarray:
        """The cells as float64 ``[rows, columns]``; the first non-numeric or non-finite cell is the error."""
        try:
            values = np.array([[fields[j] for j in columns] for _, fields in self.rows], dtype=np.float64)
            if np.isfinite(values).all():
                return values
        except ValueError:
            pass
        for line, fields in self.rows:
            for j in columns:
                problem = _not_a_number(fields[j])
                if problem:
                    raise self.fail(f"column '{self.header[j]}' has {problem} value '{fields[j]}'", None, line,
                                    self.col(line, j))
        raise AssertionError("numpy rejected a cell that float() accepts")

    def labels(self, j: int, task: Task | None) -> tuple[np.ndarray, Task]:
        """Labels and the task they imply: integers or text -> classification, other numbers -> regression."""
        if task != "regression":
            try:
                return np.array([int(fields[j]) for _, fields in self.rows], dtype=np.int64), "classification"
            except ValueError:
                pass
            if any(_not_a_number(fields[j]) for _, fields in self.rows):
                for line, fields in self.rows:
                    if not fields[j]:
                        raise self.fail(f"column '{self.header[j]}' has an empty label", None, line, self.col(line, j))
                return self.column(j), "classification"
        return self.numbers([j])[:, 0], "regression"


def _not_a_number(cell: str) -> str | None:
    try:
        return None if math.isfinite(float(cell)) else "non-finite"
    except ValueError:
        return "non-numeric"


def _reshape(x: np.ndarray, shape: tuple[int, ...] | None, fail: Fail) -> np.ndarray:
    if shape is None:
        return x
    known = math.prod(d for d in shape if d != -1)
    features = x.shape[1]
    fits = features % known == 0 if -1 in shape else features == known
    if not fits:
        raise fail(f"shape {list(shape)} does not fit the {features} feature columns",
                   "the product of shape must be the number of feature columns")
    return x.reshape(len(x), *shape)
