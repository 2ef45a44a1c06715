"""LiteRT for the Pico: ``.tflite`` via litert-torch, int8 post-training quantisation, and the
tflite-micro (TFLM) Python interpreter as the check that the file really runs on a microcontroller
runtime and how much arena it really needs.

Conversion: ``torch.export`` of the model with a batch of one, then litert-torch. int8 uses its
pt2e quantizer (per-channel symmetric int8 weights, asymmetric int8 activations, int32 biases),
calibrated on every exported sample; the resulting file has int8 input and output tensors, so the
caller quantises inputs with the input tensor's scale and zero point (``convert`` returns them).
Batch norm folds into the preceding convolution, ReLU/ReLU6 fuse into CONV_2D/FULLY_CONNECTED.
Inputs keep the model's channels-first layout; the converter adds the TRANSPOSE/RESHAPE ops
around NHWC regions (they cost arena, see ``explorer.evaluate.arena``). ``lowerable`` (batch norm,
"same" padding) and ``_quantizer`` (TANH, pooling, hardswish) work around what litert-torch 0.10
gets slow or wrong; each says what it fixes and how that was measured.

Agreement (what the tests assert; measured on 128 random-weight models of eight spaces):

* float32: TFLM outputs equal PyTorch's within ``FLOAT_TOLERANCE`` (max abs diff; seen <= 2e-6).
* int8 vs PyTorch, on the calibration samples: argmax agreement >= ``INT8_ARGMAX_AGREEMENT`` and
  max abs diff <= ``INT8_OUTPUT_STEPS`` output quantisation steps (``output_scale``; 64 steps is a
  quarter of the int8 output range). Seen: conv models <= 5 steps; deep narrow MLPs (width-8
  relu bottlenecks, tiny output ranges on random weights) up to 50 steps, the same with
  litert-torch's stock quantizer, so post-training quantisation itself; argmax >= 0.94 also on
  64 fresh inputs. Not for sigmoid/tanh on random weights: their fixed output scales (1/256,
  1/128) leave small activations few levels (argmax down to 0.64), so those models are held to
  the kernel check below only.
* int8 vs LiteRT's own interpreter on the same file (the "TFLite int8 reference",
  ``kernel_agreement``): every op whose inputs match exactly gives an output within
  ``TFLM_VS_LITERT_STEPS`` step (reference vs optimised kernels round differently). These 1-step
  differences compound: at the model output TFLM and LiteRT differ by up to ~5 steps.

The arena: the interpreter has no getter, but ``print_allocations()`` writes "Arena allocation
total N bytes" to the C-level stderr, which ``tflm_allocations`` captures through fd 2. The figure
is the host build's (64-bit pointers, reference kernels): the planned tensors ("head") are what a
Pico needs too, the bookkeeping ("tail") is about half as large on a 32-bit MCU, and CMSIS-NN
kernels may add scratch buffers the reference kernels do not request.
"""

from __future__ import annotations

import logging
import os
import warnings
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import require_extra
from .base import OpSupport, Reflection
from .model import ExportedModel, Samples

EXTRA = "pico"
TFLITE = "model.tflite"
FLOAT_TOLERANCE = 1e-4
INT8_ARGMAX_AGREEMENT = 0.9
INT8_OUTPUT_STEPS = 64
TFLM_VS_LITERT_STEPS = 1
ARENA_SIZE = 16 * 1024 * 1024  # what the host interpreter may use; the report is what it did use

_ACTIVATIONS = ("relu", "relu6", "sigmoid", "tanh", "hardswish", "identity")

