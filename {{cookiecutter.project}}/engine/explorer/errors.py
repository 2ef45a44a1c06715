"""Errors a user can cause: each carries a location and a hint so the CLI prints one line.

The CLI turns a ``UserError`` into ``FILE:LINE:COL: error: message (hint: ...)`` lines and
exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal


@dataclass(frozen=True)
class Diagnostic:
    """One located finding in a user's file."""

    file: str
    line: int
    col: int
    message: str
    hint: str | None = None
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        hint = f" (hint: {self.hint})" if self.hint else ""
        text = f"{self.file}:{self.line}:{self.col}: {self.severity}: {self.message}{hint}"
        return text.replace("\r", "\\r").replace("\n", "\\n")  # one finding, one line, whatever a name holds

    def github(self) -> str:
        """The same finding as a GitHub Actions workflow command (an annotation)."""
        text = self.message + (f" (hint: {self.hint})" if self.hint else "")
        text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        kind = "error" if self.severity == "error" else "warning"
        return f"::{kind} file={self.file},line={self.line},col={self.col}::{text}"

    def to_dict(self) -> dict:
        return asdict(self)


class UserError(Exception):
    """A mistake in the user's input: one or more located diagnostics, never a traceback."""

    def __init__(self, diagnostics: list[Diagnostic] | str, *, hint: str | None = None):
        if isinstance(diagnostics, str):
            self.diagnostics: list[Diagnostic] = []
            self.text = diagnostics + (f" (hint: {hint})" if hint else "")
        else:
            self.diagnostics = list(diagnostics)
            self.text = "\n".join(str(d) for d in self.diagnostics)
        super().__init__(self.text)

    def lines(self) -> list[str]:
        return [str(d) for d in self.diagnostics] if self.diagnostics else [f"error: {self.text}"]


def require_extra(module: str, extra: str) -> object:
    """Import an optional heavy dependency or say in one line which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(
            f"this command needs the optional package '{module}'",
            hint=f"pip install -e 'engine[{extra}]'",
        ) from None
