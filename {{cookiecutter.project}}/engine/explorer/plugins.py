"""User ops: Python modules named in the experiment spec register their ops before a space is read.

``params.yaml`` (found from the current directory upward, as git finds its repository) may
list ``plugins:``, each a dotted module name importable from the repository root or a path
to a ``.py`` file relative to it. Importing a module runs its ``@register_layer`` decorators.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from .errors import Diagnostic, UserError
from .space.source import DiagnosticsError, LocDict, LocList, load_yaml

SPEC_NAME = "params.yaml"


def find_spec(start: Path | None = None) -> Path | None:
    """The nearest ``params.yaml`` in ``start`` or its parents; the cookiecutter template's own
    folder (``{{cookiecutter.project}}``) holds a Jinja template, not a spec, and is passed over."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / SPEC_NAME).is_file() and not folder.name.startswith("{{"):
            return folder / SPEC_NAME
    return None


def load_plugins(spec: Path | None) -> list[str]:
    """Import the spec's ``plugins``; return their names. Located one-line errors for bad entries."""
    if spec is None:
        return []
    try:
        root = load_yaml(spec)
    except DiagnosticsError as exc:
        raise UserError(exc.diagnostics) from None
    entries = root.get("plugins") if isinstance(root, LocDict) else None
    if entries is None:
        return []
    if not isinstance(entries, LocList):
        line, col = root.value_marks["plugins"]
        raise UserError([Diagnostic(str(spec), line, col, "'plugins' must be a list of modules or .py files")])
    base = spec.parent
    loaded = []
    for entry, (line, col) in zip(entries, entries.value_marks):
        try:
            _import(str(entry), base)
        except Exception as exc:  # the user's module: any failure is theirs to see in one line
            raise UserError([Diagnostic(str(spec), line, col, f"cannot load plugin '{entry}': "
                                        f"{type(exc).__name__}: {exc}", "check the module path and its code")]
                            ) from None
        loaded.append(str(entry))
    return loaded


def _import(entry: str, base: Path) -> None:
    if entry.endswith(".py"):
        path = (base / entry).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"no file {path}")
        name = f"explorer_plugin_{path.stem}"
        if name in sys.modules:
            return
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        module_spec.loader.exec_module(module)  # type: ignore[union-attr]
        return
    if str(base) not in sys.path:
        sys.path.insert(0, str(base))
    importlib.import_module(entry)
