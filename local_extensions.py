"""Jinja extension of this template (cookiecutter loads it through ``_extensions``).

Why it exists:

* Cookiecutter renders every option value as a Jinja template when it resolves the options
  (``--no-input`` and ``extra_context`` values included), so ``project_name='{{ 7*7 }}'`` would
  become ``49`` and ``project_name='{{'`` would crash with a traceback. ``preprocess`` makes such
  text literal: only text written by this template (the ``cookiecutter.json`` defaults, the hook
  scripts, the names at the template root) and the template files themselves are Jinja; any other
  string is rendered as exactly itself. Consequence: keep Jinja out of file and folder names
  inside ``{{cookiecutter.project}}/`` (board-specific files are pruned by ``post_gen_project``).
* ``check_options`` (used by ``__options_checked`` in ``cookiecutter.json``) validates every option
  right after it is resolved, before any folder exists, and ends the bake with one line.
* ``tojson`` is plain JSON: valid as a YAML double-quoted scalar, a TOML basic string and a Python
  string literal. Jinja's own escapes ``<>&'`` for HTML (``\u003e=3.11``) and writes non-ASCII as
  surrogate pairs, which TOML rejects.
* A hook that fails has already printed its one line; cookiecutter would add a traceback of its own
  ``FailedHookException``. ``_NoTraceback`` drops that traceback (the message stays).
* ``template_hooks_dir`` tells the hook scripts (run from a temporary copy) where ``options.py`` is.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

from jinja2 import Environment
from jinja2.ext import Extension

ROOT = Path(__file__).resolve().parent


@functools.cache
def _options() -> ModuleType:
    """Load ``hooks/options.py`` by path (``hooks`` is not a package and the name is common)."""
    spec = importlib.util.spec_from_file_location("_template_options", ROOT / "hooks" / "options.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def _template_text() -> frozenset[str]:
    """Every string this template itself hands to Jinja without a template name."""
    defaults = json.loads((ROOT / "cookiecutter.json").read_text(encoding="utf-8"))
    return frozenset(
        [entry.name for entry in ROOT.iterdir()]
        + [value for value in defaults.values() if isinstance(value, str)]
        + [hook.read_text(encoding="utf-8") for hook in (ROOT / "hooks").glob("*.py")]
    )


def check_options(options: dict[str, Any]) -> str:
    """Validate the resolved options; a bad one ends the program with its one-line message."""
    try:
        _options().validate(options)
    except _options().OptionError as error:
        raise SystemExit(str(error)) from None
    return "yes"


def tojson(value: Any) -> str:
    """JSON text of ``value``, non-ASCII kept as is (see the module docstring)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


class _NoTraceback(logging.Filter):
    """Keep cookiecutter's hook-failure message, drop the traceback it logs with it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


class OptionsExtension(Extension):
    """Literal option values, the option check and board filters for the templates."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["tojson"] = tojson
        environment.filters["check_options"] = check_options
        environment.filters["selected_boards"] = _options().selected_boards
        environment.filters["selected_spaces"] = _options().selected_spaces
        environment.globals["template_hooks_dir"] = str(ROOT / "hooks")
        hooks_logger = logging.getLogger("cookiecutter.hooks")
        if not any(isinstance(f, _NoTraceback) for f in hooks_logger.filters):
            hooks_logger.addFilter(_NoTraceback())

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        if name is not None or source in _template_text():
            return source
        # A Jinja string literal whose value is `source`: json escapes quotes, backslashes and
        # control characters in a form Jinja's lexer decodes back exactly.
        return "{{ " + json.dumps(source, ensure_ascii=False) + " }}"
