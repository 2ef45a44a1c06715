"""The static activation arena: an offset per buffer from tensor liveness.

Greedy by size (the strategy of TFLM's greedy planner): the largest buffers are placed first,
each at the lowest offset where it overlaps no already placed buffer whose lifetime meets its
own. Two buffers whose lifetimes share a node never share bytes (a node's input and output are
both alive at that node), so the arena size is the exact peak SRAM of the activations.
"""

from __future__ import annotations

from dataclasses import dataclass

ALIGN = 8


@dataclass(frozen=True)
class Slot:
    id: int
    size: int  # bytes
    first: int
    last: int


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def alive_together(a: Slot, b: Slot) -> bool:
    return a.first <= b.last and b.first <= a.last


def plan(slots: list[Slot]) -> tuple[dict[int, int], int]:
    """Offsets (bytes, ``ALIGN``-aligned) per slot id and the arena size in bytes."""
    placed: list[tuple[Slot, int]] = []
    offsets: dict[int, int] = {}
    for slot in sorted(slots, key=lambda s: (-s.size, s.first, s.id)):
        busy = sorted((off, off + _align(other.size)) for other, off in placed if alive_together(slot, other))
        offset = 0
        for start, end in busy:
            if offset + slot.size <= start:
                break
            offset = max(offset, end)
        offsets[slot.id] = offset
        placed.append((slot, offset))
    size = max((off + _align(slot.size) for slot, off in placed), default=0)
    return offsets, size


def overlaps(slots: list[Slot], offsets: dict[int, int]) -> list[tuple[int, int]]:
    """Pairs of slots alive together whose bytes intersect (empty for a correct plan)."""
    found = []
    for i, a in enumerate(slots):
        for b in slots[i + 1:]:
            a_start, b_start = offsets[a.id], offsets[b.id]
            if alive_together(a, b) and a_start < b_start + b.size and b_start < a_start + a.size:
                found.append((a.id, b.id))
    return found
