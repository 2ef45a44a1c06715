"""A Pareto front as a Mermaid ``quadrantChart``: a chart GitHub draws from the comment's text.

The quadrant chart is Mermaid's one scatter plot (``xychart-beta`` has only bars and lines).
Its grammar (mermaid's ``quadrant.jison``) limits what may be written: a coordinate is ``0``,
``1`` or ``0.<digits>``, and labels are safest as letters, digits, spaces and ``_``; brackets,
colons and quotes end a label. So points are normalised to 0..1 per axis (the real ranges
go in a caption under the chart) and every label is reduced to those characters.
"""

from __future__ import annotations

import math
import re


def label(text: str) -> str:
    """Only characters every Mermaid version reads inside a quadrant label."""
    cleaned = re.sub(r"[^A-Za-z0-9_ ]+", " ", text)
    # keywords the lexer matches anywhere (case-insensitive) would end the label
    cleaned = re.sub(r"(?i)title|classdef|quadrantchart", lambda m: m.group(0)[:2] + "_" + m.group(0)[2:], cleaned)
    return re.sub(r" {2,}", " ", cleaned).strip() or "value"


def coordinate(value: float) -> str:
    """``0``, ``1`` or ``0.ddd``: the only forms the grammar's lexer accepts."""
    rounded = round(min(max(value, 0.0), 1.0), 3)
    if rounded >= 1.0:
        return "1"
    if rounded <= 0.0:
        return "0"
    return f"{rounded:.3f}"


def normalise(values: list[float]) -> list[float]:
    """Min-max to 0.05..0.95 (points off the frame's edge); all equal -> the middle."""
    low, high = min(values), max(values)
    if not math.isfinite(low) or not math.isfinite(high) or high - low <= 0:
        return [0.5] * len(values)
    return [0.05 + 0.9 * (v - low) / (high - low) for v in values]


def quadrant_chart(points: list[tuple[str, float, float]], x_name: str, y_name: str, title: str,
                   x_better: str, y_better: str) -> str:
    """``points`` are (name, x, y) in real units; ``x_better``/``y_better`` are ``minimize`` or
    ``maximize`` and name the quadrant where the best trade-offs sit."""
    xs = normalise([p[1] for p in points])
    ys = normalise([p[2] for p in points])
    x, y = label(x_name), label(y_name)
    best = {("minimize", "maximize"): 2, ("maximize", "maximize"): 1, ("minimize", "minimize"): 3,
            ("maximize", "minimize"): 4}[(x_better, y_better)]
    lines = ["quadrantChart", f"    title {label(title)}", f"    x-axis low {x} --> high {x}",
             f"    y-axis low {y} --> high {y}", f"    quadrant-{best} better on both"]
    for (name, _, _), px, py in zip(points, xs, ys):
        lines.append(f"    {label(name)}: [{coordinate(px)}, {coordinate(py)}]")
    return "\n".join(lines)
