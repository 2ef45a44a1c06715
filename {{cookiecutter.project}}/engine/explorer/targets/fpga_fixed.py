"""The FPGA target's own implementation of the ops it runs: fixed-point layers of elasticai.creator.

An explorer model (``nn.Sequential`` of ``<i>_<op>`` modules) becomes a chain of *stages*, each one
fixed-point ``Linear`` (a following batch norm folded in) and its activation (ReLU, HardTanh(0, 6)
for relu6, or a lookup-table Sigmoid / Tanh). Parameters are rounded to the nearest step of the
format and saturated; inputs too.

``FixedPointModel.forward`` is the bit-exact reference of the generated VHDL: elasticai's Linear
accumulates ``x * w`` products exactly in a ``2 * total_bits`` register, adds ``bias << frac_bits``,
then keeps ``total_bits`` bits by truncation toward zero, saturating only when the sign bit of the
accumulator disagrees with the kept bits (``FXP_ROUNDING`` in ``linear.tpl.vhd``). A pre-activation
at least twice the format's range therefore wraps instead of saturating; ``forward`` reproduces that
and counts it (``Stats.wrapped``), so a format that is too narrow for a model is visible.

elasticai's own PyTorch forward is *not* this reference: it truncates the product sum before adding
the bias and computes in float32, so it differs from its hardware by one step now and then.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import UserError

# explorer activation -> the fixed-point layer that implements it (relu6 is a HardTanh(0, 6);
# sigmoid and tanh are elasticai's lookup tables, LUT_STEPS points over LUT_RANGE)
ACTIVATIONS = ("identity", "relu", "relu6", "sigmoid", "tanh")
LUT_ACTIVATIONS = ("sigmoid", "tanh")
LUT_RANGE = {"sigmoid": (-8.0, 8.0), "tanh": (-4.0, 4.0)}  # beyond, the function is flat to < 4e-4
LUT_STEPS = 256
# ops that move no data on the device: the input is already a flat vector in row-major order
RESHAPES = ("flatten", "to_vector", "identity", "dropout", "reshape")


@dataclass(frozen=True)
class FxpFormat:
    """Signed fixed point: ``total_bits`` in all, ``frac_bits`` of them after the binary point."""

    total_bits: int = 16
    frac_bits: int = 8

    def __post_init__(self):
        if self.total_bits not in (8, 16):
            raise UserError(f"fpga: total_bits must be 8 or 16, got {self.total_bits}",
                            hint="the ENV5 skeleton takes 8-bit data; 16 bits keep more precision")
        if not 0 <= self.frac_bits < self.total_bits:
            raise UserError(f"fpga: frac_bits must be in [0, {self.total_bits - 1}], got {self.frac_bits}")

    @property
    def step(self) -> float:
        return 2.0 ** -self.frac_bits

    @property
    def min_int(self) -> int:
        return -(1 << (self.total_bits - 1))

    @property
    def max_int(self) -> int:
        return (1 << (self.total_bits - 1)) - 1

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Nearest step (ties up), saturated: what a sensor front end or the host sends."""
        q = np.floor(np.asarray(x, dtype=np.float64) / self.step + 0.5)
        return np.clip(q, self.min_int, self.max_int).astype(np.int64)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return np.asarray(q, dtype=np.float64) * self.step

    def to_json(self) -> dict:
        return {"total_bits": self.total_bits, "frac_bits": self.frac_bits, "signed": True,
                "step": self.step, "min": self.min_int * self.step, "max": self.max_int * self.step}


@dataclass
class Stage:
    """One fixed-point Linear and the activation after it, with the explorer layers it came from."""

    weight_float: np.ndarray  # [out, in] float64, batch norm folded in
    bias_float: np.ndarray  # [out]
    weight: np.ndarray  # [out, in] int64, in steps of the format
    bias: np.ndarray  # [out] int64
    activation: str  # identity | relu | relu6 | sigmoid | tanh
    layers: list[str] = field(default_factory=list)
    lut: tuple[np.ndarray, np.ndarray] | None = None  # (ascending inputs, outputs) of a lookup table

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]


