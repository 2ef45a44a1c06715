"""Architecture + weights -> a flat list of kernel calls on flat row-major buffers.

Every layer of the DSL becomes zero or more primitive nodes (conv, linear, pool, mean, affine,
activation, transpose). Reshaping layers and adapters produce no node: their output is a *view*
of the input's buffer (a reshape of a contiguous row-major tensor moves no data; ``last_step`` is
a view at an offset). Batch norm and standalone activations work in place. The arena planner
then only has to place buffers, and ``evaluate`` runs the same node list in torch, so the
lowering is checked against the original module before any C is written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ACT_CODES = {"identity": 0, "relu": 1, "relu6": 2, "sigmoid": 3, "tanh": 4, "hardswish": 5, "gelu": 6}

# Ops whose output is the input's data unchanged (a view of the same buffer).
VIEW_OPS = frozenset({"dropout", "identity", "flatten", "to_vector", "reshape", "vector_to_channels",
                      "vector_to_steps", "image_to_channels", "channels_to_image"})


@dataclass
class Buffer:
    """A region of the arena: written by one node, alive until the last node touching any view."""

    id: int
    numel: int
    first: int = 0
    last: int = 0


@dataclass
class Ref:
    """A logical tensor: ``numel`` elements at ``offset`` (elements) in ``buffer``."""

    name: str
    buffer: Buffer
    offset: int
    numel: int
    shape: tuple[int, ...]


@dataclass
class Node:
    kind: str  # input, output, conv, linear, maxpool, avgpool, mean, affine, act, transpose
    inputs: list[Ref]
    output: Ref
    attrs: dict[str, Any] = field(default_factory=dict)
    consts: dict[str, np.ndarray] = field(default_factory=dict)
    layer: str = ""
    scratch: Ref | None = None  # working memory alive only during this node (recurrent state)

    @property
    def inplace(self) -> bool:
        return bool(self.inputs) and self.inputs[0].buffer is self.output.buffer


@dataclass
class Graph:
    nodes: list[Node]
    buffers: list[Buffer]
    input_size: int
    output_size: int


class Unsupported(Exception):
    """A layer the C generator cannot lower (the reflection keeps such models out)."""


def _activation_of(module) -> str:
    """The activation ``with_activation`` appended to ``module`` (identity when none)."""
    from torch import nn

    from ...ops.modules import ACTIVATIONS

    if isinstance(module, nn.Sequential) and len(module) == 2:
        for name, cls in ACTIVATIONS.items():
            if type(module[1]) is cls:
                return name
    return "identity"


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]


class _Builder:
    def __init__(self):
        self.nodes: list[Node] = []
        self.buffers: list[Buffer] = []

    def new(self, numel: int, shape: tuple[int, ...], name: str) -> Ref:
        buf = Buffer(len(self.buffers), numel)
        self.buffers.append(buf)
        return Ref(name, buf, 0, numel, shape)

    def add(self, kind: str, x: Ref | None, out: Ref, layer: str, consts=None, **attrs) -> Ref:
        self.nodes.append(Node(kind, [x] if x is not None else [], out, attrs, consts or {}, layer))
        return out

    def inplace(self, x: Ref, name: str) -> Ref:
        return Ref(name, x.buffer, x.offset, x.numel, x.shape)


def _spatial(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """[C, L] -> (C, 1, L); [C, H, W] -> (C, H, W)."""
    return (shape[0], 1, shape[1]) if len(shape) == 2 else tuple(shape)  # type: ignore[return-value]


def _conv(b: _Builder, x: Ref, conv, out_shape, act: str, layer: str, name: str) -> Ref:
    c, h, w = _spatial(x.shape)
    oc, oh, ow = _spatial(out_shape)
    weight = conv.weight.detach().numpy().astype(np.float32)
    one_d = weight.ndim == 3
    if one_d:
        weight = weight[:, :, None, :]
    kh, kw = weight.shape[2:]
    sh, sw = (1, conv.stride[0]) if one_d else _pair(conv.stride)
    if isinstance(conv.padding, str):  # 'same' (stride 1): torch pads (k-1)//2 before, the rest after
        ph, pw = (kh - 1) // 2, (kw - 1) // 2
    else:
        ph, pw = (0, conv.padding[0]) if one_d else _pair(conv.padding)
    bias = (conv.bias.detach().numpy() if conv.bias is not None else np.zeros(oc)).astype(np.float32)
    y = b.new(oc * oh * ow, tuple(out_shape), name)
    return b.add("conv", x, y, layer, {"w": weight, "b": bias}, c=c, h=h, w=w, oc=oc, kh=kh, kw=kw, sh=sh, sw=sw,
                 ph=ph, pw=pw, oh=oh, ow=ow, groups=conv.groups, act=act)


def _recurrent(b: _Builder, x: Ref, rnn, op: str, path: str, name: str, out_shape) -> Ref:
    """One node per stacked layer; both directions of a layer write one [L, dirs * H] buffer."""
    steps, hidden = x.shape[0], rnn.hidden_size
    dirs = 2 if rnn.bidirectional else 1
    gates = 4 if op == "lstm" else 3
    for k in range(rnn.num_layers):
        consts = {}
        for d in range(dirs):
            suffix = f"l{k}" + ("_reverse" if d else "")
            for part in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                value = getattr(rnn, f"{part}_{suffix}", None)
                value = (value.detach().numpy() if value is not None else np.zeros(gates * hidden))
                consts[f"{part}{d}"] = value.astype(np.float32)
        y = b.new(steps * hidden * dirs, (steps, hidden * dirs), name if k == rnn.num_layers - 1 else f"{name}_l{k}")
        x = b.add(op, x, y, path, consts, steps=steps, features=x.shape[1], hidden=hidden, dirs=dirs)
        # LSTM: cell state + 4 gates; GRU: input and hidden parts of 3 gates
        b.nodes[-1].scratch = b.new(hidden * (5 if op == "lstm" else 6), (), f"{name}_l{k}_scratch")
    x.shape = tuple(out_shape)
    return x


def lower(architecture, torch_model) -> Graph:
    """The node list of ``torch_model`` (built from ``architecture``); ``Unsupported`` for ops
    outside the generator."""
    from torch import nn

    b = _Builder()
    inp = architecture.input
    x = b.new(inp.numel, tuple(inp.shape), "input")
    b.add("input", None, x, "input")
    modules = list(torch_model.children())
    for i, (layer, module) in enumerate(zip(architecture.layers, modules)):
        op, path = layer.op, layer.path or f"{i}_{layer.op}"
        name = f"t{i}_{op}"
        out_shape = tuple(layer.output.shape)
        if op in VIEW_OPS or (op == "activation" and layer.params.get("op") == "identity"):
            x = Ref(name, x.buffer, x.offset, x.numel, out_shape)
        elif op == "last_step":
            steps, features = x.shape
            x = Ref(name, x.buffer, x.offset + (steps - 1) * features, features, out_shape)
        elif op in ("to_steps", "to_channels"):
            rows, cols = x.shape
            x = b.add("transpose", x, b.new(x.numel, out_shape, name), path, rows=rows, cols=cols)
        elif op in ("conv1d", "conv2d"):
            conv = next(m for m in module.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d)))
            x = _conv(b, x, conv, out_shape, _activation_of(module), path, name)
        elif op in ("dwsep_conv1d", "dwsep_conv2d"):
            dw, pw = [m for m in module.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
            mid_shape = (x.shape[0], *out_shape[1:])
            x = _conv(b, x, dw, mid_shape, "identity", path, name + "_dw")
            x = _conv(b, x, pw, out_shape, _activation_of(module), path, name)
        elif op == "linear":
            lin = next(m for m in module.modules() if isinstance(m, nn.Linear))
            bias = (lin.bias.detach().numpy() if lin.bias is not None else np.zeros(lin.out_features))
            y = b.new(lin.out_features, out_shape, name)
            x = b.add("linear", x, y, path, {"w": lin.weight.detach().numpy().astype(np.float32),
                                             "b": bias.astype(np.float32)},
                      n_in=lin.in_features, n_out=lin.out_features, act=_activation_of(module))
        elif op in ("maxpool", "avgpool"):
            c, h, w = _spatial(x.shape)
            _, oh, ow = _spatial(out_shape)
            k, s = module.kernel_size, module.stride
            if len(x.shape) == 2:
                kh, kw, sh, sw = 1, _pair(k)[0], 1, _pair(s)[0]
            else:
                (kh, kw), (sh, sw) = _pair(k), _pair(s)
            x = b.add(op, x, b.new(c * oh * ow, out_shape, name), path, c=c, h=h, w=w, kh=kh, kw=kw, sh=sh, sw=sw,
                      oh=oh, ow=ow)
        elif op == "global_avgpool":
            if layer.input.kind == "steps":
                outer, n, inner = 1, x.shape[0], x.shape[1]
            else:
                outer, n, inner = x.shape[0], math.prod(x.shape[1:]), 1
            x = b.add("mean", x, b.new(outer * inner, out_shape, name), path, outer=outer, n=n, inner=inner)
        elif op == "batchnorm":
            bn = next(m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
            var = bn.running_var.detach().double().numpy()
            mean = bn.running_mean.detach().double().numpy()
            weight = bn.weight.detach().double().numpy() if bn.weight is not None else np.ones_like(mean)
            bias = bn.bias.detach().double().numpy() if bn.bias is not None else np.zeros_like(mean)
            scale = weight / np.sqrt(var + bn.eps)
            shift = bias - mean * scale
            kind, shape = layer.input.kind, x.shape
            if kind == "vector":
                outer, c, inner = 1, shape[0], 1
            elif kind == "steps":
                outer, c, inner = shape[0], shape[1], 1
            else:
                outer, c, inner = 1, shape[0], math.prod(shape[1:])
            x = b.add("affine", x, b.inplace(x, name), path,
                      {"scale": scale.astype(np.float32), "shift": shift.astype(np.float32)},
                      outer=outer, c=c, inner=inner)
        elif op == "activation":
            x = b.add("act", x, b.inplace(x, name), path, n=x.numel, act=layer.params["op"])
        elif op == "layernorm":
            ln = next(m for m in module.modules() if isinstance(m, nn.LayerNorm))
            n = math.prod(ln.normalized_shape)
            weight = ln.weight.detach().numpy() if ln.weight is not None else np.ones(n)
            bias = ln.bias.detach().numpy() if ln.bias is not None else np.zeros(n)
            x = b.add("layernorm", x, b.inplace(x, name), path,
                      {"weight": weight.reshape(-1).astype(np.float32), "bias": bias.reshape(-1).astype(np.float32)},
                      outer=x.numel // n, n=n, eps=float(ln.eps))
        elif op in ("lstm", "gru"):
            x = _recurrent(b, x, module.rnn, op, path, name, out_shape)
        else:
            raise Unsupported(f"{path}: op '{op}' has no C kernel")
    out = architecture.output.numel
    b.add("output", x, x, "output")
    graph = Graph(b.nodes, b.buffers, architecture.input.numel, out)
    _liveness(graph)
    return graph


def _liveness(graph: Graph) -> None:
    """Each buffer lives from the node that first writes it to the last node that touches it."""
    seen: set[int] = set()
    for i, node in enumerate(graph.nodes):
        for ref in (*node.inputs, node.output, *([node.scratch] if node.scratch else [])):
            buf = ref.buffer
            if buf.id not in seen:
                seen.add(buf.id)
                buf.first = i
            buf.last = i


# ---------------------------------------------------------------- reference evaluation in torch


def _act(x, name: str):
    from ...ops.modules import ACTIVATIONS

    return x if name == "identity" else ACTIVATIONS[name]()(x)


def evaluate(graph: Graph, x: np.ndarray, observe=None) -> np.ndarray:
    """Run the node list on a batch ``x`` [N, *input] in float32 torch; ``observe(index, values)``
    sees every node's output (calibration). Returns [N, output_size]."""
    import torch
    import torch.nn.functional as F

    n = len(x)
    values: dict[int, torch.Tensor] = {}  # buffer id -> [N, numel of buffer]

    def read(ref: Ref) -> torch.Tensor:
        return values[ref.buffer.id][:, ref.offset:ref.offset + ref.numel]

    with torch.no_grad():
        for index, node in enumerate(graph.nodes):
            a = node.attrs
            if node.kind == "input":
                y = torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(n, -1)
            elif node.kind == "output":
                continue
            else:
                v = read(node.inputs[0])
                if node.kind == "conv":
                    img = v.reshape(n, a["c"], a["h"], a["w"])
                    img = F.pad(img, (a["pw"], max(0, (a["ow"] - 1) * a["sw"] + a["kw"] - a["w"] - a["pw"]),
                                      a["ph"], max(0, (a["oh"] - 1) * a["sh"] + a["kh"] - a["h"] - a["ph"])))
                    y = F.conv2d(img, torch.as_tensor(node.consts["w"]), torch.as_tensor(node.consts["b"]),
                                 stride=(a["sh"], a["sw"]), groups=a["groups"])
                    y = _act(y[:, :, :a["oh"], :a["ow"]], a["act"])
                elif node.kind == "linear":
                    y = _act(F.linear(v, torch.as_tensor(node.consts["w"]), torch.as_tensor(node.consts["b"])),
                             a["act"])
                elif node.kind in ("maxpool", "avgpool"):
                    pool = F.max_pool2d if node.kind == "maxpool" else F.avg_pool2d
                    y = pool(v.reshape(n, a["c"], a["h"], a["w"]), (a["kh"], a["kw"]), (a["sh"], a["sw"]))
                elif node.kind == "mean":
                    y = v.reshape(n, a["outer"], a["n"], a["inner"]).mean(dim=2)
                elif node.kind == "affine":
                    shape = (1, 1, a["c"], 1)
                    y = (v.reshape(n, a["outer"], a["c"], a["inner"]) * torch.as_tensor(node.consts["scale"]).reshape(
                        shape) + torch.as_tensor(node.consts["shift"]).reshape(shape))
                elif node.kind == "act":
                    y = _act(v, a["act"])
                elif node.kind == "layernorm":
                    weight, bias = (torch.as_tensor(node.consts[k]) for k in ("weight", "bias"))
                    y = F.layer_norm(v.reshape(n, a["outer"], a["n"]), (a["n"],), weight, bias, a["eps"])
                elif node.kind == "transpose":
                    y = v.reshape(n, a["rows"], a["cols"]).transpose(1, 2)
                elif node.kind in ("lstm", "gru"):
                    rnn = (torch.nn.LSTM if node.kind == "lstm" else torch.nn.GRU)(
                        a["features"], a["hidden"], bidirectional=a["dirs"] == 2, batch_first=True)
                    for d in range(a["dirs"]):
                        for part in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                            getattr(rnn, f"{part}_l0" + ("_reverse" if d else "")).copy_(
                                torch.as_tensor(node.consts[f"{part}{d}"]))
                    y = rnn(v.reshape(n, a["steps"], a["features"]))[0]
                else:
                    raise Unsupported(node.kind)
            y = y.reshape(n, -1)
            ref = node.output
            if node.inplace or ref.offset:
                values[ref.buffer.id] = values[ref.buffer.id].clone()
                values[ref.buffer.id][:, ref.offset:ref.offset + ref.numel] = y
            else:
                values[ref.buffer.id] = y
            if observe is not None:
                observe(index, y.numpy())
        last = graph.nodes[-1].inputs[0]
        return read(last).numpy().astype(np.float32)
