"""Post-training int8 quantisation of a lowered graph, calibrated on the model folder's samples.

Scheme (symmetric, zero point 0, real = q * scale):

- weights int8 per output channel (scale = max |w[oc]| / 127), biases int32 at the accumulator
  scale (input scale x weight scale), accumulation in int32;
- activations int8 per tensor, scale = max |x| / 127 over the calibration samples (the float
  graph run in torch); pooling, means, transposes and views keep their input's scale;
- requantisation and fused activations in float per output element (one multiply per output, not
  per MAC); batch norm becomes a per-channel int8 affine; a standalone activation becomes a
  256-entry table;
- the input is quantised and the output dequantised inside ``model_invoke`` (float in, float out).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .lower import Graph, evaluate

SCALE_KEEPING = frozenset({"maxpool", "avgpool", "mean", "transpose", "output"})


@dataclass
class Quantised:
    """Per node: the input and output scale and its int8 constants."""

    in_scale: dict[int, float] = field(default_factory=dict)  # node index -> scale of its input
    out_scale: dict[int, float] = field(default_factory=dict)
    consts: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)

    def scheme(self) -> dict:
        return {"weights": "int8 symmetric per output channel", "activations": "int8 symmetric per tensor",
                "accumulator": "int32", "calibration": "max |x| over the model folder's samples",
                "input_scale": self.out_scale.get(0), "output_scale": self.in_scale.get(max(self.in_scale, default=0))}


def round_half_away(x: np.ndarray) -> np.ndarray:
    """The C kernels' rounding (k_saturate_s8)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _scale(maxabs: float) -> float:
    return float(np.float32(maxabs / 127.0)) if maxabs > 0 else 1.0


def _lut(fn: str, s_in: float, s_out: float) -> np.ndarray:
    import torch

    from .lower import _act

    q = torch.arange(-128, 128, dtype=torch.float32)
    real = _act(q * np.float32(s_in), fn).numpy().astype(np.float64)
    return np.clip(round_half_away(real / s_out), -128, 127).astype(np.int8)


def quantise(graph: Graph, calibration: np.ndarray) -> Quantised:
    maxabs: dict[int, float] = {}

    def observe(i, values):
        maxabs[i] = max(maxabs.get(i, 0.0), float(np.abs(values).max()) if values.size else 0.0)

    evaluate(graph, calibration, observe)
    q = Quantised()
    current: dict[int, float] = {}  # buffer id -> scale of what it holds now
    for i, node in enumerate(graph.nodes):
        s_in = current[node.inputs[0].buffer.id] if node.inputs else 1.0
        s_out = s_in if node.kind in SCALE_KEEPING else _scale(maxabs.get(i, 0.0))
        q.in_scale[i], q.out_scale[i] = s_in, s_out
        current[node.output.buffer.id] = s_out
        c = node.consts
        if node.kind in ("conv", "linear"):
            w = c["w"].astype(np.float64)
            per = np.abs(w.reshape(len(w), -1)).max(axis=1)
            w_scale = np.where(per > 0, per / 127.0, 1.0).astype(np.float32).astype(np.float64)
            shape = (-1,) + (1,) * (w.ndim - 1)
            wq = np.clip(round_half_away(w / w_scale.reshape(shape)), -127, 127).astype(np.int8)
            acc_scale = (np.float64(s_in) * w_scale)
            bias = np.clip(round_half_away(c["b"].astype(np.float64) / acc_scale), -2**31, 2**31 - 1)
            q.consts[i] = {"w": wq, "b": bias.astype(np.int32), "acc_scale": acc_scale.astype(np.float32)}
        elif node.kind == "affine":
            mul = s_in * c["scale"].astype(np.float64) / s_out
            add = c["shift"].astype(np.float64) / s_out
            q.consts[i] = {"mul": mul.astype(np.float32), "add": add.astype(np.float32)}
        elif node.kind == "act":
            q.consts[i] = {"lut": _lut(node.attrs["act"], s_in, s_out)}
    return q
