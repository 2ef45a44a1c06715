"""The experiment spec: ``params.yaml`` at the experiment repository's root (DVC's params file).

One pydantic declaration gives validation with located errors (``explorer.config``), the
JSON Schema (``explorer schema --spec``) and typed settings for every command.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .config import load_config
from .data.config import DatasetConfig
from .errors import UserError
from .plugins import SPEC_NAME, find_spec

STRICT = ConfigDict(extra="forbid")
SAMPLERS = ("tpe", "random", "nsga2", "nsga3", "gp", "qmc", "grid")


class SearchSettings(BaseModel):
    """How the study searches: sampler, seed, budget, workers, early stop."""

    model_config = STRICT
    sampler: Literal[SAMPLERS] = Field("tpe", description="tpe, random, nsga2, nsga3, gp, qmc or grid")  # type: ignore[valid-type]
    seed: int = 0
    trials: int = Field(20, ge=1, description="finished trials of the study in total (a rerun adds only the rest)")
    timeout: Optional[float] = Field(None, gt=0, description="seconds for this run")
    workers: int = Field(1, ge=1, description="processes on one study (PostgreSQL or journal storage)")
    hv_patience: Optional[int] = Field(None, ge=1, description="stop when the hypervolume has not improved "
                                                                "for this many trials (off by default)")
    hv_threshold: float = Field(1e-3, ge=0, description="relative hypervolume improvement that counts")
    target: Optional[Literal["host", "rpi", "pico", "fpga"]] = Field(
        None, description="sample only what this target runs (its reflection: ops, parameter values)")


class TrainSettings(BaseModel):
    """The trainer behind accuracy/loss: seeded, CPU, early stopping that restores the best weights."""

    model_config = STRICT
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(3e-3, gt=0)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    weight_decay: float = Field(0.0, ge=0)
    patience: Optional[int] = Field(3, ge=1, description="epochs without validation improvement before stopping")


class Criterion(BaseModel):
    """An estimator value used as objective, soft constraint (penalty beyond the limit) or hard constraint."""

    model_config = STRICT
    metric: str = Field(description="an estimator value, e.g. accuracy, macs, params, peak_activation_bytes")
    kind: Literal["objective", "soft", "hard"] = "objective"
    direction: Optional[Literal["minimize", "maximize"]] = Field(None, description="default: the estimator's")
    limit: Optional[float] = Field(None, description="bound of a soft or hard constraint")
    weight: float = Field(1.0, ge=0, description="weight in the single-objective sum")

    @model_validator(mode="after")
    def _limit_for_constraints(self) -> Criterion:
        if self.kind != "objective" and self.limit is None:
            raise ValueError(f"a {self.kind} constraint needs 'limit'")
        return self


class ExportSettings(BaseModel):
    model_config = STRICT
    top_k: int = Field(3, ge=1, description="models saved besides the Pareto set")


class HardwareSettings(BaseModel):
    """Hardware in the loop: every trial is exported, built and measured on a board of ``target``;
    the measurement's values are metrics named ``hw_*`` (e.g. ``hw_latency_ms_median``,
    ``hw_simulated_instructions_median``, ``hw_cycles``, ``hw_accuracy``, ``hw_arena_bytes``)."""

    model_config = STRICT
    target: Literal["host", "rpi", "pico", "fpga"] = Field(description="where each candidate is measured")
    labels: list[str] = Field(default_factory=list, description="only boards carrying all these labels")
    inventory: Optional[str] = Field(None, description="boards.yaml (relative to the spec); none: the target's "
                                                       "local runner or simulator")
    options: dict[str, Any] = Field(default_factory=dict, description="export options, e.g. {dtype: int8}")
    samples: int = Field(16, ge=1, description="test inputs each measurement runs")
    timeout: float = Field(60.0, gt=0, description="seconds a board may stay silent before the trial fails")
    max_faults: int = Field(3, ge=1, description="consecutive faults that take a board out of the pool")
    wait: float = Field(600.0, ge=0, description="seconds a trial waits for a free board")
    cache: str = Field("results/hil-cache", description="measurement cache folder (DVC can track it)")
    fallback: dict[str, str] = Field(default_factory=dict, description="when no healthy board is left: hw metric "
                                     "-> estimator metric that stands in for it (e.g. {hw_cost: latency_predicted})")


class Spec(BaseModel):
    """An experiment: dataset, search spaces, targets, criteria, search and training settings."""

    model_config = STRICT
    dataset: DatasetConfig = Field(default_factory=lambda: DatasetConfig(name="synthetic"))
    spaces: list[str] = Field(default_factory=list, description="search space files relative to the spec, or "
                              "names: cnn1d means search_spaces/cnn1d.yaml (results land in results/<name>/)")
    targets: list[str] = Field(default_factory=lambda: ["host"])
    plugins: list[str] = Field(default_factory=list, description="modules or .py files registering ops")
    criteria: list[Criterion] = Field(default_factory=lambda: [
        Criterion(metric="accuracy", direction="maximize"), Criterion(metric="macs", direction="minimize")])
    mode: Literal["multi", "single"] = Field("multi", description="multi: Pareto front; single: weighted sum")
    aggregation: Optional[str] = Field(None, description="single mode: dotted path of f(values, criteria) -> float")
    search: SearchSettings = Field(default_factory=SearchSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    storage: Optional[str] = Field(None, description="Optuna storage URL (default: SQLite under results/)")
    export: ExportSettings = Field(default_factory=ExportSettings)
    hardware: Optional[HardwareSettings] = Field(None, description="measure every trial on a board (HIL mode 2)")

    @field_validator("criteria")
    @classmethod
    def _one_objective(cls, value: list[Criterion]) -> list[Criterion]:
        if not any(c.kind == "objective" for c in value):
            raise ValueError("at least one criterion must be an objective")
        return value

    def space_paths(self, root: Path) -> list[Path]:
        """The spaces as files: a bare name is ``search_spaces/<name>.yaml`` (what DVC stages iterate)."""
        return [root / (s if "/" in s or s.endswith((".yaml", ".yml")) else f"search_spaces/{s}.yaml")
                for s in self.spaces]

    def fingerprint(self) -> str:
        """What makes two runs the same study: data, criteria, training and sampler (not the budget)."""
        keep = self.model_dump(include={"dataset", "criteria", "mode", "aggregation", "train"})
        if self.hardware is not None:  # measured values come from this target and these options
            keep["hardware"] = self.hardware.model_dump(include={"target", "labels", "options", "samples"})
        keep["sampler"] = (self.search.sampler, self.search.seed)
        return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:8]


def load_spec(path: Path | None = None) -> tuple[Spec, Path]:
    """The spec at ``path`` or found from the current directory upward; the defaults when none exists."""
    path = path or find_spec()
    if path is None:
        return Spec(), Path.cwd() / SPEC_NAME
    if not path.is_file():
        raise UserError(f"{path}: no such experiment spec", hint="pass --spec FILE or run inside the experiment repo")
    spec, root = load_config(path, Spec)
    where: Any = None
    if isinstance(root, dict) and "dataset" in root:
        where = (str(path), *root.value_marks["dataset"])
    spec.dataset = spec.dataset.bind(root=path.parent, where=where)
    return spec, path


def spec_schema() -> dict:
    schema = Spec.model_json_schema()
    dataset = schema["properties"]["dataset"]  # a bare name is accepted too: `dataset: basicmotions`
    schema["properties"]["dataset"] = {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/DatasetConfig"}],
                                       "description": dataset.get("description", "the dataset")}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "explorer experiment spec (params.yaml)"
    return schema
