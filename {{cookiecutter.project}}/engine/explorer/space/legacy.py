"""Spellings of the paper and of its public implementation, rewritten to the current ones.

The paper's own aliases (``repeat_ops``, ``reference_block``) are accepted silently; the
public implementation's spellings are accepted with one warning per use naming the line.
"""

from __future__ import annotations

from typing import Any

from ..errors import Diagnostic
from .source import LocDict, LocList

PAPER_TYPES = {"repeat_ops": "repeat_op"}
LEGACY_OPS = {"batch_norm": "batchnorm", "layer_norm": "layernorm"}
LEGACY_PARAMS = {"num_lstm_layers": "num_layers"}


def normalise(root: Any, file: str) -> list[Diagnostic]:
    """Rewrite legacy spellings in place; return the warnings."""
    warnings: list[Diagnostic] = []

    def warn(mark, old: str, new: str) -> None:
        warnings.append(Diagnostic(file, *mark, f"'{old}' is a legacy spelling", f"write '{new}'", "warning"))

    def rename_key(node: LocDict, old: str, new: str, *, silent: bool = False) -> None:
        if old in node and new not in node:
            if not silent:
                warn(node.key_marks[old], old, new)
            node.rename(old, new)

    def value_form(value: Any) -> None:
        if isinstance(value, LocDict) and ("start" in value or "end" in value) and not ({"low", "high"} & value.keys()):
            warn(value.mark, "{start, end, step}", "{low, high, step}")
            rename_key(value, "start", "low", silent=True)
            rename_key(value, "end", "high", silent=True)

    def op_params(node: LocDict) -> None:
        for old, new in LEGACY_OPS.items():
            rename_key(node, old, new)
        for op, params in node.items():
            if isinstance(params, LocDict):
                if op in ("lstm", "gru"):
                    for old, new in LEGACY_PARAMS.items():
                        rename_key(params, old, new)
                for value in params.values():
                    value_form(value)

    def candidates(block: LocDict) -> None:
        value = block.get("op_candidates")
        if isinstance(value, str) and value in LEGACY_OPS:
            warn(block.value_marks["op_candidates"], value, LEGACY_OPS[value])
            block["op_candidates"] = LEGACY_OPS[value]
        elif isinstance(value, LocList):
            for i, name in enumerate(value):
                if isinstance(name, str) and name in LEGACY_OPS:
                    warn(value.value_marks[i], name, LEGACY_OPS[name])
                    value[i] = LEGACY_OPS[name]

    def sequence(seq: Any) -> None:
        if not isinstance(seq, LocList):
            return
        for block in seq:
            if not isinstance(block, LocDict):
                continue
            candidates(block)
            op_params(block)
            repeat = block.get("type_repeat")
            if isinstance(repeat, LocDict):
                rename_key(repeat, "repeat_type", "type")
                rename_key(repeat, "reference_block", "ref_block", silent=True)
                if repeat.get("type") in PAPER_TYPES:
                    repeat["type"] = PAPER_TYPES[repeat["type"]]
                value_form(repeat.get("depth"))

    if isinstance(root, LocDict):
        sequence(root.get("sequence"))
        if isinstance(root.get("default_op_params"), LocDict):
            op_params(root["default_op_params"])
        if isinstance(root.get("composites"), LocDict):
            for composite in root["composites"].values():
                if isinstance(composite, LocDict):
                    sequence(composite.get("sequence"))
    return warnings