# Ops that convert with litert-torch 0.10 AND run in the TFLM interpreter, float32 and int8, tried
# one by one on DSL-built models (outputs compared with PyTorch). Left out, and why:
# * activation "gelu" (also as linear/conv activation): converts to GELU, which TFLM has no kernel
#   for ("Didn't find op for builtin opcode 'GELU'").
# * lstm: litert-torch unrolls it per step and joins the steps with one CONCATENATION; TFLM's
#   takes at most 10 inputs ("num_inputs <= kMaxInputNum was not true"), so any sequence longer
#   than 10 steps fails, and the graph grows with the sequence length.
# * gru: the same unrolling, and int8 conversion fails in litert-torch (IndexError in its pt2e
#   lowering).
# Runs, with caveats: layernorm in int8 is computed in float32 between DEQUANTIZE and QUANTIZE
# (MEAN, SQUARED_DIFFERENCE, RSQRT, ...); a batch norm that does not follow a bare conv or linear
# layer becomes a depthwise 1x1 conv (MUL + ADD on vectors); a float32 sigmoid on a conv output
# decomposes into NEG/EXP/ADD/DIV.
_NO_GELU = OpSupport(params={"activation": _ACTIVATIONS}, note="gelu: no TFLM kernel")
REFLECTION = Reflection(
    ops={
        "linear": _NO_GELU, "conv1d": _NO_GELU, "conv2d": _NO_GELU,
        "dwsep_conv1d": _NO_GELU, "dwsep_conv2d": _NO_GELU,
        "maxpool": OpSupport(), "avgpool": OpSupport(), "global_avgpool": OpSupport(note="MEAN"),
        "batchnorm": OpSupport(note="folded into a preceding conv/linear, else a depthwise 1x1 conv"),
        "layernorm": OpSupport(note="int8: computed in float32 inside the int8 graph"),
        "dropout": OpSupport(), "identity": OpSupport(), "flatten": OpSupport(),
        "activation": OpSupport(params={"op": _ACTIVATIONS}, note="gelu: no TFLM kernel"),
        # adapters (RESHAPE, TRANSPOSE, STRIDED_SLICE)
        "to_vector": OpSupport(), "last_step": OpSupport(), "to_steps": OpSupport(), "to_channels": OpSupport(),
        "vector_to_channels": OpSupport(), "vector_to_steps": OpSupport(), "image_to_channels": OpSupport(),
        "channels_to_image": OpSupport(), "reshape": OpSupport(),
    },
    dtypes=("int8", "float32"),
    recurrent=False,
    notes="LiteRT via litert-torch 0.10 and tflite-micro; lstm/gru unroll into graphs TFLM cannot run "
          "(CONCATENATION of more than 10 steps), gelu has no TFLM kernel",
)


def _litert():
    """litert-torch, imported on demand (it pulls in ~1.3 GB); quiet progress bars and none of
    TensorFlow's or torch.export's start-up chatter on the user's terminal."""
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    for name in ("torch.utils._pytree", "torchao", "root"):  # torchao's optional CUDA kernels; litert's notices
        logging.getLogger(None if name == "root" else name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module="copyreg")
    return require_extra("litert_torch", EXTRA)


def _tflm():
    return require_extra("tflite_micro", EXTRA)


def convert(model: ExportedModel, out: Path, quantize: str = "int8") -> dict:
    """Write ``out/model.tflite`` (float32 for ``quantize="none"``, else int8 calibrated on the
    model's samples); return its size, the I/O quantisation and the TFLite ops it uses."""
    if quantize not in ("int8", "none"):
        raise ValueError(f"quantize must be 'int8' or 'none', got {quantize!r}")
    litert_torch = _litert()
    import torch

    module = lowerable(model.module())
    x = torch.as_tensor(model.samples.x, dtype=torch.float32)
    args = (x[:1],)
    if quantize == "none":
        edge = litert_torch.convert(module, args)
    else:
        from litert_torch.quantize import quant_config
        from torchao.quantization.pt2e import quantize_pt2e

        quantizer = _quantizer()
        graph = quantize_pt2e.prepare_pt2e(torch.export.export(module, args).module(), quantizer)
        with torch.no_grad():
            for i in range(len(x)):  # the exported graph has a batch of one
                graph(x[i:i + 1])
        graph = quantize_pt2e.convert_pt2e(graph, fold_quantize=False)
        edge = litert_torch.convert(graph, args, quant_config=quant_config.QuantConfig(pt2e_quantizer=quantizer))
    data = edge.model_content() if hasattr(edge, "model_content") else edge.tflite_model()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / TFLITE).write_bytes(data)
    facts = describe(data)
    return {"tflite_bytes": len(data), "quantization": facts["quantization"], "ops": facts["ops"]}


