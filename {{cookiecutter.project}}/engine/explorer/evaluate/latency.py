"""Host latency: the built model timed on this machine (batch 1, eval, inference mode, one thread).

A ``measured`` estimator, not ``static``: it needs torch, runs the model and its numbers vary
between runs and machines. One thread makes candidates comparable and closer to a single-core
microcontroller; the previous thread count and the model's train/eval mode are restored.
"""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from typing import Iterator

from .estimator import EstimateContext, Estimator, register_estimator


@contextmanager
def single_thread() -> Iterator[None]:
    """``torch.set_num_threads(1)`` for the block, restoring the previous count afterwards."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@register_estimator("latency")
class LatencyEstimator(Estimator):
    """Median and 90th percentile (interpolated) of ``repeats`` timed runs after ``warmup`` runs."""

    unit = "ms"
    cost = "measured"

    def __init__(self, warmup: int = 5, repeats: int = 30):
        self.warmup, self.repeats = warmup, repeats

    def estimate(self, context: EstimateContext) -> dict[str, float]:
        import torch

        model = context.built_model()
        x = torch.randn(1, *context.architecture.input.shape)
        training = model.training
        times = []
        try:
            model.eval()
            with single_thread(), torch.inference_mode():
                for _ in range(self.warmup):
                    model(x)
                for _ in range(self.repeats):
                    start = time.perf_counter_ns()
                    model(x)
                    times.append((time.perf_counter_ns() - start) / 1e6)
        finally:
            model.train(training)
        p90 = statistics.quantiles(times, n=10, method="inclusive")[-1] if len(times) > 1 else times[0]
        return {"latency_median": statistics.median(times), "latency_p90": p90}
