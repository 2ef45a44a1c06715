"""The tensor arena TFLite Micro needs for a model converted by litert-torch (the Pico's LiteRT
path, ``explorer.targets.litert``), predicted from the architecture alone, without torch.

Why not ``memory.py``'s activation peak: TFLM's arena is (measured, see ``arena_breakdown``)

* a **head**, the planned tensors, laid out by TFLM's greedy planner over the *converted* graph,
  which is not the PyTorch layer list: channels-first tensors enter and leave NHWC regions
  through TRANSPOSE (and RESHAPE) ops that hold a second copy; padding other than VALID/SAME is a
  PAD op; a convolution with one input channel becomes DEPTHWISE_CONV_2D; batch norm folds into
  the convolution or linear layer before it; int8 MEAN asks for an int32 scratch buffer; layer
  norm runs in float32 inside an int8 graph. Buffers are 16-byte aligned and placed largest
  first (ties in reverse order), first fit, exactly as ``GreedyMemoryPlanner`` does: replayed on
  the real converted graphs, this reproduces the interpreter's head to the byte (96 of 96).
* a **tail** of persistent bookkeeping: 24 bytes per tensor (``TfLiteEvalTensor``), 64 per op
  (``NodeAndRegistration``), the kernels' op data (per-channel multipliers and shifts of
  convolutions, 8 bytes per output channel), builtin parameters and a fixed part. For the small
  models a Pico runs, the tail is often larger than the head.

The tail constants (``_TAIL_*``) were fitted (residual <= 20 bytes) on 96 converted models against
``print_allocations()`` of the ``tflite_micro`` Python interpreter (x86-64 host build, 64-bit
pointers, reference kernels); ``arena_estimate`` predicts that figure. On a 32-bit Cortex-M the
head is the same and the tail smaller (``pointer_bytes=4`` halves the pointer-sized parts; an
approximation), and CMSIS-NN kernels add scratch buffers the reference kernels do not ask for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Any

from ..space.architecture import Architecture, Layer
from .estimator import EstimateContext, Estimator, register_estimator

ALIGNMENT = 16  # MicroArenaBufferAlignment()
FUSED = ("relu", "relu6")  # fused into CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED
SPATIAL_OPS = ("conv1d", "conv2d", "dwsep_conv1d", "dwsep_conv2d", "maxpool", "avgpool")
TRANSPARENT = ("dropout", "identity")
FUNCTION_OPS = {"relu": "RELU", "relu6": "RELU6", "sigmoid": "LOGISTIC", "tanh": "TANH", "hardswish": "HARD_SWISH",
                "gelu": "GELU"}


@dataclass
class Buffer:
    """One tensor of the converted graph: bytes, and whether it is a constant in flash."""

    nbytes: int
    const: bool = False


@dataclass
class Node:
    """One TFLite op: kind (builtin name), tensor ids in and out, scratch bytes it asks for and
    its output channels (what sizes its persistent op data)."""

    kind: str
    inputs: list[int]
    outputs: list[int]
    scratch: int = 0
    channels: int = 0


@dataclass
class Graph:
    """A TFLite subgraph as TFLM sees it: tensors, ops in execution order, graph input/outputs."""

    tensors: list[Buffer] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    quantized_io: int = 0  # graph inputs/outputs carrying int8 quantisation parameters

    def add(self, nbytes: int, const: bool = False) -> int:
        self.tensors.append(Buffer(int(nbytes), const))
        return len(self.tensors) - 1

    def op(self, kind: str, inputs: list[int], outputs: list[int], scratch: int = 0, channels: int = 0) -> None:
        self.nodes.append(Node(kind, inputs, outputs, scratch, channels))

    @property
    def kinds(self) -> list[str]:
        return [node.kind for node in self.nodes]


# ------------------------------------------------------------------ the planner (head)


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def _lifetimes(graph: Graph) -> list[tuple[int, int, int]]:
    """(aligned bytes, first, last) per planned buffer in TFLM's order (non-constant tensors by
    index, then scratch buffers), with TFLM's allocation scopes: graph inputs at 0, op i at
    i + 1, graph outputs kept to the end."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for t in graph.inputs + graph.outputs:
        first[t] = 0
        last.setdefault(t, 0)
    scratch = []
    for i, node in enumerate(graph.nodes):
        scope = i + 1
        for t in node.outputs:
            first[t] = scope
            last[t] = max(last.get(t, 0), scope)
        for t in node.inputs:
            if t >= 0:
                last[t] = max(last.get(t, 0), scope)
        if node.scratch:
            scratch.append((_align(node.scratch), scope, scope))
    for t in graph.outputs:
        last[t] = len(graph.nodes)
    buffers = [(_align(b.nbytes), first[t], last[t]) for t, b in enumerate(graph.tensors)
               if not b.const and b.nbytes and t in first]
    return buffers + scratch


