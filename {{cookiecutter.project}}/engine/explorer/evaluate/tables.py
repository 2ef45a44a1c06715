"""Per-op tables (formulas or data keyed by op name) and the layer facts their formulas share.

Every static estimator reads one such table. A custom op gets an entry through the table's
``register`` decorator. A table may carry a ``fallback`` that measures an op without an entry
from its own module (so a user's plugin op works in a search before anyone writes its
formula); a table without one fails loudly (``MissingFormula``) instead of silently costing 0.
"""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from ..space.architecture import Layer

T = TypeVar("T")


class MissingFormula(LookupError):
    """An op has no entry in a table an estimator needs."""


class OpTable(Generic[T]):
    """Entries by op name; ``what`` and ``hint`` make the error for a missing op actionable."""

    def __init__(self, what: str, hint: str, entries: dict[str, T] | None = None,
                 fallback: T | None = None):
        self.what, self.hint = what, hint
        self.entries: dict[str, T] = dict(entries or {})
        self.fallback = fallback

    def set(self, op: str, entry: T) -> T:
        if op in self.entries:
            raise ValueError(f"op {op!r} already has a {self.what} entry")
        self.entries[op] = entry
        return entry

    def register(self, *ops: str) -> Callable[[T], T]:
        """Decorator: ``@table.register("conv1d", "conv2d")`` stores the function for each op."""

        def decorate(entry: T) -> T:
            for op in ops:
                self.set(op, entry)
            return entry

        return decorate

    def __getitem__(self, layer: Layer) -> T:
        if layer.op not in self.entries:
            from ..ops import DEFAULT_REGISTRY

            if self.fallback is not None and layer.op in DEFAULT_REGISTRY:
                return self.fallback
            raise MissingFormula(f"no {self.what} for op '{layer.op}' (layer '{layer.path}'); "
                                 f"register one with {self.hint}('{layer.op}')")
        return self.entries[layer.op]

    def __contains__(self, op: object) -> bool:
        return op in self.entries

    def copy(self) -> OpTable[T]:
        return OpTable(self.what, self.hint, self.entries, self.fallback)


def layer_module(layer: Layer):
    """The torch module of one layer, built by its op in the default registry (plugins included)."""
    from ..ops import DEFAULT_REGISTRY

    return DEFAULT_REGISTRY[layer.op].build_layer(layer.input, layer.params)


def activation_of(layer: Layer) -> str:
    """The element-wise function a layer applies: the ``activation`` op's ``op``, or a fused
    ``activation`` parameter (linear, convolutions); ``identity`` when none."""
    if layer.op == "activation":
        return layer.params["op"]
    return layer.params.get("activation", "identity")


def window(layer: Layer) -> int:
    """Elements one kernel window covers per channel: k for [C, L], k x k for [C, H, W]."""
    return layer.params["kernel_size"] ** (len(layer.input.shape) - 1)


def recurrent_layers(layer: Layer) -> list[tuple[int, int]]:
    """(input features, hidden size) of every stacked layer and direction of an LSTM/GRU."""
    p = layer.params
    directions = 2 if p["bidirectional"] else 1
    h = p["hidden_size"]
    inputs = [layer.input.shape[1]] + [h * directions] * (p["num_layers"] - 1)
    return [(i, h) for i in inputs for _ in range(directions)]


def channels(layer: Layer) -> int:
    """The normalised channel count: features for vectors and steps, channels otherwise."""
    x = layer.input
    return x.shape[1] if x.kind == "steps" else x.shape[0]
