"""Sampling: a search space and an Optuna trial give an ``Architecture`` (or an infeasible result).

Parameter names are paths, deterministic and readable, e.g. ``features/depth``,
``features/2/pool/op``, ``features/2/conv/conv1d/kernel_size``, so studies resume and
trials compare across runs. Fixed values are not sent to Optuna.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..ops.registry import DEFAULT_REGISTRY, Infeasible, Registry, Tensor
from ..preprocess.pipeline import Pipeline
from ..preprocess.steps import STEPS, Shape
from .architecture import Architecture, Layer
from .model import Block, PreprocessSpace, SearchSpace
from .values import TrialLike


@dataclass(frozen=True)
class Raw:
    """A sampled op before shapes are known."""

    op: str
    params: dict[str, Any]
    path: str


@dataclass
class Candidate:
    """What one sample gives: an architecture, or the reason it is infeasible."""

    status: Literal["ok", "infeasible"]
    architecture: Architecture | None
    params: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


class _Sampler:
    def __init__(self, space: SearchSpace, trial: TrialLike, registry: Registry):
        self.space, self.trial, self.registry = space, trial, registry

    def sequence(self, blocks: tuple[Block, ...], prefix: str, last: bool) -> list[Raw]:
        layers: list[Raw] = []
        sampled: dict[str, tuple[str, list[Raw]]] = {}  # block name -> (its path, its layers)
        for i, block in enumerate(blocks):
            base = f"{prefix}{block.name}"
            if block.repeat == "repeat_block":
                ref_base, ref_layers = sampled[block.ref]
                out = [Raw(r.op, dict(r.params), base + r.path[len(ref_base):]) for r in ref_layers]
            else:
                out = self.block(block, base, last and i == len(blocks) - 1)
            sampled[block.name] = (base, out)
            layers += out
        return layers

    def block(self, block: Block, base: str, last: bool) -> list[Raw]:
        if block.repeat is None:
            return self.op(block, self.choose(block, f"{base}/op"), base, last)
        depth = block.depth.suggest(self.trial, f"{base}/depth")
        if block.repeat == "repeat_op":
            op = self.choose(block, f"{base}/op")
            return [r for j in range(depth) for r in self.op(block, op, f"{base}/{j}", last and j == depth - 1)]
        if block.repeat == "repeat_params":
            op = self.choose(block, f"{base}/op")
            once = self.op(block, op, base, last and depth == 1)
            return [Raw(r.op, dict(r.params), r.path) for _ in range(depth) for r in once]
        # vary_all
        return [r for j in range(depth)
                for r in self.op(block, self.choose(block, f"{base}/{j}/op"), f"{base}/{j}", last and j == depth - 1)]

    def choose(self, block: Block, name: str) -> str:
        if len(block.candidates) == 1:
            return block.candidates[0]
        return self.trial.suggest_categorical(name, block.candidates)

    def op(self, block: Block, op: str, base: str, last: bool) -> list[Raw]:
        if op in self.space.composites:
            inner = f"{base}/{op}/" if len(block.candidates) > 1 else f"{base}/"
            return self.sequence(self.space.composites[op], inner, last)
        size = self.registry[op].size_param
        params = {
            name: value.suggest(self.trial, f"{base}/{op}/{name}")
            for name, value in block.params[op].items()
            if not (last and size is not None and name == size.name)
        }
        return [Raw(op, params, f"{base}/{op}")]


def _adapt(x: Tensor, accepts: tuple, registry: Registry, path: str) -> tuple[Tensor, list[Layer]]:
    """Adapters that turn ``x`` into a kind the next op accepts (preferred kind first)."""
    if x.kind in accepts:
        return x, []
    for kind in accepts:
        chain = registry.adapter_path(x.kind, kind)
        if chain is not None:
            layers = []
            for name in chain:
                y = registry[name].infer(x, {})
                layers.append(Layer(name, {}, f"{path}/{name}", x, y, adapter=True))
                x = y
            return x, layers
    raise Infeasible(f"no adapter turns a {x.kind} tensor {list(x.shape)} into what {path} accepts")


def shapes(raw: list[Raw], space_input: Tensor, output: Tensor, registry: Registry) -> list[Layer]:
    """Infer every tensor, insert adapters, and build the last layer for ``output``."""
    if not raw:
        raise Infeasible("the sampled network has no layers")
    x, layers = space_input, []
    for i, r in enumerate(raw):
        builder = registry[r.op]
        x, adapters = _adapt(x, builder.accepts, registry, r.path)
        layers += adapters
        last = i == len(raw) - 1
        params = builder.with_defaults(r.params)
        if last:
            params = builder.last_params(x, params, output)
        y = builder.infer(x, params)
        if any(n < 1 for n in y.shape):
            raise Infeasible(f"{r.path} gives an empty tensor {list(y.shape)}")
        layers.append(Layer(r.op, params, r.path, x, y, last=last))
        x = y
    if x != output:
        adapters, y = [], x
        for name in registry.adapter_path(x.kind, output.kind) or []:
            z = registry[name].infer(y, {})
            adapters.append(Layer(name, {}, f"output/{name}", y, z, adapter=True))
            y = z
        if y == output:
            layers += adapters
        elif x.numel == output.numel:
            layers.append(Layer("reshape", {"shape": list(output.shape)}, "output/reshape", x, output, adapter=True))
        else:
            raise Infeasible(f"the last layer gives {list(x.shape)} but the output is {list(output.shape)}")
    return layers


def sample_pipeline(space: PreprocessSpace, trial: TrialLike) -> Pipeline:
    """Enabled steps with their parameters, in the sampled order (``preprocess/...`` names)."""
    chosen = {}
    for name, values in space.steps:
        if values["enabled"].suggest(trial, f"preprocess/{name}/enabled"):
            chosen[name] = {key: value.suggest(trial, f"preprocess/{name}/{key}")
                            for key, value in values.items() if key != "enabled"}
    order = space.orders[0]
    if len(space.orders) > 1:
        labels = [">".join(o) for o in space.orders]
        order = space.orders[labels.index(trial.suggest_categorical("preprocess/order", labels))]
    return Pipeline(tuple((name, STEPS[name].with_defaults(chosen[name])) for name in order if name in chosen))


def sample(space: SearchSpace, trial: TrialLike, registry: Registry | None = None,
           data: Shape | None = None) -> Candidate:
    """Draw one candidate (pipeline and network in the same trial); shapes that do not work give
    ``status='infeasible'`` with a reason. ``data`` is the dataset's shape, needed when the space
    pre-processes (the pipeline then defines the model's input)."""
    registry = registry or DEFAULT_REGISTRY
    pipeline = sample_pipeline(space.preprocessing, trial) if space.preprocessing else Pipeline()
    raw = _Sampler(space, trial, registry).sequence(space.sequence, "", last=True)
    params = dict(getattr(trial, "params", {}))
    try:
        if space.preprocessing is not None:
            if data is None:
                raise Infeasible("the space pre-processes data: sample it with a dataset")
            x = pipeline.input_tensor(data)
        elif space.input is not None:
            x = space.input
        else:
            raise Infeasible("the space has no input shape")
        layers = shapes(raw, x, space.output, registry)
    except Infeasible as exc:
        return Candidate("infeasible", None, params, str(exc))
    arch = Architecture(x, space.output, tuple(layers), space.hash, params, pipeline.to_json())
    return Candidate("ok", arch, params)
