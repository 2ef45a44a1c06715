"""The searchable pre-processing pipeline: filter, downsample, window, event_window, normalize."""

from .pipeline import Pipeline, PipelineCost, apply_to_dataset
from .steps import ENABLED, STEPS, Shape, Signal, Step, register_step

__all__ = ["ENABLED", "STEPS", "Pipeline", "PipelineCost", "Shape", "Signal", "Step", "apply_to_dataset",
           "register_step"]
