"""Memory a microcontroller needs: weight bytes, peak activation RAM and a flash estimate.

Conventions:

* Weights, float32: 4 bytes per parameter. int8 (the TFLite / TFLM int8 scheme): 1 byte per
  weight-kernel element, 4 bytes per bias (int32) and per norm scale/shift (kept 32-bit;
  usually folded into the previous layer), plus one float32 scale per output row of each
  weight kernel (per-channel symmetric quantisation; zero points are 0 and not counted).
* Activations: the sequential graph runs one layer at a time, so while a layer runs its input
  and output buffers are both live and nothing else is; the peak over layers is the arena a
  microcontroller needs. In-place ops write into their input (``in_place``): element-wise
  activation, inference batchnorm (one scale-and-shift), dropout and identity, and the views
  flatten / reshape / last_step / layout reshapes. Transposes copy. Recurrent ops also hold
  their state and gate buffers and, when stacked, the sequence between layers (``scratch``).
  float32 uses 4 bytes per element, int8 1.
* Flash: weight bytes plus the code of each kernel the model uses, counted once per op kind
  (and once per activation function, fused or not). ``code_bytes`` are ASSUMED round figures
  for int8 TFLM reference / CMSIS-NN kernels built with -Os for a Cortex-M4, not measurements;
  replace them with your linker map's sizes for a real budget. The interpreter runtime itself
  (tens of KB, the same for every candidate) is not included. conv1d and conv2d both lower to
  CONV_2D, so a model with both counts that kernel twice.
* RAM = peak activations + the pre-processing pipeline's ``buffer_bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..space.architecture import Architecture, Layer
from .estimator import EstimateContext, Estimator, register_estimator
from .params import PARAMS, ParamCount
from .params import count as count_params
from .tables import OpTable, activation_of


def no_scratch(layer: Layer) -> int:
    return 0


@dataclass(frozen=True)
class OpMemory:
    code_bytes: int  # kernel code in flash (assumed, see the module docstring)
    in_place: bool = False  # the output may overwrite the input buffer
    scratch: Callable[[Layer], int] = no_scratch  # extra live elements while the op runs


MEMORY: OpTable = OpTable("memory entry", "register_memory",
                          fallback=OpMemory(0))  # unknown op: not in place, no code size known


def register_memory(op: str, code_bytes: int, in_place: bool = False,
                    scratch: Callable[[Layer], int] = no_scratch, table: OpTable = MEMORY) -> None:
    """Declare a custom op's kernel code size, whether it runs in place, and its scratch elements."""
    table.set(op, OpMemory(code_bytes, in_place, scratch))


def _recurrent_scratch(state_and_gates: int) -> Callable[[Layer], int]:
    """Per direction ``state_and_gates x H`` elements, plus the sequence between stacked layers."""

    def scratch(layer: Layer) -> int:
        p, steps = layer.params, layer.input.shape[0]
        directions = 2 if p["bidirectional"] else 1
        between = steps * p["hidden_size"] * directions if p["num_layers"] > 1 else 0
        return directions * state_and_gates * p["hidden_size"] + between

    return scratch


# Assumed code sizes in bytes (see the module docstring).
for _op, _memory in {
    "linear": OpMemory(2_000),  # FULLY_CONNECTED
    "conv1d": OpMemory(4_000),  # CONV_2D
    "conv2d": OpMemory(4_000),  # CONV_2D
    "dwsep_conv1d": OpMemory(6_000),  # DEPTHWISE_CONV_2D + CONV_2D
    "dwsep_conv2d": OpMemory(6_000),
    "maxpool": OpMemory(1_000),  # MAX_POOL_2D
    "avgpool": OpMemory(1_000),  # AVERAGE_POOL_2D
    "global_avgpool": OpMemory(1_500),  # MEAN
    "batchnorm": OpMemory(1_000, in_place=True),  # MUL + ADD when not folded
    "layernorm": OpMemory(3_000),  # MEAN, SUB, MUL, RSQRT, ADD
    "lstm": OpMemory(10_000, scratch=_recurrent_scratch(6)),  # UNIDIRECTIONAL_SEQUENCE_LSTM; h, c, 4 gates
    "gru": OpMemory(8_000, scratch=_recurrent_scratch(5)),  # no builtin: FC, LOGISTIC, TANH, MUL, ADD; h, 3 gates, W_hn h
    "activation": OpMemory(0, in_place=True),  # its function's code is in ACTIVATION_CODE_BYTES
    "dropout": OpMemory(0, in_place=True),  # removed at conversion
    "identity": OpMemory(0, in_place=True),
    "flatten": OpMemory(200, in_place=True),  # RESHAPE
    "to_vector": OpMemory(200, in_place=True),
    "reshape": OpMemory(200, in_place=True),
    "vector_to_channels": OpMemory(200, in_place=True),
    "vector_to_steps": OpMemory(200, in_place=True),
    "image_to_channels": OpMemory(200, in_place=True),
    "channels_to_image": OpMemory(200, in_place=True),
    "last_step": OpMemory(800, in_place=True),  # STRIDED_SLICE (a view of the last row)
    "to_steps": OpMemory(1_000),  # TRANSPOSE
    "to_channels": OpMemory(1_000),
}.items():
    MEMORY.set(_op, _memory)

# Assumed code sizes of the element-wise functions (relu and relu6 are fused into conv/FC in TFLM).
ACTIVATION_CODE_BYTES = {"identity": 0, "relu": 200, "relu6": 200, "sigmoid": 1_500, "tanh": 1_500, "gelu": 2_000,
                         "hardswish": 1_000}


def peak_activation_elements(architecture: Architecture, table: OpTable = MEMORY) -> int:
    """The most elements live at once: a layer's input, its output unless in place, its scratch."""
    peak = architecture.input.numel
    for layer in architecture.layers:
        entry = table[layer]
        peak = max(peak, layer.input.numel + (0 if entry.in_place else layer.output.numel) + entry.scratch(layer))
    return peak


def code_bytes(architecture: Architecture, table: OpTable = MEMORY) -> int:
    """Kernel code in flash, once per op kind and activation function used."""
    kernels: dict[str, int] = {}
    for layer in architecture.layers:
        kernels[layer.op] = table[layer].code_bytes
        function = activation_of(layer)
        kernels[f"activation:{function}"] = ACTIVATION_CODE_BYTES.get(function, 0)  # a plugin's own function: unknown size
    return sum(kernels.values())


def weight_bytes(n: ParamCount) -> tuple[int, int]:
    """(float32, int8) bytes of the parameters."""
    return 4 * n.total, n.weights + 4 * n.vectors + 4 * n.rows


@register_estimator("memory")
class MemoryEstimator(Estimator):
    """Weights, peak activations, RAM and flash in bytes, for float32 and int8 deployment."""

    unit = "bytes"

    def __init__(self, table: OpTable = MEMORY, params: OpTable = PARAMS):
        self.table, self.params = table, params

    def estimate(self, context: EstimateContext) -> dict[str, float]:
        arch = context.architecture
        peak, code = peak_activation_elements(arch, self.table), code_bytes(arch, self.table)
        w_f32, w_int8 = weight_bytes(count_params(arch, self.params))
        buffer = context.pipeline.buffer_bytes if context.pipeline else 0
        return {"weights_f32": w_f32, "weights_int8": w_int8, "activations_f32": 4 * peak, "activations_int8": peak,
                "ram_f32": 4 * peak + buffer, "ram_int8": peak + buffer, "flash_f32": w_f32 + code,
                "flash_int8": w_int8 + code}