@dataclass
class Stats:
    """What the reference saw: outputs clipped to the format, and outputs the hardware wraps."""

    saturated: int = 0
    wrapped: int = 0

    def to_json(self) -> dict:
        return {"saturated": self.saturated, "wrapped": self.wrapped}


LIPSCHITZ = {"sigmoid": 0.25, "tanh": 1.0}


def _float_activation(name: str, v: np.ndarray) -> np.ndarray:
    if name == "relu":
        return np.maximum(v, 0)
    if name == "relu6":
        return np.clip(v, 0, 6)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-v))
    if name == "tanh":
        return np.tanh(v)
    return v


def lut_module(name: str, fmt: "FxpFormat") -> Any:
    """elasticai's precomputed (lookup-table) Sigmoid or Tanh for ``fmt``."""
    from elasticai.creator.nn.fixed_point import Sigmoid, Tanh

    low, high = LUT_RANGE[name]
    high = min(high, fmt.max_int * fmt.step)
    low = max(low, fmt.min_int * fmt.step)
    cls = Sigmoid if name == "sigmoid" else Tanh
    return cls(total_bits=fmt.total_bits, frac_bits=fmt.frac_bits, num_steps=LUT_STEPS, sampling_intervall=(low, high))


@functools.lru_cache(maxsize=None)
def _lut_pairs(name: str, total_bits: int, frac_bits: int) -> tuple[tuple[int, int], ...]:
    module = lut_module(name, FxpFormat(total_bits, frac_bits))
    # the inputs create_design hands its design (get_lut_integer()[0], without its forward passes)
    inputs = [module._config.cut_as_integer(v) for v in module._lut_input.tolist()]
    # the design's own function (elasticai's fixed-point forward of one value); ~1 s, hence the cache
    return tuple(sorted({int(v): int(module._forward_nograd(int(v))) for v in inputs}.items()))


def lut_table(name: str, fmt: "FxpFormat") -> tuple[np.ndarray, np.ndarray]:
    """(ascending inputs, outputs) as elasticai's ``PrecomputedScalarFunction`` writes its if/elsif chain."""
    pairs = _lut_pairs(name, fmt.total_bits, fmt.frac_bits)
    return (np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs], dtype=np.int64))


def _wrap(v: np.ndarray, bits: int) -> np.ndarray:
    half = 1 << (bits - 1)
    return ((v + half) % (1 << bits)) - half


