"""The operation registry: what an op is (``LayerBuilder``), how it is registered, and the
adapters that connect ops whose tensors have different layouts.

An op declares its parameters once (``Param``); validation, the JSON Schema and
``explorer ops`` are all derived from that declaration. Shape inference (``infer``) needs no
torch, so validating and sampling a space stays fast; only ``build_layer`` imports torch.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

Kind = Literal["vector", "channels", "steps", "image"]
KINDS: tuple[Kind, ...] = ("vector", "channels", "steps", "image")
KIND_DOC = {
    "vector": "[F] features",
    "channels": "[C, L] channels x length (convolution layout)",
    "steps": "[L, F] steps x features (recurrent layout)",
    "image": "[C, H, W] channels x height x width",
}

REQUIRED = object()  # marks a parameter without default


class Infeasible(Exception):
    """A sampled candidate whose shapes cannot work; the search records it, never crashes."""


@dataclass(frozen=True)
class Tensor:
    """A tensor's per-sample shape and layout kind (two 2-D layouts exist: channels, steps)."""

    kind: Kind
    shape: tuple[int, ...]

    @staticmethod
    def of_shape(shape: int | list[int] | tuple[int, ...]) -> Tensor:
        """The kind a user's ``input``/``output`` declares: int -> vector, [C, L] -> channels, [C, H, W] -> image."""
        dims = (shape,) if isinstance(shape, int) else tuple(shape)
        kind = {1: "vector", 2: "channels", 3: "image"}[len(dims)]
        return Tensor(kind, dims)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def to_json(self) -> dict:
        return {"kind": self.kind, "shape": list(self.shape)}

    @staticmethod
    def from_json(data: dict) -> Tensor:
        return Tensor(data["kind"], tuple(data["shape"]))


@dataclass(frozen=True)
class Param:
    """One parameter of an op: its type, bounds and default. The single source of truth."""

    name: str
    type: Literal["int", "float", "bool", "choice"]
    default: Any = REQUIRED
    ge: float | None = None
    gt: float | None = None
    lt: float | None = None
    le: float | None = None
    choices: tuple[str, ...] = ()  # allowed strings ('choice'), or string literals an int also accepts
    size: bool = False  # set from the network's output when the op builds the last layer
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def problem(self, value: Any) -> str | None:
        """Why a single scalar ``value`` is not allowed, or None when it is."""
        if isinstance(value, str) and value in self.choices:
            return None
        if self.type == "choice":
            return f"must be one of {', '.join(self.choices)}"
        if self.type == "bool":
            return None if isinstance(value, bool) else "must be true or false"
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.type == "int" and not (numeric and isinstance(value, int)):
            extra = f" or {' / '.join(repr(c) for c in self.choices)}" if self.choices else ""
            return f"must be an integer{extra}"
        if self.type == "float" and not numeric:
            return "must be a number"
        if self.ge is not None and value < self.ge:
            return f"must be >= {self.ge:g}"
        if self.gt is not None and value <= self.gt:
            return f"must be > {self.gt:g}"
        if self.lt is not None and value >= self.lt:
            return f"must be < {self.lt:g}"
        if self.le is not None and value > self.le:
            return f"must be <= {self.le:g}"
        return None

    def describe(self) -> str:
        """A short human description: type and bounds, as shown by ``explorer ops``."""
        if self.type == "choice":
            return "|".join(self.choices)
        bounds = [f">= {self.ge:g}" if self.ge is not None else "", f"> {self.gt:g}" if self.gt is not None else "",
                  f"< {self.lt:g}" if self.lt is not None else "", f"<= {self.le:g}" if self.le is not None else ""]
        text = " ".join([self.type, *[b for b in bounds if b]])
        return text + "".join(f" | {c!r}" for c in self.choices)

    def scalar_schema(self) -> dict:
        """JSON Schema of one scalar value of this parameter."""
        if self.type == "choice":
            return {"enum": list(self.choices)}
        if self.type == "bool":
            return {"type": "boolean"}
        schema: dict[str, Any] = {"type": "integer" if self.type == "int" else "number"}
        if self.ge is not None:
            schema["minimum"] = self.ge
        if self.gt is not None:
            schema["exclusiveMinimum"] = self.gt
        if self.lt is not None:
            schema["exclusiveMaximum"] = self.lt
        if self.le is not None:
            schema["maximum"] = self.le
        if self.choices:
            return {"anyOf": [schema, {"enum": list(self.choices)}]}
        return schema