def _quantizer() -> Any:
    """litert-torch's pt2e quantizer (per-channel symmetric weights, asymmetric int8 activations)
    with the annotations it lacks in 0.10 (each measured here):

    * TANH gets the fixed output quantisation TFLite's int8 kernel assumes (scale 1/128, zero
      point 0); with any other scale TFLM's TANH is off by up to 75 steps from LiteRT's.
    * 1-D max/avg pooling and 2-D average pooling share their input's quantisation (as 2-D max
      pooling already does); otherwise the converter requantises in front of every such pool
      (QUANTIZE wrapped in two TRANSPOSEs, extra ops and arena).
    * a separate hardswish gets an int8 output; otherwise it runs in float32 between DEQUANTIZE
      and QUANTIZE, and so does everything after it up to the next quantised op. A relu after a
      pool shares the pool's scale (the converter fuses it into the pool); after a linear layer
      it must not (that cost up to 56 output steps).
    """
    import torch
    from litert_torch.quantize import pt2e_quantizer, pt2e_quantizer_utils
    from torchao.quantization.pt2e.quantizer import (FixedQParamsQuantizationSpec, QuantizationAnnotation,
                                                     SharedQuantizationSpec)

    aten = torch.ops.aten
    tanh_output = FixedQParamsQuantizationSpec(dtype=torch.int8, scale=1 / 128, zero_point=0, quant_min=-128,
                                               quant_max=127, qscheme=torch.per_tensor_affine)
    elementwise = (aten.hardswish.default,)  # a new output scale
    same_scale = (aten.max_pool1d.default, aten.avg_pool1d.default, aten.avg_pool2d.default,
                  aten.max_pool2d.default)  # the input's scale

    def quantized(node: Any) -> bool:
        found = getattr(node, "meta", {}).get("quantization_annotation")
        return found is not None and found._annotated and found.output_qspec is not None

    class Quantizer(pt2e_quantizer.PT2EQuantizer):
        def annotate(self, model):
            model = super().annotate(model)
            for node in model.graph.nodes:
                if node.op != "call_function" or not node.args or not quantized(node.args[0]):
                    continue  # a float producer stays float
                source = node.args[0]
                if node.target == aten.tanh.default:
                    node.meta["quantization_annotation"] = QuantizationAnnotation(
                        input_qspec_map={source: SharedQuantizationSpec(source)}, output_qspec=tanh_output,
                        _annotated=True)
                elif node.target in elementwise and "quantization_annotation" not in node.meta:
                    node.meta["quantization_annotation"] = QuantizationAnnotation(
                        input_qspec_map={source: SharedQuantizationSpec(source)},
                        output_qspec=self.global_config.output_activation, _annotated=True)
                elif (node.target in same_scale or node.target == aten.relu.default and source.target in same_scale) \
                        and "quantization_annotation" not in node.meta:
                    shared = SharedQuantizationSpec(source)
                    node.meta["quantization_annotation"] = QuantizationAnnotation(
                        input_qspec_map={source: shared}, output_qspec=shared, _annotated=True)
            pt2e_quantizer_utils.propagate_annotation(model)  # views after the new pools share too
            return model

    return Quantizer().set_global(pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))


def lowerable(module: Any) -> Any:
    """The same function in a form litert-torch converts quickly and correctly (a rewritten copy):

    * batch norm right after a convolution or linear layer (dropout and identity in between are
      transparent) is folded into its weights, any other batch norm becomes a depthwise 1x1
      convolution (a multiply-add on vectors): an unfolded ``BatchNorm`` makes ``convert_pt2e``
      re-trace ~100 QAT patterns (15-60 s for a tiny model);
    * ``padding="same"`` becomes explicit zero padding: litert-torch 0.10 fails on a 1-D
      convolution with string padding ("Expected a value of type 'List[int]' for argument
      'padding'").
    """
    import copy

    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

    module = copy.deepcopy(module).eval()
    weighted = (nn.Conv1d, nn.Conv2d, nn.Linear)
    previous: list = [None]  # (parent, name, leaf) of the last leaf that ran, in execution order

    def visit(parent: nn.Module) -> None:
        for name, child in list(parent.named_children()):
            if list(child.children()):
                visit(child)
                continue
            if isinstance(child, (nn.Conv1d, nn.Conv2d)) and child.padding == "same":
                setattr(parent, name, _explicit_padding(child))
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                last = previous[0]
                if last is not None and isinstance(last[2], weighted):
                    owner, owner_name, layer = last
                    fuse = fuse_linear_bn_eval if isinstance(layer, nn.Linear) else fuse_conv_bn_eval
                    _replace(owner, owner_name, layer, fuse(layer, child))
                    setattr(parent, name, nn.Identity())
                else:
                    setattr(parent, name, _channel_affine(child))
                previous[0] = None
            elif not isinstance(child, (nn.Dropout, nn.Identity)):
                previous[0] = (parent, name, child)

    visit(module)
    return module


