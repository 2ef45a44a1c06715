"""The compiled search space: what validation produces and sampling reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import Diagnostic
from ..ops.registry import Tensor
from .values import Value


@dataclass(frozen=True)
class Block:
    """A validated block: candidates, repetition and, per primitive candidate, resolved parameters
    (declared defaults <- ``default_op_params`` <- the block's own values)."""

    name: str
    candidates: tuple[str, ...]
    repeat: str | None  # None | repeat_op | repeat_params | vary_all | repeat_block
    depth: Value
    ref: str | None
    params: Mapping[str, Mapping[str, Value]]


@dataclass(frozen=True)
class PreprocessSpace:
    """The searchable pipeline: steps in declared order with their values (``enabled`` included),
    and the orders the user allows (default: the declared one)."""

    steps: tuple[tuple[str, Mapping[str, Value]], ...]
    orders: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class SearchSpace:
    """A search space ready to sample. ``hash`` identifies its content (study names, caches)."""

    file: str
    input: Tensor | None
    output: Tensor
    sequence: tuple[Block, ...]
    composites: Mapping[str, tuple[Block, ...]]
    hash: str
    preprocessing: PreprocessSpace | None = None
    warnings: tuple[Diagnostic, ...] = ()
    source: Any = field(default=None, repr=False)

    def all_blocks(self) -> list[Block]:
        return [*self.sequence, *(b for blocks in self.composites.values() for b in blocks)]

    def primitive_ops(self) -> set[str]:
        return {op for b in self.all_blocks() for op in b.candidates if op not in self.composites}
