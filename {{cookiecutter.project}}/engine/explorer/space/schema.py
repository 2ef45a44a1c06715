"""The DSL's structure as pydantic models, generated from the op registry.

This is the one declaration of the file format: unknown keys, missing keys and structural
types are checked by these models, ``explorer schema`` prints their JSON Schema, and the
op parameter fields come from each op's ``Param`` declarations. Values whose form is a
union (shapes, depth, op parameters) are typed ``Any`` here and checked by ``validate``,
which gives one precise message instead of one per union branch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model

from ..ops.registry import Param, Registry
from ..preprocess.steps import ENABLED, STEPS

REPEAT_TYPES = ("repeat_op", "repeat_params", "vary_all", "repeat_block")
RANGE_KEYS = ("low", "high", "step", "log")
STRICT = ConfigDict(extra="forbid")


def range_schema(scalar: dict) -> dict:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["low", "high"],
        "properties": {"low": scalar, "high": scalar, "step": {"type": "number", "exclusiveMinimum": 0},
                       "log": {"type": "boolean"}},
    }


def value_schema(param: Param) -> dict:
    """A parameter's value: a scalar (fixed), a non-empty list (choice) or a range (numbers only)."""
    scalar = param.scalar_schema()
    forms = [scalar, {"type": "array", "items": scalar, "minItems": 1}]
    if param.type in ("int", "float"):
        forms.append(range_schema({"type": "integer" if param.type == "int" else "number"}))
    default = {} if param.required or param.default is None else {"default": param.default}
    return {"anyOf": forms, "description": param.doc or param.name, **default}


DEPTH = Param("depth", "int", default=1, ge=1, le=1000,
              doc="number of layers the block repeats (int, choice or range), at most 1000")
SHAPE_SCHEMA = {
    "anyOf": [
        {"type": "integer", "exclusiveMinimum": 0},
        {"type": "array", "items": {"type": "integer", "exclusiveMinimum": 0}, "minItems": 1, "maxItems": 3},
    ]
}


def _any(schema: dict, description: str) -> Any:
    return Annotated[Any, WithJsonSchema({**schema, "description": description})]


class TypeRepeat(BaseModel):
    """How a block repeats (Table I of the paper)."""

    model_config = STRICT
    type: Literal[REPEAT_TYPES]  # type: ignore[valid-type]
    depth: _any(value_schema(DEPTH), DEPTH.doc) = None
    ref_block: Optional[str] = Field(None, description="the earlier block a repeat_block copies")


@dataclass(frozen=True)
class Models:
    """The generated models of one registry."""

    root: type[BaseModel]
    block: type[BaseModel]

    def block_keys(self) -> list[str]:
        """The structural keys of a block (op names excluded)."""
        return [name for name in self.block.model_fields if not name.startswith("op_")]


_CACHE: dict[tuple[int, tuple[str, ...]], Models] = {}


def models(registry: Registry) -> Models:
    """The pydantic models for ``registry`` (cached per registry and set of op names)."""
    key = (id(registry), tuple(sorted(registry.ops)))
    if key not in _CACHE:
        _CACHE[key] = _build(registry)
    return _CACHE[key]


def _build(registry: Registry) -> Models:
    ops = registry.searchable()
    op_models = {
        name: create_model(
            f"{name}_params",
            __config__=STRICT,
            __doc__=op.doc,
            **{p.name: (_any(value_schema(p), p.doc or p.name), None) for p in op.params},
        )
        for name, op in ops.items()
    }
    op_fields = {f"op_{i}": (Optional[model], Field(None, alias=name, description=ops[name].doc))
                 for i, (name, model) in enumerate(op_models.items())}
    block_config = ConfigDict(extra="forbid", populate_by_name=False)
    candidates = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}
    block = create_model(
        "Block",
        __config__=block_config,
        __doc__="A contiguous part of the network: op candidates, repetition, per-op parameters.",
        block=(str, Field(description="unique name within its sequence")),
        op_candidates=(_any(candidates, "op or composite names the search chooses from"), None),
        type_repeat=(Optional[TypeRepeat], None),
        **op_fields,
    )
    composite = create_model("Composite", __config__=STRICT, __doc__="A reusable sub-sequence usable as an op.",
                             sequence=(list[block], Field(min_length=1)))
    steps = {
        name: (Optional[create_model(f"{name}_step", __config__=STRICT, __doc__=step.doc,
                                     **{p.name: (_any(value_schema(p), p.doc or p.name), None)
                                        for p in (ENABLED, *step.params)})], Field(None, description=step.doc))
        for name, step in STEPS.items()
    }
    orders = {"type": "array", "minItems": 1,
              "items": {"type": "array", "items": {"enum": list(STEPS)}, "uniqueItems": True}}
    preprocessing = create_model(
        "Preprocessing", __config__=STRICT,
        __doc__="Searchable pre-processing, sampled in the same trial as the architecture.",
        order=(_any(orders, "allowed orders of the steps (default: as written)"), None),
        **steps,
    )
    defaults = create_model("DefaultOpParams", __config__=block_config,
                            __doc__="Fallback parameters per op for every block.", **op_fields)
    root = create_model(
        "SearchSpace",
        __config__=STRICT,
        __doc__="An explorer search space (YAML DSL).",
        input=(_any(SHAPE_SCHEMA, "input shape: F, [C, L] or [C, H, W]"), None),
        output=(_any(SHAPE_SCHEMA, "outputs: a count, or a shape for reconstruction"), ...),
        sequence=(list[block], Field(min_length=1)),
        default_op_params=(Optional[defaults], None),
        composites=(Optional[dict[str, composite]], None),
        preprocessing=(Optional[preprocessing], None),
    )
    return Models(root, block)


def json_schema(registry: Registry) -> dict:
    """The JSON Schema of a search space file (``explorer schema``; editors use it for completion)."""
    schema = models(registry).root.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "explorer search space"
    return schema