def greedy_plan(buffers: list[tuple[int, int, int]]) -> int:
    """TFLM's ``GreedyMemoryPlanner``: buffers largest first (equal sizes in reverse order of
    addition: the planner fills its sort array from the back), each at the lowest offset whose
    gap clears every placed buffer alive at the same time; returns the high-water mark."""
    placed: list[tuple[int, int, int, int]] = []  # offset, size, first, last
    order = sorted(range(len(buffers)), key=lambda i: (-buffers[i][0], -i))
    for size, first, last in (buffers[i] for i in order):
        offset = 0
        for other_offset, other_size, other_first, other_last in sorted(placed):
            if other_first > last or first > other_last:
                continue
            if other_offset - offset >= size:
                break
            offset = max(offset, other_offset + other_size)
        placed.append((offset, size, first, last))
    return max((o + s for o, s, _, _ in placed), default=0)


def head_bytes(graph: Graph) -> int:
    """The planned (non-persistent) part of the arena."""
    return greedy_plan(_lifetimes(graph))


# ------------------------------------------------------------------ persistent bookkeeping (tail)

# Fitted (non-negative least squares, residual <= 20 bytes) on 96 converted models, int8 and
# float32, against the tflite_micro Python interpreter (see the module docstring): bytes per op of
# each kind (op data + builtin parameters; the layer-norm ops are fitted as a group), bytes per
# output channel (int32 multiplier and shift), and a fixed part. Other kinds cost _TAIL_DEFAULT_OP.
_TAIL_FIXED = 548
_TAIL_PER_OP = {"CONV_2D": 105, "DEPTHWISE_CONV_2D": 122, "FULLY_CONNECTED": 100, "AVERAGE_POOL_2D": 70,
                "MAX_POOL_2D": 71, "MEAN": 60, "PAD": 62, "RESHAPE": 35, "TRANSPOSE": 0, "HARD_SWISH": 34,
                "LOGISTIC": 26, "TANH": 23, "MUL": 121, "ADD": 0, "SUB": 0, "RSQRT": 243, "SQUARED_DIFFERENCE": 0,
                "QUANTIZE": 64, "DEQUANTIZE": 0}
_TAIL_PER_CHANNEL = {"CONV_2D": 8, "DEPTHWISE_CONV_2D": 7}
_TAIL_PER_CHANNEL_INT8 = {"FULLY_CONNECTED": 8}  # per-channel int8 FC; float FC has none
_TAIL_DEFAULT_OP = 40
_PERSISTENT_TENSOR = 64  # a TfLiteTensor kept for each graph input and output
_QUANTIZATION = 32  # its TfLiteAffineQuantization when int8


def tail_bytes(graph: Graph, dtype: str = "int8", pointer_bytes: int = 8) -> int:
    """The persistent part: per tensor, per op, per op kind and channel, and a fixed part."""
    per_channel = dict(_TAIL_PER_CHANNEL, **(_TAIL_PER_CHANNEL_INT8 if dtype != "float32" else {}))
    total = _TAIL_FIXED + 24 * len(graph.tensors) + 64 * len(graph.nodes)
    total += _PERSISTENT_TENSOR * (len(graph.inputs) + len(graph.outputs)) + _QUANTIZATION * graph.quantized_io
    for node in graph.nodes:
        total += _TAIL_PER_OP.get(node.kind, _TAIL_DEFAULT_OP) + per_channel.get(node.kind, 0) * node.channels
    if pointer_bytes == 4:  # eval tensors 12 instead of 24 bytes, nodes 32 instead of 64: roughly half
        total = total // 2
    return total


# ------------------------------------------------------------------ the converted graph (lowering)


