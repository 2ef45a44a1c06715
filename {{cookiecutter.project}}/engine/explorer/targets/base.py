"""What a target is: a generator, a toolchain, a board transport and a reflection.

Every target turns an exported model folder (``models/<trial>/``) into an artifact folder with a
``manifest.json``, builds that artifact into something runnable, and measures it on a board. All
board programs speak one protocol (JSON lines, ``explorer.targets.protocol``), whatever carries
them: a local process, SSH, a serial port or a simulator.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..space.architecture import Architecture


@dataclass(frozen=True)
class OpSupport:
    """One op a target runs: allowed values per parameter (absent: any value the DSL allows)."""

    params: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Reflection:
    """What a target can run: ops (and parameter values), tensor dtypes, memory limits.

    ``ops`` None means every op of the registry (the host). Limits are bytes; None is unlimited.
    """

    ops: dict[str, OpSupport] | None
    dtypes: tuple[str, ...] = ("float32",)
    sram_bytes: int | None = None
    flash_bytes: int | None = None
    recurrent: bool = True
    notes: str = ""

    def supports_op(self, op: str) -> bool:
        return self.ops is None or op in self.ops

    def supports_value(self, op: str, param: str, value: Any) -> bool:
        if self.ops is None:
            return True
        support = self.ops.get(op)
        if support is None:
            return False
        allowed = support.params.get(param)
        return allowed is None or value in allowed

    def problems(self, architecture: Architecture) -> list[str]:
        """Why this target cannot run ``architecture`` (empty: it can)."""
        found = []
        for layer in architecture.layers:
            if not self.supports_op(layer.op):
                found.append(f"{layer.path}: op '{layer.op}' is not supported")
                continue
            for name, value in layer.params.items():
                if not self.supports_value(layer.op, name, value):
                    allowed = ", ".join(map(str, self.ops[layer.op].params[name]))  # type: ignore[index]
                    found.append(f"{layer.path}: {layer.op}.{name}={value!r} is not supported (allowed: {allowed})")
        return found

    def intersect(self, other: Reflection, **limits: Any) -> Reflection:
        """What both run (a model that must pass two generators); ``limits`` set the memory fields."""
        if self.ops is None or other.ops is None:
            ops = other.ops if self.ops is None else self.ops
        else:
            ops = {}
            for name in self.ops.keys() & other.ops.keys():
                mine, theirs = self.ops[name].params, other.ops[name].params
                params = {k: tuple(v for v in mine.get(k, theirs.get(k, ())) if k not in theirs or v in theirs[k])
                          for k in mine.keys() | theirs.keys()}
                notes = "; ".join(n for n in (self.ops[name].note, other.ops[name].note) if n)
                ops[name] = OpSupport(params, notes)
        dtypes = tuple(d for d in self.dtypes if d in other.dtypes)
        return Reflection(ops, dtypes, recurrent=self.recurrent and other.recurrent, **limits)

    def to_json(self) -> dict:
        ops = None if self.ops is None else {
            name: {"params": {k: list(v) for k, v in s.params.items()}, "note": s.note}
            for name, s in sorted(self.ops.items())}
        return {"ops": ops, "dtypes": list(self.dtypes), "sram_bytes": self.sram_bytes,
                "flash_bytes": self.flash_bytes, "recurrent": self.recurrent, "notes": self.notes}


class Target(ABC):
    """A place a model runs. Subclasses register themselves in ``explorer.targets.REGISTRY``."""

    name: str = ""
    description: str = ""
    reflection: Reflection = Reflection(ops=None)
    toolchain: str | None = None  # folder under toolchains/ whose image builds the artifact
    artifacts: tuple[str, ...] = ()  # the formats ``export`` writes, e.g. ("torchscript", "onnx")

    def reflection_for(self, variant: str | None = None) -> Reflection:
        """The reflection of one board variant (e.g. rp2040 vs rp2350); the default has none."""
        return self.reflection

    @abstractmethod
    def export(self, model: Any, out: Path, options: dict[str, Any]) -> dict:
        """Write the artifact files of ``model`` (an ``ExportedModel``) into ``out``; return the
        manifest's target-specific fields (``manifest.write`` adds files, hashes and the model)."""

    def build(self, artifact: Path, toolchain: str) -> dict:
        """Compile the artifact in place (``toolchain`` is ``docker`` or ``native``); return build
        facts for the manifest (binaries, flash and RAM sizes, toolchain version). Nothing to build
        by default."""
        return {}

    @abstractmethod
    def bench(self, artifact: Path, board: Any | None, options: dict[str, Any]) -> dict:
        """Run the built artifact on ``board`` (None: this machine or the target's simulator) over
        the exported test inputs; return raw results (``explorer.targets.scoring`` scores them)."""
