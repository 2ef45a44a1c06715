"""From a source's raw arrays to a ``Dataset``: targets encoded for the task, splits made.

Every loader ends here, so the rules hold for all of them: the test split is the source's
own when it has one, otherwise a seeded hold-out; validation is a seeded hold-out of the
training data, stratified for classification; streams are cut in time, never shuffled.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..errors import UserError
from .config import DatasetConfig, Task
from .dataset import Dataset, Split

Fail = Callable[..., UserError]  # (message, hint=None) -> the error to raise, located at the source
Pair = tuple[np.ndarray, np.ndarray | None]  # inputs, raw targets (None: reconstruction only)


def assemble(config: DatasetConfig, *, task: Task, train: Pair, test: Pair | None = None, val: Pair | None = None,
             classes: tuple[str, ...] | None = None, sample_rate: float | None = None, stream: bool = False,
             description: str = "", test_fraction: float = 0.2, fail: Fail | None = None) -> Dataset:
    """The dataset, with ``config.task`` overriding ``task``; missing test / val splits are held out."""
    fail = fail or config.error
    task = config.task or task
    given = {name: pair for name, pair in (("train", train), ("val", val), ("test", test)) if pair is not None}
    xs = {name: _inputs(x, name, fail) for name, (x, _) in given.items()}
    if task == "reconstruction":
        ys, classes = xs, ()
    else:
        ys, classes = encode(task, {name: _targets(y, name, task, fail) for name, (_, y) in given.items()},
                             classes, fail)
    pairs = {name: (xs[name], ys[name]) for name in given}
    stratify = classes if task == "classification" and not stream else None
    if test is None:
        pairs["train"], pairs["test"] = split_off(*pairs["train"], test_fraction, config.seed, stratify, "test", fail)
    if val is None:
        pairs["train"], pairs["val"] = split_off(*pairs["train"], config.val_fraction, config.seed, stratify,
                                                 "validation", fail)
    splits = {name: Split(x, x if task == "reconstruction" else y) for name, (x, y) in pairs.items()}
    return Dataset(config.name, task, splits["train"], splits["val"], splits["test"], tuple(classes),
                   sample_rate, stream, description)


def encode(task: Task, ys: dict[str, np.ndarray], classes: tuple[str, ...] | None,
           fail: Fail) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Regression targets as float32; class labels as int64 indices into sorted (or given) class names."""
    if task == "regression":
        for name, y in ys.items():
            if y.dtype.kind not in "biuf":
                raise fail(f"regression needs numeric targets; the {name} targets are text",
                           "set task: classification")
        return {name: y.astype(np.float32) for name, y in ys.items()}, ()
    for name, y in ys.items():
        if y.ndim != 1:
            raise fail(f"classification needs one label per sample; the {name} labels have shape {list(y.shape)}")
    if classes is not None:
        for name, y in ys.items():
            if y.dtype.kind not in "biu" or (len(y) and (y.min() < 0 or y.max() >= len(classes))):
                raise fail(f"the {name} labels must be integer indices into the {len(classes)} class names")
        return {name: y.astype(np.int64) for name, y in ys.items()}, tuple(classes)
    values = np.concatenate(list(ys.values()))
    if values.dtype.kind == "f":
        bad = values[~np.isclose(values, np.round(values))]
        if len(bad):
            raise fail(f"classification needs integer or text labels, found {bad[0]:g}", "set task: regression")
        ys = {name: np.round(y).astype(np.int64) for name, y in ys.items()}
        values = np.round(values).astype(np.int64)
    names = np.unique(values)
    return {name: np.searchsorted(names, y).astype(np.int64) for name, y in ys.items()}, tuple(map(str, names))


def split_off(x: np.ndarray, y: np.ndarray, fraction: float, seed: int, classes: tuple[str, ...] | None,
              what: str, fail: Fail) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Hold out ``ceil(fraction * n)`` samples (sklearn's rule), stratified by ``y`` when ``classes`` is given."""
    from sklearn.model_selection import train_test_split  # slow import (~3 s); only loading needs it

    n = len(x)
    held = math.ceil(fraction * n)
    if held == 0 or held == n:
        raise fail(f"{n} samples are too few to hold out a {what} split", "add samples")
    if classes is not None:
        counts = np.bincount(y, minlength=len(classes))
        present = np.flatnonzero(counts)
        rare = present[np.argmin(counts[present])]
        if counts[rare] < 2:
            raise fail(f"class '{classes[rare]}' has {counts[rare]} sample in the data the {what} split is taken "
                       "from; a stratified split needs at least 2", "add samples of that class")
        if min(held, n - held) < len(present):
            raise fail(f"a {what} split of {held} of {n} samples cannot hold all {len(present)} classes on "
                       "both sides", "add samples" + (" or change val_fraction" if what == "validation" else ""))
    rest, part = train_test_split(np.arange(n), test_size=held, random_state=seed,
                                  stratify=y if classes is not None else None)
    rest, part = np.sort(rest), np.sort(part)
    return (x[rest], y[rest]), (x[part], y[part])


def cut_stream(x: np.ndarray, y: np.ndarray, val_fraction: float, test_fraction: float = 0.2) -> dict[str, Pair]:
    """A ``[C, T]`` recording cut in time: train, then validation, then the last ``test_fraction`` as test."""
    steps = x.shape[1]
    test_at = steps - round(test_fraction * steps)
    val_at = test_at - round(val_fraction * steps)
    cuts = {"train": slice(0, val_at), "val": slice(val_at, test_at), "test": slice(test_at, steps)}
    return {name: (x[:, cut], y[cut]) for name, cut in cuts.items()}


def _inputs(x: np.ndarray, name: str, fail: Fail) -> np.ndarray:
    if x.dtype.kind not in "biuf":
        raise fail(f"the {name} inputs must be numbers, found {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise fail(f"the {name} inputs contain NaN or infinite values", "fill or drop missing values first")
    return x


def _targets(y: np.ndarray | None, name: str, task: Task, fail: Fail) -> np.ndarray:
    if y is None:
        raise fail(f"task '{task}' needs targets, the {name} split has none")
    return y