class _Lowering:
    """Walks the layers the way litert-torch 0.10 lowers them (rules read off converted models)."""

    def __init__(self, architecture: Architecture, dtype: str):
        self.arch, self.itemsize = architecture, (4 if dtype == "float32" else 1)
        self.graph = Graph()
        shape = tuple(architecture.input.shape)
        self.current = self.graph.add(prod(shape) * self.itemsize)
        self.graph.inputs.append(self.current)
        self.shape, self.kind, self.nhwc = shape, architecture.input.kind, False
        self.consts: dict[Any, int] = {}
        self.fusable: Node | None = None  # last conv/linear op whose activation is still free
        self.fused: tuple[Node, str] | None = None  # (op, function) of the last fused activation

    # -- helpers
    def const(self, key: Any, nbytes: int) -> int:
        """A constant tensor; shape, perm and axis constants with the same value are shared."""
        if key is not None and key in self.consts:
            return self.consts[key]
        tid = self.graph.add(nbytes, const=True)
        if key is not None:
            self.consts[key] = tid
        return tid

    def emit(self, kind: str, numel: int, consts: tuple = (), scratch: int = 0, channels: int = 0,
             itemsize: int | None = None, extra_inputs: tuple[int, ...] = ()) -> int:
        out = self.graph.add(numel * (itemsize or self.itemsize))
        inputs = [self.current, *extra_inputs] + [self.const(key, nbytes) for key, nbytes in consts]
        self.graph.op(kind, inputs, [out], scratch, channels)
        self.current = out
        self.fusable = None
        return out

    def reshape(self, shape: tuple[int, ...]) -> None:
        """RESHAPE, folded into a RESHAPE right before it (the converter merges them)."""
        last = self.graph.nodes[-1] if self.graph.nodes else None
        if last is not None and last.kind == "RESHAPE" and last.outputs[0] == self.current:
            return
        self.emit("RESHAPE", prod(shape), consts=((("shape", shape), 4 * len(shape) + 4),))

    def transpose(self, key: str, rank: int) -> None:
        self.emit("TRANSPOSE", prod(self.shape), consts=((("perm", key), 4 * rank),))

    def spatial(self) -> tuple[int, int]:
        return self.shape[0], prod(self.shape[1:])

    def to_nhwc(self) -> None:
        """Channels-first [C, L] / [C, H, W] into NHWC: RESHAPE (1-D) and TRANSPOSE, or a RESHAPE
        alone when the transpose only moves a dimension of size one."""
        if self.nhwc:
            return
        channels, spatial = self.spatial()
        if len(self.shape) == 2:
            self.reshape((1, channels, 1, spatial))
        if channels > 1 and spatial > 1:
            self.transpose("nhwc", 4)
        elif len(self.shape) == 3:
            self.reshape((1, *self.shape[1:], channels))
        self.nhwc = True

    def to_nchw(self) -> None:
        if not self.nhwc:
            return
        channels, spatial = self.spatial()
        if channels > 1 and spatial > 1:
            self.transpose("nchw", 4)
        if len(self.shape) == 2 or not (channels > 1 and spatial > 1):
            self.reshape(self.shape)
        self.nhwc = False

    def activation(self, function: str) -> None:
        if function in (None, "identity"):
            return
        if function in FUSED and self.fusable is not None:
            self.fused = (self.fusable, function)  # fused into the conv / FC before it
            self.fusable = None
            return
        size = prod(self.shape)
        if function == "sigmoid" and self.itemsize == 4 and self.nhwc:  # float: NEG, EXP, ADD, DIV
            for kind in ("NEG", "EXP", "ADD", "DIV"):
                self.emit(kind, size)
            return
        self.emit(FUNCTION_OPS.get(function, function.upper()), size)

    # -- layers
    def conv(self, layer: Layer, depthwise_separable: bool) -> None:
        p = layer.params
        self.to_nhwc()
        c_in = self.shape[0]
        k, s, pad = p["kernel_size"], p["stride"], p["padding"]
        dims = len(self.shape) - 1
        # VALID (no padding) and SAME (stride 1, odd kernel, symmetric) need no op; any other
        # padding is an explicit PAD of the input (``padding="same"`` with an even kernel, too)
        if pad == "same":
            extra = 0 if k % 2 else k - 1
        else:
            extra = 0 if pad == 0 or (s == 1 and 2 * pad == k - 1) else 2 * pad
        if extra:
            padded = (c_in, *(n + extra for n in self.shape[1:]))
            self.emit("PAD", prod(padded), consts=((None, 8 * 2 * (dims + 2)),))
        out_spatial = tuple(layer.output.shape[1:])
        kernel = k ** dims
        if depthwise_separable:
            mid = (c_in, *out_spatial)
            self.emit("DEPTHWISE_CONV_2D", prod(mid), consts=((None, c_in * kernel * self.itemsize), (None, 4 * c_in)),
                      channels=c_in)
            self.shape = mid
            kernel = 1  # the pointwise conv
        c_out = p["out_channels"] if not layer.last else layer.output.shape[0]
        kind = "DEPTHWISE_CONV_2D" if c_in == 1 else "CONV_2D"
        self.emit(kind, prod(layer.output.shape), consts=((None, c_out * c_in * kernel * self.itemsize),
                                                             (None, 4 * c_out)), channels=c_out)
        self.shape = tuple(layer.output.shape)
        self.fusable = self.graph.nodes[-1]
        self.activation(_activation(layer))

    def pool(self, layer: Layer) -> None:
        self.to_nhwc()
        self.emit("MAX_POOL_2D" if layer.op == "maxpool" else "AVERAGE_POOL_2D", prod(layer.output.shape))
        self.shape = tuple(layer.output.shape)

    def linear(self, layer: Layer) -> None:
        self.to_nchw()
        width = layer.output.shape[0]
        features = prod(self.shape)
        self.emit("FULLY_CONNECTED", width, consts=((None, width * features * self.itemsize), (None, 4 * width)),
                  channels=width)
        self.shape = (width,)
        self.fusable = self.graph.nodes[-1]
        self.activation(_activation(layer))

    def batchnorm(self, layer: Layer, folded: bool) -> None:
        if folded:
            return
        size = prod(self.shape)
        if self.kind == "vector" or len(self.shape) == 1:
            self.emit("MUL", size, consts=((None, 4 * size),))
            self.emit("ADD", size, consts=((None, 4 * size),))
        elif self.kind == "steps":  # transposed to channels-first around a depthwise 1x1 conv
            steps, features = self.shape
            self.reshape((1, steps, 1, features))
            self.transpose("steps", 4)
            self.emit("DEPTHWISE_CONV_2D", size, consts=((None, features * self.itemsize), (None, 4 * features)),
                      channels=features)
            self.transpose("steps-back", 4)
            self.reshape(self.shape)
        else:
            self.to_nhwc()
            channels = self.shape[0]
            self.emit("DEPTHWISE_CONV_2D", size, consts=((None, channels * self.itemsize), (None, 4 * channels)),
                      channels=channels)

    def global_avgpool(self) -> None:
        self.to_nchw()
        channels = self.shape[-1] if self.kind == "steps" else self.shape[0]
        scratch = 4 * channels if self.itemsize == 1 else 0
        self.emit("MEAN", channels, consts=((("axis", self.kind), 8),), scratch=scratch)
        self.shape = (channels,)

    def layernorm(self) -> None:
        """As litert-torch decomposes it, in float32 (an int8 model steps out through DEQUANTIZE
        and back through QUANTIZE): MEAN, SQUARED_DIFFERENCE, MEAN, ADD, RSQRT, MUL, SUB, MUL, ADD
        and three RESHAPEs of the scalar statistics."""
        self.to_nchw()
        size = prod(self.shape)
        last = self.graph.nodes[-1] if self.graph.nodes else None
        quantized = self.itemsize == 1
        if quantized and self.fused is not None and self.fused[0] is last:
            # an int8 conv/FC cannot hand a fused relu to a float op: it runs after DEQUANTIZE
            self.emit("DEQUANTIZE", size, itemsize=4)
            self.emit(FUNCTION_OPS[self.fused[1]], size, itemsize=4)
            self.emit("RESHAPE", size, consts=((("shape", (1, 1, size)), 16),), itemsize=4)
        else:
            if last is None or last.kind != "FULLY_CONNECTED":
                self.reshape((1, 1, size))
            if quantized:
                self.emit("DEQUANTIZE", size, itemsize=4)
        x, f, axis = self.current, 4, (("axis", "ln"), 8)
        mean = self.emit("MEAN", 1, consts=(axis,), itemsize=f)
        shape = (("shape", (1, 1, 1)), 16)
        mean_b = self.emit("RESHAPE", 1, consts=(shape,), itemsize=f)
        self.current = x
        self.emit("SQUARED_DIFFERENCE", size, itemsize=f, extra_inputs=(mean_b,))
        self.emit("MEAN", 1, consts=(axis,), itemsize=f)
        self.emit("ADD", 1, consts=((None, 4),), itemsize=f)
        rsqrt = self.emit("RSQRT", 1, itemsize=f)
        self.emit("MUL", 1, itemsize=f, extra_inputs=(mean,))
        shift = self.emit("SUB", 1, consts=((None, 4),), itemsize=f)
        self.current = rsqrt
        scale_b = self.emit("RESHAPE", 1, consts=(shape,), itemsize=f)
        self.current = x
        scaled = self.emit("MUL", size, itemsize=f, extra_inputs=(scale_b,))
        self.current = shift
        shift_b = self.emit("RESHAPE", 1, consts=(shape,), itemsize=f)
        self.current = scaled
        self.emit("ADD", size, itemsize=f, extra_inputs=(shift_b,))
        if quantized:
            self.emit("QUANTIZE", size)

    def adapter(self, layer: Layer) -> None:
        target = tuple(layer.output.shape)
        if layer.op in ("to_steps", "to_channels"):
            self.to_nchw()
            self.transpose(layer.op, 3)
        elif layer.op == "last_step":
            self.to_nchw()
            self.emit("STRIDED_SLICE", prod(target), consts=((None, 12), (None, 12), (None, 12)))
        elif layer.op in ("to_vector", "flatten"):
            if prod(self.shape) != self.shape[0] or self.nhwc:
                self.to_nchw()
                self.reshape((1, prod(target)))
        elif layer.op in ("vector_to_channels", "vector_to_steps", "image_to_channels", "channels_to_image",
                          "reshape"):
            self.to_nchw()
            self.reshape((1, *target))
        self.shape = target

    def run(self) -> Graph:
        layers = self.arch.layers
        for i, layer in enumerate(layers):
            op = layer.op
            if op in TRANSPARENT:
                pass
            elif op in ("conv1d", "conv2d", "dwsep_conv1d", "dwsep_conv2d"):
                self.conv(layer, op.startswith("dwsep"))
            elif op in ("maxpool", "avgpool"):
                self.pool(layer)
            elif op == "linear":
                self.linear(layer)
            elif op == "batchnorm":
                self.batchnorm(layer, _folds(layers, i))
            elif op == "activation":
                self.activation(layer.params.get("op", "relu"))
            elif op == "global_avgpool":
                self.global_avgpool()
            elif op == "layernorm":
                self.layernorm()
            elif op in ("lstm", "gru"):
                raise ValueError(f"{op} is not lowered: litert-torch unrolls it into a graph TFLM cannot run")
            else:
                self.adapter(layer)
            self.kind = layer.output.kind
            self.shape = tuple(layer.output.shape) if not self.nhwc else self.shape
        self.to_nchw()
        self.graph.outputs.append(self.current)
        if self.itemsize == 1:
            self.graph.quantized_io = 2
        return self.graph


