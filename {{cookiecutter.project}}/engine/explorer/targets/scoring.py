"""Score what a board returned against the exported samples: one metrics JSON per run."""

from __future__ import annotations

from typing import Any

import numpy as np

from .model import Samples


def score(results: list[dict[str, Any]], samples: Samples, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Latency (median/p90) or simulated instruction counts, accuracy on the test samples, and
    agreement with PyTorch's outputs (max absolute difference, argmax agreement)."""
    outputs = np.array([r["output"] for r in results], dtype=np.float64).reshape(samples.reference.shape)
    reference = samples.reference.astype(np.float64)
    metrics: dict[str, Any] = {"n": len(results)}
    times = [r["time_ns"] for r in results if "time_ns" in r]
    if times:
        metrics["latency_ms"] = {"median": float(np.median(times)) / 1e6,
                                 "p90": float(np.percentile(times, 90)) / 1e6}
    instructions = [r["instructions"] for r in results if "instructions" in r]
    if instructions:
        # A simulator models no timing: instruction counts are the simulated cost, labelled as such.
        metrics["simulated_instructions"] = {"median": float(np.median(instructions)),
                                             "p90": float(np.percentile(instructions, 90))}
    diff = np.abs(outputs - reference)
    metrics["agreement"] = {"max_abs_diff": float(diff.max()) if diff.size else 0.0,
                            "mean_abs_diff": float(diff.mean()) if diff.size else 0.0}
    if samples.task == "classification" and outputs.ndim == 2:
        predicted = outputs.argmax(1)
        metrics["agreement"]["argmax_match"] = float((predicted == reference.argmax(1)).mean())
        metrics["accuracy"] = float((predicted == samples.y.astype(np.int64)).mean())
    else:
        metrics["mse"] = float(((outputs.reshape(len(results), -1) - samples.y.reshape(len(results), -1)) ** 2).mean())
    metrics.update(extra or {})
    return metrics
