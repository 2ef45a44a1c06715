"""Exact parameter counts from the Architecture alone, one formula per op.

Counts equal ``sum(p.numel() for p in model.parameters())`` of the built model. Batch-norm
running mean/variance are buffers, not parameters, so they are not counted (at inference they
fold into the two affine vectors, which are). Each count is split the way deployment stores it
(see ``memory``): matrix/kernel ``weights``, ``vectors`` (biases, norm scale and shift),
and the ``rows`` of the weight matrices (one int8 quantisation scale each).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..space.architecture import Architecture, Layer
from .estimator import EstimateContext, Estimator, register_estimator
from .tables import OpTable, channels, recurrent_layers, window


@dataclass(frozen=True)
class ParamCount:
    weights: int = 0  # elements of matmul / convolution kernels
    vectors: int = 0  # biases and normalisation affine parameters
    rows: int = 0  # output rows (channels) of the weight kernels
    frozen: int = 0  # of weights + vectors, how many are not trained (a custom op may freeze some)

    @property
    def total(self) -> int:
        return self.weights + self.vectors

    def __add__(self, other: ParamCount) -> ParamCount:
        return ParamCount(self.weights + other.weights, self.vectors + other.vectors, self.rows + other.rows,
                          self.frozen + other.frozen)


NONE = ParamCount()

def _measured(layer: Layer) -> ParamCount:
    """An op without a formula: count its module's parameters (matrices as weights, 1-D as vectors)."""
    from .tables import layer_module

    params = list(layer_module(layer).parameters())
    weights = [p for p in params if p.dim() > 1]
    return ParamCount(sum(p.numel() for p in weights), sum(p.numel() for p in params if p.dim() <= 1),
                      sum(p.shape[0] for p in weights), sum(p.numel() for p in params if not p.requires_grad))


PARAMS: OpTable = OpTable("parameter formula", "@register_params", fallback=_measured)
register_params = PARAMS.register


def dense(inputs: int, outputs: int) -> ParamCount:
    """A weight matrix [outputs, inputs] with a bias per output."""
    return ParamCount(inputs * outputs, outputs, outputs)


@PARAMS.register("linear")
def _linear(layer: Layer) -> ParamCount:
    return dense(layer.input.shape[0], layer.params["width"])


@PARAMS.register("conv1d", "conv2d")
def _conv(layer: Layer) -> ParamCount:
    return dense(layer.input.shape[0] * window(layer), layer.params["out_channels"])


@PARAMS.register("dwsep_conv1d", "dwsep_conv2d")
def _dwsep(layer: Layer) -> ParamCount:
    c_in = layer.input.shape[0]
    depthwise = ParamCount(c_in * window(layer), c_in, c_in)
    return depthwise + dense(c_in, layer.params["out_channels"])


@PARAMS.register("batchnorm")
def _batchnorm(layer: Layer) -> ParamCount:
    return ParamCount(vectors=2 * channels(layer))  # gamma and beta; running stats are buffers


@PARAMS.register("layernorm")
def _layernorm(layer: Layer) -> ParamCount:
    x = layer.input
    normalised = x.shape[-1] if x.kind in ("vector", "steps") else x.numel  # whole sample for [C, L], [C, H, W]
    return ParamCount(vectors=2 * normalised)


def _gated(gates: int):
    def formula(layer: Layer) -> ParamCount:
        # per stacked layer and direction: W_ih [g*H, I], W_hh [g*H, H], b_ih and b_hh [g*H]
        return sum((ParamCount(gates * h * (i + h), 2 * gates * h, 2 * gates * h)
                    for i, h in recurrent_layers(layer)), NONE)

    return formula


PARAMS.set("lstm", _gated(4))
PARAMS.set("gru", _gated(3))

for _op in ("maxpool", "avgpool", "global_avgpool", "dropout", "activation", "identity", "flatten", "to_vector",
            "last_step", "to_steps", "to_channels", "vector_to_channels", "vector_to_steps", "image_to_channels",
            "channels_to_image", "reshape"):
    PARAMS.set(_op, lambda layer: NONE)


def count(architecture: Architecture, table: OpTable = PARAMS) -> ParamCount:
    """The whole network's parameters."""
    return sum((table[layer](layer) for layer in architecture.layers), NONE)


@register_estimator("params")
class ParamsEstimator(Estimator):
    """Trainable and total parameters (equal for the built-in ops, which train every parameter)."""

    unit = "parameters"

    def __init__(self, table: OpTable = PARAMS):
        self.table = table

    def estimate(self, context: EstimateContext) -> dict[str, float]:
        n = count(context.architecture, self.table)
        return {"params_trainable": n.total - n.frozen, "params_total": n.total}
