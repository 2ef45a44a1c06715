"""Pre-processing steps against references, no leakage, joint sampling with the architecture."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal as sps

from explorer.ops import Infeasible
from explorer.preprocess import STEPS, Pipeline, Shape, Signal
from explorer.space import check_file, sample


def run(step: str, x, y=None, stream=False, **params):
    s = STEPS[step]
    p = s.with_defaults(params)
    sig = Signal(np.asarray(x, dtype=np.float32), np.asarray(y if y is not None else np.zeros(len(x))), stream)
    return s.apply(sig, p, s.fit(sig, p))


def test_filter_is_the_causal_butterworth_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 2, 200)).astype(np.float32)
    out = run("filter", x, type="lowpass", order=4, cutoff=0.1).x
    reference = sps.sosfilt(sps.butter(4, 0.2, btype="lowpass", output="sos"), x, axis=-1)
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-6)
    impulse = np.zeros((1, 1, 100), dtype=np.float32)
    impulse[..., 50] = 1
    response = run("filter", impulse, type="highpass", order=2, cutoff=0.2).x
    assert np.all(response[..., :50] == 0) and response[..., 50] != 0  # causal


def test_filter_attenuates_out_of_band():
    t = np.arange(1000)
    low, high = np.sin(2 * np.pi * 0.02 * t), np.sin(2 * np.pi * 0.4 * t)
    x = np.stack([low, high])[:, None, :]
    out = run("filter", x, type="lowpass", order=6, cutoff=0.1).x[..., 200:]
    assert np.std(out[0]) > 0.6 and np.std(out[1]) < 0.01
    band = run("filter", x, type="bandpass", order=3, cutoff=0.3, cutoff_high=0.45).x[..., 200:]
    assert np.std(band[1]) > 0.5 and np.std(band[0]) < 0.01


def test_downsample_matches_scipy_decimate_and_keeps_stream_labels():
    x = np.random.default_rng(1).normal(size=(2, 3, 101)).astype(np.float32)
    out = run("downsample", x, factor=4).x
    np.testing.assert_allclose(out, sps.decimate(x, 4, ftype="iir", axis=-1, zero_phase=False), rtol=1e-4, atol=1e-5)
    assert out.shape == (2, 3, 26)
    stream = run("downsample", np.zeros((2, 10)), y=np.arange(10), stream=True, factor=3)
    assert stream.x.shape == (2, 4) and list(stream.y) == [0, 3, 6, 9]


def test_sequential_windows_by_hand():
    x = np.arange(20, dtype=np.float32).reshape(1, 20)
    y = np.array([0] * 12 + [1] * 8)
    out = run("window", x, y=y, stream=True, length=8, stride=6)
    assert out.x.shape == (3, 1, 8) and not out.stream
    assert [list(w[0][:2]) for w in out.x] == [[0, 1], [6, 7], [12, 13]]
    assert list(out.y) == [0, 0, 1]  # majority label of each window: [6, 14) holds six 0s
    samples = run("window", np.ones((5, 2, 10)), y=np.arange(5), length=4)  # stride = length
    assert samples.x.shape == (10, 2, 4) and list(samples.y) == [0, 1, 2, 3, 4] * 2


def test_event_windows_find_known_spikes_with_refractory_period():
    rng = np.random.default_rng(2)
    x = rng.normal(scale=0.1, size=(2, 400)).astype(np.float32)
    for t in (50, 60, 200, 330):
        x[0, t:t + 3] += 5.0
    y = np.zeros(400, dtype=int)
    y[200:260] = 2
    out = run("event_window", x, y=y, stream=True, detector="amplitude", threshold=4.0, refractory=20, before=10,
              after=40)
    starts = [int(np.argmax(w[0] > 2)) for w in out.x]
    assert out.x.shape == (3, 2, 50) and starts == [10, 10, 10]  # 60 is inside 50's refractory period
    assert list(out.y) == [0, 2, 0]
    clean = np.zeros((2, 2, 100), dtype=np.float32)
    clean[0, 0, 50:53] = clean[1, 0, 70] = 5.0  # one spike per sample, at different times
    samples = run("event_window", clean, y=np.array([0, 1]), detector="energy", threshold=2.0, before=5, after=20)
    assert samples.x.shape == (2, 2, 25) and [int(np.argmax(w[0] > 2)) for w in samples.x] == [5, 5]


def test_normalisation_is_fitted_on_training_data_only():
    rng = np.random.default_rng(3)
    train = rng.normal(loc=3, scale=2, size=(50, 2, 30)).astype(np.float32)
    pipeline = Pipeline((("normalize", {"method": "zscore"}),))
    fitted, states = pipeline.fit(Signal(train, np.zeros(50), False))
    np.testing.assert_allclose(fitted.x.mean(axis=(0, 2)), 0, atol=1e-5)
    test_a = pipeline.transform(Signal(rng.normal(size=(5, 2, 30)).astype(np.float32), np.zeros(5), False), states)
    again, states_b = pipeline.fit(Signal(train, np.zeros(50), False))
    assert states == states_b  # val/test never enter the statistics
    assert abs(float(test_a.x.mean()) + 1.5) < 0.5  # test data shifted by the training statistics
    for method in ("minmax", "robust"):
        out, _ = Pipeline((("normalize", {"method": method}),)).fit(Signal(train, np.zeros(50), False))
        if method == "minmax":
            assert out.x.min() == pytest.approx(0, abs=1e-6) and out.x.max() == pytest.approx(1, abs=1e-6)
        else:
            assert np.median(out.x[:, 0]) == pytest.approx(0, abs=1e-5)


@pytest.mark.parametrize("steps,data,reason", [
    ((("window", {"length": 200, "stride": None}),), Shape(3, 100, False), "longer than the signal"),
    ((("filter", {"type": "bandpass", "order": 2, "cutoff": 0.3, "cutoff_high": 0.2}),), Shape(3, 100, False),
     "cutoff_high > cutoff"),
    ((("normalize", {"method": "zscore"}),), Shape(3, 1000, True), "stream needs a window"),
    ((("window", {"length": 10, "stride": None}), ("event_window", {"before": 1, "after": 2})),
     Shape(3, 100, True), "only one windowing"),
    ((("downsample", {"factor": 64}),), Shape(3, 64, False), "leaves 1 step"),
])
def test_data_dependent_choices_are_infeasible(steps, data, reason):
    with pytest.raises(Infeasible, match=reason):
        Pipeline(steps).infer(data)


def test_cost_by_hand():
    stream = Pipeline((("filter", {"type": "lowpass", "order": 4, "cutoff": 0.1, "cutoff_high": 0.45}),
                       ("downsample", {"factor": 2}),
                       ("window", {"length": 50, "stride": 10}),
                       ("normalize", {"method": "zscore"})))
    cost = stream.cost(Shape(3, 10_000, True))
    # filter: 2 sections x 5 MACs x 3 channels per raw step, 20 raw steps per window (stride 10 after /2);
    # decimation: 4 sections x 5 x 3 per raw step, 20 raw steps; normalize: 3 per step over the 50-step window.
    assert cost.ops_per_sample == 30 * 20 + 60 * 20 + 3 * 50
    assert cost.buffer_bytes == 4 * 2 * (6 + 6) + 4 * 4 * (6 + 6) + 4 * 3 * 50 + 8 * 3


SPACE = """\
output: 4
preprocessing:
  filter:
    enabled: [true, false]
    type: [lowpass, highpass]
    cutoff: {low: 0.05, high: 0.4}
  downsample:
    enabled: [true, false]
    factor: [2, 4]
  window:
    length: [16, 32]
    stride: [8, 16]
  normalize:
    method: [zscore, robust]
  order:
    - [filter, downsample, window, normalize]
    - [downsample, filter, window, normalize]
