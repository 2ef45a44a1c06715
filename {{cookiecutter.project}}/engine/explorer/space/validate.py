"""Validation of a search space file: every user mistake becomes one located diagnostic.

Order: safe YAML with positions -> legacy spellings -> pydantic structure (unknown and
missing keys) -> semantics (values, references, op parameters, composites) -> the compiled
``SearchSpace``. All errors of a file are reported, not only the first.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import Diagnostic, UserError
from ..ops.registry import DEFAULT_REGISTRY, Param, Registry, Tensor
from ..preprocess.steps import ENABLED, STEPS
from . import legacy, schema
from .model import Block, PreprocessSpace, SearchSpace
from .source import DiagnosticsError, LocDict, LocList, load_yaml, locate, real_path
from .values import Fixed, parse_value

SIZE_KEYS = ("width", "out_channels", "hidden_size")


def did_you_mean(word: Any, options: list[str]) -> str | None:
    match = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'?" if match else None


class Checker:
    """Collects the diagnostics of one file."""

    def __init__(self, file: str, root: Any, registry: Registry):
        self.file, self.root, self.registry = file, root, registry
        self.ops = registry.searchable()
        self.diagnostics: list[Diagnostic] = []
        self.models = schema.models(registry)

    # ------------------------------------------------------------------ reporting

    def report(self, path: tuple, message: str, hint: str | None = None, *, key: bool = False,
               severity: str = "error") -> None:
        line, col = locate(self.root, path, key=key)
        diagnostic = Diagnostic(self.file, line, col, message, hint, severity)  # type: ignore[arg-type]
        if diagnostic not in self.diagnostics:
            self.diagnostics.append(diagnostic)

    def error(self, path: tuple, message: str, hint: str | None = None, *, key: bool = False) -> None:
        self.report(path, message, hint, key=key)

    def warn(self, path: tuple, message: str, hint: str | None = None, *, key: bool = False) -> None:
        self.report(path, message, hint, key=key, severity="warning")

    @property
    def failed(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)

    # ------------------------------------------------------------------ structure (pydantic)

    def structure(self) -> None:
        try:
            self.models.root.model_validate(self.root)
        except ValidationError as exc:
            for err in exc.errors():
                self.pydantic_error(err)

    def keys_allowed_at(self, path: tuple) -> tuple[list[str], str]:
        """The keys a mapping at ``path`` may hold, and what such a mapping is called."""
        if not path:
            return list(self.models.root.model_fields), "search space"
        if path[-1] == "type_repeat":
            return list(schema.TypeRepeat.model_fields), "type_repeat"
        if path[-1] == "default_op_params":
            return list(self.ops), "default_op_params (op names)"
        if path == ("preprocessing",):
            return ["order", *STEPS], "preprocessing"
        if len(path) == 2 and path[0] == "preprocessing" and path[1] in STEPS:
            return [p.name for p in (ENABLED, *STEPS[path[1]].params)], f"step '{path[1]}'"
        if len(path) == 2 and path[0] == "composites":
            return ["sequence"], "composite"
        if isinstance(path[-1], int):
            return [*self.models.block_keys(), *self.ops], "block"
        if path[-1] in self.ops:
            return [p.name for p in self.ops[path[-1]].params], f"op '{path[-1]}'"
        return [], "mapping"

    def pydantic_error(self, err: dict) -> None:
        path = real_path(self.root, err["loc"])
        kind = err["type"]
        name = path[-1] if path else "file"
        value = err.get("input")
        if kind == "extra_forbidden":
            allowed, where = self.keys_allowed_at(path[:-1])
            if where.startswith("op '") and not allowed:
                hint = f"op {where[3:]} takes no parameters"
            else:
                hint = did_you_mean(name, allowed) or (f"allowed: {', '.join(allowed)}" if allowed else None)
            if where == "block" and name == "activation":
                hint = "a block has no 'activation' key; use an op parameter (e.g. linear: {activation: relu}) " \
                       "or an 'activation' block"
            self.error(path, f"unknown key '{name}' in {where}", hint, key=True)
        elif kind == "missing":
            parent = path[:-1]
            self.error(parent, f"missing required key '{name}'", None)
        elif kind in ("model_type", "dict_type", "model_attributes_type"):
            if name == "activation" and len(path) >= 2 and isinstance(path[-2], int):
                self.error(path, f"block-level 'activation: {value}' is not supported",
                           "put it in the op's parameters (e.g. linear: {activation: relu}) or add an "
                           "'activation' block")
            elif name in self.ops:
                self.error(path, f"parameters of op '{name}' must be a mapping, got {value!r}",
                           f"e.g. {name}: {{param: value}}")
            elif not path:
                self.error(path, "the file must be a mapping of keys (input, output, sequence, ...)")
            else:
                self.error(path, f"'{name}' must be a mapping, got {value!r}")
        elif kind == "list_type":
            self.error(path, f"'{name}' must be a list, got {value!r}")
        elif kind == "too_short":
            self.error(path, f"'{name}' must not be empty")
        elif kind == "literal_error":
            expected = err.get("ctx", {}).get("expected", "")
            self.error(path, f"unknown {name} '{value}'", did_you_mean(value, list(schema.REPEAT_TYPES))
                       or f"one of {expected}")
        elif kind == "string_type":
            self.error(path, f"'{name}' must be a string, got {value!r}")
        else:
            self.error(path, f"'{name}': {err['msg']}")

    # ------------------------------------------------------------------ values

    def shape(self, key: str, required: bool) -> None:
        if key not in self.root:
            if required:
                self.error((), f"missing required key '{key}'", "e.g. input: [6, 100]")
            return
        value = self.root[key]
        ok_int = isinstance(value, int) and not isinstance(value, bool) and value > 0
        ok_list = (isinstance(value, list) and 1 <= len(value) <= 3
                   and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value))
        if not (ok_int or ok_list):
            self.error((key,), f"'{key}' must be a positive integer or a shape [C, L] / [C, H, W] of positive "
                               f"integers, got {value!r}")

    def value(self, path: tuple, value: Any, param: Param) -> None:
        """A parameter value in one of its three forms: scalar, non-empty list, range."""
        key = path[-1]
        if isinstance(value, list):
            if not value:
                self.error(path, f"'{key}' has an empty choice list", "give at least one value")
            for i, item in enumerate(value):
                if isinstance(item, (list, dict)):
                    self.error(path + (i,), f"'{key}' choice {item!r} must be a single value")
                elif (problem := param.problem(item)) is not None:
                    self.error(path + (i,), f"'{key}' choice {item!r}: {key} {problem}")
        elif isinstance(value, dict):
            self.range(path, value, param)
        elif (problem := param.problem(value)) is not None:
            self.error(path, f"'{key}' {problem}, got {value!r}")

    def range(self, path: tuple, rng: dict, param: Param) -> None:
        key = path[-1]
        if param.type not in ("int", "float"):
            self.error(path, f"'{key}' cannot be a range: it takes {param.describe()}", "use a list of choices")
            return
        for extra in rng.keys() - set(schema.RANGE_KEYS):
            self.error(path + (extra,), f"unknown key '{extra}' in range of '{key}'",
                       did_you_mean(extra, list(schema.RANGE_KEYS)) or "a range has low, high, step, log",
                       key=True)
        if "low" not in rng or "high" not in rng:
            missing = "low" if "low" not in rng else "high"
            self.error(path, f"range of '{key}' needs '{missing}'", "e.g. {low: 8, high: 64, step: 8}")
            return
        low, high, step, log = rng["low"], rng["high"], rng.get("step"), rng.get("log", False)
        ok = True
        for bound, name in ((low, "low"), (high, "high")):
            numeric = isinstance(bound, (int, float)) and not isinstance(bound, bool)
            if not numeric or (param.type == "int" and not isinstance(bound, int)):
                self.error(path + (name,), f"range {name} of '{key}' must be {'an integer' if param.type == 'int' else 'a number'}, got {bound!r}")
                ok = False
            elif (problem := param.problem(bound)) is not None:
                self.error(path + (name,), f"range {name} {bound!r} of '{key}': {key} {problem}")
                ok = False
        if ok and low > high:
            self.error(path + ("low",), f"range of '{key}' has low {low!r} greater than high {high!r}",
                       "swap them")
        if step is not None:
            numeric = isinstance(step, (int, float)) and not isinstance(step, bool)
            if not numeric or step <= 0 or (param.type == "int" and not isinstance(step, int)):
                self.error(path + ("step",), f"range step of '{key}' must be a positive "
                                             f"{'integer' if param.type == 'int' else 'number'}, got {step!r}")
        if not isinstance(log, bool):
            self.error(path + ("log",), f"range log of '{key}' must be true or false, got {log!r}")
        elif log and step is not None:
            self.error(path + ("step",), f"range of '{key}' cannot combine 'step' and 'log'", "drop one of them")
        elif log and ok and low <= 0:
            self.error(path + ("low",), f"log range of '{key}' needs low > 0, got {low!r}")

    def op_params(self, path: tuple, op: str, params: Any) -> None:
        if not isinstance(params, dict):
            return  # reported by the structure check
        builder = self.ops[op]
        for name, value in params.items():
            if (param := builder.param(name)) is not None:
                self.value(path + (name,), value, param)

    # ------------------------------------------------------------------ blocks and composites

    def sequences(self) -> None:
        composites = self.root.get("composites")
        composites = composites if isinstance(composites, dict) else {}
        self.composite_names = [n for n in composites if isinstance(n, str)]
        defaults = self.root.get("default_op_params")
        self.defaults = defaults if isinstance(defaults, dict) else {}
        for op, params in self.defaults.items():
            if op in self.ops:
                self.op_params(("default_op_params", op), op, params)
        self.sequence(("sequence",), self.root.get("sequence"), top=True)
        for name, composite in composites.items():
            if isinstance(name, str) and "/" in name:
                self.error(("composites", name), f"composite name '{name}' must contain no '/'",
                           "'/' separates the parts of Optuna parameter names", key=True)
            elif name in self.ops:
                self.error(("composites", name), f"composite name '{name}' is also the name of an op",
                           "rename the composite", key=True)
            if isinstance(composite, dict):
                self.sequence(("composites", name, "sequence"), composite.get("sequence"), top=False)
        self.recursion(composites)

    def sequence(self, path: tuple, blocks: Any, top: bool) -> None:
        if not isinstance(blocks, list):
            return
        seen: list[str] = []
        for i, block in enumerate(blocks):
            if not isinstance(block, dict):
                self.error(path + (i,), f"a block must be a mapping, got {block!r}",
                           "start a block with '- block: NAME'") if block is not None else None
                continue
            name = block.get("block")
            last = top and i == len(blocks) - 1
            self.block(path + (i,), block, seen, [b.get("block") for b in blocks[i + 1:] if isinstance(b, dict)],
                       last)
            if isinstance(name, str) and ("/" in name or not name.strip()):
                self.error(path + (i, "block"), f"block name '{name}' must be non-empty and contain no '/'",
                           "'/' separates the parts of Optuna parameter names (e.g. features/2/conv/op)")
            elif isinstance(name, str):
                if name in seen:
                    self.error(path + (i, "block"), f"duplicate block name '{name}'",
                               "block names must be unique within a sequence")
                seen.append(name)

    def block(self, path: tuple, block: dict, earlier: list[str], later: list, last: bool) -> None:
        repeat = block.get("type_repeat") if isinstance(block.get("type_repeat"), dict) else {}
        rtype = repeat.get("type")
        rpath = path + ("type_repeat",)
        if rtype == "repeat_block":
            if "op_candidates" in block:
                self.warn(path + ("op_candidates",), "'op_candidates' has no effect in a repeat_block block: it "
                                                     "copies 'ref_block'", "remove op_candidates", key=True)
            ref = repeat.get("ref_block")
            if ref is None:
                self.error(rpath, "repeat_block needs 'ref_block'", "name an earlier block: ref_block: NAME")
            elif ref not in earlier:
                where = "is defined later" if ref in later else "is not a block of this sequence"
                self.error(rpath + ("ref_block",), f"ref_block '{ref}' {where}",
                           "a block can repeat only a block defined before it in the same sequence"
                           if ref in later else did_you_mean(ref, earlier))
            if "depth" in repeat:
                self.error(rpath + ("depth",), "repeat_block takes no 'depth'", "it copies ref_block once",
                           key=True)
        else:
            if "ref_block" in repeat and repeat.get("ref_block") is not None:
                self.error(rpath + ("ref_block",), "'ref_block' is only used with type 'repeat_block'", key=True)
            if rtype == "repeat_op" and repeat.get("depth") is None:
                self.error(rpath, "repeat_op needs 'depth'", "e.g. depth: [1, 2, 3]")
            if "depth" in repeat and repeat["depth"] is not None:
                self.value(rpath + ("depth",), repeat["depth"], schema.DEPTH)
            self.candidates(path, block, last and self.single_layer(repeat))

    @staticmethod
    def single_layer(repeat: dict) -> bool:
        return not repeat or repeat.get("depth") in (None, 1, [1])

    def candidates(self, path: tuple, block: dict, last_only: bool) -> None:
        if "op_candidates" not in block:
            if "block" in block:
                self.error(path + ("block",), f"block '{block['block']}' is missing required key 'op_candidates'",
                           "e.g. op_candidates: [conv1d, identity]")
            return
        raw = block["op_candidates"]
        names = [raw] if isinstance(raw, str) else raw
        cpath = path + ("op_candidates",)
        if not isinstance(names, list):
            self.error(cpath, f"'op_candidates' must be an op name or a list of names, got {raw!r}")
            return
        if not names:
            self.error(cpath, "'op_candidates' must not be empty", "name at least one op")
        known = [*self.ops, *self.composite_names]
        valid = []
        for i, name in enumerate(names):
            npath = cpath if isinstance(raw, str) else cpath + (i,)
            if not isinstance(name, str):
                self.error(npath, f"op candidate {name!r} must be a name")
            elif name not in known:
                self.error(npath, f"unknown op or composite '{name}'",
                           did_you_mean(name, known) or "see `explorer ops`")
            else:
                valid.append(name)
        for key, params in block.items():
            if key in self.ops:
                self.op_params(path + (key,), key, params)
                if key not in names:
                    self.warn(path + (key,), f"parameters of op '{key}' have no effect: it is not a candidate of "
                                             f"block '{block.get('block')}'", key=True)
        for op in valid:
            if op in self.ops:
                self.mandatory(path, block, op, last_only)

    def mandatory(self, path: tuple, block: dict, op: str, last_only: bool) -> None:
        local = block.get(op) if isinstance(block.get(op), dict) else {}
        default = self.defaults.get(op) if isinstance(self.defaults.get(op), dict) else {}
        for param in self.ops[op].params:
            if param.size and last_only:
                if param.name in local:
                    self.warn(path + (op, param.name), f"'{param.name}' of the last layer is set from 'output'; "
                                                       "this value has no effect", "remove it", key=True)
                continue
            if param.required and param.name not in local and param.name not in default:
                self.error(self.op_mention(path, block, op), f"op '{op}' in block '{block.get('block')}' needs parameter "
                                                      f"'{param.name}'",
                           f"set it in the block ({op}: {{{param.name}: ...}}) or in default_op_params")

    @staticmethod
    def op_mention(path: tuple, block: dict, op: str) -> tuple:
        """Where a block mentions ``op``: its parameter mapping, else its entry in op_candidates."""
        if op in block:
            return path + (op,)
        raw = block.get("op_candidates")
        return path + ("op_candidates",) + ((raw.index(op),) if isinstance(raw, list) else ())

    def recursion(self, composites: dict) -> None:
        """Report each cycle of composites once, at the reference that closes it."""
        uses: dict[str, list[tuple[str, tuple]]] = {}  # composite -> [(used composite, where)]
        for name, composite in composites.items():
            blocks = composite.get("sequence") if isinstance(composite, dict) else None
            uses[name] = []
            for i, block in enumerate(blocks if isinstance(blocks, list) else []):
                raw = block.get("op_candidates") if isinstance(block, dict) else None
                where = ("composites", name, "sequence", i, "op_candidates")
                names = [(raw, where)] if isinstance(raw, str) else \
                    [(c, where + (j,)) for j, c in enumerate(raw)] if isinstance(raw, list) else []
                uses[name] += [(c, at) for c, at in names if c in composites]
        reported: set[frozenset] = set()
        done: set[str] = set()

        def visit(node: str, trail: list[str]) -> None:
            for used, at in uses.get(node, []):
                if used in trail:
                    cycle = trail[trail.index(used):]
                    if frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        self.error(at, f"composite '{used}' uses itself ({' -> '.join([*cycle, used])})",
                                   "a composite may nest others but must not contain itself")
                elif used not in done:
                    visit(used, [*trail, used])
            done.add(node)

        for start in uses:
            if start not in done:
                visit(start, [start])

    # ------------------------------------------------------------------ pre-processing

    def preprocessing(self) -> None:
        section = self.root.get("preprocessing")
        if not isinstance(section, dict):
            return
        if "input" in self.root:
            self.warn(("input",), "'input' is ignored: the pre-processing pipeline and the dataset define the "
                                  "model's input", "remove it", key=True)
        declared = [name for name in section if name in STEPS]
        if not declared and not section.keys() - {"order"}:
            self.error(("preprocessing",), "'preprocessing' names no step",
                       f"use some of: {', '.join(STEPS)}")
        for name in declared:
            params = section[name] if isinstance(section[name], dict) else {}
            step = STEPS[name]
            for key, value in params.items():
                if (param := step.param(key)) is not None:
                    self.value(("preprocessing", name, key), value, param)
            if params.get("enabled") is not False:
                for param in step.params:
                    if param.required and param.name not in params:
                        self.error(("preprocessing", name), f"step '{name}' needs parameter '{param.name}'",
                                   f"e.g. {name}: {{{param.name}: ...}}")
        orders = section.get("order")
        if orders is None:
            return
        if not isinstance(orders, list) or not all(isinstance(o, list) for o in orders) or not orders:
            self.error(("preprocessing", "order"), "'order' must be a non-empty list of step lists",
                       f"e.g. order: [[{', '.join(declared)}]]")
            return
        seen_orders: list[list] = []
        for i, order in enumerate(orders):
            if order in seen_orders:
                self.error(("preprocessing", "order", i), f"order {list(order)} is listed twice", "remove one")
            seen_orders.append(order)
            if sorted(map(str, order)) != sorted(declared):
                self.error(("preprocessing", "order", i), f"order {list(order)} must list each declared step "
                                                          f"once: {', '.join(declared)}")

    # ------------------------------------------------------------------ run

    def check(self) -> None:
        if not isinstance(self.root, dict):
            self.error((), f"the file must be a mapping of keys (input, output, sequence, ...), got a "
                           f"{'list' if isinstance(self.root, list) else type(self.root).__name__}")
            return
        self.structure()
        self.shape("input", required="preprocessing" not in self.root)
        self.shape("output", required=False)
        self.sequences()
        self.preprocessing()


# ---------------------------------------------------------------------- compile


def _params(registry: Registry, op: str, defaults: dict, local: Any) -> dict:
    builder = registry[op]
    merged: dict = {p.name: Fixed(p.default) for p in builder.params if not p.required}
    for source in (defaults.get(op), local):
        if isinstance(source, dict):
            merged.update({k: parse_value(v) for k, v in source.items()})
    return merged


def _compile_blocks(raw: list, registry: Registry, defaults: dict) -> tuple[Block, ...]:
    blocks = []
    for b in raw:
        repeat = b.get("type_repeat") or {}
        names = b.get("op_candidates")
        candidates = tuple([names] if isinstance(names, str) else names or ())
        blocks.append(Block(
            name=b["block"],
            candidates=candidates,
            repeat=repeat.get("type"),
            depth=parse_value(repeat["depth"]) if repeat.get("depth") is not None else Fixed(1),
            ref=repeat.get("ref_block"),
            params={op: _params(registry, op, defaults, b.get(op)) for op in candidates if op in registry},
        ))
    return tuple(blocks)


def _compile_preprocessing(section: dict | None) -> PreprocessSpace | None:
    if not section:
        return None
    steps = []
    for name, params in section.items():
        if name in STEPS:
            step = STEPS[name]
            values = {p.name: Fixed(p.default) for p in (ENABLED, *step.params) if not p.required}
            values.update({k: parse_value(v) for k, v in (params or {}).items()})
            steps.append((name, values))
    orders = tuple(tuple(o) for o in section.get("order") or [[name for name, _ in steps]])
    return PreprocessSpace(tuple(steps), orders)


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def compile_space(root: dict, file: str, registry: Registry, warnings: list[Diagnostic]) -> SearchSpace:
    defaults = root.get("default_op_params") or {}
    composites = {name: _compile_blocks(c["sequence"], registry, defaults)
                  for name, c in (root.get("composites") or {}).items()}
    plain = _plain(root)
    digest = hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:16]
    return SearchSpace(
        file=file,
        input=Tensor.of_shape(root["input"]) if root.get("input") is not None else None,
        output=Tensor.of_shape(root["output"]),
        sequence=_compile_blocks(root["sequence"], registry, defaults),
        composites=composites,
        hash=digest,
        preprocessing=_compile_preprocessing(root.get("preprocessing")),
        warnings=tuple(warnings),
        source=plain,
    )


def check_file(path: str | Path, registry: Registry | None = None, text: str | None = None
               ) -> tuple[SearchSpace | None, list[Diagnostic]]:
    """Validate one file: the compiled space (None on errors) and every diagnostic, warnings included."""
    registry = registry or DEFAULT_REGISTRY
    file = str(path)
    try:
        root = load_yaml(path, text)
    except DiagnosticsError as exc:
        return None, exc.diagnostics
    warnings = legacy.normalise(root, file)
    checker = Checker(file, root, registry)
    checker.check()
    diagnostics = warnings + sorted(checker.diagnostics, key=lambda d: (d.line, d.col))
    if checker.failed:
        return None, diagnostics
    return compile_space(root, file, registry, [d for d in diagnostics if d.severity == "warning"]), diagnostics


def load_space(path: str | Path, registry: Registry | None = None) -> SearchSpace:
    """The compiled search space of ``path``; ``UserError`` with every diagnostic when it is invalid."""
    space, diagnostics = check_file(path, registry)
    if space is None:
        raise UserError([d for d in diagnostics if d.severity == "error"])
    return space


__all__ = ["check_file", "load_space", "SIZE_KEYS", "LocDict", "LocList"]
