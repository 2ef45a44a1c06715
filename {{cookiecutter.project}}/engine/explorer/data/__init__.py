"""Datasets: the ``dataset:`` spec entry, the registry of loaders, splits, and prepared files.

Importing this package imports neither torch nor aeon; the loaders import what they need.
"""

from . import builtin, files  # noqa: F401  (register the built-in datasets and the npz / csv readers)
from .commands import datasets_table, run_prepare
from .config import DatasetConfig, Task
from .dataset import SPLITS, Dataset, Split
from .prepare import load_prepared, prepare
from .registry import DEFAULT_DATASETS, DatasetEntry, DatasetRegistry, load_dataset, register_dataset

__all__ = ["DEFAULT_DATASETS", "SPLITS", "Dataset", "DatasetConfig", "DatasetEntry", "DatasetRegistry", "Split",
           "Task", "datasets_table", "load_dataset", "load_prepared", "prepare", "register_dataset", "run_prepare"]