sequence:
  - block: conv
    op_candidates: conv1d
    conv1d: {out_channels: 8, kernel_size: [3, 5]}
  - block: head
    op_candidates: linear
"""


def test_preprocessing_samples_jointly_with_the_architecture(write_space, trial_factory):
    space, diagnostics = check_file(write_space(SPACE))
    assert space is not None and diagnostics == []
    study = trial_factory(seed=0)
    shapes, names = set(), set()
    for _ in range(30):
        trial = study.ask()
        cand = sample(space, trial, data=Shape(6, 200, False))
        assert cand.status == "ok", cand.reason
        shapes.add(tuple(cand.architecture.input.shape))
        names |= set(trial.params)
        steps = [s["step"] for s in cand.architecture.preprocessing]
        assert steps[-2:] == ["window", "normalize"]
    assert len(shapes) >= 2 and {(6, 16), (6, 32)} >= shapes
    assert {"preprocess/filter/enabled", "preprocess/downsample/factor", "preprocess/window/length",
            "preprocess/order", "conv/conv1d/kernel_size"} <= names
    assert sample(space, study.ask()).status == "infeasible"  # no dataset shape given


@pytest.mark.parametrize("text,line,fragment", [
    ("output: 2\npreprocessing:\n  filtr: {}\nsequence:\n  - {block: h, op_candidates: linear}\n", 3, "filtr"),
    ("output: 2\npreprocessing:\n  filter: {cutoff: 0.7}\nsequence:\n  - {block: h, op_candidates: linear}\n", 3,
     "0.7"),
    ("output: 2\npreprocessing:\n  window: {stride: 4}\nsequence:\n  - {block: h, op_candidates: linear}\n", 3,
     "length"),
    ("output: 2\npreprocessing:\n  window: {length: 8}\n  order: [[window, filter]]\nsequence:\n"
     "  - {block: h, op_candidates: linear}\n", 4, "order"),
    ("output: 2\npreprocessing:\n  normalize: {method: [zscore, l2]}\nsequence:\n"
     "  - {block: h, op_candidates: linear}\n", 3, "l2"),
])
def test_preprocessing_mistakes_are_located(write_space, text, line, fragment):
    space, diagnostics = check_file(write_space(text))
    errors = [d for d in diagnostics if d.severity == "error"]
    assert space is None and len(errors) == 1
    assert errors[0].line == line and fragment in str(errors[0])


def test_example_space_trains_one_batch_end_to_end_on_real_data(trial_factory):
    """The generated repo's pre-processing example on BasicMotions: varying input shapes, and every
    ok candidate runs one training step on the transformed real data."""
    import torch

    from explorer.build import build
    from explorer.data import load_dataset
    from explorer.preprocess import apply_to_dataset
    from explorer.search.objective import data_shape
    from explorer.space import load_space

    from .conftest import SPACES

    space = load_space(SPACES / "preprocess.yaml")  # the generated repo's example, on BasicMotions
    dataset = load_dataset("basicmotions")
    study = trial_factory(seed=5)
    shapes = set()
    for _ in range(12):
        cand = sample(space, study.ask(), data=data_shape(dataset))
        assert cand.status == "ok", cand.reason
        arch = cand.architecture
        shapes.add(arch.input.shape)
        data, states = apply_to_dataset(Pipeline.from_json(arch.preprocessing), dataset)
        assert data.train.x.shape[1:] == arch.input.shape and len(states) == len(arch.preprocessing)
        model = build(arch)
        optimizer = torch.optim.Adam(model.parameters())
        x = torch.tensor(data.train.x[:8])
        loss = torch.nn.functional.cross_entropy(model(x), torch.tensor(data.train.y[:8], dtype=torch.long))
        loss.backward()
        optimizer.step()
        assert torch.isfinite(loss)
    assert len(shapes) >= 2
    hits = apply_to_dataset.hits
    again = apply_to_dataset(Pipeline.from_json(arch.preprocessing), dataset)
    assert apply_to_dataset.hits == hits + 1 and again[0] is data  # the same pipeline comes from the cache
