"""The built-in datasets: all offline, from data that aeon and scikit-learn ship.

aeon (~2 s to import) and scikit-learn are imported inside the loaders, so listing the
datasets or validating a spec never pays for them.
"""

from __future__ import annotations

import warnings

import numpy as np

from .config import DatasetConfig
from .dataset import Dataset, Split
from .registry import DEFAULT_DATASETS, register_dataset
from .splits import assemble, cut_stream

HOURLY, DAILY = 1 / 3600, 1 / 86400
BASICMOTIONS_HZ = 10.0  # the archive: "sampled once every tenth of a second"
DAPHNET_HZ = 64.0  # the CSV's timestamps step 15.6 ms (aeon's docstring says ~256 Hz; the data disagrees)

# name, aeon problem, per-sample shape, classes, sample rate, description
UCR = (
    ("basicmotions", "BasicMotions", (6, 100), 4, BASICMOTIONS_HZ,
     "smartwatch accelerometer + gyroscope, 10 s at 10 Hz: badminton, running, standing, walking"),
    ("gunpoint", "GunPoint", (1, 150), 2, None, "hand x-position tracked in video: gun draw vs point"),
    ("arrowhead", "ArrowHead", (1, 251), 3, None, "arrowhead outlines as angle series: Avonlea, Clovis, mix"),
    ("italypowerdemand", "ItalyPowerDemand", (1, 24), 2, HOURLY,
     "Italian power demand over one day, hourly: October-March vs April-September"),
)


def _aeon_classification(problem: str, sample_rate: float | None):
    def load(config: DatasetConfig) -> Dataset:
        from aeon.datasets import load_classification

        train, test = (load_classification(problem, split=split) for split in ("train", "test"))
        return assemble(config, task="classification", train=train, test=test, sample_rate=sample_rate)

    return load


for _name, _problem, _shape, _classes, _rate, _doc in UCR:
    register_dataset(_name, task="classification", description=_doc, input_shape=_shape, classes=_classes,
                     sample_rate=_rate)(_aeon_classification(_problem, _rate))


@register_dataset("covid3month", task="regression", input_shape=(1, 84), sample_rate=DAILY,
                  description="daily confirmed COVID-19 cases per country over three months -> death rate")
def covid3month(config: DatasetConfig) -> Dataset:
    from aeon.datasets import load_regression

    train, test = (load_regression("Covid3Month", split=split) for split in ("train", "test"))
    return assemble(config, task="regression", train=train, test=test, sample_rate=DAILY)


@register_dataset("digits", task="classification", input_shape=(1, 8, 8), classes=10,
                  description="8x8 handwritten digits (scikit-learn) scaled to [0, 1]; 25% held out for test")
def digits(config: DatasetConfig) -> Dataset:
    from sklearn.datasets import load_digits

    data = load_digits()
    return assemble(config, task="classification", train=(data.images[:, None] / 16.0, data.target),
                    test_fraction=0.25)


@register_dataset("synthetic", task="classification", input_shape=(3, 64), classes=4, sample_rate=64.0,
                  description="seeded noisy sinusoids, frequency by class: small and fast, for tests")
def synthetic(config: DatasetConfig, classes: int = 4, channels: int = 3, length: int = 64, samples: int = 200,
              rate: float = 64.0) -> Dataset:
    rng = np.random.default_rng(0)  # the data is fixed; config.seed only moves the splits
    y = np.arange(samples) % classes
    hz = 2.0 * (y + 1)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, (samples, channels, 1))
    noise = 0.3 * rng.standard_normal((samples, channels, length))
    x = np.sin(2 * np.pi * hz * np.arange(length) / rate + phase) + noise
    return assemble(config, task="classification", train=(x, y), sample_rate=rate)


@register_dataset("daphnet", task="classification", stream=True, input_shape=(9,), classes=2, sample_rate=DAPHNET_HZ,
                  description="freezing-of-gait accelerometers (ankle, leg, trunk) at 64 Hz as one stream; "
                              "this excerpt has no freeze episodes")
def daphnet(config: DatasetConfig) -> Dataset:
    from aeon.datasets import load_daphnet_s06r02e0

    with warnings.catch_warnings():  # deprecated in aeon 1.6 because the excerpt has no anomalies
        warnings.filterwarnings("ignore", message=".*load_daphnet_s06r02e0", category=FutureWarning)
        x, y = load_daphnet_s06r02e0()
    return assemble(config, task="classification", **cut_stream(x.T, y, config.val_fraction),
                    classes=("normal", "freeze"), sample_rate=DAPHNET_HZ, stream=True)


QUIET = 0.01  # noise level between events
GAPS = (20, 60)  # quiet steps before each event and after the last, inclusive


@register_dataset("basicmotions-stream", task="classification", stream=True, input_shape=(6,), classes=5,
                  sample_rate=BASICMOTIONS_HZ,
                  description="BasicMotions samples strung together with quiet gaps: events at known positions")
def basicmotions_stream(config: DatasetConfig) -> Dataset:
    basicmotions = DatasetConfig(name="basicmotions", seed=config.seed, val_fraction=config.val_fraction)
    source = DEFAULT_DATASETS["basicmotions"].loader(basicmotions)
    rng = np.random.default_rng(config.seed)
    streams = {name: _string_together(split, rng) for name, split in source.splits.items()}
    return assemble(config, task="classification", **streams, classes=("none", *source.classes),
                    sample_rate=BASICMOTIONS_HZ, stream=True)


def _string_together(split: Split, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One ``[C, T]`` stream: shuffled samples, labelled class + 1, between quiet gaps labelled 0."""
    channels, length = split.x.shape[1:]
    pieces, labels = [], []
    order = rng.permutation(len(split.x))
    for i, gap in zip([*order, None], rng.integers(GAPS[0], GAPS[1] + 1, size=len(order) + 1)):
        pieces.append(QUIET * rng.standard_normal((channels, gap)))
        labels.append(np.zeros(gap, np.int64))
        if i is not None:
            pieces.append(split.x[i])
            labels.append(np.full(length, split.y[i] + 1, np.int64))
    return np.concatenate(pieces, axis=1), np.concatenate(labels)
