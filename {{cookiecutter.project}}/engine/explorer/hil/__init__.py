"""Hardware in the loop: candidates measured on boards, the values fed back into the study.

Mode 2 (``hardware:`` in the spec) measures every trial inside the search (``loop``); across CI
jobs the same steps run as files (``files``: ask, measure, tell); mode 1 benchmarks the best
models of a finished study (``after``). Measurements are cached (``cache``).
"""

from .cache import MeasurementCache
from .loop import HardwareLoop, NoMeasurement, flatten_metrics

__all__ = ["HardwareLoop", "MeasurementCache", "NoMeasurement", "flatten_metrics"]
