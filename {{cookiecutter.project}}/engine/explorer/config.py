"""YAML config files validated by a pydantic model, with every mistake as one located line.

Used by the experiment spec and the board inventory: the model is the one declaration of
the format (and of its JSON Schema); this module only maps pydantic's errors back to the
line and column the user wrote.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import Diagnostic, UserError
from .space.source import DiagnosticsError, load_yaml, locate, real_path
from .space.validate import did_you_mean

M = TypeVar("M", bound=BaseModel)


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``X | None``, ``list[X]`` or ``dict[str, X]`` annotations."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, dict, tuple):
        for arg in typing.get_args(annotation):
            if (found := _inner_model(arg)) is not None:
                return found
    return None


def allowed_keys(model: type[BaseModel], path: tuple) -> list[str]:
    """The keys the mapping at ``path`` may hold, walking the model's fields."""
    current: type[BaseModel] | None = model
    for part in path:
        if current is None:
            return []
        if isinstance(part, int) or part not in current.model_fields:
            continue  # a list index or dict key: stay on the item model
        current = _inner_model(current.model_fields[part].annotation)
    return [f.alias or name for name, f in current.model_fields.items()] if current else []


def label(path: tuple) -> str:
    """``criteria[0].limit`` style name of a position in the file."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "file"


def diagnostics(exc: ValidationError, root: Any, file: str, model: type[BaseModel]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for err in exc.errors():
        path = real_path(root, err["loc"])
        name = path[-1] if path else "file"
        if err["type"] == "extra_forbidden":
            keys = allowed_keys(model, path[:-1])
            hint = did_you_mean(name, keys) or (f"allowed: {', '.join(keys)}" if keys else None)
            line, col = locate(root, path, key=True)
            out.append(Diagnostic(file, line, col, f"unknown key '{name}'", hint))
        elif err["type"] == "missing":
            line, col = locate(root, path[:-1])
            out.append(Diagnostic(file, line, col, f"missing required key '{name}'"))
        else:
            line, col = locate(root, path)
            message = err["msg"].removeprefix("Value error, ")
            value = err.get("input")
            shown = f" (got {value!r})" if not isinstance(value, (dict, list)) else ""
            out.append(Diagnostic(file, line, col, f"'{label(path)}': {message}{shown}"))
    return list(dict.fromkeys(out))


def load_config(path: Path, model: type[M]) -> tuple[M, Any]:
    """Validate ``path`` against ``model``; the instance and the raw tree (for later positions)."""
    try:
        root = load_yaml(path)
    except DiagnosticsError as exc:
        raise UserError(exc.diagnostics) from None
    try:
        return model.model_validate(root), root
    except ValidationError as exc:
        raise UserError(diagnostics(exc, root, str(path), model)) from None
