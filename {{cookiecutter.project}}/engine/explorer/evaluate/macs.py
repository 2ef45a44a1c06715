"""Multiply-accumulates per sample (batch 1, inference) from the Architecture alone.

Conventions (one place, so every number is reproducible by hand):

* ``dense`` MACs are the multiply-accumulates inside matrix products and convolutions: linear
  ``in x out``; convolution ``out_elements x C_in x k^d`` (padding positions included, as
  frameworks compute them); depthwise-separable = depthwise ``out_elements_dw x k^d`` plus
  pointwise ``out_elements x C_in``; LSTM/GRU ``steps x g x H x (I + H)`` per stacked layer and
  direction (g = 4 gates for LSTM, 3 for GRU). Bias additions initialise the accumulator and
  cost nothing. This is exactly what ``torch.utils.flop_counter`` counts, divided by 2.
* ``elementwise`` operations count one MAC-equivalent per elementary op (add, multiply,
  compare, max, and one per transcendental such as exp, tanh, erf): activations per element as
  in ``ACTIVATION_OPS``; max/avg pooling k^d per output element (k^d - 1 compares or adds, plus
  the initial load or the final 1/k^d scale); global average pooling one per input element;
  batchnorm 1 per element (inference folds it into one scale-and-shift multiply-add);
  layernorm 5 per element (sum for the mean, centred square-accumulate = 2, normalise by the
  reciprocal std = 1, affine multiply-add = 1; the per-group rsqrt is ignored); recurrent cell
  arithmetic per step below. Dropout, identity, flatten and every adapter cost 0 (views, copies).
* ``flops = 2 x macs`` (a MAC is a multiply and an add), applied to the total.
* The pre-processing pipeline's ``ops_per_sample`` is added to the total as MAC-equivalents.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..space.architecture import Architecture, Layer
from .estimator import EstimateContext, Estimator, register_estimator
from .tables import OpTable, activation_of, recurrent_layers, window

# Per element: identity 0; relu max(x, 0) 1; relu6 min(max(x, 0), 6) 2; sigmoid exp(-x), +1,
# reciprocal 3; tanh one transcendental 1; gelu 0.5 x (1 + erf(x / sqrt 2)) = scale, erf, add,
# two multiplies 5; hardswish x * min(max(x + 3, 0), 6) / 6 = add, max, min, two multiplies 5.
ACTIVATION_OPS = {"identity": 0, "relu": 1, "relu6": 2, "sigmoid": 3, "tanh": 1, "gelu": 5, "hardswish": 5}


@dataclass(frozen=True)
class Macs:
    dense: int = 0  # matmul / convolution multiply-accumulates (what a FLOP counter sees)
    elementwise: int = 0  # everything else, in MAC-equivalents

    @property
    def total(self) -> int:
        return self.dense + self.elementwise

    def __add__(self, other: Macs) -> Macs:
        return Macs(self.dense + other.dense, self.elementwise + other.elementwise)


NONE = Macs()

def _measured(layer: Layer) -> Macs:
    """An op without a formula: the matmul/convolution MACs torch's flop counter sees in its module
    (its element-wise work is not counted; register a formula for an exact figure)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .tables import layer_module

    module = layer_module(layer).eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        module(torch.zeros(1, *layer.input.shape))
    return Macs(dense=counter.get_total_flops() // 2)


MACS: OpTable = OpTable("MACs formula", "@register_macs", fallback=_measured)
register_macs = MACS.register


def _activation(layer: Layer) -> Macs:
    return Macs(elementwise=layer.output.numel * ACTIVATION_OPS[activation_of(layer)])


@MACS.register("linear")
def _linear(layer: Layer) -> Macs:
    return Macs(layer.input.shape[0] * layer.params["width"]) + _activation(layer)


@MACS.register("conv1d", "conv2d")
def _conv(layer: Layer) -> Macs:
    return Macs(layer.output.numel * layer.input.shape[0] * window(layer)) + _activation(layer)


@MACS.register("dwsep_conv1d", "dwsep_conv2d")
def _dwsep(layer: Layer) -> Macs:
    c_in, y = layer.input.shape[0], layer.output
    positions = y.numel // y.shape[0]  # output length (or height x width), shared by both stages
    return Macs(c_in * positions * window(layer) + y.numel * c_in) + _activation(layer)


@MACS.register("maxpool", "avgpool")
def _pool(layer: Layer) -> Macs:
    return Macs(elementwise=layer.output.numel * window(layer))


MACS.set("activation", _activation)
MACS.set("global_avgpool", lambda layer: Macs(elementwise=layer.input.numel))
MACS.set("batchnorm", lambda layer: Macs(elementwise=layer.input.numel))
MACS.set("layernorm", lambda layer: Macs(elementwise=5 * layer.input.numel))


def _gated(gates: int, cell: int):
    """``cell``: element-wise MAC-equivalents per hidden unit and step, beyond the gate matmuls."""

    def formula(layer: Layer) -> Macs:
        steps = layer.input.shape[0]
        return sum((Macs(steps * gates * h * (i + h), steps * h * cell) for i, h in recurrent_layers(layer)), NONE)

    return formula


SIGMOID, TANH = ACTIVATION_OPS["sigmoid"], ACTIVATION_OPS["tanh"]
# LSTM per unit and step: sigmoid on i, f, o; tanh on g; c = f*c + i*g (multiply, multiply-add);
# h = o * tanh(c) (tanh, multiply). GRU: sigmoid on r, z; tanh on n; n's pre-activation
# W_in x + r * (W_hn h) (one multiply-add); h = n + z * (h - n) (subtract, multiply-add).
MACS.set("lstm", _gated(4, 3 * SIGMOID + TANH + 2 + TANH + 1))
MACS.set("gru", _gated(3, 2 * SIGMOID + TANH + 1 + 2))

for _op in ("dropout", "identity", "flatten", "to_vector", "last_step", "to_steps", "to_channels",
            "vector_to_channels", "vector_to_steps", "image_to_channels", "channels_to_image", "reshape"):
    MACS.set(_op, lambda layer: NONE)


def count(architecture: Architecture, table: OpTable = MACS) -> Macs:
    """The whole network's MACs, without the pipeline."""
    return sum((table[layer](layer) for layer in architecture.layers), NONE)


@register_estimator("macs")
class MacsEstimator(Estimator):
    """MACs per inference (network plus pre-processing) and FLOPs = 2 x MACs."""

    unit = "MAC-equivalents (flops: FLOPs)"

    def __init__(self, table: OpTable = MACS):
        self.table = table

    def estimate(self, context: EstimateContext) -> dict[str, float]:
        n = count(context.architecture, self.table)
        pipeline = context.pipeline.ops_per_sample if context.pipeline else 0
        total = n.total + pipeline
        return {"macs": total, "flops": 2 * total, "macs_dense": n.dense, "macs_pipeline": pipeline}