class LayerBuilder(ABC):
    """An operation of the DSL (the paper's Listing 4).

    Subclasses declare ``params`` and the input ``accepts`` kinds (preferred first), infer the
    output tensor without torch, and build the module. The last layer of a network is built by
    ``get_last_layer``, which sets the op's size parameter from the network's output.
    """

    name: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    accepts: ClassVar[tuple[Kind, ...]] = KINDS
    adapter: ClassVar[bool] = False  # inserted automatically between ops; not usable in a space
    doc: ClassVar[str] = ""

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def size_param(self) -> Param | None:
        return next((p for p in self.params if p.size), None)

    def with_defaults(self, params: dict) -> dict:
        """Complete ``params`` with declared defaults (required ones must already be there)."""
        full = {p.name: p.default for p in self.params if not p.required}
        full.update(params)
        return full

    @abstractmethod
    def infer(self, x: Tensor, params: dict) -> Tensor:
        """The output tensor for input ``x``; raise ``Infeasible`` with a reason when shapes do not work."""

    @abstractmethod
    def build_layer(self, x: Tensor, params: dict) -> Any:
        """The ``torch.nn.Module`` for input ``x`` (the paper's ``input_shape``, with its layout kind)."""

    def last_params(self, x: Tensor, params: dict, output: Tensor) -> dict:
        """Parameters for the last layer: the size parameter produces ``output`` (no-op without one)."""
        size = self.size_param
        if size is None:
            return params
        return {**params, size.name: output.numel}

    def get_last_layer(self, x: Tensor, params: dict, output: Tensor) -> Any:
        return self.build_layer(x, self.last_params(x, params, output))


@dataclass
class Registry:
    """Ops by name, plus the transition table of adapters between tensor kinds.

    ``DEFAULT_REGISTRY`` holds the built-in ops; tests and experiments that add ops may use
    ``DEFAULT_REGISTRY.copy()`` so no global state is mutated behind anyone's back.
    """

    ops: dict[str, LayerBuilder] = field(default_factory=dict)
    transitions: dict[tuple[Kind, Kind], str] = field(default_factory=dict)

    def register(self, name: str, transition: tuple[Kind, Kind] | None = None):
        """Class decorator: ``@registry.register("linear")``."""

        def decorate(cls: type[LayerBuilder]) -> type[LayerBuilder]:
            if name in self.ops:
                raise ValueError(f"op {name!r} is already registered")
            cls.name = name
            self.ops[name] = cls()
            if transition is not None:
                self.transitions[transition] = name
            return cls

        return decorate

    def __getitem__(self, name: str) -> LayerBuilder:
        return self.ops[name]

    def __contains__(self, name: object) -> bool:
        return name in self.ops

    def searchable(self) -> dict[str, LayerBuilder]:
        """The ops a search space may name (adapters excluded)."""
        return {n: op for n, op in self.ops.items() if not op.adapter}

    def copy(self) -> Registry:
        return Registry(dict(self.ops), dict(self.transitions))

    def adapter_path(self, src: Kind, dst: Kind) -> list[str] | None:
        """Shortest chain of adapter ops turning kind ``src`` into ``dst`` ([] when equal)."""
        queue: deque[tuple[Kind, list[str]]] = deque([(src, [])])
        seen = {src}
        while queue:
            kind, path = queue.popleft()
            if kind == dst:
                return path
            for (a, b), op in self.transitions.items():
                if a == kind and b not in seen:
                    seen.add(b)
                    queue.append((b, [*path, op]))
        return None


DEFAULT_REGISTRY = Registry()


def register_layer(name: str, registry: Registry | None = None):
    """Register a ``LayerBuilder`` under ``name`` (the paper's ``@register_layer``)."""
    return (registry or DEFAULT_REGISTRY).register(name)
