"""The ``dataset:`` entry of the experiment spec, and where it came from.

Kept free of numpy, torch and aeon so the spec can embed ``DatasetConfig`` and still be
validated in a pre-commit hook. The config remembers (as private attributes, never dumped)
the experiment root that relative paths start from and the position the user wrote it at,
so errors about it are one located line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from ..errors import Diagnostic, UserError

Task = Literal["classification", "regression", "reconstruction"]
Where = tuple[str, int, int]  # file, 1-based line, 1-based column
FILE_DATASETS = ("npz", "csv")


class DatasetConfig(BaseModel):
    """Which dataset to use and how to split it; a bare string means ``{name: <string>}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="A registered dataset (`explorer datasets`), or npz / csv.")
    path: str | None = Field(None, description="npz / csv file, relative to the experiment root.")
    target: str = Field("label", min_length=1, description="csv: the label column.")
    shape: tuple[int, ...] | None = Field(None, min_length=1, max_length=3,
                                          description="csv: per-sample shape of the feature columns, e.g. [6, 100].")
    task: Task | None = Field(None, description="Override the dataset's task.")
    seed: int = Field(0, description="Seed of every random split.")
    val_fraction: float = Field(0.2, gt=0, lt=0.5, description="Share of the training data held out for validation.")

    _root: Path | None = PrivateAttr(None)
    _where: Where | None = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _file_keys(self) -> DatasetConfig:
        if self.name in FILE_DATASETS and not self.path:
            raise ValueError(f"dataset '{self.name}' needs 'path' (the file, relative to the experiment root)")
        if self.name not in FILE_DATASETS and self.path is not None:
            raise ValueError("'path' applies to the npz and csv datasets only")
        if self.shape is not None:
            if self.name != "csv":
                raise ValueError("'shape' applies to the csv dataset only")
            if any(d < 1 and d != -1 for d in self.shape) or list(self.shape).count(-1) > 1:
                raise ValueError("'shape' entries must be positive, with at most one -1 (inferred)")
        return self

    @classmethod
    def parse(cls, value: Any, *, root: Path | None = None, where: Where | None = None) -> DatasetConfig:
        """A config from a string, a mapping or a config; mistakes become one located line each."""
        if isinstance(value, DatasetConfig):
            return value.bind(root=root, where=where)
        try:
            config = cls.model_validate(value)
        except ValidationError as exc:
            raise _located(where, [_message(e) for e in exc.errors()]) from None
        return config.bind(root=root, where=where)

    def bind(self, *, root: Path | None = None, where: Where | None = None) -> DatasetConfig:
        """A copy that knows the experiment root and the position of the ``dataset:`` entry."""
        config = self.model_copy()
        config._root = Path(root) if root is not None else self._root
        config._where = where or self._where
        return config

    @property
    def root(self) -> Path | None:
        """The experiment root that ``path`` is relative to (None until bound)."""
        return self._root

    @property
    def file(self) -> Path:
        """The npz / csv file: ``path`` under the experiment root (the current folder if unbound)."""
        return (self._root or Path.cwd()) / (self.path or "")

    def error(self, message: str, hint: str | None = None) -> UserError:
        """A mistake in this entry, located where the user wrote it (unlocated if unknown)."""
        return _located(self._where, [message], hint)


def _message(error: dict) -> str:
    field = ".".join(str(p) for p in error["loc"])
    text = error["msg"].removeprefix("Value error, ")
    return f"dataset.{field}: {text}" if field else f"dataset: {text}"


def _located(where: Where | None, messages: list[str], hint: str | None = None) -> UserError:
    if where is None:
        return UserError("; ".join(messages), hint=hint)
    return UserError([Diagnostic(*where, m, hint) for m in messages])


def file_error(file: str, message: str, hint: str | None = None, line: int = 1, col: int = 1) -> UserError:
    """A mistake inside a user's data file: one ``FILE:LINE:COL`` line (1:1 for binary files)."""
    return UserError([Diagnostic(file, line, col, message, hint)])