def _replace(parent: Any, name: str, old: Any, new: Any) -> None:
    """Swap ``old`` for ``new`` where it sits: ``parent.name`` or the end of a padding wrapper."""
    current = getattr(parent, name)
    if current is old:
        setattr(parent, name, new)
    else:  # _explicit_padding's Sequential(pad, conv)
        current[-1] = new


def _explicit_padding(conv: Any) -> Any:
    """``padding="same"`` (stride 1) as a symmetric integer padding or, for an even kernel, a
    constant pad (left ``(k-1)//2``, right ``k//2``, as PyTorch pads) before an unpadded conv."""
    from torch import nn

    kernel = conv.kernel_size
    if all(k % 2 for k in kernel):
        conv.padding = tuple((k - 1) // 2 for k in kernel)
        return conv
    pads: list[int] = []
    for k in reversed(kernel):  # F.pad order: last dimension first
        pads += [(k - 1) // 2, k // 2]
    conv.padding = (0,) * len(kernel)
    pad = nn.ConstantPad1d(tuple(pads), 0.0) if len(kernel) == 1 else nn.ConstantPad2d(tuple(pads), 0.0)
    return nn.Sequential(pad, conv)


def _channel_affine(norm: Any) -> Any:
    """Inference batch norm on its own: a depthwise 1x1 convolution over [C, L] / [C, H, W]
    (DEPTHWISE_CONV_2D: per-channel int8 weights, stays in the converter's NHWC layout; a
    multiply-add there leaves the int8 graph through DEQUANTIZE) or ``x * scale + shift`` over a
    feature vector [F] (MUL + ADD)."""
    import torch
    from torch import nn

    with torch.no_grad():
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        shift = norm.bias - norm.running_mean * scale
    channels = scale.numel()

    def depthwise(conv_type: Any) -> Any:
        conv = conv_type(channels, channels, 1, groups=channels)
        with torch.no_grad():
            conv.weight.copy_(scale.view(-1, *([1] * (conv.weight.dim() - 1))))
            conv.bias.copy_(shift)
        return conv

    if isinstance(norm, nn.BatchNorm2d):
        return depthwise(nn.Conv2d)

    class ChannelAffine(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = depthwise(nn.Conv1d)
            self.register_buffer("scale", scale.clone())
            self.register_buffer("shift", shift.clone())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x) if x.dim() == 3 else x * self.scale + self.shift

    return ChannelAffine()


def describe(data: bytes) -> dict:
    """The ops (in graph order) and the I/O quantisation of a ``.tflite`` flatbuffer."""
    _tflm()
    from tflite_micro.python.tflite_micro import runtime
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    parsed = runtime.convert_bytearray_to_object(bytearray(data))
    graph = parsed.subgraphs[0]
    ops = [names[runtime.get_builtin_code_from_operator_code(parsed.operatorCodes[op.opcodeIndex])]
           for op in graph.operators]

    def qparams(index: int) -> tuple[float | None, int | None]:
        q = graph.tensors[index].quantization
        if q is None or q.scale is None or len(q.scale) == 0:
            return None, None
        return float(q.scale[0]), int(q.zeroPoint[0])

    (in_scale, in_zero), (out_scale, out_zero) = qparams(graph.inputs[0]), qparams(graph.outputs[0])
    return {"ops": ops, "quantization": {"input_scale": in_scale, "input_zero_point": in_zero,
                                         "output_scale": out_scale, "output_zero_point": out_zero}}


@contextmanager
def _captured_fd2():
    """Everything written to file descriptor 2 (C ``stderr``) inside the block, as one string."""
    import sys

    sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        box: list[str] = []
        try:
            yield box
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            box.append(sink.read().decode(errors="replace"))


def _interpreter(data: bytes):
    from tflite_micro import runtime

    return runtime.Interpreter.from_bytes(data, arena_size=ARENA_SIZE)


def _allocations(interpreter) -> dict[str, int]:
    with _captured_fd2() as box:
        interpreter.print_allocations()
    text = box[0]
    found = {key: int(n) for key, n in re.findall(r"Arena allocation (total|head|tail) (\d+) bytes", text)}
    if "total" not in found:
        raise RuntimeError(f"tflite-micro printed no arena total: {text[:200]!r}")
    for what, used in re.findall(r"'([^']+)' used (\d+) bytes", text):
        found[what] = int(used)
    return found


def _quantise(x: np.ndarray, scale: float | None, zero: int | None, dtype) -> np.ndarray:
    if scale is None:
        return x.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(dtype)


def _dequantise(q: np.ndarray, scale: float | None, zero: int | None) -> np.ndarray:
    if scale is None:
        return q.astype(np.float32)
    return ((q.astype(np.float32) - zero) * scale).astype(np.float32)


def run_tflm(data: bytes, x: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """Run every input of ``x`` [N, *input] (float) through TFLM; (float outputs [N, ...],
    the recorded arena allocations)."""
    _tflm()
    interpreter = _interpreter(data)
    i_details, o_details = interpreter.get_input_details(0), interpreter.get_output_details(0)
    i_q, o_q = i_details["quantization_parameters"], o_details["quantization_parameters"]
    i_scale, i_zero = (float(i_q["scales"][0]), int(i_q["zero_points"][0])) if len(i_q["scales"]) else (None, None)
    o_scale, o_zero = (float(o_q["scales"][0]), int(o_q["zero_points"][0])) if len(o_q["scales"]) else (None, None)
    shape = tuple(int(n) for n in i_details["shape"])
    outputs = []
    for sample in x:
        interpreter.set_input(_quantise(sample.reshape(shape), i_scale, i_zero, i_details["dtype"]), 0)
        interpreter.invoke()
        outputs.append(_dequantise(interpreter.get_output(0), o_scale, o_zero)[0])
    return np.stack(outputs), _allocations(interpreter)


def run_litert(data: bytes, x: np.ndarray) -> np.ndarray:
    """The same file through LiteRT's own interpreter (the TFLite reference for TFLM)."""
    require_extra("ai_edge_litert", EXTRA)
    from ai_edge_litert import interpreter as litert_interpreter

    interpreter = litert_interpreter.Interpreter(model_content=data)
    interpreter.allocate_tensors()
    i_details, o_details = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    i_scale, i_zero = i_details["quantization"]
    o_scale, o_zero = o_details["quantization"]
    outputs = []
    for sample in x:
        q = _quantise(sample.reshape(i_details["shape"]), i_scale or None, i_zero, i_details["dtype"])
        interpreter.set_tensor(i_details["index"], q)
        interpreter.invoke()
        outputs.append(_dequantise(interpreter.get_tensor(o_details["index"]), o_scale or None, o_zero)[0])
    return np.stack(outputs)


def kernel_agreement(data: bytes, x: np.ndarray) -> dict:
    """TFLM's kernels against LiteRT's, op by op, on the same int8 file: for every op whose inputs
    are identical in both interpreters (for a sample), the largest difference of its output in
    quantisation steps. Reference and optimised kernels round differently (1 step is normal);
    a kernel that disagrees more is wrong for this model (e.g. TANH without its fixed scale).
    Differences compound through a graph, so only ops with identical inputs are compared."""
    _tflm()
    require_extra("ai_edge_litert", EXTRA)
    from ai_edge_litert import interpreter as litert_interpreter
    from tflite_micro import runtime

    graph = tflite_graph(data)
    micro = runtime.Interpreter.from_bytes(data, arena_size=ARENA_SIZE,
                                           intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    lite = litert_interpreter.Interpreter(model_content=data, experimental_preserve_all_tensors=True)
    lite.allocate_tensors()
    details = micro.get_input_details(0)
    q = details["quantization_parameters"]
    scale, zero = (float(q["scales"][0]), int(q["zero_points"][0])) if len(q["scales"]) else (None, None)
    worst, checked = 0.0, 0
    for sample in x:
        value = _quantise(sample.reshape(tuple(int(n) for n in details["shape"])), scale, zero, details["dtype"])
        micro.set_input(value, 0)
        micro.invoke()
        lite.set_tensor(lite.get_input_details()[0]["index"], value)
        lite.invoke()
        seen: dict[int, tuple] = {}

        def pair(t: int) -> tuple:
            if t not in seen:
                seen[t] = (np.asarray(micro.GetTensor(t, 0)["tensor_data"]), np.asarray(lite.get_tensor(t)))
            return seen[t]

        for node in graph.nodes:
            inputs = [t for t in node.inputs if t >= 0 and not graph.tensors[t].const]
            if not all(np.array_equal(*pair(t)) for t in inputs):
                continue
            a, b = pair(node.outputs[0])
            if a.dtype.kind == "f":
                continue  # a float op inside an int8 graph: no steps to count
            worst = max(worst, float(np.max(np.abs(a.astype(np.int64) - b.astype(np.int64)))) if a.size else 0.0)
            checked += 1
    return {"max_steps": worst, "checked_ops": checked}


def agreement(outputs: np.ndarray, reference: np.ndarray) -> dict:
    """Max abs diff and the share of samples whose argmax (over the flattened output) matches."""
    a, b = outputs.reshape(len(outputs), -1), reference.reshape(len(reference), -1)
    return {"max_abs_diff": float(np.max(np.abs(a - b))) if a.size else 0.0,
            "argmax_agreement": float(np.mean(a.argmax(1) == b.argmax(1))) if a.size else 1.0}


def tflm_check(tflite_path: Path, samples: Samples) -> dict:
    """Every sample through the TFLM interpreter: outputs, the real arena size, and agreement
    with PyTorch's outputs (``samples.reference``)."""
    outputs, allocations = run_tflm(Path(tflite_path).read_bytes(), samples.x)
    outputs = outputs.reshape(samples.reference.shape)
    return {"outputs": outputs, "arena_bytes": allocations["total"], "allocations": allocations,
            "agreement": agreement(outputs, samples.reference)}


def tflm_allocations(tflite_path: Path) -> dict[str, int]:
    """TFLM's recorded arena use after one inference on zeros: total, head (planned tensors and
    scratch), tail (persistent bookkeeping) and the tail's itemised parts."""
    _tflm()
    interpreter = _interpreter(Path(tflite_path).read_bytes())
    details = interpreter.get_input_details(0)
    interpreter.set_input(np.zeros(details["shape"], details["dtype"]), 0)
    interpreter.invoke()
    return _allocations(interpreter)


def tflm_arena_bytes(tflite_path: Path) -> int:
    """The arena TFLM really allocates for this model (host build, see the module docstring)."""
    return tflm_allocations(tflite_path)["total"]


def tflite_graph(data: bytes):
    """A ``.tflite`` file as ``explorer.evaluate.arena.Graph`` (what TFLM plans), so the arena
    model can be checked against the converter's real graph."""
    _tflm()
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    from ..evaluate.arena import Graph

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    itemsize = {schema.TensorType.FLOAT32: 4, schema.TensorType.INT8: 1, schema.TensorType.INT32: 4,
                schema.TensorType.INT64: 8, schema.TensorType.INT16: 2, schema.TensorType.UINT8: 1,
                schema.TensorType.BOOL: 1}
    parsed = runtime.convert_bytearray_to_object(bytearray(data))
    sub = parsed.subgraphs[0]
    graph = Graph()
    for tensor in sub.tensors:
        buffer = parsed.buffers[tensor.buffer]
        const = buffer.data is not None and len(buffer.data) > 0
        shape = [] if tensor.shape is None else [int(n) for n in tensor.shape]
        graph.add(int(np.prod(shape)) * itemsize.get(tensor.type, 4), const)
    for op in sub.operators:
        kind = names[runtime.get_builtin_code_from_operator_code(parsed.operatorCodes[op.opcodeIndex])]
        outputs = [int(t) for t in op.outputs]
        inputs = [int(t) for t in op.inputs]
        out_shape = sub.tensors[outputs[0]].shape
        channels = int(out_shape[-1]) if out_shape is not None and len(out_shape) else 0
        scratch = 0
        if kind == "MEAN" and sub.tensors[inputs[0]].type == schema.TensorType.INT8:
            scratch = 4 * int(np.prod(out_shape))  # TFLM's int8 MEAN asks for an int32 sum buffer
        graph.op(kind, inputs, outputs, scratch, channels)
    graph.inputs, graph.outputs = [int(t) for t in sub.inputs], [int(t) for t in sub.outputs]
    graph.quantized_io = sum(1 for t in graph.inputs + graph.outputs if _quantized_tensor(sub.tensors[t]))
    return graph


def _quantized_tensor(tensor: Any) -> bool:
    q = tensor.quantization
    return q is not None and q.scale is not None and len(q.scale) > 0
