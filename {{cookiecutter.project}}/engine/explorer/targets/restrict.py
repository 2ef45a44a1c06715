"""Reflection applied to a search space: the space a target can run, before any trial.

Sampling a restricted space draws only supported ops and values, so no trial is spent on a
model the target would refuse; ``explorer validate --target`` reports what was taken out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..space.model import Block, SearchSpace
from ..space.values import Choice, Fixed, IntRange, Value
from .base import Reflection


@dataclass(frozen=True)
class Finding:
    """One thing the target cannot run: where in the space, what, and whether a choice is left."""

    block: tuple  # path of the block in the YAML, e.g. ("sequence", 0) or ("composites", "c", "sequence", 1)
    message: str
    fatal: bool


def _value(value: Value, allowed: tuple) -> Value | None:
    options = [v for v in value.values() if v in allowed] if value.count() is not None else list(allowed)
    if isinstance(value, IntRange) and value.count() is not None:
        options = [v for v in allowed if isinstance(v, int) and value.low <= v <= value.high]
    if not options:
        return None
    return Fixed(options[0]) if len(options) == 1 else Choice(tuple(options))


def restrict(space: SearchSpace, reflection: Reflection) -> tuple[SearchSpace, list[Finding]]:
    """The part of ``space`` the target runs, and what was removed (fatal: a block lost every choice)."""
    if reflection.ops is None:
        return space, []
    usable: dict[str, bool] = {}

    def params_for(block: Block, op: str) -> tuple[dict[str, Value] | None, list[str]]:
        """The op's values restricted to the target's (None: no value left), and notes."""
        values, notes = dict(block.params.get(op, {})), []
        for name, allowed in reflection.ops[op].params.items():  # type: ignore[index]
            if name not in values:
                continue
            restricted = _value(values[name], allowed)
            if restricted is None:
                return None, [f"{op}.{name}: none of {values[name].values()} is supported (allowed: {list(allowed)})"]
            if restricted.values() != values[name].values():
                notes.append(f"{op}.{name}: only {restricted.values()} of {values[name].values()} are supported")
            values[name] = restricted
        return values, notes

    def runs(block: Block, op: str) -> bool:
        if op in space.composites:
            if op not in usable:
                usable[op] = False  # the DSL forbids recursion; this only guards the walk
                usable[op] = all(b.repeat == "repeat_block" or any(runs(b, c) for c in b.candidates)
                                 for b in space.composites[op])
            return usable[op]
        return reflection.supports_op(op) and params_for(block, op)[0] is not None

    findings: list[Finding] = []

    def restricted(block: Block, where: tuple) -> Block:
        keep, params = [], dict(block.params)
        for op in block.candidates:
            if not runs(block, op):
                reason = (f"composite '{op}' has a block the target cannot run" if op in space.composites
                          else params_for(block, op)[1][0] if reflection.supports_op(op)
                          else f"op '{op}' is not supported")
                findings.append(Finding(where, reason, False))
                continue
            keep.append(op)
            if op not in space.composites:
                params[op], notes = params_for(block, op)
                findings.extend(Finding(where, note, False) for note in notes)
        if block.candidates and not keep:
            findings.append(Finding(where, f"block '{block.name}': no candidate op is supported", True))
            return block
        return replace(block, candidates=tuple(keep), params=params)

    composites = {name: tuple(restricted(b, ("composites", name, "sequence", i)) for i, b in enumerate(items))
                  for name, items in space.composites.items()}
    sequence = tuple(restricted(b, ("sequence", i)) for i, b in enumerate(space.sequence))
    return replace(space, sequence=sequence, composites=composites), findings
