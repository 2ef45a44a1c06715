"""Estimators: the metrics a search optimises, from the Architecture (static) or by running it.

Importing this package registers the built-ins, cheapest first: ``params``, ``macs``,
``memory`` (static: Architecture only, no torch), ``latency`` (measured on the host) and
``predicted_latency`` (static, from the predictor file ``explorer calibrate`` fits) and
``tflm_arena`` (static: the TFLite Micro arena a Pico needs, when a criterion asks for it).
"""

# Registration order is the report order within a cost class, so these are not sorted.
from . import params, macs, memory, latency, predictor, arena  # noqa: F401, I001  (registers the built-in estimators)
from .estimator import (
    COSTS,
    DEFAULT_ESTIMATORS,
    EstimateContext,
    Estimator,
    EstimatorRegistry,
    PipelineCost,
    estimate_all,
    register_estimator,
)
from .macs import MACS, Macs, register_macs
from .memory import MEMORY, OpMemory, register_memory
from .params import PARAMS, ParamCount, register_params
from .tables import MissingFormula, OpTable

__all__ = ["COSTS", "DEFAULT_ESTIMATORS", "MACS", "MEMORY", "PARAMS", "EstimateContext", "Estimator",
           "EstimatorRegistry", "Macs", "MissingFormula", "OpMemory", "OpTable", "ParamCount", "PipelineCost",
           "estimate_all", "register_estimator", "register_macs", "register_memory", "register_params"]
