"""The size of a search space: the exact number of distinct architectures its discrete choices
give, and whether continuous ranges make it infinite. Mirrors ``sample`` rule by rule."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..ops.registry import DEFAULT_REGISTRY, Registry
from .model import Block, PreprocessSpace, SearchSpace


@dataclass(frozen=True)
class Size:
    discrete: int
    continuous: bool

    def __str__(self) -> str:
        text = f"{self.discrete:,}" if self.discrete < 10**15 else _scientific(self.discrete)
        return f"continuous ({text} discrete combinations)" if self.continuous else f"{text} architectures"


def _scientific(n: int) -> str:
    """``1.23e+4567`` for an int of any size (no float, no str() of thousands of digits)."""
    exponent = int((n.bit_length() - 1) * math.log10(2))
    while 10 ** (exponent + 1) <= n:
        exponent += 1
    while 10**exponent > n:
        exponent -= 1
    mantissa = n // 10 ** max(exponent - 2, 0)
    return f"{mantissa // 100}.{mantissa % 100:02d}e+{exponent}"


class _Counter:
    def __init__(self, space: SearchSpace, registry: Registry):
        self.space, self.registry = space, registry
        self.continuous = False

    def sequence(self, blocks: tuple[Block, ...], last: bool) -> int:
        total = 1
        for i, block in enumerate(blocks):
            total *= self.block(block, last and i == len(blocks) - 1)
        return total

    def depths(self, block: Block) -> list[int]:
        if block.depth.count() is None:  # float depth cannot pass validation
            raise ValueError("depth must be discrete")
        return block.depth.values()

    def block(self, block: Block, last: bool) -> int:
        if block.repeat == "repeat_block":
            return 1
        candidates = tuple(dict.fromkeys(block.candidates))  # a name listed twice is one choice
        if block.repeat is None:
            return sum(self.op(block, op, last) for op in candidates)
        total = 0
        for d in self.depths(block):
            if block.repeat == "repeat_op":
                total += sum(self.op(block, op, False) ** (d - 1) * self.op(block, op, last) for op in candidates)
            elif block.repeat == "repeat_params":
                total += sum(self.op(block, op, last and d == 1) for op in candidates)
            else:  # vary_all
                per = sum(self.op(block, op, False) for op in candidates)
                per_last = sum(self.op(block, op, last) for op in candidates)
                total += per ** (d - 1) * per_last
        return total

    def op(self, block: Block, op: str, last: bool) -> int:
        if op in self.space.composites:
            return self.sequence(self.space.composites[op], last)
        size = self.registry[op].size_param
        total = 1
        for name, value in block.params[op].items():
            if last and size is not None and name == size.name:
                continue
            n = value.count()
            if n is None:
                self.continuous = True
            else:
                total *= n
        return total


    def pipeline(self, space: PreprocessSpace) -> int:
        """Joint pre-processing choices: per step, its parameter combinations when on, plus 1 when it
        may be off; times the allowed orders."""
        total = len(space.orders)
        for _, values in space.steps:
            switch = set(values["enabled"].values())  # type: ignore[union-attr]
            on = 1
            for key, value in values.items():
                n = value.count() if key != "enabled" else 1
                if n is None:
                    self.continuous = True
                else:
                    on *= n
            total *= (on if True in switch else 0) + (1 if False in switch else 0)
        return total


def space_size(space: SearchSpace, registry: Registry | None = None) -> Size:
    """Distinct architectures (with their pre-processing pipelines) the space can give."""
    counter = _Counter(space, registry or DEFAULT_REGISTRY)
    n = counter.sequence(space.sequence, last=True)
    if space.preprocessing is not None:
        n *= counter.pipeline(space.preprocessing)
    return Size(n, counter.continuous)