@dataclass
class FixedPointModel:
    fmt: FxpFormat
    stages: list[Stage]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def output_size(self) -> int:
        return self.stages[-1].out_features

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """[N, *input] floats -> [N, input_size] integers (row-major, as the testbench feeds them)."""
        return self.fmt.quantize(np.asarray(x).reshape(len(x), -1))

    def activation_int(self, name: str, v: np.ndarray, lut: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        if lut is not None:  # elasticai's if/elsif chain: the first table input >= v, else the last
            inputs, outputs = lut
            return outputs[np.minimum(np.searchsorted(inputs, v, side="left"), len(inputs) - 1)]
        if name == "relu":
            return np.maximum(v, 0)
        if name == "relu6":
            return np.clip(v, 0, min(int(6 / self.fmt.step), self.fmt.max_int))
        return v

    def linear_int(self, stage: Stage, x: np.ndarray, stats: Stats | None = None) -> np.ndarray:
        """elasticai's fixed-point Linear, bit for bit (see the module docstring)."""
        bits, frac = self.fmt.total_bits, self.fmt.frac_bits
        exact = x.astype(np.int64) @ stage.weight.T + (stage.bias << frac)
        acc = _wrap(exact, 2 * bits)
        kept = _wrap(acc >> frac, bits)
        low = acc & ((1 << frac) - 1)
        out = np.where((acc < 0) & (kept >= 0), self.fmt.min_int,
                       np.where((acc >= 0) & (kept < 0), self.fmt.max_int,
                                np.where((kept < 0) & (low != 0), kept + 1, kept)))
        if stats is not None:
            ideal = np.clip(np.trunc(exact / (1 << frac)), self.fmt.min_int, self.fmt.max_int).astype(np.int64)
            stats.saturated += int((ideal != np.trunc(exact / (1 << frac))).sum())
            stats.wrapped += int((ideal != out).sum())
        return out

    def forward(self, x_int: np.ndarray, stats: Stats | None = None) -> np.ndarray:
        """Integer inputs [N, input_size] -> integer outputs [N, output_size], as the VHDL computes them."""
        h = np.asarray(x_int, dtype=np.int64)
        for stage in self.stages:
            h = self.activation_int(stage.activation, self.linear_int(stage, h, stats), stage.lut)
        return h

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Float inputs [N, *input] -> dequantised outputs [N, *output]."""
        return self.fmt.dequantize(self.forward(self.quantize_input(x))).reshape(len(x), *self.output_shape)

    def error_bound(self, x: np.ndarray) -> np.ndarray:
        """Per output, a bound on |fixed point - float| for inputs ``x`` [N, *input] that holds while
        nothing saturates: input and parameter rounding propagated through each layer (the
        activations are 1-Lipschitz) plus one step of truncation per layer."""
        step = self.fmt.step
        h = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        err = np.abs(h - self.fmt.dequantize(self.quantize_input(x)))
        for stage in self.stages:
            w_q = self.fmt.dequantize(stage.weight)
            d_w = np.abs(stage.weight_float - w_q)
            d_b = np.abs(stage.bias_float - self.fmt.dequantize(stage.bias))
            err = err @ np.abs(w_q).T + np.abs(h) @ d_w.T + d_b + step
            h = _float_activation(stage.activation, h @ stage.weight_float.T + stage.bias_float)
            if stage.lut is not None:  # Lipschitz constant times the input error, plus the table's own error
                err = LIPSCHITZ[stage.activation] * err + self.lut_error(stage)
        return err.reshape(len(x), *self.output_shape)

    def lut_error(self, stage: Stage) -> float:
        """Max |table - function| over every value of the format (the table's own error)."""
        grid = np.arange(self.fmt.min_int, self.fmt.max_int + 1, dtype=np.int64)
        table = self.fmt.dequantize(self.activation_int(stage.activation, grid, stage.lut))
        return float(np.abs(table - _float_activation(stage.activation, self.fmt.dequantize(grid))).max())

    def float_forward(self, x: np.ndarray) -> np.ndarray:
        """The same stages in float64 (folded batch norm): PyTorch's function without its rounding."""
        h = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        for stage in self.stages:
            h = _float_activation(stage.activation, h @ stage.weight_float.T + stage.bias_float)
        return h.reshape(len(x), *self.output_shape)

    # ------------------------------------------------------------ elasticai.creator layers

    def elasticai_layers(self) -> list[tuple[str, Any]]:
        """(design name, elasticai.creator module) per hardware layer, weights on the format's grid."""
        import torch
        from elasticai.creator.nn.fixed_point import HardTanh, Linear, ReLU

        bits, frac = self.fmt.total_bits, self.fmt.frac_bits
        layers: list[tuple[str, Any]] = []
        for i, stage in enumerate(self.stages):
            linear = Linear(stage.in_features, stage.out_features, total_bits=bits, frac_bits=frac)
            with torch.no_grad():  # steps * 2^-frac are exact in float32 (|steps| < 2^24)
                linear.weight.copy_(torch.as_tensor(self.fmt.dequantize(stage.weight)))
                linear.bias.copy_(torch.as_tensor(self.fmt.dequantize(stage.bias)))
            layers.append((f"linear_{i}", linear))
            if stage.activation == "relu":
                layers.append((f"relu_{i}", ReLU(total_bits=bits)))
            elif stage.activation == "relu6":
                layers.append((f"hardtanh_{i}", HardTanh(total_bits=bits, frac_bits=frac, min_val=0.0, max_val=6.0)))
            elif stage.activation in LUT_ACTIVATIONS:
                layers.append((f"{stage.activation}_{i}", lut_module(stage.activation, self.fmt)))
        return layers

    def elasticai_sequential(self) -> Any:
        """The layers as elasticai's ``Sequential`` (its PyTorch forward; its VHDL chaining is not used,
        see ``fpga_vhdl``)."""
        from elasticai.creator.nn.sequential import Sequential

        return Sequential(*[m for _, m in self.elasticai_layers()])


def _activation_of(module: Any, layer_activation: str) -> tuple[Any, str]:
    """(the nn.Linear inside ``module``, its activation name)."""
    from torch import nn

    if isinstance(module, nn.Linear):
        return module, "identity"
    if isinstance(module, nn.Sequential) and isinstance(module[0], nn.Linear):
        return module[0], layer_activation
    raise UserError(f"fpga: unexpected module {type(module).__name__} for a linear layer")


def fixed_point_model(model: Any, total_bits: int = 16, frac_bits: int = 8) -> FixedPointModel:
    """Map an ``ExportedModel`` onto elasticai.creator fixed-point stages with the same weights.

    Supported: ``linear`` (activation identity, relu or relu6), ``batchnorm`` directly after a linear
    without activation (folded into it, as elasticai's ``BatchNormedLinear`` does), and ops that only
    reshape. Anything else is a ``UserError`` naming the layer (the reflection refuses it earlier).
    """
    import torch
    from elasticai.creator.nn.fixed_point import BatchNormedLinear
    from torch import nn

    fmt = FxpFormat(total_bits, frac_bits)
    architecture = model.architecture
    torch_model = model.module()
    modules = dict(torch_model.named_children())
    stages: list[Stage] = []
    last_was_linear = False
    for i, layer in enumerate(architecture.layers):
        module = modules[f"{i}_{layer.op}"]
        if layer.op in RESHAPES:
            continue
        if layer.op == "linear":
            activation = layer.params.get("activation", "identity")
            if activation not in ACTIVATIONS:
                raise UserError(f"fpga: {layer.path}: activation {activation!r} has no fixed-point layer here",
                                hint=f"one of: {', '.join(ACTIVATIONS)}")
            linear, activation = _activation_of(module, activation)
            w = linear.weight.detach().double().numpy()
            b = (linear.bias.detach().double().numpy() if linear.bias is not None
                 else np.zeros(linear.out_features))
            lut = lut_table(activation, fmt) if activation in LUT_ACTIVATIONS else None
            stages.append(Stage(w, b, fmt.quantize(w), fmt.quantize(b), activation, [layer.path], lut))
            last_was_linear = activation == "identity"
            continue
        if layer.op == "batchnorm" and last_was_linear and isinstance(module, nn.BatchNorm1d):
            stage = stages[-1]
            folder = BatchNormedLinear(total_bits, frac_bits, stage.in_features, stage.out_features,
                                       bn_eps=module.eps)
            with torch.no_grad():
                folder.lin_weight.copy_(torch.as_tensor(stage.weight_float))
                folder.lin_bias.copy_(torch.as_tensor(stage.bias_float))
                folder._batch_norm.load_state_dict(module.state_dict())
            # elasticai's folding: w * gamma / std and (b - mean) * gamma / std + beta
            w_list, b_list = folder.get_params()
            w = np.array(w_list, dtype=np.float64)
            b = np.array(b_list, dtype=np.float64)
            stages[-1] = Stage(w, b, fmt.quantize(w), fmt.quantize(b), "identity", stage.layers + [layer.path])
            last_was_linear = False
            continue
        raise UserError(f"fpga: {layer.path}: op '{layer.op}' has no fixed-point implementation here",
                        hint="explorer targets shows what fpga supports")
    if not stages:
        raise UserError("fpga: the model has no linear layer, so there is nothing to put on the FPGA")
    return FixedPointModel(fmt, stages, tuple(architecture.input.shape), tuple(architecture.output.shape))