def _folds(layers: tuple[Layer, ...], index: int) -> bool:
    """A batch norm folds into the conv/linear layer right before it (dropout and identity in
    between are transparent) when that layer has no activation of its own."""
    for layer in reversed(layers[:index]):
        if layer.op in TRANSPARENT:
            continue
        return (layer.op in ("conv1d", "conv2d", "dwsep_conv1d", "dwsep_conv2d", "linear")
                and _activation(layer) == "identity")
    return False


def _activation(layer: Layer) -> str:
    """The activation the built layer applies (a last layer is built without one)."""
    return "identity" if layer.last else layer.params.get("activation", "identity")


def lower(architecture: Architecture, dtype: str = "int8") -> Graph:
    """The TFLite graph litert-torch produces for ``architecture`` (op kinds, tensor sizes)."""
    return _Lowering(architecture, dtype).run()


def arena_breakdown(architecture: Architecture, dtype: str = "int8", pointer_bytes: int = 8) -> dict:
    """Head, tail and total arena bytes, and the predicted TFLite op kinds."""
    graph = lower(architecture, dtype)
    head, tail = head_bytes(graph), tail_bytes(graph, dtype, pointer_bytes)
    return {"head": head, "tail": tail, "total": head + tail, "ops": graph.kinds}


def arena_estimate(architecture: Architecture, dtype: str = "int8") -> int:
    """The arena ``tflite_micro``'s interpreter reports for the litert-torch conversion of
    ``architecture`` (``dtype`` "int8" or "float32")."""
    return arena_breakdown(architecture, dtype)["total"]


@register_estimator("tflm_arena")
class TflmArenaEstimator(Estimator):
    """The TFLM arena (bytes) of the litert-torch conversion, int8 and float32: the Pico's SRAM
    figure (``benchmarks/targets.py`` measures it against the interpreter). Runs when a criterion
    names one of its values."""

    unit = "bytes"
    requested_by = ("tflm_arena_int8", "tflm_arena_f32", "tflm_ram_int8", "tflm_ram_f32")

    def estimate(self, context: EstimateContext) -> dict[str, float]:
        arch = context.architecture
        buffer = context.pipeline.buffer_bytes if context.pipeline else 0
        int8, f32 = arena_estimate(arch, "int8"), arena_estimate(arch, "float32")
        return {"tflm_arena_int8": int8, "tflm_arena_f32": f32, "tflm_ram_int8": int8 + buffer,
                "tflm_ram_f32": f32 + buffer}
