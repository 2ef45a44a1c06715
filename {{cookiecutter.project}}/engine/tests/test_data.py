"""The dataset layer on real data: built-ins, splits, user files, located errors, prepared files."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from functools import lru_cache

import numpy as np
import pytest

from explorer.data import (DEFAULT_DATASETS, Dataset, DatasetConfig, datasets_table, load_dataset, load_prepared,
                           prepare, run_prepare)
from explorer.errors import UserError

BUILTINS = [name for name, entry in DEFAULT_DATASETS.entries.items() if entry.task is not None]


@lru_cache(maxsize=None)
def load(name: str, seed: int = 0) -> Dataset:
    return load_dataset({"name": name, "seed": seed})


def rows(x: np.ndarray) -> set[bytes]:
    return {sample.tobytes() for sample in x}


def user_error(config, root=None, where=None) -> str:
    """The single line a user sees for ``config``."""
    with pytest.raises(UserError) as caught:
        load_dataset(DatasetConfig.parse(config, root=root, where=where))
    lines = caught.value.lines()
    assert len(lines) == 1, lines
    return lines[0]


# --- built-ins ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_loads_as_declared(name):
    dataset, entry = load(name), DEFAULT_DATASETS[name]
    assert (dataset.name, dataset.task, dataset.stream) == (name, entry.task, entry.stream)
    assert dataset.input_shape == entry.input_shape and dataset.sample_rate == entry.sample_rate
    assert len(dataset.classes) == (entry.classes or 0) and dataset.description == entry.description
    for split in dataset.splits.values():
        assert split.x.dtype == np.float32 and np.isfinite(split.x).all() and len(split.x) > 0
        if dataset.stream:
            assert split.x.shape == (*dataset.input_shape, len(split.y))
        else:
            assert split.x.shape[1:] == dataset.input_shape and len(split.x) == len(split.y)
        if dataset.task == "classification":
            assert split.y.dtype == np.int64 and 0 <= split.y.min() and split.y.max() < len(dataset.classes)
        else:
            assert split.y.dtype == np.float32


def test_builtin_sizes():
    motions = load("basicmotions")
    assert motions.sizes() == {"train": 32, "val": 8, "test": 40}  # the archive's 40 training samples, then 40
    assert motions.classes == ("badminton", "running", "standing", "walking")
    digits = load("digits")
    assert digits.input_shape == (1, 8, 8) and digits.sizes()["test"] == 450  # 25% of 1797
    assert min(s.x.min() for s in digits.splits.values()) == 0 and max(s.x.max() for s in digits.splits.values()) == 1
    covid = load("covid3month")
    assert covid.task == "regression" and covid.sizes() == {"train": 112, "val": 28, "test": 61}


def test_daphnet_is_cut_in_time_without_shuffling():
    from aeon.datasets import load_daphnet_s06r02e0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecated in aeon 1.6, still shipped
        x, _ = load_daphnet_s06r02e0()
    daphnet = load("daphnet")
    assert daphnet.stream and daphnet.input_shape == (9,) and daphnet.sample_rate == 64.0
    assert daphnet.sizes() == {"train": 4224, "val": 1408, "test": 1408}  # 60/20/20 of 7040 steps
    np.testing.assert_array_equal(np.concatenate([s.x for s in daphnet.splits.values()], axis=1), x.T)


def test_stream_events_are_where_the_labels_say():
    stream, source = load("basicmotions-stream"), load("basicmotions")
    assert stream.classes == ("none", *source.classes)
    for name, split in stream.splits.items():
        edges = np.flatnonzero(np.diff(np.r_[0, split.y != 0, 0]))
        starts, ends = edges[::2], edges[1::2]
        gaps = np.r_[starts[0], starts[1:] - ends[:-1], len(split.y) - ends[-1]]
        assert (ends - starts == 100).all() and ((20 <= gaps) & (gaps <= 60)).all()
        assert np.abs(split.x[:, split.y == 0]).max() < 0.1  # quiet between events
        events = sorted((split.y[s] - 1, split.x[:, s:e].tobytes()) for s, e in zip(starts, ends))
        samples = sorted((y, x.tobytes()) for x, y in zip(source.splits[name].x, source.splits[name].y))
        assert events == samples


# --- splits -------------------------------------------------------------------------------------------------------

def test_splits_are_deterministic_per_seed():
    for name in ("digits", "basicmotions"):
        again = load_dataset({"name": name, "seed": 0})
        assert again.fingerprint == load(name).fingerprint
        other = load(name, seed=1)
        assert other.fingerprint != load(name).fingerprint
        assert rows(other.val.x) != rows(load(name).val.x)
    assert rows(load("basicmotions", 1).test.x) == rows(load("basicmotions").test.x)  # the source's own test split


def test_validation_is_stratified_and_disjoint_from_train():
    from aeon.datasets import load_classification

    source, _ = load_classification("BasicMotions", split="train")
    motions = load("basicmotions")
    assert np.bincount(motions.val.y).tolist() == [2, 2, 2, 2]
    assert not rows(motions.train.x) & rows(motions.val.x)
    assert rows(motions.train.x) | rows(motions.val.x) == rows(source.astype(np.float32))
    digits = load("digits")
    share = np.bincount(digits.val.y, minlength=10) / np.bincount(digits.train.y, minlength=10)
    assert np.allclose(share, 0.25, atol=0.02)  # 20% of the 75% left after the test split


def test_task_override():
    assert all(s.y is s.x for s in load_dataset({"name": "synthetic", "task": "reconstruction"}).splits.values())
    regression = load_dataset({"name": "synthetic", "task": "regression"})
    assert regression.task == "regression" and regression.classes == () and regression.train.y.dtype == np.float32
    stream = load_dataset({"name": "daphnet", "task": "reconstruction"})
    assert stream.train.y is stream.train.x and stream.sizes() == load("daphnet").sizes()


# --- user files ---------------------------------------------------------------------------------------------------

def test_npz_with_its_own_splits_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {f"x_{s}": rng.standard_normal((n, 2, 16)) for s, n in (("train", 30), ("val", 9), ("test", 12))}
    arrays |= {f"y_{s}": np.arange(n) % 3 for s, n in (("train", 30), ("val", 9), ("test", 12))}
    np.savez(tmp_path / "d.npz", **arrays, classes=np.array(["a", "b", "c"]), sample_rate=np.float64(50))
    dataset = load_dataset({"name": "npz", "path": "d.npz"}, root=tmp_path)
    assert (dataset.task, dataset.classes, dataset.sample_rate, dataset.input_shape) == \
        ("classification", ("a", "b", "c"), 50.0, (2, 16))
    for name, split in dataset.splits.items():
        np.testing.assert_array_equal(split.x, arrays[f"x_{name}"].astype(np.float32))
        np.testing.assert_array_equal(split.y, arrays[f"y_{name}"])


def test_npz_with_x_y_is_split_80_20_then_validation(tmp_path):
    x = np.random.default_rng(0).standard_normal((50, 4))
    np.savez(tmp_path / "r.npz", x=x, y=x.sum(axis=1))
    regression = load_dataset({"name": "npz", "path": "r.npz"}, root=tmp_path)
    assert regression.task == "regression" and list(regression.sizes().values()) == [32, 8, 10]
    assert set.union(*(rows(s.x) for s in regression.splits.values())) == rows(x.astype(np.float32))
    np.savez(tmp_path / "c.npz", x=x, y=np.where(np.arange(50) % 2, 7, 3))
    classification = load_dataset({"name": "npz", "path": "c.npz"}, root=tmp_path)
    assert classification.classes == ("3", "7")
    assert [np.bincount(s.y).tolist() for s in classification.splits.values()] == [[16, 16], [4, 4], [5, 5]]


def test_csv_with_split_column_and_shape(tmp_path):
    lines = ["activity,split," + ",".join(f"c{i}" for i in range(6))]
    lines += [f"{'walk' if i % 2 else 'run'},{['train', 'train', 'val', 'test'][i % 4]}," +
              ",".join(str(10 * i + j) for j in range(6)) for i in range(16)]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    dataset = load_dataset({"name": "csv", "path": "m.csv", "target": "activity", "shape": [2, 3]}, root=tmp_path)
    assert dataset.classes == ("run", "walk") and dataset.input_shape == (2, 3)
    assert list(dataset.sizes().values()) == [8, 4, 4]
    np.testing.assert_array_equal(dataset.train.x[1], [[10, 11, 12], [13, 14, 15]])  # channel-major
    np.testing.assert_array_equal(dataset.test.y, [1, 1, 1, 1])


def test_csv_without_split_column_infers_regression(tmp_path):
    (tmp_path / "r.csv").write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i / 10}\n" for i in range(20)))
    dataset = load_dataset({"name": "csv", "path": "r.csv", "shape": [-1]}, root=tmp_path)
    assert dataset.task == "regression" and dataset.input_shape == (2,)
    assert list(dataset.sizes().values()) == [12, 4, 4]


# --- user errors: one located line each ---------------------------------------------------------------------------

def test_unknown_name_suggests_a_registered_one():
    assert user_error("gunpiont", where=("params.yaml", 1, 10)) == \
        "params.yaml:1:10: error: unknown dataset 'gunpiont' (hint: did you mean 'gunpoint'?)"
    assert user_error("nothing-like-it").startswith("error: unknown dataset 'nothing-like-it' (hint: ")


def test_bad_config_values(tmp_path):
    with pytest.raises(UserError) as caught:
        DatasetConfig.parse({"name": "digits", "val_fraction": 0.5}, where=("params.yaml", 2, 3))
    assert caught.value.lines() == ["params.yaml:2:3: error: dataset.val_fraction: Input should be less than 0.5"]
    with pytest.raises(UserError, match="dataset: dataset 'csv' needs 'path'"):
        DatasetConfig.parse("csv")
    assert DatasetConfig.parse("digits") == DatasetConfig(name="digits")


def test_missing_file(tmp_path):
    line = user_error({"name": "npz", "path": "data/none.npz"}, root=tmp_path, where=("params.yaml", 2, 11))
    assert line == f"params.yaml:2:11: error: dataset file 'data/none.npz' not found " \
                   f"(hint: paths are relative to the experiment root {tmp_path})"


@pytest.mark.parametrize("arrays, expected", [
    ({"x_train": np.ones((4, 3)), "y_train": np.ones(4), "x_test": np.ones((2, 3))}, "missing array 'y_test'"),
    ({"X_train": np.ones((4, 3))}, "unknown array 'X_train' (hint: did you mean 'x_train'?)"),
    ({"x": np.ones((10, 3)), "y": np.ones(9)}, "'y' has 9 rows but 'x' has 10 (hint: one target per sample)"),
    ({"x": np.ones(10), "y": np.ones(10)}, "'x' must be [N, F], [N, C, L] or [N, C, H, W], got shape [10]"),
    ({"x": np.ones((11, 3)), "y": np.r_[np.zeros(10, int), 1]},
     "class '1' has 1 sample in the data the test split is taken from; a stratified split needs at least 2"),
])
def test_npz_mistakes(tmp_path, arrays, expected):
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "d.npz", **arrays)
    assert user_error({"name": "npz", "path": "data/d.npz"}, root=tmp_path).startswith(f"data/d.npz:1:1: error: "
                                                                                       f"{expected}")


@pytest.mark.parametrize("text, shape, expected", [
    ("label,acc_x,acc_y\n0,1,2\n1,abc,3\n", None, "data/x.csv:3:3: error: column 'acc_x' has non-numeric value 'abc'"),
    ('label,acc_x,acc_y\n0,1,2\n"1",2,nan\n', None, "data/x.csv:3:7: error: column 'acc_y' has non-finite value 'nan'"),
    ("label,acc_x,acc_y\n0,1,2\n1,2\n", None, "data/x.csv:3:1: error: row has 2 fields, the header has 3"),
    ("label,a,b,c\n0,1,2,3\n", [2, 2], "data/x.csv:1:1: error: shape [2, 2] does not fit the 3 feature columns"),
    ("label,a,b,c\n0,1,2,3\n", [2, -1], "data/x.csv:1:1: error: shape [2, -1] does not fit the 3 feature columns"),
    ("lable,a\n0,1\n", None, "data/x.csv:1:1: error: no label column 'label' (hint: did you mean 'lable'?)"),
    ("label,a,split\n0,1,train\n1,2,tset\n", None,
     "data/x.csv:3:5: error: column 'split' has value 'tset', expected train, val or test "
     "(hint: did you mean 'test'?)"),
])
def test_csv_mistakes(tmp_path, text, shape, expected):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_text(text)
    assert user_error({"name": "csv", "path": "data/x.csv", "shape": shape}, root=tmp_path).startswith(expected)


# --- prepared files -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["synthetic", "basicmotions-stream"])
def test_prepare_twice_is_byte_identical_and_loads_back(tmp_path, name):
    manifest = run_prepare(name, root=tmp_path)
    out = tmp_path / "data" / "prepared"
    first = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(out.iterdir())}
    assert sorted(first) == ["manifest.json", "test.npz", "train.npz", "val.npz"]
    assert prepare(name, tmp_path) == manifest
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(out.iterdir())} == first
    dataset = load_prepared(out)
    assert dataset.fingerprint == manifest["fingerprint"] == load(name).fingerprint
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["stream"] == dataset.stream and manifest["input_shape"] == list(dataset.input_shape)
    assert manifest["class_counts"]["val"] == dict(zip(dataset.classes, np.bincount(dataset.val.y).tolist()))


def test_corrupted_prepared_files_are_one_line(tmp_path):
    out = tmp_path / "prepared"
    prepare("synthetic", tmp_path, out)
    data = bytearray((out / "val.npz").read_bytes())
    data[-100] ^= 1
    (out / "val.npz").write_bytes(bytes(data))
    with pytest.raises(UserError) as caught:
        load_prepared(out)
    assert caught.value.lines() == [f"{out / 'val.npz'}:1:1: error: changed since it was prepared (sha256 differs); "
                                    "manifest.json does not match (hint: run `explorer prepare` again (or `dvc "
                                    "checkout`))"]
    (out / "manifest.json").write_text('{"name": "synthetic",\n  "task" "classification"}')
    with pytest.raises(UserError) as caught:
        load_prepared(out)
    assert caught.value.lines()[0].startswith(f"{out / 'manifest.json'}:2:10: error: invalid JSON")


# --- registry and start-up cost -----------------------------------------------------------------------------------

def test_registry_copy_takes_a_user_loader():
    registry = DEFAULT_DATASETS.copy()

    @registry.register("tiny", task="classification", description="two samples per class")
    def tiny(config):
        return load_dataset({"name": "synthetic", "seed": config.seed})

    assert "tiny" in registry and "tiny" not in DEFAULT_DATASETS
    assert load_dataset("tiny", registry).description == load("synthetic").description
    with pytest.raises(ValueError, match="already registered"):
        registry.register("tiny", task=None, description="")(tiny)
    assert [row["name"] for row in datasets_table(registry)][-1] == "tiny"


def test_import_and_listing_stay_light_and_fingerprints_stable_across_runs():
    code = ("import sys, explorer.data as d\n"
            "rows = d.datasets_table()\n"
            "print(sorted({'torch', 'aeon', 'sklearn'} & set(sys.modules)), len(rows))\n"
            "print(d.load_dataset('synthetic').fingerprint)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, fingerprint = result.stdout.splitlines()
    assert heavy == f"[] {len(DEFAULT_DATASETS.entries)}"
    assert fingerprint == load("synthetic").fingerprint
